// What the operations scenarios of `npm run bench:node` share (rolling upgrade, a killed
// replica, a node restart, no lock-out): one enabled namespace with a connector, its Secret
// and an agent; agent pods created at a steady rate through the API server, each counted as
// created and injected, created but not injected, or refused (with the API server's message);
// a watch of the chart Service's EndpointSlices with the time of every change; and the
// chart's replicas as the API server sees them.

import { execFile } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { ANNOTATION_INJECTED } from '../../src/config/names.ts';
import { NODE_IMAGES } from '../../test/e2e/harness/index.ts';
import { RELEASE_NAMESPACE } from '../../test/e2e/fixtures/helm.ts';
import type { NodeCluster } from '../../test/e2e/fixtures/node-chart.ts';
import { apiClient, type Client } from '../api.ts';

/** The chart's fixed object name (Deployment, Service, webhook configurations). */
export const CHART_NAME = 'komputer-connector-webhook';
export const REPLICA_SELECTOR = 'app.kubernetes.io/name=komputer-connector-webhook,app.kubernetes.io/component=webhook';
export const OPS_NAMESPACE = 'node-ops';
export const OPS_AGENT = 'ops-agent';
/** Every pod a scenario creates carries it, so one delete-collection removes them. */
export const LOAD_LABEL = 'komputer.ai/bench-load';
const API = 'komputer.komputer.ai/v1alpha1';
const TOKEN = 'ghp_NODEOPSCANARY0123456789abcdef';
// Load pods are admitted but never scheduled (a scheduling gate): the webhook sees exactly
// what it sees for a real agent pod, and the node does not start hundreds of containers.
const HOLD_GATE = 'komputer.ai/bench-hold';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Ops {
  readonly cluster: NodeCluster;
  /** Keep-alive admin client of the API server. */
  readonly client: Client;
}

const shared = new WeakMap<NodeCluster, Promise<Ops>>();

/**
 * The shared namespace (created once per cluster): enabled for injection, a Secret, the
 * connector `github` (token auth) and the agent OPS_AGENT using it; resolves once a dry-run
 * agent pod comes back injected (the replicas' caches have both).
 */
export function opsSetup(cluster: NodeCluster): Promise<Ops> {
  let setup = shared.get(cluster);
  if (setup === undefined) {
    setup = (async () => {
      const { env } = cluster;
      await env.createNamespace(OPS_NAMESPACE, { enabled: true });
      await env.apply([
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gh', namespace: OPS_NAMESPACE }, type: 'Opaque', stringData: { token: TOKEN } },
        {
          apiVersion: API,
          kind: 'KomputerConnector',
          metadata: { name: 'github', namespace: OPS_NAMESPACE },
          spec: { type: 'remote', service: 'github', url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'gh', key: 'token' } },
        },
        { apiVersion: API, kind: 'KomputerAgent', metadata: { name: OPS_AGENT, namespace: OPS_NAMESPACE }, spec: { instructions: 'bench:node operations', connectors: ['github'] } },
      ]);
      // Enough sockets for the creates a slow webhook keeps in flight (up to its timeout).
      const ops: Ops = { cluster, client: apiClient(env, 48) };
      await untilInjecting(ops, 60_000);
      return ops;
    })();
    setup.catch(() => shared.delete(cluster));
    shared.set(cluster, setup);
  }
  return setup;
}

export interface PodOptions {
  /** An agent pod (the komputer.ai/squad and agent labels the operator sets); else a plain pod. */
  readonly agent?: boolean;
  /** Scheduled and started by the node (default false: held by a scheduling gate). */
  readonly run?: boolean;
  /** Value of LOAD_LABEL (which run created it). */
  readonly load: string;
  readonly namePrefix?: string;
}

/** A pod as the platform's operator creates an agent's (or a plain pod, `agent: false`). */
export function podBody(options: PodOptions): Record<string, unknown> {
  const agent = options.agent !== false;
  const labels: Record<string, string> = { [LOAD_LABEL]: options.load };
  if (agent) Object.assign(labels, { 'komputer.ai/agent-name': OPS_AGENT, 'komputer.ai/squad': 'false', [`komputer.ai/member-${OPS_AGENT}`]: 'true' });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: `${options.namePrefix ?? (agent ? OPS_AGENT : 'plain')}-`, labels },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      ...(options.run === true ? {} : { schedulingGates: [{ name: HOLD_GATE }] }),
      containers: [{ name: 'agent', image: NODE_IMAGES.probe, imagePullPolicy: 'Never', args: ['sleep'] }],
    },
  };
}

interface StoredPod {
  metadata?: { name?: string; annotations?: Record<string, string> };
  spec?: { containers?: { env?: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[] }[] };
}

/** Stored as the webhook leaves an agent pod of OPS_AGENT: its connector's config and token reference. */
export function isInjected(pod: StoredPod): boolean {
  const env = pod.spec?.containers?.[0]?.env ?? [];
  const token = env.find((e) => e.name === 'CONNECTOR_GITHUB_TOKEN')?.valueFrom?.secretKeyRef;
  return pod.metadata?.annotations?.[ANNOTATION_INJECTED] === 'github' && env.some((e) => e.name === 'KOMPUTER_MCP_SERVERS') && token?.name === 'gh' && token.key === 'token';
}

export interface Attempt {
  /** When the create was sent (epoch ms). */
  readonly at: number;
  readonly ms: number;
  /** HTTP status (0: no answer from the API server). */
  readonly status: number;
  readonly name?: string;
  readonly injected?: boolean;
  /** The API server's message (Status.message) for a refusal. */
  readonly message?: string;
}

function statusMessage(text: string): string {
  try {
    const status = JSON.parse(text) as { message?: string };
    if (typeof status.message === 'string') return status.message;
  } catch {
    // not a Status
  }
  return text.slice(0, 500);
}

/** POSTs one pod (optionally as a dry run) and classifies the answer. */
export async function createPod(ops: Ops, namespace: string, body: Record<string, unknown>, options: { dryRun?: boolean } = {}): Promise<Attempt> {
  const at = Date.now();
  try {
    const r = await ops.client.request('POST', `/api/v1/namespaces/${namespace}/pods${options.dryRun === true ? '?dryRun=All' : ''}`, JSON.stringify(body));
    if (r.status === 201 || r.status === 200) {
      const pod = JSON.parse(r.text) as StoredPod;
      return { at, ms: r.ms, status: r.status, name: pod.metadata?.name ?? '', injected: isInjected(pod) };
    }
    return { at, ms: r.ms, status: r.status, message: statusMessage(r.text) };
  } catch (error) {
    return { at, ms: Date.now() - at, status: 0, message: error instanceof Error ? error.message : String(error) };
  }
}

/** Until a dry-run agent pod comes back injected (the webhook serves and knows the agent). */
export async function untilInjecting(ops: Ops, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  let last: Attempt | undefined;
  while (Date.now() - t0 < timeoutMs) {
    last = await createPod(ops, OPS_NAMESPACE, podBody({ load: 'probe' }), { dryRun: true });
    if (last.injected === true) return Date.now() - t0;
    await sleep(250);
  }
  throw new Error(`no injected agent pod within ${timeoutMs} ms; last answer: ${JSON.stringify(last)}`);
}

export interface LoadSummary {
  readonly attempts: readonly Attempt[];
  readonly created: number;
  readonly refused: readonly Attempt[];
  /** Created agent pods the webhook did not inject (admitted without their connectors). */
  readonly notInjected: readonly Attempt[];
  /** Each distinct refusal message and how often. */
  readonly messages: readonly { message: string; count: number }[];
}

export function summarise(attempts: readonly Attempt[]): LoadSummary {
  const created = attempts.filter((a) => a.name !== undefined);
  const refused = attempts.filter((a) => a.name === undefined);
  const counts = new Map<string, number>();
  for (const a of refused) counts.set(a.message ?? '', (counts.get(a.message ?? '') ?? 0) + 1);
  return {
    attempts,
    created: created.length,
    refused,
    notInjected: created.filter((a) => a.injected !== true),
    messages: [...counts].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count),
  };
}

export interface CreationLoad {
  readonly attempts: readonly Attempt[];
  /** Stops creating, waits for the creates in flight, summarises. */
  stop(): Promise<LoadSummary>;
}

/**
 * Agent pods created at `perSecond` in OPS_NAMESPACE, on a fixed schedule (a slow answer does
 * not slow the rate: creates overlap, as the operator's workers would).
 */
export function startCreationLoad(ops: Ops, options: { perSecond: number; load: string; run?: boolean }): CreationLoad {
  const attempts: Attempt[] = [];
  const inFlight = new Set<Promise<void>>();
  const interval = 1000 / options.perSecond;
  const started = Date.now();
  let sent = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    if (stopped) return;
    const p = createPod(ops, OPS_NAMESPACE, podBody({ load: options.load, ...(options.run === undefined ? {} : { run: options.run }) })).then((a) => void attempts.push(a));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    sent++;
    timer = setTimeout(tick, Math.max(0, started + sent * interval - Date.now()));
  };
  tick();
  return {
    attempts,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await Promise.all([...inFlight]);
      return summarise([...attempts].sort((a, b) => a.at - b.at));
    },
  };
}

/** Deletes every pod a scenario created (LOAD_LABEL=`load`) and waits until they are gone. */
export async function deleteLoad(ops: Ops, load: string, namespaces: readonly string[] = [OPS_NAMESPACE]): Promise<void> {
  const selector = encodeURIComponent(`${LOAD_LABEL}=${load}`);
  for (const ns of namespaces) {
    const r = await ops.client.request('DELETE', `/api/v1/namespaces/${ns}/pods?labelSelector=${selector}`);
    if (r.status !== 200) throw new Error(`deleting the ${load} pods in ${ns}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  }
  const deadline = Date.now() + 120_000;
  for (const ns of namespaces) {
    for (;;) {
      const r = await ops.client.request('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=${selector}&limit=1`);
      if (r.status === 200 && (JSON.parse(r.text) as { items: unknown[] }).items.length === 0) break;
      if (Date.now() > deadline) throw new Error(`the ${load} pods in ${ns} are still there after 120 s`);
      await sleep(500);
    }
  }
}

// --- the chart's replicas ------------------------------------------------------------------------

export interface Replica {
  readonly name: string;
  readonly uid: string;
  readonly ip: string;
  readonly ready: boolean;
  readonly terminating: boolean;
  readonly restarts: number;
  /** The webhook container's id in containerd (without the `containerd://` prefix). */
  readonly containerId: string;
  readonly templateHash: string;
}

interface PodList {
  items: {
    metadata: { name: string; uid: string; deletionTimestamp?: string; labels?: Record<string, string> };
    status?: {
      podIP?: string;
      conditions?: { type: string; status: string }[];
      containerStatuses?: { name: string; restartCount: number; containerID?: string }[];
    };
  }[];
}

export async function replicas(ops: Ops): Promise<Replica[]> {
  const r = await ops.client.request('GET', `/api/v1/namespaces/${RELEASE_NAMESPACE}/pods?labelSelector=${encodeURIComponent(REPLICA_SELECTOR)}`);
  if (r.status !== 200) throw new Error(`listing the replicas: HTTP ${r.status}`);
  return (JSON.parse(r.text) as PodList).items.map((p) => {
    const container = p.status?.containerStatuses?.find((c) => c.name === 'webhook');
    return {
      name: p.metadata.name,
      uid: p.metadata.uid,
      ip: p.status?.podIP ?? '',
      ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
      terminating: p.metadata.deletionTimestamp !== undefined,
      restarts: container?.restartCount ?? 0,
      containerId: (container?.containerID ?? '').replace(/^containerd:\/\//, ''),
      templateHash: p.metadata.labels?.['pod-template-hash'] ?? '',
    };
  });
}

/** Until exactly `count` replicas exist, all Ready, none terminating (and `ok` holds); returns them. */
export async function untilReplicas(ops: Ops, count: number, timeoutMs: number, ok: (rs: Replica[]) => boolean = () => true): Promise<Replica[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rs = await replicas(ops);
    if (rs.length === count && rs.every((r) => r.ready && !r.terminating) && ok(rs)) return rs;
    if (Date.now() > deadline) throw new Error(`replicas not settled at ${count} Ready after ${timeoutMs} ms: ${JSON.stringify(rs)}`);
    await sleep(250);
  }
}

/** The cluster as every scenario finds and leaves it: 2 replicas Ready and injecting. */
export async function untilSettled(ops: Ops, timeoutMs = 180_000): Promise<void> {
  const t0 = Date.now();
  await untilReplicas(ops, 2, timeoutMs);
  await untilInjecting(ops, Math.max(10_000, timeoutMs - (Date.now() - t0)));
}

/** Pod admissions a replica has answered so far (its /metrics, through the API server's pod proxy). */
export async function podAdmissions(ops: Ops, pod: string, metricsPort = 9090): Promise<number> {
  const r = await ops.client.request('GET', `/api/v1/namespaces/${RELEASE_NAMESPACE}/pods/${pod}:${metricsPort}/proxy/metrics`);
  if (r.status !== 200) return Number.NaN;
  let total = 0;
  for (const line of r.text.split('\n')) {
    if (line.startsWith('komputer_webhook_admission_requests_total{') && line.includes('path="/mutate/pods"')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

// --- the Service's endpoints ---------------------------------------------------------------------

export interface EndpointState {
  readonly ip: string;
  readonly pod: string;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
}

export interface EndpointChange {
  /** When the watch event arrived (epoch ms). */
  readonly at: number;
  readonly endpoints: readonly EndpointState[];
}

export interface EndpointWatch {
  /** Every change of the Service's endpoints, the first being the state when the watch began. */
  readonly changes: readonly EndpointChange[];
  /** The first change at or after `since` for which `ok` holds (waits for it). */
  until(what: string, ok: (endpoints: readonly EndpointState[]) => boolean, options: { since: number; timeoutMs: number }): Promise<EndpointChange>;
  stop(): void;
}

interface EndpointSlice {
  metadata: { name: string; resourceVersion: string };
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean }; targetRef?: { name?: string } }[];
}

/** Watches the EndpointSlices of the chart's Service (list, then watch; re-listed if the watch ends). */
export function watchEndpoints(ops: Ops): EndpointWatch {
  const { controlPlane } = ops.cluster.env;
  const url = new URL(controlPlane.server);
  const base = `/apis/discovery.k8s.io/v1/namespaces/${RELEASE_NAMESPACE}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${CHART_NAME}`)}`;
  const slices = new Map<string, EndpointSlice>();
  const changes: EndpointChange[] = [];
  const waiters = new Set<() => void>();
  let stopped = false;
  let current: import('node:http').ClientRequest | undefined;

  const record = (): void => {
    const endpoints = [...slices.values()]
      .flatMap((s) => s.endpoints ?? [])
      .flatMap((e) => e.addresses.map((ip) => ({ ip, pod: e.targetRef?.name ?? '', ready: e.conditions?.ready === true, serving: e.conditions?.serving === true, terminating: e.conditions?.terminating === true })))
      .sort((a, b) => a.ip.localeCompare(b.ip));
    const last = changes.at(-1);
    if (last !== undefined && JSON.stringify(last.endpoints) === JSON.stringify(endpoints)) return;
    changes.push({ at: Date.now(), endpoints });
    for (const w of waiters) w();
  };

  const loop = async (): Promise<void> => {
    while (!stopped) {
      try {
        const list = await ops.client.request('GET', base);
        if (list.status !== 200) throw new Error(`HTTP ${list.status}`);
        const parsed = JSON.parse(list.text) as { metadata: { resourceVersion: string }; items: EndpointSlice[] };
        slices.clear();
        for (const s of parsed.items) slices.set(s.metadata.name, s);
        record();
        await new Promise<void>((resolve) => {
          const req = httpsRequest(
            {
              host: url.hostname,
              port: url.port,
              path: `${base}&watch=1&allowWatchBookmarks=false&resourceVersion=${parsed.metadata.resourceVersion}`,
              headers: { authorization: `Bearer ${controlPlane.adminToken}`, accept: 'application/json' },
              ca: controlPlane.caCert,
            },
            (res) => {
              let buffer = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => {
                buffer += chunk;
                let newline: number;
                while ((newline = buffer.indexOf('\n')) >= 0) {
                  const line = buffer.slice(0, newline);
                  buffer = buffer.slice(newline + 1);
                  if (line.trim() === '') continue;
                  const event = JSON.parse(line) as { type: string; object: EndpointSlice };
                  if (event.type === 'ADDED' || event.type === 'MODIFIED') slices.set(event.object.metadata.name, event.object);
                  else if (event.type === 'DELETED') slices.delete(event.object.metadata.name);
                  else continue; // ERROR (e.g. expired): the stream ends and we re-list
                  record();
                }
              });
              res.on('end', resolve);
              res.on('close', resolve);
              res.on('error', () => resolve());
            },
          );
          req.on('error', () => resolve());
          current = req;
          req.end();
        });
      } catch {
        // Unreferenced: a watch left open by a failed scenario never keeps the process alive.
        await new Promise((r) => setTimeout(r, 500).unref());
      }
    }
  };
  void loop();

  return {
    changes,
    until(what, ok, options) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          // The state in force at `since`, then every change after it.
          const inForce = changes.filter((c) => c.at <= options.since).at(-1);
          const candidates = [...(inForce === undefined ? [] : [inForce]), ...changes.filter((c) => c.at > options.since)];
          const found = candidates.find((c) => ok(c.endpoints));
          if (found === undefined) return false;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(found);
          return true;
        };
        const waiter = (): void => void check();
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${what}: not within ${options.timeoutMs} ms; endpoint changes: ${JSON.stringify(changes.slice(-6))}`));
        }, options.timeoutMs);
        waiters.add(waiter);
        check();
      });
    },
    stop() {
      stopped = true;
      current?.destroy();
    },
  };
}

/** The fewest ready endpoints between `from` and `to` (the state in force at `from` counts). */
export function minReadyEndpoints(changes: readonly EndpointChange[], from: number, to: number): number {
  const before = changes.filter((c) => c.at <= from).at(-1);
  const during = changes.filter((c) => c.at > from && c.at <= to);
  const states = [...(before === undefined ? [] : [before]), ...during];
  return Math.min(...states.map((c) => c.endpoints.filter((e) => e.ready).length));
}

// --- kube-proxy ---------------------------------------------------------------------------------

/** The node's NAT rules as kube-proxy (iptables mode) wrote them. */
function natRules(): Promise<string> {
  return new Promise((resolve, reject) => execFile('iptables-save', ['-t', 'nat'], { maxBuffer: 16 * 2 ** 20 }, (error, stdout) => (error ? reject(error) : resolve(stdout))));
}

/** The chart's default webhook.port (the pods' HTTPS port behind the Service's 443). */
export const WEBHOOK_PORT = 8443;

/** Whether kube-proxy sends a Service's traffic to `ip:port` (a DNAT rule to it). */
export async function proxySends(ip: string, port: number): Promise<boolean> {
  return (await natRules()).includes(`--to-destination ${ip}:${port}`);
}

/**
 * Polls (every 100 ms) until kube-proxy no longer sends a Service's traffic to `ip:port`
 * (no DNAT rule to it): when the path from the API server to that pod is gone. Epoch ms, or
 * undefined if it still sends after `timeoutMs`.
 */
export async function untilProxyDrops(ip: string, port: number, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const at = Date.now();
    if (!(await proxySends(ip, port))) return at;
    if (Date.now() > deadline) return undefined;
    await sleep(100);
  }
}

/** Until kube-proxy sends nothing to `port` of any pod (every DNAT rule to it gone); epoch ms. */
export async function untilNoProxyTarget(port: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const pattern = new RegExp(`--to-destination \\d+\\.\\d+\\.\\d+\\.\\d+:${port}\\b`);
  for (;;) {
    const at = Date.now();
    if (!pattern.test(await natRules())) return at;
    if (Date.now() > deadline) throw new Error(`kube-proxy still sends to port ${port} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

export interface ProxyWatch {
  /** Each time a pod IP's DNAT rule (to `port`) left the rules after being there (epoch ms of the poll that saw it gone). */
  readonly drops: readonly { readonly ip: string; readonly at: number }[];
  stop(): Promise<void>;
}

/** Polls the NAT rules every `intervalMs` and records when each `<ip>:<port>` target leaves them. */
export function watchProxy(port: number, intervalMs = 200): ProxyWatch {
  let present = new Set<string>();
  const drops: { ip: string; at: number }[] = [];
  const pattern = new RegExp(`--to-destination (\\d+\\.\\d+\\.\\d+\\.\\d+):${port}\\b`, 'g');
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const at = Date.now();
      const rules = await natRules().catch(() => undefined);
      if (rules !== undefined) {
        const now = new Set([...rules.matchAll(pattern)].map((m) => m[1]!));
        for (const ip of present) if (!now.has(ip)) drops.push({ ip, at });
        present = now;
      }
      await sleep(intervalMs);
    }
  })();
  return {
    drops,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

// --- figures ------------------------------------------------------------------------------------

export const seconds = (ms: number): number => Math.round(ms / 100) / 10;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** "3× `message`; 1× `other`" for notes (messages quoted as the API server sent them). */
export function quoteMessages(summary: LoadSummary): string {
  return summary.messages.map((m) => `${m.count}× "${m.message}"`).join('; ');
}
