// Everything that talks to the API server, wired together: watch caches, the policy
// ConfigMap watch, leader election, the attachment controller, self-managed certificates,
// the caBundle readiness check and the opt-in Secret mirror. Loaded only when serving from
// the API server: @kubernetes/client-node alone costs about 60 MB of memory, which a
// state-file server (benchmarks, demos, air-gapped trials) does not need.

import { KubeConfig } from '@kubernetes/client-node';
import { shareDispatchers } from '../cluster/kubeconfig.ts';
import { eventsEnabled, watchTimeoutSeconds, type ServeConfig } from '../config/config.ts';
import { DROP_REASONS, EventRecorder, RECORDER_DEFAULTS, WRITE_KINDS } from '../events/recorder.ts';
import { apiEventSink } from '../events/sink.ts';
import { ClusterInformers, INFORMER_KINDS } from '../cluster/informers.ts';
import { watchPolicy } from '../cluster/policy-source.ts';
import { PolicyViolationsGauge } from '../cluster/policy-violations.ts';
import { apiEvictor, Revoker } from '../cluster/revocation.ts';
import { REVOCATION_DEFAULTS } from '../config/config.ts';
import { WATCH_RESTART_REASONS, type Reflector } from '../cluster/reflector.ts';
import type { PolicyHolder, PolicyStatus } from '../policy/holder.ts';
import { AttachmentController } from '../attachments/controller.ts';
import { LeaderElector, LEASE_DEFAULTS } from '../cluster/lease.ts';
import { apiStatusWriter } from '../cluster/status-writer.ts';
import { SecretMirror } from '../cluster/secret-mirror.ts';
import { desiredMirrors } from '../attachments/mirrors.ts';
import type { ClusterStore } from '../cluster/store.ts';
import type { Logger } from '../logging/logger.ts';
import type { Metrics } from './metrics.ts';
import { checkPair, type CertPair } from './tls.ts';
import { chainsTo } from '../certs/bundle.ts';
import { SelfManagedCertificates } from '../certs/manager.ts';
import { WebhookConfigs } from '../certs/webhook-configs.ts';

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  shareDispatchers(kc);
  return kc;
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

/** Every replica records the Events of the pods it admits (no leader needed: each names itself). */
function eventRecorder(kc: KubeConfig, config: ServeConfig, metrics: Metrics, logger: Logger): EventRecorder {
  for (const reason of DROP_REASONS) metrics.eventsDropped.inc({ reason }, 0);
  for (const operation of WRITE_KINDS) metrics.eventsWritten.inc({ operation }, 0);
  return new EventRecorder(apiEventSink(kc), { ...RECORDER_DEFAULTS, instance: config.identity }, {
    written: (operation) => metrics.eventsWritten.inc({ operation }),
    dropped: (reason, n) => metrics.eventsDropped.inc({ reason }, n),
    pending: (n) => metrics.eventsPending.set(n),
    failed: (err, kind, failures) => logger.warn({ err: (err instanceof Error ? err.message : String(err)).slice(0, 500), kind, failures }, 'event write failed; dropped (komputer_webhook_events_dropped_total)'),
  });
}

export interface TlsHooks {
  /** Swap in a new serving pair. */
  setPair(pair: CertPair): void;
  /** A pair was offered but is unusable. */
  rejected(reason: string): void;
  /** The pair being served now. */
  served(): CertPair | undefined;
}

export interface ClusterRuntime {
  readonly store: ClusterStore;
  readonly informers: ClusterInformers;
  readonly attachments: AttachmentController | undefined;
  readonly elector: LeaderElector | undefined;
  readonly certificates: SelfManagedCertificates | undefined;
  /** Events on KomputerAgents (undefined when turned off). */
  readonly events: EventRecorder | undefined;
  /** Why this replica is not ready, as far as the cluster side is concerned. */
  notReadyReasons(): string[];
  /** Starts what needs the HTTPS listener up (the caBundle check). */
  afterListen(): void;
  /** Stops leading (releasing the lease), then every watch and loop. */
  stop(): Promise<void>;
}

export function startClusterRuntime(config: ServeConfig, logger: Logger, metrics: Metrics, policy: PolicyHolder, reportPolicy: (s: PolicyStatus) => void, tls: TlsHooks): ClusterRuntime {
  const kc = loadKubeConfig(config.kubeconfig);
  const webhooks = new WebhookConfigs(kc, { mutating: config.webhookConfigName, validating: config.webhookConfigName });
  const certificates =
    config.certMode === 'self'
      ? new SelfManagedCertificates(
          kc,
          webhooks,
          {
            namespace: config.serviceNamespace,
            secretName: config.certSecretName,
            pollMs: config.certReloadMs,
            policy: { dnsNames: config.certDnsNames, ipAddresses: config.certIpAddresses, certValidityMs: config.certValidityMs, caValidityMs: config.caValidityMs, renewFraction: 1 / 3 },
          },
          logger,
          (m) => {
            try {
              tls.setPair(checkPair(m.cert, m.key, 'Secret tls.crt', 'Secret tls.key'));
            } catch (e) {
              tls.rejected(e instanceof Error ? e.message : String(e));
            }
          },
        )
      : undefined;
  const bundleCheck = config.checkCaBundle ? new BundleCheck(webhooks, tls.served) : undefined;

  // Every series from the start (at 0), so a first failure shows as an increase.
  for (const kind of [...INFORMER_KINDS, 'policy', ...(config.revocation && config.revocation !== 'off' ? ['pods'] : [])]) for (const reason of WATCH_RESTART_REASONS) metrics.watchRestarts.inc({ kind, reason }, 0);
  const informers = new ClusterInformers(kc, logger, {
    watchTimeoutSeconds: watchTimeoutSeconds(config),
    watchRestarted: (kind, reason) => metrics.watchRestarts.inc({ kind, reason }),
  });
  const store = informers.store;
  // The leader's violations gauge, from the cache: a connector or policy change is no API call.
  const violations = new PolicyViolationsGauge(store, () => policy.current, metrics.policyViolations, logger);
  informers.listeners.push(violations);
  reportPolicy(policy.status);
  // Opt-in revocation: the leader's agent-pod watch and evictions (events: set below).
  let events: EventRecorder | undefined;
  const mode = config.revocation ?? 'off';
  const revoker =
    mode === 'off'
      ? undefined
      : new Revoker(
          kc,
          store,
          apiEvictor(kc),
          { ...REVOCATION_DEFAULTS, mode, maxConcurrent: config.revocationMaxConcurrent ?? REVOCATION_DEFAULTS.maxConcurrent, maxPerPass: config.revocationMaxPerPass ?? REVOCATION_DEFAULTS.maxPerPass },
          { record: (e) => events?.record(e), counted: metrics.revocations },
          logger,
          { watchTimeoutSeconds: watchTimeoutSeconds(config), onRestart: (reason) => metrics.watchRestarts.inc({ kind: 'pods', reason }) },
        );
  if (revoker) informers.listeners.push(revoker);
  const onPolicy = (s: PolicyStatus): void => {
    reportPolicy(s);
    violations.policyChanged();
    revoker?.policyChanged();
  };
  const policyWatch = watchPolicy(kc, config.serviceNamespace, policy, logger, onPolicy, {
    watchTimeoutSeconds: watchTimeoutSeconds(config),
    onRestart: (reason) => metrics.watchRestarts.inc({ kind: 'policy', reason }),
  }) as Reflector<unknown>;
  let attachments: AttachmentController | undefined;
  if (config.controller) {
    attachments = new AttachmentController(store, apiStatusWriter(kc), logger, { reconciled: (r) => metrics.reconciles.inc({ result: r }), queueDepth: (n) => metrics.queueDepth.set(n) }, { quietMs: config.controllerQuietMs, maxWaitMs: config.controllerMaxWaitMs, resyncMs: config.resyncMs });
    informers.listeners.push(attachments);
  }
  const mirrorLoop = attachments && config.mirrorSharedSecrets ? mirrorRunner(new SecretMirror(kc, logger), store, attachments, config.resyncMs, logger) : undefined;
  informers.start();
  void policyWatch.run();

  let elector: LeaderElector | undefined;
  if (attachments || certificates) {
    // One leader runs the controller and writes certificates: never two writers.
    const a = attachments;
    elector = new LeaderElector(
      kc,
      { namespace: config.serviceNamespace, name: config.leaseName, identity: config.identity, ...LEASE_DEFAULTS },
      {
        onStartedLeading: () => {
          metrics.leader.set(1);
          violations.setLeading(true);
          revoker?.setLeading(true);
          a?.start();
          certificates?.setLeading(true);
          mirrorLoop?.start();
        },
        onStoppedLeading: () => {
          metrics.leader.set(0);
          violations.setLeading(false);
          revoker?.setLeading(false);
          certificates?.setLeading(false);
          mirrorLoop?.stop();
          void a?.stop();
        },
      },
      logger,
    );
    elector.start();
  } else {
    violations.setLeading(true); // no election configured: this replica is the only one
    revoker?.setLeading(true);
  }
  certificates?.start();
  events = eventsEnabled(config) ? eventRecorder(kc, config, metrics, logger) : undefined;

  return {
    store,
    informers,
    attachments,
    elector,
    certificates,
    events,
    notReadyReasons() {
      const reasons: string[] = [];
      const unsynced = informers.unsynced();
      if (!policyWatch.synced) unsynced.push('policy ConfigMap');
      if (unsynced.length > 0) reasons.push(`caches not synced: ${unsynced.join(', ')}`);
      if (bundleCheck && bundleCheck.ok !== true) reasons.push(bundleCheck.reason);
      return reasons;
    },
    afterListen() {
      bundleCheck?.start(config.certReloadMs);
    },
    async stop() {
      bundleCheck?.stop();
      violations.stop();
      await elector?.stop();
      await revoker?.stop(); // releases the lease: another replica takes over at once
      await Promise.all([attachments?.stop(), certificates?.stop(), events?.stop()]);
      policyWatch.stop();
      await informers.stop();
    },
  };
}
