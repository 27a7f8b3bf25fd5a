// End-to-end: Events on KomputerAgents ("Users see why") through a real kube-apiserver. An
// agent with a working, a missing, a disabled and an unshared connector gets its pod; the
// Events are read back through events.k8s.io/v1 (field selector regarding.name) and through
// `kubectl describe komputeragent`, and must say exactly what the admission warnings said. A
// 500-pod burst for one agent stays within a stated number of Event writes (the service's
// komputer_webhook_events_written_total) with the series count showing the burst; dry runs
// record nothing; canary secret values never appear in any Event.
//
// The project's CRDs (`crds: 'project'`): the platform's published CRD prunes spec.disabled.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEnvironment, stopEnvironment, type Environment } from './harness/index.ts';
import { log } from './harness/log.ts';
import { poll } from './harness/poll.ts';
import { allEventsJson, eventCounters, eventsRegarding, type ApiEvent, type EventCounters } from './fixtures/events.ts';
import { INJECTED, Kube, SHARED_WITH, agent, assertNoCanaries, connector, secret, soloPod, tokenRef, type EnvVar, type Pod } from './fixtures/today.ts';

const NS = 'e2e-events';
/** Owns connector `private`, shared with nobody. */
const OWNER = 'e2e-events-owner';

const CANARY_SECRET = 'ghp_E2ECANARYeventsSecretData0123456789abcd';
const CANARY_OWNER = 'lin_api_E2ECANARYeventsOwnerSecret012345678';
const CANARY_ENV = 'ghp_E2ECANARYeventsPodEnvValue0123456789abc';
const CANARIES = [CANARY_SECRET, CANARY_OWNER, CANARY_ENV];

const DISABLED_REASON = 'it is disabled (spec.disabled: true); set spec.disabled: false on the connector to re-enable it';
const NOT_VISIBLE = `not found in namespace ${OWNER}, or not shared with namespace ${NS} (its owner shares it with the ${SHARED_WITH} annotation)`;
/** What the operator writes for the unshared connector: the service takes it out again. */
const OPERATOR_PRIVATE = tokenRef('CONNECTOR_PRIVATE_TOKEN', `private-token-from-${OWNER}`, 'token');
const USER_ENV: EnvVar[] = [{ name: 'MY_PAT', value: CANARY_ENV }, OPERATOR_PRIVATE];
const CONNECTORS = ['github', 'gone', 'slack', `${OWNER}/private`];

/** The warnings (and so the Warning Events) of a pod of `agentName`, in order. */
function expectedWarnings(agentName: string): string[] {
  return [
    `connector gone not injected into agent ${agentName}: connector not found in namespace ${NS}`,
    `connector slack not injected into agent ${agentName}: ${DISABLED_REASON}`,
    `connector ${OWNER}/private not injected into agent ${agentName}: ${NOT_VISIBLE}; removed CONNECTOR_PRIVATE_TOKEN, which the operator wrote for it, from container agent`,
  ];
}
const WARNING_REASONS = ['ConnectorNotFound', 'ConnectorDisabled', 'ConnectorNotVisible'];

/** Burst size and the bound on writes it may cause (see the burst test). */
const BURST = 500;

let env: Environment;
let kube: Kube;

async function agentUid(name: string): Promise<string> {
  const uid = (await kube.getJson<{ metadata: { uid: string } }>('komputeragent', NS, name)).metadata.uid;
  assert.ok(uid);
  return uid;
}

/** Polls the Events about `agentName` until `check` holds. */
async function waitForEvents(what: string, agentName: string, check: (events: ApiEvent[]) => boolean, timeoutMs = 30_000): Promise<ApiEvent[]> {
  return poll(
    what,
    async () => {
      const events = await eventsRegarding(env, NS, agentName);
      return { ok: check(events), value: events, detail: JSON.stringify(events.map((e) => [e.type, e.reason, e.series?.count ?? 1])) };
    },
    timeoutMs,
  );
}

/** Polls the service's counters until nothing waits for a write. */
async function settled(): Promise<EventCounters> {
  return poll('no event waiting for a write', async () => {
    const c = await eventCounters(env);
    return { ok: c.pending === 0, value: c, detail: JSON.stringify(c) };
  });
}

before(async () => {
  env = await startEnvironment({ crds: 'project' });
  assert.equal(env.crds.kind, 'project', 'this file needs the CRD that lists spec.disabled');
  kube = new Kube(env);
  await env.createNamespace(NS, { enabled: true });
  await env.createNamespace(OWNER);
  await env.apply([
    secret(NS, 'github-token', { token: CANARY_SECRET }),
    secret(NS, 'slack-token', { xoxp: CANARY_SECRET }),
    secret(OWNER, 'private-token', { token: CANARY_OWNER }),
    // Not enabled, so not validated; shared with nobody.
    connector(OWNER, 'private', { url: 'https://mcp.linear.app/mcp', authType: 'token', authSecretKeyRef: { name: 'private-token', key: 'token' } }),
  ]);
  await kube.applyAll([
    connector(NS, 'github', { url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } }),
    // Enabled while the agents are created (a new reference to a disabled one is refused), disabled below.
    connector(NS, 'slack', { url: 'https://mcp.slack.com/mcp', authType: 'token', authSecretKeyRef: { name: 'slack-token', key: 'xoxp' } }),
  ]);
  await kube.applyAll([agent(NS, 'researcher', CONNECTORS), agent(NS, 'burst', CONNECTORS), agent(NS, 'dry', ['gone'])]);
  await kube.ok(['patch', 'komputerconnector', 'slack', '-n', NS, '--type', 'merge', '-p', '{"spec":{"disabled":true}}']);
  // The service's caches hold all of it (dry runs: they record nothing).
  for (const name of ['researcher', 'burst']) {
    await kube.waitForPod(`${name}: caches caught up`, soloPod(NS, `wait-${name}`, name, USER_ENV), (p, w) => p.metadata.annotations?.[INJECTED] === 'github' && JSON.stringify(w) === JSON.stringify(expectedWarnings(name)));
  }
});
after(stopEnvironment);

describe('Events on KomputerAgents', () => {
  test('an agent pod with skipped connectors: one Warning per skip, exactly the admission warnings, and one Normal', async () => {
    const { warnings } = await kube.createPod(soloPod(NS, 'researcher-pod', 'researcher', USER_ENV));
    assert.deepEqual(warnings, expectedWarnings('researcher'));
    const uid = await agentUid('researcher');
    const events = await waitForEvents('4 events on researcher', 'researcher', (e) => e.length >= 4);
    assert.equal(events.length, 4, JSON.stringify(events, null, 2));
    const byReason = new Map(events.map((e) => [e.reason, e]));
    assert.deepEqual([...byReason.keys()].sort(), [...WARNING_REASONS, 'ConnectorsInjected'].sort());
    for (const [i, reason] of WARNING_REASONS.entries()) {
      const e = byReason.get(reason)!;
      assert.equal(e.type, 'Warning');
      assert.equal(e.note, warnings[i], 'the message is the admission warning');
    }
    const normal = byReason.get('ConnectorsInjected')!;
    assert.equal(normal.type, 'Normal');
    assert.equal(normal.note, 'injected github into container agent of pod researcher-pod');
    for (const e of events) {
      assert.deepEqual(e.regarding, { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', namespace: NS, name: 'researcher', uid });
      assert.equal(e.metadata.namespace, NS);
      assert.equal(e.reportingController, 'komputer.ai/connector-webhook');
      assert.equal(e.action, 'InjectConnectors');
      assert.ok(e.reportingInstance, 'reportingInstance is set');
      assert.equal(e.series, undefined, 'seen once');
    }
  });

  test('kubectl describe komputeragent shows them', async () => {
    const out = (await env.kubectl(['describe', 'komputeragent', 'researcher', '-n', NS])).stdout;
    const section = out.slice(out.indexOf('Events:'));
    log(`kubectl describe komputeragent researcher -n ${NS} (Events):\n${section}`);
    assert.ok(out.includes('Events:') && !section.includes('<none>'), out);
    for (const [i, reason] of WARNING_REASONS.entries()) {
      const line = section.split('\n').find((l) => l.includes(` ${reason} `));
      assert.ok(line, `a line for ${reason}:\n${section}`);
      assert.match(line, /^\s+Warning\s/);
      assert.ok(line.includes('komputer.ai/connector-webhook'), line);
      assert.ok(line.includes(expectedWarnings('researcher')[i]!), `${line}\nshould end with the warning`);
    }
    assert.match(section, /Normal\s+ConnectorsInjected\s.*injected github into container agent of pod researcher-pod/);
  });

  test('a dry-run pod create records nothing', async () => {
    const before = await settled();
    for (let i = 0; i < 3; i++) {
      const r = await kube.ok(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(soloPod(NS, `dry-pod-${i}`, 'dry', [])));
      assert.match(r.stderr, /connector gone not injected into agent dry/, 'the dry run still gets its warning');
    }
    // A real pod of another agent afterwards: once its Events are written, anything the dry
    // runs had queued would have been written too (one worker, in order).
    await kube.createPod(soloPod(NS, 'researcher-pod-2', 'researcher', USER_ENV));
    await waitForEvents('researcher-pod-2 recorded', 'researcher', (e) => e.some((x) => x.note.endsWith('of pod researcher-pod-2')));
    const after = await settled();
    assert.deepEqual(await eventsRegarding(env, NS, 'dry'), []);
    assert.equal(after.created - before.created, 1, 'only the Normal of researcher-pod-2 is new');
  });

  test(`a burst of ${BURST} pods for one agent: a handful of writes, the series count shows the burst`, async () => {
    const before = await settled();
    const started = Date.now();
    const batches = 5;
    await Promise.all(
      Array.from({ length: batches }, async (_, b) => {
        const items: Pod[] = Array.from({ length: BURST / batches }, (_, i) => soloPod(NS, `burst-${String(b * (BURST / batches) + i).padStart(3, '0')}`, 'burst', USER_ENV));
        const r = await env.kubectl(['create', '-o', 'name', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }), timeoutMs: 600_000, allowFailure: true });
        assert.equal(r.code, 0, r.stderr.slice(0, 2000));
        assert.equal(r.stdout.trim().split('\n').length, BURST / batches);
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    // The last series patch is due at most patchIntervalMs (10 s) after the last pod.
    const events = await waitForEvents(
      'series counts of the burst',
      'burst',
      (e) => WARNING_REASONS.every((r) => (e.find((x) => x.reason === r)?.series?.count ?? 0) >= BURST),
      60_000,
    ).catch(async (error: unknown) => {
      log(`counters: ${JSON.stringify(await eventCounters(env))}`);
      throw error;
    });
    const after = await settled();
    const writes = after.written - before.written;
    const dropped = Object.fromEntries(Object.entries(after.dropped).map(([k, v]) => [k, v - (before.dropped[k] ?? 0)]));
    const normals = events.filter((e) => e.type === 'Normal');
    const warningsEvents = events.filter((e) => e.type === 'Warning');
    // The bound: one create per warning, the Normal events of the agent's budget (10, one
    // more per 30 s), and per warning series a patch at most every 10 s (+1 at the end).
    const bound = WARNING_REASONS.length + (10 + Math.ceil(seconds / 30) + 1) + WARNING_REASONS.length * (Math.ceil(seconds / 10) + 2);
    log(
      `burst of ${BURST} pods in ${seconds.toFixed(1)} s: ${writes} event writes (${after.created - before.created} creates, ${after.patched - before.patched} patches; bound ${bound}), ` +
        `${warningsEvents.length} Warning events with counts ${warningsEvents.map((e) => `${e.reason}=${e.series?.count}`).join(' ')}, ${normals.length} Normal events, dropped ${JSON.stringify(dropped)}`,
    );
    assert.equal(warningsEvents.length, WARNING_REASONS.length, 'one Event per warning, however many pods');
    for (const [i, reason] of WARNING_REASONS.entries()) {
      const e = warningsEvents.find((x) => x.reason === reason)!;
      assert.equal(e.note, expectedWarnings('burst')[i]);
      assert.equal(e.series?.count, BURST, `${reason}: every pod counted`);
      assert.ok(e.series?.lastObservedTime);
    }
    assert.ok(writes <= bound, `${writes} writes for ${BURST} pods, bound ${bound}`);
    assert.ok(writes < BURST / 10, `a handful: ${writes}`);
    // Each pod's Normal event names its pod: the agent's budget for them holds, the rest is dropped and counted.
    assert.ok(normals.length >= 10 && normals.length <= 10 + Math.ceil(seconds / 30) + 1, `${normals.length} Normal events`);
    assert.equal(dropped['rate_limited'], BURST - normals.length);
    for (const reason of ['queue_full', 'timeout', 'write_failed', 'shutdown']) assert.equal(dropped[reason], 0, `dropped ${reason}`);
  });

  test('canary: no Event carries a secret value (nor its base64); nor does the log or any warning', async () => {
    const stored = await allEventsJson(env);
    assert.ok(stored.includes('ConnectorNotVisible'), 'the Events are there');
    for (const canary of CANARIES) {
      for (const form of [canary, Buffer.from(canary).toString('base64')]) assert.equal(stored.includes(form), false, `no Event may contain ${form}`);
    }
    await assertNoCanaries(env, kube, CANARIES);
  });
});
