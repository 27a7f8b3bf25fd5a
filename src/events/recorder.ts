// Records AgentEvents as events.k8s.io/v1 Events, off the admission path: `record` only
// enqueues (a few map operations, no I/O, never throws), one worker writes.
//
// - Aggregation: an event identical to one seen within `windowMs` (same agent, type, reason
//   and message) is not a new Event: it bumps that Event's `series.count` and
//   `series.lastObservedTime`, written by a strategic merge PATCH at most once per
//   `patchIntervalMs` per Event (client-go's events broadcaster does the same for
//   events.k8s.io/v1, with a 30-minute heartbeat; here the count follows within seconds).
//   A burst of pods for one agent is one create per distinct event plus a few patches.
// - Bounded memory: at most `maxPending` Events waiting for a write and `maxSeries` known
//   series (least recently seen forgotten first; never one waiting or being written).
// - Rate limits (token buckets): every write takes a token of the global bucket (`qps`,
//   `burst`); a new Event (not an increment) also takes one of its (agent, type, reason)
//   bucket (`similarBurst`, one back every `similarRefillMs`), so one agent's stream of
//   distinct messages cannot flood its `kubectl describe` or the budget of others.
// - Drops, counted by reason, never retried in a loop: queue_full, rate_limited (an agent's
//   similar-event budget), timeout (a write over `writeTimeoutMs`), write_failed (any other
//   API error), shutdown (still pending when the service stopped). A failed patch loses
//   nothing for good: the series count is kept and the next occurrence writes all of it.

import type { AgentEvent } from '../injection/events.ts';
import { eventBody, eventName, seriesPatch, type EventBody } from './body.ts';
import { systemClock, TokenBucket, type Clock } from './token-bucket.ts';

export const DROP_REASONS = ['queue_full', 'rate_limited', 'timeout', 'write_failed', 'shutdown'] as const;
export type DropReason = (typeof DROP_REASONS)[number];
export const WRITE_KINDS = ['create', 'patch'] as const;
export type WriteKind = (typeof WRITE_KINDS)[number];

/** The API calls, behind an interface so the recorder's logic runs against a fake. */
export interface EventSink {
  create(body: EventBody, signal: AbortSignal): Promise<void>;
  /** `gone`: the Event no longer exists (expired, deleted): the recorder creates it again. */
  patch(namespace: string, name: string, patch: ReturnType<typeof seriesPatch>, signal: AbortSignal): Promise<'patched' | 'gone'>;
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** Real timers that never keep the process alive. */
export const systemTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface RecorderOptions {
  /** Events waiting for a write (new ones and series to patch). */
  readonly maxPending: number;
  /** Series remembered for aggregation (and similar-event buckets). */
  readonly maxSeries: number;
  /** An identical event within this long of the last one continues its series. */
  readonly windowMs: number;
  /** Least time between two writes of one Event. */
  readonly patchIntervalMs: number;
  /** All writes: sustained rate and burst. */
  readonly qps: number;
  readonly burst: number;
  /** New Events per (agent, type, reason): burst, and one more every this long. */
  readonly similarBurst: number;
  readonly similarRefillMs: number;
  readonly writeTimeoutMs: number;
  /** `reportingInstance`: this replica. */
  readonly instance: string;
}

export const RECORDER_DEFAULTS: Omit<RecorderOptions, 'instance'> = {
  maxPending: 1000,
  maxSeries: 4096,
  windowMs: 10 * 60_000,
  patchIntervalMs: 10_000,
  qps: 10,
  burst: 50,
  similarBurst: 10,
  similarRefillMs: 30_000,
  writeTimeoutMs: 3_000,
};

export interface RecorderHooks {
  written?(kind: WriteKind): void;
  dropped?(reason: DropReason, n: number): void;
  /** Events waiting for a write, after each change. */
  pending?(n: number): void;
  /** A write failed; called at most once per 30 s, with how many failures it stands for. */
  failed?(error: unknown, kind: WriteKind, failures: number): void;
}

interface Series {
  readonly key: string;
  readonly event: AgentEvent;
  /** The Event object's name, once a create was attempted. */
  name: string;
  readonly firstObserved: number;
  count: number;
  lastObserved: number;
  /** The count the API server has; 0 until the Event is created. */
  written: number;
  lastWrite: number;
  inFlight: boolean;
}

class WriteTimeout extends Error {
  override name = 'WriteTimeout';
}

function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new WriteTimeout('event write timed out'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

const FAILURE_LOG_INTERVAL_MS = 30_000;

export class EventRecorder {
  private readonly sink: EventSink;
  private readonly options: RecorderOptions;
  private readonly hooks: RecorderHooks;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly bucket: TokenBucket;
  /** Known series, least recently observed first. */
  private readonly series = new Map<string, Series>();
  /** Keys waiting for a write, in arrival order. */
  private readonly pending = new Set<string>();
  private readonly similar = new Map<string, TokenBucket>();
  private seq = 0;
  private timer: { handle: unknown; at: number } | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private flushing = false;
  private stopped = false;
  private failures = 0;
  private lastFailureLog = -Infinity;

  constructor(sink: EventSink, options: RecorderOptions, hooks: RecorderHooks = {}, clock: Clock = systemClock, timers: Timers = systemTimers) {
    this.sink = sink;
    this.options = options;
    this.hooks = hooks;
    this.clock = clock;
    this.timers = timers;
    this.bucket = new TokenBucket(options.qps, options.burst, clock);
  }

  /** Enqueues; returns at once. Safe to call with anything (an empty list, after stop). */
  record(events: readonly AgentEvent[] | undefined): void {
    if (!events || events.length === 0) return;
    if (this.stopped) {
      this.drop('shutdown', events.length);
      return;
    }
    for (const event of events) this.observe(event);
    this.hooks.pending?.(this.pending.size);
    if (this.pending.size > 0) this.schedule(0);
  }

  /** Events waiting for a write, and series known. */
  stats(): { pending: number; series: number } {
    return { pending: this.pending.size, series: this.series.size };
  }

  private drop(reason: DropReason, n = 1): void {
    this.hooks.dropped?.(reason, n);
  }

  private observe(event: AgentEvent): void {
    const now = this.clock.now();
    const a = event.agent;
    const key = JSON.stringify([a.namespace, a.name, a.uid ?? '', event.type, event.reason, event.message]);
    let s = this.series.get(key);
    if (s && !s.inFlight && !this.pending.has(key) && now - s.lastObserved > this.options.windowMs) {
      // The series is over: the next one is a new Event.
      this.series.delete(key);
      s = undefined;
    }
    if (s) {
      s.count++;
      s.lastObserved = now;
      this.series.delete(key);
      this.series.set(key, s);
      // Being written: the write's end sees the higher count and queues a patch.
      if (s.inFlight || this.pending.has(key)) return;
      if (this.pending.size >= this.options.maxPending) return this.drop('queue_full');
      this.pending.add(key);
      return;
    }
    if (this.pending.size >= this.options.maxPending) return this.drop('queue_full');
    if (!this.similarBucket(event).take()) return this.drop('rate_limited');
    this.series.set(key, { key, event, name: '', firstObserved: now, count: 1, lastObserved: now, written: 0, lastWrite: now, inFlight: false });
    this.pending.add(key);
    this.evict();
  }

  private similarBucket(event: AgentEvent): TokenBucket {
    const a = event.agent;
    const key = JSON.stringify([a.namespace, a.name, a.uid ?? '', event.type, event.reason]);
    let b = this.similar.get(key);
    if (b) this.similar.delete(key);
    else b = new TokenBucket(1000 / this.options.similarRefillMs, this.options.similarBurst, this.clock);
    this.similar.set(key, b);
    // Least recently used first; a full bucket is the same as a fresh one.
    for (const [k, old] of this.similar) {
      if (this.similar.size <= this.options.maxSeries) break;
      if (old !== b) this.similar.delete(k);
    }
    return b;
  }

  /** Forgets the least recently observed series that nothing waits on, down to the bound. */
  private evict(): void {
    if (this.series.size <= this.options.maxSeries) return;
    for (const [k, s] of this.series) {
      if (this.series.size <= this.options.maxSeries) return;
      if (s.inFlight || this.pending.has(k)) continue;
      this.series.delete(k);
    }
  }

  private schedule(ms: number): void {
    if (this.stopped && !this.flushing) return;
    const at = this.clock.now() + Math.max(0, ms);
    if (this.timer && this.timer.at <= at) return;
    if (this.timer) this.timers.clear(this.timer.handle);
    const handle = this.timers.set(() => {
      if (this.timer?.handle === handle) this.timer = undefined;
      void this.pump();
    }, Math.max(0, ms));
    this.timer = { handle, at };
  }

  private clearTimer(): void {
    if (this.timer) this.timers.clear(this.timer.handle);
    this.timer = undefined;
  }

  /** Writes everything due now within the rate limit; schedules itself for the rest. Single-flight. */
  pump(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = async (): Promise<void> => {
      do {
        this.again = false;
        await this.drain();
      } while (this.again);
    };
    this.running = run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      let next: Series | undefined;
      let soonest = Infinity;
      for (const key of this.pending) {
        const s = this.series.get(key);
        if (!s) {
          this.pending.delete(key);
          continue;
        }
        if (s.inFlight) continue;
        const due = s.written === 0 || this.flushing ? now : s.lastWrite + this.options.patchIntervalMs;
        if (due <= now) {
          next = s;
          break;
        }
        soonest = Math.min(soonest, due);
      }
      if (!next) {
        if (soonest < Infinity) this.schedule(soonest - now);
        return;
      }
      const wait = this.bucket.waitMs();
      if (wait > 0 || !this.bucket.take()) {
        if (!this.flushing) {
          this.schedule(Math.max(wait, 1));
          return;
        }
        // Stopping: wait for the token here (stop() bounds how long).
        await new Promise<void>((resolve) => this.timers.set(resolve, Math.max(wait, 1)));
        if (!this.flushing) return;
        continue;
      }
      this.pending.delete(next.key);
      this.hooks.pending?.(this.pending.size);
      await this.write(next);
    }
  }

  private async write(s: Series): Promise<void> {
    const count = s.count;
    const series = { count, lastObservedTime: s.lastObserved };
    let kind: WriteKind = s.written === 0 ? 'create' : 'patch';
    s.inFlight = true;
    const abort = new AbortController();
    const timer = this.timers.set(() => abort.abort(), this.options.writeTimeoutMs);
    try {
      if (kind === 'patch') {
        const result = await raceAbort(this.sink.patch(s.event.agent.namespace, s.name, seriesPatch(series), abort.signal), abort.signal);
        // Expired under us: created again, count and all (as client-go does).
        if (result === 'gone') kind = 'create';
      }
      if (kind === 'create') {
        s.name = eventName(s.event.agent.name, this.clock.now(), this.seq++);
        await raceAbort(this.sink.create(eventBody(s.event, { name: s.name, eventTime: s.firstObserved, instance: this.options.instance, series }), abort.signal), abort.signal);
      }
      s.written = count;
      this.hooks.written?.(kind);
    } catch (error) {
      this.drop(abort.signal.aborted || error instanceof WriteTimeout ? 'timeout' : 'write_failed');
      this.failed(error, kind);
      // Never created: forget it, so a later occurrence tries a fresh create.
      if (s.written === 0 && this.series.get(s.key) === s) this.series.delete(s.key);
    } finally {
      this.timers.clear(timer);
      s.inFlight = false;
      s.lastWrite = this.clock.now();
    }
    // Seen again while being written: the new count goes in a patch.
    if (this.series.get(s.key) === s && s.count > s.written && !this.pending.has(s.key)) {
      if (this.pending.size >= this.options.maxPending) this.drop('queue_full');
      else this.pending.add(s.key);
      this.hooks.pending?.(this.pending.size);
    }
  }

  private failed(error: unknown, kind: WriteKind): void {
    this.failures++;
    const now = this.clock.now();
    if (now - this.lastFailureLog < FAILURE_LOG_INTERVAL_MS) return;
    this.lastFailureLog = now;
    this.hooks.failed?.(error, kind, this.failures);
    this.failures = 0;
  }

  /**
   * Stops taking events; writes what is pending (series patches without waiting for their
   * interval) for at most `flushMs`, then drops the rest as `shutdown`.
   */
  async stop(flushMs = 1000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.flushing = true;
    this.clearTimer();
    let deadline: unknown;
    await Promise.race([this.pump(), new Promise<void>((resolve) => (deadline = this.timers.set(resolve, flushMs)))]);
    this.timers.clear(deadline);
    this.flushing = false;
    this.clearTimer();
    if (this.pending.size > 0) this.drop('shutdown', this.pending.size);
    this.pending.clear();
    this.hooks.pending?.(0);
  }
}
