// Faults with the real API server (issue 8), each one real, while agent pods are created
// through kube-apiserver and every stored pod is checked against an independent model of
// SPEC.md "What gets injected":
//
//   1. the watch is cut: (a) plain disconnects (every connection between the service and the
//      API server reset by a TCP proxy in between; then blocked for seconds: the service keeps
//      answering from its cache and catches up), (b) 410 Gone: etcd's history compacted while
//      the service was cut off and objects changed and deleted meanwhile: it relists and sees
//      every change, including the deletion no watch can replay.
//   2. kube-apiserver restarted (same port, certificates and etcd) while the service runs:
//      readiness drops and returns, the caches resync, a connector changed right after the
//      restart is reflected, and every agent pod created meanwhile is injected exactly.
//   3. one of two replicas behind HAProxy (Debian's package; TCP passthrough, health checks
//      on /readyz) SIGKILLed during a burst of agent pods, restarted, then the other one
//      killed: every created pod is stored injected; none is stored without injection.
//   4. the serving certificate rotated under load (files mode): rewritten in place (the pair
//      mismatched for a while), then moved to a new CA: zero failed admission requests.
//
// The closing line gives the counts: faults injected, pods created under faults, failed
// creations (each retried by the client), wrong or lost injections (must be 0).
// Needs haproxy (fixtures/faults/haproxy.ts installs Debian's package when root and missing).

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { generateCertificates } from '../../src/certs/generate.ts';
import { startEnvironment, stopEnvironment, type Environment, type WebhookService } from './harness/index.ts';
import { log } from './harness/log.ts';
import { freePort } from './harness/ports.ts';
import { httpGet } from './harness/webhook.ts';
import { sampleSum, sumBy } from '../helpers/prometheus.ts';
import { adminClients, expectedStatuses, mapLimit, pollUntil, scrape, servedCertificate, sleep, waitForCounts, type Clients } from './fixtures/cluster.ts';
import { etcdCompact, etcdRevision } from './fixtures/faults/etcd.ts';
import { ensureHaproxy, startHaproxy } from './fixtures/faults/haproxy.ts';
import {
  agentPod,
  createWithRetry,
  expectedInjection,
  injectionProblem,
  listPods,
  logLinesSince,
  logSize,
  monitorReadiness,
  USER_ENV,
  type ConnectorSpec,
  type CreateOutcome,
  type ExpectedInjection,
} from './fixtures/faults/support.ts';
import { startTcpProxy, type TcpProxy } from './fixtures/faults/tcp-proxy.ts';
import { patchEveryWebhook, setWebhookBundles as setBundlesOfEveryWebhook, webhookConfig, WEBHOOK_KINDS, type WebhookKind } from './fixtures/webhook-configs.ts';

const NS = 'faults';
const API = 'komputer.komputer.ai/v1alpha1';
const PHASE = 'faults.e2e/phase';
const WEBHOOK_CONFIG = 'komputer-connector-webhook';
const RELOAD_MS = 500;
const INJECTED_ANNOTATION = 'komputer.ai/injected-connectors';

let env: Environment;
let clients: Clients;
let proxy: TcpProxy;
/** The service under test: the harness's service replaced by one that reaches the API server through `proxy`. */
let primary: WebhookService;

// --- the model: connectors and agents in NS ------------------------------------------------

const connectors: Record<string, ConnectorSpec> = {
  github: { url: 'https://api.githubcopilot.com/mcp/', authType: 'token', secret: { name: 'github-token', key: 'token' } },
  slack: { url: 'https://mcp.slack.com/mcp', authType: 'token', secret: { name: 'slack-token', key: 'xoxp' } },
  docs: { url: 'http://docs-mcp.tools.svc:8080/v1/mcp', authType: 'oauth' },
  spare: { url: 'http://spare-mcp.tools.svc:8080/mcp' },
};
const agents: Record<string, string[]> = {
  worker: ['github', 'slack'],
  'docs-user': ['docs'],
  'spare-user': ['spare'],
};

function connectorObject(name: string): object {
  const c = connectors[name];
  assert.ok(c, `model has connector ${name}`);
  return {
    apiVersion: API,
    kind: 'KomputerConnector',
    metadata: { name, namespace: NS },
    spec: { type: 'remote', service: name, url: c.url, ...(c.authType ? { authType: c.authType } : {}), ...(c.secret ? { authSecretKeyRef: c.secret } : {}) },
  };
}

function agentObject(name: string): object {
  return { apiVersion: API, kind: 'KomputerAgent', metadata: { name, namespace: NS }, spec: { instructions: 'fault e2e agent: never runs', connectors: agents[name] } };
}

/** What a pod of `agent` must get now, per the model (connectors missing from it are skipped). */
function expected(agent: string): ExpectedInjection {
  return expectedInjection(connectors, (agents[agent] ?? []).filter((ref) => ref in connectors));
}

function expectedCounts(): Map<string, string[]> {
  return expectedStatuses(
    Object.keys(connectors).map((name) => ({ namespace: NS, name, sharedWith: [] })),
    Object.entries(agents).map(([name, refs]) => ({ namespace: NS, name, connectors: refs })),
  );
}

// --- the tally -----------------------------------------------------------------------------

const faults: string[] = [];
const figures: string[] = [];
/** Every agent pod created in this file, by name, with the injection it was checked against. */
const createdPods = new Map<string, ExpectedInjection>();
const tally = { podsUnderFaults: 0, dryRunVerdicts: 0, dryRunFailures: 0, refusedAttempts: 0, transportErrors: 0, retriedPods: 0, neverCreated: [] as string[], wrong: [] as string[] };
const refusals: string[] = [];

function fault(what: string): void {
  faults.push(what);
  log(`FAULT #${faults.length}: ${what}`);
}

function figure(text: string): void {
  figures.push(text);
  log(`FIGURE ${text}`);
}

function account(name: string, outcome: CreateOutcome): void {
  tally.refusedAttempts += outcome.refused.length;
  tally.transportErrors += outcome.transport.length;
  if (outcome.attempts > 1) tally.retriedPods++;
  for (const r of outcome.refused) if (refusals.length < 8) refusals.push(`${name}: ${r}`);
  if (outcome.pod === undefined) tally.neverCreated.push(`${name}: not created after ${outcome.attempts} attempts (${[...outcome.refused, ...outcome.transport].at(-1) ?? ''})`);
  else tally.podsUnderFaults++;
}

/** Creates one agent pod (client retries included) and checks it against `want`. */
async function createChecked(phase: string, name: string, agent: string, want: ExpectedInjection): Promise<boolean> {
  const outcome = await createWithRetry(clients.core, agentPod(NS, name, agent, { [PHASE]: phase }));
  account(name, outcome);
  if (outcome.pod === undefined) return false;
  createdPods.set(name, want);
  const problem = injectionProblem(outcome.pod, want, USER_ENV.map((e) => e.name));
  if (problem !== undefined) tally.wrong.push(problem);
  return problem === undefined;
}

/** `count` pods of `agent`, `concurrency` at a time; returns how many were exactly right. */
async function createMany(phase: string, agent: string, count: number, concurrency: number): Promise<number> {
  const want = expected(agent);
  const ok = await mapLimit(
    Array.from({ length: count }, (_, i) => `${phase}-${String(i).padStart(4, '0')}`),
    concurrency,
    (name) => createChecked(phase, name, agent, want),
  );
  return ok.filter(Boolean).length;
}

/**
 * Waits, with server-side dry-run pods of `agent` (verdicts, not stored), until they carry
 * `next`; until then a verdict may be `previous` (the cache has not caught up yet: stale but
 * consistent); anything else, or `previous` after `next` was seen, is a wrong verdict. Then
 * three real pods must be stored exactly as `next`. Returns the ms until `next` was seen.
 */
async function observeChange(phase: string, agent: string, previous: ExpectedInjection | 'untouched', next: ExpectedInjection, timeoutMs = 20_000): Promise<{ ms: number; probes: number }> {
  const userEnv = USER_ENV.map((e) => e.name);
  const isPrevious = (pod: V1Pod): boolean =>
    previous === 'untouched'
      ? pod.metadata?.annotations?.[INJECTED_ANNOTATION] === undefined && !(pod.spec?.containers[0]?.env ?? []).some((e) => e.name === 'KOMPUTER_MCP_SERVERS')
      : injectionProblem(pod, previous, userEnv) === undefined;
  const started = Date.now();
  let seenAt: number | undefined;
  let probes = 0;
  while (seenAt === undefined) {
    let pod: V1Pod | undefined;
    try {
      pod = await clients.core.createNamespacedPod({ namespace: NS, body: agentPod(NS, `${phase}-probe`, agent), dryRun: 'All' });
    } catch (error) {
      tally.dryRunFailures++; // e.g. the API server not back yet: no verdict
      log(`${phase}: dry-run failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    }
    if (pod !== undefined) {
      probes++;
      tally.dryRunVerdicts++;
      if (injectionProblem(pod, next, userEnv) === undefined) seenAt = Date.now();
      else if (!isPrevious(pod)) tally.wrong.push(`${phase} (dry-run): ${injectionProblem(pod, next, userEnv) ?? ''}`);
    }
    if (seenAt === undefined) {
      if (Date.now() - started > timeoutMs) assert.fail(`${phase}: pods of ${agent} never carried the change within ${timeoutMs} ms`);
      await sleep(100);
    }
  }
  for (let i = 0; i < 3; i++) await createChecked(phase, `${phase}-${i}`, agent, next);
  return { ms: seenAt - started, probes };
}

// --- service, API server and webhook configuration helpers ------------------------------------

async function readyz(service: WebhookService): Promise<number> {
  try {
    return (await httpGet(`http://127.0.0.1:${service.metricsPort}/readyz`, 1_000)).status;
  } catch {
    return 0;
  }
}

async function waitReady(service: WebhookService, what: string, timeoutMs = 30_000): Promise<number> {
  return pollUntil(what, async () => ({ ok: (await readyz(service)) === 200 }), { timeoutMs, intervalMs: 100 });
}

/** Admission requests a replica answered on /mutate/pods so far (all verdicts). */
async function mutateRequests(service: WebhookService): Promise<number> {
  return sampleSum(await scrape(service.metricsPort), 'komputer_webhook_admission_requests_total', { path: '/mutate/pods' });
}

/** Points both webhook configurations (every webhook) at `base` (same paths); returns the URLs they had. */
async function pointWebhooksAt(base: string): Promise<Record<string, string>> {
  const previous: Record<string, string> = {};
  for (const kind of WEBHOOK_KINDS) {
    const url = (await webhookConfig(env, kind, WEBHOOK_CONFIG)).webhooks[0]?.clientConfig.url;
    assert.ok(url, `${kind} has a clientConfig.url`);
    previous[kind] = url;
    await setWebhookUrl(kind, base);
  }
  return previous;
}

/** Every webhook of `kind` at `base`, each keeping its own path (`base` may be a whole URL: only its origin counts). */
async function setWebhookUrl(kind: WebhookKind, base: string): Promise<void> {
  const origin = new URL(base).origin;
  await patchEveryWebhook(env, kind, WEBHOOK_CONFIG, 'url', (w) => `${origin}${new URL(w.clientConfig.url!).pathname}`);
}

async function setWebhookBundles(bundlePem: string): Promise<void> {
  await setBundlesOfEveryWebhook(env, WEBHOOK_CONFIG, bundlePem);
}

const WATCHED_KINDS = ['namespaces', 'connectors', 'agents', 'policy'] as const;

/** komputer_webhook_watch_restarts_total per kind, all reasons. */
async function watchRestartsByKind(service: WebhookService): Promise<Map<string, number>> {
  return sumBy(await scrape(service.metricsPort), 'komputer_webhook_watch_restarts_total', 'kind');
}

/** The reflectors' retry delays (ms) logged since `offset`. */
async function retryDelaysSince(offset: number): Promise<number[]> {
  return (await logLinesSince(primary.logFile, offset)).filter((l) => typeof l['retryInMs'] === 'number').map((l) => l['retryInMs'] as number);
}

async function relistsSince(offset: number): Promise<{ gone: string[]; listed: string[] }> {
  const lines = await logLinesSince(primary.logFile, offset);
  return {
    gone: lines.filter((l) => /410/.test(l.msg ?? '')).map((l) => String(l.resource)),
    listed: lines.filter((l) => l.msg === 'listed').map((l) => String(l.resource)),
  };
}

// --- setup -----------------------------------------------------------------------------------

before(async () => {
  // Found (or installed) before anything starts, so a missing load balancer fails fast.
  const haproxy = await ensureHaproxy();
  log(`load balancer for the replica test: ${haproxy.version}`);
  env = await startEnvironment();
  clients = adminClients(env.kubeconfig);
  assert.ok(env.service);

  // The service under test reaches the API server through a proxy the tests can cut.
  const api = new URL(env.controlPlane.server);
  proxy = await startTcpProxy({ target: { host: api.hostname, port: Number(api.port) }, name: 'api-proxy' });
  const kubeconfig = parse(await readFile(env.serviceKubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
  for (const c of kubeconfig.clusters) c.cluster.server = `https://127.0.0.1:${proxy.port}`;
  const proxied = path.join(env.controlPlane.dir, 'service-via-proxy.kubeconfig');
  await writeFile(proxied, stringify(kubeconfig), { mode: 0o600 });

  // It takes the harness service's place (the port the webhook configurations name).
  await env.service.stop();
  primary = await env.createService({
    name: 'primary',
    port: env.service.port,
    serviceArgs: ['--kubeconfig', proxied, '--identity', 'primary', '--cert-reload-ms', String(RELOAD_MS), '--controller-quiet-ms', '200'],
  });
  await primary.start();

  await env.createNamespace(NS, { enabled: true });
  await env.apply([...Object.keys(connectors).map(connectorObject), ...Object.keys(agents).map(agentObject)]);
  // The service's caches have the objects once a pod of each agent comes out as the model says.
  for (const agent of Object.keys(agents)) {
    await pollUntil(
      `a pod of ${agent} injected as the model says`,
      async () => {
        const pod = await clients.core.createNamespacedPod({ namespace: NS, body: agentPod(NS, `probe-${agent}`, agent), dryRun: 'All' });
        const problem = injectionProblem(pod, expected(agent), USER_ENV.map((e) => e.name));
        return { ok: problem === undefined, detail: problem ?? '' };
      },
      { timeoutMs: 20_000 },
    );
  }
  await waitForCounts(clients, expectedCounts(), { what: 'initial counts' });
  assert.ok(proxy.open > 0, 'the service talks to the API server through the proxy');
});

after(async () => {
  const summary =
    `faults injected ${faults.length}, pods created under faults ${tally.podsUnderFaults}, ` +
    `failed creations ${tally.refusedAttempts + tally.transportErrors} (${tally.refusedAttempts} refused by the API server, ${tally.transportErrors} lost connections; ${tally.retriedPods} pods needed a retry, ${tally.neverCreated.length} never created), ` +
    `wrong or lost injections ${tally.wrong.length + tally.neverCreated.length}`;
  log(`figures:\n  ${figures.join('\n  ')}\nfaults:\n  ${faults.map((f, i) => `#${i + 1} ${f}`).join('\n  ')}`);
  log(`FAULTS SUMMARY: ${summary}`);
  await proxy?.close();
  await stopEnvironment();
});

// --- 1. the watch is cut ---------------------------------------------------------------------

/**
 * How stale the service's caches may be after a disconnect, by design: its reflectors retry
 * with an exponential backoff capped at 30 s (src/cluster/reflector.ts), plus a relist.
 */
const CATCH_UP_BOUND_MS = 40_000;

describe('the watch is cut', () => {
  test('plain disconnects: every connection reset, then blocked; the service answers from its cache and catches up', async () => {
    const offset = await logSize(primary.logFile);
    // (a) every connection between the service and the API server reset at once
    const restartsBefore = await watchRestartsByKind(primary);
    const open = proxy.cut();
    fault(`all ${open} connections between the service and the API server reset (watches included)`);
    // undici 8 speaks HTTP/2 to the API server: the four watches may share one connection
    // (as client-go's do). What must hold is that the cut reset every one of them.
    assert.ok(open >= 1, `the service had a connection open through the proxy: ${open}`);
    await pollUntil('every watch (namespaces, connectors, agents, policy) restarted after the cut', async () => {
      const now = await watchRestartsByKind(primary);
      const missing = WATCHED_KINDS.filter((k) => (now.get(k) ?? 0) <= (restartsBefore.get(k) ?? 0));
      return { ok: missing.length === 0, detail: `not restarted yet: ${missing.join(', ')}` };
    }, { timeoutMs: 15_000, intervalMs: 100 });
    let before = expected('docs-user');
    connectors['docs'] = { ...connectors['docs']!, url: 'http://docs-mcp.tools.svc:8080/v2/mcp' };
    await env.apply([connectorObject('docs')]);
    const afterCut = await observeChange('cut-docs', 'docs-user', before, expected('docs-user'), CATCH_UP_BOUND_MS);

    // (b) cut off for 3 s: admission goes on from the cache; changes made meanwhile arrive later
    const monitor = monitorReadiness(primary.metricsPort);
    const blockedAt = Date.now();
    const cut = proxy.block();
    fault(`the service cut off from the API server (${cut} connections reset, new ones refused) for 3 s`);
    before = expected('docs-user');
    connectors['docs'] = { ...connectors['docs']!, url: 'http://docs-mcp.tools.svc:8080/v3/mcp' };
    await env.apply([connectorObject('docs')]);
    const exactWhileCut = await createMany('blocked-worker', 'worker', 12, 3);
    await sleep(Math.max(0, 3_000 - (Date.now() - blockedAt)));
    const refused = proxy.refused;
    proxy.unblock();
    const afterBlock = await observeChange('blocked-docs', 'docs-user', before, expected('docs-user'), CATCH_UP_BOUND_MS);
    const readyMs = await waitReady(primary, 'the service ready after the block');
    await monitor.stop();
    const { gone, listed } = await relistsSince(offset);
    figure(
      `plain disconnects: ${open} connections reset -> change seen ${afterCut.ms} ms later; blocked (${refused} reconnect attempts refused over 3 s): ` +
        `${exactWhileCut}/12 worker pods exact while cut off, the change made meanwhile seen ${afterBlock.ms} ms after the block lifted; readiness ${monitor.history()}; ` +
        `relists ${listed.length} (410: [${gone.join(',')}]); reflector retry delays ${(await retryDelaysSince(offset)).join(',')} ms`,
    );
    assert.equal(exactWhileCut, 12, 'while cut off, the service answers from its cache: every pod of an unchanged agent exact');
    assert.ok(refused > 0, 'the service tried to reconnect while blocked');
    assert.ok(readyMs < 30_000);
  });

  test('410 Gone: etcd history compacted while cut off; the service relists and sees every change, the deletion too', async () => {
    const offset = await logSize(primary.logFile);
    const blockedAt = Date.now();
    const cut = proxy.block();
    fault(`the service cut off from the API server (${cut} connections reset) while the API server restarts and objects change`);
    // With its watch cache, the API server answers an old resourceVersion from the cache's
    // window (or, just restarted, with a 410 of its own: the restart test shows that path).
    // Without it, a watch goes to etcd, whose compacted history is what 410 Gone means.
    const crash = await env.controlPlane.restartApiServer({ signal: 'SIGKILL', extraArgs: ['--watch-cache=false'] });
    fault(`kube-apiserver SIGKILLed (a crash) and started again without its watch cache (down ${crash.outageMs} ms)`);
    const before = { docs: expected('docs-user'), spare: expected('spare-user') };
    connectors['docs'] = { ...connectors['docs']!, url: 'http://docs-mcp.tools.svc:8080/v4/mcp' };
    connectors['linear'] = { url: 'https://mcp.linear.app/mcp', authType: 'token', secret: { name: 'linear-token', key: 'token' } };
    agents['late'] = ['linear'];
    await env.apply([connectorObject('docs'), connectorObject('linear')]);
    await env.apply([agentObject('late')]);
    // A deletion: once the history is compacted, no watch can replay it; only a relist shows it.
    delete connectors['spare'];
    await env.kubectl(['delete', 'komputerconnector', 'spare', '-n', NS]);
    const revision = await etcdRevision(env.controlPlane.etcdUrl);
    await etcdCompact(env.controlPlane.etcdUrl, revision);
    fault(`etcd history compacted at revision ${revision} while the service's watches were cut`);
    proxy.unblock();
    const unblockedAt = Date.now();

    const relistMs = await pollUntil(
      'the service to relist connectors and agents after 410 Gone',
      async () => {
        const { gone, listed } = await relistsSince(offset);
        return { ok: gone.includes('connector') && gone.includes('agent') && listed.includes('connector') && listed.includes('agent'), detail: `410 for [${gone.join(',')}], relisted [${listed.join(',')}]` };
      },
      { timeoutMs: CATCH_UP_BOUND_MS, intervalMs: 200 },
    );
    const docs = await observeChange('gone-docs', 'docs-user', before.docs, expected('docs-user'), CATCH_UP_BOUND_MS);
    const spare = await observeChange('gone-spare', 'spare-user', before.spare, expected('spare-user'), CATCH_UP_BOUND_MS);
    const late = await observeChange('gone-late', 'late', 'untouched', expected('late'), CATCH_UP_BOUND_MS);
    assert.equal(await createMany('gone-worker', 'worker', 8, 2), 8, 'pods of the unchanged agent stay exact');
    await waitForCounts(clients, expectedCounts(), { what: 'counts after the relist', timeoutMs: CATCH_UP_BOUND_MS });
    const { gone, listed } = await relistsSince(offset);
    figure(
      `410 Gone: cut off ${unblockedAt - blockedAt} ms, compacted at revision ${revision}; 410 for [${gone.join(',')}], relisted [${listed.join(',')}] ${relistMs} ms after the block lifted; ` +
        `changes made meanwhile in pods: update, deletion, new connector+agent (seen ${docs.ms}/${spare.ms}/${late.ms} ms after the relist); reflector retry delays ${(await retryDelaysSince(offset)).join(',')} ms`,
    );
  });
});

// --- 2. API server restart ---------------------------------------------------------------------

test('kube-apiserver restarted while the service runs: readiness drops and returns, caches resync, no wrong verdict', async () => {
  const offset = await logSize(primary.logFile);
  const monitor = monitorReadiness(primary.metricsPort);
  await sleep(300);
  // SIGTERM, as in a rolling update (killed if it has not exited after 3 s: with watches open
  // it would hold on for its whole request timeout), and back with its default flags.
  const restart = await env.controlPlane.restartApiServer({ graceMs: 3_000, downMs: 1_000 });
  fault(`kube-apiserver stopped (SIGTERM) and started again on the same port and etcd (API down ${restart.outageMs} ms)`);

  // Right away, whether or not the service has reconnected yet: a connector changes, and
  // agent pods are created (those of an unchanged agent must be exact at once).
  const before = expected('docs-user');
  connectors['docs'] = { ...connectors['docs']!, url: 'http://docs-mcp.tools.svc:8080/v5/mcp' };
  const [exact, change] = await Promise.all([
    createMany('restart-worker', 'worker', 24, 4),
    env.apply([connectorObject('docs')]).then(() => observeChange('restart-docs', 'docs-user', before, expected('docs-user'), CATCH_UP_BOUND_MS)),
  ]);
  const readyMs = await waitReady(primary, 'the service ready again after the API server restart', CATCH_UP_BOUND_MS);
  await sleep(300);
  await monitor.stop();

  // The controller came through too: a new agent is counted.
  agents['later'] = ['slack'];
  await env.apply([agentObject('later')]);
  await waitForCounts(clients, expectedCounts(), { what: 'counts after the API server restart', timeoutMs: CATCH_UP_BOUND_MS });

  const { gone, listed } = await relistsSince(offset);
  const notReady = monitor.notReady();
  figure(
    `API server restart: down ${restart.outageMs} ms (new process ready in ${restart.startMs} ms); readiness ${monitor.history()}; ` +
      `relists [${listed.join(',')}] (410 for [${gone.join(',')}]); the connector changed right after the restart seen in pods ${change.ms} ms later; ${exact}/24 worker pods exact; ` +
      `reflector retry delays ${(await retryDelaysSince(offset)).join(',')} ms`,
  );
  assert.equal(exact, 24, `every worker pod created right after the restart is injected exactly: ${tally.wrong.slice(0, 3).join(' | ')}`);
  assert.ok(notReady.length > 0 || listed.length > 0, `readiness dropped or the caches were relisted: readiness ${monitor.history()}`);
  assert.ok(notReady.every((s) => s.status !== 0), 'the metrics port kept answering (the process never went away)');
  assert.equal(monitor.samples.at(-1)?.status, 200, 'ready again');
  assert.ok(readyMs < CATCH_UP_BOUND_MS);
});

// --- 3. two replicas behind HAProxy ----------------------------------------------------------

test('two replicas behind HAProxy: one SIGKILLed mid-burst, restarted, then the other; every created pod is stored injected', async () => {
  const BURST = 500;
  const CONCURRENCY = 8;
  const replicaArgs = (id: string): string[] => ['--identity', id, '--no-controller', '--cert-reload-ms', String(RELOAD_MS)];
  const a = await env.createService({ name: 'replica-a', serviceArgs: replicaArgs('replica-a') });
  const b = await env.createService({ name: 'replica-b', serviceArgs: replicaArgs('replica-b') });
  await Promise.all([a.start(), b.start()]);
  const lb = await startHaproxy({
    dir: path.dirname(a.logFile),
    port: await freePort(),
    statsPort: await freePort(),
    backends: [
      { name: 'replica-a', port: a.port, checkPort: a.metricsPort },
      { name: 'replica-b', port: b.port, checkPort: b.metricsPort },
    ],
  });
  await lb.waitUp(['replica-a', 'replica-b']);
  const previous = await pointWebhooksAt(`https://127.0.0.1:${lb.port}`);
  try {
    // The API server calls the replicas through HAProxy (and no longer the primary).
    const primaryBefore = await mutateRequests(primary);
    const replicasBefore = (await mutateRequests(a)) + (await mutateRequests(b));
    await pollUntil(
      'the API server to call the webhook through HAProxy',
      async () => {
        const pod = await clients.core.createNamespacedPod({ namespace: NS, body: agentPod(NS, 'probe-lb', 'worker'), dryRun: 'All' });
        const through = (await mutateRequests(a)) + (await mutateRequests(b)) - replicasBefore;
        return { ok: through >= 3 && injectionProblem(pod, expected('worker'), USER_ENV.map((e) => e.name)) === undefined, detail: `${through} requests through HAProxy` };
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    const primaryDuring = await mutateRequests(primary);

    const want = expected('worker');
    let done = 0;
    let finished = false;
    const events: string[] = [];
    const started = Date.now();
    const chaos = (async () => {
      await pollUntil('a fifth of the burst', async () => ({ ok: done >= BURST / 5 }), { timeoutMs: 60_000, intervalMs: 10 });
      const servedByB = await mutateRequests(b);
      await b.kill('SIGKILL');
      fault(`replica-b SIGKILLed mid-burst behind HAProxy (${done}/${BURST} pods done; it had answered ${servedByB} requests)`);
      events.push(`b killed at ${done} (${servedByB} answered)`);
      await b.start();
      await lb.waitUp(['replica-b']);
      fault('replica-b started again and taken back by HAProxy once /readyz said ready');
      events.push(`b back at ${done}`);
      // The API server keeps its connections (all on replica-a now): replica-b gets traffic
      // only once replica-a goes too.
      if (finished) return;
      const servedByA = await mutateRequests(a);
      await a.kill('SIGKILL');
      fault(`replica-a SIGKILLed mid-burst behind HAProxy (${done}/${BURST} pods done; it had answered ${servedByA} requests)`);
      events.push(`a killed at ${done} (${servedByA} answered)`);
    })();
    const names = Array.from({ length: BURST }, (_, i) => `burst-${String(i).padStart(4, '0')}`);
    const failedBefore = tally.refusedAttempts + tally.transportErrors;
    await mapLimit(names, CONCURRENCY, async (name) => {
      await createChecked('burst', name, 'worker', want);
      done++;
    });
    finished = true;
    await chaos;
    const burstMs = Date.now() - started;
    const stats = await lb.stats();
    events.push(`restarted b answered ${await mutateRequests(b)}`);

    // Read every pod back from the API server and count.
    const stored = await listPods(clients.core, NS, `${PHASE}=burst`);
    const wrong = stored.map((p) => injectionProblem(p, want, USER_ENV.map((e) => e.name))).filter((p) => p !== undefined);
    const failed = tally.refusedAttempts + tally.transportErrors - failedBefore;
    figure(
      `HAProxy (${lb.version.split(' ').slice(0, 3).join(' ')}): ${BURST} agent pods, ${CONCURRENCY} in flight, in ${burstMs} ms; ${events.join('; ')}; ` +
        `${failed} failed creation attempts (retried by the client); stored ${stored.length}, not injected exactly ${wrong.length}; ` +
        `HAProxy: ${Object.entries(stats).map(([n, s]) => `${n} ${s.status} sessions ${s.sessions} retries ${s.retries} redispatches ${s.redispatches}`).join(', ')}; ` +
        `primary answered ${primaryDuring - primaryBefore} pod requests meanwhile`,
    );
    assert.ok(events.some((e) => e.startsWith('b killed')), 'a replica was killed during the burst');
    assert.equal(stored.length, BURST, 'every pod of the burst exists (after client retries)');
    assert.equal(wrong.length, 0, `no pod stored without its injection, none injected wrongly: ${wrong.slice(0, 5).join(' | ')}`);
    const storedNames = new Set(stored.map((p) => p.metadata?.name));
    const lost = names.filter((n) => !storedNames.has(n));
    assert.equal(lost.length, 0, `no pod lost: ${lost.slice(0, 10).join(', ')}`);
  } finally {
    for (const [kind, url] of Object.entries(previous)) await setWebhookUrl(kind as WebhookKind, url);
    await lb.stop();
    await Promise.all([a.stop(), b.stop()]);
  }
  // The primary takes the traffic again.
  await pollUntil(
    'the API server to call the primary again',
    async () => {
      const before = await mutateRequests(primary);
      await clients.core.createNamespacedPod({ namespace: NS, body: agentPod(NS, 'probe-primary', 'worker'), dryRun: 'All' });
      return { ok: (await mutateRequests(primary)) > before };
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );
});

// --- 4. certificate rotation under load ----------------------------------------------------------

test('the serving certificate is rotated under load, in place and to a new CA: zero failed admission requests', async () => {
  const want = expected('worker');
  const certDir = primary.certDir;
  const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;
  let stopping = false;
  let created = 0;
  let failed = 0;
  const errors: string[] = [];
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stopping; i++) {
      const name = `rotate-${w}-${String(i).padStart(4, '0')}`;
      // No client retry here: every failed admission request counts.
      const outcome = await createWithRetry(clients.core, agentPod(NS, name, 'worker', { [PHASE]: 'rotate' }), { attempts: 1 });
      account(name, outcome);
      if (outcome.pod === undefined) {
        failed++;
        if (errors.length < 5) errors.push(`${name}: ${[...outcome.refused, ...outcome.transport].join(' ')}`);
        continue;
      }
      created++;
      createdPods.set(name, want);
      const problem = injectionProblem(outcome.pod, want, USER_ENV.map((e) => e.name));
      if (problem !== undefined) tally.wrong.push(problem);
    }
  };
  const load = Promise.all([0, 1, 2, 3].map(worker));
  const served = async (pem: string, what: string): Promise<number> =>
    pollUntil(what, async () => ({ ok: (await servedCertificate(primary.port)).fingerprint256 === fingerprint(pem) }), { timeoutMs: 15_000, intervalMs: 100 });
  try {
    await sleep(1_000);
    // (a) Same CA, files rewritten in place (not renamed), the certificate first: for a few
    // polls tls.crt and tls.key do not match, and a poll may read a half-written file.
    const sameCa = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ca: { cert: env.certs.caCert, key: env.certs.caKey } });
    await writeFile(path.join(certDir, 'tls.crt'), sameCa.cert);
    await sleep(RELOAD_MS * 3);
    await writeFile(path.join(certDir, 'tls.key'), sameCa.key);
    const inPlaceMs = await served(sameCa.cert, 'the in-place rewritten certificate to be served');
    fault('serving certificate rewritten in place under load (tls.crt and tls.key mismatched for 1.5 s)');
    await sleep(1_000);

    // (b) A new CA, the way an admin rotates one: bundle old+new, then the new pair, then
    // the bundle with the new CA only.
    const newCa = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], caCommonName: 'komputer-e2e-webhook-ca-2' });
    await setWebhookBundles(`${env.certs.caCert.trimEnd()}\n${newCa.caCert}`);
    await sleep(2_000);
    for (const [file, content] of [['tls.key', newCa.key], ['tls.crt', newCa.cert]] as const) {
      await writeFile(path.join(certDir, `.${file}.new`), content, { mode: 0o600 });
      await rename(path.join(certDir, `.${file}.new`), path.join(certDir, file));
    }
    const newCaMs = await served(newCa.cert, 'the certificate of the new CA to be served');
    fault('serving certificate moved to a new CA under load (bundle old+new, new pair, bundle new only)');
    await sleep(2_000);
    await setWebhookBundles(newCa.caCert);
    await sleep(2_000);
    const readyMs = await waitReady(primary, 'ready with the new CA in the bundle');
    stopping = true;
    await load;
    figure(
      `certificate rotation under load: in-place rewrite served after ${inPlaceMs} ms, new CA served after ${newCaMs} ms (ready ${readyMs} ms after the bundle change); ` +
        `${created} pods created, ${failed} failed, ${tally.wrong.length} wrong so far`,
    );
  } finally {
    stopping = true;
    await load;
  }
  assert.equal(failed, 0, `zero failed admission requests during the rotations: ${errors.join(' | ')}`);
  assert.ok(created > 20, `pods were created during the rotations (${created})`);
});

// --- the count -----------------------------------------------------------------------------------

test('every pod created under faults is stored injected exactly: wrong or lost injections = 0', async (t) => {
  const stored = await listPods(clients.core, NS, PHASE);
  const byName = new Map(stored.map((p) => [p.metadata?.name ?? '', p]));
  const missing = [...createdPods.keys()].filter((name) => !byName.has(name));
  const wrongStored: string[] = [];
  for (const [name, want] of createdPods) {
    const pod = byName.get(name);
    if (pod === undefined) continue;
    const problem = injectionProblem(pod, want, USER_ENV.map((e) => e.name));
    if (problem !== undefined) wrongStored.push(problem);
  }
  const unexpected = stored.filter((p) => !createdPods.has(p.metadata?.name ?? '')).map((p) => p.metadata?.name);
  const wrongOrLost = tally.wrong.length + tally.neverCreated.length + missing.length + wrongStored.length;
  const line =
    `FAULTS: faults injected ${faults.length}, pods created under faults ${tally.podsUnderFaults} (stored and read back ${stored.length}; plus ${tally.dryRunVerdicts} dry-run verdicts checked, ${tally.dryRunFailures} dry-runs unanswered), ` +
    `failed creations ${tally.refusedAttempts + tally.transportErrors} (${tally.refusedAttempts} refused by the API server, ${tally.transportErrors} lost connections; retried by the client), ` +
    `wrong or lost injections ${wrongOrLost}`;
  log(line);
  t.diagnostic(line);
  if (refusals.length > 0) t.diagnostic(`refusals (first ${refusals.length}): ${refusals.join(' | ')}`);
  const first = (list: readonly unknown[]): string => `${list.length}: ${list.slice(0, 5).join(' | ')}`;
  assert.equal(tally.wrong.length, 0, `wrong verdicts ${first(tally.wrong)}`);
  assert.equal(tally.neverCreated.length, 0, `pods never created despite client retries ${first(tally.neverCreated)}`);
  assert.equal(missing.length, 0, `created pods missing from the API server ${first(missing)}`);
  assert.equal(wrongStored.length, 0, `stored pods not carrying exactly their injection ${first(wrongStored)}`);
  assert.equal(unexpected.length, 0, `pods stored that the client never saw created ${first(unexpected)}`);
  assert.equal(stored.length, tally.podsUnderFaults);
  assert.equal(wrongOrLost, 0);
  assert.ok(faults.length >= 10, `faults injected: ${faults.length}`);
});
