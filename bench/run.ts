// `npm run bench`: our webhook against three reference servers, side by side in one run, and
// at three cluster sizes. The ratios are computed against the ceiling (reference/ceiling.ts,
// the fastest correct webhook we can write); the deep-copy reference (reference/minimal.ts)
// and the bare constant reply (reference/bare.ts) are kept for context. See bench/README.md
// for what each figure means.
//
//   BENCH_SECONDS=6  measured seconds per load run (after BENCH_WARMUP=2 seconds of warm-up)
//   BENCH_KEEP=1     keep the temp dir (certs, fixtures, server logs) for inspection

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fastJsonPatch from 'fast-json-patch';
import { SERVE_NODE_FLAGS } from '../src/server/node-flags.ts';
import { BENCH_UID, agentPod, clusterState, expectedInjectedEnv, podReview } from './fixtures.ts';
import { cpuBusy, cpuMicros, rssMiB, schedMicros } from './proc.ts';
import { writeSection } from './report.ts';
import { sampleSum, sampleValue } from '../test/helpers/prometheus.ts';
import { httpGet } from './api.ts';
import { PIN, benchCertificates, children, ensureWrk, freePort, pinned, stopChild, wrk } from './load.ts';

const ROOT = resolve(import.meta.dirname, '..');
const BENCH = join(ROOT, 'bench');
const SECONDS = envNumber('BENCH_SECONDS', 6);
const WARMUP = envNumber('BENCH_WARMUP', 2);
const CONNECTIONS = [1, 16] as const;
const SIZES = [10, 10_000, 100_000] as const;
const CONNECTORS = 10_000;
const SERVER_CPU = 0;
const LOAD_CPU = 1;

type Json = { [key: string]: unknown };
type Kind = 'bare' | 'ceiling' | 'deep-copy' | 'ours';
type ReferenceKind = Exclude<Kind, 'ours'>;

/** The compiled reference server of each kind (dist/bench/reference/<file>.js). */
const REFERENCE_FILE: Record<ReferenceKind, string> = { bare: 'bare', ceiling: 'ceiling', 'deep-copy': 'minimal' };
/** How each server is named in the tables. */
const SHORT_LABEL: Record<ReferenceKind, string> = { bare: 'bare', ceiling: 'ceiling', 'deep-copy': 'deep-copy ref' };

function envNumber(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

function say(line: string): void {
  process.stdout.write(line + '\n');
}

// ---------------------------------------------------------------- tools

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- servers

interface ServerSpec {
  readonly id: string;
  readonly kind: Kind;
  readonly label: string;
  readonly agents?: number;
  readonly stateFile?: string;
}

interface Running {
  readonly spec: ServerSpec;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly metricsPort: number | undefined;
  readonly logFile: string | undefined;
  readonly stderr: string[];
  startupSeconds: number;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    process.exit(130);
  });
}

interface Env {
  readonly tmp: string;
  readonly certDir: string;
  readonly ca: string;
  readonly reviewFile: string;
  readonly reviewText: string;
}

async function startServer(spec: ServerSpec, env: Env): Promise<Running> {
  const port = await freePort();
  let argv: string[];
  let metricsPort: number | undefined;
  let logFile: string | undefined;
  let stdout: number | 'ignore' = 'ignore';
  // As in a pod: no extra CA bundle to load (this sandbox sets one for outbound HTTPS).
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.NODE_EXTRA_CA_CERTS;
  if (spec.kind === 'ours') {
    metricsPort = await freePort();
    logFile = join(env.tmp, `${spec.id}.log`);
    stdout = openSync(logFile, 'w');
    childEnv.LOG_LEVEL = 'info';
    argv = [process.execPath, ...SERVE_NODE_FLAGS, join(ROOT, 'dist/src/cli/main.js'), 'serve', '--state', spec.stateFile!, '--cert-dir', env.certDir, '--host', '127.0.0.1', '--port', String(port), '--metrics-host', '127.0.0.1', '--metrics-port', String(metricsPort), '--drain-ms', '0'];
  } else {
    // The compiled JS (npm run build emits bench/ too), so no server pays for type stripping.
    argv = [process.execPath, join(ROOT, 'dist/bench/reference', `${REFERENCE_FILE[spec.kind]}.js`), '--cert-dir', env.certDir, '--host', '127.0.0.1', '--port', String(port)];
  }
  const full = pinned(SERVER_CPU, argv);
  const started = performance.now();
  const child = spawn(full[0]!, full.slice(1), { cwd: ROOT, env: childEnv, stdio: ['ignore', stdout, 'pipe'] });
  if (typeof stdout === 'number') closeSync(stdout);
  children.add(child);
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    stderr.push(d);
    if (stderr.length > 50) stderr.shift();
  });
  if (child.pid === undefined) throw new Error(`${spec.label}: could not start ${full.join(' ')}`);
  const running: Running = { spec, child, pid: child.pid, port, metricsPort, logFile, stderr, startupSeconds: 0 };
  // Ready: ours says so on /readyz; the references when they answer.
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${spec.label} exited during startup (${child.exitCode ?? child.signalCode}): ${stderr.join('').trim().slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`${spec.label} not ready after 180 s`);
    try {
      if (metricsPort !== undefined) {
        const r = await httpGet(metricsPort, '/readyz');
        if (r.status === 200) break;
      } else {
        await post(port, env);
        break;
      }
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  running.startupSeconds = (performance.now() - started) / 1000;
  return running;
}

async function stopServer(r: Running): Promise<void> {
  await stopChild(r.child, 5000);
}

/** One POST of the review over verified TLS (the CA we generated, the 127.0.0.1 SAN). */
function post(port: number, env: Env): Promise<{ status: number; contentType: string; text: string }> {
  return new Promise((res, rej) => {
    const body = Buffer.from(env.reviewText);
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/mutate/pods', method: 'POST', ca: env.ca, agent: false, timeout: 5000, headers: { 'content-type': 'application/json', 'content-length': body.length } },
      (resp) => {
        let text = '';
        resp.setEncoding('utf8');
        resp.on('data', (d: string) => (text += d));
        resp.on('end', () => res({ status: resp.statusCode ?? 0, contentType: String(resp.headers['content-type'] ?? ''), text }));
      },
    );
    req.on('error', rej);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

// ---------------------------------------------------------------- correctness

interface Verified {
  readonly check: string;
  /** The decoded JSON Patch text (the webhooks only). */
  readonly patch?: string;
}

/** Checks the answer is a correct AdmissionReview; for the webhooks, that its patch injects exactly what SPEC.md says. */
async function verify(r: Running, env: Env): Promise<Verified> {
  const fail = (why: string): never => {
    throw new Error(`${r.spec.label}: wrong answer: ${why}`);
  };
  const resp = await post(r.port, env);
  if (resp.status !== 200) fail(`HTTP ${resp.status}: ${resp.text.slice(0, 300)}`);
  if (!resp.contentType.startsWith('application/json')) fail(`content-type ${resp.contentType}`);
  let review: { apiVersion?: unknown; kind?: unknown; response?: { uid?: unknown; allowed?: unknown; patchType?: unknown; patch?: unknown } };
  try {
    review = JSON.parse(resp.text) as typeof review;
  } catch {
    return fail('body is not JSON');
  }
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') fail('not an admission.k8s.io/v1 AdmissionReview');
  const response = review.response;
  if (!response || response.uid !== BENCH_UID) fail('response.uid does not echo request.uid');
  if (response!.allowed !== true) fail('not allowed');
  if (r.spec.kind === 'bare') return { check: 'constant AdmissionReview (allowed, uid echoed)' };
  if (response!.patchType !== 'JSONPatch' || typeof response!.patch !== 'string') fail('no JSONPatch: the pod was not mutated');
  const patchText = Buffer.from(response!.patch as string, 'base64').toString('utf8');
  const ops = JSON.parse(patchText) as fastJsonPatch.Operation[];
  const pod = agentPod();
  const patched = fastJsonPatch.applyPatch(fastJsonPatch.deepClone(pod), ops, true, false).newDocument as Json;
  const containers = (patched.spec as Json).containers as Json[];
  const origContainers = (pod.spec as Json).containers as Json[];
  const env0 = containers[0]!.env as Json[];
  const origEnv = origContainers[0]!.env as Json[];
  for (const want of expectedInjectedEnv()) {
    const found = env0.filter((e) => e.name === want.name);
    if (found.length !== 1) fail(`agent container has ${found.length} ${String(want.name)} entries`);
    if (!isDeepStrictEqual(found[0], want)) fail(`${String(want.name)} is ${JSON.stringify(found[0])}, expected ${JSON.stringify(want)}`);
  }
  if (!isDeepStrictEqual(env0.slice(0, origEnv.length), origEnv)) fail("the agent container's own env vars were changed or reordered");
  const annotations = (patched.metadata as Json).annotations as Json;
  if (annotations['komputer.ai/injected-connectors'] !== 'github,notion,slack') fail('injected-connectors annotation missing');
  // Nothing else may change.
  containers[0]!.env = origEnv;
  delete annotations['komputer.ai/injected-connectors'];
  if (!isDeepStrictEqual(patched, pod)) fail('the patch changes more than the agent env and the annotation');
  return { check: `${ops.length} patch ops; agent env ${origEnv.length} -> ${env0.length} vars; the rest of the pod untouched`, patch: patchText };
}

/**
 * The ceiling must answer the benchmarked pod with exactly ours' patch, byte for byte (the
 * same ops, in the same order, serialized the same way): otherwise it would be measured
 * doing a different job. The first webhook checked (ours, idle) sets the expected text;
 * the ceiling and every other run of ours are compared to it before any load, and a
 * mismatch aborts the bench.
 */
const patchCheck: { expected?: { id: string; text: string }; equal: string[] } = { equal: [] };

function checkSamePatch(spec: ServerSpec, text: string | undefined): string | undefined {
  if (spec.kind !== 'ours' && spec.kind !== 'ceiling') return undefined;
  if (text === undefined) throw new Error(`${spec.label}: no patch to compare`);
  const expected = patchCheck.expected;
  if (expected === undefined) {
    if (spec.kind !== 'ours') throw new Error('the patch check needs ours first (it sets the expected patch)');
    patchCheck.expected = { id: spec.id, text };
    patchCheck.equal.push(spec.id);
    return `the expected patch for the ceiling (${text.length} bytes)`;
  }
  if (text !== expected.text) {
    const want = JSON.parse(expected.text) as unknown[];
    const got = JSON.parse(text) as unknown[];
    const diffs: string[] = [];
    for (let i = 0; i < Math.max(want.length, got.length) && diffs.length < 3; i++) {
      const a = JSON.stringify(want[i]);
      const b = JSON.stringify(got[i]);
      if (a !== b) diffs.push(`op ${i}: ${expected.id} ${a ?? '(none)'} vs ${b ?? '(none)'}`);
    }
    if (diffs.length === 0) diffs.push('the same ops, serialized differently');
    throw new Error(`${spec.label}: its patch differs from ${expected.id}'s (${got.length} vs ${want.length} ops, ${text.length} vs ${expected.text.length} bytes): ${diffs.join('; ')}`);
  }
  patchCheck.equal.push(spec.id);
  return `byte-for-byte the same patch as ${expected.id} (${text.length} bytes)`;
}

// ---------------------------------------------------------------- load

interface LoadResult {
  connections: number;
  warmupRequests: number;
  requests: number;
  seconds: number;
  rps: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
  cpuUsPerReq: number;
  /** Server CPU time / wall time: ~100% when the server is the bottleneck on its core. */
  serverCpuPct: number;
  /** How busy the server's core was in total (above serverCpuPct: something else ran there). */
  serverCoreBusyPct: number | undefined;
  /** Time the server's threads were runnable but waiting for a core, / wall time. */
  serverWaitPct: number | undefined;
  /** The same for the load generator. */
  loadGeneratorWaitPct: number | undefined;
  /** Other work competed for the cores during this run (see OTHERS_PCT and NOISE_PCT). */
  noisy: boolean;
  /** Measured twice because the first attempt was noisy. */
  retried: boolean;
}

/**
 * A run is noisy, and measured once more, when other processes kept the server's core busy
 * for more than OTHERS_PCT of the time, or wrk waited for its core more than NOISE_PCT.
 * (The server's own run-queue wait is reported but not used: on one core its GC and libuv
 * threads wait for its main thread, and waking an idle vCPU counts as waiting too.)
 */
const OTHERS_PCT = 7;
const NOISE_PCT = 10;

function othersOnServerCore(m: LoadResult): number {
  return m.serverCoreBusyPct === undefined ? 0 : m.serverCoreBusyPct - m.serverCpuPct;
}

/** Noisy runs are measured again only while the whole bench is younger than this. */
const RETRY_BUDGET_S = 175;
const STARTED = performance.now();

/** One measured run; when other work competed for the cores, once more, keeping the quieter. */
async function measure(r: Running, connections: number, env: Env): Promise<LoadResult> {
  const first = await measureOnce(r, connections, env);
  if (!first.noisy) return first;
  if ((performance.now() - STARTED) / 1000 > RETRY_BUDGET_S) return first; // keep the whole run bounded
  say(`   (${connections} conn: other work took the cores: server core ${fmt(othersOnServerCore(first), 1)}% busy with others, wrk waited ${fmt(first.loadGeneratorWaitPct, 1)}% for its core; measuring again)`);
  const second = await measureOnce(r, connections, env);
  const noise = (m: LoadResult): number => othersOnServerCore(m) + (m.loadGeneratorWaitPct ?? 0);
  const kept = noise(second) <= noise(first) ? second : first;
  return { ...kept, warmupRequests: first.warmupRequests + first.requests + second.warmupRequests + second.requests - kept.requests, retried: true };
}

async function measureOnce(r: Running, connections: number, env: Env): Promise<LoadResult> {
  const warm = (await wrk({ port: r.port, connections, seconds: WARMUP, bodyFile: env.reviewFile, cpu: LOAD_CPU })).summary;
  const cpu0 = cpuMicros(r.pid);
  const core0 = cpuBusy(SERVER_CPU);
  const sched0 = schedMicros(r.pid);
  const t0 = performance.now();
  const run = await wrk({ port: r.port, connections, seconds: SECONDS, bodyFile: env.reviewFile, cpu: LOAD_CPU });
  const w = run.summary;
  const wallUs = (performance.now() - t0) * 1000;
  const cpu1 = cpuMicros(r.pid);
  const core1 = cpuBusy(SERVER_CPU);
  const sched1 = schedMicros(r.pid);
  const e = w.errors;
  const errors = e.connect + e.read + e.write + e.status + e.timeout;
  if (errors > 0) throw new Error(`${r.spec.label}: ${errors} errors under load at ${connections} connections: ${JSON.stringify(e)}`);
  if (w.requests === 0) throw new Error(`${r.spec.label}: no request completed at ${connections} connections`);
  const seconds = w.duration_us / 1e6;
  const ms = (us: number): number => Math.round(us) / 1000;
  const result: LoadResult = {
    connections,
    warmupRequests: warm.requests,
    requests: w.requests,
    seconds,
    rps: w.requests / seconds,
    latencyMs: { mean: ms(w.latency_us.mean), p50: ms(w.latency_us.p50), p90: ms(w.latency_us.p90), p99: ms(w.latency_us.p99), p999: ms(w.latency_us.p999), max: ms(w.latency_us.max) },
    cpuUsPerReq: (cpu1 - cpu0) / w.requests,
    serverCpuPct: ((cpu1 - cpu0) / wallUs) * 100,
    serverCoreBusyPct: core0 && core1 ? ((core1.busy - core0.busy) / Math.max(1, core1.total - core0.total)) * 100 : undefined,
    serverWaitPct: sched0 && sched1 ? ((sched1.wait - sched0.wait) / wallUs) * 100 : undefined,
    loadGeneratorWaitPct: run.waitPct,
    noisy: false,
    retried: false,
  };
  result.noisy = othersOnServerCore(result) > OTHERS_PCT || (result.loadGeneratorWaitPct ?? 0) > NOISE_PCT;
  return result;
}

interface ServerResult {
  id: string;
  kind: Kind;
  label: string;
  agents?: number;
  startupSeconds: number;
  check: string;
  /** The webhooks: how many ops the patch for the benchmarked pod has, and its bytes. */
  patchOps?: number;
  patchBytes?: number;
  rssIdleMiB: number;
  rssAfterMiB: number;
  /** Ours only, from its /metrics: the live JS heap (RSS minus this is code, buffers and not yet released garbage). */
  heapUsedIdleMiB?: number;
  heapUsedAfterMiB?: number;
  runs: LoadResult[];
  /** Ours only: what the server itself counted and logged (everything on). */
  served?: { patchedByMetrics: number; sentByLoadGenerator: number; logLines: number; logBytesPerRequest: number };
}

function countOccurrences(file: string, needle: string): number {
  const text = readFileSync(file, 'utf8');
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

async function heapUsedMiB(r: Running): Promise<number | undefined> {
  if (r.metricsPort === undefined) return undefined;
  const heap = sampleValue((await httpGet(r.metricsPort, '/metrics')).text, 'komputer_webhook_nodejs_heap_size_used_bytes');
  return heap === undefined ? undefined : heap / 1048576;
}

async function benchServer(spec: ServerSpec, env: Env, withLoad: boolean): Promise<ServerResult> {
  say(`\n== ${spec.label}`);
  const r = await startServer(spec, env);
  try {
    const { check, patch } = await verify(r, env);
    const same = checkSamePatch(spec, patch);
    say(`   ready in ${r.startupSeconds.toFixed(1)} s; answer checked: ${check}${same ? `; ${same}` : ''}`);
    await sleep(1000);
    const rssIdleMiB = rssMiB(r.pid);
    const heapIdle = await heapUsedMiB(r);
    const runs: LoadResult[] = [];
    let sent = 1;
    if (withLoad) {
      for (const c of CONNECTIONS) {
        const m = await measure(r, c, env);
        runs.push(m);
        sent += m.warmupRequests + m.requests;
        say(`   ${String(c).padStart(2)} conn: ${fmt(m.rps, 0).padStart(7)} req/s  p50 ${fmt(m.latencyMs.p50, 3)} ms  p99 ${fmt(m.latencyMs.p99, 3)} ms  p99.9 ${fmt(m.latencyMs.p999, 3)} ms  CPU ${fmt(m.cpuUsPerReq, 1)} µs/req  (server ${fmt(m.serverCpuPct, 0)}% of its core, others ${fmt(othersOnServerCore(m), 1)}%; wrk waited ${fmt(m.loadGeneratorWaitPct, 1)}%${m.noisy ? '; NOISY' : ''})`);
      }
    }
    const rssAfterMiB = rssMiB(r.pid);
    const heapAfter = await heapUsedMiB(r);
    say(`   RSS idle ${fmt(rssIdleMiB, 1)} MiB, after load ${fmt(rssAfterMiB, 1)} MiB${heapIdle !== undefined ? ` (JS heap in use: ${fmt(heapIdle, 1)} and ${fmt(heapAfter, 1)} MiB)` : ''}`);
    const result: ServerResult = { id: spec.id, kind: spec.kind, label: spec.label, startupSeconds: r.startupSeconds, check, rssIdleMiB, rssAfterMiB, runs };
    if (patch !== undefined) {
      result.patchOps = (JSON.parse(patch) as unknown[]).length;
      result.patchBytes = patch.length;
    }
    if (heapIdle !== undefined) result.heapUsedIdleMiB = heapIdle;
    if (heapAfter !== undefined) result.heapUsedAfterMiB = heapAfter;
    if (spec.agents !== undefined) result.agents = spec.agents;
    if (spec.kind === 'ours' && r.metricsPort !== undefined && r.logFile) {
      const metrics = await httpGet(r.metricsPort, '/metrics');
      const patchedByMetrics = sampleSum(metrics.text, 'komputer_webhook_admission_requests_total', { verdict: 'patched' });
      await stopServer(r);
      const logLines = countOccurrences(r.logFile, '"msg":"admission"');
      const bytes = statSync(r.logFile).size;
      rmSync(r.logFile, { force: true });
      // The load generator counts completed responses; the server may finish a few more.
      result.served = { patchedByMetrics, sentByLoadGenerator: sent, logLines, logBytesPerRequest: logLines > 0 ? bytes / logLines : 0 };
      if (patchedByMetrics < sent) throw new Error(`${spec.label}: /metrics counted ${patchedByMetrics} patched admissions, but ${sent} answers were received`);
      if (logLines < patchedByMetrics * 0.99) throw new Error(`${spec.label}: ${logLines} admission log lines for ${patchedByMetrics} requests: logging was not on`);
    }
    return result;
  } finally {
    await stopServer(r);
  }
}

// ---------------------------------------------------------------- report

function fmt(n: number | undefined, digits: number): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  return [line(head), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...rows.map(line)].join('\n');
}

function run(s: ServerResult, c: number): LoadResult {
  const r = s.runs.find((x) => x.connections === c);
  if (!r) throw new Error(`${s.label}: no run at ${c} connections`);
  return r;
}

interface Goal {
  id: string;
  goal: string;
  value: number;
  target: number;
  /** 'max': value must be <= target; 'min': >= target. Gate: 0.7x of the goal. */
  direction: 'min' | 'max';
  unit: string;
  gate: number;
  status: 'met' | 'missed' | 'FAILED' | 'not measurable here';
  note?: string;
}

function goal(id: string, text: string, value: number, target: number, direction: 'min' | 'max', unit: string): Goal {
  const gate = direction === 'min' ? target * 0.7 : target / 0.7;
  const met = direction === 'min' ? value >= target : value <= target;
  const failed = direction === 'min' ? value < gate : value > gate;
  return { id, goal: text, value, target, direction, unit, gate, status: met ? 'met' : failed ? 'FAILED' : 'missed' };
}

/**
 * An absolute bound needs a machine that can meet it at all: when the bare constant reply
 * (the limit) already misses it, the miss is the machine's (on small VMs, waking an idle
 * vCPU for each request costs milliseconds at the tail), so it is reported, not gated.
 */
function p99At1Goal(ours: number, limit: number): Goal {
  const g = goal('p99-1', 'p99 at 1 conn <= 1 ms', ours, 1, 'max', 'ms');
  if (g.status !== 'met' && limit > g.target) {
    g.status = 'not measurable here';
    g.note = `the bare constant reply itself has p99 ${fmt(limit, 3)} ms at 1 conn on this machine`;
  }
  return g;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const t0 = STARTED;
  if (!process.version.startsWith('v24.')) say(`warning: running on Node ${process.version}; the project pins Node 24 (run via npm run bench)`);
  for (const f of ['dist/src/cli/main.js', ...Object.values(REFERENCE_FILE).map((f) => `dist/bench/reference/${f}.js`)]) {
    if (!existsSync(join(ROOT, f))) {
      say(`${f} is missing: run \`npm run bench\` (it builds first)`);
      process.exit(2);
    }
  }
  const wrkVersion = ensureWrk(say);
  if (!PIN) say('note: taskset missing or fewer than 2 CPUs: server and load generator are not pinned to separate cores');
  const tmp = mkdtempSync(join(tmpdir(), 'komputer-bench-'));
  try {
    const { certDir, caCert } = await benchCertificates(tmp);
    const reviewText = JSON.stringify(podReview());
    const reviewFile = join(tmp, 'review.json');
    writeFileSync(reviewFile, reviewText);
    const env: Env = { tmp, certDir, ca: caCert, reviewFile, reviewText };

    const states = new Map<number, { file: string; bytes: number }>();
    const tinyFile = join(tmp, 'state-tiny.json');
    writeFileSync(tinyFile, clusterState(1, 3, 1));
    for (const n of SIZES) {
      const file = join(tmp, `state-${n}.json`);
      const text = clusterState(n, CONNECTORS);
      writeFileSync(file, text);
      states.set(n, { file, bytes: text.length });
    }
    say(`komputer-connector-webhook bench: Node ${process.version}, ${wrkVersion}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${PIN ? `server on CPU ${SERVER_CPU}, load generator on CPU ${LOAD_CPU}` : 'unpinned'}`);
    say(`review ${reviewText.length} bytes; ${WARMUP} s warm-up + ${SECONDS} s per run at ${CONNECTIONS.join(' and ')} connections; loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

    const idle = await benchServer({ id: 'ours-idle', kind: 'ours', label: 'ours, idle (1 namespace, 3 connectors, 1 agent)', stateFile: tinyFile, agents: 1 }, env, false);
    // The ceiling right after ours (idle), so a patch mismatch aborts before any load.
    const ceiling = await benchServer({ id: 'ceiling', kind: 'ceiling', label: 'ceiling: fastest correct webhook (node:https + JSON.parse + patch ops emitted directly, no copy + base64)' }, env, true);
    const bare = await benchServer({ id: 'bare', kind: 'bare', label: 'bare node:https, constant reply (the limit of TLS + HTTP)' }, env, true);
    const deepCopy = await benchServer({ id: 'deep-copy', kind: 'deep-copy', label: 'deep-copy reference (node:https + JSON.parse + deep copy + fast-json-patch compare + base64)' }, env, true);
    const scale: ServerResult[] = [];
    for (const n of SIZES) {
      scale.push(await benchServer({ id: `ours-${n}`, kind: 'ours', label: `ours (express, logging, metrics, cache): ${fmt(n, 0)} agents, ${fmt(CONNECTORS, 0)} connectors`, stateFile: states.get(n)!.file, agents: n }, env, true));
    }
    const ours = scale[0]!;
    const largest = scale[scale.length - 1]!;

    // ---- tables
    const serverRows: string[][] = [];
    for (const s of [ceiling, deepCopy, bare, ...scale]) {
      for (const r of s.runs) {
        serverRows.push([
          s.kind === 'ours' ? `ours, ${fmt(s.agents, 0)} agents` : SHORT_LABEL[s.kind],
          String(r.connections) + (r.noisy ? '*' : ''),
          fmt(r.rps, 0),
          fmt(r.latencyMs.p50, 3),
          fmt(r.latencyMs.p99, 3),
          fmt(r.latencyMs.p999, 3),
          fmt(r.cpuUsPerReq, 1),
          fmt(s.rssIdleMiB, 1),
          fmt(s.rssAfterMiB, 1),
        ]);
      }
    }
    const results = table(['server', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'CPU µs/req', 'RSS idle MiB', 'RSS after MiB'], serverRows);

    // Ratios against the ceiling first (the reference), then the others for context.
    const ratioOf = (a: ServerResult, b: ServerResult): Record<string, number> => ({
      throughput16: run(a, 16).rps / run(b, 16).rps,
      throughput1: run(a, 1).rps / run(b, 1).rps,
      cpuPerReq16: run(a, 16).cpuUsPerReq / run(b, 16).cpuUsPerReq,
      p99at1: run(a, 1).latencyMs.p99 / run(b, 1).latencyMs.p99,
      p999at1: run(a, 1).latencyMs.p999 / run(b, 1).latencyMs.p999,
      p99at16: run(a, 16).latencyMs.p99 / run(b, 16).latencyMs.p99,
      p999at16: run(a, 16).latencyMs.p999 / run(b, 16).latencyMs.p999,
    });
    const ratios: Record<string, Record<string, number>> = {
      oursToCeiling: ratioOf(ours, ceiling),
      oursToDeepCopy: ratioOf(ours, deepCopy),
      oursToBare: ratioOf(ours, bare),
      deepCopyToCeiling: ratioOf(deepCopy, ceiling),
    };
    const ratioNames: Record<string, string> = { oursToCeiling: 'ours / ceiling', oursToDeepCopy: 'ours / deep-copy ref', oursToBare: 'ours / bare', deepCopyToCeiling: 'deep-copy ref / ceiling' };
    const x = (v: number | undefined): string => `${fmt(v, 2)}x`;
    const ratioRows = Object.entries(ratios).map(([k, v]) => [ratioNames[k]!, x(v.throughput16), x(v.throughput1), x(v.cpuPerReq16), x(v.p99at1), x(v.p999at1), x(v.p99at16), x(v.p999at16)]);
    const ratioTable = table(['ratio (ours = 10 agents)', 'req/s @16', 'req/s @1', 'CPU/req @16', 'p99 @1', 'p99.9 @1', 'p99 @16', 'p99.9 @16'], ratioRows);

    const scaleRows = scale.map((s) => [
      fmt(s.agents, 0),
      fmt(s.startupSeconds, 1),
      fmt(s.rssIdleMiB, 1),
      fmt(s.rssAfterMiB, 1),
      fmt(s.heapUsedAfterMiB, 1),
      fmt(run(s, 1).rps, 0),
      fmt(run(s, 1).latencyMs.p50, 3),
      fmt(run(s, 1).latencyMs.p99, 3),
      fmt(run(s, 16).rps, 0),
      fmt(run(s, 16).latencyMs.p99, 3),
      fmt(run(s, 16).cpuUsPerReq, 1),
    ]);
    const scaleTable = table(['agents (10k connectors)', 'startup s', 'RSS idle MiB', 'RSS after MiB', 'JS heap after MiB', 'req/s @1', 'p50 @1 ms', 'p99 @1 ms', 'req/s @16', 'p99 @16 ms', 'CPU µs/req @16'], scaleRows);

    const latencyGrowth = run(largest, 1).latencyMs.p50 / run(ours, 1).latencyMs.p50;
    const goals: Goal[] = [
      // Issue 5's goals were set against the deep-copy reference (then called "minimal"):
      // they stay computed against it; the ceiling ratios above are reported, not gated.
      goal('throughput', 'req/s at 16 conns >= 0.8x deep-copy ref', ratios.oursToDeepCopy!.throughput16!, 0.8, 'min', 'x'),
      goal('cpu', 'CPU per request <= 1.25x deep-copy ref', ratios.oursToDeepCopy!.cpuPerReq16!, 1.25, 'max', 'x'),
      p99At1Goal(run(ours, 1).latencyMs.p99, run(bare, 1).latencyMs.p99),
      goal('p99-16', "p99 at 16 conns <= 1.5x deep-copy ref's", ratios.oursToDeepCopy!.p99at16!, 1.5, 'max', 'x'),
      goal('rss-idle', 'idle RSS <= 80 MB', idle.rssIdleMiB, 80, 'max', 'MiB'),
      goal('rss-100k', `RSS with ${fmt(largest.agents, 0)} agents cached <= 250 MB`, Math.max(largest.rssIdleMiB, largest.rssAfterMiB), 250, 'max', 'MiB'),
      goal('scale-latency', `p50 at 1 conn with ${fmt(largest.agents, 0)} agents within 10% of with ${fmt(ours.agents, 0)}`, latencyGrowth, 1.1, 'max', 'x'),
    ];
    // A ratio measured while other work took the cores is flagged: re-run on a quiet machine.
    const noisyInputs: Record<string, LoadResult[]> = {
      throughput: [run(ours, 16), run(deepCopy, 16)],
      cpu: [run(ours, 16), run(deepCopy, 16)],
      'p99-1': [run(ours, 1), run(bare, 1)],
      'p99-16': [run(ours, 16), run(deepCopy, 16)],
      'scale-latency': [run(ours, 1), run(largest, 1)],
    };
    for (const g of goals) {
      if ((noisyInputs[g.id] ?? []).some((r) => r.noisy)) g.note = [g.note, 'measured while other work competed for the cores: re-run on a quiet machine'].filter(Boolean).join('; ');
    }
    const goalRows = goals.map((g) => [g.goal, `${fmt(g.value, g.unit === 'MiB' ? 1 : g.unit === 'ms' ? 3 : 2)} ${g.unit}`, `${g.direction === 'min' ? '>=' : '<='} ${g.target} ${g.unit}`, `${g.direction === 'min' ? '<' : '>'} ${fmt(g.gate, 2)} ${g.unit}`, g.status]);
    const goalTable = table(['goal', 'measured', 'goal', 'fails when', 'status'], goalRows);

    const when = new Date();
    const header = `Run ${when.toISOString()} — Node ${process.version}, ${wrkVersion}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${PIN ? `server pinned to CPU ${SERVER_CPU}, wrk to CPU ${LOAD_CPU}` : 'unpinned'}; ${reviewText.length}-byte Pod AdmissionReview, HTTPS keep-alive on loopback, ${WARMUP} s warm-up + ${SECONDS} s per run. Ours idle (tiny state): RSS ${fmt(idle.rssIdleMiB, 1)} MiB.`;
    const patchLine = `Patch check: the ceiling and ours (${patchCheck.equal.join(', ')}) answer the benchmarked pod with byte-for-byte the same JSON Patch (${ceiling.patchOps ?? '?'} ops, ${fmt(ceiling.patchBytes, 0)} bytes); the deep-copy reference's has ${deepCopy.patchOps ?? '?'} ops (same result when applied).`;
    const markdown = [
      '# Bench results (`npm run bench`)',
      '',
      header,
      '',
      patchLine,
      '',
      '## Servers: ours, the ceiling, the deep-copy reference, the bare constant reply',
      '',
      results,
      '',
      '## Ratios (reference: the ceiling; the deep-copy reference and bare for context)',
      '',
      ratioTable,
      '',
      '## Ours at three cluster sizes',
      '',
      scaleTable,
      '',
      '## Goals (issue 5, against the deep-copy reference)',
      '',
      goalTable,
      '',
    ].join('\n');
    say('\n' + markdown);

    const output = {
      timestamp: when.toISOString(),
      machine: { node: process.version, wrk: wrkVersion, cpus: cpus().length, cpuModel: cpus()[0]?.model, pinned: PIN, serverCpu: PIN ? SERVER_CPU : null, loadCpu: PIN ? LOAD_CPU : null, loadavgAtStart: loadavg() },
      settings: { warmupSeconds: WARMUP, seconds: SECONDS, connections: CONNECTIONS, reviewBytes: reviewText.length, connectors: CONNECTORS, sizes: SIZES, stateFileBytes: Object.fromEntries([...states].map(([n, s]) => [n, s.bytes])) },
      servers: { idle, ceiling, deepCopy, bare, ours: scale },
      patchCheck: { sameAs: patchCheck.expected?.id, equal: patchCheck.equal, ops: ceiling.patchOps, bytes: ceiling.patchBytes, deepCopyOps: deepCopy.patchOps },
      ratios,
      scale: { latencyP50At1Growth: latencyGrowth },
      goals,
      markdown,
    };
    const dir = join(BENCH, 'results');
    mkdirSync(dir, { recursive: true });
    const stamp = when.toISOString().replace(/[:.]/g, '-');
    const json = JSON.stringify(output, null, 2) + '\n';
    writeFileSync(join(dir, `${stamp}.json`), json);
    writeFileSync(join(dir, 'latest.json'), json);
    // Its own section of latest.md; the other benchmarks' sections stay.
    writeSection('run', markdown);
    say(`results: bench/results/${stamp}.json (and latest.json, latest.md); took ${fmt((performance.now() - t0) / 1000, 0)} s`);

    const met = goals.filter((g) => g.status === 'met');
    const missed = goals.filter((g) => g.status === 'missed');
    for (const g of goals.filter((x) => x.status === 'not measurable here')) say(`WARNING: ${g.id} not measurable here: ${g.note ?? ''} (ours: ${fmt(g.value, 3)} ${g.unit})`);
    const failed = goals.filter((g) => g.status === 'FAILED');
    say(`\ngoals met (${met.length}): ${met.map((g) => g.id).join(', ') || 'none'}`);
    if (missed.length > 0) say(`WARNING: goals missed but above the 0.7x gate (${missed.length}): ${missed.map((g) => `${g.id} (${fmt(g.value, 2)} ${g.unit}, goal ${g.direction === 'min' ? '>=' : '<='} ${g.target})${g.note ? ` [${g.note}]` : ''}`).join('; ')}`);
    const noisyRuns = [ceiling, deepCopy, bare, ...scale].flatMap((s) => s.runs.filter((r) => r.noisy).map((r) => `${s.id}@${r.connections}`));
    if (noisyRuns.length > 0) say(`WARNING: measured while other work competed for the cores (marked * above): ${noisyRuns.join(', ')}`);
    if (failed.length > 0) {
      say(`\n!!! BENCH GATE FAILED (${failed.length}): ${failed.map((g) => `${g.id}: ${fmt(g.value, 2)} ${g.unit}, gate ${g.direction === 'min' ? '>=' : '<='} ${fmt(g.gate, 2)} ${g.unit} (goal ${g.target})${g.note ? ` [${g.note}]` : ''}`).join('; ')}`);
      process.exitCode = 1;
    }
  } finally {
    if (process.env.BENCH_KEEP) say(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`\nbench failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
