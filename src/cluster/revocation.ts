// Revocation that takes effect (opt-in): the leader restarts, through the Eviction API (so
// PodDisruptionBudgets hold), running agent pods that still hold a connector their agent should
// no longer get. Which pods, and whether now, is the pure core's answer (check/stale.ts
// revocations(), the same decision `check` reports as pods/stale); this file only keeps the
// agent-pod cache, runs debounced passes from caches, evicts, and reports.

import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Counter } from 'prom-client';
import type { RevocationMode } from '../config/config.ts';
import { LABEL_SQUAD } from '../config/names.ts';
import { revocations, revocationText, type RevocationDecision } from '../check/stale.ts';
import type { AgentEvent } from '../injection/events.ts';
import type { Logger } from '../logging/logger.ts';
import { isObject, objectKey, type JsonObject } from '../model/objects.ts';
import { Reflector, type ListPage, type ReflectorOptions } from './reflector.ts';
import type { StoreListener } from './informers.ts';
import type { ClusterStore } from './store.ts';


/**
 * Outcomes counted in komputer_webhook_revocations_total{result}: evicted; blocked (the API
 * server refused for now: a PodDisruptionBudget, 429); gone (the pod was already deleted);
 * failed (any other error; retried on a later pass).
 */
export const REVOCATION_RESULTS = ['evicted', 'blocked', 'gone', 'failed'] as const;
export type RevocationResult = (typeof REVOCATION_RESULTS)[number];

export interface RevocationSettings {
  readonly mode: Exclude<RevocationMode, 'off'>;
  /** Pods restarting at once (evicted and still stored). */
  readonly maxConcurrent: number;
  /** Evictions one pass may start. */
  readonly maxPerPass: number;
  readonly debounceMs: number;
  /** A pass even without a change: the safety net for a missed event. */
  readonly resyncMs: number;
}


/** What the controller needs of the API server (tests give it the real one). */
export interface Evictor {
  evict(namespace: string, name: string, uid: string | undefined): Promise<RevocationResult>;
}

export function apiEvictor(kc: KubeConfig): Evictor {
  const api = kc.makeApiClient(CoreV1Api);
  return {
    async evict(namespace, name, uid) {
      try {
        // The uid precondition: never evict a newer pod that took the name meanwhile.
        await api.createNamespacedPodEviction({ name, namespace, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace }, ...(uid ? { deleteOptions: { preconditions: { uid } } } : {}) } });
        return 'evicted';
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (code === 429) return 'blocked';
        if (code === 404 || code === 409) return 'gone';
        throw e;
      }
    },
  };
}

/** Agent pods only (the label the operator sets on solo and squad pods), narrowed to what the core reads. */
function narrowPod(raw: JsonObject): JsonObject {
  const md = isObject(raw.metadata) ? raw.metadata : {};
  const spec = isObject(raw.spec) ? raw.spec : {};
  const status = isObject(raw.status) ? raw.status : {};
  return {
    metadata: { name: md.name, namespace: md.namespace, uid: md.uid, labels: md.labels, annotations: md.annotations, ...(md.deletionTimestamp ? { deletionTimestamp: md.deletionTimestamp } : {}) },
    spec: { containers: spec.containers, ...(spec.ephemeralContainers ? { ephemeralContainers: spec.ephemeralContainers } : {}) },
    status: { phase: status.phase },
  };
}

export class Revoker implements StoreListener {
  /** The leader's cache of agent pods, keyed namespace/name. */
  readonly pods = new Map<string, JsonObject>();
  /** Evicted pods (uid) still stored: they count against maxConcurrent. */
  private readonly restarting = new Map<string, string>();
  /** Pods left alone for a busy agent, so the log says it once, not every pass. */
  private deferred = new Set<string>();
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private reflector: Reflector<JsonObject> | undefined;
  private run: Promise<void> | undefined;
  /** Passes run (tests). */
  passes = 0;
  private readonly kc: KubeConfig | undefined;
  private readonly store: ClusterStore;
  private readonly evictor: Evictor;
  private readonly settings: RevocationSettings;
  private readonly record: (events: AgentEvent[]) => void;
  private readonly counted: Counter<'result'>;
  private readonly logger: Logger;
  private readonly reflectorOptions: ReflectorOptions;

  constructor(
    kc: KubeConfig | undefined,
    store: ClusterStore,
    evictor: Evictor,
    settings: RevocationSettings,
    hooks: { record: (events: AgentEvent[]) => void; counted: Counter<'result'> },
    logger: Logger,
    reflectorOptions: ReflectorOptions = {},
  ) {
    this.kc = kc;
    this.store = store;
    this.evictor = evictor;
    this.settings = settings;
    this.record = hooks.record;
    this.counted = hooks.counted;
    this.logger = logger;
    this.reflectorOptions = reflectorOptions;
    for (const result of REVOCATION_RESULTS) this.counted.inc({ result }, 0);
  }

  connectorsReplaced(): void {
    this.schedule();
  }
  connectorChanged(): void {
    this.schedule();
  }
  agentsReplaced(): void {
    this.schedule();
  }
  agentChanged(): void {
    this.schedule();
  }
  policyChanged(): void {
    this.schedule();
  }
  /** The opt-in annotation may have changed. */
  namespaceChanged(): void {
    this.schedule();
  }

  /** Only the leader watches agent pods and evicts. */
  setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    if (leading) {
      if (this.kc) this.startPodWatch(this.kc);
      this.resyncTimer = setInterval(() => this.schedule(0), this.settings.resyncMs);
      this.resyncTimer.unref();
    } else {
      if (this.timer) clearTimeout(this.timer);
      if (this.resyncTimer) clearInterval(this.resyncTimer);
      this.timer = this.resyncTimer = undefined;
      this.reflector?.stop();
      this.reflector = undefined;
      this.pods.clear();
      this.restarting.clear();
      this.deferred.clear();
    }
  }

  private startPodWatch(kc: KubeConfig): void {
    const api = kc.makeApiClient(CoreV1Api);
    const pageOf = (list: unknown): ListPage => {
      const l = isObject(list) ? list : {};
      const md = isObject(l.metadata) ? l.metadata : {};
      const token = typeof md._continue === 'string' && md._continue ? md._continue : undefined;
      return { items: Array.isArray(l.items) ? l.items : [], resourceVersion: typeof md.resourceVersion === 'string' ? md.resourceVersion : '', continueToken: token };
    };
    const pods = this.pods;
    const changed = (): void => this.podsChanged();
    this.reflector = new Reflector<JsonObject>(
      kc,
      {
        kind: 'pod',
        watchPath: '/api/v1/pods',
        watchQuery: { labelSelector: LABEL_SQUAD },
        list: async (token) => pageOf(await api.listPodForAllNamespaces({ labelSelector: LABEL_SQUAD, limit: 500, _continue: token })),
        decode: narrowPod,
      },
      {
        replace(items) {
          pods.clear();
          for (const p of items) pods.set(objectKey(String((p.metadata as JsonObject).namespace), String((p.metadata as JsonObject).name)), p);
          changed();
        },
        upsert(item) {
          pods.set(objectKey(String((item.metadata as JsonObject).namespace), String((item.metadata as JsonObject).name)), item);
          changed();
        },
        remove(namespace, name) {
          pods.delete(objectKey(namespace, name));
          changed();
        },
      },
      this.logger,
      this.reflectorOptions,
    );
    this.run = this.reflector.run();
  }

  /** The pod cache changed (the watch calls it; tests too). */
  podsChanged(): void {
    // A restarting pod stops counting once no stored pod has its uid.
    const uids = new Set([...this.pods.values()].map((p) => (p.metadata as JsonObject).uid));
    for (const [uid] of this.restarting) if (!uids.has(uid)) this.restarting.delete(uid);
    this.schedule();
  }

  /** Whether the pod cache has its first complete list (a pass before that could miss nothing but also find nothing). */
  get synced(): boolean {
    return this.reflector?.synced ?? this.kc === undefined;
  }

  private schedule(ms = this.settings.debounceMs): void {
    if (!this.leading || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.pass();
    }, ms);
    this.timer.unref();
  }

  /** One pass: decide from the caches, evict what may restart now. */
  async pass(): Promise<RevocationDecision[]> {
    if (!this.leading || !this.synced) return [];
    if (this.running) {
      this.again = true;
      return [];
    }
    this.running = true;
    try {
      this.passes++;
      const budget = Math.min(this.settings.maxPerPass, this.settings.maxConcurrent - this.restarting.size);
      // A pod already evicted is not asked for again while its deletion reaches the cache.
      const pods = [...this.pods.values()].filter((p) => !this.restarting.has(String((p.metadata as JsonObject).uid)));
      const decisions = revocations(pods, this.store, { clusterDefault: this.settings.mode === 'all', budget });
      const nowDeferred = new Set<string>();
      for (const d of decisions) {
        const key = objectKey(d.namespace, d.name);
        if (d.verdict === 'busy') {
          nowDeferred.add(key);
          if (!this.deferred.has(key)) this.logger.info({ namespace: d.namespace, pod: d.name, busy: d.busy }, 'stale agent pod left running while its agent is busy; restarted once idle');
          continue;
        }
        if (d.verdict !== 'evict') continue;
        await this.evict(d);
      }
      this.deferred = nowDeferred;
      return decisions;
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.schedule(0);
      }
    }
  }

  private async evict(d: RevocationDecision): Promise<void> {
    const held = d.containers.map((c) => ({ agent: c.agent, container: c.container, revoked: c.revoked.map((r) => `${r.what} ${r.name} (${r.cause})`) }));
    let result: RevocationResult;
    try {
      result = await this.evictor.evict(d.namespace, d.name, d.uid);
    } catch (e) {
      result = 'failed';
      this.logger.warn({ namespace: d.namespace, pod: d.name, err: (e instanceof Error ? e.message : String(e)).slice(0, 500) }, 'eviction of a stale agent pod failed; retried on a later pass');
    }
    this.counted.inc({ result });
    if (result === 'evicted') {
      if (d.uid) this.restarting.set(d.uid, objectKey(d.namespace, d.name));
      this.logger.info({ namespace: d.namespace, pod: d.name, held }, 'evicted a running agent pod that holds connectors its agent no longer gets (komputer_webhook_revocations_total)');
      const agents = [...new Set(d.containers.map((c) => c.agent))];
      this.record(
        agents.map((agent) => ({
          agent: { namespace: d.namespace, name: agent, uid: this.store.agent(d.namespace, agent)?.uid },
          type: 'Normal',
          reason: REVOKED_REASON,
          message: revocationText(d, agent),
        })),
      );
    } else if (result === 'blocked') {
      this.logger.info({ namespace: d.namespace, pod: d.name }, 'eviction of a stale agent pod refused for now (a PodDisruptionBudget); retried on a later pass');
    }
  }

  async stop(): Promise<void> {
    this.setLeading(false);
    await this.run;
  }
}

/** The Event reason on the agent when its pod is restarted to take a connector back. */
export const REVOKED_REASON = 'ConnectorRevoked';
