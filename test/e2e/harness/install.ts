// Installs what a cluster running the platform plus this project has: the platform's CRDs
// (from shared/upstream/crds, unchanged; the project's own component when there are none)
// and the project's own manifests (manifests/base), adapted only where they must reach a
// process on 127.0.0.1 instead of a Service.

import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { ControlPlane } from './controlplane.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { kubectl } from './kubectl.ts';
import { elapsed, log } from './log.ts';
import { crdSourceLine, repoRoot, type CrdSource } from './paths.ts';

export const SERVICE_NAMESPACE = 'komputer-webhook-system';
export const SERVICE_ACCOUNT = 'komputer-connector-webhook';
export const FIELD_MANAGER = 'komputer-e2e';

type Manifest = { [key: string]: unknown };

function isManifest(value: unknown): value is Manifest {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseManifests(text: string): Manifest[] {
  const out: Manifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS({ maxAliasCount: -1 });
    if (isManifest(value)) out.push(value);
  }
  return out;
}

export function toYaml(manifests: readonly Manifest[]): string {
  return manifests.map((m) => stringify(m, { lineWidth: 0 })).join('---\n');
}

function nameOf(manifest: Manifest): string {
  const metadata = manifest['metadata'];
  const name = isManifest(metadata) ? metadata['name'] : undefined;
  if (typeof name !== 'string') throw new Error(`manifest of kind ${String(manifest['kind'])} has no metadata.name`);
  return name;
}

/** Server-side apply of YAML (one or more documents) as `admin`. */
export async function applyYaml(cp: ControlPlane, yaml: string): Promise<string> {
  const result = await kubectl(cp.kubeconfig, ['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--force-conflicts', '-f', '-'], {
    input: yaml,
  });
  return result.stdout;
}

/**
 * Applies the CRDs of `source` (see resolveCrdSource) and waits until the API server serves
 * them. Says once which CRDs these are, in the log and in crds.txt (kept with the logs).
 */
export async function installCrds(cp: ControlPlane, source: CrdSource): Promise<string[]> {
  const started = Date.now();
  const line = crdSourceLine(source);
  log(line);
  await writeFile(path.join(cp.dir, 'crds.txt'), `${line}\n`, { mode: 0o600 });
  const names: string[] = [];
  for (const file of source.files) {
    const manifests = parseManifests(await readFile(file, 'utf8'));
    for (const m of manifests) if (m['kind'] === 'CustomResourceDefinition') names.push(nameOf(m));
    await kubectl(cp.kubeconfig, ['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--force-conflicts', '-f', file]);
  }
  if (names.length === 0) throw new Error(`no CustomResourceDefinition in ${source.files.join(', ')}`);
  // Polled rather than `kubectl wait`, which fails outright while a new CRD has no
  // status.conditions yet.
  const deadline = Date.now() + 60_000;
  for (const name of names) {
    for (;;) {
      const result = await kubectl(cp.kubeconfig, ['get', 'crd', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}'], {
        allowFailure: true,
      });
      if (result.code === 0 && result.stdout.trim() === 'True') break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after 60 s: ${result.stdout}${result.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  log(`CRDs established in ${elapsed(started)}: ${names.join(', ')}`);
  return names;
}

/** `kubectl kustomize manifests/base` with the built kubectl. */
export async function renderBase(cp: ControlPlane): Promise<Manifest[]> {
  const result = await kubectl(cp.kubeconfig, ['kustomize', path.join(repoRoot, 'manifests', 'base')]);
  return parseManifests(result.stdout);
}

const RUNS_IN_CLUSTER = new Set(['Deployment', 'Service', 'PodDisruptionBudget']);
const WEBHOOK_KINDS = new Set(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);

/**
 * The project's manifests for a service running as a local process: drops what only makes
 * sense in a cluster (Deployment, Service, PodDisruptionBudget) and points every webhook at
 * `https://127.0.0.1:<port><path>` with the given CA bundle. Nothing else changes, so RBAC,
 * selectors, match conditions and failure policies are the ones the project ships.
 */
export function adaptForLocalService(manifests: readonly Manifest[], options: { port: number; caCert: string }): Manifest[] {
  const caBundle = Buffer.from(options.caCert).toString('base64');
  const out: Manifest[] = [];
  for (const manifest of manifests) {
    const kind = manifest['kind'];
    if (typeof kind === 'string' && RUNS_IN_CLUSTER.has(kind)) continue;
    if (typeof kind === 'string' && WEBHOOK_KINDS.has(kind)) {
      const copy = structuredClone(manifest);
      const webhooks = copy['webhooks'];
      if (!Array.isArray(webhooks)) throw new Error(`${kind} ${nameOf(copy)} has no webhooks`);
      for (const webhook of webhooks as unknown[]) {
        if (!isManifest(webhook)) throw new Error(`${kind} ${nameOf(copy)}: webhook is not an object`);
        const clientConfig = webhook['clientConfig'];
        const service = isManifest(clientConfig) ? clientConfig['service'] : undefined;
        const servicePath = isManifest(service) ? service['path'] : undefined;
        if (typeof servicePath !== 'string') throw new Error(`${kind} ${nameOf(copy)}: webhook ${String(webhook['name'])} has no clientConfig.service.path`);
        webhook['clientConfig'] = { url: `https://127.0.0.1:${options.port}${servicePath}`, caBundle };
      }
      out.push(copy);
      continue;
    }
    out.push(manifest);
  }
  return out;
}

/** Renders manifests/base, adapts it for the local service and applies it. */
export async function installManifests(cp: ControlPlane, options: { port: number; caCert: string }): Promise<Manifest[]> {
  const started = Date.now();
  const manifests = adaptForLocalService(await renderBase(cp), options);
  const yaml = toYaml(manifests);
  await writeFile(path.join(cp.dir, 'manifests.yaml'), yaml, { mode: 0o600 });
  await applyYaml(cp, yaml);
  log(`project manifests applied in ${elapsed(started)}: ${manifests.map((m) => `${String(m['kind'])}/${nameOf(m)}`).join(', ')}`);
  return manifests;
}

/**
 * A kubeconfig for the service's own ServiceAccount, with a token from the TokenRequest API,
 * so the service runs with exactly the RBAC the manifests grant.
 */
export async function writeServiceAccountKubeconfig(
  cp: ControlPlane,
  options: { namespace?: string; name?: string; duration?: string; file?: string } = {},
): Promise<string> {
  const namespace = options.namespace ?? SERVICE_NAMESPACE;
  const name = options.name ?? SERVICE_ACCOUNT;
  const result = await kubectl(cp.kubeconfig, ['create', 'token', name, '-n', namespace, `--duration=${options.duration ?? '24h'}`]);
  const token = result.stdout.trim();
  if (token === '') throw new Error(`empty token for ${namespace}/${name}`);
  return writeKubeconfig(options.file ?? path.join(cp.dir, `${name}.kubeconfig`), {
    server: cp.server,
    caCert: cp.caCert,
    token,
    user: `system:serviceaccount:${namespace}:${name}`,
    namespace,
  });
}
