// Starts the admission server: HTTPS app + plain-HTTP metrics, the cluster view (watch
// caches or a state file), certificate reloading, and graceful shutdown.

import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { ServeConfig } from '../config/config.ts';
import { loadStateFile, policyTextFromState } from '../cluster/state-file.ts';
import type { ClusterStore } from '../cluster/store.ts';
import { PolicyHolder, type PolicyStatus } from '../policy/holder.ts';
import type { Logger } from '../logging/logger.ts';
import type { AdmissionContext } from '../admission/handlers.ts';
import { createApp, healthRoutes } from './app.ts';
import type { ClusterRuntime } from './cluster-runtime.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { CertWatcher, secureContextOptions, type CertPair } from './tls.ts';

export interface RunningServer {
  readonly port: number;
  readonly metricsPort: number;
  readonly metrics: Metrics;
  readonly store: ClusterStore;
  /** The API-server side (caches, controller, lease, certificates); undefined with --state. */
  readonly cluster: ClusterRuntime | undefined;
  /** Graceful stop: drain (readiness false, Connection: close), then close. */
  stop(drainMs?: number): Promise<void>;
}

function listen(server: HttpServer | HttpsServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startServer(config: ServeConfig, logger: Logger): Promise<RunningServer> {
  const metrics = createMetrics();
  const policy = new PolicyHolder();
  const reportPolicy = (s: PolicyStatus): void => {
    metrics.policyValid.set(s.valid ? 1 : 0);
    metrics.policyEntries.set(policy.current.length);
  };
  if (config.certMode === 'self' && config.stateFile) throw new Error('--cert-mode self needs the API server (it keeps the certificates in a Secret); use --cert-mode files with --state');

  // --- TLS: one place swaps the serving pair, whatever its source.
  const clientCa = (): string | undefined => (config.clientCaFile ? readFileSync(config.clientCaFile, 'utf8') : undefined);
  clientCa(); // fail at start, not at the first reload, when the file is unreadable
  let draining = false;
  let pair: CertPair | undefined;
  let server: HttpsServer | undefined;
  const setPair = (next: CertPair): void => {
    pair = next;
    metrics.certNotAfter.set({ source: 'serving' }, Math.floor(next.notAfter.getTime() / 1000));
    metrics.certReloads.inc({ result: 'loaded' });
    server?.setSecureContext(secureContextOptions(next, clientCa()));
    logger.info({ notAfter: next.notAfter.toISOString(), fingerprint: next.fingerprint }, 'serving certificate loaded');
  };
  const rejected = (reason: string): void => {
    metrics.certReloads.inc({ result: 'rejected' });
    logger.error({ err: reason }, 'serving certificate not (re)loaded; the last good one stays in force');
  };
  const files = config.certMode === 'files' ? new CertWatcher(config.certDir, { onLoad: setPair, onError: (err) => rejected(err.message) }) : undefined;
  if (files && !files.check()) throw new Error(`no usable certificate in ${config.certDir} (expected tls.crt and tls.key)`);

  // --- cluster view and policy: a state file, or the API server.
  let store: ClusterStore;
  let cluster: ClusterRuntime | undefined;
  if (config.stateFile) {
    const state = loadStateFile(config.stateFile);
    store = state.store;
    const status = policy.apply(policyTextFromState(state));
    if (!status.valid) logger.error({ reason: status.reason }, 'policy ConfigMap in the state file is invalid; built-in list in force');
    reportPolicy(status);
    logger.info({ stateFile: config.stateFile, ...store.sizes() }, 'serving from a state file, not the API server');
  } else {
    const { startClusterRuntime } = await import('./cluster-runtime.ts');
    cluster = startClusterRuntime(config, logger, metrics, policy, reportPolicy, { setPair, rejected, served: () => pair });
    store = cluster.store;
  }
  // Injection asks the view for the policy, so pods get the verdict connectors get.
  store.policySource = () => policy.current;

  const readiness = (): { ready: boolean; reasons: string[] } => {
    const reasons: string[] = [];
    if (draining) reasons.push('shutting down');
    if (!pair) reasons.push('no serving certificate');
    else if (pair.notAfter.getTime() <= Date.now()) reasons.push(`the served certificate expired at ${pair.notAfter.toISOString()}`);
    if (cluster) reasons.push(...cluster.notReadyReasons());
    return { ready: reasons.length === 0, reasons };
  };

  // --- servers
  const metricsApp = express();
  metricsApp.disable('x-powered-by');
  metricsApp.get('/metrics', async (_req, res) => {
    for (const [kind, n] of Object.entries(store.sizes())) metrics.cacheObjects.set({ kind }, n);
    const unsynced = new Set(cluster?.informers.unsynced() ?? []);
    for (const kind of ['namespaces', 'connectors', 'agents']) metrics.cacheSynced.set({ kind }, unsynced.has(kind) ? 0 : 1);
    metrics.ready.set(readiness().ready ? 1 : 0);
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  healthRoutes(metricsApp, readiness);
  const metricsServer = createHttpServer(metricsApp);
  const metricsPort = await listen(metricsServer, config.metricsHost, config.metricsPort);

  if (!pair) {
    // Self mode: the leader creates the certificate; until then only the metrics port (with
    // /readyz saying why) is up.
    logger.info('waiting for the serving certificate');
    while (!pair) await new Promise((r) => setTimeout(r, 100));
  }
  // Events only where a recorder runs (the API server, not turned off): with --state, none.
  const events = cluster?.events;
  const context: AdmissionContext = cluster
    ? { view: store, policy: () => policy.current, awaitNamespaceChange: (name, ms) => store.awaitNamespaceChange(name, ms), events: events !== undefined }
    : { view: store, policy: () => policy.current };
  const app = createApp({ context, logger, metrics, maxBodyBytes: config.maxBodyBytes, readiness, draining: () => draining, ...(events ? { events } : {}) });
  // connectionsCheckingInterval: how often request/header timeouts are enforced (default 30 s).
  const mtls = config.clientCaFile ? { requestCert: true, rejectUnauthorized: true } : {};
  const https = createHttpsServer({ ...secureContextOptions(pair, clientCa()), ...mtls, connectionsCheckingInterval: 1000 }, app);
  server = https;
  // The API server keeps connections alive and reuses them: outlive its idle timeout so it
  // never sends on a socket we are closing; bound headers and bodies against slow clients.
  https.keepAliveTimeout = 120_000;
  https.headersTimeout = 10_000;
  https.requestTimeout = 15_000;
  const port = await listen(https, config.host, config.port);
  files?.start(config.certReloadMs);
  cluster?.afterListen();
  logger.info({ port, metricsPort, certMode: config.certMode, source: config.stateFile ? 'state-file' : 'api-server' }, 'komputer-connector-webhook serving');

  const stop = async (drainMs = config.drainMs): Promise<void> => {
    draining = true;
    logger.info({ drainMs }, 'draining: readiness false, connections asked to close');
    await new Promise((r) => setTimeout(r, drainMs));
    files?.stop();
    const closed = Promise.all([new Promise<void>((r) => https.close(() => r())), new Promise<void>((r) => metricsServer.close(() => r())), cluster?.stop()]);
    // Idle keep-alive sockets would otherwise hold close() open until they time out.
    https.closeIdleConnections();
    metricsServer.closeIdleConnections();
    await closed;
    logger.info('stopped');
  };
  return { port, metricsPort, metrics, store, cluster, stop };
}
