// bench/node/measure.ts: a replica's memory from its cgroup v1 files (the working set as
// the kubelet counts it: usage minus inactive file pages), the nearest-rank percentile the
// latency figures use, and the message of a refused API request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCgroupMemory, percentile, statusMessage } from '../../bench/node/measure.ts';

const stat = ['cache 104857600', 'rss 52428800', 'total_cache 104857600', 'total_rss 209715200', 'total_inactive_file 31457280', 'total_active_file 73400320'].join('\n');

test('parseCgroupMemory: working set = usage - total_inactive_file; anonymous = total_rss (the hierarchy, not the cgroup alone)', () => {
  const m = parseCgroupMemory({ usage: '314572800\n', stat, peak: '340000000\n', limit: '603979776\n', failcnt: '0\n' });
  assert.deepEqual(m, { workingSetBytes: 314572800 - 31457280, anonBytes: 209715200, usageBytes: 314572800, peakBytes: 340000000, limitBytes: 603979776, failcnt: 0 });
});

test('parseCgroupMemory: never a negative working set; a usage that is not a number is an error', () => {
  assert.equal(parseCgroupMemory({ usage: '1000', stat: 'total_inactive_file 5000', peak: '1', limit: '1', failcnt: '3' }).workingSetBytes, 0);
  assert.throws(() => parseCgroupMemory({ usage: 'garbage', stat, peak: '1', limit: '1', failcnt: '0' }), /usage_in_bytes is not a number/);
});

test('percentile: nearest rank; with few samples p99 is the largest', () => {
  const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  assert.equal(percentile(xs, 0.5), 5);
  assert.equal(percentile(xs, 0.99), 10);
  assert.equal(percentile([7], 0.5), 7);
  assert.ok(Number.isNaN(percentile([], 0.5)));
});

test("statusMessage: the Status's message, else the body's start", () => {
  assert.equal(statusMessage('{"kind":"Status","message":"Internal error occurred: failed calling webhook"}'), 'Internal error occurred: failed calling webhook');
  assert.equal(statusMessage('plain text'), 'plain text');
});
