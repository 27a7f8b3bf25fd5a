// The attachment controller: keeps status.attachedAgents/agentNames of every connector
// equal to statusFor(...). Informer events enqueue connector keys; a coalescing queue
// turns a burst into one reconcile per key; a reconcile writes only when the stored value
// differs. A relist (start, 410 Gone, reconnect) or the periodic resync recomputes all.

import type { ClusterStore } from '../cluster/store.ts';
import type { StoreListener } from '../cluster/informers.ts';
import type { Logger } from '../logging/logger.ts';
import { objectKey, splitKey, type Agent } from '../model/objects.ts';
import { ReferenceIndex, statusEquals, statusFor, type AttachmentStatus } from './counts.ts';

export type WriteResult = { kind: 'written'; resourceVersion: string | undefined } | { kind: 'conflict' } | { kind: 'gone' };

/** The one side effect: a status write (merge patch of the status subresource). */
export interface StatusWriter {
  write(namespace: string, name: string, status: AttachmentStatus, resourceVersion: string | undefined): Promise<WriteResult>;
}

export interface ControllerMetrics {
  reconciled(result: 'unchanged' | 'written' | 'conflict' | 'gone' | 'error'): void;
  queueDepth(n: number): void;
}

export interface ControllerOptions {
  /** Process once no new event arrived for this long... */
  readonly quietMs: number;
  /** ...or this long after the first pending event, whichever comes first. */
  readonly maxWaitMs: number;
  /** Full recompute as a safety net. */
  readonly resyncMs: number;
  readonly concurrency: number;
  readonly backoffMs: { readonly initial: number; readonly max: number };
}

export const CONTROLLER_DEFAULTS: ControllerOptions = {
  quietMs: 1000,
  maxWaitMs: 10_000,
  resyncMs: 10 * 60_000,
  concurrency: 4,
  backoffMs: { initial: 200, max: 30_000 },
};

export class AttachmentController implements StoreListener {
  private index = new ReferenceIndex();
  private readonly pending = new Set<string>();
  private readonly attempts = new Map<string, number>();
  private active = false;
  // No pass runs before both kinds are fully listed: at 100,000 agents the agent list takes
  // seconds, and a pass over a partial index writes wrong counts only to correct them after.
  private agentsListed = false;
  private connectorsListed = false;
  private firstPendingAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly store: ClusterStore;
  private readonly writer: StatusWriter;
  private readonly logger: Logger;
  private readonly metrics: ControllerMetrics | undefined;
  private readonly options: ControllerOptions;
  /** For tests and the bench: completed reconcile passes. */
  passes = 0;
  /** Called after each reconcile pass (the Secret mirror follows the same changes). */
  onPass: (() => void) | undefined;

  constructor(store: ClusterStore, writer: StatusWriter, logger: Logger, metrics?: ControllerMetrics, options: Partial<ControllerOptions> = {}) {
    this.store = store;
    this.writer = writer;
    this.logger = logger.child({ component: 'attachments' });
    this.metrics = metrics;
    this.options = { ...CONTROLLER_DEFAULTS, ...options };
  }

  // --- informer events: the index is kept current even when this replica is not leader,
  // so taking over needs no extra list.
  agentsReplaced(all: Agent[]): void {
    this.index = ReferenceIndex.build(all);
    this.agentsListed = true;
    this.enqueueAll();
  }

  agentChanged(previous: Agent | undefined, next: Agent | undefined): void {
    for (const key of this.index.update(previous, next)) this.enqueue(key);
  }

  connectorsReplaced(): void {
    this.connectorsListed = true;
    this.enqueueAll();
  }

  connectorChanged(namespace: string, name: string): void {
    this.enqueue(objectKey(namespace, name));
  }

  /** Becomes active (leader): recompute everything, then follow events. */
  start(): void {
    if (this.active) return;
    this.active = true;
    this.logger.info('attachment controller started');
    this.enqueueAll();
    this.resyncTimer = setInterval(() => this.enqueueAll(), this.options.resyncMs);
    this.resyncTimer.unref();
  }

  /** Stops writing (lost leadership or shutdown); waits for writes in flight. */
  async stop(): Promise<void> {
    this.active = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.timer = undefined;
    await this.running;
    this.logger.info('attachment controller stopped');
  }

  get queueDepth(): number {
    return this.pending.size;
  }

  enqueueAll(): void {
    for (const key of this.store.connectors.keys()) this.pending.add(key);
    this.schedule();
  }

  private enqueue(key: string): void {
    this.pending.add(key);
    this.schedule();
  }

  private schedule(delayOverride?: number): void {
    this.metrics?.queueDepth(this.pending.size);
    if (!this.active || !this.agentsListed || !this.connectorsListed || this.pending.size === 0) return;
    const now = Date.now();
    if (this.firstPendingAt === 0) this.firstPendingAt = now;
    const dueByWait = this.firstPendingAt + this.options.maxWaitMs - now;
    const delay = delayOverride ?? Math.max(0, Math.min(this.options.quietMs, dueByWait));
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.drain(), delay);
    this.timer.unref();
  }

  /** Resolves when the queue is empty and nothing is in flight (tests, bench). */
  async idle(): Promise<void> {
    while (this.pending.size > 0 || this.running) {
      await (this.running ?? new Promise((r) => setTimeout(r, 20)));
    }
  }

  private drain(): void {
    this.timer = undefined;
    if (this.running) {
      this.schedule(50); // a pass is in flight; look again right after it
      return;
    }
    const keys = [...this.pending];
    this.pending.clear();
    this.firstPendingAt = 0;
    this.metrics?.queueDepth(0);
    this.running = this.reconcileAll(keys).finally(() => {
      this.running = undefined;
      this.passes++;
      this.onPass?.();
      if (this.pending.size > 0) this.schedule();
    });
  }

  private async reconcileAll(keys: string[]): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (this.active && next < keys.length) {
        const key = keys[next++]!;
        await this.reconcile(key);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, keys.length) }, worker));
  }

  private async reconcile(key: string): Promise<void> {
    const [namespace, name] = splitKey(key);
    const connector = this.store.connector(namespace, name);
    if (!connector) {
      this.attempts.delete(key);
      return; // deleted: nothing to write, not an error
    }
    const want = statusFor(connector, this.index.referencing(key));
    if (statusEquals(connector.status, want)) {
      this.attempts.delete(key);
      this.metrics?.reconciled('unchanged');
      return;
    }
    try {
      const result = await this.writer.write(namespace, name, want, connector.resourceVersion);
      this.metrics?.reconciled(result.kind);
      if (result.kind === 'written') {
        this.attempts.delete(key);
        // Record what we wrote so a re-enqueue before the watch echo does not write again.
        const latest = this.store.connector(namespace, name);
        if (latest && latest.resourceVersion === connector.resourceVersion) this.store.putConnector({ ...latest, status: want, resourceVersion: result.resourceVersion });
        this.logger.info({ connector: key, from: connector.status?.attachedAgents ?? 0, to: want.attachedAgents, agents: want.agentNames.length <= 20 ? want.agentNames : undefined }, 'connector status updated');
      } else if (result.kind === 'conflict') {
        this.retry(key, 'conflict');
      } else {
        this.attempts.delete(key);
      }
    } catch (e) {
      this.metrics?.reconciled('error');
      this.retry(key, e instanceof Error ? e.message : String(e));
    }
  }

  private retry(key: string, why: string): void {
    const n = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.set(key, n);
    const delay = Math.min(this.options.backoffMs.initial * 2 ** (n - 1), this.options.backoffMs.max);
    this.logger.warn({ connector: key, attempt: n, retryInMs: delay, why }, 'status write failed; will retry');
    const t = setTimeout(() => this.enqueue(key), delay);
    t.unref();
  }
}
