// `npm run bench:profile`: where a request's CPU goes, ours against the ceiling. Runs each
// server (ours from a state file, 10 agents and 10,000 connectors, everything on as shipped;
// the ceiling) pinned to CPU 0 under V8's sampling profiler (`--cpu-prof`) with wrk at 16
// connections on CPU 1, keeps only the samples of the measured window, and attributes each
// sample's time to a layer: TLS and HTTP in Node, JSON.parse, express, pino, prom-client,
// the project's own folders, GC. Prints µs per request per layer side by side, so the gap
// between ours and the ceiling is split into its causes. Writes bench/results/profile-latest.json.
//
//   BENCH_SECONDS / BENCH_WARMUP   measured seconds (default 6) after warm-up (default 2)
//   BENCH_KEEP=1                   keep the temp dir with the .cpuprofile files (open them in DevTools)

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SERVE_NODE_FLAGS } from '../src/server/node-flags.ts';
import { clusterState, podReview } from './fixtures.ts';
import { children, ensureWrk, freePort, pinned, stateWorkspace, stopChild, untilAnswering, wrk } from './load.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS) > 0 ? Number(process.env.BENCH_SECONDS) : 6;
const WARMUP = Number(process.env.BENCH_WARMUP) > 0 ? Number(process.env.BENCH_WARMUP) : 2;
const CONNECTIONS = 16;
const say = (m: string): void => void process.stdout.write(`[bench:profile] ${m}\n`);

/** The parts of a V8 .cpuprofile this script reads. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * The layer a stack belongs to, from its leaf up. A frame in a package's folder is that
 * package; Node's own modules are grouped by what they do; a built-in without a URL (JSON,
 * Buffer, regexp code) is named with the layer that called it, so `JSON.stringify` from
 * express and from our code stay apart.
 */
export function layerOf(stack: readonly { functionName: string; url: string }[]): string {
  const leaf = stack[0];
  if (!leaf) return 'other';
  if (leaf.url === '') {
    if (leaf.functionName === '(garbage collector)') return 'GC (main thread)';
    if (leaf.functionName === '(idle)') return 'idle';
    if (leaf.functionName === '(program)' || leaf.functionName === '(root)') return 'V8/native, no JS caller';
    if (leaf.functionName === 'parse') return 'JSON.parse';
    const caller = stack.slice(1).find((f) => f.url !== '');
    const name = leaf.functionName === 'stringify' ? 'JSON.stringify' : `built-in ${leaf.functionName || '(anonymous)'}`;
    return `${name} from ${caller ? frameLayer(caller.url) : 'native'}`;
  }
  return frameLayer(leaf.url);
}

function frameLayer(url: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) {
    const name = pkg[1]!;
    if (name === 'pino' || name === 'sonic-boom' || name === 'fast-redact' || name === '@pinojs/redact' || name === 'pino-std-serializers' || name === 'quick-format-unescaped' || name === 'atomic-sleep') return 'pino (request log)';
    if (name === 'prom-client' || name === 'tdigest' || name === 'bintrees') return 'prom-client (metrics)';
    if (name === '@kubernetes/client-node' || name === 'fast-json-patch' || name === 'yaml' || name === 'commander') return name;
    return 'express and its deps';
  }
  const node = /^node:(.*)$/.exec(url);
  if (node) {
    const m = node[1]!;
    if (/tls|crypto/.test(m)) return 'node: TLS';
    if (/http|_http/.test(m)) return 'node: HTTP';
    if (/net|stream|buffer|timers|async_hooks|process|events|string_decoder|diagnostics_channel/.test(m)) return 'node: net, streams, events';
    return 'node: other';
  }
  const src = /\/(?:dist\/)?src\/([^/]+)\//.exec(url);
  if (src) return `ours: src/${src[1]}`;
  if (/\/bench\/reference\//.test(url)) return 'reference code';
  return 'other JS';
}

/** Self time in µs per layer for the samples whose time falls in [fromUs, toUs] (the profile's clock). */
export function attribute(profile: CpuProfile, fromUs: number, toUs: number): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const layerCache = new Map<number, string>();
  const layer = (id: number): string => {
    let l = layerCache.get(id);
    if (l === undefined) {
      const stack: { functionName: string; url: string }[] = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at)!.callFrame);
      l = layerOf(stack);
      layerCache.set(id, l);
    }
    return l;
  };
  const out = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    // A sample's delta is the time since the previous one: the time it stands for.
    const next = profile.timeDeltas[i + 1] ?? 0;
    if (t < fromUs || t > toUs) continue;
    const l = layer(profile.samples[i]!);
    out.set(l, (out.get(l) ?? 0) + next);
  }
  return out;
}

export interface Measured {
  server: string;
  requests: number;
  reqPerSec: number;
  /** µs of main-thread time per request, by layer (idle excluded). */
  layers: Record<string, number>;
  totalUs: number;
}

async function measure(label: string, argv: string[], env: NodeJS.ProcessEnv, port: number, ca: string, bodyFile: string, dir: string): Promise<Measured> {
  const profDir = join(dir, label.replace(/\W+/g, '-'));
  mkdirSync(profDir);
  const full = pinned(0, [argv[0]!, '--cpu-prof', '--cpu-prof-dir', profDir, ...argv.slice(1)]);
  const child: ChildProcess = spawn(full[0]!, full.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(child);
  let requests = 0;
  let fromUs = 0;
  let toUs = 0;
  try {
    await untilAnswering(port, ca);
    await wrk({ port, connections: CONNECTIONS, seconds: WARMUP, bodyFile, cpu: 1 });
    // V8's profile clock is the monotonic clock, as hrtime is.
    fromUs = Number(process.hrtime.bigint() / 1000n);
    const run = await wrk({ port, connections: CONNECTIONS, seconds: SECONDS, bodyFile, cpu: 1 });
    toUs = Number(process.hrtime.bigint() / 1000n);
    requests = run.summary.requests;
  } finally {
    // The profile is written when the process exits normally.
    await stopChild(child, 20_000);
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`${label}: no .cpuprofile written in ${profDir}`);
  const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile;
  const raw = attribute(profile, fromUs, toUs);
  raw.delete('idle');
  const layers: Record<string, number> = {};
  let total = 0;
  for (const [k, us] of [...raw].sort((a, b) => b[1] - a[1])) {
    layers[k] = Math.round((us / requests) * 10) / 10;
    total += us;
  }
  const m = { server: label, requests, reqPerSec: Math.round(requests / ((toUs - fromUs) / 1e6)), layers, totalUs: Math.round((total / requests) * 10) / 10 };
  say(`${label}: ${m.reqPerSec} req/s at ${CONNECTIONS} connections; ${m.totalUs} µs of main-thread time per request in the profile`);
  return m;
}

/** ours and the ceiling side by side, largest gap first; layers under 1 µs in both fold into one row. */
export function layerTable(ours: Measured, ceiling: Measured): string {
  const names = [...new Set([...Object.keys(ours.layers), ...Object.keys(ceiling.layers)])];
  const gap = (n: string): number => (ours.layers[n] ?? 0) - (ceiling.layers[n] ?? 0);
  const big = names.filter((n) => (ours.layers[n] ?? 0) >= 1 || (ceiling.layers[n] ?? 0) >= 1).sort((a, b) => gap(b) - gap(a));
  const small = names.filter((n) => !big.includes(n));
  const sum = (m: Measured): number => small.reduce((a, n) => a + (m.layers[n] ?? 0), 0);
  const fmt = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(1));
  return [
    `| layer (µs of main-thread CPU per request, c=${CONNECTIONS}) | ours | ceiling | ours − ceiling |`,
    '|---|---:|---:|---:|',
    ...big.map((n) => `| ${n} | ${fmt(ours.layers[n])} | ${fmt(ceiling.layers[n])} | ${fmt(gap(n))} |`),
    ...(small.length > 0 ? [`| ${small.length} more layers under 1 µs each | ${fmt(sum(ours))} | ${fmt(sum(ceiling))} | ${fmt(sum(ours) - sum(ceiling))} |`] : []),
    `| **total** (${ours.reqPerSec} vs ${ceiling.reqPerSec} req/s under the profiler) | **${fmt(ours.totalUs)}** | **${fmt(ceiling.totalUs)}** | **${fmt(ours.totalUs - ceiling.totalUs)}** |`,
  ].join('\n');
}

async function main(): Promise<void> {
  const wrkVersion = ensureWrk(say);
  for (const f of ['dist/src/cli/main.js', 'dist/bench/reference/ceiling.js']) statSync(join(ROOT, f)); // npm run build first
  const { dir, certDir, caCert, bodyFile, stateFile, env } = await stateWorkspace('bench-profile-', podReview(), clusterState(10, 10_000));
  try {
    say(`${wrkVersion}; ${WARMUP} s warm-up + ${SECONDS} s at ${CONNECTIONS} connections per server, under --cpu-prof (which itself costs some throughput)`);
    let port = await freePort();
    const metricsPort = await freePort();
    const ours = await measure(
      'ours',
      [process.execPath, ...SERVE_NODE_FLAGS, join(ROOT, 'dist/src/cli/main.js'), 'serve', '--state', stateFile, '--cert-dir', certDir, '--host', '127.0.0.1', '--port', String(port), '--metrics-host', '127.0.0.1', '--metrics-port', String(metricsPort), '--drain-ms', '0'],
      { ...env, LOG_LEVEL: 'info' },
      port,
      caCert,
      bodyFile,
      dir,
    );
    port = await freePort();
    const ceiling = await measure('ceiling', [process.execPath, join(ROOT, 'dist/bench/reference/ceiling.js'), '--cert-dir', certDir, '--host', '127.0.0.1', '--port', String(port)], env, port, caCert, bodyFile, dir);
    const table = layerTable(ours, ceiling);
    process.stdout.write(`\n${table}\n`);
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench', 'results', 'profile-latest.json'), `${JSON.stringify({ when: new Date().toISOString(), wrk: wrkVersion, seconds: SECONDS, connections: CONNECTIONS, nodeFlags: SERVE_NODE_FLAGS, servers: [ours, ceiling], table }, null, 2)}\n`);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    if (process.env.BENCH_KEEP) say(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
