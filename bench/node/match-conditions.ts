// What the pod webhook's configuration costs the API server (issue 24, item 5): an A/B of
// `matchConditions` that repeat the namespaceSelector's exclusions in CEL (A, what the chart
// shipped until this comparison) against the selectors alone (B, what it ships now), on the
// live MutatingWebhookConfiguration the chart installed (a JSON patch adds or removes the pod
// webhook's matchConditions; the configuration as installed is put back at the end), with a
// third arm, a namespace that is not enabled (the webhook is never called), as the reference
// the webhook's added cost is measured from.
//
// Each round creates the same agent pod (bench/fixtures.ts, as bench:podcreate creates it,
// with a scheduling gate so the stored pods never reach the node) N times at a fixed low
// concurrency, and reads the kube-apiserver's CPU time from /proc before and after, net of
// its idle rate (the node's kubelet and controllers, the replicas' watches) measured just
// before. Rounds rotate the arms (A B O, O B A, ...) so drift cancels; pods are deleted
// after each round. Every round checks, from the API server's own metrics, that the webhook
// was called once per create in A and B and never in O, and that no match condition
// excluded a request the selectors let through; each switch of arm is read back from the
// API server. In each arm the same safety probes run: a non-agent pod in the enabled
// namespace, and agent-labelled pods in kube-system and in the release namespace, none of
// which may reach the webhook.

import { apiClient, type Client } from '../api.ts';
import { BENCH_AGENT, BENCH_CONNECTORS, podTemplate } from '../fixtures.ts';
import { cpuMicros } from '../proc.ts';
import { sampleSum } from '../../test/helpers/prometheus.ts';
import { RELEASE_NAMESPACE } from '../../test/e2e/fixtures/helm.ts';
import type { Environment } from '../../test/e2e/harness/index.ts';
import { percentile } from './measure.ts';
import type { NodeFigure, NodeScenario, NodeScenarioContext, NodeScenarioResult } from './scenario.ts';

const ON = 'mc-on';
const OFF = 'mc-off';
const WEBHOOK = 'pods.connectors.komputer.ai';
const CONFIG = 'komputer-connector-webhook';
const API = 'komputer.komputer.ai/v1alpha1';
const SIZES = { test: { rounds: 2, pods: 100, concurrency: 8 }, bench: { rounds: 6, pods: 400, concurrency: 8 } } as const;
const IDLE_MS = 2000;

type Arm = 'A' | 'B' | 'O';
const ARM_NAMES: Record<Arm, string> = { A: 'selectors + matchConditions', B: 'selectors alone', O: 'not enabled (no webhook call)' };
/** A's conditions: the namespaceSelector's exclusions again in CEL, as the chart shipped them before it kept B. */
const CONDITIONS: MatchCondition[] = [
  { name: 'exclude-kube-system', expression: "request.namespace != 'kube-system'" },
  { name: 'exclude-own-namespace', expression: `request.namespace != '${RELEASE_NAMESPACE}'` },
];

interface MatchCondition {
  name: string;
  expression: string;
}

async function webhookIndex(env: Environment): Promise<{ index: number; conditions: MatchCondition[] | undefined }> {
  const config = JSON.parse((await env.kubectl(['get', 'mutatingwebhookconfiguration', CONFIG, '-o', 'json'])).stdout) as { webhooks: { name: string; matchConditions?: MatchCondition[] }[] };
  const index = config.webhooks.findIndex((w) => w.name === WEBHOOK);
  if (index < 0) throw new Error(`${CONFIG} has no webhook ${WEBHOOK}`);
  return { index, conditions: config.webhooks[index]!.matchConditions };
}

async function setConditions(env: Environment, index: number, conditions: MatchCondition[] | undefined): Promise<void> {
  const current = await webhookIndex(env);
  const op = conditions === undefined ? (current.conditions === undefined ? undefined : { op: 'remove', path: `/webhooks/${index}/matchConditions` }) : { op: current.conditions === undefined ? 'add' : 'replace', path: `/webhooks/${index}/matchConditions`, value: conditions };
  if (op !== undefined) await env.kubectl(['patch', 'mutatingwebhookconfiguration', CONFIG, '--type=json', '-p', JSON.stringify([op])]);
}

/** The API server's counters this scenario checks each round by. */
async function counters(client: Client): Promise<{ calls: number; exclusions: number }> {
  const text = (await client.request('GET', '/metrics')).text;
  return {
    calls: sampleSum(text, 'apiserver_admission_webhook_admission_duration_seconds_count', { name: WEBHOOK, type: 'admit' }),
    exclusions: sampleSum(text, 'apiserver_admission_match_condition_exclusions_total', { name: WEBHOOK }),
  };
}

async function run(context: NodeScenarioContext): Promise<NodeScenarioResult> {
  const { cluster, log } = context;
  const env = cluster.env;
  const size = SIZES[context.size];
  const figures: NodeFigure[] = [];
  const problems: string[] = [];
  const client = apiClient(env, size.concurrency + 1);
  const { index, conditions: chartConditions } = await webhookIndex(env);
  const shipped: 'A' | 'B' = chartConditions !== undefined && chartConditions.length > 0 ? 'A' : 'B';
  const apiserverPid = env.controlPlane.apiserver.pid;
  if (apiserverPid <= 0) throw new Error('kube-apiserver has no pid');
  try {
    await env.apply({ apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'komputer-agents' }, value: 1000, globalDefault: false, description: 'agent pods (bench:node match-conditions)' });
    for (const [ns, enabled] of [[ON, true], [OFF, false]] as const) {
      await env.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: enabled ? { 'komputer.ai/connector-injection': 'enabled' } : {} } });
      await env.apply([
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: `${BENCH_AGENT}-agent`, namespace: ns } },
        ...BENCH_CONNECTORS.map((c) => ({ apiVersion: API, kind: 'KomputerConnector', metadata: { name: c.name, namespace: ns }, spec: { type: 'remote', service: c.service, url: c.url, authType: c.authType, authSecretKeyRef: { name: c.secret.name, key: c.secret.key } } })),
        { apiVersion: API, kind: 'KomputerAgent', metadata: { name: BENCH_AGENT, namespace: ns }, spec: { instructions: 'bench agent: never runs', connectors: BENCH_CONNECTORS.map((c) => c.name) } },
      ]);
    }
    // Stored but never scheduled: the node's work stays out of the API server's CPU.
    const gate = { schedulingGates: [{ name: 'komputer.ai/bench-never-schedule' }] };
    const templates = { on: podTemplate(ON, gate), off: podTemplate(OFF, gate) };
    const injected = (text: string): boolean => text.includes('"komputer.ai/injected-connectors":"github,notion,slack"');
    const create = async (arm: Arm, name: string, dryRun = false): Promise<{ status: number; text: string; ms: number }> => {
      const ns = arm === 'O' ? OFF : ON;
      const t = arm === 'O' ? templates.off : templates.on;
      return client.request('POST', `/api/v1/namespaces/${ns}/pods${dryRun ? '?dryRun=All' : ''}`, t.before + name + t.after);
    };
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await create('A', 'ready-probe', true);
      if (r.status === 201 && injected(r.text)) break;
      if (Date.now() > deadline) throw new Error(`the agent is not injected in ${ON} after 60 s: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      await new Promise((res) => setTimeout(res, 500));
    }

    // The same probes in each arm: none of these may reach the webhook.
    const agentLabels = { 'komputer.ai/agent-name': BENCH_AGENT, 'komputer.ai/squad': 'false' };
    const probePod = (namespace: string, name: string, labels: Record<string, string>): string =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, spec: { ...gate, containers: [{ name: 'c', image: 'komputer-e2e.local/probe:1', args: ['sleep'] }] } });
    const safety = async (arm: Arm): Promise<void> => {
      const before = await counters(client);
      const probes: [string, string][] = [
        [ON, probePod(ON, 'not-an-agent', { app: 'web' })],
        ['kube-system', probePod('kube-system', 'agent-in-kube-system', agentLabels)],
        [RELEASE_NAMESPACE, probePod(RELEASE_NAMESPACE, 'agent-in-release-ns', agentLabels)],
      ];
      for (const [ns, body] of probes) {
        const r = await client.request('POST', `/api/v1/namespaces/${ns}/pods?dryRun=All`, body);
        if (r.status !== 201) problems.push(`${ARM_NAMES[arm]}: a probe pod in ${ns} was refused: HTTP ${r.status} ${r.text.slice(0, 200)}`);
      }
      const after = await counters(client);
      if (after.calls !== before.calls) problems.push(`${ARM_NAMES[arm]}: ${after.calls - before.calls} of the safety probes (a non-agent pod, agent pods in kube-system and ${RELEASE_NAMESPACE}) reached the webhook`);
    };

    const order: Arm[] = [];
    for (let k = 0; k < size.rounds; k++) order.push(...((k % 2 === 0 ? ['A', 'B', 'O'] : ['O', 'B', 'A']) as Arm[]));
    const perPod: Record<Arm, number[]> = { A: [], B: [], O: [] };
    const latencies: Record<Arm, number[]> = { A: [], B: [], O: [] };
    const roundOf: Record<Arm, number> = { A: 0, B: 0, O: 0 };
    const background: number[] = [];
    let live: 'A' | 'B' = shipped;
    for (const arm of order) {
      if (arm !== 'O' && arm !== live) {
        await setConditions(env, index, arm === 'A' ? CONDITIONS : undefined);
        live = arm;
        // The API server's own metric observes match conditions only when one excludes a
        // request, which never happens here; so the arm is read back from the API server and
        // given time to reach its webhook configuration informer.
        const now = (await webhookIndex(env)).conditions;
        const key = (cs: MatchCondition[] | undefined): string => (cs ?? []).map((c) => `${c.name}: ${c.expression}`).join('; ');
        if (key(now) !== key(arm === 'A' ? CONDITIONS : undefined)) throw new Error(`the configuration did not take ${ARM_NAMES[arm]}: ${JSON.stringify(now)}`);
        await new Promise((res) => setTimeout(res, 2000));
      }
      if (roundOf[arm] === 0) await safety(arm);
      const k = roundOf[arm]++;
      // The API server's own background (the node's kubelet, controllers and the replicas'
      // watches) over an idle window, subtracted from the round's CPU at the same rate.
      const idle0 = cpuMicros(apiserverPid);
      const idleStart = performance.now();
      await new Promise((res) => setTimeout(res, IDLE_MS));
      const idleRate = (cpuMicros(apiserverPid) - idle0) / (performance.now() - idleStart);
      const c0 = await counters(client);
      const started = performance.now();
      const cpu0 = cpuMicros(apiserverPid);
      let next = 0;
      const lat: number[] = [];
      await Promise.all(
        Array.from({ length: size.concurrency }, async () => {
          while (next < size.pods) {
            const i = next++;
            const r = await create(arm, `${BENCH_AGENT}-${arm.toLowerCase()}${k}-${i}`);
            if (r.status !== 201) throw new Error(`${ARM_NAMES[arm]}: create HTTP ${r.status}: ${r.text.slice(0, 300)}`);
            if (injected(r.text) !== (arm !== 'O')) problems.push(`${ARM_NAMES[arm]}: a pod stored ${injected(r.text) ? '' : 'not '}injected`);
            lat.push(r.ms);
          }
        }),
      );
      const cpu1 = cpuMicros(apiserverPid);
      const ms = performance.now() - started;
      const c1 = await counters(client);
      const calls = c1.calls - c0.calls;
      if (calls !== (arm === 'O' ? 0 : size.pods)) problems.push(`${ARM_NAMES[arm]} round ${k}: the webhook was called ${calls} times for ${size.pods} creates`);
      if (c1.exclusions !== c0.exclusions) problems.push(`${ARM_NAMES[arm]} round ${k}: a match condition excluded ${c1.exclusions - c0.exclusions} requests the selectors let through`);
      const net = (cpu1 - cpu0 - idleRate * ms) / size.pods / 1000;
      perPod[arm].push(net);
      background.push(idleRate);
      latencies[arm].push(...lat);
      log(`round ${k} ${arm}: ${size.pods} creates in ${(ms / 1000).toFixed(1)} s; API server CPU per create ${((cpu1 - cpu0) / size.pods / 1000).toFixed(3)} ms, ${net.toFixed(3)} ms net of its idle ${(idleRate / 10).toFixed(1)}% of a core; webhook called ${calls}x`);
      const del = await client.request('DELETE', `/api/v1/namespaces/${arm === 'O' ? OFF : ON}/pods`);
      if (del.status !== 200) throw new Error(`deletecollection: HTTP ${del.status}`);
      await new Promise((res) => setTimeout(res, 500));
    }

    // ---- figures: CPU per create per arm, the webhook's added CPU, A/B as a ratio with its spread
    const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 0.5);
    const r3 = (v: number): number => Math.round(v * 1000) / 1000;
    const r2 = (v: number): number => Math.round(v * 100) / 100;
    for (const arm of ['A', 'B', 'O'] as const) {
      const s = [...latencies[arm]].sort((a, b) => a - b);
      figures.push({ name: `API server CPU per create: ${ARM_NAMES[arm]}`, value: r3(median(perPod[arm])), unit: 'ms', note: `median of ${perPod[arm].length} rounds (${perPod[arm].map(r3).join(', ')}); create p50 ${r2(percentile(s, 0.5))} ms, p99 ${r2(percentile(s, 0.99))} ms` });
    }
    const pairs = perPod.A.map((a, i) => ({ a: a - perPod.O[i]!, b: perPod.B[i]! - perPod.O[i]!, ratio: a / perPod.B[i]! }));
    const ratios = pairs.map((p) => p.ratio).sort((x, y) => x - y);
    const addedRatios = pairs.map((p) => p.a / p.b).sort((x, y) => x - y);
    figures.push({ name: 'API server CPU per create, A / B', value: r3(median(ratios)), unit: '×', note: `median of ${ratios.length} round pairs, range ${r3(ratios[0]!)}–${r3(ratios[ratios.length - 1]!)}` });
    figures.push({ name: "webhook's added API server CPU, A / B", value: r2(median(addedRatios)), unit: '×', note: `(A − O) / (B − O) per round: median of ${addedRatios.length}, range ${r2(addedRatios[0]!)}–${r2(addedRatios[addedRatios.length - 1]!)}; added CPU per create A ${r3(median(pairs.map((p) => p.a)))} ms, B ${r3(median(pairs.map((p) => p.b)))} ms` });
    figures.push({ name: 'rounds', value: `${size.rounds} × ${size.pods} creates per arm`, note: `the chart ships ${shipped} (${ARM_NAMES[shipped]}); ${size.concurrency} in flight, arms rotated ${order.join('')}, each create the ${Buffer.byteLength(templates.on.before + templates.on.after)}-byte agent pod of bench/fixtures.ts with a scheduling gate; kube-apiserver CPU from /proc/<pid>/stat, net of its idle rate over ${IDLE_MS / 1000} s before each round (median ${r2(median(background) / 10)}% of a core)` });
  } finally {
    // The chart's configuration as installed, whatever happened.
    await setConditions(env, index, shipped === 'A' ? chartConditions : undefined).catch((e: unknown) => problems.push(`could not restore the matchConditions: ${String(e)}`));
    client.close();
    for (const ns of [ON, OFF]) await env.kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=120s'], { allowFailure: true });
    await env.kubectl(['delete', 'priorityclass', 'komputer-agents', '--ignore-not-found'], { allowFailure: true });
  }
  return { scenario: 'match-conditions', figures, problems };
}

export const matchConditionsScenario: NodeScenario = {
  name: 'match-conditions',
  title: "what the pod webhook's configuration costs the API server: matchConditions against selectors alone",
  run,
};
