// `npm run bench:gc`: where the request-path tail comes from. Runs our service (from a state
// file: 10 agents, 10,000 connectors) and the ceiling with V8's `--trace-gc`, each pinned to
// CPU 0 with wrk on CPU 1, at 1 and 16 connections, and sets every GC pause of the measured
// window against wrk's latency percentiles; ours runs twice, logging one line per request
// (LOG_LEVEL=info, as shipped) and not at all (LOG_LEVEL=warn), to isolate the log line's
// share. Prints one table and writes bench/results/gc-latest.json. Takes about a minute.
//
//   BENCH_SECONDS / BENCH_WARMUP   measured seconds (default 6) after warm-up (default 2)

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SERVE_NODE_FLAGS } from '../src/server/node-flags.ts';
import { clusterState, podReview } from './fixtures.ts';
import { children, ensureWrk, freePort, pinned, stateWorkspace, untilAnswering, wrk, type WrkRun } from './load.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS) > 0 ? Number(process.env.BENCH_SECONDS) : 6;
const WARMUP = Number(process.env.BENCH_WARMUP) > 0 ? Number(process.env.BENCH_WARMUP) : 2;
const say = (m: string): void => void process.stdout.write(`[bench:gc] ${m}\n`);

interface Pause {
  kind: string;
  ms: number;
}

/** V8 --trace-gc lines: `… 1234 ms: Scavenge 10.1 (12.3) -> 9.2 (13.3) MB, pooled: 0 MB, 1.23 / 0.00 ms …`. */
export function parseGcTrace(text: string): Pause[] {
  const out: Pause[] = [];
  for (const line of text.split('\n')) {
    const m = /\d+ ms: (Scavenge|Minor Mark-Sweep|Mark-Compact(?: \(reduce\))?)\b.*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(line);
    if (m) out.push({ kind: m[1]!.startsWith('Mark-Compact') ? 'mark-compact' : 'scavenge', ms: Number(m[2]) });
  }
  return out;
}

interface Row {
  server: string;
  connections: number;
  requests: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  scavenges: number;
  markCompacts: number;
  gcMsTotal: number;
  gcMsMax: number;
  /** Share of the measured wall time the main thread spent in GC pauses. */
  gcShare: number;
  /** Pauses at or above wrk's p99.9: each delays every request in flight by at least that. */
  pausesAtP999: number;
}

async function measure(label: string, argv: string[], env: NodeJS.ProcessEnv, port: number, ca: string, bodyFile: string, dir: string): Promise<Row[]> {
  const traceFile = join(dir, `${label.replace(/\W+/g, '-')}.out`);
  const fd = openSync(traceFile, 'w');
  const full = pinned(0, argv);
  const child: ChildProcess = spawn(full[0]!, full.slice(1), { cwd: ROOT, env, stdio: ['ignore', fd, 'inherit'] });
  closeSync(fd);
  children.add(child);
  try {
    await untilAnswering(port, ca);
    const rows: Row[] = [];
    for (const connections of [1, 16]) {
      await wrk({ port, connections, seconds: WARMUP, bodyFile, cpu: 1 });
      const from = statSync(traceFile).size;
      const run: WrkRun = await wrk({ port, connections, seconds: SECONDS, bodyFile, cpu: 1 });
      await new Promise((r) => setTimeout(r, 300)); // the trace lines of the last pauses
      const window = readFileSync(traceFile).subarray(from).toString('utf8');
      const pauses = parseGcTrace(window);
      const s = run.summary;
      const ms = (us: number): number => Math.round(us) / 1000;
      const lat = { p50: ms(s.latency_us.p50), p99: ms(s.latency_us.p99), p999: ms(s.latency_us.p999), max: ms(s.latency_us.max) };
      const total = pauses.reduce((a, p) => a + p.ms, 0);
      rows.push({
        server: label,
        connections,
        requests: s.requests,
        p50: lat.p50,
        p99: lat.p99,
        p999: lat.p999,
        max: lat.max,
        scavenges: pauses.filter((p) => p.kind === 'scavenge').length,
        markCompacts: pauses.filter((p) => p.kind === 'mark-compact').length,
        gcMsTotal: Math.round(total * 10) / 10,
        gcMsMax: Math.max(0, ...pauses.map((p) => p.ms)),
        gcShare: Math.round((total / (SECONDS * 1000)) * 1000) / 1000,
        pausesAtP999: pauses.filter((p) => p.ms >= lat.p999).length,
      });
      say(`${label} c=${connections}: ${s.requests} requests, p99.9 ${lat.p999} ms; ${pauses.length} GC pauses, ${total.toFixed(1)} ms (${((total / (SECONDS * 1000)) * 100).toFixed(1)}% of the time), longest ${Math.max(0, ...pauses.map((p) => p.ms))} ms`);
    }
    return rows;
  } finally {
    child.kill('SIGKILL');
    children.delete(child);
  }
}

async function main(): Promise<void> {
  const wrkVersion = ensureWrk(say);
  for (const f of ['dist/src/cli/main.js', 'dist/bench/reference/ceiling.js']) statSync(join(ROOT, f)); // npm run build first
  const { dir, certDir, caCert, bodyFile, stateFile, env } = await stateWorkspace('bench-gc-', podReview(), clusterState(10, 10_000));
  try {
    say(`${wrkVersion}; ${WARMUP} s warm-up + ${SECONDS} s per run; shipped flags ${SERVE_NODE_FLAGS.join(' ')} + --trace-gc`);
    const rows: Row[] = [];
    for (const [label, logLevel] of [
      ['ours (one log line per request)', 'info'],
      ['ours (no request log)', 'warn'],
    ] as const) {
      const port = await freePort();
      const metricsPort = await freePort();
      const argv = [process.execPath, ...SERVE_NODE_FLAGS, '--trace-gc', join(ROOT, 'dist/src/cli/main.js'), 'serve', '--state', stateFile, '--cert-dir', certDir, '--host', '127.0.0.1', '--port', String(port), '--metrics-host', '127.0.0.1', '--metrics-port', String(metricsPort), '--drain-ms', '0'];
      rows.push(...(await measure(label, argv, { ...env, LOG_LEVEL: logLevel }, port, caCert, bodyFile, dir)));
    }
    const port = await freePort();
    rows.push(...(await measure('ceiling', [process.execPath, '--trace-gc', join(ROOT, 'dist/bench/reference/ceiling.js'), '--cert-dir', certDir, '--host', '127.0.0.1', '--port', String(port)], env, port, caCert, bodyFile, dir)));
    const table = [
      '| server | conns | requests | p50 ms | p99 ms | p99.9 ms | max ms | scavenges | mark-compacts | GC ms (share of time) | longest pause ms | pauses ≥ p99.9 |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map((r) => `| ${r.server} | ${r.connections} | ${r.requests} | ${r.p50} | ${r.p99} | ${r.p999} | ${r.max} | ${r.scavenges} | ${r.markCompacts} | ${r.gcMsTotal} (${(r.gcShare * 100).toFixed(1)}%) | ${r.gcMsMax} | ${r.pausesAtP999} |`),
    ].join('\n');
    process.stdout.write(`\n${table}\n`);
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench', 'results', 'gc-latest.json'), `${JSON.stringify({ when: new Date().toISOString(), wrk: wrkVersion, seconds: SECONDS, nodeFlags: SERVE_NODE_FLAGS, rows }, null, 2)}\n`);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
