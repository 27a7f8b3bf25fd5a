// Runs the service (dist/src/cli/main.js serve) as a child process with its own service
// account's kubeconfig, and proves the API server really calls it (canary).

import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import type { GeneratedCertificates } from '../../../src/certs/generate.ts';
import { waitUntil, type ControlPlane } from './controlplane.ts';
import { FIELD_MANAGER, SERVICE_NAMESPACE, applyYaml, toYaml } from './install.ts';
import { kubectl, warningsOf } from './kubectl.ts';
import { elapsed, log } from './log.ts';
import { repoRoot, serviceEntryPoint } from './paths.ts';
import { SERVE_NODE_FLAGS } from '../../../src/server/node-flags.ts';
import { startProcess, type ExitStatus, type ManagedProcess } from './process.ts';

/** The Node the project pins (node_modules/.bin/node, what `npx node` runs). */
export const projectNode = path.join(repoRoot, 'node_modules', '.bin', 'node');

export interface WebhookServiceOptions {
  /** HTTPS port of the admission endpoints and /healthz, /readyz. */
  readonly port: number;
  readonly metricsPort: number;
  readonly certs: GeneratedCertificates;
  /** Kubeconfig the service uses (its own service account). */
  readonly kubeconfig: string;
  /** Directory for tls.crt/tls.key/ca.crt and the log file. */
  readonly dir: string;
  readonly serviceNamespace?: string;
  readonly extraArgs?: readonly string[];
  /** Node/V8 flags before the entry point (default: the image's, SERVE_NODE_FLAGS). */
  readonly nodeFlags?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Budget for /readyz (default 30 s). */
  readonly readyTimeoutMs?: number;
  /**
   * How start() checks readiness: `tls` (default) GETs https://127.0.0.1:<port>/readyz
   * verifying against the harness CA; `metrics` GETs /readyz on the plain-HTTP metrics port
   * (for a service serving a certificate of its own CA, e.g. --cert-mode self).
   */
  readonly readyProbe?: 'tls' | 'metrics';
  /** Name in logs (default `webhook`), e.g. for a second replica. */
  readonly name?: string;
  /** The compiled CLI to run (default: this checkout's dist/src/cli/main.js; the bench's baseline builds run their own). */
  readonly entryPoint?: string;
}

export interface WebhookService {
  readonly port: number;
  readonly metricsPort: number;
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly certDir: string;
  /** stdout+stderr of every run of the service, appended. */
  readonly logFile: string;
  /** The running process, if any. */
  readonly process: ManagedProcess | undefined;
  /** Starts it (again, on the same ports) and waits for /readyz = 200. */
  start(): Promise<void>;
  /** SIGTERM, then SIGKILL after the grace period. */
  stop(): Promise<void>;
  /** Sends `signal` (e.g. SIGKILL: a crash) and waits until the process has exited. */
  kill(signal: NodeJS.Signals): Promise<ExitStatus | undefined>;
  /** Last lines of the service's output. */
  tail(lines?: number): string;
}

type Get = typeof httpRequest;

function get(request: Get, url: string, options: { ca?: string; timeout: number }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** GET over plain HTTP (the metrics port). */
export function httpGet(url: string, timeoutMs = 3_000): Promise<{ status: number; body: string }> {
  return get(httpRequest, url, { timeout: timeoutMs });
}

/** GET over HTTPS, verifying the server against `ca`. */
export function httpsGet(url: string, ca: string, timeoutMs = 3_000): Promise<{ status: number; body: string }> {
  return get(httpsRequest as Get, url, { ca, timeout: timeoutMs });
}

export async function createWebhookService(options: WebhookServiceOptions): Promise<WebhookService> {
  const entryPoint = options.entryPoint ?? serviceEntryPoint;
  if (!existsSync(entryPoint)) {
    throw new Error(`${path.relative(repoRoot, entryPoint)} is missing: run \`npm run build\` first`);
  }
  const certDir = path.join(options.dir, 'webhook-certs');
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  await writeFile(path.join(certDir, 'tls.crt'), options.certs.cert, { mode: 0o600 });
  await writeFile(path.join(certDir, 'tls.key'), options.certs.key, { mode: 0o600 });
  await writeFile(path.join(certDir, 'ca.crt'), options.certs.caCert, { mode: 0o600 });
  const logFile = path.join(options.dir, 'webhook.log');
  const url = `https://127.0.0.1:${options.port}`;
  const args = [
    ...(options.nodeFlags ?? SERVE_NODE_FLAGS),
    entryPoint,
    'serve',
    // Files from the harness CA (the caBundle the harness put in the webhook
    // configurations); the self-managed mode has its own e2e test.
    '--cert-mode',
    'files',
    '--cert-dir',
    certDir,
    '--drain-ms',
    '300',
    '--host',
    '127.0.0.1',
    '--port',
    String(options.port),
    '--metrics-host',
    '127.0.0.1',
    '--metrics-port',
    String(options.metricsPort),
    '--kubeconfig',
    options.kubeconfig,
    '--service-namespace',
    options.serviceNamespace ?? SERVICE_NAMESPACE,
    ...(options.extraArgs ?? []),
  ];
  let current: ManagedProcess | undefined;
  let runs = 0;

  const service: WebhookService = {
    port: options.port,
    metricsPort: options.metricsPort,
    url,
    certDir,
    logFile,
    get process() {
      return current;
    },
    async start() {
      if (current?.isRunning === true) return;
      runs++;
      const started = Date.now();
      const shown = args.map((a) => (a.startsWith(`${repoRoot}${path.sep}`) ? path.relative(repoRoot, a) : a));
      log(`starting the ${options.name ?? 'service'} (run ${runs}): node ${shown.join(' ')}`);
      const child = startProcess({
        name: options.name ?? 'webhook',
        command: projectNode,
        args,
        cwd: repoRoot,
        logFile,
        env: {
          ...process.env,
          LOG_LEVEL: 'debug',
          // The service must not pick up the developer's own cluster by accident.
          KUBECONFIG: options.kubeconfig,
          ...options.env,
        },
      });
      current = child;
      try {
        await waitUntil(
          options.readyProbe === 'metrics' ? `service http://127.0.0.1:${options.metricsPort}/readyz` : `service ${url}/readyz`,
          async () => {
            try {
              const answer =
                options.readyProbe === 'metrics'
                  ? await httpGet(`http://127.0.0.1:${options.metricsPort}/readyz`)
                  : await httpsGet(`${url}/readyz`, options.certs.caCert);
              return { ok: answer.status === 200, detail: `HTTP ${answer.status}: ${answer.body.slice(0, 300)}` };
            } catch (error) {
              return { ok: false, detail: error instanceof Error ? error.message : String(error) };
            }
          },
          { deadline: Date.now() + (options.readyTimeoutMs ?? 30_000), processes: [child] },
        );
      } catch (error) {
        if (child.isRunning) {
          log(`--- webhook (${logFile}), last lines ---\n${child.tail(60)}`);
          await child.stop(5_000);
        }
        throw error;
      }
      log(`${options.name ?? 'service'} ready in ${elapsed(started)} (pid ${child.pid})`);
    },
    async stop() {
      if (current === undefined) return;
      await current.stop();
    },
    async kill(signal) {
      const child = current;
      if (child === undefined || !child.isRunning) return child?.status;
      log(`sending ${signal} to the ${options.name ?? 'service'} (pid ${child.pid})`);
      child.killSync(signal);
      return child.exited;
    },
    tail(lines = 40) {
      return current?.tail(lines) ?? '(never started)';
    },
  };
  return service;
}

export const CANARY_NAMESPACE = 'komputer-e2e-canary';
export const CANARY_AGENT = 'canary';
const INJECTED_ANNOTATION = 'komputer.ai/injected-connectors';

function canaryPod(): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'canary-',
      namespace: CANARY_NAMESPACE,
      labels: {
        'komputer.ai/squad': 'false',
        'komputer.ai/agent-name': CANARY_AGENT,
        [`komputer.ai/member-${CANARY_AGENT}`]: 'true',
      },
    },
    spec: { containers: [{ name: 'agent', image: 'busybox' }] },
  });
}

/**
 * Creates an enabled namespace with a connector and an agent, then dry-runs the creation of
 * an agent pod until the response shows the webhook acted on it (the injected-connectors
 * annotation, or an admission warning). A readable webhook configuration does not mean the
 * API server already calls it; this does.
 */
export async function waitForWebhookCalls(cp: ControlPlane, options: { timeoutMs?: number; service?: WebhookService } = {}): Promise<void> {
  const started = Date.now();
  await applyYaml(
    cp,
    toYaml([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: CANARY_NAMESPACE, labels: { 'komputer.ai/connector-injection': 'enabled' } } },
      // No controller-manager here: nothing creates a namespace's default ServiceAccount.
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: CANARY_NAMESPACE } },
    ]),
  );
  // The connector and agent go through the validating webhook (failurePolicy Ignore), so
  // they are created whether or not the service already answers.
  await applyYaml(
    cp,
    toYaml([
      {
        apiVersion: 'komputer.komputer.ai/v1alpha1',
        kind: 'KomputerConnector',
        metadata: { name: CANARY_AGENT, namespace: CANARY_NAMESPACE },
        spec: { type: 'remote', service: 'github', url: 'https://api.githubcopilot.com/mcp/' },
      },
      {
        apiVersion: 'komputer.komputer.ai/v1alpha1',
        kind: 'KomputerAgent',
        metadata: { name: CANARY_AGENT, namespace: CANARY_NAMESPACE },
        spec: { instructions: 'Canary of the e2e harness: never runs.', connectors: [CANARY_AGENT] },
      },
    ]),
  );
  const deadline = started + (options.timeoutMs ?? 30_000);
  let attempts = 0;
  let lastReport = started;
  let last = '';
  for (;;) {
    attempts++;
    const result = await kubectl(cp.kubeconfig, ['create', '--dry-run=server', `--field-manager=${FIELD_MANAGER}`, '-o', 'json', '-f', '-'], {
      input: canaryPod(),
      allowFailure: true,
    });
    const warnings = warningsOf(result);
    if (result.code === 0) {
      const pod = JSON.parse(result.stdout) as { metadata?: { annotations?: Record<string, string> } };
      const annotations = pod.metadata?.annotations ?? {};
      if (INJECTED_ANNOTATION in annotations || warnings.length > 0) {
        const evidence = INJECTED_ANNOTATION in annotations ? `${INJECTED_ANNOTATION}=${JSON.stringify(annotations[INJECTED_ANNOTATION])}` : `warning: ${warnings.join('; ')}`;
        log(`the API server calls the webhook (canary after ${attempts} attempt(s), ${elapsed(started)}: ${evidence})`);
        return;
      }
      last = 'pod admitted without the annotation or a warning (webhook not called yet?)';
    } else {
      last = result.stderr.trim();
    }
    if (Date.now() >= deadline) {
      if (options.service !== undefined) log(`--- webhook (${options.service.logFile}), last lines ---\n${options.service.tail(60)}`);
      throw new Error(`the API server did not call the webhook within ${elapsed(started)} (${attempts} canary attempts); last: ${last}`);
    }
    if (Date.now() - lastReport >= 5_000) {
      lastReport = Date.now();
      log(`waiting for the API server to call the webhook (${elapsed(started)}): ${last.split('\n')[0]}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
