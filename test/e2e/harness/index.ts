// The e2e fixture: one real control plane with the platform's CRDs (or the project's own
// when ../shared is not beside the repository) and the project's manifests installed, and the service running as a child process under its own service
// account. Each test file (its own process under `node --test`) starts one:
//
//   import { after, before, test } from 'node:test';
//   import { startEnvironment, stopEnvironment, type Environment } from './harness/index.ts';
//   let env: Environment;
//   before(async () => { env = await startEnvironment(); });
//   after(stopEnvironment);
//
// Logs of the last run are copied to .e2e/logs/<name>/ (git-ignored) when it stops;
// E2E_KEEP=1 keeps the whole temp dir instead of removing it.

import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { generateCertificates, type GeneratedCertificates } from '../../../src/certs/generate.ts';
import { startControlPlane, type ControlPlane } from './controlplane.ts';
import { abortNode, NODE_NETWORK, prepareNodeHost, startNode, type Node, type NodeHost } from './node.ts';
import {
  FIELD_MANAGER,
  SERVICE_ACCOUNT,
  SERVICE_NAMESPACE,
  applyYaml,
  installCrds,
  installManifests,
  toYaml,
  writeServiceAccountKubeconfig,
} from './install.ts';
import { kubectl, type KubectlOptions, type KubectlResult } from './kubectl.ts';
import { elapsed, log } from './log.ts';
import { logsRoot, nodeCrdFs, resolveCrdSource, type CrdSource } from './paths.ts';
import { freePort } from './ports.ts';
import { setShutdownHandler } from './process.ts';
import { createWebhookService, waitForWebhookCalls, type WebhookService } from './webhook.ts';

export { SERVICE_ACCOUNT, SERVICE_NAMESPACE, FIELD_MANAGER } from './install.ts';
export { kubectl, warningsOf, KubectlError, type KubectlResult, type KubectlOptions } from './kubectl.ts';
export type { ControlPlane } from './controlplane.ts';
export { NODE_IMAGES, NODE_NETWORK, type Node } from './node.ts';
export type { CrdSource, CrdSourceKind } from './paths.ts';
export type { WebhookService } from './webhook.ts';

export const INJECTION_LABEL = 'komputer.ai/connector-injection';

export interface EnvironmentOptions {
  /** Start the service and wait for the canary (default true). */
  readonly service?: boolean;
  /** Extra flags for `serve`. */
  readonly serviceArgs?: readonly string[];
  /** Extra environment for the service. */
  readonly serviceEnv?: NodeJS.ProcessEnv;
  /** Name of the log folder under .e2e/logs (default: the test file's name). */
  readonly name?: string;
  /**
   * How the harness checks the service's readiness: `tls` (default, /readyz over HTTPS
   * verified with the harness CA) or `metrics` (/readyz on the metrics port; for a service
   * that serves a certificate of its own CA, e.g. `--cert-mode self`).
   */
  readonly serviceReadyProbe?: 'tls' | 'metrics';
  /**
   * Which CRDs: `default` (KOMPUTER_CRD_DIR, else the platform's beside the repository,
   * else the project's own component) or `project` (the project's own component always,
   * for behaviour that needs a field the platform's published CRDs lack).
   */
  readonly crds?: 'default' | 'project';
  /**
   * A real node (containerd, kubelet, scheduler, controller-manager, kube-proxy unless
   * `kubeProxy: false`) so that pods run. One node cluster per machine: a run waits for
   * another to finish. Needs root and test/node/packages.sh's packages.
   */
  readonly node?: boolean | { readonly kubeProxy?: boolean };
  /**
   * Install manifests/base (webhooks pointed at the local service) (default true). False
   * for suites that install the chart themselves; implies `service: false`.
   */
  readonly manifests?: boolean;
}

export interface ExtraServiceOptions {
  /** Short name: log file `webhook-<name>.log`, working dir `<temp dir>/<name>`. */
  readonly name: string;
  /** HTTPS port (default: a free one; pass the main service's port to take its place). */
  readonly port?: number;
  /** Metrics port (default: a free one). */
  readonly metricsPort?: number;
  readonly serviceArgs?: readonly string[];
  readonly serviceEnv?: NodeJS.ProcessEnv;
  /** Node/V8 flags (default: the image's, SERVE_NODE_FLAGS). */
  readonly nodeFlags?: readonly string[];
  readonly readyProbe?: 'tls' | 'metrics';
  /** Budget for /readyz at each start (default 30 s). */
  readonly readyTimeoutMs?: number;
  /** The compiled CLI to run (default: this checkout's). */
  readonly entryPoint?: string;
}

export interface Timings {
  /** etcd + kube-apiserver until /readyz. */
  readonly controlPlaneMs: number;
  readonly installMs: number;
  /** Service start until /readyz, plus the canary. */
  readonly serviceMs: number;
  /** Node components until the node is Ready and the controllers run (0 without a node). */
  readonly nodeMs: number;
  readonly totalMs: number;
}

export interface Environment {
  readonly controlPlane: ControlPlane;
  /** The node, when started with `node`. */
  readonly node: Node | undefined;
  /** Admin kubeconfig (system:masters). */
  readonly kubeconfig: string;
  /** Kubeconfig of the service's ServiceAccount (what the service runs with). */
  readonly serviceKubeconfig: string;
  /** The webhook's serving certificate and its CA (the webhooks' caBundle). */
  readonly certs: GeneratedCertificates;
  /** The service; undefined when started with `service: false`. */
  readonly service: WebhookService | undefined;
  readonly serviceNamespace: string;
  readonly serviceAccount: string;
  /** The CRDs installed: `kind` says whose, so tests can branch their expectations on it. */
  readonly crds: CrdSource;
  readonly timings: Timings;
  /** Runs the built kubectl as admin. */
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** Server-side apply (as admin) of YAML text or objects. */
  apply(manifests: string | object | readonly object[]): Promise<string>;
  /**
   * Creates (applies) a namespace with a default ServiceAccount (no controller-manager runs
   * here to make one). `enabled` sets komputer.ai/connector-injection=enabled.
   */
  createNamespace(name: string, options?: { enabled?: boolean; labels?: Record<string, string> }): Promise<void>;
  /**
   * Another instance of the service (e.g. a second replica with its own --identity), with
   * the same service account and certificates, not started yet. Stopped with the
   * environment; its log is kept as webhook-<name>.log.
   */
  createService(options: ExtraServiceOptions): Promise<WebhookService>;
}

let current: Promise<Environment> | undefined;
let stopCurrent: ((keep: boolean) => Promise<void>) | undefined;

/** Starts the environment once per process; later calls return the same one. */
export function startEnvironment(options: EnvironmentOptions = {}): Promise<Environment> {
  // Ctrl-C / SIGTERM: stop in order and keep the logs (the children are stopped regardless).
  setShutdownHandler(stopEnvironment);
  current ??= start(options).catch((error: unknown) => {
    current = undefined;
    throw error;
  });
  return current;
}

/** Stops the service, the API server and etcd, keeps the logs, removes the temp dir. */
export async function stopEnvironment(): Promise<void> {
  const pending = current;
  current = undefined;
  if (pending === undefined) return;
  try {
    await pending;
  } catch {
    return; // start failed and cleaned up after itself
  }
  await stopCurrent?.(process.env['E2E_KEEP'] === '1');
  stopCurrent = undefined;
}

async function start(options: EnvironmentOptions): Promise<Environment> {
  const started = Date.now();
  const name = options.name ?? path.basename(process.argv[1] ?? 'e2e').replace(/\.(test\.)?ts$/, '');
  // Before the control plane, so a bad KOMPUTER_CRD_DIR fails at once.
  const crds = resolveCrdSource(process.env, nodeCrdFs, { use: options.crds ?? 'default' });
  // Certificates first: they do not depend on the cluster.
  const certsPromise = generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], caCommonName: 'komputer-e2e-webhook-ca' });
  const host: NodeHost | undefined = options.node === undefined || options.node === false ? undefined : await prepareNodeHost();
  let controlPlane: ControlPlane;
  try {
    controlPlane = await startControlPlane(
      host === undefined
        ? {}
        : { node: { address: NODE_NETWORK.address, port: NODE_NETWORK.apiPort, serviceCidr: NODE_NETWORK.serviceCidr, serviceIp: NODE_NETWORK.serviceIp } },
    );
  } catch (error) {
    host?.release();
    throw error;
  }
  let service: WebhookService | undefined;
  let node: Node | undefined;
  const extras: { name: string; service: WebhookService }[] = [];
  const stop = async (keep: boolean): Promise<void> => {
    for (const extra of extras) await extra.service.stop();
    await service?.stop();
    // The node lock also guards the API server's fixed address (the node IP, port 6443), and
    // the node's stop releases it: stop the API server first, or a run waiting for the lock
    // starts while the port is still taken and its API server fails to bind.
    if (host !== undefined) await controlPlane.components.components.find((c) => c.name === 'kube-apiserver')?.stop();
    if (node !== undefined) await node.stop();
    else if (host !== undefined) await abortNode(controlPlane, host);
    await saveLogs(controlPlane, name, extras.map((e) => ({ from: e.service.logFile, to: `webhook-${e.name}.log` })));
    await controlPlane.stop({ keepDir: keep });
  };
  try {
    const nodeStarted = Date.now();
    if (host !== undefined) {
      node = await startNode(controlPlane, host, typeof options.node === 'object' && options.node.kubeProxy === false ? { kubeProxy: false } : {});
    }
    const nodeMs = host === undefined ? 0 : Date.now() - nodeStarted;
    const certs = await certsPromise;
    const [port, metricsPort] = [await freePort(), await freePort()];

    const installStarted = Date.now();
    await installCrds(controlPlane, crds);
    const manifests = options.manifests !== false;
    if (manifests) await installManifests(controlPlane, { port, caCert: certs.caCert });
    const serviceKubeconfig = manifests ? await writeServiceAccountKubeconfig(controlPlane) : '';
    const installMs = Date.now() - installStarted;

    const serviceStarted = Date.now();
    if (options.service !== false && manifests) {
      service = await createWebhookService({
        port,
        metricsPort,
        certs,
        kubeconfig: serviceKubeconfig,
        dir: controlPlane.dir,
        extraArgs: options.serviceArgs ?? [],
        env: options.serviceEnv ?? {},
        ...(options.serviceReadyProbe === undefined ? {} : { readyProbe: options.serviceReadyProbe }),
      });
      await service.start();
      await waitForWebhookCalls(controlPlane, { service });
    }
    const serviceMs = Date.now() - serviceStarted;

    const admin = controlPlane.kubeconfig;
    const env: Environment = {
      controlPlane,
      node,
      kubeconfig: admin,
      serviceKubeconfig,
      certs,
      service,
      serviceNamespace: SERVICE_NAMESPACE,
      serviceAccount: SERVICE_ACCOUNT,
      crds,
      timings: { controlPlaneMs: controlPlane.startupMs, installMs, serviceMs, nodeMs, totalMs: Date.now() - started },
      kubectl: (args, kubectlOptions) => kubectl(admin, args, kubectlOptions),
      apply: (manifests) =>
        applyYaml(controlPlane, typeof manifests === 'string' ? manifests : toYaml((Array.isArray(manifests) ? manifests : [manifests]) as Record<string, unknown>[])),
      async createNamespace(namespace, nsOptions = {}) {
        const labels: Record<string, string> = { ...nsOptions.labels };
        if (nsOptions.enabled === true) labels[INJECTION_LABEL] = 'enabled';
        await applyYaml(
          controlPlane,
          toYaml([
            { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels } },
            { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace } },
          ]),
        );
      },
      async createService(extra) {
        if (!/^[a-z0-9-]+$/.test(extra.name) || extras.some((e) => e.name === extra.name)) throw new Error(`bad or duplicate service name ${JSON.stringify(extra.name)}`);
        const dir = path.join(controlPlane.dir, extra.name);
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const created = await createWebhookService({
          name: `webhook-${extra.name}`,
          port: extra.port ?? (await freePort()),
          metricsPort: extra.metricsPort ?? (await freePort()),
          certs,
          kubeconfig: serviceKubeconfig,
          dir,
          extraArgs: extra.serviceArgs ?? [],
          env: extra.serviceEnv ?? {},
          ...(extra.nodeFlags === undefined ? {} : { nodeFlags: extra.nodeFlags }),
          ...(extra.readyProbe === undefined ? {} : { readyProbe: extra.readyProbe }),
          ...(extra.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: extra.readyTimeoutMs }),
          ...(extra.entryPoint === undefined ? {} : { entryPoint: extra.entryPoint }),
        });
        extras.push({ name: extra.name, service: created });
        return created;
      },
    };
    stopCurrent = stop;
    log(
      `environment ready in ${elapsed(started)} (control plane ${(env.timings.controlPlaneMs / 1000).toFixed(1)}s, ` +
        `${node === undefined ? '' : `node ${(nodeMs / 1000).toFixed(1)}s, `}install ${(installMs / 1000).toFixed(1)}s, service ${(serviceMs / 1000).toFixed(1)}s); KUBECONFIG=${admin}`,
    );
    return env;
  } catch (error) {
    await stop(false).catch((stopError: unknown) => log(`clean-up after failed start failed: ${String(stopError)}`));
    throw error;
  }
}

async function saveLogs(controlPlane: ControlPlane, name: string, more: readonly { from: string; to: string }[] = []): Promise<void> {
  const target = path.join(logsRoot, name);
  try {
    await rm(target, { recursive: true, force: true });
    await mkdir(target, { recursive: true });
    await controlPlane.components.saveLogs(target);
    for (const file of ['webhook.log', 'manifests.yaml', 'crds.txt']) {
      await copyFile(path.join(controlPlane.dir, file), path.join(target, file)).catch(() => undefined);
    }
    for (const { from, to } of more) await copyFile(from, path.join(target, to)).catch(() => undefined);
    log(`logs kept in ${path.relative(process.cwd(), target) || target}`);
  } catch (error) {
    log(`could not keep logs in ${target}: ${String(error)}`);
  }
}
