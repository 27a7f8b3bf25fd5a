// Agent pod start latency (issue 24, item 5): create -> Running of the same agent pod (the
// node's probe image, sleeping) in a namespace the webhook serves and in one it does not,
// on the same node, one pod at a time, alternating A B B A so drift cancels. Each pod is
// timed from just before its POST to the first watch event that shows it Running (one watch
// per namespace, opened before the first create), then deleted and gone before the next.
// The enabled namespace's pods must come back injected (a token as a secretKeyRef the
// kubelet resolves), the other's untouched.

import { request as httpsRequest } from 'node:https';
import { apiClient } from '../api.ts';
import { NODE_IMAGES, type Environment } from '../../test/e2e/harness/index.ts';
import { percentile } from './measure.ts';
import type { NodeFigure, NodeScenario, NodeScenarioContext, NodeScenarioResult } from './scenario.ts';

const ON = 'latency-on';
const OFF = 'latency-off';
const AGENT = 'timer';
const PODS = { test: 6, bench: 30 } as const;
const RUNNING_TIMEOUT_MS = 60_000;

type Side = 'with' | 'without';

/** First time (performance.now()) each pod of a namespace was seen Running, from a watch. */
class RunningWatch {
  readonly runningAt = new Map<string, number>();
  private readonly waiters = new Map<string, () => void>();
  private req: ReturnType<typeof httpsRequest> | undefined;
  private closed = false;

  private readonly env: Environment;
  private readonly namespace: string;
  constructor(env: Environment, namespace: string) {
    this.env = env;
    this.namespace = namespace;
  }

  async open(): Promise<void> {
    const url = new URL(this.env.controlPlane.server);
    const list = await this.env.kubectl(['get', '--raw', `/api/v1/namespaces/${this.namespace}/pods?limit=1`]);
    const rv = (JSON.parse(list.stdout) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    await new Promise<void>((resolve, reject) => {
      this.req = httpsRequest(
        {
          host: url.hostname,
          port: url.port,
          path: `/api/v1/namespaces/${this.namespace}/pods?watch=1&resourceVersion=${rv}&allowWatchBookmarks=false&timeoutSeconds=3600`,
          headers: { authorization: `Bearer ${this.env.controlPlane.adminToken}` },
          ca: this.env.controlPlane.caCert,
        },
        (res) => {
          if (res.statusCode !== 200) {
            reject(new Error(`watch ${this.namespace}: HTTP ${res.statusCode}`));
            return;
          }
          resolve();
          let buffer = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffer += chunk;
            for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
              const line = buffer.slice(0, nl);
              buffer = buffer.slice(nl + 1);
              this.onEvent(line, performance.now());
            }
          });
          res.on('end', () => {
            if (!this.closed) for (const w of this.waiters.values()) w();
          });
        },
      );
      this.req.on('error', (e) => (this.closed ? undefined : reject(e)));
      this.req.end();
    });
  }

  private onEvent(line: string, at: number): void {
    if (line.trim() === '') return;
    const event = JSON.parse(line) as { type: string; object: { metadata?: { name?: string }; status?: { phase?: string } } };
    const name = event.object.metadata?.name;
    if (name === undefined || event.object.status?.phase !== 'Running' || this.runningAt.has(name)) return;
    this.runningAt.set(name, at);
    this.waiters.get(name)?.();
  }

  /** Resolves with the time the pod was first seen Running. */
  running(name: string, timeoutMs: number): Promise<number> {
    const seen = this.runningAt.get(name);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(name);
        reject(new Error(`${this.namespace}/${name} not Running after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(name, () => {
        clearTimeout(timer);
        this.waiters.delete(name);
        const at = this.runningAt.get(name);
        if (at === undefined) reject(new Error(`watch of ${this.namespace} ended`));
        else resolve(at);
      });
    });
  }

  close(): void {
    this.closed = true;
    this.req?.destroy();
  }
}

function pod(namespace: string, name: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { 'komputer.ai/agent-name': AGENT, 'komputer.ai/squad': 'false', [`komputer.ai/member-${AGENT}`]: 'true' } },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'agent', image: NODE_IMAGES.probe, imagePullPolicy: 'Never', args: ['sleep'] }],
    },
  };
}

async function run(context: NodeScenarioContext): Promise<NodeScenarioResult> {
  const { cluster, log } = context;
  const env = cluster.env;
  const n = PODS[context.size];
  const figures: NodeFigure[] = [];
  const problems: string[] = [];
  const client = apiClient(env, 2);
  const watches: RunningWatch[] = [];
  try {
    for (const [ns, enabled] of [[ON, true], [OFF, false]] as const) {
      await env.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: enabled ? { 'komputer.ai/connector-injection': 'enabled' } : {} } });
      await env.apply([
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gh', namespace: ns }, type: 'Opaque', stringData: { token: 'ghp_LATENCYnotARealToken000' } },
        { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerConnector', metadata: { name: 'github', namespace: ns }, spec: { type: 'remote', service: 'github', url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'gh', key: 'token' } } },
        { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { name: AGENT, namespace: ns }, spec: { instructions: 'start latency', connectors: ['github'] } },
      ]);
    }
    // The namespaces' default ServiceAccounts (the controller-manager makes them), and the
    // replicas' caches holding the agent: a dry run in ON comes back injected.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const sa = await Promise.all([ON, OFF].map((ns) => env.kubectl(['get', 'sa', 'default', '-n', ns], { allowFailure: true })));
      const probe = await client.request('POST', `/api/v1/namespaces/${ON}/pods?dryRun=All`, JSON.stringify(pod(ON, 'probe')));
      if (sa.every((r) => r.code === 0) && probe.status === 201 && probe.text.includes('CONNECTOR_GITHUB_TOKEN')) break;
      if (Date.now() > deadline) throw new Error(`the agent is not injected in ${ON} after 60 s: HTTP ${probe.status} ${probe.text.slice(0, 300)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const watch: Record<Side, RunningWatch> = { with: new RunningWatch(env, ON), without: new RunningWatch(env, OFF) };
    for (const w of Object.values(watch)) {
      watches.push(w);
      await w.open();
    }

    const order: Side[] = [];
    for (let k = 0; k < n; k++) order.push(...((k % 2 === 0 ? ['with', 'without'] : ['without', 'with']) as Side[]));
    const latencies: Record<Side, number[]> = { with: [], without: [] };
    const count: Record<Side, number> = { with: 0, without: 0 };
    for (const side of order) {
      const ns = side === 'with' ? ON : OFF;
      const name = `${AGENT}-${count[side]++}`;
      const t0 = performance.now();
      const r = await client.request('POST', `/api/v1/namespaces/${ns}/pods`, JSON.stringify(pod(ns, name)));
      if (r.status !== 201) throw new Error(`create ${ns}/${name}: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
      const injected = r.text.includes('"secretKeyRef":{"name":"gh","key":"token"}');
      if (injected !== (side === 'with')) problems.push(`${ns}/${name} stored ${injected ? 'injected' : 'not injected'}`);
      const at = await watch[side].running(name, RUNNING_TIMEOUT_MS);
      latencies[side].push(at - t0);
      // Gone before the next create, so each pod starts on an idle node.
      await env.kubectl(['delete', 'pod', name, '-n', ns, '--grace-period=0', '--force', '--wait=true', '--timeout=60s'], { allowFailure: true });
    }

    const stats = (xs: number[]): { p50: number; p99: number; mean: number; max: number } => {
      const s = [...xs].sort((a, b) => a - b);
      const r = (v: number): number => Math.round(v);
      return { p50: r(percentile(s, 0.5)), p99: r(percentile(s, 0.99)), mean: r(s.reduce((a, b) => a + b, 0) / s.length), max: r(s[s.length - 1]!) };
    };
    const w = stats(latencies.with);
    const o = stats(latencies.without);
    const how = `${n} pods per side, one at a time, alternated ABBA on the same node; POST to the first watch event with phase Running; each pod deleted before the next${n < 100 ? `; with ${n} pods p99 is the slowest` : ''}`;
    figures.push({ name: 'create → Running with the webhook (p50 / p99)', value: `${w.p50} / ${w.p99}`, unit: 'ms', note: `${ON} (enabled; the token injected as a secretKeyRef the kubelet resolves); mean ${w.mean} ms` });
    figures.push({ name: 'create → Running without (p50 / p99)', value: `${o.p50} / ${o.p99}`, unit: 'ms', note: `${OFF} (not enabled: the namespaceSelector skips the webhook); mean ${o.mean} ms` });
    figures.push({ name: 'added by the webhook (p50 / p99)', value: `${w.p50 - o.p50} / ${w.p99 - o.p99}`, unit: 'ms', note: how });
    log(`with: ${latencies.with.map((v) => Math.round(v)).join(' ')} ms; without: ${latencies.without.map((v) => Math.round(v)).join(' ')} ms`);
  } finally {
    for (const w of watches) w.close();
    client.close();
    for (const ns of [ON, OFF]) await env.kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=120s'], { allowFailure: true });
  }
  return { scenario: 'start-latency', figures, problems };
}

export const startLatencyScenario: NodeScenario = {
  name: 'start-latency',
  title: 'agent pod start latency (create → Running), with and without the webhook, p50 and p99',
  run,
};
