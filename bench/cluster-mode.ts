// The gate's cluster mode: servers that run as clusters run them, from a real kube-apiserver +
// etcd (the e2e harness's control plane): watch caches, the controller, and Events recorded
// for every admission (the benchmarked pod's agent gets its ConnectorsInjected Event). The
// cluster holds the benchmarked agent, its 3 connectors and 3 more, in an enabled namespace.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startEnvironment, stopEnvironment } from '../test/e2e/harness/index.ts';
import { binDir } from '../test/e2e/harness/paths.ts';
import { BENCH_AGENT, BENCH_CONNECTORS, BENCH_NAMESPACE } from './fixtures.ts';
import { PIN } from './load.ts';
import type { Starter, Workspace } from './pair.ts';
import { cpuMicros } from './proc.ts';
import { scrape } from '../test/e2e/fixtures/cluster.ts';
import { sampleSum } from '../test/helpers/prometheus.ts';

const API = 'komputer.komputer.ai/v1alpha1';
const SERVER_CPU = 0;

/** Whether the control plane's binaries are built here. */
export function controlPlaneBuilt(): boolean {
  return ['kube-apiserver', 'etcd', 'kubectl'].every((b) => existsSync(join(binDir, b)));
}

/** Waits until the process is quiet (under 5% of a core over 1 s; at most 30 s): the initial sync done. */
async function quiesce(pid: number): Promise<void> {
  const started = performance.now();
  for (;;) {
    const before = cpuMicros(pid);
    await new Promise((r) => setTimeout(r, 1000));
    if (cpuMicros(pid) - before < 50_000 || performance.now() - started > 30_000) return;
  }
}

export async function clusterStarter(_ws: Workspace, say: (m: string) => void): Promise<{ start: Starter; stop: () => Promise<void> } | undefined> {
  if (!controlPlaneBuilt()) return undefined;
  say('cluster mode: starting kube-apiserver + etcd');
  const env = await startEnvironment({ name: 'bench-pair', serviceEnv: { LOG_LEVEL: 'info' } });
  // The harness's own service is not measured; the pairs start theirs.
  await env.service?.stop();
  await env.createNamespace(BENCH_NAMESPACE, { enabled: true });
  const extra = [
    { name: 'jira', service: 'jira', url: 'https://mcp.atlassian.example.com/v1/mcp' },
    { name: 'linear', service: 'linear', url: 'https://mcp.linear.example.com/mcp' },
    { name: 'sentry', service: 'sentry', url: 'https://mcp.sentry.example.com/mcp' },
  ];
  await env.apply([
    ...BENCH_CONNECTORS.map((c) => ({ apiVersion: API, kind: 'KomputerConnector', metadata: { name: c.name, namespace: BENCH_NAMESPACE }, spec: { type: 'remote', service: c.service, url: c.url, authType: c.authType, authSecretKeyRef: { name: c.secret.name, key: c.secret.key } } })),
    ...extra.map((c) => ({ apiVersion: API, kind: 'KomputerConnector', metadata: { name: c.name, namespace: BENCH_NAMESPACE }, spec: { type: 'remote', service: c.service, url: c.url, authType: 'token', authSecretKeyRef: { name: `${c.name}-token`, key: 'token' } } })),
    { apiVersion: API, kind: 'KomputerAgent', metadata: { name: BENCH_AGENT, namespace: BENCH_NAMESPACE }, spec: { instructions: 'bench agent: never runs', connectors: BENCH_CONNECTORS.map((c) => c.name) } },
    { apiVersion: API, kind: 'KomputerAgent', metadata: { name: 'reviewer', namespace: BENCH_NAMESPACE }, spec: { instructions: 'bench agent: never runs', connectors: ['jira', 'linear'] } },
    { apiVersion: API, kind: 'KomputerAgent', metadata: { name: 'triager', namespace: BENCH_NAMESPACE }, spec: { instructions: 'bench agent: never runs', connectors: ['sentry', BENCH_CONNECTORS[0]!.name] } },
  ]);
  let serial = 0;
  const start: Starter = async (build, profileDir) => {
    const flags = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
    const { SERVE_NODE_FLAGS } = await import('../src/server/node-flags.ts');
    const service = await env.createService({
      name: `pair-${++serial}`,
      serviceEnv: { LOG_LEVEL: 'info' },
      nodeFlags: [...SERVE_NODE_FLAGS, ...flags],
      entryPoint: join(build.root, 'dist', 'src', 'cli', 'main.js'),
      readyTimeoutMs: 60_000,
    });
    await service.start();
    const pid = service.process!.pid;
    if (PIN && spawnSync('taskset', ['-a', '-cp', String(SERVER_CPU), String(pid)], { stdio: 'ignore' }).status !== 0) say('note: could not pin a service to the server core');
    await quiesce(pid);
    const stop = async (): Promise<void> => {
      // Proof that the mode is the cluster's: the Events this server wrote (or dropped by its rate limit).
      const text = await scrape(service.metricsPort).catch(() => '');
      const written = sampleSum(text, 'komputer_webhook_events_written_total');
      const dropped = sampleSum(text, 'komputer_webhook_events_dropped_total');
      say(`  ${build.label}: Events written ${written}, dropped ${dropped} (the recorder's aggregation and rate limit)${text.includes('komputer_webhook_events_written_total') ? '' : ' (this build has no Event recorder)'}`);
      await service.stop();
    };
    return { pid, port: service.port, stop };
  };
  return { start, stop: () => stopEnvironment() };
}
