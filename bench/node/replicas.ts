// The chart's replicas as the node runs them, for the node scenarios: their pods (restarts,
// why the last container ended), their memory as the kernel counts it against the limit
// (the container's cgroup v1 files), their /metrics through the API server's pod proxy, and
// putting the chart back at its defaults.

import { readFileSync, existsSync } from 'node:fs';
import { localImageSets, type NodeCluster } from '../../test/e2e/fixtures/node-chart.ts';
import { CHART_DIR, RELEASE, RELEASE_NAMESPACE } from '../../test/e2e/fixtures/helm.ts';
import type { Environment } from '../../test/e2e/harness/index.ts';
import { parseCgroupMemory, type CgroupMemory } from './measure.ts';

export const REPLICA_SELECTOR = 'app.kubernetes.io/name=komputer-connector-webhook,app.kubernetes.io/component=webhook';
export const SERVICE_NAME = 'komputer-connector-webhook';
const METRICS_PORT = 9090;
const MIB = 2 ** 20;

export interface ReplicaPod {
  readonly name: string;
  readonly uid: string;
  /** containerd's id of the running (or last) container, '' before it started. */
  readonly containerId: string;
  readonly ready: boolean;
  readonly restartCount: number;
  /** state.terminated.reason or lastState.terminated.reason (e.g. OOMKilled), '' if none. */
  readonly terminatedReason: string;
  readonly terminatedExitCode: number | undefined;
  /** state.waiting.reason (e.g. CrashLoopBackOff), '' if none. */
  readonly waitingReason: string;
  readonly limitMemory: string;
  readonly deleting: boolean;
}

interface PodJson {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { containers: { resources?: { limits?: Record<string, string> } }[] };
  status?: {
    conditions?: { type: string; status: string }[];
    containerStatuses?: {
      containerID?: string;
      restartCount: number;
      state?: { terminated?: { reason?: string; exitCode?: number }; waiting?: { reason?: string } };
      lastState?: { terminated?: { reason?: string; exitCode?: number } };
    }[];
  };
}

export async function replicaPods(env: Environment): Promise<ReplicaPod[]> {
  const r = await env.kubectl(['get', 'pods', '-n', RELEASE_NAMESPACE, '-l', REPLICA_SELECTOR, '-o', 'json']);
  return (JSON.parse(r.stdout) as { items: PodJson[] }).items.map((p) => {
    const cs = p.status?.containerStatuses?.[0];
    const terminated = cs?.state?.terminated ?? cs?.lastState?.terminated;
    return {
      name: p.metadata.name,
      uid: p.metadata.uid,
      containerId: (cs?.containerID ?? '').replace(/^[a-z]+:\/\//, ''),
      ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      restartCount: cs?.restartCount ?? 0,
      terminatedReason: terminated?.reason ?? '',
      terminatedExitCode: terminated?.exitCode,
      waitingReason: cs?.state?.waiting?.reason ?? '',
      limitMemory: p.spec.containers[0]?.resources?.limits?.['memory'] ?? '',
      deleting: p.metadata.deletionTimestamp !== undefined,
    };
  });
}

/** The container's memory cgroup directory (cgroup v1, cgroupfs driver), or undefined. */
export function containerCgroupDir(pod: ReplicaPod): string | undefined {
  if (pod.containerId === '') return undefined;
  for (const qos of ['burstable/', 'besteffort/', '']) {
    const dir = `/sys/fs/cgroup/memory/kubepods/${qos}pod${pod.uid}/${pod.containerId}`;
    if (existsSync(dir)) return dir;
  }
  return undefined;
}

/** The replica's container memory from its cgroup, or undefined when the container is not running. */
export function replicaMemory(pod: ReplicaPod): CgroupMemory | undefined {
  const dir = containerCgroupDir(pod);
  if (dir === undefined) return undefined;
  try {
    const read = (f: string): string => readFileSync(`${dir}/${f}`, 'utf8');
    return parseCgroupMemory({ usage: read('memory.usage_in_bytes'), stat: read('memory.stat'), peak: read('memory.max_usage_in_bytes'), limit: read('memory.limit_in_bytes'), failcnt: read('memory.failcnt') });
  } catch {
    return undefined; // the container ended between the listing and the read
  }
}

export const mib = (bytes: number): number => Math.round((bytes / MIB) * 10) / 10;

/** The replica's /metrics (its plain-HTTP port) through the API server's pod proxy. */
export async function replicaMetrics(env: Environment, pod: string): Promise<string> {
  return (await env.kubectl(['get', '--raw', `/api/v1/namespaces/${RELEASE_NAMESPACE}/pods/${pod}:${METRICS_PORT}/proxy/metrics`])).stdout;
}

/** Scales the chart's Deployment (the replica count helm renders is 2; 2 puts it back). */
export async function scaleReplicas(env: Environment, replicas: number): Promise<void> {
  await env.kubectl(['scale', 'deployment', SERVICE_NAME, '-n', RELEASE_NAMESPACE, `--replicas=${replicas}`]);
}

/** Two Ready replicas of the current template and no other pod. */
export async function twoReady(env: Environment): Promise<boolean> {
  const pods = await replicaPods(env);
  return pods.length === 2 && pods.every((p) => p.ready && !p.deleting);
}

/**
 * `helm upgrade` back to the chart's defaults (from the local image) and waits for 2 Ready
 * replicas: how every scenario leaves the cluster. Returns the milliseconds it took.
 */
export async function restoreDefaults(cluster: NodeCluster, timeoutSeconds = 300): Promise<number> {
  const t0 = Date.now();
  // --install: a scenario may have failed between an uninstall and the next install.
  const r = await cluster.helm.run(['upgrade', '--install', RELEASE, CHART_DIR, '-n', RELEASE_NAMESPACE, ...localImageSets(), '--wait', '--timeout', `${timeoutSeconds}s`], { allowFailure: true, timeoutMs: (timeoutSeconds + 60) * 1000 });
  if (r.code !== 0) throw new Error(`helm upgrade to the defaults failed: ${r.stderr}`);
  const deadline = Date.now() + timeoutSeconds * 1000;
  while (!(await twoReady(cluster.env))) {
    if (Date.now() > deadline) throw new Error(`2 Ready replicas not back ${timeoutSeconds} s after the upgrade to the defaults`);
    await new Promise((res) => setTimeout(res, 500));
  }
  return Date.now() - t0;
}

