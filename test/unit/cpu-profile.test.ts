// bench/profile.ts splits a V8 .cpuprofile into layers; the split is the measured reason
// the request path trails the ceiling, so its rules are pinned here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attribute, layerOf, type CpuProfile } from '../../bench/profile.ts';

const f = (functionName: string, url: string): { functionName: string; url: string } => ({ functionName, url });
const ROOT = 'file:///work/main';

test('frames map to layers by where their code lives', () => {
  const cases: [string, { functionName: string; url: string }[]][] = [
    ['express and its deps', [f('handle', `${ROOT}/node_modules/express/lib/application.js`)]],
    ['express and its deps', [f('next', `${ROOT}/node_modules/router/index.js`)]],
    ['fast-json-patch', [f('compare', `${ROOT}/node_modules/fast-json-patch/commonjs/duplex.js`)]],
    ['@kubernetes/client-node', [f('watch', `${ROOT}/node_modules/@kubernetes/client-node/dist/watch.js`)]],
    ['pino (request log)', [f('asJson', `${ROOT}/node_modules/pino/lib/tools.js`)]],
    ['pino (request log)', [f('write', `${ROOT}/node_modules/sonic-boom/index.js`)]],
    ['prom-client (metrics)', [f('observe', `${ROOT}/node_modules/prom-client/lib/histogram.js`)]],
    ['ours: src/injection', [f('injectPod', `${ROOT}/dist/src/injection/inject.js`)]],
    ['ours: src/server', [f('parseJson', `${ROOT}/dist/src/server/body.js`)]],
    ['reference code', [f('handle', `${ROOT}/dist/bench/reference/ceiling.js`)]],
    ['node: TLS', [f('onStreamRead', 'node:_tls_wrap')]],
    ['node: HTTP', [f('parserOnIncoming', 'node:_http_server')]],
    ['node: net, streams, events', [f('Readable.read', 'node:internal/streams/readable')]],
    ['GC (main thread)', [f('(garbage collector)', ''), f('(root)', '')]],
    ['idle', [f('(idle)', ''), f('(root)', '')]],
    ['V8/native, no JS caller', [f('(program)', ''), f('(root)', '')]],
    // Built-ins are named with the layer that called them.
    ['JSON.parse', [f('parse', ''), f('parseJson', `${ROOT}/dist/src/server/body.js`)]],
    ['JSON.stringify from express and its deps', [f('stringify', ''), f('json', `${ROOT}/node_modules/express/lib/response.js`)]],
    ['built-in writev from node: net, streams, events', [f('writev', ''), f('writevGeneric', 'node:internal/stream_base_commons')]],
    ['built-in writeString from node: other', [f('writeString', ''), f('write', 'node:fs')]],
  ];
  for (const [want, stack] of cases) assert.equal(layerOf(stack), want, JSON.stringify(stack));
});

test('self time per layer counts only the samples inside the window, each standing for the time to the next sample', () => {
  // root(1) -> a: express(2) -> b: built-in stringify(3); root -> c: ours(4); root -> gc(5)
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: f('(root)', ''), children: [2, 4, 5] },
      { id: 2, callFrame: f('json', `${ROOT}/node_modules/express/lib/response.js`), children: [3] },
      { id: 3, callFrame: f('stringify', '') },
      { id: 4, callFrame: f('injectPod', `${ROOT}/dist/src/injection/inject.js`) },
      { id: 5, callFrame: f('(garbage collector)', '') },
    ],
    startTime: 1000,
    // sample times: 1010, 1020, 1050, 1060, 1100, 1200
    samples: [2, 3, 4, 5, 4, 2],
    timeDeltas: [10, 10, 30, 10, 40, 100],
  };
  const all = attribute(profile, 0, 10_000);
  assert.deepEqual(Object.fromEntries(all), {
    'express and its deps': 10 + 0, // 1010 stands for 10 µs (to 1020); the last sample for nothing
    'JSON.stringify from express and its deps': 30,
    'ours: src/injection': 10 + 100,
    'GC (main thread)': 40,
  });
  const window = attribute(profile, 1020, 1060);
  assert.deepEqual(Object.fromEntries(window), { 'JSON.stringify from express and its deps': 30, 'ours: src/injection': 10, 'GC (main thread)': 40 });
});
