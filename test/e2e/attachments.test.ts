// The attachment controller on a real API server (issue 4, SPEC.md "Attachment counts"):
// status.attachedAgents/agentNames of every KomputerConnector converge to the truth after
// agents are created, edited and deleted across namespaces; nothing is written when nothing
// changed; a burst coalesces into one write per changed connector; counts survive a SIGKILL
// mid-burst, a hand-corrupted status, and leader changes between two replicas.
//
// The expected counts come from the test's own model (fixtures/cluster.ts), not from src/.
// Measured figures are printed as `[e2e ...] FIGURE ...` lines.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startEnvironment, stopEnvironment, type Environment, type WebhookService } from './harness/index.ts';
import { log } from './harness/log.ts';
import {
  GROUP,
  VERSION,
  adminClients,
  agentObject,
  connectorObject,
  expectedStatuses,
  leaderGauge,
  mapLimit,
  pollUntil,
  sleep,
  statusDiff,
  storedStatuses,
  unchangedReconciles,
  waitForCounts,
  writes,
  type AgentModel,
  type Clients,
  type ConnectorModel,
} from './fixtures/cluster.ts';

const QUIET_MS = 1_000;
// Long enough that a whole burst (a few seconds) falls into one coalescing window.
const MAX_WAIT_MS = 30_000;
const CONTROLLER_ARGS = ['--controller-quiet-ms', String(QUIET_MS), '--controller-max-wait-ms', String(MAX_WAIT_MS)];
const LEASE_DURATION_S = 15;

let env: Environment;
let clients: Clients;
let service: WebhookService;

/** The cluster as the test made it: what the counts must say. */
const connectors = new Map<string, ConnectorModel>();
const agents = new Map<string, AgentModel>();
const key = (o: { namespace: string; name: string }): string => `${o.namespace}/${o.name}`;
const expected = (): Map<string, string[]> => expectedStatuses(connectors.values(), agents.values());
const figures: string[] = [];
function figure(text: string): void {
  figures.push(text);
  log(`FIGURE ${text}`);
}

before(async () => {
  env = await startEnvironment({ serviceArgs: ['--identity', 'replica-a', ...CONTROLLER_ARGS] });
  assert.ok(env.service);
  service = env.service;
  clients = adminClients(env.kubeconfig);
  await env.createNamespace('att-a', { enabled: true });
  await env.createNamespace('att-b', { enabled: true });
  // Not enabled: admission does not look at it, so it can hold malformed references.
  await env.createNamespace('att-c');
  await env.createNamespace('att-burst');
  await env.createNamespace('att-crash');
});
after(async () => {
  if (figures.length > 0) log(`figures:\n  ${figures.join('\n  ')}`);
  await stopEnvironment();
});

async function putConnectors(...list: ConnectorModel[]): Promise<void> {
  for (const c of list) connectors.set(key(c), c);
  await env.apply(list.map((c) => connectorObject(c)));
}

async function putAgents(...list: (AgentModel & { officeManager?: string; labels?: Record<string, string> })[]): Promise<void> {
  for (const a of list) agents.set(key(a), { namespace: a.namespace, name: a.name, connectors: a.connectors });
  await env.apply(list.map((a) => agentObject(a, { ...(a.officeManager ? { officeManager: a.officeManager } : {}), ...(a.labels ? { labels: a.labels } : {}) })));
}

async function deleteAgents(...list: string[]): Promise<void> {
  for (const k of list) {
    const [namespace, name] = k.split('/') as [string, string];
    agents.delete(k);
    await env.kubectl(['delete', 'komputeragents.komputer.komputer.ai', name, '-n', namespace, '--wait=false']);
  }
}

/** Waits until the service on `metricsPort` has written nothing for `quietForMs`; returns its write count. */
async function settledWrites(metricsPort: number, quietForMs = QUIET_MS * 2.5): Promise<number> {
  let last = await writes(metricsPort);
  let since = Date.now();
  const deadline = Date.now() + MAX_WAIT_MS + 10_000;
  while (Date.now() - since < quietForMs) {
    if (Date.now() > deadline) throw new Error('the controller kept writing');
    await sleep(250);
    const now = await writes(metricsPort);
    if (now !== last) [last, since] = [now, Date.now()];
  }
  return last;
}

const api = { group: GROUP, version: VERSION, plural: 'komputeragents' } as const;
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

async function createAgentApi(a: AgentModel): Promise<void> {
  await clients.custom.createNamespacedCustomObject({ ...api, namespace: a.namespace, body: agentObject(a) });
  agents.set(key(a), a);
}

async function deleteAgentApi(k: string): Promise<void> {
  const [namespace, name] = k.split('/') as [string, string];
  await clients.custom.deleteNamespacedCustomObject({ ...api, namespace, name });
  agents.delete(k);
}

async function setAgentConnectorsApi(k: string, refs: readonly string[]): Promise<void> {
  const [namespace, name] = k.split('/') as [string, string];
  await clients.custom.patchNamespacedCustomObject({ ...api, namespace, name, body: { spec: { connectors: [...refs] } } }, mergePatch);
  agents.set(k, { namespace, name, connectors: refs });
}

async function corruptStatus(namespace: string, name: string, patch: object, type: 'merge' | 'json' = 'merge'): Promise<void> {
  await env.kubectl(['patch', 'komputerconnectors.komputer.komputer.ai', name, '-n', namespace, '--subresource=status', `--type=${type}`, '-p', JSON.stringify(patch)]);
}

describe('attachment counts', () => {
  test('converge after agents are created, edited and deleted across namespaces', async () => {
    // --- create
    await putConnectors(
      { namespace: 'att-a', name: 'github', sharedWith: ['att-b'] },
      { namespace: 'att-a', name: 'slack', sharedWith: [] },
      { namespace: 'att-a', name: 'star', sharedWith: ['*'] },
      { namespace: 'att-b', name: 'github', sharedWith: [] }, // same name, other namespace
      { namespace: 'att-c', name: 'local', sharedWith: [] },
    );
    await putAgents(
      { namespace: 'att-a', name: 'alpha', connectors: ['github', 'slack'] },
      { namespace: 'att-a', name: 'delta', connectors: ['att-a/github'] }, // own namespace, qualified
      { namespace: 'att-b', name: 'beta', connectors: ['att-a/github', 'github'] },
      { namespace: 'att-b', name: 'dup', connectors: ['att-a/github', 'att-a/github'] },
      { namespace: 'att-b', name: 'ghost', connectors: ['att-a/missing'] }, // connector created later
      { namespace: 'att-c', name: 'gamma', connectors: ['att-a/github', 'att-a/star', 'att-a/slack'] }, // github, slack: not shared with att-c
      { namespace: 'att-c', name: 'bad', connectors: ['x/y/z', '/local', 'local/', 'local'] }, // malformed ones count nowhere
      { namespace: 'att-c', name: 'sub', connectors: [], officeManager: 'gamma' }, // inherits for injection, not counted
    );
    const created = expected();
    assert.deepEqual(created.get('att-a/github'), ['alpha', 'att-b/beta', 'att-b/dup', 'delta'], 'the model itself');
    assert.deepEqual(created.get('att-a/star'), ['att-c/gamma']);
    assert.deepEqual(created.get('att-c/local'), ['bad']);
    await waitForCounts(clients, created, { what: 'counts after create' });

    // --- edit: move references, change sharing, create a connector already referenced
    await putAgents(
      { namespace: 'att-b', name: 'beta', connectors: ['att-a/star'] },
      { namespace: 'att-a', name: 'alpha', connectors: ['slack', 'att-b/github'] }, // att-b/github is not shared with att-a
    );
    await putConnectors(
      { namespace: 'att-a', name: 'slack', sharedWith: ['att-c'] },
      { namespace: 'att-a', name: 'github', sharedWith: ['att-b', 'att-c'] },
      { namespace: 'att-a', name: 'missing', sharedWith: ['att-b'] },
    );
    const edited = expected();
    assert.deepEqual(edited.get('att-a/github'), ['att-b/dup', 'att-c/gamma', 'delta']);
    assert.deepEqual(edited.get('att-a/slack'), ['alpha', 'att-c/gamma']);
    assert.deepEqual(edited.get('att-a/star'), ['att-b/beta', 'att-c/gamma']);
    assert.deepEqual(edited.get('att-a/missing'), ['att-b/ghost']);
    assert.deepEqual(edited.get('att-b/github'), []);
    await waitForCounts(clients, edited, { what: 'counts after edit' });

    // --- delete agents, unshare, delete and recreate a connector
    await deleteAgents('att-c/gamma', 'att-b/dup');
    await putConnectors({ namespace: 'att-a', name: 'star', sharedWith: [] });
    await env.kubectl(['delete', 'komputerconnectors.komputer.komputer.ai', 'github', '-n', 'att-b']);
    connectors.delete('att-b/github');
    await waitForCounts(clients, expected(), { what: 'counts after delete' });
    await putConnectors({ namespace: 'att-b', name: 'github', sharedWith: ['att-a'] }); // now alpha may use it
    const final = expected();
    assert.deepEqual(final.get('att-a/github'), ['delta']);
    assert.deepEqual(final.get('att-a/star'), []);
    assert.deepEqual(final.get('att-b/github'), ['att-a/alpha']);
    await waitForCounts(clients, final, { what: 'counts after delete and recreate' });
  });

  test('nothing is written when an agent change does not change any count', async () => {
    const port = service.metricsPort;
    const writtenBefore = await settledWrites(port);
    const unchangedBefore = await unchangedReconciles(port);
    // Each of these touches connectors the controller must look at, without changing a count:
    await putAgents(
      { namespace: 'att-a', name: 'alpha', connectors: ['slack', 'att-b/github'], labels: { touched: 'once' } }, // a label only
      { namespace: 'att-a', name: 'delta', connectors: ['att-a/github', 'github'] }, // the same connector twice
      { namespace: 'att-c', name: 'outsider', connectors: ['att-a/star'] }, // not shared with att-c
      { namespace: 'att-c', name: 'nothing', connectors: [] },
    );
    await pollUntil('the controller to reconcile the touched connectors', async () => ({ ok: (await unchangedReconciles(port)) > unchangedBefore }), { timeoutMs: 15_000 });
    await sleep(QUIET_MS * 2);
    const writtenAfter = await writes(port);
    figure(`unrelated agent changes: ${writtenAfter - writtenBefore} status writes, ${(await unchangedReconciles(port)) - unchangedBefore} unchanged reconciles`);
    assert.equal(writtenAfter - writtenBefore, 0, 'no status write when nothing changed');
    await waitForCounts(clients, expected(), { what: 'counts unchanged' });
  });

  test('a status corrupted by another writer is corrected', async () => {
    const port = service.metricsPort;
    const before = await settledWrites(port);
    await corruptStatus('att-a', 'github', { status: { attachedAgents: 42, agentNames: ['mallory'] } });
    const t1 = await waitForCounts(clients, expected(), { what: 'counts after a wrong count and names' });
    await corruptStatus('att-a', 'slack', { status: { agentNames: ['alpha', 'att-c/gamma', 'zed'] } }); // count right, names wrong
    const t2 = await waitForCounts(clients, expected(), { what: 'counts after wrong names' });
    await corruptStatus('att-b', 'github', [{ op: 'remove', path: '/status' }], 'json');
    const t3 = await waitForCounts(clients, expected(), { what: 'counts after the status was removed' });
    // A writer fighting the controller for a while.
    for (let i = 0; i < 5; i++) {
      await corruptStatus('att-a', 'missing', { status: { attachedAgents: i, agentNames: [] } });
      await sleep(100);
    }
    const t4 = await waitForCounts(clients, expected(), { what: 'counts after a concurrent writer' });
    const corrections = (await settledWrites(port)) - before;
    figure(`corrupted status corrected in ${t1}/${t2}/${t3}/${t4} ms (${corrections} writes)`);
    assert.ok(corrections >= 4, `each corruption needs a write (${corrections})`);
  });

  test('a burst of agent creations coalesces into one write per changed connector', async () => {
    await putConnectors(
      { namespace: 'att-burst', name: 'b1', sharedWith: [] },
      { namespace: 'att-burst', name: 'b2', sharedWith: [] },
      { namespace: 'att-burst', name: 'b3', sharedWith: ['att-c'] },
    );
    await waitForCounts(clients, expected(), { what: 'burst connectors' });
    const port = service.metricsPort;
    const writtenBefore = await settledWrites(port);
    const statusBefore = expected();

    const burst: AgentModel[] = [];
    for (let i = 0; i < 600; i++) {
      const refs = ['b1'];
      if (i % 2 === 0) refs.push('att-burst/b2'); // qualified, same namespace
      if (i % 3 === 0) refs.push('b3');
      burst.push({ namespace: 'att-burst', name: `agent-${String(i).padStart(4, '0')}`, connectors: refs });
    }
    for (let i = 0; i < 100; i++) burst.push({ namespace: 'att-c', name: `burst-${String(i).padStart(3, '0')}`, connectors: ['att-burst/b3', 'att-burst/b1'] }); // b1 not shared
    const started = Date.now();
    await mapLimit(burst, 32, (a) => createAgentApi(a));
    const createdMs = Date.now() - started;
    const want = expected();
    const changed = [...want].filter(([k, names]) => JSON.stringify(statusBefore.get(k)) !== JSON.stringify(names)).length;
    assert.equal(changed, 3);
    assert.equal(want.get('att-burst/b1')?.length, 600);
    assert.equal(want.get('att-burst/b3')?.length, 300);
    const convergedMs = await waitForCounts(clients, want, { what: 'counts after the burst', timeoutMs: MAX_WAIT_MS + 30_000 });
    const totalMs = Date.now() - started;
    const burstWrites = (await settledWrites(port)) - writtenBefore;
    figure(`burst: ${burst.length} agents created in ${createdMs} ms (32 in flight); ${burstWrites} status writes for ${changed} changed connectors; converged ${convergedMs} ms after the last create (${totalMs} ms after the first)`);
    assert.ok(burstWrites <= changed, `${burstWrites} writes for ${changed} changed connectors`);
    assert.ok(burstWrites >= 1);
  });

  test('counts converge after the controller is killed (SIGKILL) mid-burst and restarted', async () => {
    await putConnectors({ namespace: 'att-crash', name: 'k1', sharedWith: [] }, { namespace: 'att-crash', name: 'k2', sharedWith: ['att-burst'] });
    await waitForCounts(clients, expected(), { what: 'crash connectors' });
    await settledWrites(service.metricsPort);

    type Op = () => Promise<void>;
    const creates: Op[] = Array.from({ length: 400 }, (_, i) => () =>
      createAgentApi({ namespace: 'att-crash', name: `c-${String(i).padStart(4, '0')}`, connectors: i % 2 === 0 ? ['k1'] : ['k1', 'k2'] }),
    );
    const burstKeys = [...agents.keys()].filter((k) => k.startsWith('att-burst/')).sort();
    const deletes: Op[] = burstKeys.slice(0, 300).map((k) => () => deleteAgentApi(k));
    const moves: Op[] = burstKeys.slice(300, 450).map((k) => () => setAgentConnectorsApi(k, ['att-crash/k2', 'b3']));
    // Interleave creates, deletes and edits.
    const ops: Op[] = [];
    for (let i = 0; ops.length < creates.length + deletes.length + moves.length; i++) {
      for (const list of [creates, deletes, moves]) if (i < list.length) ops.push(list[i]!);
    }
    let killed: Promise<unknown> | undefined;
    const half = Math.floor(ops.length / 2);
    let done = 0;
    const started = Date.now();
    await mapLimit(ops, 16, async (op) => {
      await op();
      if (++done === half) killed = service.kill('SIGKILL');
    });
    const status = await killed;
    assert.ok(status && (status as { signal?: string }).signal === 'SIGKILL', `killed: ${JSON.stringify(status)}`);
    log(`burst of ${ops.length} changes done in ${Date.now() - started} ms; the service was killed after ${half}`);
    const want = expected();
    assert.equal(want.get('att-crash/k1')?.length, 400);
    assert.equal(want.get('att-crash/k2')?.length, 200 + 150);

    // What the restarted controller finds wrong (nothing was written during the burst: it fits
    // in one coalescing window): only those connectors may be written.
    const wrong = statusDiff(await storedStatuses(clients, ['att-a', 'att-b', 'att-c', 'att-burst', 'att-crash']), want).length;

    const restarted = Date.now();
    await service.start();
    const readyMs = Date.now() - restarted;
    const convergedMs = await waitForCounts(clients, want, { what: 'counts after the restart', timeoutMs: 60_000 });
    const restartWrites = await settledWrites(service.metricsPort);
    figure(`SIGKILL mid-burst (${ops.length} changes: 400 creates, 300 deletes, 150 edits): after restart ready in ${readyMs} ms, counts converged ${readyMs + convergedMs} ms after the restart; ${restartWrites} writes by the new process for ${wrong} wrong connectors (of ${want.size})`);
    assert.ok(restartWrites <= wrong, `the recompute on start writes only what is wrong: ${restartWrites} writes, ${wrong} wrong`);
  });
});

describe('two replicas', () => {
  let replicaB: WebhookService;

  test('exactly one replica leads', async () => {
    replicaB = await env.createService({ name: 'replica-b', serviceArgs: ['--identity', 'replica-b', ...CONTROLLER_ARGS] });
    await replicaB.start();
    // Several lease retry periods (2 s): never two leaders, never none.
    const until = Date.now() + 5_000;
    while (Date.now() < until) {
      const [a, b] = [await leaderGauge(service.metricsPort), await leaderGauge(replicaB.metricsPort)];
      assert.deepEqual([a, b], [1, 0], 'replica-a (first) leads, replica-b follows');
      await sleep(250);
    }
    const holder = await env.kubectl(['get', 'lease', 'komputer-connector-webhook', '-n', env.serviceNamespace, '-o', 'jsonpath={.spec.holderIdentity}']);
    assert.equal(holder.stdout, 'replica-a');
  });

  test('the follower takes over when the leader is killed, and counts still converge', async () => {
    const killedAt = Date.now();
    await service.kill('SIGKILL');
    const takeoverMs = await pollUntil('replica-b to lead', async () => ({ ok: (await leaderGauge(replicaB.metricsPort)) === 1 }), { timeoutMs: 30_000, intervalMs: 100 });
    figure(`leader SIGKILLed: replica-b took over after ${takeoverMs} ms (lease ${LEASE_DURATION_S} s)`);
    // The lease is honoured: the dead leader's lease must run out first (no split brain).
    assert.ok(Date.now() - killedAt >= (LEASE_DURATION_S - 5) * 1000, `took over after ${takeoverMs} ms, before the lease could have expired`);
    assert.ok(takeoverMs <= (LEASE_DURATION_S + 7) * 1000, `takeover took ${takeoverMs} ms`);

    const writesBefore = await writes(replicaB.metricsPort);
    await putAgents({ namespace: 'att-a', name: 'after-takeover', connectors: ['github', 'star'] });
    await mapLimit(Array.from({ length: 50 }, (_, i) => `att-crash/c-${String(i).padStart(4, '0')}`), 8, (k) => deleteAgentApi(k));
    const ms = await waitForCounts(clients, expected(), { what: 'counts written by the new leader' });
    figure(`after takeover: counts converged ${ms} ms after the changes`);
    assert.ok((await writes(replicaB.metricsPort)) > writesBefore, 'replica-b wrote them');
  });

  test('a gracefully stopped leader releases the lease: fast takeover', async () => {
    await service.start(); // replica-a is back, as a follower
    await sleep(2_500);
    assert.deepEqual([await leaderGauge(service.metricsPort), await leaderGauge(replicaB.metricsPort)], [0, 1]);
    const stoppedAt = Date.now();
    await replicaB.stop(); // SIGTERM: drain, release the lease, exit
    const stopMs = Date.now() - stoppedAt;
    const takeoverMs = await pollUntil('replica-a to lead again', async () => ({ ok: (await leaderGauge(service.metricsPort)) === 1 }), { timeoutMs: 30_000, intervalMs: 100 });
    figure(`leader stopped with SIGTERM (exit after ${stopMs} ms): replica-a took over ${takeoverMs} ms after it exited (${stopMs + takeoverMs} ms after SIGTERM)`);
    const holder = await env.kubectl(['get', 'lease', 'komputer-connector-webhook', '-n', env.serviceNamespace, '-o', 'jsonpath={.spec.holderIdentity}']);
    assert.equal(holder.stdout, 'replica-a');
    assert.ok(takeoverMs < 5_000, `a released lease is taken within a retry period or two, took ${takeoverMs} ms`);

    await putAgents({ namespace: 'att-b', name: 'after-release', connectors: ['att-a/github', 'att-a/missing'] });
    await setAgentConnectorsApi('att-a/after-takeover', ['slack']);
    await waitForCounts(clients, expected(), { what: 'counts written after the graceful handover' });
  });
});
