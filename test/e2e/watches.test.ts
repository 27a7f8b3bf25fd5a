// Watches that end quietly, on the real API server: on a quiet cluster the service's cache
// watches (namespaces, connectors, agents) stay open until the server-side timeout the
// service asks for (KOMPUTER_WATCH_TIMEOUT_SECONDS, shortened here to 60 s), are then ended by
// kube-apiserver and restarted, with no warning logged and no failure counted
// (komputer_webhook_watch_restarts_total{reason="timeout"}; @kubernetes/client-node's Watch
// would cut them after 30 s without data). Then kube-apiserver is SIGKILLed: that is a real
// failure (a warning per failed attempt, with backoff, reason="error") and the caches recover.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startEnvironment, stopEnvironment, type Environment, type WebhookService } from './harness/index.ts';
import { log } from './harness/log.ts';
import { httpGet } from './harness/webhook.ts';
import { adminClients, pollUntil, sample, scrape, sleep, type Clients } from './fixtures/cluster.ts';
import { agentPod, INJECTED, logLinesSince, logSize, type LogLine } from './fixtures/faults/support.ts';

/** Server-side watch timeout the service is started with. */
const WATCH_TIMEOUT_S = 60;
/** The quiet window: at least two minutes (the issue), so each watch is ended at least twice. */
const QUIET_MS = 125_000;
const KINDS = ['namespaces', 'connectors', 'agents', 'policy'] as const;
/** The reflectors' `resource` log field for each kind. */
const RESOURCE: Record<(typeof KINDS)[number], string> = { namespaces: 'namespace', connectors: 'connector', agents: 'agent', policy: 'policy-configmap' };
const REASONS = ['timeout', 'expired', 'disconnect', 'error'] as const;
const RESTARTS = 'komputer_webhook_watch_restarts_total';
const WARN = 40;

let env: Environment;
let service: WebhookService;
let clients: Clients;
const figures: string[] = [];

function figure(text: string): void {
  figures.push(text);
  log(`FIGURE ${text}`);
}

type Counts = Record<(typeof KINDS)[number], Record<(typeof REASONS)[number], number>>;

async function restartCounts(): Promise<Counts> {
  const text = await scrape(service.metricsPort);
  const out = {} as Counts;
  for (const kind of KINDS) {
    out[kind] = { timeout: 0, expired: 0, disconnect: 0, error: 0 };
    for (const reason of REASONS) out[kind][reason] = sample(text, RESTARTS, { kind, reason }) ?? 0;
  }
  return out;
}

function delta(later: Counts, earlier: Counts): Counts {
  const out = {} as Counts;
  for (const kind of KINDS) {
    out[kind] = { timeout: 0, expired: 0, disconnect: 0, error: 0 };
    for (const reason of REASONS) out[kind][reason] = later[kind][reason] - earlier[kind][reason];
  }
  return out;
}

function show(c: Counts): string {
  return KINDS.map((k) => `${k} ${REASONS.map((r) => `${r}=${c[k][r]}`).join(' ')}`).join('; ');
}

function brief(line: LogLine): string {
  const { level, time, name, ...rest } = line;
  void level;
  void time;
  void name;
  return JSON.stringify(rest);
}

before(async () => {
  env = await startEnvironment({ serviceEnv: { KOMPUTER_WATCH_TIMEOUT_SECONDS: String(WATCH_TIMEOUT_S) } });
  assert.ok(env.service);
  service = env.service;
  clients = adminClients(env.kubeconfig);
  // Every series exists from the start (at 0).
  const text = await scrape(service.metricsPort);
  for (const kind of KINDS) for (const reason of REASONS) assert.notEqual(sample(text, RESTARTS, { kind, reason }), undefined, `${RESTARTS}{kind="${kind}",reason="${reason}"} is exported`);
});

after(async () => {
  if (figures.length > 0) log(`figures:\n  ${figures.join('\n  ')}`);
  await stopEnvironment();
});

test(`a quiet cluster for ${QUIET_MS / 1000} s: every watch is ended by the server at its ${WATCH_TIMEOUT_S} s timeout and restarted, without a warning`, async () => {
  const offset = await logSize(service.logFile);
  const start = await restartCounts();
  const startedAt = Date.now();
  log(`quiet window of ${QUIET_MS / 1000} s starts; restarts so far: ${show(start)}`);
  await sleep(QUIET_MS);
  const windowMs = Date.now() - startedAt;
  const counts = delta(await restartCounts(), start);
  const lines = await logLinesSince(service.logFile, offset);

  const ended = lines.filter((l) => l.msg === 'watch ended; restarting');
  const durations = (resource: string): number[] => ended.filter((l) => l.resource === resource && l['reason'] === 'timeout').map((l) => Number(l['afterMs']));
  figure(
    `quiet window ${(windowMs / 1000).toFixed(1)} s, server-side watch timeout ${WATCH_TIMEOUT_S} s: restarts ${show(counts)}; ` +
      `watch lifetimes (s): ${KINDS.map((k) => `${k} [${durations(RESOURCE[k]).map((ms) => (ms / 1000).toFixed(1)).join(', ')}]`).join('; ')}`,
  );

  const warnings = lines.filter((l) => (l.level ?? 0) >= WARN);
  assert.deepEqual(warnings.map(brief), [], 'no warning-level line in the quiet window');
  // At most one restart per resource per timeout elapsed (plus one whose timeout was already
  // running when the window opened), and at least one: the watch really was restarted, not hung.
  const most = Math.floor(windowMs / (WATCH_TIMEOUT_S * 1000)) + 1;
  for (const kind of KINDS) {
    const c = counts[kind];
    assert.ok(c.timeout >= 1 && c.timeout <= most, `${kind}: ${c.timeout} restarts at the server's timeout in ${windowMs} ms; expected 1..${most}`);
    assert.equal(c.error, 0, `${kind}: no failed list/watch attempt`);
    assert.equal(c.expired, 0, `${kind}: resumed from the last bookmark's version, no 410 relist`);
    assert.equal(c.disconnect, 0, kind);
    // The API server honours the timeoutSeconds asked for (no --min-request-timeout randomising).
    const lifetimes = durations(RESOURCE[kind]);
    assert.equal(lifetimes.length, c.timeout, `${kind}: one "watch ended" line per restart`);
    for (const ms of lifetimes) assert.ok(ms >= WATCH_TIMEOUT_S * 1000 - 1_000 && ms <= WATCH_TIMEOUT_S * 1000 + 15_000, `${kind}: a watch lived ${ms} ms, expected about ${WATCH_TIMEOUT_S} s`);
  }
});

test('kube-apiserver SIGKILLed: a warning per failed attempt with backoff, counted as error; the caches recover', async () => {
  const offset = await logSize(service.logFile);
  const start = await restartCounts();
  const stop = await env.controlPlane.stopApiServer({ signal: 'SIGKILL' });
  log(`kube-apiserver killed (${JSON.stringify(stop)}); down for 3 s`);
  await sleep(3_000);
  const startMs = await env.controlPlane.startApiServer();
  log(`kube-apiserver back after ${startMs} ms`);

  // Created after the restart: seen only if the namespace, connector and agent caches all
  // resumed (the namespace must be known as enabled, the agent's connector resolved).
  await env.createNamespace('watches-after', { enabled: true });
  await env.apply([
    { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerConnector', metadata: { name: 'late', namespace: 'watches-after' }, spec: { type: 'remote', service: 'late', url: 'https://late.example.com/mcp' } },
    { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { name: 'late-agent', namespace: 'watches-after' }, spec: { instructions: 'watches e2e: never runs', connectors: ['late'] } },
  ]);
  const seenMs = await pollUntil(
    'a pod of an agent created after the restart injected with its connector',
    async () => {
      const pod = await clients.core.createNamespacedPod({ namespace: 'watches-after', body: agentPod('watches-after', 'probe', 'late-agent'), dryRun: 'All' });
      const annotation = pod.metadata?.annotations?.[INJECTED] ?? '';
      return { ok: annotation.includes('late'), detail: `annotation ${JSON.stringify(annotation)}` };
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await pollUntil('readyz 200', async () => ({ ok: (await httpGet(`http://127.0.0.1:${service.metricsPort}/readyz`)).status === 200 }), { timeoutMs: 30_000 });

  const counts = delta(await restartCounts(), start);
  const lines = await logLinesSince(service.logFile, offset);
  const warnings = lines.filter((l) => (l.level ?? 0) >= WARN);
  figure(`API server killed, down ${((3_000 + startMs) / 1000).toFixed(1)} s; injected with a connector created afterwards ${seenMs} ms after it was back; restarts ${show(counts)}; ${warnings.length} warnings:`);
  for (const w of warnings) log(`  warning: ${brief(w)}`);

  for (const kind of KINDS) {
    const failed = warnings.filter((l) => l.resource === RESOURCE[kind] && l.msg === 'list/watch failed; retrying');
    assert.ok(failed.length >= 1, `${kind}: the failure is logged`);
    assert.equal(counts[kind].error, failed.length, `${kind}: one warning per failed attempt, each counted as reason=error`);
    // The first attempts all fall in the outage (250 + 500 ms < 3 s down): each waits twice
    // as long as the one before. (Later ones may meet an API server still starting up that
    // accepts a watch and drops it, which rightly starts the backoff over.)
    const delays = failed.map((l) => Number(l['retryInMs']));
    for (let i = 1; i < Math.min(delays.length, 3); i++) assert.equal(delays[i], delays[i - 1]! * 2, `${kind}: the backoff grows: ${delays.join(', ')}`);
  }
});
