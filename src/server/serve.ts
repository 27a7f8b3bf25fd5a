// Starts the admission server: HTTPS app + plain-HTTP metrics, the cluster view (watch
// caches or a state file), certificate reloading, and graceful shutdown.

import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { KubeConfig } from '@kubernetes/client-node';
import type { ServeConfig } from '../config/config.ts';
import { ClusterInformers } from '../cluster/informers.ts';
import { loadStateFile, policyTextFromState } from '../cluster/state-file.ts';
import { watchPolicy } from '../cluster/policy-source.ts';
import type { Reflector } from '../cluster/reflector.ts';
import { PolicyHolder, type PolicyStatus } from '../policy/holder.ts';
import { AttachmentController } from '../attachments/controller.ts';
import { LeaderElector, LEASE_DEFAULTS } from '../cluster/lease.ts';
import { apiStatusWriter } from '../cluster/status-writer.ts';
import type { ClusterStore } from '../cluster/store.ts';
import type { Logger } from '../logging/logger.ts';
import { createApp, healthRoutes } from './app.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { CertWatcher, secureContextOptions } from './tls.ts';

export interface RunningServer {
  readonly port: number;
  readonly metricsPort: number;
  readonly metrics: Metrics;
  readonly store: ClusterStore;
  readonly informers: ClusterInformers | undefined;
  readonly attachments: AttachmentController | undefined;
  readonly elector: LeaderElector | undefined;
  /** Graceful stop: drain (readiness false, Connection: close), then close. */
  stop(drainMs?: number): Promise<void>;
}

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
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
  let informers: ClusterInformers | undefined;
  let policyWatch: Reflector<unknown> | undefined;
  let attachments: AttachmentController | undefined;
  let elector: LeaderElector | undefined;
  let store: ClusterStore;
  if (config.stateFile) {
    const state = loadStateFile(config.stateFile);
    store = state.store;
    const status = policy.apply(policyTextFromState(state));
    if (!status.valid) logger.error({ reason: status.reason }, 'policy ConfigMap in the state file is invalid; built-in list in force');
    reportPolicy(status);
    logger.info({ stateFile: config.stateFile, ...store.sizes() }, 'serving from a state file, not the API server');
  } else {
    const kc = loadKubeConfig(config.kubeconfig);
    informers = new ClusterInformers(kc, logger);
    store = informers.store;
    informers.start();
    reportPolicy(policy.status);
    policyWatch = watchPolicy(kc, config.serviceNamespace, policy, logger, reportPolicy) as Reflector<unknown>;
    void policyWatch.run();
    if (config.controller) {
      const controller = new AttachmentController(store, apiStatusWriter(kc), logger, { reconciled: (r) => metrics.reconciles.inc({ result: r }), queueDepth: (n) => metrics.queueDepth.set(n) }, { quietMs: config.controllerQuietMs, maxWaitMs: config.controllerMaxWaitMs, resyncMs: config.resyncMs });
      informers.listeners.push(controller);
      attachments = controller;
      elector = new LeaderElector(
        kc,
        { namespace: config.serviceNamespace, name: config.leaseName, identity: config.identity, ...LEASE_DEFAULTS },
        {
          onStartedLeading: () => {
            metrics.leader.set(1);
            controller.start();
          },
          onStoppedLeading: () => {
            metrics.leader.set(0);
            void controller.stop();
          },
        },
        logger,
      );
      elector.start();
    }
  }

  let draining = false;
  const certs = new CertWatcher(config.certDir, {
    onLoad: (pair) => {
      metrics.certNotAfter.set({ source: 'serving' }, Math.floor(pair.notAfter.getTime() / 1000));
      metrics.certReloads.inc({ result: 'loaded' });
      httpsServer?.setSecureContext(secureContextOptions(pair));
      logger.info({ notAfter: pair.notAfter.toISOString(), fingerprint: pair.fingerprint }, 'serving certificate loaded');
    },
    onError: (err) => {
      metrics.certReloads.inc({ result: 'rejected' });
      logger.error({ err: err.message }, 'serving certificate not (re)loaded; the last good one stays in force');
    },
  });
  let httpsServer: HttpsServer | undefined = undefined;
  if (!certs.check()) throw new Error(`no usable certificate in ${config.certDir} (expected tls.crt and tls.key)`);

  const readiness = (): { ready: boolean; reasons: string[] } => {
    const reasons: string[] = [];
    if (draining) reasons.push('shutting down');
    if (!certs.pair) reasons.push('no serving certificate');
    const unsynced = informers?.unsynced() ?? [];
    if (policyWatch && !policyWatch.synced) unsynced.push('policy ConfigMap');
    if (unsynced.length > 0) reasons.push(`caches not synced: ${unsynced.join(', ')}`);
    return { ready: reasons.length === 0, reasons };
  };

  const app = createApp({ context: { view: store, policy: () => policy.current }, logger, metrics, maxBodyBytes: config.maxBodyBytes, readiness, draining: () => draining });
  const server = createHttpsServer({ ...secureContextOptions(certs.pair!) }, app);
  httpsServer = server;
  // The API server keeps connections alive and reuses them: outlive its idle timeout so it
  // never sends on a socket we are closing; bound headers and bodies against slow clients.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  const port = await listen(server, config.host, config.port);
  certs.start(config.certReloadMs);

  const metricsApp = express();
  metricsApp.disable('x-powered-by');
  metricsApp.get('/metrics', async (_req, res) => {
    const s = store.sizes();
    for (const [kind, n] of Object.entries(s)) metrics.cacheObjects.set({ kind }, n);
    const unsynced = new Set(informers?.unsynced() ?? []);
    for (const kind of ['namespaces', 'connectors', 'agents']) metrics.cacheSynced.set({ kind }, unsynced.has(kind) ? 0 : 1);
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  healthRoutes(metricsApp, readiness);
  const metricsServer = createHttpServer(metricsApp);
  const metricsPort = await listen(metricsServer, config.metricsHost, config.metricsPort);
  logger.info({ port, metricsPort, certDir: config.certDir, source: config.stateFile ? 'state-file' : 'api-server' }, 'komputer-connector-webhook serving');

  const stop = async (drainMs = config.drainMs): Promise<void> => {
    draining = true;
    logger.info({ drainMs }, 'draining: readiness false, connections asked to close');
    await new Promise((r) => setTimeout(r, drainMs));
    certs.stop();
    await elector?.stop(); // releases the lease: the other replica takes over at once
    await attachments?.stop();
    const closed = Promise.all([
      new Promise<void>((r) => server.close(() => r())),
      new Promise<void>((r) => metricsServer.close(() => r())),
      informers?.stop(),
    ]);
    policyWatch?.stop();
    // Idle keep-alive sockets would otherwise hold close() open until they time out.
    server.closeIdleConnections();
    metricsServer.closeIdleConnections();
    await closed;
    logger.info('stopped');
  };
  return { port, metricsPort, metrics, store, informers, attachments, elector, stop };
}
