// Polling with a deadline, for the eventually-consistent parts (watch caches, the controller).

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/** Calls `probe` every 200 ms until it is ok; fails the test with the last detail after `timeoutMs`. */
export async function poll<T>(what: string, probe: () => Promise<{ ok: boolean; value: T; detail: string }>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await probe();
    if (r.ok) return r.value;
    last = r.detail;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms; last: ${last}`);
    await sleep(200);
  }
}
