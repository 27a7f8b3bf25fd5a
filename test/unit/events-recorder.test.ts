// The Event recorder (src/events/recorder.ts) against a fake clock, fake timers and a fake
// sink that keeps the Events as an API server would: aggregation into series, the patch
// interval, the rate limits, the bounded queue, timeouts, failures, shutdown; and the
// Event bodies it builds (src/events/body.ts).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { eventBody, eventName, microTime, NOTE_MAX_BYTES, REPORTING_CONTROLLER, type EventBody } from '../../src/events/body.ts';
import { EventRecorder, RECORDER_DEFAULTS, type DropReason, type EventSink, type RecorderOptions, type Timers, type WriteKind } from '../../src/events/recorder.ts';
import { TokenBucket } from '../../src/events/token-bucket.ts';
import type { AgentEvent } from '../../src/injection/events.ts';

class FakeTime implements Timers {
  t = 1_767_225_600_000; // 2026-01-01T00:00:00Z
  private seq = 0;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  set(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.due.set(id, { at: this.t + ms, fn });
    return id;
  }
  clear(handle: unknown): void {
    this.due.delete(handle as number);
  }
  /** Moves the clock on by `ms`, running each timer at its time, and lets the promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const next = [...this.due.entries()].filter(([, d]) => d.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      this.due.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

type Behaviour = 'ok' | 'fail' | 'hang' | 'gone';

/** Keeps Events by name, as the API server would; `next` decides how the coming calls go. */
class FakeSink implements EventSink {
  readonly stored = new Map<string, EventBody>();
  readonly calls: { kind: WriteKind; name: string }[] = [];
  next: Behaviour[] = [];
  always: Behaviour = 'ok';
  private behaviour(): Behaviour {
    return this.next.shift() ?? this.always;
  }
  private async run(b: Behaviour, signal: AbortSignal): Promise<void> {
    if (b === 'fail') throw Object.assign(new Error('HTTP 500'), { code: 500 });
    if (b === 'hang') await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
  }
  async create(body: EventBody, signal: AbortSignal): Promise<void> {
    this.calls.push({ kind: 'create', name: body.metadata.name });
    await this.run(this.behaviour(), signal);
    assert.ok(!this.stored.has(body.metadata.name), 'names are unique');
    this.stored.set(body.metadata.name, structuredClone(body));
  }
  async patch(_ns: string, name: string, patch: { series: { count: number; lastObservedTime: string } }, signal: AbortSignal): Promise<'patched' | 'gone'> {
    this.calls.push({ kind: 'patch', name });
    const b = this.behaviour();
    const stored = this.stored.get(name);
    if (b === 'gone' || !stored) {
      this.stored.delete(name);
      return 'gone';
    }
    await this.run(b, signal);
    stored.series = { ...patch.series };
    return 'patched';
  }
  /** The stored Events as [reason, message, count]. */
  summary(): [string, string, number][] {
    return [...this.stored.values()].map((e) => [e.reason, e.note, e.series?.count ?? 1]);
  }
}

function harness(options: Partial<RecorderOptions> = {}) {
  const time = new FakeTime();
  const sink = new FakeSink();
  const dropped = new Map<DropReason, number>();
  const written: WriteKind[] = [];
  const failures: number[] = [];
  let pendingMax = 0;
  const recorder = new EventRecorder(
    sink,
    { ...RECORDER_DEFAULTS, instance: 'replica-1', ...options },
    {
      written: (k) => written.push(k),
      dropped: (r, n) => dropped.set(r, (dropped.get(r) ?? 0) + n),
      pending: (n) => (pendingMax = Math.max(pendingMax, n)),
      failed: (_e, _k, n) => failures.push(n),
    },
    time,
    time,
  );
  return { time, sink, recorder, dropped, written, failures, pendingMax: () => pendingMax };
}

function ev(message = 'connector gone not injected into agent a: connector not found in namespace team-a', agent = 'a', reason = 'ConnectorNotFound', type: AgentEvent['type'] = 'Warning'): AgentEvent {
  return { agent: { namespace: 'team-a', name: agent, uid: `uid-${agent}` }, type, reason, message };
}

describe('aggregation into series', () => {
  test('a burst of 500 identical events over 40 s: one create, a patch at most every 10 s, the count exact', async () => {
    const h = harness();
    for (let i = 0; i < 500; i++) {
      h.recorder.record([ev()]);
      await h.time.advance(80); // 500 x 80 ms = 40 s
    }
    await h.time.advance(RECORDER_DEFAULTS.patchIntervalMs);
    assert.deepEqual(h.sink.summary(), [['ConnectorNotFound', ev().message, 500]]);
    assert.equal(h.written.filter((k) => k === 'create').length, 1);
    const patches = h.written.filter((k) => k === 'patch').length;
    assert.ok(patches >= 3 && patches <= 5, `40 s / 10 s: 3 to 5 patches, got ${patches}`);
    assert.deepEqual([...h.dropped], []);
    const stored = [...h.sink.stored.values()][0]!;
    assert.equal(stored.series?.lastObservedTime, microTime(h.time.now() - RECORDER_DEFAULTS.patchIntervalMs - 80));
  });

  test('identical events that arrive before the first write make one create with the count', async () => {
    const h = harness();
    h.recorder.record([ev(), ev(), ev()]);
    await h.time.advance(0);
    assert.deepEqual(h.sink.summary(), [['ConnectorNotFound', ev().message, 3]]);
    assert.deepEqual(h.written, ['create']);
  });

  test('agent, type, reason and message all tell series apart', async () => {
    const h = harness();
    h.recorder.record([ev(), ev('other message'), ev(undefined, 'b'), ev(undefined, 'a', 'ConnectorDisabled'), ev(undefined, 'a', 'ConnectorNotFound', 'Normal'), ev()]);
    await h.time.advance(0);
    assert.equal(h.sink.stored.size, 5);
    assert.equal(h.sink.summary().filter(([, , n]) => n === 2).length, 1);
  });

  test('after the window, the same event is a new Event', async () => {
    const h = harness();
    h.recorder.record([ev()]);
    await h.time.advance(RECORDER_DEFAULTS.windowMs + 1);
    h.recorder.record([ev()]);
    await h.time.advance(0);
    assert.deepEqual(h.written, ['create', 'create']);
    assert.equal(h.sink.stored.size, 2);
  });

  test('an Event gone under us (expired) is created again with its whole count', async () => {
    const h = harness();
    h.recorder.record([ev()]);
    await h.time.advance(0);
    h.sink.next = ['gone'];
    h.recorder.record([ev(), ev()]);
    await h.time.advance(RECORDER_DEFAULTS.patchIntervalMs);
    assert.deepEqual(h.sink.calls.map((c) => c.kind), ['create', 'patch', 'create']);
    assert.deepEqual(h.sink.summary(), [['ConnectorNotFound', ev().message, 3]]);
  });
});

describe('rate limits', () => {
  test("distinct messages of one agent's reason: its burst, then one per refill; other agents unaffected", async () => {
    const h = harness();
    h.recorder.record(Array.from({ length: 100 }, (_, i) => ev(`injected github into container agent of pod p-${i}`, 'a', 'ConnectorsInjected', 'Normal')));
    h.recorder.record([ev(`injected github into container agent of pod q`, 'b', 'ConnectorsInjected', 'Normal')]);
    await h.time.advance(0);
    assert.equal(h.sink.stored.size, RECORDER_DEFAULTS.similarBurst + 1);
    assert.equal(h.dropped.get('rate_limited'), 100 - RECORDER_DEFAULTS.similarBurst);
    await h.time.advance(RECORDER_DEFAULTS.similarRefillMs);
    h.recorder.record([ev('injected github into container agent of pod late', 'a', 'ConnectorsInjected', 'Normal'), ev('injected github into container agent of pod later', 'a', 'ConnectorsInjected', 'Normal')]);
    await h.time.advance(0);
    assert.equal(h.sink.stored.size, RECORDER_DEFAULTS.similarBurst + 2, 'one more after one refill');
    // Increments of a known series never take from that budget.
    h.recorder.record(Array.from({ length: 50 }, () => ev('injected github into container agent of pod p-0', 'a', 'ConnectorsInjected', 'Normal')));
    await h.time.advance(RECORDER_DEFAULTS.patchIntervalMs);
    assert.equal(h.sink.summary().find(([, m]) => m.endsWith('pod p-0'))?.[2], 51);
  });

  test('the global bucket spaces writes out; they wait in the queue, none is dropped', async () => {
    const h = harness({ qps: 1, burst: 2 });
    h.recorder.record(Array.from({ length: 6 }, (_, i) => ev(undefined, `agent-${i}`)));
    await h.time.advance(0);
    assert.equal(h.sink.calls.length, 2);
    await h.time.advance(1000);
    assert.equal(h.sink.calls.length, 3);
    await h.time.advance(3000);
    assert.equal(h.sink.calls.length, 6);
    assert.deepEqual([...h.dropped], []);
  });

  test('TokenBucket: burst, refill, a clock that steps back', () => {
    const clock = { t: 0, now() { return this.t; } };
    const b = new TokenBucket(2, 3, clock);
    assert.deepEqual([b.take(), b.take(), b.take(), b.take()], [true, true, true, false]);
    assert.equal(b.waitMs(), 500);
    clock.t = 500;
    assert.equal(b.take(), true);
    clock.t = -10_000;
    assert.equal(b.take(), false, 'no refill from a clock going back');
    clock.t = 10_000;
    assert.ok(b.isFull());
  });
});

describe('bounded memory, slow and failing API servers', () => {
  test('a hung API server: writes time out (dropped: timeout), the queue stays bounded (dropped: queue_full)', async () => {
    const h = harness({ maxPending: 5 });
    h.sink.always = 'hang';
    h.recorder.record(Array.from({ length: 50 }, (_, i) => ev(undefined, `agent-${i}`)));
    assert.ok(h.recorder.stats().pending <= 5);
    assert.equal(h.dropped.get('queue_full'), 45);
    // The first write hangs, then times out; the next goes in flight, and so on.
    await h.time.advance(RECORDER_DEFAULTS.writeTimeoutMs * 5 + 100);
    assert.equal(h.dropped.get('timeout'), 5);
    assert.equal(h.recorder.stats().pending, 0);
    assert.ok(h.pendingMax() <= 5, `pending peaked at ${h.pendingMax()}`);
    assert.deepEqual(h.failures, [1], 'failures are logged at most once per 30 s');
    // Forgotten when never created: the next occurrence tries a fresh create.
    h.sink.always = 'ok';
    h.recorder.record([ev(undefined, 'agent-0')]);
    await h.time.advance(0);
    assert.equal(h.sink.stored.size, 1);
  });

  test('a failed write is dropped (write_failed); a failed patch loses no count for good', async () => {
    const h = harness();
    h.recorder.record([ev()]);
    await h.time.advance(0);
    h.sink.next = ['fail'];
    h.recorder.record([ev()]);
    await h.time.advance(RECORDER_DEFAULTS.patchIntervalMs);
    assert.equal(h.dropped.get('write_failed'), 1);
    assert.deepEqual(h.sink.summary(), [['ConnectorNotFound', ev().message, 1]]);
    h.recorder.record([ev()]);
    await h.time.advance(RECORDER_DEFAULTS.patchIntervalMs);
    assert.deepEqual(h.sink.summary(), [['ConnectorNotFound', ev().message, 3]], 'the next patch carries the whole count');
  });

  test('the series cache is bounded; what is waiting is never evicted', async () => {
    const h = harness({ maxSeries: 20 });
    for (let i = 0; i < 200; i++) {
      h.recorder.record([ev(`message ${i}`, `agent-${i % 7}`, `Reason${i % 3}`)]);
      await h.time.advance(RECORDER_DEFAULTS.similarRefillMs);
      assert.ok(h.recorder.stats().series <= 20);
    }
    assert.equal(h.sink.stored.size, 200);
  });

  test('stop: pending patches are written at once, what cannot be is dropped (shutdown), later events too', async () => {
    const h = harness();
    h.recorder.record([ev()]);
    await h.time.advance(0);
    h.recorder.record([ev(), ev()]);
    const stopped = h.recorder.stop(1000);
    await h.time.advance(0);
    await stopped;
    assert.deepEqual(h.sink.summary(), [['ConnectorNotFound', ev().message, 3]], 'patched without waiting for the interval');
    h.recorder.record([ev('after stop')]);
    assert.equal(h.dropped.get('shutdown'), 1);

    const slow = harness();
    slow.sink.always = 'hang';
    slow.recorder.record([ev(undefined, 'x'), ev(undefined, 'y')]);
    const s2 = slow.recorder.stop(500);
    await slow.time.advance(600);
    await s2;
    assert.equal(slow.dropped.get('shutdown'), 1, 'the one not yet in flight');
  });

  test('record() is enqueue only: no write happens before the caller returns', () => {
    const h = harness();
    h.recorder.record([ev()]);
    assert.equal(h.sink.calls.length, 0);
    assert.equal(h.recorder.stats().pending, 1);
  });
});

describe('Event bodies', () => {
  test('events.k8s.io/v1, regarding the KomputerAgent with its uid, client-go style name and MicroTime', () => {
    const body = eventBody(ev(), { name: eventName('a', 1_767_225_600_123, 7), eventTime: 1_767_225_600_123, instance: 'replica-1' });
    assert.deepEqual(body, {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: `a.${(1_767_225_600_123n * 1_000_000n + 7n).toString(16)}`, namespace: 'team-a' },
      eventTime: '2026-01-01T00:00:00.123000Z',
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: 'replica-1',
      action: 'InjectConnectors',
      reason: 'ConnectorNotFound',
      type: 'Warning',
      note: ev().message,
      regarding: { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', namespace: 'team-a', name: 'a', uid: 'uid-a' },
    });
    assert.equal(eventBody(ev(), { name: 'n', eventTime: 0, instance: 'i', series: { count: 1, lastObservedTime: 0 } }).series, undefined, 'a series needs two');
    assert.deepEqual(eventBody(ev(), { name: 'n', eventTime: 0, instance: 'i', series: { count: 2, lastObservedTime: 1000 } }).series, { count: 2, lastObservedTime: '1970-01-01T00:00:01.000000Z' });
  });
  test('limits: a note over 1 KiB is cut at a character, a long agent name still makes a valid name', () => {
    const note = eventBody(ev('é'.repeat(2000)), { name: 'n', eventTime: 0, instance: 'i' }).note;
    assert.ok(Buffer.byteLength(note) <= NOTE_MAX_BYTES && note.endsWith('...') && !note.includes('\uFFFD'));
    const name = eventName('x'.repeat(253), Date.now(), 0);
    assert.ok(name.length <= 253 && /^x+\.[0-9a-f]+$/.test(name));
  });
});
