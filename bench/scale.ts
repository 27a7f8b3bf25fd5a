// `npm run bench:scale`: the service at scale, served from a real API server (the e2e control
// plane: kube-apiserver + etcd), not from a state file.
//
// 1. Creates 100 enabled namespaces, 10,000 connectors and 10 agents (bench/fixtures.ts
//    clusterState, the cluster `npm run bench` serves from a file) with the service stopped,
//    so its first start finds every status to write.
// 2. Starts the service: time to ready, the controller's initial sync (time until every
//    connector carries its true counts, and the status writes it took), RSS after sync, then
//    wrk against /mutate/pods at 1 and 16 connections, RSS and heap after the load.
// 3. Stops it, creates the other 99,990 agents, and does 2. again at 100,000 agents.
// 4. Restarts it on the same cluster: a full recompute, which must write nothing; then edits
//    a few agents and counts the writes (only the connectors whose counts changed).
// 5. Every run above uses the image's V8 flags (src/server/node-flags.ts). It starts again with
//    V8's defaults, and with each --max-old-space-size of --heap-limits, and measures RSS and
//    the 16-connection throughput at 100,000 agents against the shipped flags.
//
//   --agents N        agents at the large size (default 100000)
//   --connectors N    connectors (default 10000)
//   --namespaces N    enabled namespaces (default 100)
//   --seconds S       measured seconds per load run (default 6, after --warmup 2)
//   --heap-limits L   comma-separated --max-old-space-size values in MB to try (default 192,256)
//   --small           CI's version: 2,000 agents, 200 connectors, 10 namespaces, 2 s runs, no
//                     heap-limit runs; checks everything, gates on correctness only
//   --out FILE        where the JSON goes (default bench/results/scale-latest.json; --small
//                     writes nothing into the repository unless --out is given)
//
// Exits 1 when a check fails (wrong counts, writes for unchanged connectors, a bad patch,
// errors under load) and, at full size, when a goal is missed.

import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { request as httpsRequest } from 'node:https';
import { spawnSync } from 'node:child_process';
import { writeSection } from './report.ts';
import { sampleSum } from '../test/helpers/prometheus.ts';
import { startEnvironment, stopEnvironment, type Environment, type WebhookService } from '../test/e2e/harness/index.ts';
import { SHARED_WITH, adminClients, expectedStatuses, mapLimit, scrape, sample, waitForCounts, type AgentModel, type ConnectorModel } from '../test/e2e/fixtures/cluster.ts';
import { apiClient, type Client } from './api.ts';
import { BENCH_UID, podReview } from './fixtures.ts';
import { clusterObjects, collectionPath, createObjects, metaOf } from './cluster-objects.ts';
import { PIN, ensureWrk, wrk, type WrkSummary } from './load.ts';
import { SERVE_NODE_FLAGS } from '../src/server/node-flags.ts';
import { cpuMicros, rssMiB } from './proc.ts';

type Json = { [key: string]: unknown };

const say = (m: string): void => void process.stdout.write(`[bench:scale] ${m}\n`);

// Unknown flags and missing values are errors (a typo must not run an 8-minute benchmark).
function parseFlags() {
  try {
    return parseArgs({
      options: {
        agents: { type: 'string' },
        connectors: { type: 'string' },
        namespaces: { type: 'string' },
        seconds: { type: 'string' },
        warmup: { type: 'string' },
        'heap-limits': { type: 'string' },
        small: { type: 'boolean', default: false },
        out: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    process.stderr.write(`bench:scale: ${e instanceof Error ? e.message : String(e)} (flags: see the top of bench/scale.ts)\n`);
    process.exit(2);
  }
}
const args = parseFlags();
function flag(name: keyof typeof args): string | undefined {
  const v = args[name];
  return typeof v === 'string' ? v : undefined;
}
function intFlag(name: keyof typeof args, fallback: number): number {
  const raw = flag(name);
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return v;
}

const SMALL = args.small === true;
const AGENTS = intFlag('agents', SMALL ? 2000 : 100_000);
const CONNECTORS = intFlag('connectors', SMALL ? 200 : 10_000);
const NAMESPACES = intFlag('namespaces', SMALL ? 10 : 100);
const SECONDS = intFlag('seconds', SMALL ? 2 : 6);
const WARMUP = intFlag('warmup', SMALL ? 1 : 2);
const HEAP_LIMITS = SMALL ? [] : (flag('heap-limits') ?? '192,256').split(',').filter(Boolean).map((v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--heap-limits: ${v} is not a size in MB`);
  return n;
});
const OUT = flag('out') ?? (SMALL ? undefined : join(import.meta.dirname, 'results', 'scale-latest.json'));
/** The small size: the first agents of the same cluster (the benchmarked one among them). */
const FEW = 10;
const EDITS = Math.min(100, AGENTS - FEW);
const CREATE_CONCURRENCY = 32;
const SERVER_CPU = 0;
const LOAD_CPU = 1;
const API = '/apis/komputer.komputer.ai/v1alpha1';

// Goals (issue 15), at full size only.
const READY_S = 30;
const RSS_MIB = 200;
const LATENCY_RATIO = 1.1;

// ---------------------------------------------------------------- the cluster

const md = metaOf;

/** Every object of a plural in the cluster, listed in pages. */
async function listAll(client: Client, plural: string): Promise<Json[]> {
  const out: Json[] = [];
  let token = '';
  do {
    const r = await client.request('GET', `${API}/${plural}?limit=500${token ? `&continue=${encodeURIComponent(token)}` : ''}`);
    if (r.status !== 200) throw new Error(`list ${plural}: HTTP ${r.status}: ${r.text.slice(0, 200)}`);
    const page = JSON.parse(r.text) as { items: Json[]; metadata?: { continue?: string } };
    out.push(...page.items);
    token = page.metadata?.continue ?? '';
  } while (token);
  return out;
}

interface Truth {
  /** What every connector's status must be (test/e2e/fixtures/cluster.ts's model, independent of src/). */
  expected: Map<string, string[]>;
  /** What is stored now. */
  stored: Map<string, readonly string[] | undefined>;
}

/** The counts every connector in the cluster must carry, from what the API server holds (so the harness's canary objects count too). */
async function truth(client: Client): Promise<Truth> {
  const [connectors, agents] = [await listAll(client, 'komputerconnectors'), await listAll(client, 'komputeragents')];
  const connectorModels: ConnectorModel[] = connectors.map((o) => {
    const shared = ((o.metadata as Json).annotations as Record<string, string> | undefined)?.[SHARED_WITH] ?? '';
    return { namespace: md(o).namespace, name: md(o).name, sharedWith: shared.split(',').map((x) => x.trim()).filter(Boolean) };
  });
  const agentModels: AgentModel[] = agents.map((o) => ({ namespace: md(o).namespace, name: md(o).name, connectors: (((o.spec as Json | undefined)?.connectors as string[] | undefined) ?? []).filter((c) => typeof c === 'string') }));
  const stored = new Map<string, readonly string[] | undefined>();
  for (const o of connectors) {
    const st = o.status as { attachedAgents?: number; agentNames?: string[] } | undefined;
    stored.set(`${md(o).namespace}/${md(o).name}`, st && typeof st.attachedAgents === 'number' ? (st.agentNames ?? []) : undefined);
  }
  return { expected: expectedStatuses(connectorModels, agentModels), stored };
}

/** Connectors whose stored status is not the expected one: what the controller must write. */
function changedCount(before: Map<string, readonly string[] | undefined>, expected: Map<string, string[]>): number {
  let n = 0;
  for (const [k, names] of expected) {
    const b = before.get(k);
    if (b === undefined || b.length !== names.length || b.some((x, i) => x !== names[i])) n++;
  }
  return n;
}

/** Creates the objects at CREATE_CONCURRENCY; returns objects per second. */
async function createAll(client: Client, items: readonly Json[], what: string): Promise<number> {
  return (await createObjects(client, items, what, { concurrency: CREATE_CONCURRENCY, say })).perSecond;
}

// ---------------------------------------------------------------- the service

interface Metrics {
  written: number;
  unchanged: number;
  reconciled: number;
  heapMiB: number | undefined;
  patched: number;
}

async function metrics(service: WebhookService): Promise<Metrics> {
  const text = await scrape(service.metricsPort);
  const reconciled = sampleSum(text, 'komputer_webhook_attachment_reconciles_total');
  const patched = sampleSum(text, 'komputer_webhook_admission_requests_total', { verdict: 'patched' });
  const heap = sample(text, 'komputer_webhook_nodejs_heap_size_used_bytes');
  return {
    written: sample(text, 'komputer_webhook_attachment_reconciles_total', { result: 'written' }) ?? 0,
    unchanged: sample(text, 'komputer_webhook_attachment_reconciles_total', { result: 'unchanged' }) ?? 0,
    reconciled,
    heapMiB: heap === undefined ? undefined : heap / 1048576,
    patched,
  };
}

function pid(service: WebhookService): number {
  const p = service.process?.pid;
  if (p === undefined) throw new Error('the service is not running');
  return p;
}

/** Pins the running service to the server core (wrk gets the other). */
/**
 * Waits until the service is quiet (under 5% of a core over 2 s, at most 60 s): after an
 * initial sync it is still digesting the watch echoes of its status writes, and a load run
 * started then measures both (seen: 503 against 275 µs CPU per request).
 */
async function quiesce(service: WebhookService): Promise<number> {
  const started = performance.now();
  for (;;) {
    const before = cpuMicros(pid(service));
    await new Promise((r) => setTimeout(r, 2_000));
    const used = cpuMicros(pid(service)) - before;
    if (used < 100_000 || performance.now() - started > 60_000) return (performance.now() - started) / 1000;
  }
}

function pinService(service: WebhookService): void {
  if (!PIN) return;
  const r = spawnSync('taskset', ['-a', '-cp', String(SERVER_CPU), String(pid(service))], { stdio: 'ignore' });
  if (r.status !== 0) say('note: could not pin the service to a core');
}

/** One admission over verified TLS: the patch must carry the benchmarked agent's 3 token refs and its config. */
function checkOnePatch(service: WebhookService, env: Environment, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port: service.port, path: '/mutate/pods', method: 'POST', ca: env.certs.caCert, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            const review = JSON.parse(text) as { response?: { uid?: string; allowed?: boolean; patch?: string } };
            const r = review.response;
            if (res.statusCode !== 200 || r?.uid !== BENCH_UID || r.allowed !== true || typeof r.patch !== 'string') throw new Error(`unexpected answer: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
            const patch = Buffer.from(r.patch, 'base64').toString('utf8');
            for (const name of ['CONNECTOR_GITHUB_TOKEN', 'CONNECTOR_NOTION_TOKEN', 'CONNECTOR_SLACK_TOKEN', 'KOMPUTER_MCP_SERVERS']) {
              if (!patch.includes(`"name":"${name}"`)) throw new Error(`the patch lacks ${name}: ${patch.slice(0, 400)}`);
            }
            resolve();
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface LoadRun {
  connections: number;
  requestsPerSecond: number;
  cpuMicrosPerRequest: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; mean: number; max: number };
}

async function load(service: WebhookService, bodyFile: string, connections: number): Promise<LoadRun> {
  await wrk({ port: service.port, connections, seconds: WARMUP, bodyFile, cpu: LOAD_CPU });
  const cpu0 = cpuMicros(pid(service));
  const run = await wrk({ port: service.port, connections, seconds: SECONDS, bodyFile, cpu: LOAD_CPU });
  const cpu1 = cpuMicros(pid(service));
  const w: WrkSummary = run.summary;
  const errors = Object.values(w.errors).reduce((a, b) => a + b, 0);
  if (errors > 0 || w.requests === 0) throw new Error(`wrk at ${connections} connections: ${w.requests} requests, errors ${JSON.stringify(w.errors)}`);
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    connections,
    requestsPerSecond: Math.round(w.requests / (w.duration_us / 1e6)),
    cpuMicrosPerRequest: Math.round((cpu1 - cpu0) / w.requests),
    latencyMs: { p50: ms(w.latency_us.p50), p90: ms(w.latency_us.p90), p99: ms(w.latency_us.p99), p999: ms(w.latency_us.p999), mean: ms(w.latency_us.mean), max: ms(w.latency_us.max) },
  };
}

interface SizeResult {
  agents: number;
  connectors: number;
  readySeconds: number;
  /** Start until every connector carries its true counts. */
  syncSeconds: number;
  statusWrites: number;
  /** Connectors whose stored status differed from the truth before the start. */
  changedConnectors: number;
  rssAfterSyncMiB: number;
  heapAfterSyncMiB: number | undefined;
  loads: LoadRun[];
  rssAfterLoadMiB: number;
  heapAfterLoadMiB: number | undefined;
}

const r1 = (n: number): number => Math.round(n * 10) / 10;

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const checks: string[] = [];
  const fail = (m: string): void => {
    checks.push(m);
    say(`CHECK FAILED: ${m}`);
  };
  const wrkVersion = ensureWrk(say);
  say(`${AGENTS} agents, ${CONNECTORS} connectors, ${NAMESPACES} namespaces; load ${WARMUP} s + ${SECONDS} s per run; Node ${process.version}, ${wrkVersion}, ${cpus().length} CPUs; loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const t0 = performance.now();
  const all = clusterObjects(AGENTS, CONNECTORS, NAMESPACES);
  const few = all.agents.slice(0, FEW);
  const rest = all.agents.slice(FEW);
  const reviewFile = join(mkdirTemp(), 'review.json');
  const reviewText = JSON.stringify(podReview());
  writeFileSync(reviewFile, reviewText);

  const env = await startEnvironment({ name: 'bench-scale', serviceEnv: { LOG_LEVEL: 'info' } });
  const client = apiClient(env, CREATE_CONCURRENCY);
  const clients = adminClients(env.kubeconfig);
  const main = env.service!;
  const port = main.port;
  // The webhook configurations point at the main service's port; the measured instances
  // take its place there, one at a time.
  await main.stop();
  const services: WebhookService[] = [];
  let serial = 0;
  const startService = async (extraEnv: NodeJS.ProcessEnv = {}, nodeFlags?: readonly string[]): Promise<{ service: WebhookService; readySeconds: number }> => {
    const service = await env.createService({ name: `scale-${++serial}`, port, serviceEnv: { LOG_LEVEL: 'info', ...extraEnv }, readyTimeoutMs: 180_000, ...(nodeFlags ? { nodeFlags } : {}) });
    services.push(service);
    const started = performance.now();
    await service.start();
    return { service, readySeconds: (performance.now() - started) / 1000 };
  };

  const result: Json = { when: new Date().toISOString(), small: SMALL, machine: { node: process.version, wrk: wrkVersion, cpus: cpus().length, cpuModel: cpus()[0]?.model, pinned: PIN, loadavgAtStart: loadavg() } };
  try {
    const createRate: Record<string, number> = {};
    createRate.namespaces = await createAll(client, all.namespaces, 'namespaces');
    createRate.connectors = await createAll(client, all.connectors, 'connectors');
    createRate.agents = await createAll(client, few, 'agents');

    const measureSize = async (agentObjects: readonly Json[]): Promise<SizeResult> => {
      const { expected, stored } = await truth(client);
      const changed = changedCount(stored, expected);
      say(`-- ${agentObjects.length} agents: starting the service`);
      const { service, readySeconds } = await startService();
      const syncStarted = performance.now() - readySeconds * 1000;
      await waitForCounts(clients, expected, { what: `counts at ${agentObjects.length} agents`, timeoutMs: 600_000 });
      const syncSeconds = (performance.now() - syncStarted) / 1000;
      const afterSync = await metrics(service);
      if (afterSync.written !== changed) fail(`${agentObjects.length} agents: ${afterSync.written} status writes at the initial sync, want ${changed} (the connectors whose counts changed)`);
      const rssAfterSyncMiB = rssMiB(pid(service));
      say(`ready in ${readySeconds.toFixed(1)} s, counts true after ${syncSeconds.toFixed(1)} s with ${afterSync.written} writes (${changed} changed); RSS ${rssAfterSyncMiB.toFixed(1)} MiB, heap ${afterSync.heapMiB?.toFixed(1)} MiB`);
      const quietAfter = await quiesce(service);
      if (quietAfter > 3) say(`  (quiet ${quietAfter.toFixed(1)} s after counts were true)`);
      pinService(service);
      await checkOnePatch(service, env, reviewText);
      const loads: LoadRun[] = [];
      for (const c of [1, 16]) {
        const l = await load(service, reviewFile, c);
        loads.push(l);
        say(`  c=${c}: ${l.requestsPerSecond} req/s, ${l.cpuMicrosPerRequest} µs CPU/req, p50 ${l.latencyMs.p50} p99 ${l.latencyMs.p99} p99.9 ${l.latencyMs.p999} ms`);
      }
      const afterLoad = await metrics(service);
      if (afterLoad.patched <= afterSync.patched) fail(`${agentObjects.length} agents: the load was not counted as patched admissions`);
      const rssAfterLoadMiB = rssMiB(pid(service));
      say(`  after load: RSS ${rssAfterLoadMiB.toFixed(1)} MiB, heap ${afterLoad.heapMiB?.toFixed(1)} MiB`);
      await service.stop();
      return {
        agents: agentObjects.length,
        connectors: CONNECTORS,
        readySeconds: r1(readySeconds),
        syncSeconds: r1(syncSeconds),
        statusWrites: afterSync.written,
        changedConnectors: changed,
        rssAfterSyncMiB: r1(rssAfterSyncMiB),
        heapAfterSyncMiB: afterSync.heapMiB === undefined ? undefined : r1(afterSync.heapMiB),
        loads,
        rssAfterLoadMiB: r1(rssAfterLoadMiB),
        heapAfterLoadMiB: afterLoad.heapMiB === undefined ? undefined : r1(afterLoad.heapMiB),
      };
    };

    const small = await measureSize(few);
    createRate.agents = await createAll(client, rest, 'agents');
    const large = await measureSize(all.agents);
    result.createPerSecond = Object.fromEntries(Object.entries(createRate).map(([k, v]) => [k, Math.round(v)]));
    result.sizes = [small, large];

    // ---- a full recompute: the same cluster, a fresh start; nothing may be written.
    say(`-- full recompute at ${AGENTS} agents: restarting the service`);
    const { service: again, readySeconds: recomputeReady } = await startService();
    const recomputeStarted = performance.now() - recomputeReady * 1000;
    const deadline = Date.now() + 300_000;
    let m = await metrics(again);
    while (m.reconciled < CONNECTORS && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      m = await metrics(again);
    }
    const recomputeSeconds = (performance.now() - recomputeStarted) / 1000;
    if (m.reconciled < CONNECTORS) fail(`full recompute: only ${m.reconciled} of ${CONNECTORS} connectors reconciled in 5 minutes`);
    if (m.written !== 0) fail(`full recompute: ${m.written} status writes, want 0 (no count changed)`);
    say(`ready in ${recomputeReady.toFixed(1)} s; every connector reconciled ${recomputeSeconds.toFixed(1)} s after start, ${m.written} writes`);

    // ---- edits: EDITS agents each swap one connector for another; only those change.
    const edited = all.agents.slice(FEW, FEW + EDITS).map((o) => {
      const spec = o.spec as Json;
      const here = all.connectors.filter((c) => md(c).namespace === md(o).namespace).map((c) => md(c).name);
      const used = new Set(spec.connectors as string[]);
      const swap = here.find((n) => !used.has(n));
      const next = [...(spec.connectors as string[]).slice(1), ...(swap ? [swap] : [])];
      return { ...o, spec: { ...spec, connectors: next } } as Json;
    });
    const before = (await truth(client)).stored;
    const writesBefore = (await metrics(again)).written;
    const editStarted = performance.now();
    await mapLimit(edited, 8, async (o) => {
      const r = await client.request('PATCH', `${collectionPath(o)}/${md(o).name}`, JSON.stringify({ spec: { connectors: (o.spec as Json).connectors } }), 'application/merge-patch+json');
      if (r.status !== 200) throw new Error(`edit ${md(o).namespace}/${md(o).name}: HTTP ${r.status}: ${r.text.slice(0, 200)}`);
    });
    const { expected: expectedAfterEdits } = await truth(client);
    const changedByEdits = changedCount(before, expectedAfterEdits);
    await waitForCounts(clients, expectedAfterEdits, { what: `counts after ${EDITS} agent edits`, timeoutMs: 120_000 });
    const editSeconds = (performance.now() - editStarted) / 1000;
    // Late duplicates would show here: give the controller a moment past convergence.
    await new Promise((r) => setTimeout(r, 2_000));
    const editWrites = (await metrics(again)).written - writesBefore;
    if (editWrites !== changedByEdits) fail(`${EDITS} agent edits: ${editWrites} status writes, want ${changedByEdits} (the connectors whose counts changed)`);
    say(`${EDITS} agent edits: counts true after ${editSeconds.toFixed(1)} s, ${editWrites} writes for ${changedByEdits} changed connectors`);
    await again.stop();
    result.controller = {
      initialSync: { agents: AGENTS, seconds: large.syncSeconds, writes: large.statusWrites, changedConnectors: large.changedConnectors },
      fullRecompute: { agents: AGENTS, readySeconds: r1(recomputeReady), seconds: r1(recomputeSeconds), writes: m.written, reconciled: m.reconciled },
      edits: { agents: EDITS, seconds: r1(editSeconds), writes: editWrites, changedConnectors: changedByEdits },
    };

    // ---- V8 settings: throughput at 16 connections against the shipped flags (SERVE_NODE_FLAGS,
    // which every run above used): V8's defaults, and each --max-old-space-size of --heap-limits.
    const variants: { label: string; nodeFlags: readonly string[]; maxOldSpaceSizeMB?: number }[] = [
      { label: 'V8 defaults (no flags)', nodeFlags: [] },
      ...HEAP_LIMITS.map((mb) => ({ label: `${SERVE_NODE_FLAGS.join(' ')} --max-old-space-size=${mb}`, nodeFlags: [...SERVE_NODE_FLAGS, `--max-old-space-size=${mb}`], maxOldSpaceSizeMB: mb })),
    ];
    const limits: Json[] = [];
    for (const v of SMALL ? [] : variants) {
      say(`-- ${v.label} at ${AGENTS} agents`);
      const { service, readySeconds } = await startService({}, v.nodeFlags);
      await waitForCounts(clients, (await truth(client)).expected, { what: `counts (${v.label})`, timeoutMs: 300_000 });
      const rssSync = rssMiB(pid(service));
      await quiesce(service);
      pinService(service);
      const l = await load(service, reviewFile, 16);
      const rss = rssMiB(pid(service));
      const shipped = large.loads.find((x) => x.connections === 16)!;
      const ratio = Math.round((l.requestsPerSecond / shipped.requestsPerSecond) * 1000) / 1000;
      limits.push({ label: v.label, nodeFlags: v.nodeFlags, maxOldSpaceSizeMB: v.maxOldSpaceSizeMB, readySeconds: r1(readySeconds), load: l, rssAfterSyncMiB: r1(rssSync), rssAfterLoadMiB: r1(rss), throughputVsShipped: ratio });
      say(`  c=16: ${l.requestsPerSecond} req/s (${ratio} x the shipped flags), ${l.cpuMicrosPerRequest} µs CPU/req, p99 ${l.latencyMs.p99} ms; RSS ${rssSync.toFixed(1)} MiB after sync, ${rss.toFixed(1)} after load`);
      await service.stop();
    }
    result.heapLimits = limits;

    // ---- goals (full size only: the small run checks correctness).
    const goals: Json[] = [];
    if (!SMALL) {
      const goal = (id: string, value: number, target: number, dir: 'max' | 'min', unit: string): void => {
        const met = dir === 'max' ? value <= target : value >= target;
        goals.push({ id, value, target, met, unit });
        say(`goal ${met ? 'met   ' : 'MISSED'} ${id}: ${value} ${unit} (${dir === 'max' ? '<=' : '>='} ${target})`);
      };
      goal('ready at 100k agents', large.readySeconds, READY_S, 'max', 's');
      goal('RSS after sync at 100k agents', large.rssAfterSyncMiB, RSS_MIB, 'max', 'MiB');
      goal('RSS after load at 100k agents', large.rssAfterLoadMiB, RSS_MIB, 'max', 'MiB');
      for (const c of [1, 16]) {
        const a = small.loads.find((x) => x.connections === c)!;
        const b = large.loads.find((x) => x.connections === c)!;
        goal(`p50 latency 100k / 10 agents, c=${c}`, Math.round((b.latencyMs.p50 / a.latencyMs.p50) * 1000) / 1000, LATENCY_RATIO, 'max', 'x');
      }
    }
    result.goals = goals;
    result.checksFailed = checks;
    result.seconds = Math.round((performance.now() - t0) / 1000);
    const text = JSON.stringify(result, null, 2) + '\n';
    if (OUT) {
      mkdirSync(dirname(OUT), { recursive: true });
      writeFileSync(OUT, text);
      if (!SMALL && flag('out') === undefined) writeMarkdown(result, small, large);
      say(`wrote ${OUT}`);
    }
    say(`done in ${result.seconds} s: ${checks.length === 0 ? 'every check passed' : `${checks.length} check(s) failed`}${SMALL ? '' : `, ${goals.filter((g) => !g.met).length} goal(s) missed`}`);
    if (checks.length > 0 || goals.some((g) => !g.met)) process.exitCode = 1;
  } finally {
    client.close();
    for (const s of services) await s.stop().catch(() => undefined);
    await stopEnvironment();
  }
}

function mkdirTemp(): string {
  const dir = join(tmpdir(), `bench-scale-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}


function writeMarkdown(result: Json, small: SizeResult, large: SizeResult): void {
  const row = (s: SizeResult, c: number): string => {
    const l = s.loads.find((x) => x.connections === c)!;
    return `| ${s.agents.toLocaleString('en-US')} | ${c} | ${l.requestsPerSecond} | ${l.cpuMicrosPerRequest} | ${l.latencyMs.p50} | ${l.latencyMs.p99} | ${l.latencyMs.p999} |`;
  };
  const ctl = result.controller as { initialSync: Json; fullRecompute: Json; edits: Json };
  const lines = [
    `## At scale, from a real API server (\`npm run bench:scale\`)`,
    '',
    `Run ${String(result.when)}: kube-apiserver + etcd (the e2e control plane), ${large.connectors.toLocaleString('en-US')} connectors in ${NAMESPACES} namespaces; the service lists them in pages of 500 and watches. Load: wrk over HTTPS on loopback, ${WARMUP} s warm-up + ${SECONDS} s, ${PIN ? 'service pinned to CPU 0, wrk to CPU 1' : 'unpinned'}.`,
    '',
    '| agents | ready (s) | counts true after (s) | status writes (connectors changed) | RSS after sync (MiB) | heap after sync (MiB) | RSS after load (MiB) | heap after load (MiB) |',
    '|---|---|---|---|---|---|---|---|',
    ...[small, large].map((s) => `| ${s.agents.toLocaleString('en-US')} | ${s.readySeconds} | ${s.syncSeconds} | ${s.statusWrites} (${s.changedConnectors}) | ${s.rssAfterSyncMiB} | ${s.heapAfterSyncMiB ?? '-'} | ${s.rssAfterLoadMiB} | ${s.heapAfterLoadMiB ?? '-'} |`),
    '',
    '| agents | connections | req/s | CPU µs/req | p50 ms | p99 ms | p99.9 ms |',
    '|---|---|---|---|---|---|---|',
    row(small, 1),
    row(large, 1),
    row(small, 16),
    row(large, 16),
    '',
    `Controller at ${large.agents.toLocaleString('en-US')} agents: initial sync ${String(ctl.initialSync.seconds)} s with ${String(ctl.initialSync.writes)} writes (${String(ctl.initialSync.changedConnectors)} connectors changed); full recompute on restart ${String(ctl.fullRecompute.seconds)} s after start, ${String(ctl.fullRecompute.writes)} writes; ${String(ctl.edits.agents)} agent edits: ${String(ctl.edits.writes)} writes for ${String(ctl.edits.changedConnectors)} changed connectors, counts true after ${String(ctl.edits.seconds)} s.`,
    '',
    ...((result.heapLimits as Json[]).length > 0
      ? [
          `V8 settings at ${large.agents.toLocaleString('en-US')} agents, 16 connections, against the shipped flags (\`${SERVE_NODE_FLAGS.join(' ')}\`: ${large.loads.find((x) => x.connections === 16)!.requestsPerSecond} req/s, RSS ${large.rssAfterSyncMiB} MiB after sync):`,
          '',
          '| node flags | req/s c=16 | vs shipped | p99 ms | RSS after sync (MiB) | RSS after load (MiB) |',
          '|---|---|---|---|---|---|',
          ...(result.heapLimits as { label: string; load: LoadRun; throughputVsShipped: number; rssAfterSyncMiB: number; rssAfterLoadMiB: number }[]).map((h) => `| ${h.label} | ${h.load.requestsPerSecond} | ${h.throughputVsShipped}x | ${h.load.latencyMs.p99} | ${h.rssAfterSyncMiB} | ${h.rssAfterLoadMiB} |`),
          '',
        ]
      : []),
    ...(result.goals as { id: string; value: number; target: number; met: boolean; unit: string }[]).map((g) => `- ${g.met ? 'met' : '**missed**'}: ${g.id}: ${g.value} ${g.unit} (target ${g.target})`),
  ];
  writeSection('scale', lines.join('\n'));
}

await main();
