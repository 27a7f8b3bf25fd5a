// The Helm chart (charts/komputer-connector-webhook) against a real API server, with the
// helm v4 built from test/tools/helm (`npm run tools:helm`):
//
//   lint        `helm lint` and `helm lint --strict`, for the defaults and every value set;
//   schema      bad values (wrong type, unknown key, wrong enum, missing companion value)
//               fail `helm install` with an error naming the key, and create no release;
//   sameness    the chart and manifests/ render the same objects: defaults vs
//               manifests/base, and the cert-manager, secret-mirroring and CRD value sets vs
//               their overlays (normalising only CHART_ONLY_LABELS / CHART_ONLY_ANNOTATIONS;
//               the base's Namespace is the one object the chart leaves to Helm);
//   template    `helm template` of each value set, applied with a strict server-side dry run
//               (cert-manager's and the Prometheus Operator's kinds through their real
//               CRDs, fetched from their Go modules by test/tools/fetch-crds.sh);
//   lifecycle   `helm install` with webhook.url pointing at the service running as a local
//               process in self-managed mode (it patches the caBundle itself): agent pods are
//               injected; `helm upgrade` (server-side apply, then client-side) while pods are
//               being created: none refused, none left uninjected, the caBundle and CA kept;
//               `helm uninstall`: nothing the chart rendered remains, and with the service
//               stopped agent pods are created without any webhook error.

import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { generateCertificates, type GeneratedCertificates } from '../../src/certs/generate.ts';
import { parsePolicyConfig } from '../../src/policy/incompatible.ts';
import { startControlPlane, type ControlPlane } from './harness/controlplane.ts';
import { SERVICE_ACCOUNT, applyYaml, installCrds, parseManifests, toYaml, writeServiceAccountKubeconfig } from './harness/install.ts';
import { kubectl, warningsOf, type KubectlResult } from './harness/kubectl.ts';
import { runCheck, startCheck } from './fixtures/check.ts';
import { elapsed, log } from './harness/log.ts';
import { helmBinary, logsRoot, nodeCrdFs, repoRoot, resolveCrdSource } from './harness/paths.ts';
import { freePort } from './harness/ports.ts';
import { setShutdownHandler } from './harness/process.ts';
import { createWebhookService, type WebhookService } from './harness/webhook.ts';
import { adminClients, agentObject, connectorObject, metric, pollUntil, sleep, type Clients } from './fixtures/cluster.ts';
import {
  CHART_DIR,
  CHART_ONLY_ANNOTATIONS,
  CHART_ONLY_LABELS,
  RELEASE,
  RELEASE_NAMESPACE as NS,
  byKey,
  createHelm,
  keyOf,
  normaliseChartObject,
  sets,
  UPSTREAM_CRDS,
  upstreamCrdYaml,
  valueSets,
  type Helm,
  type HelmResult,
} from './fixtures/helm.ts';

const TEAM = 'helm-team';
const AGENT = 'worker';
const WEBHOOK_CONFIG = 'komputer-connector-webhook';
const TLS_SECRET = 'komputer-connector-webhook-tls';
const INJECTED = 'komputer.ai/injected-connectors';

type Obj = Record<string, unknown>;

let cp: ControlPlane;
let helm: Helm;
let clients: Clients;
let caFile: string;
let service: WebhookService | undefined;
let helmLog: string;
let stopped = false;

async function stopAll(): Promise<void> {
  if (stopped) return;
  stopped = true;
  await service?.stop();
  if (cp === undefined) return;
  const target = path.join(logsRoot, 'helm');
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true });
  for (const file of ['etcd.log', 'kube-apiserver.log', 'crds.txt', 'helm.log', path.join('service', 'webhook.log')]) {
    await copyFile(path.join(cp.dir, file), path.join(target, path.basename(file))).catch(() => undefined);
  }
  log(`logs kept in ${path.relative(process.cwd(), target) || target}`);
  await cp.stop({ keepDir: process.env['E2E_KEEP'] === '1' });
}

before(async () => {
  helmBinary(); // before the control plane: a missing helm fails at once, naming `npm run tools:helm`
  setShutdownHandler(stopAll);
  const started = Date.now();
  cp = await startControlPlane();
  helmLog = path.join(cp.dir, 'helm.log');
  helm = await createHelm({ home: path.join(cp.dir, 'helm-home'), kubeconfig: cp.kubeconfig });
  clients = adminClients(cp.kubeconfig);
  await installCrds(cp, resolveCrdSource(process.env, nodeCrdFs));
  for (const name of ['cert-manager', 'prometheus-operator'] as const) {
    const { yaml, source } = upstreamCrdYaml(name);
    await applyYaml(cp, yaml);
    for (const crd of UPSTREAM_CRDS[name]) await waitEstablished(crd);
    log(`${name}'s own CRDs installed (${source})`);
  }
  // The release namespace, as the README has admins create it (Helm does not label it).
  await k(['create', 'namespace', NS]);
  await k(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
  const ca = await generateCertificates({ dnsNames: ['corp-webhook.example'], caCommonName: 'corp-ca' });
  caFile = path.join(cp.dir, 'corp-ca.crt');
  await writeFile(caFile, ca.caCert, { mode: 0o600 });
  log(`helm test environment ready in ${elapsed(started)} (${(await helm.run(['version', '--short'])).stdout.trim()})`);
});

after(stopAll);

// --- helpers -----------------------------------------------------------------------------------

function k(args: readonly string[], options: { input?: string; allowFailure?: boolean } = {}): Promise<KubectlResult> {
  return kubectl(cp.kubeconfig, args, options);
}

async function waitEstablished(crd: string): Promise<void> {
  await pollUntil(
    `CRD ${crd} Established`,
    async () => {
      const r = await k(['get', 'crd', crd, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}'], { allowFailure: true });
      return { ok: r.code === 0 && r.stdout.trim() === 'True', detail: r.stdout + r.stderr };
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
}

/** Runs helm and keeps its output in helm.log (kept with the logs). */
async function h(args: readonly string[], options: { allowFailure?: boolean } = {}): Promise<HelmResult> {
  const started = Date.now();
  const result = await helm.run(args, options);
  await appendFile(helmLog, `$ helm ${args.join(' ')}  # exit ${result.code}, ${elapsed(started)}\n${result.stdout}${result.stderr}\n`);
  return result;
}

async function kustomize(dir: string): Promise<Obj[]> {
  return parseManifests((await k(['kustomize', path.join(repoRoot, 'manifests', dir)])).stdout);
}

function find(objects: readonly Obj[], kind: string, name?: string): Obj {
  const found = objects.find((o) => o['kind'] === kind && (name === undefined || (o['metadata'] as Obj)['name'] === name));
  assert.ok(found, `${kind}${name ? ` ${name}` : ''} rendered`);
  return found;
}

// Typed views of the few fields the assertions read.
interface Container {
  image: string;
  imagePullPolicy: string;
  args: string[];
  env: { name: string; value?: string }[];
  ports: { name: string; containerPort: number }[];
  resources: Obj;
  volumeMounts: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  volumes: { name: string; secret?: { secretName: string } }[];
  nodeSelector?: Record<string, string>;
  tolerations?: Obj[];
  priorityClassName?: string;
  imagePullSecrets?: { name: string }[];
}
interface Deployment {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: { replicas: number; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } };
}
interface WebhookConfig {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  webhooks: { name: string; failurePolicy: string; timeoutSeconds: number; clientConfig: { url?: string; service?: Obj; caBundle?: string } }[];
}

async function webhookConfigs(): Promise<WebhookConfig[]> {
  const out: WebhookConfig[] = [];
  for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
    out.push(JSON.parse((await k(['get', kind, WEBHOOK_CONFIG, '-o', 'json'])).stdout) as WebhookConfig);
  }
  return out;
}

async function webhookBundles(): Promise<string[]> {
  return (await webhookConfigs()).flatMap((c) => c.webhooks.map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8')));
}

async function secretCa(): Promise<string> {
  const secret = JSON.parse((await k(['get', 'secret', TLS_SECRET, '-n', NS, '-o', 'json'])).stdout) as { data?: Record<string, string> };
  return Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString('utf8');
}

/** `Kind namespace/name` of every object of the release's current manifest. */
async function releaseObjects(): Promise<Obj[]> {
  return parseManifests((await h(['get', 'manifest', RELEASE, '-n', NS])).stdout);
}

// --- agent pods --------------------------------------------------------------------------------------

const agentPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: `${AGENT}-`, labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': AGENT, [`komputer.ai/member-${AGENT}`]: 'true' } },
  spec: { containers: [{ name: 'agent', image: 'busybox' }] },
};

interface PodResult {
  readonly injected: boolean;
  readonly error?: string;
  readonly at: number;
}

async function createAgentPod(): Promise<PodResult> {
  try {
    const pod = await clients.core.createNamespacedPod({ namespace: TEAM, body: agentPod });
    const env = pod.spec?.containers[0]?.env ?? [];
    return { injected: pod.metadata?.annotations?.[INJECTED] === 'github' && env.some((e) => e.name === 'KOMPUTER_MCP_SERVERS'), at: Date.now() };
  } catch (error) {
    const body = (error as { body?: unknown }).body;
    return { injected: false, error: typeof body === 'string' ? body.slice(0, 300) : error instanceof Error ? error.message : String(error), at: Date.now() };
  }
}

/** Agent pods created back to back by `workers` loops until stopped. */
function podLoop(workers = 2): { stop(): Promise<PodResult[]> } {
  let stopping = false;
  const results: PodResult[] = [];
  const worker = async (): Promise<void> => {
    while (!stopping) results.push(await createAgentPod());
  };
  const running = Promise.all(Array.from({ length: workers }, worker));
  return {
    async stop() {
      stopping = true;
      await running;
      return results;
    },
  };
}

function summary(results: readonly PodResult[]): { created: number; refused: string[]; notInjected: number } {
  return { created: results.filter((r) => r.error === undefined).length, refused: results.flatMap((r) => (r.error === undefined ? [] : [r.error])), notInjected: results.filter((r) => r.error === undefined && !r.injected).length };
}

// --- tests ---------------------------------------------------------------------------------------------

test('helm is the pinned v4.3.1', async () => {
  const version = (await h(['version', '--short'])).stdout.trim();
  assert.match(version, /^v4\.3\.1\b/, version);
});

describe('helm lint', () => {
  test('clean for the defaults, also with --strict', async () => {
    for (const flags of [[], ['--strict']]) {
      const result = await h(['lint', CHART_DIR, ...flags], { allowFailure: true });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(result.stdout, /\[(WARNING|ERROR)\]/, result.stdout);
    }
  });

  test('clean with --strict for every value set', async () => {
    for (const set of valueSets(caFile)) {
      const result = await h(['lint', CHART_DIR, '--strict', '--namespace', NS, ...set.args], { allowFailure: true });
      assert.equal(result.code, 0, `${set.name}: ${result.stdout}${result.stderr}`);
      assert.doesNotMatch(result.stdout, /\[(WARNING|ERROR)\]/, `${set.name}: ${result.stdout}`);
    }
  });
});

describe('values.schema.json: bad values fail at helm install, naming the key', () => {
  const cases: readonly { name: string; args: string[]; key: RegExp; why: RegExp }[] = [
    { name: 'replicaCount=abc', args: sets('replicaCount=abc'), key: /\/replicaCount/, why: /want integer/ },
    { name: 'an unknown top-level key', args: sets('foo=1'), key: /'foo'/, why: /additional propert/i },
    { name: 'an unknown nested key (typo)', args: sets('webhook.mutating.timeoutSecond=3'), key: /\/webhook\/mutating.*'timeoutSecond'|'timeoutSecond'.*\/webhook\/mutating/s, why: /additional propert/i },
    { name: 'a wrong certificates.mode', args: sets('certificates.mode=vault'), key: /\/certificates\/mode/, why: /self-managed/ },
    { name: 'a wrong failurePolicy', args: sets('webhook.mutating.failurePolicy=Sometimes'), key: /\/webhook\/mutating\/failurePolicy/, why: /Fail/ },
    { name: 'timeoutSeconds over 30', args: sets('webhook.validating.timeoutSeconds=60'), key: /\/webhook\/validating\/timeoutSeconds/, why: /30/ },
    { name: 'a number as a label value', args: sets('commonLabels.generation=2'), key: /\/commonLabels\/generation/, why: /want string/ },
    { name: 'a webhook.url with a path', args: sets('webhook.url=https://127.0.0.1:8443/mutate'), key: /\/webhook\/url/, why: /pattern/ },
    { name: 'an injection label (not a value: the service checks its own)', args: sets('injection.namespaceLabel.key=example.com/inject'), key: /'injection'/, why: /additional propert/i },
    { name: 'one replica with the default PDB (minAvailable 1 blocks every drain)', args: sets('replicaCount=1'), key: /podDisruptionBudget\.minAvailable=1 with replicaCount=1/, why: /node drain/ },
    { name: 'the same port for HTTPS and metrics', args: sets('webhook.port=9090'), key: /webhook\.port and metrics\.port are both 9090/, why: /their own ports/ },
    { name: 'hostNetwork on a privileged port', args: sets('hostNetwork=true', 'webhook.port=443'), key: /webhook\.port=443 with hostNetwork/, why: /below 1024/ },
    { name: 'hostNetwork on the kubelet\'s port', args: sets('hostNetwork=true', 'webhook.port=10250'), key: /webhook\.port=10250 with hostNetwork/, why: /kubelet/ },
    { name: 'a dnsPolicy Kubernetes does not know', args: sets('dnsPolicy=ClusterLast'), key: /\/dnsPolicy/, why: /ClusterFirst/ },
    { name: 'a webhook.port out of range', args: sets('webhook.port=70000'), key: /\/webhook\/port/, why: /65,?535/ },
    { name: 'a PDB that allows no eviction (maxUnavailable 0)', args: sets('podDisruptionBudget.maxUnavailable=0'), key: /podDisruptionBudget\.maxUnavailable=0/, why: /node drain/ },
    { name: 'a policy entry field typo', args: sets('policy.entries[0].id=acme', 'policy.entries[0].allowedAuthType={oauth}'), key: /'allowedAuthType'/, why: /additional propert/i },
    { name: 'existing-secret mode without a Secret name', args: sets('certificates.mode=existing-secret'), key: /certificates\.existingSecret\.name/, why: /required/ },
    { name: 'a log level the service does not know', args: sets('logLevel=verbose'), key: /\/logLevel/, why: /info/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const result = await h(['install', RELEASE, CHART_DIR, '-n', NS, ...c.args], { allowFailure: true });
      assert.notEqual(result.code, 0, `helm install ${c.args.join(' ')} succeeded`);
      assert.match(result.stderr, c.key, result.stderr);
      assert.match(result.stderr, c.why, result.stderr);
      log(`${c.name}: ${result.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    });
  }

  test('no release was created by the failed installs', async () => {
    assert.equal((await h(['list', '-A', '-q'])).stdout.trim(), '');
    assert.equal((await k(['get', 'secrets', '-n', NS, '-l', 'owner=helm', '-o', 'name'])).stdout.trim(), '');
  });
});

describe('one source of truth: the chart renders what manifests/ renders', () => {
  const pairs: readonly { name: string; overlay: string; args: string[] }[] = [
    { name: 'defaults vs manifests/base', overlay: 'base', args: [] },
    { name: 'certificates.mode=cert-manager vs manifests/overlays/cert-manager', overlay: 'overlays/cert-manager', args: sets('certificates.mode=cert-manager') },
    { name: 'secretMirroring.enabled vs manifests/overlays/secret-mirroring', overlay: 'overlays/secret-mirroring', args: sets('secretMirroring.enabled=true') },
    { name: 'crds.enabled vs manifests/overlays/with-crds', overlay: 'overlays/with-crds', args: sets('crds.enabled=true') },
  ];
  for (const pair of pairs) {
    test(pair.name, async () => {
      // --skip-tests: the `helm test` hook (templates/tests/) has no kustomize counterpart.
      const chart = byKey(parseManifests(await helm.template([...pair.args, '--skip-tests'])).map(normaliseChartObject));
      const manifests = byKey(await kustomize(pair.overlay));
      // The one object the chart leaves to Helm: the release namespace (`--create-namespace`
      // or `kubectl create namespace`, as the README says).
      const namespaceKey = `Namespace ${NS}`;
      assert.ok(manifests.delete(namespaceKey), `${pair.overlay} renders ${namespaceKey}`);
      assert.deepEqual([...chart.keys()].sort(), [...manifests.keys()].sort(), 'the same objects');
      for (const [key, object] of manifests) assert.deepEqual(chart.get(key), object, `${key} differs between the chart and manifests/${pair.overlay}`);
    });
  }

  test(`only ${[...CHART_ONLY_LABELS, ...CHART_ONLY_ANNOTATIONS].join(', ')} were normalised away`, async () => {
    // Everything the chart renders carries exactly those extra labels, and nothing else differs.
    const rendered = parseManifests(await helm.template(sets('crds.enabled=true')));
    for (const o of rendered) {
      const labels = (o['metadata'] as { labels?: Record<string, string> }).labels ?? {};
      for (const l of CHART_ONLY_LABELS) assert.ok(l in labels, `${keyOf(o)} has ${l}`);
      assert.equal(labels['app.kubernetes.io/name'], 'komputer-connector-webhook', `${keyOf(o)} app.kubernetes.io/name`);
      assert.equal(labels['app.kubernetes.io/part-of'], 'komputer', `${keyOf(o)} app.kubernetes.io/part-of`);
    }
  });
});

describe('helm template: every value set passes a strict server-side dry run', () => {
  const rendered = new Map<string, Obj[]>();

  test('each value set renders what it should and the API server accepts it', async () => {
    // --skip-tests: the `helm test` hook's Pod names a ServiceAccount a dry run does not
    // create (the API server refuses such a Pod); the hook is applied for real in its own test.
    const base = new Set(parseManifests(await helm.template(['--skip-tests'])).map((o) => String(o['kind'])));
    for (const set of valueSets(caFile)) {
      const yaml = await helm.template([...set.args, '--skip-tests']);
      const objects = parseManifests(yaml);
      rendered.set(set.name, objects);
      const kinds = new Set(objects.map((o) => String(o['kind'])));
      for (const kind of set.renders ?? []) assert.ok(kinds.has(kind), `${set.name}: renders a ${kind}`);
      for (const kind of set.omits ?? []) assert.ok(!kinds.has(kind), `${set.name}: renders no ${kind}`);
      if (set.renders === undefined && set.omits === undefined) assert.ok([...base].every((kind) => kinds.has(kind)), `${set.name}: renders every kind of the defaults`);
      const started = Date.now();
      // --force-conflicts: the CRDs on exist already (applied by the test's own field manager).
      const result = await k(['apply', '--server-side', '--dry-run=server', '--validate=strict', '--force-conflicts', '--field-manager=helm-e2e-dry-run', '-f', '-'], { input: yaml, allowFailure: true });
      assert.equal(result.code, 0, `${set.name}: ${result.stderr}`);
      const warnings = warningsOf(result);
      assert.equal(warnings.length, (set.warnings ?? []).length, `${set.name}: warnings ${JSON.stringify(warnings)}`);
      for (const w of set.warnings ?? []) assert.ok(warnings.some((x) => w.test(x)), `${set.name}: a warning matching ${w} (got ${JSON.stringify(warnings)})`);
      log(`dry run of "${set.name}": ${objects.length} objects (${[...kinds].sort().join(', ')}) accepted in ${elapsed(started)}`);
    }
  });

  test('self-managed (default): no caBundle rendered, the empty Secret, --cert-mode self', () => {
    const objects = rendered.get('defaults')!;
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const config = find(objects, kind) as unknown as WebhookConfig;
      for (const w of config.webhooks) assert.ok(!('caBundle' in w.clientConfig), `${kind} ${w.name} has no caBundle`);
      assert.equal(config.metadata.annotations, undefined);
    }
    const secret = find(objects, 'Secret', TLS_SECRET);
    assert.equal(secret['data'], undefined);
    const container = (find(objects, 'Deployment') as unknown as Deployment).spec.template.spec.containers[0]!;
    assert.deepEqual(container.args.slice(0, 3), ['serve', '--cert-mode', 'self']);
  });

  test('cert-manager: the cainjector annotation on both configurations, files from the Certificate Secret', () => {
    for (const [name, injectFrom] of [['cert-manager mode', 'komputer-connector-webhook-ca'], ['cert-manager mode with a ClusterIssuer', 'komputer-connector-webhook']] as const) {
      const objects = rendered.get(name)!;
      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        const config = find(objects, kind) as unknown as WebhookConfig;
        assert.equal(config.metadata.annotations?.['cert-manager.io/inject-ca-from'], `${NS}/${injectFrom}`, `${name}: ${kind}`);
        for (const w of config.webhooks) assert.ok(!('caBundle' in w.clientConfig));
      }
      const spec = (find(objects, 'Deployment') as unknown as Deployment).spec.template.spec;
      assert.deepEqual(spec.containers[0]!.args.slice(0, 5), ['serve', '--cert-mode', 'files', '--cert-dir', '/certs']);
      assert.equal(spec.volumes.find((v) => v.name === 'certs')?.secret?.secretName, TLS_SECRET);
    }
    const certificate = find(rendered.get('cert-manager mode with a ClusterIssuer')!, 'Certificate') as { spec: { issuerRef: Obj } };
    assert.deepEqual(certificate.spec.issuerRef, { name: 'corp-ca', kind: 'ClusterIssuer' });
  });

  test('cert-manager: self-signed Issuer -> CA Certificate (key kept) -> CA Issuer -> serving Certificate, the caBundle from the CA', () => {
    interface Cert { metadata: { name: string }; spec: { isCA?: boolean; secretName: string; issuerRef: { name: string; kind: string }; privateKey: { rotationPolicy: string }; dnsNames?: string[] } }
    interface Issuer { metadata: { name: string }; spec: { selfSigned?: object; ca?: { secretName: string } } }
    const objects = rendered.get('cert-manager mode')!;
    const certs = objects.filter((o) => o['kind'] === 'Certificate') as unknown as Cert[];
    const issuers = objects.filter((o) => o['kind'] === 'Issuer') as unknown as Issuer[];
    assert.equal(certs.length, 2);
    assert.equal(issuers.length, 2);
    const ca = certs.find((c) => c.spec.isCA === true)!;
    const serving = certs.find((c) => c.spec.isCA !== true)!;
    const root = issuers.find((i) => i.spec.selfSigned !== undefined)!;
    const caIssuer = issuers.find((i) => i.spec.ca !== undefined)!;
    assert.deepEqual(ca.spec.issuerRef, { name: root.metadata.name, kind: 'Issuer' }, 'the self-signed Issuer signs only the CA');
    assert.equal(ca.spec.privateKey.rotationPolicy, 'Never', 'the CA keeps its key across renewals');
    assert.equal(caIssuer.spec.ca!.secretName, ca.spec.secretName, 'the CA Issuer signs with the CA Certificate\'s Secret');
    assert.deepEqual(serving.spec.issuerRef, { name: caIssuer.metadata.name, kind: 'Issuer' }, 'the CA Issuer signs the serving certificate');
    assert.equal(serving.spec.secretName, TLS_SECRET);
    assert.deepEqual(serving.spec.dnsNames, [`komputer-connector-webhook.${NS}.svc`, `komputer-connector-webhook.${NS}.svc.cluster.local`]);
    const annotation = (find(objects, 'MutatingWebhookConfiguration') as unknown as WebhookConfig).metadata.annotations?.['cert-manager.io/inject-ca-from'];
    assert.equal(annotation, `${NS}/${ca.metadata.name}`, 'cainjector copies the CA, which a serving renewal does not change');
  });

  test('existing-secret: the given CA as caBundle of every webhook, the given Secret mounted', async () => {
    const objects = rendered.get('existing-Secret mode')!;
    const ca = await readFile(caFile, 'utf8');
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      for (const w of (find(objects, kind) as unknown as WebhookConfig).webhooks) assert.equal(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'), ca, `${kind} ${w.name}`);
    }
    const spec = (find(objects, 'Deployment') as unknown as Deployment).spec.template.spec;
    assert.equal(spec.volumes.find((v) => v.name === 'certs')?.secret?.secretName, 'corp-webhook-tls');
    assert.deepEqual(spec.containers[0]!.args.slice(0, 3), ['serve', '--cert-mode', 'files']);
  });

  test('secret mirroring: its ClusterRole(Binding) and the flag only when on', () => {
    const on = rendered.get('secret mirroring on')!;
    find(on, 'ClusterRole', 'komputer-connector-webhook-secret-mirroring');
    find(on, 'ClusterRoleBinding', 'komputer-connector-webhook-secret-mirroring');
    assert.ok((find(on, 'Deployment') as unknown as Deployment).spec.template.spec.containers[0]!.args.includes('--mirror-shared-secrets'));
    const off = rendered.get('defaults')!;
    assert.ok(!off.some((o) => String((o['metadata'] as Obj)['name']).endsWith('-secret-mirroring')), 'no mirroring RBAC by default');
    assert.ok(!(find(off, 'Deployment') as unknown as Deployment).spec.template.spec.containers[0]!.args.includes('--mirror-shared-secrets'));
  });

  test('prometheusRule: spec.groups are the groups of files/prometheus-rules.yaml', async () => {
    const rule = find(rendered.get('prometheusRule on')!, 'PrometheusRule') as { apiVersion: string; metadata: { labels: Record<string, string> }; spec: { groups: unknown } };
    const file = parseYaml(await readFile(path.join(CHART_DIR, 'files', 'prometheus-rules.yaml'), 'utf8')) as { groups: unknown };
    assert.equal(rule.apiVersion, 'monitoring.coreos.com/v1');
    assert.deepEqual(rule.spec.groups, file.groups);
    assert.equal(rule.metadata.labels['release'], 'prometheus');
    assert.ok(!rendered.get('defaults')!.some((o) => o['kind'] === 'PrometheusRule'), 'off by default');
  });

  test('serviceMonitor: scrapes the Service\'s metrics port, and its job is the one the rules and the dashboard select', async () => {
    const objects = rendered.get('monitoring on (ServiceMonitor, dashboard, rules)')!;
    const sm = find(objects, 'ServiceMonitor') as { metadata: { namespace: string; labels: Record<string, string> }; spec: { jobLabel?: string; namespaceSelector: { matchNames: string[] }; selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string; interval: string; relabelings?: Obj[]; metricRelabelings?: Obj[] }[] } };
    const svc = find(objects, 'Service') as { metadata: { name: string; namespace: string; labels: Record<string, string> }; spec: { ports: { name: string }[] } };
    assert.equal(sm.metadata.labels['release'], 'kube-prometheus-stack');
    assert.deepEqual(sm.spec.namespaceSelector.matchNames, [svc.metadata.namespace]);
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(svc.metadata.labels[k], v, `the Service carries ${k}=${v}`);
    assert.ok(!objects.some((o) => o['kind'] === 'Service' && o !== (svc as unknown) && Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => ((o['metadata'] as { labels?: Record<string, string> }).labels ?? {})[k] === v)), 'it selects only that Service');
    assert.equal(sm.spec.endpoints.length, 1);
    const endpoint = sm.spec.endpoints[0]!;
    assert.ok(svc.spec.ports.some((p) => p.name === endpoint.port), `the Service has the port ${endpoint.port}`);
    assert.equal(endpoint.path, '/metrics');
    assert.equal(endpoint.interval, '15s');
    assert.deepEqual(endpoint.relabelings, [{ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }]);
    assert.equal(endpoint.metricRelabelings?.length, 1);
    // The Prometheus Operator sets job to the Service's name unless jobLabel is set, and
    // relabelings here must not touch job: that is the job the rules and the dashboard select.
    assert.equal(sm.spec.jobLabel, undefined);
    assert.ok(!(endpoint.relabelings ?? []).some((r) => r['targetLabel'] === 'job'));
    const rulesFile = await readFile(path.join(CHART_DIR, 'files', 'prometheus-rules.yaml'), 'utf8');
    const dashboardFile = await readFile(path.join(CHART_DIR, 'files', 'grafana-dashboard.json'), 'utf8');
    const jobs = new Set([...rulesFile.matchAll(/\bjob="([^"]+)"/g), ...dashboardFile.matchAll(/\bjob=\\"([^"\\]+)\\"/g)].map((m) => m[1]));
    assert.deepEqual([...jobs], [svc.metadata.name], 'every rule and panel selects the job the ServiceMonitor produces');
    assert.ok(!rendered.get('defaults')!.some((o) => o['kind'] === 'ServiceMonitor'), 'off by default');
  });

  test('grafanaDashboard: a ConfigMap the Grafana sidecar loads, holding files/grafana-dashboard.json', async () => {
    const cm = find(rendered.get('monitoring on (ServiceMonitor, dashboard, rules)')!, 'ConfigMap', 'komputer-connector-webhook-dashboard') as { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; data: Record<string, string> };
    assert.equal(cm.metadata.labels['grafana_dashboard'], '1');
    assert.equal(cm.metadata.annotations?.['grafana_folder'], 'Komputer');
    const file = JSON.parse(await readFile(path.join(CHART_DIR, 'files', 'grafana-dashboard.json'), 'utf8')) as unknown;
    assert.deepEqual(JSON.parse(cm.data['komputer-connector-webhook.json']!), file, 'the defaults render the file as it is');
    const other = find(rendered.get('dashboard with other webhook timeouts')!, 'ConfigMap', 'komputer-connector-webhook-dashboard') as { data: Record<string, string> };
    const text = other.data['komputer-connector-webhook.json']!;
    assert.match(text, /vector\(10\) # timeout: webhook\.mutating\.timeoutSeconds/);
    assert.match(text, /vector\(2\) # timeout: webhook\.validating\.timeoutSeconds/);
    assert.ok(!rendered.get('defaults')!.some((o) => o['kind'] === 'ConfigMap'), 'off by default');
  });

  test('prometheusRule: the latency thresholds are half of each webhook\'s timeoutSeconds', () => {
    const expr = (name: string): string => {
      const rule = find(rendered.get(name)!, 'PrometheusRule') as { spec: { groups: { rules: { alert?: string; expr: string }[] }[] } };
      return rule.spec.groups.flatMap((g) => g.rules).find((r) => r.alert === 'KomputerWebhookAdmissionLatencyHigh')!.expr;
    };
    assert.match(expr('prometheusRule on'), /> 2\.5 # threshold: half of webhook\.mutating\.timeoutSeconds/);
    assert.match(expr('prometheusRule on'), /> 2\.5 # threshold: half of webhook\.validating\.timeoutSeconds/);
    assert.match(expr('prometheusRule with other webhook timeouts'), /> 5 # threshold: half of webhook\.mutating\.timeoutSeconds/);
    assert.match(expr('prometheusRule with other webhook timeouts'), /> 0\.5 # threshold: half of webhook\.validating\.timeoutSeconds/);
  });

  test('policy: the ConfigMap the service reads, accepted by its own parser', () => {
    const cm = find(rendered.get('policy entries')!, 'ConfigMap', 'komputer-connector-webhook-policy') as { data: Record<string, string> };
    const parsed = parsePolicyConfig(cm.data['incompatible.yaml']!);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason);
    assert.deepEqual(parsed.config.entries.map((e) => e.id), ['acme']);
    assert.deepEqual([...parsed.config.disabled].sort(), ['atlassian-rovo', 'notion']);
    assert.ok(!rendered.get('defaults')!.some((o) => o['kind'] === 'ConfigMap'), 'no ConfigMap by default');
  });

  test('custom scheduling, resources, image, labels and ports reach the objects', () => {
    const objects = rendered.get('custom scheduling, resources, image, labels')!;
    const deployment = find(objects, 'Deployment') as unknown as Deployment;
    const spec = deployment.spec.template.spec;
    const c = spec.containers[0]!;
    assert.equal(deployment.spec.replicas, 3);
    assert.equal(c.image, `registry.example/komputer/komputer-connector-webhook:v0.1.0@sha256:${'a'.repeat(64)}`);
    assert.equal(c.imagePullPolicy, 'Always');
    assert.deepEqual(spec.imagePullSecrets, [{ name: 'registry-pull' }]);
    assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: 1, memory: '512Mi' } });
    assert.deepEqual(spec.nodeSelector, { 'kubernetes.io/os': 'linux', 'node-role.example/infra': 'true' });
    assert.deepEqual(spec.tolerations, [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }]);
    assert.equal(spec.priorityClassName, 'system-cluster-critical');
    assert.equal(deployment.spec.template.metadata.annotations?.['prometheus.io/scrape'], 'true');
    assert.equal(deployment.spec.template.metadata.labels['tier'], 'admission');
    assert.equal(deployment.spec.template.metadata.labels['generation'], '2');
    assert.equal(c.env.find((e) => e.name === 'LOG_LEVEL')?.value, 'debug');
    assert.deepEqual(c.args.slice(-2), ['--cert-validity', '30d']);
    assert.equal(c.args[c.args.indexOf('--metrics-port') + 1], '9191');
    assert.equal(c.ports.find((p) => p.name === 'metrics')?.containerPort, 9191);
    const svc = find(objects, 'Service') as { spec: { ports: { name: string; port: number }[] } };
    assert.equal(svc.spec.ports.find((p) => p.name === 'metrics')?.port, 9191);
    const sa = find(objects, 'ServiceAccount', 'komputer-connector-webhook') as { metadata: { annotations: Record<string, string> } };
    assert.deepEqual(sa.metadata.annotations, { 'example.com/role': 'webhook', owner: 'platform-team' });
    for (const o of objects) {
      const metadata = o['metadata'] as { labels: Record<string, string>; annotations?: Record<string, string> };
      assert.equal(metadata.labels['team'], 'platform', `${keyOf(o)} has commonLabels`);
      assert.equal(metadata.annotations?.['owner'], 'platform-team', `${keyOf(o)} has commonAnnotations`);
    }
    const [mutating, validating] = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'].map((kind) => find(objects, kind) as unknown as WebhookConfig);
    assert.equal(mutating!.webhooks[0]!.timeoutSeconds, 10);
    assert.equal(mutating!.webhooks[0]!.failurePolicy, 'Fail');
    assert.equal(validating!.webhooks[0]!.failurePolicy, 'Fail');
  });

  test('networking: webhook.port, hostNetwork and dnsPolicy reach the pod; the Service keeps 443', () => {
    const pod = (name: string): PodSpec & { hostNetwork?: boolean; dnsPolicy?: string } => (find(rendered.get(name)!, 'Deployment') as unknown as Deployment).spec.template.spec;
    const defaults = pod('defaults');
    assert.equal(defaults.hostNetwork, undefined);
    assert.equal(defaults.dnsPolicy, undefined);
    assert.equal(defaults.containers[0]!.ports.find((p) => p.name === 'https')?.containerPort, 8443);
    const gke = pod('another HTTPS port (GKE private clusters)');
    const c = gke.containers[0]!;
    assert.equal(c.args[c.args.indexOf('--port') + 1], '10250');
    assert.equal(c.ports.find((p) => p.name === 'https')?.containerPort, 10250);
    assert.equal(gke.hostNetwork, undefined);
    const svc = find(rendered.get('another HTTPS port (GKE private clusters)')!, 'Service') as { spec: { ports: { name: string; port: number; targetPort: string }[] } };
    assert.deepEqual(svc.spec.ports.find((p) => p.name === 'https'), { name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' });
    const eks = pod('hostNetwork (EKS with a custom CNI)');
    assert.equal(eks.hostNetwork, true);
    assert.equal(eks.dnsPolicy, 'ClusterFirstWithHostNet');
    const e = eks.containers[0]!;
    assert.deepEqual([e.args[e.args.indexOf('--port') + 1], e.args[e.args.indexOf('--metrics-port') + 1]], ['10260', '10261']);
    assert.deepEqual(e.ports.map((p) => [p.name, p.containerPort]), [['https', 10260], ['metrics', 10261]]);
    assert.equal(pod('hostNetwork with an explicit dnsPolicy').dnsPolicy, 'Default');
  });

  test('webhook.url: clientConfig.url, no in-cluster workload', () => {
    const objects = rendered.get('service outside the cluster (webhook.url)')!;
    const [mutating, validating] = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'].map((kind) => find(objects, kind) as unknown as WebhookConfig);
    assert.deepEqual(mutating!.webhooks[0]!.clientConfig, { url: 'https://127.0.0.1:8443/mutate/pods' });
    assert.deepEqual(validating!.webhooks[0]!.clientConfig, { url: 'https://127.0.0.1:8443/validate' });
  });
});

describe('install, upgrade, uninstall with the service running', () => {
  let port = 0;
  let metricsPort = 0;
  let certs: GeneratedCertificates;
  const installArgs = (): string[] => [
    ...sets(`webhook.url=https://127.0.0.1:${port}`, 'secretMirroring.enabled=true', 'policy.disableBuiltins={atlassian-rovo}'),
    // --set-string: "true"/numbers stay strings in labels.
    '--set-string',
    'commonLabels.komputer\\.ai/e2e=helm',
  ];
  let installedKeys: string[] = [];
  let bundlesAfterInstall: string[] = [];
  let caAfterInstall = '';

  test('helm install, then the service (self-managed certificates) patches the caBundle and agent pods are injected', async () => {
    [port, metricsPort] = [await freePort(), await freePort()];
    certs = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], caCommonName: 'unused-files-mode-ca' });
    const install = await h(['install', RELEASE, CHART_DIR, '-n', NS, ...installArgs()]);
    log(`helm install:\n${install.stdout.trim().split('\n').slice(0, 6).join('\n')}`);
    assert.match(install.stdout, /STATUS: deployed/);
    const objects = await releaseObjects();
    installedKeys = objects.map(keyOf).sort();
    log(`release ${RELEASE} rendered ${installedKeys.length} objects: ${installedKeys.join(', ')}`);
    for (const kind of ['ServiceAccount', 'Secret', 'ConfigMap', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      assert.ok(objects.some((o) => o['kind'] === kind), `the release has a ${kind}`);
    }
    assert.equal(objects.filter((o) => o['kind'] === 'ClusterRole').length, 2, 'both ClusterRoles (mirroring on)');
    assert.ok((await webhookBundles()).every((b) => b === ''), 'installed without a caBundle');

    const kubeconfig = await writeServiceAccountKubeconfig(cp, { name: SERVICE_ACCOUNT, namespace: NS });
    const dir = path.join(cp.dir, 'service');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    service = await createWebhookService({
      port,
      metricsPort,
      certs,
      kubeconfig,
      dir,
      serviceNamespace: NS,
      // As the chart's Deployment runs it (--cert-mode self, --mirror-shared-secrets), plus
      // the local process's IP in the certificate.
      extraArgs: ['--cert-mode', 'self', '--cert-ip-addresses', '127.0.0.1', '--identity', 'helm-e2e', '--mirror-shared-secrets'],
      readyProbe: 'metrics',
    });
    await service.start(); // /readyz: caches synced and the served certificate chains to the caBundle

    bundlesAfterInstall = await webhookBundles();
    caAfterInstall = await secretCa();
    assert.ok(caAfterInstall.includes('BEGIN CERTIFICATE'), 'the service filled the Secret the chart rendered');
    assert.equal(bundlesAfterInstall.length, 3, 'mutate, validate and validate-shared (webhook.validating.sharedConnectors, on by default)');
    for (const b of bundlesAfterInstall) assert.ok(b.includes(caAfterInstall.trim()), 'the caBundle holds the service\'s CA');
    assert.equal(await metric(metricsPort, 'komputer_webhook_policy_config_valid'), 1, 'the chart\'s policy ConfigMap is valid');

    await applyYaml(cp, toYaml([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: TEAM, labels: { 'komputer.ai/connector-injection': 'enabled' } } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: TEAM } },
    ]));
    await applyYaml(cp, toYaml([connectorObject({ namespace: TEAM, name: 'github', sharedWith: [] }), agentObject({ namespace: TEAM, name: AGENT, connectors: ['github'] })] as Obj[]));
    let last: PodResult | undefined;
    const ms = await pollUntil('an injected agent pod', async () => {
      last = await createAgentPod();
      return { ok: last.injected, detail: last.error ?? 'created, not injected' };
    }, { timeoutMs: 20_000, intervalMs: 250 });
    log(`first injected agent pod ${ms} ms after the service was ready`);

    // The chart's policy ConfigMap is in force: the built-in atlassian-rovo entry is off
    // (policy.disableBuiltins), notion still denies token auth.
    const connector = (name: string, url: string): string =>
      JSON.stringify({ apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerConnector', metadata: { name, namespace: TEAM }, spec: { type: 'remote', service: name, url, authType: 'token' } });
    const rovo = await k(['create', '--dry-run=server', '-f', '-'], { input: connector('rovo', 'https://mcp.atlassian.com/v1/mcp'), allowFailure: true });
    assert.equal(rovo.code, 0, `atlassian-rovo is disabled by the chart's policy: ${rovo.stderr}`);
    const notion = await k(['create', '--dry-run=server', '-f', '-'], { input: connector('notion', 'https://mcp.notion.com/mcp'), allowFailure: true });
    assert.notEqual(notion.code, 0, 'notion (built-in) is still denied');
    assert.match(notion.stderr, /validate\.connectors\.komputer\.ai.*denied/);
  });

  test('helm test hook: under its own RBAC, check --wait is healthy, then broken to the deadline, then broken and healthy again; it reads no Secret and can store nothing', async () => {
    assert.ok(service, 'installed');
    const SA = 'komputer-connector-webhook-check';
    const user = `system:serviceaccount:${NS}:${SA}`;
    const hooks = parseManifests(await helm.template([...installArgs(), '--show-only', 'templates/tests/check.yaml']));
    for (const o of hooks) assert.equal(((o['metadata'] as { annotations?: Record<string, string> }).annotations ?? {})['helm.sh/hook'], 'test', `${keyOf(o)} is a test hook`);
    const pod = find(hooks, 'Pod') as unknown as { spec: { serviceAccountName: string; restartPolicy: string; containers: { image: string; args: string[] }[] } };
    assert.equal(pod.spec.serviceAccountName, SA);
    assert.equal(pod.spec.restartPolicy, 'Never');
    assert.deepEqual(pod.spec.containers[0]!.args, ['check', '--wait=2m', '--service-namespace', NS], 'webhook.url: no --endpoint');
    const inCluster = find(parseManifests(await helm.template(['--show-only', 'templates/tests/check.yaml'])), 'Pod') as unknown as typeof pod;
    assert.deepEqual(inCluster.spec.containers[0]!.args, ['check', '--wait=2m', '--service-namespace', NS, '--endpoint', `komputer-connector-webhook.${NS}.svc:443`]);
    assert.equal(inCluster.spec.containers[0]!.image, 'komputer-connector-webhook:dev');
    // The pod cannot run here (no node): apply its RBAC and admission policy for real, and
    // run the same command with the ServiceAccount's credentials.
    const rbac = hooks.filter((o) => o['kind'] !== 'Pod');
    await applyYaml(cp, toYaml(rbac));
    try {
      for (const [verb, resource, extra, want] of [
        ['get', 'secrets', ['-n', NS], 'no'],
        ['get', `secret/${TLS_SECRET}`, ['-n', NS], 'no'],
        ['list', 'secrets', ['-A'], 'no'],
        ['list', 'pods', ['-A'], 'yes'],
        ['list', 'komputeragents.komputer.komputer.ai', ['-A'], 'yes'],
        ['get', 'mutatingwebhookconfigurations/komputer-connector-webhook', [], 'yes'],
        ['get', 'mutatingwebhookconfigurations/other', [], 'no'],
        ['delete', 'pods', ['-n', TEAM], 'no'],
        ['update', 'komputerconnectors.komputer.komputer.ai', ['-n', TEAM], 'no'],
        ['patch', 'mutatingwebhookconfigurations/komputer-connector-webhook', [], 'no'],
      ] as const) {
        const r = await k(['auth', 'can-i', verb, resource, ...extra, `--as=${user}`], { allowFailure: true });
        assert.equal(r.stdout.trim(), want, `${user} can-i ${verb} ${resource} ${extra.join(' ')}`);
      }
      const saKubeconfig = await writeServiceAccountKubeconfig(cp, { name: SA, namespace: NS });
      const pod = JSON.stringify({ ...agentPod, metadata: { ...agentPod.metadata, generateName: 'hook-probe-' } });
      // The admission policy takes a moment to be in force after it is created.
      await pollUntil('the dry-run-only policy to refuse a real create', async () => {
        const r = await kubectl(saKubeconfig, ['create', '-n', TEAM, '-f', '-'], { input: pod, allowFailure: true });
        return { ok: r.code !== 0 && /may only send dry runs/.test(r.stderr), detail: r.stdout + r.stderr };
      }, { timeoutMs: 20_000, intervalMs: 250 });
      const dry = await kubectl(saKubeconfig, ['create', '--dry-run=server', '-n', TEAM, '-f', '-'], { input: pod, allowFailure: true });
      assert.equal(dry.code, 0, `a dry run is allowed: ${dry.stderr}`);
      // The hook's own Pod (in-cluster render) is accepted in the release namespace, which
      // enforces the restricted Pod Security Standard, now that its ServiceAccount exists.
      const hookPod = await k(['apply', '--server-side', '--dry-run=server', '--validate=strict', '--field-manager=helm-e2e-dry-run', '-f', '-'], { input: toYaml([inCluster as unknown as Obj]), allowFailure: true });
      assert.equal(hookPod.code, 0, hookPod.stderr);
      assert.deepEqual(warningsOf(hookPod), []);

      const healthy = await runCheck(saKubeconfig, ['--wait=60s', '--service-namespace', NS, '-o', 'json']);
      assert.equal(healthy.code, 0, `check under the hook's RBAC: ${healthy.stderr}${healthy.stdout}`);
      const report = JSON.parse(healthy.stdout) as { checks: { id: string; status: string; message: string }[] };
      assert.ok(!report.checks.some((c) => /forbidden/i.test(c.message)), `nothing forbidden: ${JSON.stringify(report.checks.filter((c) => /forbidden/i.test(c.message)))}`);
      log(`check under the helm test hook's RBAC: healthy, ${report.checks.length} lines${healthy.stderr ? `; ${healthy.stderr.trim()}` : ''}`);

      const broken = agentObject({ namespace: TEAM, name: 'hook-broken', connectors: ['no-such-connector'] });
      await applyYaml(cp, toYaml([broken as Obj]));
      let started = Date.now();
      const deadline = await runCheck(saKubeconfig, ['--wait=5s', '--service-namespace', NS, '-o', 'json']);
      assert.equal(deadline.code, 1, deadline.stderr);
      assert.ok(Date.now() - started >= 5_000);
      assert.match(deadline.stderr, /attempt 1: \d+ error\(s\): .*agents\/references/);
      started = Date.now();
      const waiting = startCheck(saKubeconfig, ['--wait=90s', '--service-namespace', NS, '-o', 'json']);
      // Fixed only once check has seen it broken (a run takes seconds on a loaded machine).
      await pollUntil('check --wait to report a broken attempt', async () => ({ ok: /attempt 1: /.test(waiting.stderr()), detail: waiting.stderr() }), { timeoutMs: 60_000, intervalMs: 100 });
      const fixedAt = Date.now();
      await k(['delete', 'komputeragent', 'hook-broken', '-n', TEAM]);
      const recovered = await waiting.done;
      assert.equal(recovered.code, 0, `${recovered.stderr}${recovered.stdout}`);
      assert.match(recovered.stderr, /attempt 1: .*agents\/references/);
      assert.match(recovered.stderr, /healthy at attempt \d+\n$/);
      log(`FIGURE helm test's check --wait: broken ${fixedAt - started} ms, healthy ${Date.now() - fixedAt} ms after the fix`);
    } finally {
      await k(['delete', 'komputeragent', 'hook-broken', '-n', TEAM, '--ignore-not-found']);
      await k(['delete', '--ignore-not-found', '-f', '-'], { input: toYaml(rbac) });
    }
  });

  for (const [n, mode] of [[2, 'server-side apply (the default)'], [3, 'client-side apply (--server-side=false)']] as const) {
    test(`helm upgrade with ${mode} while agent pods are being created: none refused, all injected, caBundle and CA kept`, async () => {
      assert.ok(service, 'installed');
      const timeout = 5 + n; // a change on the webhooks themselves
      const loop = podLoop(2);
      await sleep(1_000);
      const upgradeStarted = Date.now();
      const upgrade = await h(['upgrade', RELEASE, CHART_DIR, '-n', NS, ...installArgs(), ...sets(`webhook.mutating.timeoutSeconds=${timeout}`, `commonLabels.revision=r${n}`), ...(n === 3 ? ['--server-side=false'] : [])]);
      const upgradeEnded = Date.now();
      await sleep(2_000);
      const results = await loop.stop();
      const s = summary(results);
      const during = results.filter((r) => r.at >= upgradeStarted && r.at <= upgradeEnded).length;
      log(`FIGURE helm upgrade (${mode}) took ${upgradeEnded - upgradeStarted} ms; ${s.created} agent pods created around it (${during} during it), ${s.refused.length} refused, ${s.notInjected} not injected`);
      assert.match(upgrade.stdout, new RegExp(`REVISION: ${n}`));
      assert.deepEqual(s.refused, [], 'no failed admission across the upgrade');
      assert.equal(s.notInjected, 0);
      assert.ok(during > 0, `pods were being created during the upgrade (${during})`);

      const configs = await webhookConfigs();
      assert.equal(configs[0]!.webhooks[0]!.timeoutSeconds, timeout, 'the upgrade changed timeoutSeconds');
      for (const c of configs) assert.equal(c.metadata.labels['revision'], `r${n}`, 'and the labels');
      assert.deepEqual(await webhookBundles(), bundlesAfterInstall, 'the caBundle the service patched survived the upgrade');
      assert.equal(await secretCa(), caAfterInstall, 'the self-managed CA survived the upgrade');
      const managers = JSON.parse((await k(['get', 'mutatingwebhookconfiguration', WEBHOOK_CONFIG, '--show-managed-fields', '-o', 'json'])).stdout) as { metadata: { managedFields: { manager: string; operation: string }[] } };
      log(`field managers of the MutatingWebhookConfiguration: ${managers.metadata.managedFields.map((f) => `${f.manager} (${f.operation})`).join(', ')}`);
    });
  }

  test('helm uninstall: nothing the chart rendered remains, and agent pods are created without webhook errors', async () => {
    assert.ok(installedKeys.length > 0, 'installed');
    const objects = await releaseObjects();
    const keys = objects.map(keyOf).sort();
    assert.deepEqual(keys, installedKeys, 'the upgrades rendered the same objects');
    const uninstall = await h(['uninstall', RELEASE, '-n', NS, '--wait']);
    log(`helm uninstall: ${uninstall.stdout.trim()}`);
    assert.match(uninstall.stdout, /uninstalled/);

    const left: string[] = [];
    for (const o of objects) {
      const metadata = o['metadata'] as { name: string; namespace?: string };
      const resource = `${String(o['kind'])}.${String(o['apiVersion']).includes('/') ? String(o['apiVersion']).split('/')[0] : ''}`.replace(/\.$/, '');
      const r = await k(['get', resource, metadata.name, ...(metadata.namespace ? ['-n', metadata.namespace] : []), '--ignore-not-found', '-o', 'name']);
      if (r.stdout.trim() !== '') left.push(r.stdout.trim());
    }
    assert.deepEqual(left, [], `objects of the release left behind (checked: ${keys.join(', ')})`);
    // Whatever the chart might have rendered: no webhook configuration at all is left, no
    // cluster-wide RBAC of the release, no release record.
    assert.equal((await k(['get', 'mutatingwebhookconfigurations,validatingwebhookconfigurations', '-o', 'name'])).stdout.trim(), '');
    assert.equal((await k(['get', 'clusterroles,clusterrolebindings', '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name'])).stdout.trim(), '');
    assert.equal((await k(['get', 'all,secrets,configmaps,roles,rolebindings,serviceaccounts,poddisruptionbudgets', '-n', NS, '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name'])).stdout.trim(), '');
    assert.equal((await h(['list', '-A', '-q'])).stdout.trim(), '');
    assert.equal((await k(['get', 'secrets', '-n', NS, '-l', 'owner=helm', '-o', 'name'])).stdout.trim(), '');
    const runtime = (await k(['get', 'leases', '-n', NS, '-o', 'name'])).stdout.trim();
    log(`left in ${NS} by the running service, not by the chart: ${runtime || 'nothing'}`);

    // With the service gone too, an agent pod in an enabled namespace is created, untouched.
    await service?.stop();
    const result = await k(['create', '-n', TEAM, '-o', 'json', '-f', '-'], { input: JSON.stringify(agentPod), allowFailure: true });
    assert.equal(result.code, 0, `agent pod after uninstall: ${result.stderr}`);
    assert.deepEqual(warningsOf(result), []);
    const pod = JSON.parse(result.stdout) as { metadata: { annotations?: Record<string, string> } };
    assert.equal(pod.metadata.annotations?.[INJECTED], undefined, 'not injected: no webhook is called');
  });
});
