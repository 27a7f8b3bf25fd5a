// The Reflector against a scripted fake API server (plain HTTP on loopback): a watch the server
// ends, one we end (disconnect/stop), 410 Gone, failed attempts with backoff, a connection cut
// mid-watch; which of them warn and how each restart is counted. Also pins the knob that keeps
// @kubernetes/client-node's Watch from cutting quiet watches after 30 s.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, test } from 'node:test';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ClusterInformers } from '../../src/cluster/informers.ts';
import { SERVE_DEFAULTS, WATCH_TIMEOUT_ENV, watchTimeoutSeconds } from '../../src/config/config.ts';
import { Reflector, setWatchInactivityLimit, WATCH_INACTIVITY_MARGIN_MS, type ListPage, type ReflectorSink, type ResourceSource, type WatchRestartReason } from '../../src/cluster/reflector.ts';
import type { JsonObject } from '../../src/model/objects.ts';

/** What the fake server does with one watch request. */
type Script = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let kc: KubeConfig;
/** Scripts for the next watch requests, in order; when empty, a watch is held open silently. */
let scripts: Script[] = [];
/** Query parameters of every watch request so far. */
let watches: URLSearchParams[] = [];
let waiters: (() => void)[] = [];

function event(type: string, object: object): string {
  return `${JSON.stringify({ type, object })}\n`;
}
function obj(name: string, rv: string): object {
  return { metadata: { name, namespace: 'ns', resourceVersion: rv } };
}
const open: Script = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.flushHeaders();
};
/** A watch the server ends normally after these events (what timeoutSeconds does). */
function endsAfter(...events: string[]): Script {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    for (const e of events) res.write(e);
    setTimeout(() => res.end(), 20);
  };
}
function status(code: number): Script {
  return (_req, res) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', code }));
  };
}

before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.searchParams.get('watch') !== 'true') {
      // A list (ClusterInformers' sources): always empty.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '7' }, items: [] }));
      return;
    }
    watches.push(url.searchParams);
    (scripts.shift() ?? open)(req, res);
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'u' }],
    currentContext: 'fake',
  });
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  scripts = [];
  watches = [];
  server.closeAllConnections();
});

/** Resolves once the fake server has seen `n` watch requests in this test. */
async function watchRequests(n: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (watches.length < n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} watch requests, saw ${watches.length}`);
    await new Promise<void>((resolve) => {
      waiters.push(resolve);
      setTimeout(resolve, 50);
    });
  }
  await new Promise((resolve) => setTimeout(resolve, 30)); // let the reflector see the answer
}

function harness(options: { watchTimeoutSeconds?: number; backoffMs?: { initial: number; max: number } } = {}) {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino(
    { level: 'debug', base: undefined },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as (typeof lines)[number]);
        cb();
      },
    }),
  );
  const restarts: WatchRestartReason[] = [];
  let lists = 0;
  const source: ResourceSource<JsonObject> = {
    kind: 'thing',
    watchPath: '/apis/x/v1/things',
    list: async (): Promise<ListPage> => {
      lists++;
      return { items: [obj('a', '5')], resourceVersion: '10', continueToken: undefined };
    },
    decode: (raw) => raw,
  };
  const seen: string[] = [];
  const sink: ReflectorSink<JsonObject> = {
    replace: (items) => seen.push(`replace:${items.length}`),
    upsert: (item) => seen.push(`upsert:${String((item.metadata as JsonObject).name)}`),
    remove: (_ns, name) => seen.push(`remove:${name}`),
  };
  const reflector = new Reflector(kc, source, sink, logger, {
    watchTimeoutSeconds: options.watchTimeoutSeconds ?? 42,
    backoffMs: options.backoffMs ?? { initial: 20, max: 1_000 },
    onRestart: (reason) => restarts.push(reason),
  });
  const running = reflector.run();
  return {
    reflector,
    restarts,
    seen,
    lists: () => lists,
    warnings: () => lines.filter((l) => l.level >= 40),
    async stop() {
      reflector.stop();
      await running;
    },
  };
}

describe('Reflector: watches that end', () => {
  test('a watch the server ends (timeoutSeconds) is restarted from the last version: no warning, counted as timeout', async () => {
    scripts = [endsAfter(event('ADDED', obj('b', '11')), event('BOOKMARK', { metadata: { resourceVersion: '12' } }))];
    const h = harness({ watchTimeoutSeconds: 42 });
    await watchRequests(2);
    await h.stop();
    assert.deepEqual(h.restarts, ['timeout']);
    assert.deepEqual(h.warnings(), []);
    assert.equal(h.lists(), 1, 'no relist after a normal end');
    assert.deepEqual(h.seen, ['replace:1', 'upsert:b']);
    const [first, second] = watches;
    assert.equal(first?.get('resourceVersion'), '10');
    assert.equal(first?.get('timeoutSeconds'), '42');
    assert.equal(first?.get('allowWatchBookmarks'), 'true');
    assert.equal(second?.get('resourceVersion'), '12', 'resumed from the bookmark');
  });

  test('disconnect() and stop() end a watch on purpose: no warning, disconnect counted, stop not a restart', async () => {
    const h = harness();
    await watchRequests(1);
    h.reflector.disconnect();
    await watchRequests(2);
    assert.equal(watches[1]?.get('resourceVersion'), '10');
    await h.stop();
    assert.deepEqual(h.restarts, ['disconnect']);
    assert.deepEqual(h.warnings(), []);
  });

  test('stop() while the watch is still connecting ends it once established, without a warning', async () => {
    scripts = [
      (req, res) => {
        setTimeout(() => open(req, res), 150); // headers late
      },
    ];
    const h = harness();
    await watchRequests(1);
    await h.stop();
    assert.deepEqual(h.restarts, []);
    assert.deepEqual(h.warnings(), []);
    assert.equal(watches.length, 1);
  });

  test('410 Gone in the stream: relist, counted as expired, no warning', async () => {
    scripts = [endsAfter(event('ERROR', { kind: 'Status', code: 410, reason: 'Expired' }))];
    const h = harness();
    await watchRequests(2);
    await h.stop();
    assert.deepEqual(h.restarts, ['expired']);
    assert.equal(h.lists(), 2);
    assert.deepEqual(h.warnings(), []);
  });

  test('an ERROR event other than 410 in the stream is a failure, not a normal end', async () => {
    scripts = [endsAfter(event('ERROR', { kind: 'Status', code: 500, message: 'etcd unavailable' }))];
    const h = harness();
    await watchRequests(2);
    await h.stop();
    assert.deepEqual(h.restarts, ['error']);
    assert.deepEqual(
      h.warnings().map((w) => w['err']),
      ['watch error event: etcd unavailable (500)'],
    );
    assert.equal(h.lists(), 1);
  });

  test('failed attempts: one warning each, with a growing backoff, counted as error; then it recovers', async () => {
    scripts = [status(500), status(503), status(500)];
    const h = harness({ backoffMs: { initial: 20, max: 1_000 } });
    await watchRequests(4);
    await h.stop();
    assert.deepEqual(h.restarts, ['error', 'error', 'error']);
    const warnings = h.warnings();
    assert.equal(warnings.length, 3);
    assert.ok(warnings.every((w) => w.msg === 'list/watch failed; retrying'));
    assert.deepEqual(
      warnings.map((w) => w['retryInMs']),
      [20, 40, 80],
    );
    assert.equal(watches[3]?.get('resourceVersion'), '10', 'resumed without a relist: the version was known');
  });

  test('a connection cut mid-watch is a failure (warning, error), not a normal end', async () => {
    scripts = [
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(event('ADDED', obj('c', '13')));
        setTimeout(() => res.socket?.destroy(), 30);
      },
    ];
    const h = harness();
    await watchRequests(2);
    await h.stop();
    assert.deepEqual(h.restarts, ['error']);
    assert.equal(h.warnings().length, 1);
    assert.equal(watches[1]?.get('resourceVersion'), '13');
  });
});

describe('the watch inactivity limit', () => {
  test('the Reflector sets the client limit above the server-side timeout', () => {
    const r = new Reflector(kc, { kind: 'x', watchPath: '/x', list: async () => ({ items: [], resourceVersion: '1', continueToken: undefined }), decode: (raw) => raw }, { replace() {}, upsert() {}, remove() {} }, pino({ level: 'silent' }), { watchTimeoutSeconds: 60 });
    const limit = (r as unknown as { watch: { requestTimeoutMs: number } }).watch.requestTimeoutMs;
    assert.equal(limit, 60_000 + WATCH_INACTIVITY_MARGIN_MS);
    assert.ok(limit > 60_000);
  });

  test("setWatchInactivityLimit changes the library Watch's real timer (pins @kubernetes/client-node's private field)", async () => {
    const silentFor = async (limitMs: number, waitMs: number): Promise<unknown> => {
      const w = new Watch(kc);
      setWatchInactivityLimit(w, limitMs);
      let done: unknown = 'still open';
      const abort = await w.watch('/silent', {}, () => undefined, (err: unknown) => {
        done = err ?? 'ended';
      });
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      const result = done;
      abort.abort();
      return result;
    };
    const cut = await silentFor(150, 600);
    assert.ok(cut instanceof Error && cut.name === 'TimeoutError', `a silent watch is cut after the limit: ${String(cut)}`);
    assert.equal(await silentFor(5_000, 600), 'still open', 'and not before it');
  });

  test('refuses a Watch without the field rather than silently keeping the 30 s default', () => {
    assert.throws(() => setWatchInactivityLimit({} as unknown as Watch, 1_000), /requestTimeoutMs/);
  });
});

describe('ClusterInformers: restarts reach the callback by kind', () => {
  test('each reflector reports under its cache kind (namespaces, connectors, agents), with the watch timeout passed through', async () => {
    const got: string[] = [];
    const informers = new ClusterInformers(kc, pino({ level: 'silent' }), { watchTimeoutSeconds: 77, watchRestarted: (kind, reason) => got.push(`${kind}:${reason}`) });
    informers.start();
    await watchRequests(3);
    assert.deepEqual(informers.unsynced(), []);
    assert.deepEqual(watches.map((w) => w.get('timeoutSeconds')), ['77', '77', '77']);
    informers.disconnectAll();
    await watchRequests(6);
    await informers.stop();
    assert.deepEqual(got.sort(), ['agents:disconnect', 'connectors:disconnect', 'namespaces:disconnect']);
  });
});

describe('watchTimeoutSeconds (config)', () => {
  test('the config value, else the environment, else 300', () => {
    assert.equal(watchTimeoutSeconds({ watchTimeoutSeconds: 60 }, { [WATCH_TIMEOUT_ENV]: '90' }), 60);
    assert.equal(watchTimeoutSeconds({}, { [WATCH_TIMEOUT_ENV]: ' 90 ' }), 90);
    assert.equal(watchTimeoutSeconds({}, {}), 300);
    assert.equal(watchTimeoutSeconds({}, { [WATCH_TIMEOUT_ENV]: '' }), 300);
    assert.equal(SERVE_DEFAULTS.watchTimeoutSeconds, 300);
  });
  test('refuses a value that is not a positive integer', () => {
    for (const bad of ['0', '-5', '1.5', '30s', 'abc']) assert.throws(() => watchTimeoutSeconds({}, { [WATCH_TIMEOUT_ENV]: bad }), /KOMPUTER_WATCH_TIMEOUT_SECONDS must be a positive integer/, bad);
  });
});
