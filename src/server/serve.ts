// Starts the admission server: HTTPS app + plain-HTTP metrics, the cluster view (watch
// caches or a state file), certificate reloading, and graceful shutdown.

import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
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
import { SecretMirror } from '../cluster/secret-mirror.ts';
import { desiredMirrors } from '../attachments/mirrors.ts';
import type { ClusterStore } from '../cluster/store.ts';
import type { Logger } from '../logging/logger.ts';
import { createApp, healthRoutes } from './app.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { CertWatcher, checkPair, secureContextOptions, type CertPair } from './tls.ts';
import { chainsTo } from '../certs/bundle.ts';
import { SelfManagedCertificates } from '../certs/manager.ts';
import { WebhookConfigs } from '../certs/webhook-configs.ts';

export interface RunningServer {
  readonly port: number;
  readonly metricsPort: number;
  readonly metrics: Metrics;
  readonly store: ClusterStore;
  readonly informers: ClusterInformers | undefined;
  readonly attachments: AttachmentController | undefined;
  readonly elector: LeaderElector | undefined;
  readonly certificates: SelfManagedCertificates | undefined;
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

/** Runs the Secret mirror after controller passes (debounced) and periodically, while leading. */
function mirrorRunner(mirror: SecretMirror, store: ClusterStore, controller: AttachmentController, resyncMs: number, logger: Logger): { start(): void; stop(): void } {
  let active = false;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    if (!active) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const r = await mirror.reconcile(desiredMirrors(store.agents.values(), store));
      if (r.created + r.updated + r.deleted > 0) logger.info(r, 'secret mirrors reconciled');
    } catch (e) {
      logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'secret mirroring failed; will retry');
    } finally {
      running = false;
      if (again) {
        again = false;
        void run();
      }
    }
  };
  const schedule = (ms: number): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void run().finally(() => active && schedule(resyncMs)), ms);
    timer.unref();
  };
  controller.onPass = () => active && schedule(200);
  return {
    start() {
      active = true;
      schedule(0);
    },
    stop() {
      active = false;
      if (timer) clearTimeout(timer);
    },
  };
}

/** Readiness of the served certificate against the caBundle the API server holds. */
class BundleCheck {
  ok: boolean | undefined;
  reason = 'caBundle not checked yet';
  private timer: NodeJS.Timeout | undefined;
  private readonly webhooks: WebhookConfigs;
  private readonly served: () => CertPair | undefined;
  constructor(webhooks: WebhookConfigs, served: () => CertPair | undefined) {
    this.webhooks = webhooks;
    this.served = served;
  }
  async check(): Promise<void> {
    const pair = this.served();
    const read = await this.webhooks.bundles();
    if (!read.ok) [this.ok, this.reason] = [false, read.reason];
    else if (!pair) [this.ok, this.reason] = [false, 'no serving certificate'];
    else if (read.bundles.length === 0) [this.ok, this.reason] = [false, 'the webhook configurations have no webhooks'];
    else if (!read.bundles.every((b) => chainsTo(pair.cert, b))) [this.ok, this.reason] = [false, 'the served certificate does not chain to the caBundle of the webhook configurations'];
    else [this.ok, this.reason] = [true, ''];
  }
  start(intervalMs: number): void {
    const tick = (): void => {
      void this.check().finally(() => {
        this.timer = setTimeout(tick, intervalMs);
        this.timer.unref();
      });
    };
    tick();
  }
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

export async function startServer(config: ServeConfig, logger: Logger): Promise<RunningServer> {
  const metrics = createMetrics();
  const policy = new PolicyHolder();
  const reportPolicy = (s: PolicyStatus): void => {
    metrics.policyValid.set(s.valid ? 1 : 0);
    metrics.policyEntries.set(policy.current.length);
  };
  const kc = config.stateFile ? undefined : loadKubeConfig(config.kubeconfig);
  if (config.certMode === 'self' && !kc) throw new Error('--cert-mode self needs the API server (it keeps the certificates in a Secret); use --cert-mode files with --state');

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
  let files: CertWatcher | undefined;
  let selfManaged: SelfManagedCertificates | undefined;
  const webhooks = kc ? new WebhookConfigs(kc, { mutating: config.webhookConfigName, validating: config.webhookConfigName }) : undefined;
  if (config.certMode === 'files') {
    files = new CertWatcher(config.certDir, {
      onLoad: setPair,
      onError: (err) => {
        metrics.certReloads.inc({ result: 'rejected' });
        logger.error({ err: err.message }, 'serving certificate not (re)loaded; the last good one stays in force');
      },
    });
    if (!files.check()) throw new Error(`no usable certificate in ${config.certDir} (expected tls.crt and tls.key)`);
  } else {
    selfManaged = new SelfManagedCertificates(
      kc!,
      webhooks!,
      {
        namespace: config.serviceNamespace,
        secretName: config.certSecretName,
        pollMs: config.certReloadMs,
        policy: { dnsNames: config.certDnsNames, ipAddresses: config.certIpAddresses, certValidityMs: config.certValidityMs, caValidityMs: config.caValidityMs, renewFraction: 1 / 3 },
      },
      logger,
      (m) => {
        try {
          setPair(checkPair(m.cert, m.key, 'Secret tls.crt', 'Secret tls.key'));
        } catch (e) {
          metrics.certReloads.inc({ result: 'rejected' });
          logger.error({ err: e instanceof Error ? e.message : String(e) }, 'certificate Secret holds an unusable pair; the last good one stays in force');
        }
      },
    );
  }
  const bundleCheck = webhooks && config.checkCaBundle ? new BundleCheck(webhooks, () => pair) : undefined;

  // --- cluster view and policy
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
    informers = new ClusterInformers(kc!, logger);
    store = informers.store;
    reportPolicy(policy.status);
    policyWatch = watchPolicy(kc!, config.serviceNamespace, policy, logger, reportPolicy) as Reflector<unknown>;
    if (config.controller) {
      attachments = new AttachmentController(store, apiStatusWriter(kc!), logger, { reconciled: (r) => metrics.reconciles.inc({ result: r }), queueDepth: (n) => metrics.queueDepth.set(n) }, { quietMs: config.controllerQuietMs, maxWaitMs: config.controllerMaxWaitMs, resyncMs: config.resyncMs });
      informers.listeners.push(attachments);
    }
    let mirrorLoop: { start(): void; stop(): void } | undefined;
    if (attachments && config.mirrorSharedSecrets) mirrorLoop = mirrorRunner(new SecretMirror(kc!, logger), store, attachments, config.resyncMs, logger);
    informers.start();
    void policyWatch.run();
    if (attachments || selfManaged) {
      // One leader runs the controller and writes certificates: never two writers.
      const a = attachments;
      const c = selfManaged;
      elector = new LeaderElector(
        kc!,
        { namespace: config.serviceNamespace, name: config.leaseName, identity: config.identity, ...LEASE_DEFAULTS },
        {
          onStartedLeading: () => {
            metrics.leader.set(1);
            a?.start();
            c?.setLeading(true);
            mirrorLoop?.start();
          },
          onStoppedLeading: () => {
            metrics.leader.set(0);
            c?.setLeading(false);
            mirrorLoop?.stop();
            void a?.stop();
          },
        },
        logger,
      );
      elector.start();
    }
  }
  selfManaged?.start();

  const readiness = (): { ready: boolean; reasons: string[] } => {
    const reasons: string[] = [];
    if (draining) reasons.push('shutting down');
    if (!pair) reasons.push('no serving certificate');
    else if (pair.notAfter.getTime() <= Date.now()) reasons.push(`the served certificate expired at ${pair.notAfter.toISOString()}`);
    const unsynced = informers?.unsynced() ?? [];
    if (policyWatch && !policyWatch.synced) unsynced.push('policy ConfigMap');
    if (unsynced.length > 0) reasons.push(`caches not synced: ${unsynced.join(', ')}`);
    if (bundleCheck && bundleCheck.ok !== true) reasons.push(bundleCheck.reason);
    return { ready: reasons.length === 0, reasons };
  };

  // --- servers
  const metricsApp = express();
  metricsApp.disable('x-powered-by');
  metricsApp.get('/metrics', async (_req, res) => {
    for (const [kind, n] of Object.entries(store.sizes())) metrics.cacheObjects.set({ kind }, n);
    const unsynced = new Set(informers?.unsynced() ?? []);
    for (const kind of ['namespaces', 'connectors', 'agents']) metrics.cacheSynced.set({ kind }, unsynced.has(kind) ? 0 : 1);
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
  const context = informers ? { view: store, policy: () => policy.current, awaitNamespaceChange: (name: string, ms: number) => store.awaitNamespaceChange(name, ms) } : { view: store, policy: () => policy.current };
  const app = createApp({ context, logger, metrics, maxBodyBytes: config.maxBodyBytes, readiness, draining: () => draining });
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
  bundleCheck?.start(config.certReloadMs);
  logger.info({ port, metricsPort, certMode: config.certMode, source: config.stateFile ? 'state-file' : 'api-server' }, 'komputer-connector-webhook serving');

  const stop = async (drainMs = config.drainMs): Promise<void> => {
    draining = true;
    logger.info({ drainMs }, 'draining: readiness false, connections asked to close');
    await new Promise((r) => setTimeout(r, drainMs));
    files?.stop();
    bundleCheck?.stop();
    await elector?.stop(); // releases the lease: another replica takes over at once
    await Promise.all([attachments?.stop(), selfManaged?.stop()]);
    const closed = Promise.all([new Promise<void>((r) => https.close(() => r())), new Promise<void>((r) => metricsServer.close(() => r())), informers?.stop()]);
    // Idle keep-alive sockets would otherwise hold close() open until they time out.
    https.closeIdleConnections();
    metricsServer.closeIdleConnections();
    policyWatch?.stop();
    await closed;
    logger.info('stopped');
  };
  return { port, metricsPort, metrics, store, informers, attachments, elector, certificates: selfManaged, stop };
}
