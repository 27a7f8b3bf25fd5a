// `npm run bench:deopt`: does V8 keep the request path optimised under load? Serves `--state`
// with the image's V8 flags plus --trace-opt --trace-deopt, warms up under wrk (16
// connections), then counts, over a measured window, which request-path functions V8
// compiled, optimised and de-optimised (and why). Healthy: each handler optimised once, no
// de-optimisation. Pass a built tree to trace another build (e.g. the gate's baseline):
//
//   node bench/deopt.ts [ROOT]      ROOT holds dist/src/cli/main.js (default: this checkout)

import { spawn } from 'node:child_process';
import { openSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SERVE_NODE_FLAGS } from '../src/server/node-flags.ts';
import { clusterState, podReview } from './fixtures.ts';
import { children, ensureWrk, freePort, pinned, stateWorkspace, untilAnswering, wrk } from './load.ts';

const say = (m: string): void => void process.stdout.write(`[bench:deopt] ${m}\n`);
/** The functions a pod admission runs through, edge to core. */
const REQUEST_PATH = /\b(mutatePod|processReview|processReviewAwaitingCache|answer|sendJson|readBody|decodeReview|patched|injectPod|injectDetected|resolveConnectors|envOps|detectAgentPod|podAdmissionEvents|injectedSummary)\b/;

export function summarize(trace: string): [string, number][] {
  const out = new Map<string, number>();
  for (const line of trace.split('\n')) {
    if (!REQUEST_PATH.test(line)) continue;
    const fn = /<JSFunction (\S+)/.exec(line)?.[1];
    if (!fn || !REQUEST_PATH.test(fn)) continue;
    const bailout = /bailout \(kind: ([^,]+), reason: ([^)]+)\)/.exec(line);
    const key = bailout ? `de-optimised ${fn}: ${bailout[1]}, ${bailout[2]}` : /completed optimizing/.test(line) ? `optimised ${fn}` : /compiling method/.test(line) ? `compiling ${fn}` : undefined;
    if (key) out.set(key, (out.get(key) ?? 0) + 1);
  }
  return [...out].sort((a, b) => a[0].localeCompare(b[0]));
}

async function main(): Promise<void> {
  const root = resolve(process.argv[2] ?? join(import.meta.dirname, '..'));
  say(ensureWrk(say));
  const ws = await stateWorkspace('bench-deopt-', podReview(), clusterState(10, 600, 100));
  try {
    const port = await freePort();
    const metricsPort = await freePort();
    const log = join(ws.dir, 'trace.log');
    const out = openSync(log, 'w');
    const argv = pinned(0, [process.execPath, ...SERVE_NODE_FLAGS, '--trace-opt', '--trace-deopt', join(root, 'dist/src/cli/main.js'), 'serve', '--state', ws.stateFile, '--cert-dir', ws.certDir, '--host', '127.0.0.1', '--port', String(port), '--metrics-host', '127.0.0.1', '--metrics-port', String(metricsPort), '--drain-ms', '0']);
    // The request log off: the trace goes to stdout.
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...ws.env, LOG_LEVEL: 'silent' }, stdio: ['ignore', out, out] });
    children.add(child);
    await untilAnswering(port, ws.caCert);
    const warm = await wrk({ port, connections: 16, seconds: 6, bodyFile: ws.bodyFile, cpu: 1 });
    const mark = readFileSync(log, 'utf8').length;
    const measured = await wrk({ port, connections: 16, seconds: 10, bodyFile: ws.bodyFile, cpu: 1 });
    child.kill('SIGKILL');
    const text = readFileSync(log, 'utf8');
    say(`${root}: ${warm.summary.requests} requests of warm-up, then ${measured.summary.requests} measured`);
    for (const [what, rows] of [['warm-up', summarize(text.slice(0, mark))], ['measured window', summarize(text.slice(mark))]] as const) {
      say(`${what}:`);
      for (const [k, n] of rows) say(`  ${k}${n > 1 ? ` (${n}×)` : ''}`);
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    rmSync(ws.dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
