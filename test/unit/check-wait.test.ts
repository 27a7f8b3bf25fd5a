// `check --wait` (untilHealthy in src/cli/check-output.ts) on a fake clock: it stops at the
// first healthy report, retries unhealthy reports and unusable-input errors (an API server
// not up yet) until the deadline, says why on each retry, and ends with the last report or
// the last error. The live behaviour against an API server is in test/e2e/check.test.ts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { untilHealthy, type WaitDeps } from '../../src/cli/check-output.ts';
import { CliError } from '../../src/cli/io.ts';

function fakeClock(): WaitDeps & { lines: string[]; t: number } {
  const state = {
    t: 0,
    lines: [] as string[],
    progress: (text: string) => void state.lines.push(text),
    now: () => state.t,
    sleep: async (ms: number) => {
      state.t += ms;
    },
  };
  return state;
}

type R = { code: 0 | 1; n: number };

/** An attempt function returning (or throwing) the scripted outcomes in order, 100 ms each. */
function script(clock: { t: number }, outcomes: readonly (0 | 1 | 'unreachable')[]): { attempt: () => Promise<R>; calls: () => number } {
  let i = 0;
  return {
    attempt: async () => {
      const o = outcomes[Math.min(i, outcomes.length - 1)]!;
      i++;
      clock.t += 100;
      if (o === 'unreachable') throw new CliError('cannot reach the API server https://127.0.0.1:1 (context x): connect ECONNREFUSED');
      return { code: o, n: i };
    },
    calls: () => i,
  };
}

const why = (r: R): string => `attempt ${r.n} unhealthy`;

describe('check --wait', () => {
  test('healthy at once: one attempt, no progress lines', async () => {
    const clock = fakeClock();
    const s = script(clock, [0]);
    const r = await untilHealthy(s.attempt, why, 60_000, clock, 2_000);
    assert.deepEqual(r, { code: 0, n: 1 });
    assert.deepEqual(clock.lines, []);
  });

  test('broken, then healthy: retries every interval and says why, ends healthy', async () => {
    const clock = fakeClock();
    const s = script(clock, [1, 1, 'unreachable', 0]);
    const r = await untilHealthy(s.attempt, why, 60_000, clock, 2_000);
    assert.deepEqual(r, { code: 0, n: 4 });
    assert.equal(s.calls(), 4);
    assert.equal(clock.lines.length, 4);
    assert.match(clock.lines[0]!, /^check --wait: attempt 1: attempt 1 unhealthy; retrying in 2s \(60s left\)\n$/);
    assert.match(clock.lines[2]!, /attempt 3: cannot reach the API server .*ECONNREFUSED; retrying in 2s/);
    assert.equal(clock.lines[3], 'check --wait: healthy at attempt 4\n');
    assert.equal(clock.t, 3 * 2_000 + 4 * 100);
  });

  test('broken until the deadline: the last report (exit 1), after the deadline and not much later', async () => {
    const clock = fakeClock();
    const s = script(clock, [1]);
    const r = await untilHealthy(s.attempt, why, 10_000, clock, 2_000);
    assert.equal(r.code, 1);
    assert.ok(clock.t >= 10_000 && clock.t <= 10_000 + 2_000 + 100, `stopped at ${clock.t} ms`);
    assert.match(clock.lines.at(-1)!, /^check --wait: not healthy after 10s \(\d+ attempt\(s\)\): attempt \d+ unhealthy\n$/);
    assert.equal(r.n, s.calls(), 'the report returned is the last one');
  });

  test('the API server never reachable: the last error is thrown at the deadline (exit 2)', async () => {
    const clock = fakeClock();
    const s = script(clock, ['unreachable']);
    await assert.rejects(untilHealthy(s.attempt, why, 5_000, clock, 2_000), (e: unknown) => e instanceof CliError && /ECONNREFUSED/.test(e.message));
    assert.ok(s.calls() >= 3);
  });

  test('other errors are not retried', async () => {
    const clock = fakeClock();
    await assert.rejects(untilHealthy(async (): Promise<R> => Promise.reject(new TypeError("bug")), why, 5_000, clock), TypeError);
    assert.deepEqual(clock.lines, []);
  });
});
