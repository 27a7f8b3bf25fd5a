// The regression gate of `npm run bench` (bench/pair.ts) can fail: this checkout against a
// copy of itself whose pod decision spins 20 µs per request, in short pairs on the same
// core at the same time, must fail the 1.05 gate and name our decision's layer as the one
// that grew; the same build against itself (the control pair) is reported beside it. Needs
// wrk and 2 cores, as the benchmarks do.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { clusterState, podReview } from '../../bench/fixtures.ts';
import { children, ensureWrk, stateWorkspace } from '../../bench/load.ts';
import { GATE, compare, comparisonMarkdown, slowedBuild, stateStarter, type Build } from '../../bench/pair.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

test('a 20 µs busy-loop in the decision fails the paired gate, naming the layer', { timeout: 180_000 }, async () => {
  // wrk: installed from Debian packages when missing and running as root, else the command to run is printed.
  ensureWrk((m) => process.stdout.write(`${m}\n`));
  const ws = await stateWorkspace('bench-gate-test-', podReview(), clusterState(10, 600, 100));
  const checkout: Build = { label: 'checkout', root: ROOT };
  const slowed = slowedBuild(checkout, 20);
  const lines: string[] = [];
  try {
    const c = await compare({ mode: '--state', baseline: checkout, candidate: slowed, start: stateStarter(ws), pairs: 5, controls: 1, seconds: 2, warmup: 2, bodyFile: ws.bodyFile, scratch: ws.dir, say: (m) => lines.push(m) });
    const report = comparisonMarkdown(c);
    assert.equal(c.failed, true, `the gate must fail:\n${report}\n${lines.join('\n')}`);
    assert.ok(c.median > GATE, report);
    // The control pair (same build twice) is measured and reported: the noise floor. On a
    // busy machine one control pair can stray as far as the slowed build, so it is not compared.
    assert.ok(c.controlMedian !== undefined && Number.isFinite(c.controlMedian), report);
    const top = c.layers?.[0];
    assert.ok(top, 'a failed gate names the layers');
    // The decision: injectPod, or its caller in src/admission when V8 inlines it there.
    assert.match(top.layer, /^ours: src\/(injection|admission)$/, `the layer that grew most is the decision's:\n${report}`);
    assert.ok(top.grewUs >= 10, `it grew by about the loop's 20 µs:\n${report}`);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    rmSync(ws.dir, { recursive: true, force: true });
    rmSync(slowed.root, { recursive: true, force: true });
  }
});
