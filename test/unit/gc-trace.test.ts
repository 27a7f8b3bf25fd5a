// bench/gc.ts reads V8's --trace-gc lines (Node 24's format) into pauses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGcTrace } from '../../bench/gc.ts';

test('scavenges and mark-compacts with their main-thread pause; pino lines and other text ignored', () => {
  const text = [
    '[2313:0x31bd7000]       36 ms: Scavenge 4.9 (6.0) -> 4.5 (7.0) MB, pooled: 0 MB, 1.77 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ',
    '{"level":30,"time":1,"msg":"admission","verdict":"patched"}',
    '[2329:0x2e660000]       29 ms: Mark-Compact 3.9 (5.8) -> 3.7 (6.5) MB, pooled: 0 MB, 5.96 / 0.00 ms  (average mu = 0.755, current mu = 0.755) testing; GC in old space requested',
    '[2329:0x2e660000]     5029 ms: Mark-Compact (reduce) 30.1 (35.8) -> 20.7 (26.5) MB, pooled: 0 MB, 12.50 / 0.00 ms  (average mu = 0.9, current mu = 0.9) memory reducer',
    '[2329:0x2e660000]     6029 ms: Scavenge 40.1 (45.0) -> 39.5 (46.0) MB, 0.42 / 0.00 ms  (older format without pooled)',
    'garbage 12 ms: Scavenge without numbers',
  ].join('\n');
  assert.deepEqual(parseGcTrace(text), [
    { kind: 'scavenge', ms: 1.77 },
    { kind: 'mark-compact', ms: 5.96 },
    { kind: 'mark-compact', ms: 12.5 },
    { kind: 'scavenge', ms: 0.42 },
  ]);
});
