// Memory under a real cgroup limit (issue 24, item 5): at the size the chart's defaults claim
// (README "Sizing"), the replicas, at the chart's defaults, start on a cluster created in the
// real API server while they were scaled to 0 (bench/cluster-objects.ts, as bench:scale
// does), sync it (every connector's status to write) and take admission load: agent pod creates
// through the API server (dry runs: the webhook is called through its Service, nothing is
// stored or started) and AdmissionReviews posted straight to the Service by wrk. Each
// replica's working set comes from its container's cgroup (usage - inactive file pages, as
// the kubelet counts it), its restarts and last termination reason from the pod: no OOMKill
// may happen at the defaults.
//
// Then a limit below the measured use: first as a `helm upgrade` (the new pod is OOM-killed
// during its first sync; the rollout, maxUnavailable 0, stalls while the old replicas keep
// serving), then as an install at that limit (every replica OOM-killed: agent pods refused,
// the API server's message quoted), then the limit raised back: the time until an agent pod
// is injected again and until 2 replicas are Ready. The cluster is left as found: the
// objects deleted, the chart at its defaults with 2 Ready replicas.

import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiClient, type Client } from '../api.ts';
import { clusterObjects, createObjects } from '../cluster-objects.ts';
import { BENCH_AGENT, BENCH_NAMESPACE, podReview, podTemplate } from '../fixtures.ts';
import { ensureWrk, wrk } from '../load.ts';
import { sampleValue } from '../../test/helpers/prometheus.ts';
import { RELEASE, RELEASE_NAMESPACE } from '../../test/e2e/fixtures/helm.ts';
import type { Environment } from '../../test/e2e/harness/index.ts';
import { statusMessage } from './measure.ts';
import { mib, replicaMemory, replicaMetrics, replicaPods, restoreDefaults, scaleReplicas, SERVICE_NAME, twoReady, type ReplicaPod } from './replicas.ts';
import type { NodeFigure, NodeScenario, NodeScenarioContext, NodeScenarioResult } from './scenario.ts';

const SIZES = {
  test: { namespaces: 10, connectors: 200, agents: 2_000, loadSeconds: 8, createBudgetSeconds: 120, syncTimeoutSeconds: 120 },
  // The size README "Sizing" claims for the defaults; agents stop at the time budget.
  bench: { namespaces: 100, connectors: 10_000, agents: 100_000, loadSeconds: 40, createBudgetSeconds: 420, syncTimeoutSeconds: 600 },
} as const;
const CREATE_CONCURRENCY = 32;
const LOAD_CONCURRENCY = 8;
const WRK_CONNECTIONS = 16;
const INJECTED = '"komputer.ai/injected-connectors":"github,notion,slack"';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Max working set and anonymous memory per replica pod, sampled every second in the background. */
class MemorySampler {
  readonly peaks = new Map<string, { workingSet: number; anon: number }>();
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly env: Environment;
  constructor(env: Environment) {
    this.env = env;
  }

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        await this.sample();
        await sleep(1000);
      }
    })();
  }

  async sample(): Promise<void> {
    for (const pod of await replicaPods(this.env).catch(() => [] as ReplicaPod[])) {
      const m = replicaMemory(pod);
      if (m === undefined) continue;
      const p = this.peaks.get(pod.name) ?? { workingSet: 0, anon: 0 };
      this.peaks.set(pod.name, { workingSet: Math.max(p.workingSet, m.workingSetBytes), anon: Math.max(p.anon, m.anonBytes) });
    }
  }

  async stop(): Promise<Map<string, { workingSet: number; anon: number }>> {
    this.running = false;
    await this.loop;
    await this.sample();
    return new Map(this.peaks);
  }
}

/** One agent pod create through the API server (a dry run): injected, refused (with the message), or something else. */
async function createAgentPod(client: Client, template: { before: string; after: string }, name: string): Promise<{ ok: true } | { ok: false; status: number; message: string }> {
  const r = await client.request('POST', `/api/v1/namespaces/${BENCH_NAMESPACE}/pods?dryRun=All`, template.before + name + template.after);
  if (r.status === 201 && r.text.includes(INJECTED)) return { ok: true };
  if (r.status === 201) return { ok: false, status: 201, message: 'stored without the injection' };
  return { ok: false, status: r.status, message: statusMessage(r.text) };
}

/** Creates agent pods one after another (every `gapMs`) until stopped: what an operator retrying sees. */
class Trickle {
  ok = 0;
  refused = 0;
  firstRefusalAt: number | undefined;
  lastOkAt: number | undefined;
  readonly messages = new Map<string, number>();
  private running = false;
  private loop: Promise<void> | undefined;
  private n = 0;
  private readonly client: Client;
  private readonly template: { before: string; after: string };
  private readonly gapMs: number;
  constructor(client: Client, template: { before: string; after: string }, gapMs = 250) {
    this.client = client;
    this.template = template;
    this.gapMs = gapMs;
  }

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const r = await createAgentPod(this.client, this.template, `trickle-${this.n++}`).catch((e: unknown) => ({ ok: false as const, status: 0, message: e instanceof Error ? e.message : String(e) }));
        if (r.ok) {
          this.ok++;
          this.lastOkAt = Date.now();
        } else {
          this.refused++;
          this.firstRefusalAt ??= Date.now();
          const key = r.message.replace(/trickle-\d+/g, 'trickle-N');
          this.messages.set(key, (this.messages.get(key) ?? 0) + 1);
        }
        await sleep(this.gapMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** The most frequent refusal message. */
  topMessage(): string {
    return [...this.messages.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
  }
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not after ${Math.round(timeoutMs / 1000)} s`);
    await sleep(500);
  }
  return Date.now() - t0;
}

async function run(context: NodeScenarioContext): Promise<NodeScenarioResult> {
  const { cluster, log } = context;
  const env = cluster.env;
  const size = SIZES[context.size];
  const figures: NodeFigure[] = [];
  const problems: string[] = [];
  const fig = (name: string, value: number | string, unit?: string, note?: string): void => void figures.push({ name, value, ...(unit ? { unit } : {}), ...(note ? { note } : {}) });
  const client = apiClient(env, CREATE_CONCURRENCY);
  const objects = clusterObjects(size.agents, size.connectors, size.namespaces);
  const template = podTemplate(BENCH_NAMESPACE);
  let agentsCreated = 0;
  const trickles: Trickle[] = [];
  try {
    // ---- the cluster, created with the replicas scaled to 0 (as bench:scale creates it with
    // the service stopped): a machine busy with the replicas' watches and the leader's status
    // writes creates far slower, and the replicas' first start at this size, with every
    // status to write, is the peak the limit must hold.
    await scaleReplicas(env, 0);
    await until('the replicas stopped', 120_000, async () => (await replicaPods(env)).length === 0);
    await env.apply({ apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'komputer-agents' }, value: 1000, globalDefault: false, description: 'agent pods (bench:node memory)' });
    const t0 = Date.now();
    const say = (m: string): void => log(m);
    await createObjects(client, objects.namespaces, 'namespaces', { concurrency: CREATE_CONCURRENCY, say });
    await env.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: `${BENCH_AGENT}-agent`, namespace: BENCH_NAMESPACE } });
    await createObjects(client, objects.connectors, 'connectors', { concurrency: CREATE_CONCURRENCY, say });
    const agents = await createObjects(client, objects.agents, 'agents', { concurrency: CREATE_CONCURRENCY, say, deadline: t0 + size.createBudgetSeconds * 1000 });
    agentsCreated = agents.created;
    const createdSeconds = (Date.now() - t0) / 1000;
    fig('cluster created', `${objects.connectors.length.toLocaleString('en-US')} connectors × ${agentsCreated.toLocaleString('en-US')} agents in ${objects.namespaces.length} namespaces`, undefined, `POSTed at ${CREATE_CONCURRENCY} in flight through the API server with the replicas scaled to 0, in ${createdSeconds.toFixed(0)} s (agents ${Math.round(agents.perSecond)}/s)${agentsCreated < objects.agents.length ? `; the ${context.size} budget of ${size.createBudgetSeconds} s stopped agents at ${agentsCreated}` : ''}`);
    if (agentsCreated < objects.agents.length) problems.push(`only ${agentsCreated} of ${objects.agents.length} agents created in the ${size.createBudgetSeconds} s budget: the defaults' claim is not checked at its full size`);
    const sampler = new MemorySampler(env);
    sampler.start();
    const scaledAt = Date.now();
    await scaleReplicas(env, 2);
    const scaledReadyMs = await until('2 Ready replicas at this size', size.syncTimeoutSeconds * 1000, () => twoReady(env));
    fig('replicas Ready after the scale-up', Math.round(scaledReadyMs / 100) / 10, 's', 'readiness: every watch cache synced');

    // ---- sync: both replicas' caches hold every object, the leader's queue is empty
    const pods0 = await replicaPods(env);
    // Stable names for the figures (pod names change every run).
    const label = (pod: string): string => {
      const i = pods0.findIndex((p) => p.name === pod);
      return i >= 0 ? `replica ${i + 1}` : pod;
    };
    const synced = async (): Promise<boolean> => {
      let leaderQuiet = false;
      for (const p of pods0) {
        const text = await replicaMetrics(env, p.name).catch(() => '');
        const agentsCached = sampleValue(text, 'komputer_webhook_cache_objects', { kind: 'agent' }) ?? 0;
        const connectorsCached = sampleValue(text, 'komputer_webhook_cache_objects', { kind: 'connector' }) ?? 0;
        if (agentsCached < agentsCreated || connectorsCached < objects.connectors.length) return false;
        if ((sampleValue(text, 'komputer_webhook_leader') ?? 0) === 1) leaderQuiet = (sampleValue(text, 'komputer_webhook_attachment_queue_depth') ?? 1) === 0;
      }
      return leaderQuiet;
    };
    await until('the replicas synced', size.syncTimeoutSeconds * 1000, synced);
    const syncMs = Date.now() - scaledAt;
    await sleep(3000); // the last status writes' watch echoes
    const syncPeaks = await sampler.stop();
    fig('synced after the scale-up', Math.round(syncMs / 100) / 10, 's', "both replicas' caches hold every connector and agent (komputer_webhook_cache_objects) and the leader's reconcile queue is empty: every connector's status written");
    const afterSync = new Map<string, number>();
    for (const p of await replicaPods(env)) {
      const m = replicaMemory(p);
      if (m === undefined) {
        problems.push(`${p.name}: no running container to read after the sync`);
        continue;
      }
      afterSync.set(p.name, m.workingSetBytes);
      fig(`${label(p.name)}: working set after sync`, mib(m.workingSetBytes), 'MiB', `${p.name}: cgroup v1 usage - inactive file (anonymous ${mib(m.anonBytes)} MiB; peak from start to sync ${mib(syncPeaks.get(p.name)?.workingSet ?? 0)} MiB) under a limit of ${mib(m.limitBytes)} MiB`);
    }

    // ---- load: agent pod creates through the API server and AdmissionReviews through the Service
    ensureWrk(log); // installed from Debian packages when missing (root)
    const clusterIp = (await env.kubectl(['get', 'service', SERVICE_NAME, '-n', RELEASE_NAMESPACE, '-o', 'jsonpath={.spec.clusterIP}'])).stdout.trim();
    const dir = mkdtempSync(join(tmpdir(), 'bench-node-memory-'));
    const bodyFile = join(dir, 'review.json');
    writeFileSync(bodyFile, JSON.stringify(podReview()));
    const loadSampler = new MemorySampler(env);
    loadSampler.start();
    let created = 0;
    let refusedUnderLoad = 0;
    const refusals = new Set<string>();
    const loadEnds = Date.now() + size.loadSeconds * 1000;
    const creates = Promise.all(
      Array.from({ length: LOAD_CONCURRENCY }, async (_, w) => {
        for (let i = 0; Date.now() < loadEnds; i++) {
          const r = await createAgentPod(client, template, `load-${w}-${i}`);
          if (r.ok) created++;
          else {
            refusedUnderLoad++;
            refusals.add(r.message);
          }
        }
      }),
    );
    const wrkRun = await wrk({ host: clusterIp, port: 443, connections: WRK_CONNECTIONS, seconds: size.loadSeconds, bodyFile, cpu: 1 });
    await creates;
    const loadPeaks = await loadSampler.stop();
    const w = wrkRun.summary;
    const wrkErrors = Object.values(w.errors).reduce((a, b) => a + b, 0);
    fig('load: agent pod creates through the API server', created, 'pods', `${LOAD_CONCURRENCY} in flight for ${size.loadSeconds} s (dry runs, ${Math.round(created / size.loadSeconds)}/s), each injected; ${refusedUnderLoad} refused`);
    fig('load: AdmissionReviews through the Service', w.requests, 'reviews', `wrk, ${WRK_CONNECTIONS} connections to ${SERVICE_NAME}:443 for ${size.loadSeconds} s (${Math.round(w.requests / (w.duration_us / 1e6))}/s over both replicas, p99 ${(w.latency_us.p99 / 1000).toFixed(1)} ms), ${wrkErrors} errors`);
    if (refusedUnderLoad > 0) problems.push(`${refusedUnderLoad} agent pod creates refused under load at the defaults: ${[...refusals].slice(0, 2).join(' | ')}`);
    if (wrkErrors > 0) problems.push(`wrk through the Service: errors ${JSON.stringify(w.errors)}`);
    let maxPeak = 0;
    let limitBytes = 0;
    for (const p of await replicaPods(env)) {
      const m = replicaMemory(p);
      const peak = loadPeaks.get(p.name)?.workingSet ?? 0;
      maxPeak = Math.max(maxPeak, peak, syncPeaks.get(p.name)?.workingSet ?? 0);
      if (m !== undefined) {
        limitBytes = m.limitBytes;
        fig(`${label(p.name)}: working set after load`, mib(m.workingSetBytes), 'MiB', `${p.name}: peak under load ${mib(peak)} MiB (sampled every second), anonymous ${mib(m.anonBytes)} MiB, max usage incl. page cache ${mib(m.peakBytes)} MiB, limit hit ${m.failcnt} times`);
      }
      fig(`${label(p.name)}: restarts at the defaults`, p.restartCount, undefined, `${p.name}: ${p.terminatedReason ? `last terminated: ${p.terminatedReason}` : 'no container ended'}`);
      if (p.restartCount > 0 || p.terminatedReason !== '') problems.push(`${p.name} restarted ${p.restartCount} times at the defaults (last: ${p.terminatedReason || '?'})`);
    }
    if (pods0.some((p) => !afterSync.has(p.name))) problems.push('a replica of the install was replaced during the run');
    fig('default limit over the highest working set', limitBytes > 0 && maxPeak > 0 ? Math.round((limitBytes / maxPeak) * 100) / 100 : '-', '×', `limit ${mib(limitBytes)} MiB, highest working set seen ${mib(maxPeak)} MiB (starting, syncing, under load)`);
    if (maxPeak >= limitBytes) problems.push(`the working set reached the default limit (${mib(maxPeak)} of ${mib(limitBytes)} MiB)`);

    // ---- a limit below the measured use
    const minAfterSync = Math.min(...afterSync.values());
    const small = Math.max(32, Math.floor((0.7 * minAfterSync) / 2 ** 20));
    const smallSets = ['--set', `resources.requests.memory=${small}Mi`, '--set', `resources.limits.memory=${small}Mi`];
    fig('small limit', small, 'Mi', `70% of the lowest working set after sync (${mib(minAfterSync)} MiB), as request and limit`);
    const phase = (): Trickle => {
      const t = new Trickle(client, template);
      trickles.push(t);
      t.start();
      return t;
    };
    const describe = (pods: ReplicaPod[]): string => pods.map((p) => `${p.name}: ${p.terminatedReason || '?'} (exit ${p.terminatedExitCode ?? '?'}), ${p.restartCount} restarts, ${p.waitingReason || 'running'}`).join('; ');

    // 1. helm upgrade to it: the new pod dies at its first sync, the old replicas serve on.
    log(`helm upgrade to a ${small}Mi limit`);
    const upgrade = phase();
    const up = await cluster.install(smallSets, { upgrade: true, wait: false });
    if (up.code !== 0) throw new Error(`helm upgrade to ${small}Mi: ${up.stderr}`);
    const upgradedAt = Date.now();
    const killedAt = (pods: ReplicaPod[]): ReplicaPod[] => pods.filter((p) => p.limitMemory === `${small}Mi` && (p.terminatedReason !== '' || p.restartCount > 0));
    const firstKillMs = await until(`a pod at ${small}Mi killed`, 180_000, async () => killedAt(await replicaPods(env)).length > 0);
    await sleep(5000);
    await upgrade.stop();
    const during = await replicaPods(env);
    const killed = killedAt(during);
    const oldReady = during.filter((p) => p.limitMemory !== `${small}Mi` && p.ready).length;
    fig('upgrade to the small limit: new pod killed after', Math.round(firstKillMs / 100) / 10, 's', describe(killed));
    fig('upgrade to the small limit: agent pods refused', upgrade.refused, 'pods', `of ${upgrade.ok + upgrade.refused} created one after another (every 250 ms) during ${((Date.now() - upgradedAt) / 1000).toFixed(0)} s; ${oldReady} old replicas still Ready (maxUnavailable 0: the rollout waits for a Ready new pod)`);
    if (!killed.some((p) => p.terminatedReason === 'OOMKilled')) problems.push(`upgrade to ${small}Mi: no pod reported OOMKilled (${describe(killed) || 'none ended'})`);
    if (upgrade.refused > 0) problems.push(`upgrade to ${small}Mi: ${upgrade.refused} agent pods refused while the old replicas served (${upgrade.topMessage().slice(0, 200)})`);

    // 2. Every replica at that limit (an install, or a cluster that outgrew a running one).
    log(`helm uninstall, then helm install at a ${small}Mi limit`);
    const un = await cluster.helm.run(['uninstall', RELEASE, '-n', RELEASE_NAMESPACE, '--wait', '--timeout', '120s'], { allowFailure: true, timeoutMs: 180_000 });
    if (un.code !== 0) throw new Error(`helm uninstall: ${un.stderr}`);
    await until('the replicas gone', 120_000, async () => (await replicaPods(env)).length === 0);
    const inst = await cluster.install(smallSets, { wait: false });
    if (inst.code !== 0) throw new Error(`helm install at ${small}Mi: ${inst.stderr}`);
    const installedAt = Date.now();
    const outage = phase();
    const allKilledMs = await until(`both replicas at ${small}Mi killed`, 180_000, async () => {
      const pods = await replicaPods(env);
      return pods.length >= 2 && pods.every((p) => p.restartCount > 0 || p.terminatedReason !== '');
    });
    await until('an agent pod refused', 60_000, async () => outage.refused > 0);
    await sleep(context.size === 'bench' ? 20_000 : 8_000);
    await outage.stop();
    const down = await replicaPods(env);
    const reasons = [...new Set(down.map((p) => p.terminatedReason).filter((r) => r !== ''))];
    fig('install at the small limit: every replica killed after', Math.round(allKilledMs / 100) / 10, 's', describe(down));
    fig('install at the small limit: agent pods refused', outage.refused, 'pods', `of ${outage.ok + outage.refused} created one after another during ${((Date.now() - installedAt) / 1000).toFixed(0)} s${outage.ok > 0 ? ` (${outage.ok} injected while a replica was briefly Ready)` : ''}`);
    fig("install at the small limit: the API server's message", outage.topMessage() || '-', undefined, 'the most frequent refusal, quoted');
    if (!reasons.includes('OOMKilled')) problems.push(`install at ${small}Mi: no replica reported OOMKilled (${describe(down)})`);

    // 3. The limit raised back to the defaults.
    log('helm upgrade back to the defaults');
    const recovery = phase();
    const raisedAt = Date.now();
    const back = await cluster.install([], { upgrade: true, wait: false });
    if (back.code !== 0) throw new Error(`helm upgrade to the defaults: ${back.stderr}`);
    await until('an agent pod injected again', 300_000, async () => recovery.lastOkAt !== undefined);
    const firstOkMs = recovery.lastOkAt! - raisedAt;
    await until('2 Ready replicas at the defaults', 300_000, () => twoReady(env));
    const readyMs = Date.now() - raisedAt;
    await recovery.stop();
    fig('recovery after raising the limit: first agent pod injected', Math.round(firstOkMs / 100) / 10, 's', `from helm upgrade to the defaults; ${recovery.refused} refused meanwhile${recovery.refused > 0 ? ` (${recovery.topMessage().slice(0, 160)})` : ''}`);
    fig('recovery after raising the limit: 2 replicas Ready', Math.round(readyMs / 100) / 10, 's', 'from helm upgrade to the defaults, the crash-looping pods replaced');
    if ((await replicaPods(env)).some((p) => p.limitMemory === `${small}Mi`)) problems.push('a replica still runs at the small limit after the upgrade back');
  } finally {
    for (const t of trickles) await t.stop();
    // ---- leave the cluster as found: no objects, the chart at its defaults, 2 Ready replicas
    const cleanup = Date.now();
    // The replicas at 0 meanwhile: nothing else runs, and they would only follow the deletes.
    await scaleReplicas(env, 0).catch(() => undefined);
    await env.kubectl(['delete', 'namespace', ...objects.namespaces.map((ns) => (ns.metadata as { name: string }).name), '--wait=false', '--ignore-not-found'], { allowFailure: true });
    await env.kubectl(['delete', 'priorityclass', 'komputer-agents', '--ignore-not-found'], { allowFailure: true });
    try {
      await until('the namespaces deleted', context.size === 'bench' ? 600_000 : 120_000, async () => {
        const r = await env.kubectl(['get', 'namespaces', '-o', 'name'], { allowFailure: true });
        return !objects.namespaces.some((ns) => r.stdout.includes(`namespace/${(ns.metadata as { name: string }).name}\n`));
      });
    } catch (e) {
      problems.push(e instanceof Error ? e.message : String(e));
    }
    await scaleReplicas(env, 2).catch(() => undefined); // before helm: no replica count for its apply to conflict with
    await restoreDefaults(cluster);
    log(`cleanup (${objects.namespaces.length} namespaces, ${agentsCreated} agents) took ${((Date.now() - cleanup) / 1000).toFixed(0)} s`);
    client.close();
  }
  return { scenario: 'memory', figures, problems };
}

export const memoryScenario: NodeScenario = {
  name: 'memory',
  title: 'memory under a real cgroup limit: no OOMKill at the defaults at the size they claim; a small limit refuses agent pods; recovery',
  run,
};
