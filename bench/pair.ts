// `npm run bench` starts here: the regression gate. The checkout is measured against a
// baseline build (the commit in bench/baseline, else the last release tag) as PAIRS: both
// servers pinned to the same core at the same time, each under its own wrk (16 connections,
// pinned to the other core), after a warm-up, with the image's V8 flags. Whatever else runs
// on the machine slows both alike, so the ratio of their CPU per request holds where
// alternating runs range by 2x. Several pairs give the ratio's spread; a same-build control
// pair shows the noise floor. Both modes run: `--state` (a state file) and cluster mode
// (watches of a real API server, Events recorded), when the control plane is built.
//
// Fails (exit 1) when the median ratio is above the gate (1.05), naming the layer that grew:
// one more pair runs under V8's sampling profiler and the CPU per request is split by layer
// as bench:profile does. Also measured in pairs, for the record: ours against the ceiling.
//
//   node bench/pair.ts [--pairs N] [--seconds S] [--warmup S] [--modes state,cluster]
//                      [--baseline COMMIT] [--no-ceiling] [--slope-minutes M]

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SERVE_NODE_FLAGS } from '../src/server/node-flags.ts';
import { clusterState, podReview } from './fixtures.ts';
import { cpuMicros, rssMiB } from './proc.ts';
import { attribute, type CpuProfile } from './profile.ts';
import { httpGet } from './api.ts';
import { children, ensureWrk, freePort, pinned, stateWorkspace, stopChild, untilAnswering, wrk, type WrkRun } from './load.ts';

const ROOT = resolve(import.meta.dirname, '..');
export const GATE = 1.05;
const SERVER_CPU = 0;
const LOAD_CPU = 1;
const CONNECTIONS = 16;

/** A built tree that can serve: `<root>/dist/src/cli/main.js` (the checkout, a baseline, a variant). */
export interface Build {
  readonly label: string;
  readonly root: string;
  readonly commit?: string;
}

/** A server under test, started: its process id and HTTPS port, and how to stop it. */
export interface Started {
  readonly pid: number;
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts one server of a build (or a reference) on a free port, pinned to the server core. */
export type Starter = (build: Build, profileDir?: string) => Promise<Started>;

export interface Side {
  readonly build: string;
  readonly requests: number;
  readonly reqPerSec: number;
  readonly cpuUsPerReq: number;
  readonly p99Ms: number;
  readonly errors: number;
}

export interface Pair {
  readonly a: Side;
  readonly b: Side;
  /** b's CPU per request / a's. */
  readonly cpuRatio: number;
  /** b's req/s / a's (both share one core, so this mirrors the CPU ratio). */
  readonly throughputRatio: number;
}

export interface Comparison {
  readonly mode: string;
  readonly baseline: string;
  readonly candidate: string;
  readonly pairs: Pair[];
  readonly control: Pair[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly controlMedian: number | undefined;
  readonly failed: boolean;
  /** When it failed: µs per request by layer, baseline against candidate, largest growth first. */
  readonly layers?: { layer: string; baselineUs: number; candidateUs: number; grewUs: number }[];
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- builds

/** The commit to compare with: `bench/baseline` (first word), else the last release tag. */
export function baselineCommit(root = ROOT): { commit: string; source: string } {
  const file = join(root, 'bench', 'baseline');
  if (existsSync(file)) {
    const word = readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).find((l) => l !== '');
    if (word) return { commit: word, source: 'bench/baseline' };
  }
  const tag = spawnSync('git', ['describe', '--tags', '--abbrev=0'], { cwd: root, encoding: 'utf8' });
  if (tag.status === 0 && tag.stdout.trim()) return { commit: tag.stdout.trim(), source: 'the last release tag' };
  throw new Error('no baseline: write a commit into bench/baseline or tag a release');
}

function git(args: string[], cwd = ROOT): string {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

function sameLockfile(tree: string): boolean {
  const lock = join(tree, 'package-lock.json');
  return existsSync(lock) && readFileSync(lock, 'utf8') === readFileSync(join(ROOT, 'package-lock.json'), 'utf8');
}

/**
 * The baseline's tree at `commit`, built, in a cache dir per commit: exported with
 * `git archive` (a temporary tree that leaves the repository's worktree list alone), its
 * node_modules shared with the checkout when the lockfiles are equal (else `npm ci`), then
 * compiled with its own tsconfig.
 */
export function prepareBaseline(commit: string, say: (m: string) => void): Build {
  const sha = git(['rev-parse', '--verify', `${commit}^{commit}`]).trim();
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'komputer-connector-webhook', 'bench-baseline', sha);
  const entry = join(cache, 'dist', 'src', 'cli', 'main.js');
  if (existsSync(join(cache, '.built'))) {
    // A shared node_modules is a link to the checkout that built the cache; that checkout
    // (a removed worktree, an earlier clone) may be gone: link this one's instead.
    const modules = join(cache, 'node_modules');
    if (!existsSync(join(modules, 'typescript')) && sameLockfile(cache)) {
      rmSync(modules, { recursive: true, force: true });
      symlinkSync(join(ROOT, 'node_modules'), modules);
    }
    if (existsSync(join(modules, 'typescript'))) return { label: `baseline ${sha.slice(0, 7)}`, root: cache, commit: sha };
  }
  say(`building the baseline ${sha.slice(0, 7)} in ${cache}`);
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  const archive = spawnSync('sh', ['-c', `git archive --format=tar ${sha} | tar -x -C '${cache}'`], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (archive.status !== 0) throw new Error(`git archive ${sha} failed`);
  if (sameLockfile(cache)) symlinkSync(join(ROOT, 'node_modules'), join(cache, 'node_modules'));
  else {
    say('its lockfile differs: npm ci in the baseline tree');
    const ci = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: cache, stdio: 'inherit' });
    if (ci.status !== 0) throw new Error('npm ci in the baseline tree failed');
  }
  const tsc = spawnSync(process.execPath, [join(cache, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: cache, stdio: 'inherit' });
  if (tsc.status !== 0 || !existsSync(entry)) throw new Error(`the baseline ${sha.slice(0, 7)} does not build`);
  writeFileSync(join(cache, '.built'), `${new Date().toISOString()}\n`);
  return { label: `baseline ${sha.slice(0, 7)}`, root: cache, commit: sha };
}

/**
 * A copy of a build's compiled tree whose pod decision (injectPod) first spins for `us`
 * microseconds: the regression the gate must catch (its test uses it).
 */
export function slowedBuild(from: Build, us: number): Build {
  const root = mkdtempSync(join(tmpdir(), 'bench-slowed-'));
  cpSync(join(from.root, 'dist'), join(root, 'dist'), { recursive: true });
  cpSync(join(from.root, 'package.json'), join(root, 'package.json'));
  symlinkSync(join(from.root, 'node_modules'), join(root, 'node_modules'));
  const file = join(root, 'dist', 'src', 'injection', 'inject.js');
  const text = readFileSync(file, 'utf8');
  const at = /export function injectPod\([^)]*\) \{/.exec(text);
  if (!at) throw new Error(`no injectPod in ${file}: the slowed build needs the decision's entry point`);
  // Plain arithmetic between clock reads, so the profiler sees the time in this function
  // (a loop on a Node clock call alone would be attributed to that built-in).
  const spin = `{ const until = performance.now() + ${us / 1000}; let x = 0; do { for (let i = 0; i < 500; i++) x = (x * 31 + i) | 0; } while (performance.now() < until); globalThis.__benchSpin = x; }`;
  writeFileSync(file, text.slice(0, at.index + at[0].length) + spin + text.slice(at.index + at[0].length));
  return { label: `${from.label} + ${us} µs busy-loop`, root };
}

// ---------------------------------------------------------------- servers

export interface Workspace {
  readonly dir: string;
  readonly certDir: string;
  readonly caCert: string;
  readonly bodyFile: string;
  readonly stateFile: string;
  readonly env: NodeJS.ProcessEnv;
}

/** `serve --state`: the state file, the image's V8 flags, logging at info to a file, metrics on. */
export function stateStarter(ws: Workspace): Starter {
  return async (build, profileDir) => {
    const port = await freePort();
    const metricsPort = await freePort();
    const flags = profileDir ? [...SERVE_NODE_FLAGS, '--cpu-prof', '--cpu-prof-dir', profileDir] : SERVE_NODE_FLAGS;
    const argv = pinned(SERVER_CPU, [process.execPath, ...flags, join(build.root, 'dist/src/cli/main.js'), 'serve', '--state', ws.stateFile, '--cert-dir', ws.certDir, '--host', '127.0.0.1', '--port', String(port), '--metrics-host', '127.0.0.1', '--metrics-port', String(metricsPort), '--drain-ms', '0']);
    const log = join(ws.dir, `${build.label.replace(/\W+/g, '-')}-${port}.log`);
    const out = (await import('node:fs')).openSync(log, 'w');
    const child = spawn(argv[0]!, argv.slice(1), { cwd: build.root, env: { ...ws.env, LOG_LEVEL: 'info' }, stdio: ['ignore', out, out] });
    children.add(child);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${build.label} exited at start: ${readFileSync(log, 'utf8').slice(-1500)}`);
      if (Date.now() > deadline) throw new Error(`${build.label} not ready in 60 s`);
      const r = await httpGet(metricsPort, '/readyz').catch(() => undefined);
      if (r?.status === 200) break;
      await sleep(100);
    }
    return { pid: child.pid!, port, stop: () => stopChild(child, 20_000) };
  };
}

/** The ceiling (bench/reference/ceiling.ts, compiled), as a starter for the same pairs. */
export function ceilingStarter(ws: Workspace): Starter {
  return async (_build, profileDir) => {
    const port = await freePort();
    const flags = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
    const argv = pinned(SERVER_CPU, [process.execPath, ...flags, join(ROOT, 'dist/bench/reference/ceiling.js'), '--cert-dir', ws.certDir, '--host', '127.0.0.1', '--port', String(port)]);
    const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env: ws.env, stdio: ['ignore', 'ignore', 'inherit'] });
    children.add(child);
    await untilAnswering(port, ws.caCert);
    return { pid: child.pid!, port, stop: () => stopChild(child, 20_000) };
  };
}

// ---------------------------------------------------------------- pairs

export interface PairOptions {
  readonly seconds: number;
  readonly warmup: number;
  readonly bodyFile: string;
}

function side(build: string, run: WrkRun, cpuUs: number): Side {
  const s = run.summary;
  const errors = s.errors.connect + s.errors.read + s.errors.write + s.errors.status + s.errors.timeout;
  return { build, requests: s.requests, reqPerSec: s.requests / (s.duration_us / 1e6), cpuUsPerReq: s.requests > 0 ? cpuUs / s.requests : Infinity, p99Ms: s.latency_us.p99 / 1000, errors };
}

/**
 * One pair: a and b started, both warmed up together, then measured together over the same
 * window. With `profile`, both run under --cpu-prof and their layers are returned too.
 */
export async function runPair(a: { build: Build; start: Starter }, b: { build: Build; start: Starter }, o: PairOptions, profile?: string): Promise<Pair & { profiles?: { a: Map<string, number>; b: Map<string, number> } }> {
  const dirs = profile ? [join(profile, `a-${Date.now()}`), join(profile, `b-${Date.now()}`)] : [undefined, undefined];
  for (const d of dirs) if (d) mkdirSync(d, { recursive: true });
  const [sa, sb] = await Promise.all([a.start(a.build, dirs[0]), b.start(b.build, dirs[1])]);
  let window: [number, number] = [0, 0];
  let runs: [WrkRun, WrkRun];
  let cpu: [number, number];
  try {
    await Promise.all([sa, sb].map((s) => wrk({ port: s.port, connections: CONNECTIONS, seconds: o.warmup, bodyFile: o.bodyFile, cpu: LOAD_CPU })));
    const before = [cpuMicros(sa.pid), cpuMicros(sb.pid)];
    const from = Number(process.hrtime.bigint() / 1000n);
    runs = (await Promise.all([sa, sb].map((s) => wrk({ port: s.port, connections: CONNECTIONS, seconds: o.seconds, bodyFile: o.bodyFile, cpu: LOAD_CPU })))) as [WrkRun, WrkRun];
    window = [from, Number(process.hrtime.bigint() / 1000n)];
    cpu = [cpuMicros(sa.pid) - before[0]!, cpuMicros(sb.pid) - before[1]!];
  } finally {
    await Promise.all([sa.stop(), sb.stop()]);
  }
  const A = side(a.build.label, runs[0], cpu[0]);
  const B = side(b.build.label, runs[1], cpu[1]);
  if (A.errors > 0 || B.errors > 0) throw new Error(`errors under load: ${A.build} ${A.errors}, ${B.build} ${B.errors}`);
  const pair: Pair = { a: A, b: B, cpuRatio: B.cpuUsPerReq / A.cpuUsPerReq, throughputRatio: B.reqPerSec / A.reqPerSec };
  if (!profile) return pair;
  const layers = (dir: string, requests: number): Map<string, number> => {
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile in ${dir}`);
    const raw = attribute(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, window[0], window[1]);
    raw.delete('idle');
    const out = new Map<string, number>();
    for (const [k, us] of raw) out.set(k, us / requests);
    return out;
  };
  return { ...pair, profiles: { a: layers(dirs[0]!, A.requests), b: layers(dirs[1]!, B.requests) } };
}

export interface CompareOptions extends PairOptions {
  readonly mode: string;
  readonly baseline: Build;
  readonly candidate: Build;
  readonly start: Starter;
  readonly pairs: number;
  /** Same-build control pairs (the candidate against itself). */
  readonly controls: number;
  readonly gate?: number;
  /** Where profiles go when the gate fails (a temp dir). */
  readonly scratch: string;
  readonly say: (m: string) => void;
}

const fmt = (r: number): string => `${r.toFixed(3)}`;

/** Pairs of baseline and candidate (slots alternated), control pairs, the median, and on failure the layers. */
export async function compare(o: CompareOptions): Promise<Comparison> {
  const pairs: Pair[] = [];
  const control: Pair[] = [];
  const base = { build: o.baseline, start: o.start };
  const cand = { build: o.candidate, start: o.start };
  for (let i = 0; i < o.pairs; i++) {
    // Slots alternate, so which one starts or connects first cancels out.
    const p = i % 2 === 0 ? await runPair(base, cand, o) : flip(await runPair(cand, base, o));
    pairs.push(p);
    o.say(`${o.mode} pair ${i + 1}/${o.pairs}: CPU/request ${p.a.cpuUsPerReq.toFixed(1)} → ${p.b.cpuUsPerReq.toFixed(1)} µs, ratio ${fmt(p.cpuRatio)}; req/s ${Math.round(p.a.reqPerSec)} / ${Math.round(p.b.reqPerSec)}`);
  }
  for (let i = 0; i < o.controls; i++) {
    const p = await runPair(cand, cand, o);
    control.push(p);
    o.say(`${o.mode} control ${i + 1}/${o.controls} (same build twice): ratio ${fmt(p.cpuRatio)}`);
  }
  const ratios = pairs.map((p) => p.cpuRatio);
  const m = median(ratios);
  const failed = m > (o.gate ?? GATE);
  const result: Comparison = { mode: o.mode, baseline: o.baseline.label, candidate: o.candidate.label, pairs, control, median: m, min: Math.min(...ratios), max: Math.max(...ratios), controlMedian: control.length > 0 ? median(control.map((p) => p.cpuRatio)) : undefined, failed };
  if (!failed) return result;
  o.say(`${o.mode}: median ratio ${fmt(m)} is above ${o.gate ?? GATE}: one more pair under the profiler to find the layer that grew`);
  const profiled = await runPair(base, cand, o, o.scratch);
  const names = new Set([...profiled.profiles!.a.keys(), ...profiled.profiles!.b.keys()]);
  const layers = [...names]
    .map((layer) => {
      const baselineUs = profiled.profiles!.a.get(layer) ?? 0;
      const candidateUs = profiled.profiles!.b.get(layer) ?? 0;
      return { layer, baselineUs: round1(baselineUs), candidateUs: round1(candidateUs), grewUs: round1(candidateUs - baselineUs) };
    })
    .sort((x, y) => y.grewUs - x.grewUs);
  return { ...result, layers };
}

function flip(p: Pair): Pair {
  return { a: p.b, b: p.a, cpuRatio: 1 / p.cpuRatio, throughputRatio: 1 / p.throughputRatio };
}

const round1 = (v: number): number => Math.round(v * 10) / 10;

/** The comparison as markdown: the pairs, the control, the verdict, the layers when it failed. */
export function comparisonMarkdown(c: Comparison): string {
  const row = (what: string, p: Pair): string => `| ${what} | ${p.a.cpuUsPerReq.toFixed(1)} | ${p.b.cpuUsPerReq.toFixed(1)} | **${fmt(p.cpuRatio)}** | ${Math.round(p.a.reqPerSec)} | ${Math.round(p.b.reqPerSec)} |`;
  const lines = [
    `#### ${c.mode}: ${c.candidate} against ${c.baseline}`,
    '',
    `| pair | ${c.baseline} CPU µs/req | ${c.candidate} CPU µs/req | ratio | req/s (a) | req/s (b) |`,
    '|---|---:|---:|---:|---:|---:|',
    ...c.pairs.map((p, i) => row(`${i + 1}`, p)),
    ...c.control.map((p, i) => row(`control ${i + 1} (same build)`, p)),
    '',
    `Median CPU-per-request ratio **${fmt(c.median)}** (pairs ${fmt(c.min)}–${fmt(c.max)})${c.controlMedian === undefined ? '' : `; control ${fmt(c.controlMedian)}`}; gate ${GATE}: **${c.failed ? 'FAILED' : 'passed'}**.`,
  ];
  if (c.layers) {
    lines.push('', '| layer (µs/req under the profiler) | baseline | candidate | grew |', '|---|---:|---:|---:|');
    for (const l of c.layers.filter((l) => Math.abs(l.grewUs) >= 0.5 || l.candidateUs >= 2)) lines.push(`| ${l.layer} | ${l.baselineUs} | ${l.candidateUs} | ${l.grewUs} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- memory over time

export interface Slope {
  readonly minutes: number;
  /** RSS every 5 s, seconds from the start of the warm-up. */
  readonly samples: { s: number; rssMiB: number }[];
  /** How long the warm-up ran (until RSS stopped rising, or its bound) and the requests it served. */
  readonly warmupSeconds: number;
  readonly warmupRequests: number;
  /** Whether the warm-up ended because RSS was steady (false: it hit its bound). */
  readonly steady: boolean;
  /** Least-squares slope of RSS over the measured window (after the warm-up). */
  readonly mibPerMinute: number;
  /** Requests per second during the measured window. */
  readonly reqPerSec: number;
}

/** Least-squares slope, y per x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** The warm-up runs in chunks of this many seconds until RSS rose less than twice the gate's rate over the last one. */
const WARMUP_CHUNK_S = 30;
/** The warm-up's bound: a process that never settles is measured anyway (and fails). */
const WARMUP_MAX_S = 8 * 60;

/**
 * RSS every 5 s under steady load (16 connections). First a warm-up, until RSS stops rising:
 * V8's old generation grows with the requests served (on a quiet machine for about the first
 * 95 s) and a loaded machine serves them more slowly, so a fixed warm-up either wastes time or
 * measures the growth. Then `minutes` of steady load, whose least-squares slope is the figure.
 */
export async function rssSlope(build: Build, start: Starter, bodyFile: string, minutes: number): Promise<Slope> {
  const s = await start(build);
  const samples: { s: number; rssMiB: number }[] = [];
  const t0 = performance.now();
  const now = (): number => (performance.now() - t0) / 1000;
  const sampler = setInterval(() => samples.push({ s: now(), rssMiB: rssMiB(s.pid) }), 5000);
  const load = (seconds: number): Promise<WrkRun> => wrk({ port: s.port, connections: CONNECTIONS, seconds, bodyFile, cpu: LOAD_CPU });
  // Twice the gate's rise per chunk: a leak at the gate's rate still ends the warm-up, then fails the window.
  const steadyRiseMiB = 2 * SLOPE_GATE_MIB_PER_MIN * (WARMUP_CHUNK_S / 60);
  let warmupRequests = 0;
  let steady = false;
  let run: WrkRun;
  let measuredFrom: number;
  try {
    while (now() < WARMUP_MAX_S) {
      const before = rssMiB(s.pid);
      warmupRequests += (await load(WARMUP_CHUNK_S)).summary.requests;
      if (rssMiB(s.pid) - before < steadyRiseMiB) {
        steady = true;
        break;
      }
    }
    measuredFrom = now();
    run = await load(Math.round(minutes * 60));
  } finally {
    clearInterval(sampler);
    await s.stop();
  }
  const window = samples.filter((p) => p.s >= measuredFrom);
  return {
    minutes,
    samples,
    warmupSeconds: measuredFrom,
    warmupRequests,
    steady,
    mibPerMinute: slope(window.map((p) => ({ x: p.s / 60, y: p.rssMiB }))),
    reqPerSec: run.summary.requests / (run.summary.duration_us / 1e6),
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pairs: { type: 'string', default: process.env.BENCH_PAIRS ?? '5' },
      seconds: { type: 'string', default: process.env.BENCH_SECONDS ?? '5' },
      warmup: { type: 'string', default: process.env.BENCH_WARMUP ?? '3' },
      modes: { type: 'string', default: 'state,cluster' },
      baseline: { type: 'string' },
      'no-ceiling': { type: 'boolean', default: false },
      'slope-minutes': { type: 'string', default: process.env.BENCH_SLOPE_MINUTES ?? '10' },
    },
  });
  const say = (m: string): void => void process.stdout.write(`[bench:pair] ${m}\n`);
  const wrkVersion = ensureWrk(say);
  const o = { pairs: Number(values.pairs), seconds: Number(values.seconds), warmup: Number(values.warmup), slopeMinutes: Number(values['slope-minutes']) };
  for (const [k, v] of Object.entries(o)) if (!(v >= 0) || (k !== 'slopeMinutes' && !(v > 0))) throw new Error(`--${k} must be a positive number`);
  const modes = values.modes.split(',').map((m) => m.trim());
  for (const m of modes) if (m !== 'state' && m !== 'cluster') throw new Error(`--modes: unknown mode ${m} (state, cluster)`);
  const chosen = values.baseline ? { commit: values.baseline, source: '--baseline' } : baselineCommit();
  const baseline = prepareBaseline(chosen.commit, say);
  const head = git(['rev-parse', '--short', 'HEAD']).trim();
  const dirty = git(['status', '--porcelain', '--untracked-files=no']).trim() !== '';
  const checkout: Build = { label: `checkout ${head}${dirty ? '+' : ''}`, root: ROOT };
  say(`${wrkVersion}; baseline ${baseline.commit!.slice(0, 7)} (from ${chosen.source}) against ${checkout.label}; ${o.pairs} pairs + 1 control per mode, ${o.warmup} s warm-up + ${o.seconds} s, ${CONNECTIONS} connections each, V8 flags ${SERVE_NODE_FLAGS.join(' ')}; loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  const ws = await stateWorkspace('bench-pair-', podReview(), clusterState(10, 600, 100));
  const results: Comparison[] = [];
  const extra: Record<string, unknown> = {};
  const md: string[] = [];
  try {
    for (const mode of modes) {
      let start: Starter;
      let stopCluster: (() => Promise<void>) | undefined;
      if (mode === 'state') start = stateStarter(ws);
      else {
        const cluster = await import('./cluster-mode.ts');
        const ready = await cluster.clusterStarter(ws, say);
        if (!ready) {
          say('cluster mode skipped: the control plane is not built (npm run controlplane)');
          md.push('#### cluster mode: not run (no control plane built on this machine)');
          continue;
        }
        start = ready.start;
        stopCluster = ready.stop;
      }
      try {
        const c = await compare({ mode: mode === 'state' ? '--state' : 'cluster mode (watches, Events)', baseline, candidate: checkout, start, pairs: o.pairs, controls: 1, seconds: o.seconds, warmup: o.warmup, bodyFile: ws.bodyFile, scratch: ws.dir, say });
        results.push(c);
        md.push(comparisonMarkdown(c));
        say(comparisonMarkdown(c).split('\n').at(-1)!);
        if (mode === 'cluster' && o.slopeMinutes > 0) {
          say(`RSS under steady load in cluster mode: a warm-up until RSS stops rising (at most ${WARMUP_MAX_S / 60} min), then ${o.slopeMinutes} min`);
          const sl = await rssSlope(checkout, start, ws.bodyFile, o.slopeMinutes);
          extra.slope = sl;
          // A short window's second half is still the heap's warm-up growth: reported, not gated.
          const gated = o.slopeMinutes >= SLOPE_GATE_MIN_MINUTES;
          const ok = sl.mibPerMinute <= SLOPE_GATE_MIB_PER_MIN;
          const verdict = !gated ? `not gated (a window under ${SLOPE_GATE_MIN_MINUTES} min)` : ok ? 'passed' : '**FAILED**';
          const first = sl.samples.find((p) => p.s >= sl.warmupSeconds);
          md.push('', `RSS under steady load in cluster mode (16 connections): warm-up ${Math.round(sl.warmupSeconds)} s (${sl.warmupRequests} requests, ${sl.steady ? 'until RSS stopped rising' : '**RSS still rising at the warm-up bound**'}), then ${o.slopeMinutes} min at ${Math.round(sl.reqPerSec)} req/s: ${sl.samples[0]?.rssMiB.toFixed(1)} → ${first?.rssMiB.toFixed(1)} → ${sl.samples.at(-1)?.rssMiB.toFixed(1)} MiB; slope over the ${o.slopeMinutes} min **${sl.mibPerMinute.toFixed(2)} MiB/min** (gate ${SLOPE_GATE_MIB_PER_MIN}): ${verdict}.`);
          say(md.at(-1)!);
          if (gated && !ok) extra.slopeFailed = true;
        }
      } finally {
        await stopCluster?.();
      }
    }
    if (!values['no-ceiling'] && modes.includes('state')) {
      // Ours against the ceiling, paired the same way (for the record, not gated).
      const ceiling: Build = { label: 'ceiling', root: ROOT };
      const ceil = ceilingStarter(ws);
      const own = stateStarter(ws);
      const pairs: Pair[] = [];
      for (let i = 0; i < Math.max(3, Math.ceil(o.pairs / 2)); i++) {
        const p = await runPair({ build: ceiling, start: ceil }, { build: checkout, start: own }, o.seconds ? { seconds: o.seconds, warmup: o.warmup, bodyFile: ws.bodyFile } : { seconds: 5, warmup: 3, bodyFile: ws.bodyFile });
        pairs.push(p);
        say(`ceiling pair ${i + 1}: ours/ceiling CPU per request ${fmt(p.cpuRatio)}, req/s ${fmt(p.throughputRatio)}`);
      }
      extra.ceiling = { pairs, cpuRatioMedian: median(pairs.map((p) => p.cpuRatio)), throughputRatioMedian: median(pairs.map((p) => p.throughputRatio)) };
      md.push('', `#### ours against the ceiling (--state, paired, ${pairs.length} pairs)`, '', `CPU per request ours/ceiling: median **${fmt(median(pairs.map((p) => p.cpuRatio)))}** (${fmt(Math.min(...pairs.map((p) => p.cpuRatio)))}–${fmt(Math.max(...pairs.map((p) => p.cpuRatio)))}); req/s ours/ceiling sharing one core: median **${fmt(median(pairs.map((p) => p.throughputRatio)))}**.`);
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    if (process.env.BENCH_KEEP) say(`kept ${ws.dir}`);
    else rmSync(ws.dir, { recursive: true, force: true });
  }
  const { writeSection } = await import('./report.ts');
  const when = new Date().toISOString();
  writeFileSync(join(ROOT, 'bench', 'results', 'pair-latest.json'), `${JSON.stringify({ when, wrk: wrkVersion, nodeFlags: SERVE_NODE_FLAGS, baseline: { commit: baseline.commit, source: chosen.source }, checkout: checkout.label, options: o, results, ...extra }, null, 2)}\n`);
  writeSection('pair', `### Regression gate: the checkout against the baseline, paired (${when})\n\n${md.filter((m) => m !== '').join('\n\n')}`);
  for (const c of results) {
    if (!c.failed) continue;
    const top = c.layers?.[0];
    say(`BENCH GATE FAILED: ${c.mode}: CPU per request ${fmt(c.median)}× the baseline's (gate ${GATE})${top ? `; the layer that grew most: ${top.layer} (+${top.grewUs} µs/req)` : ''}`);
  }
  if (extra.slopeFailed) say(`BENCH GATE FAILED: RSS grows under steady load (above ${SLOPE_GATE_MIB_PER_MIN} MiB/min)`);
  if (results.some((c) => c.failed) || extra.slopeFailed) process.exit(1);
}

/** RSS growth under steady load that fails the run: a leak of one small object per request shows well above it. */
export const SLOPE_GATE_MIB_PER_MIN = 1;
/** The shortest window whose slope is gated. */
export const SLOPE_GATE_MIN_MINUTES = 5;

if (import.meta.main) await main();
