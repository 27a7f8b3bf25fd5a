// `npm run bench:podcreate`: what a pod create costs the user, through a real API server.
//
// Starts the e2e control plane (kube-apiserver + etcd) and the service (LOG_LEVEL=info, as
// in production), then creates the benchmarked agent pod (bench/fixtures.ts, ~8 KB) N times
// at a fixed concurrency in an enabled namespace (the API server calls the webhook, the pod
// is stored patched) and N times in a namespace that is not enabled (the namespaceSelector
// skips the webhook), alternating in rounds (A B B A A B B A ...) so drift cancels. Each
// create is timed from the request being written to the whole response being read, over one
// keep-alive HTTPS client. Pods never run (no nodes): they are only stored, and deleted
// after each round so etcd holds about the same either way.
//
//   --pods N         pods per side (default 2000)
//   --concurrency C  creates in flight (default 16)
//   --rounds R       rounds per side (default 4; N/R pods each)
//   --warmup W       unmeasured creates per side first (default 200)
//
// Writes bench/results/podcreate-latest.json (podcreate-c<C>-latest.json at another
// concurrency) and its section of bench/results/latest.md (one per concurrency).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { startEnvironment, stopEnvironment, type Environment } from '../test/e2e/harness/index.ts';
import { BENCH_AGENT, BENCH_CONNECTORS, podTemplate } from './fixtures.ts';
import { cpuMicros } from './proc.ts';
import { apiClient, httpGetText } from './api.ts';
import { writeSection } from './report.ts';
import { histogram, sampleSum, type PromHistogram as Histogram } from '../test/helpers/prometheus.ts';

const RESULTS = join(import.meta.dirname, 'results');
const API = 'komputer.komputer.ai/v1alpha1';
const ON = 'bench-pods-on';
const OFF = 'bench-pods-off';
const INJECTED = '"komputer.ai/injected-connectors":"github,notion,slack"';
const WEBHOOK = 'pods.connectors.komputer.ai';

type Side = 'with' | 'without';
type Json = { [key: string]: unknown };

const say = (m: string): void => void process.stdout.write(`[bench:podcreate] ${m}\n`);

function flag(name: string, fallback: number): number {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(`--${name}`);
  const eq = argv.find((a) => a.startsWith(`--${name}=`));
  const raw = eq !== undefined ? eq.slice(name.length + 3) : i >= 0 ? argv[i + 1] : undefined;
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer, got ${raw}`);
  return v;
}

const PODS = flag('pods', 2000);
const CONCURRENCY = Math.max(1, flag('concurrency', 16));
const ROUNDS = Math.max(1, flag('rounds', 4));
const WARMUP = flag('warmup', 200);
const DEFAULT_CONCURRENCY = 16;

// ---------------------------------------------------------------- connections to the webhook

/**
 * TCP connections to the webhook's port (the API server's side of them), from /proc/net/tcp:
 * sampled during the rounds, the distinct ones show whether the API server reuses its
 * connections to the webhook (keep-alive) or opens one per call.
 */
class ConnectionSampler {
  readonly seen = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly port: number;
  constructor(port: number) {
    this.port = port;
  }

  sample(): void {
    const hex = this.port.toString(16).toUpperCase().padStart(4, '0');
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        // local_address rem_address st: the client end has the webhook's port as remote.
        if (f.length < 4 || !f[2]!.endsWith(`:${hex}`) || f[3] === '0A') continue;
        this.seen.add(f[1]!);
      }
    }
  }

  start(): void {
    this.sample();
    this.timer ??= setInterval(() => this.sample(), 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }
}

// ---------------------------------------------------------------- metrics

function total(text: string, name: string, labels: Record<string, string> = {}): number {
  return sampleSum(text, name, labels);
}

function minus(a: Histogram, b: Histogram): Histogram {
  const before = new Map(b.buckets);
  return { count: a.count - b.count, sum: a.sum - b.sum, buckets: a.buckets.map(([le, v]) => [le, v - (before.get(le) ?? 0)]) };
}

/** A quantile from cumulative buckets, interpolated linearly within its bucket (as Prometheus' histogram_quantile). */
function bucketQuantile(h: Histogram, q: number): number | undefined {
  if (h.count <= 0) return undefined;
  const rank = q * h.count;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, c] of h.buckets) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1e-12, c - prevCount);
    }
    prevLe = le;
    prevCount = c;
  }
  return prevLe;
}

// ---------------------------------------------------------------- the run

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface Stats {
  pods: number;
  seconds: number;
  podsPerSecond: number;
  ms: { mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
}

function stats(latencies: number[], seconds: number): Stats {
  const s = [...latencies].sort((a, b) => a - b);
  const r = (v: number): number => Math.round(v * 1000) / 1000;
  return {
    pods: s.length,
    seconds: r(seconds),
    podsPerSecond: Math.round((s.length / seconds) * 10) / 10,
    ms: { mean: r(s.reduce((a, b) => a + b, 0) / s.length), p50: r(percentile(s, 0.5)), p90: r(percentile(s, 0.9)), p99: r(percentile(s, 0.99)), p999: r(percentile(s, 0.999)), max: r(s[s.length - 1]!) },
  };
}

interface Cpu {
  apiserver: number;
  etcd: number;
  webhook: number;
  client: number;
}

function cpuNow(env: Environment): Cpu {
  const u = process.cpuUsage();
  return {
    apiserver: cpuMicros(env.controlPlane.apiserver.pid),
    etcd: cpuMicros(env.controlPlane.etcd.pid),
    webhook: cpuMicros(env.service!.process!.pid),
    client: u.user + u.system,
  };
}

interface RoundResult {
  side: Side;
  round: number;
  latencies: number[];
  seconds: number;
  cpu: Cpu;
  /** Server-side time of the creates (apiserver_request_duration_seconds, POST pods), sum in seconds, and count. */
  serverSum: number;
  serverCount: number;
  /** Admissions the webhook counted during the round. */
  webhookCalls: number;
}


async function main(): Promise<void> {
  if (!process.version.startsWith('v24.')) say(`warning: running on Node ${process.version}; the project pins Node 24 (run via npm run bench:podcreate)`);
  if (PODS < ROUNDS) throw new Error(`--pods (${PODS}) must be at least --rounds (${ROUNDS})`);
  const t0 = performance.now();
  say(`${PODS} pods per side at concurrency ${CONCURRENCY}, ${ROUNDS} rounds per side (${Math.floor(PODS / ROUNDS)} pods each), ${WARMUP} warm-up creates per side; loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const env = await startEnvironment({ name: 'bench-podcreate', serviceEnv: { LOG_LEVEL: 'info' } });
  const client = apiClient(env, CONCURRENCY);
  try {
    const service = env.service!;
    // ---- the cluster: the same objects in both namespaces, only ON is enabled.
    await env.apply({ apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'komputer-agents' }, value: 1000, globalDefault: false, description: 'agent pods (bench)' });
    for (const [ns, enabled] of [[ON, true], [OFF, false]] as const) {
      await env.createNamespace(ns, { enabled });
      await env.apply([
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: `${BENCH_AGENT}-agent`, namespace: ns } },
        ...BENCH_CONNECTORS.map((c) => ({
          apiVersion: API,
          kind: 'KomputerConnector',
          metadata: { name: c.name, namespace: ns },
          spec: { type: 'remote', service: c.service, url: c.url, authType: c.authType, authSecretKeyRef: { name: c.secret.name, key: c.secret.key } },
        })),
        { apiVersion: API, kind: 'KomputerAgent', metadata: { name: BENCH_AGENT, namespace: ns }, spec: { instructions: 'bench agent: never runs', connectors: BENCH_CONNECTORS.map((c) => c.name) } },
      ]);
    }
    const templates = { with: podTemplate(ON), without: podTemplate(OFF) };
    const nsOf = (side: Side): string => (side === 'with' ? ON : OFF);
    const podPath = (side: Side): string => `/api/v1/namespaces/${nsOf(side)}/pods`;
    const body = (side: Side, name: string): string => templates[side].before + name + templates[side].after;

    // One create; checks the API server stored it, patched exactly when the webhook is on.
    const create = async (side: Side, name: string, dryRun = false): Promise<number> => {
      const r = await client.request('POST', podPath(side) + (dryRun ? '?dryRun=All' : ''), body(side, name));
      if (r.status !== 201) throw new Error(`create ${nsOf(side)}/${name}: HTTP ${r.status}: ${r.text.slice(0, 500)}`);
      const injected = r.text.includes(INJECTED);
      if (injected !== (side === 'with')) throw new Error(`create ${nsOf(side)}/${name}: the stored pod is ${injected ? '' : 'not '}injected, expected ${side === 'with' ? 'injected' : 'untouched'}`);
      return r.ms;
    };

    // ---- wait until the webhook's cache has the agent (a dry run shows the injection).
    const readyBy = Date.now() + 60_000;
    for (;;) {
      try {
        await create('with', 'dry-run-probe', true);
        break;
      } catch (error) {
        if (Date.now() > readyBy) throw error;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await create('without', 'dry-run-probe', true);
    say('the webhook injects in the enabled namespace, and is skipped in the other (dry runs)');

    const deleteAll = async (side: Side): Promise<void> => {
      const r = await client.request('DELETE', podPath(side));
      if (r.status !== 200) throw new Error(`deletecollection in ${nsOf(side)}: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
      const by = Date.now() + 60_000;
      for (;;) {
        const l = await client.request('GET', `${podPath(side)}?limit=1`);
        const items = (JSON.parse(l.text) as { items?: unknown[] }).items ?? [];
        if (items.length === 0) return;
        if (Date.now() > by) throw new Error(`pods in ${nsOf(side)} not deleted after 60 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    const apiMetrics = async (): Promise<string> => (await client.request('GET', '/metrics')).text;
    const webhookMetrics = (): Promise<string> => httpGetText(service.metricsPort, '/metrics');
    const calls = (text: string): number => total(text, 'komputer_webhook_admission_requests_total', { path: '/mutate/pods' });
    const createLabels = { resource: 'pods', verb: 'POST', subresource: '', dry_run: '' };

    /** n creates at CONCURRENCY in flight; latencies in ms. */
    const burst = async (side: Side, tag: string, n: number): Promise<{ latencies: number[]; seconds: number }> => {
      const latencies: number[] = new Array<number>(n);
      let next = 0;
      const started = performance.now();
      const worker = async (): Promise<void> => {
        while (next < n) {
          const i = next++;
          latencies[i] = await create(side, `${BENCH_AGENT}-${tag}-${i}`);
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, n) }, worker));
      return { latencies, seconds: (performance.now() - started) / 1000 };
    };

    // ---- warm-up (both sides), unmeasured.
    if (WARMUP > 0) {
      for (const side of ['with', 'without'] as const) {
        await burst(side, 'warm', WARMUP);
        await deleteAll(side);
      }
      say(`warm-up: ${WARMUP} creates per side`);
    }

    // ---- measured rounds: A B B A A B B A ... (each pair swaps which side goes first).
    const order: Side[] = [];
    for (let k = 0; k < ROUNDS; k++) order.push(...((k % 2 === 0 ? ['with', 'without'] : ['without', 'with']) as Side[]));
    const perRound = Array.from({ length: ROUNDS }, (_, k) => Math.floor(PODS / ROUNDS) + (k < PODS % ROUNDS ? 1 : 0));
    const roundOf: Record<Side, number> = { with: 0, without: 0 };
    const rounds: RoundResult[] = [];
    const connections = new ConnectionSampler(service.port);
    const apiBefore = await apiMetrics();
    const whBefore = await webhookMetrics();
    for (const side of order) {
      const k = roundOf[side]++;
      const api0 = await apiMetrics();
      const wh0 = calls(await webhookMetrics());
      const cpu0 = cpuNow(env);
      if (side === 'with') connections.start();
      const { latencies, seconds } = await burst(side, `r${k}`, perRound[k]!);
      connections.stop();
      const cpu1 = cpuNow(env);
      const api1 = await apiMetrics();
      const wh1 = calls(await webhookMetrics());
      const round: RoundResult = {
        side,
        round: k,
        latencies,
        seconds,
        cpu: { apiserver: cpu1.apiserver - cpu0.apiserver, etcd: cpu1.etcd - cpu0.etcd, webhook: cpu1.webhook - cpu0.webhook, client: cpu1.client - cpu0.client },
        serverSum: total(api1, 'apiserver_request_duration_seconds_sum', createLabels) - total(api0, 'apiserver_request_duration_seconds_sum', createLabels),
        serverCount: total(api1, 'apiserver_request_duration_seconds_count', createLabels) - total(api0, 'apiserver_request_duration_seconds_count', createLabels),
        webhookCalls: wh1 - wh0,
      };
      rounds.push(round);
      const st = stats(latencies, seconds);
      say(`round ${rounds.length}/${order.length} ${side.padEnd(7)} webhook: ${st.pods} pods in ${st.seconds.toFixed(1)} s (${st.podsPerSecond}/s), p50 ${st.ms.p50.toFixed(2)} ms, p99 ${st.ms.p99.toFixed(2)} ms; webhook called ${round.webhookCalls}x`);
      // The selector really skips the webhook without it, and it is called once per create with it.
      if (side === 'without' && round.webhookCalls !== 0) throw new Error(`the webhook was called ${round.webhookCalls} times for pods in ${OFF}, which is not enabled`);
      if (side === 'with' && round.webhookCalls < st.pods) throw new Error(`the webhook counted ${round.webhookCalls} admissions for ${st.pods} creates in ${ON}`);
      await deleteAll(side);
      await new Promise((r) => setTimeout(r, 300));
    }
    const apiAfter = await apiMetrics();
    const whAfter = await webhookMetrics();

    // ---- figures
    const side = (s: Side): { stats: Stats; cpuMsPerPod: Record<keyof Cpu | 'total', number>; serverMeanMs: number } => {
      const rs = rounds.filter((r) => r.side === s);
      const lat = rs.flatMap((r) => r.latencies);
      const seconds = rs.reduce((a, r) => a + r.seconds, 0);
      const cpu = (k: keyof Cpu): number => Math.round((rs.reduce((a, r) => a + r.cpu[k], 0) / lat.length / 1000) * 1000) / 1000;
      const perPod = { apiserver: cpu('apiserver'), etcd: cpu('etcd'), webhook: cpu('webhook'), client: cpu('client') };
      const serverCount = rs.reduce((a, r) => a + r.serverCount, 0);
      return {
        stats: stats(lat, seconds),
        cpuMsPerPod: { ...perPod, total: Math.round((perPod.apiserver + perPod.etcd + perPod.webhook + perPod.client) * 1000) / 1000 },
        serverMeanMs: serverCount > 0 ? Math.round((rounds.filter((r) => r.side === s).reduce((a, r) => a + r.serverSum, 0) / serverCount) * 1e6) / 1000 : NaN,
      };
    };
    const withW = side('with');
    const without = side('without');
    const added = {
      p50Ms: Math.round((withW.stats.ms.p50 - without.stats.ms.p50) * 1000) / 1000,
      p90Ms: Math.round((withW.stats.ms.p90 - without.stats.ms.p90) * 1000) / 1000,
      p99Ms: Math.round((withW.stats.ms.p99 - without.stats.ms.p99) * 1000) / 1000,
      meanMs: Math.round((withW.stats.ms.mean - without.stats.ms.mean) * 1000) / 1000,
      throughputRatio: Math.round((withW.stats.podsPerSecond / without.stats.podsPerSecond) * 1000) / 1000,
    };
    const own = minus(histogram(whAfter, 'komputer_webhook_admission_duration_seconds', { path: '/mutate/pods' }), histogram(whBefore, 'komputer_webhook_admission_duration_seconds', { path: '/mutate/pods' }));
    const called = minus(
      histogram(apiAfter, 'apiserver_admission_webhook_admission_duration_seconds', { name: WEBHOOK, operation: 'CREATE', type: 'admit' }),
      histogram(apiBefore, 'apiserver_admission_webhook_admission_duration_seconds', { name: WEBHOOK, operation: 'CREATE', type: 'admit' }),
    );
    const ms = (s: number | undefined): number | undefined => (s === undefined ? undefined : Math.round(s * 1e6) / 1000);
    const webhookOwn = { count: own.count, meanMs: ms(own.count > 0 ? own.sum / own.count : undefined), p50Ms: ms(bucketQuantile(own, 0.5)), p99Ms: ms(bucketQuantile(own, 0.99)) };
    const apiserverCall = { count: called.count, meanMs: ms(called.count > 0 ? called.sum / called.count : undefined) };
    const eventsWritten = total(whAfter, 'komputer_webhook_events_written_total') - total(whBefore, 'komputer_webhook_events_written_total');
    const webhookConnections = connections.seen.size;
    const coresBusy = {
      with: Math.round(((withW.cpuMsPerPod.total * withW.stats.podsPerSecond) / 1000) * 100) / 100,
      without: Math.round(((without.cpuMsPerPod.total * without.stats.podsPerSecond) / 1000) * 100) / 100,
    };

    // ---- report
    const f = (v: number | undefined, d = 2): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
    const tableOf = (head: string[], rows: string[][]): string => {
      const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
      const line = (cells: string[]): string => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' | ') + ' |';
      return [line(head), '|' + w.map((n, i) => (i === 0 ? '-'.repeat(n + 2) : '-'.repeat(n + 1) + ':')).join('|') + '|', ...rows.map(line)].join('\n');
    };
    const row = (label: string, s: ReturnType<typeof side>): string[] => [label, f(s.stats.pods, 0), f(s.stats.ms.p50), f(s.stats.ms.p90), f(s.stats.ms.p99), f(s.stats.ms.p999), f(s.stats.ms.mean), f(s.stats.podsPerSecond, 0), f(s.serverMeanMs)];
    const latencyTable = tableOf(
      ['pod create', 'pods', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'mean ms', 'pods/s', 'API server mean ms'],
      [
        row(`with the webhook (${ON})`, withW),
        row(`without (${OFF}, not enabled)`, without),
        ['added by the webhook', '', f(added.p50Ms), f(added.p90Ms), f(added.p99Ms), f(withW.stats.ms.p999 - without.stats.ms.p999), f(added.meanMs), `${f(added.throughputRatio)}x`, f(withW.serverMeanMs - without.serverMeanMs)],
      ],
    );
    const cpuRow = (label: string, c: Record<string, number>): string[] => [label, f(c.apiserver, 3), f(c.etcd, 3), f(c.webhook, 3), f(c.client, 3), f(c.total, 3)];
    const cpuTable = tableOf(
      ['CPU ms per create', 'kube-apiserver', 'etcd', 'webhook', 'client', 'total'],
      [
        cpuRow('with the webhook', withW.cpuMsPerPod),
        cpuRow('without', without.cpuMsPerPod),
        cpuRow('added', Object.fromEntries(Object.keys(withW.cpuMsPerPod).map((k) => [k, withW.cpuMsPerPod[k as keyof Cpu | 'total'] - without.cpuMsPerPod[k as keyof Cpu | 'total']]))),
      ],
    );
    const when = new Date();
    const header =
      `Run ${when.toISOString()} — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'} shared by kube-apiserver, etcd, the service and the client (unpinned); ` +
      `${PODS} creates per side of the ${Buffer.byteLength(templates.with.before + templates.with.after)}-byte agent pod (bench/fixtures.ts), ${CONCURRENCY} in flight over one keep-alive HTTPS client as admin, ` +
      `${ROUNDS} rounds per side alternated ${order.map((s) => (s === 'with' ? 'A' : 'B')).join('')} (A = with), pods deleted after each round, ${WARMUP} warm-up creates per side first. The service runs with LOG_LEVEL=info.`;
    const context =
      `The webhook's own admission time (its \`komputer_webhook_admission_duration_seconds\`, body read to response written): ${f(webhookOwn.count, 0)} admissions, mean ${f(webhookOwn.meanMs, 3)} ms, ` +
      `p50 ≈ ${f(webhookOwn.p50Ms, 3)} ms, p99 ≈ ${f(webhookOwn.p99Ms, 3)} ms (interpolated in its buckets). ` +
      `The API server's view of the call (\`apiserver_admission_webhook_admission_duration_seconds\`, ${WEBHOOK}: request to the webhook sent, response decoded): ${f(apiserverCall.count, 0)} calls, mean ${f(apiserverCall.meanMs, 3)} ms. ` +
      `TCP connections from the API server to the webhook seen during the rounds (sampled every second): ${webhookConnections} for ${f(own.count, 0)} calls. ` +
      `Cores busy during the rounds (CPU per create × pods/s, of ${cpus().length}): ${f(coresBusy.with)} with the webhook, ${f(coresBusy.without)} without` +
      `${Math.max(coresBusy.with, coresBusy.without) > cpus().length * 0.85 ? ': the machine is CPU-bound, so latency here is mostly queueing for CPU (concurrency / throughput)' : ''}. ` +
      `"API server mean" is \`apiserver_request_duration_seconds\` for the creates (server side, without the client's TLS and queueing). Events written by the service meanwhile: ${eventsWritten}.`;
    const markdown = [
      `## What a pod create costs (\`npm run bench:podcreate\`${CONCURRENCY === DEFAULT_CONCURRENCY ? '' : `, --concurrency ${CONCURRENCY}`})`,
      '',
      header,
      '',
      latencyTable,
      '',
      cpuTable,
      '',
      context,
      '',
    ].join('\n');
    process.stdout.write('\n' + markdown + '\n');

    const output = {
      timestamp: when.toISOString(),
      machine: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, loadavgAtStart: loadavg() },
      settings: { pods: PODS, concurrency: CONCURRENCY, rounds: ROUNDS, warmup: WARMUP, order, podBytes: Buffer.byteLength(templates.with.before + templates.with.after), namespaces: { with: ON, without: OFF }, serviceLogLevel: 'info' },
      with: withW,
      without,
      added,
      webhookOwnAdmission: webhookOwn,
      apiserverWebhookCall: apiserverCall,
      eventsWritten,
      webhookConnections,
      coresBusy,
      rounds: rounds.map((r) => ({ side: r.side, round: r.round, webhookCalls: r.webhookCalls, ...stats(r.latencies, r.seconds), cpuMsPerPod: Object.fromEntries(Object.entries(r.cpu).map(([k, v]) => [k, Math.round((v / r.latencies.length) * 1000) / 1e6])) })),
      markdown,
    };
    mkdirSync(RESULTS, { recursive: true });
    const jsonName = CONCURRENCY === DEFAULT_CONCURRENCY ? 'podcreate-latest.json' : `podcreate-c${CONCURRENCY}-latest.json`;
    writeFileSync(join(RESULTS, jsonName), JSON.stringify(output, null, 2) + '\n');
    writeSection(`podcreate c=${CONCURRENCY}`, markdown);
    say(`results: bench/results/${jsonName} and its section of bench/results/latest.md; took ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  } finally {
    client.close();
    await stopEnvironment();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`\nbench:podcreate failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    void stopEnvironment().finally(() => process.exit(1));
  },
);
