// End-to-end: revocation that takes effect (--revocation opt-in), against a real API server,
// with the service under its ServiceAccount's RBAC from manifests/base. An operator stand-in
// recreates an agent's pod whenever none is stored (what the platform's operator does); pods
// are never scheduled here (no node), so an eviction deletes one at once.
// - A connector disabled: the idle agent's pod is evicted, the recreated pod carries no
//   reference to its token, an Event on the agent says why, the metric counts it; the time
//   from the change until no stored pod of the agent references the token is printed.
// - A busy agent's pod is left alone until its agent is idle, then restarted.
// - A namespace without the opt-in is left alone; annotating it later takes effect.
//
// The project's CRDs are used (`crds: 'project'`): the platform's prunes spec.disabled.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEnvironment, stopEnvironment, type Environment } from './harness/index.ts';
import { log } from './harness/log.ts';
import { poll } from './harness/poll.ts';
import { eventsRegarding, metricSum, serviceMetrics } from './fixtures/events.ts';
import { Kube, agent, connector, secret, soloPod, type Pod } from './fixtures/today.ts';

const NS = 'e2e-revoke';
const OFF = 'e2e-revoke-off';
const TOKEN = 'CONNECTOR_GITHUB_TOKEN';
const CANARY = 'ghp_E2ECANARYrevocationTokenValue0123456789';

let env: Environment;
let kube: Kube;

interface StoredPod extends Pod {
  metadata: Pod['metadata'] & { uid: string; deletionTimestamp?: string };
}

async function podsOf(namespace: string, agentName: string): Promise<StoredPod[]> {
  const r = await kube.ok(['get', 'pods', '-n', namespace, '-l', `komputer.ai/agent-name=${agentName}`, '-o', 'json']);
  return (JSON.parse(r.stdout) as { items: StoredPod[] }).items;
}

/** Whether a stored pod still references the GitHub connector: its token variable or its server entry. */
function holdsGithub(pod: Pod): boolean {
  return pod.spec.containers.some((c) =>
    (c.env ?? []).some((e) => e.name === TOKEN || (e.name === 'KOMPUTER_MCP_SERVERS' && typeof e.value === 'string' && 'github' in (JSON.parse(e.value) as Record<string, unknown>))),
  );
}

function hasLinear(pod: Pod): boolean {
  return pod.spec.containers.some((c) => (c.env ?? []).some((e) => e.name === 'CONNECTOR_LINEAR_TOKEN'));
}

/**
 * The operator stand-in: for each agent it manages, creates a pod whenever none is stored
 * (a new name each time, as the operator's generated names). The webhook injects at CREATE.
 */
class OperatorStandIn {
  private stopped = false;
  private loop: Promise<void> | undefined;
  private n = 0;
  created = 0;
  private readonly agents: readonly (readonly [string, string])[];
  constructor(agents: readonly (readonly [string, string])[]) {
    this.agents = agents;
  }
  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        for (const [namespace, name] of this.agents) {
          if (this.stopped) break;
          const live = (await podsOf(namespace, name)).filter((p) => !p.metadata.deletionTimestamp);
          if (live.length === 0) {
            await kube.createPod(soloPod(namespace, `${name}-${++this.n}`, name, [{ name: 'MODEL', value: 'e2e' }]));
            this.created++;
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

let operator: OperatorStandIn;

async function setTaskStatus(namespace: string, name: string, taskStatus: string): Promise<void> {
  await kube.ok(['patch', 'komputeragent', name, '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { taskStatus } })]);
}

async function onePod(namespace: string, name: string, what: string, check: (p: StoredPod) => boolean): Promise<StoredPod> {
  return poll(what, async () => {
    const pods = (await podsOf(namespace, name)).filter((p) => !p.metadata.deletionTimestamp);
    const p = pods[0];
    return { ok: pods.length === 1 && p !== undefined && check(p), value: p!, detail: JSON.stringify(pods.map((x) => [x.metadata.name, x.spec.containers[0]?.env?.map((e) => e.name)])) };
  }, 60_000);
}

before(async () => {
  env = await startEnvironment({ crds: 'project', serviceArgs: ['--revocation', 'opt-in'] });
  kube = new Kube(env);
  await env.createNamespace(NS, { enabled: true });
  await kube.ok(['annotate', 'namespace', NS, 'komputer.ai/revoke-stale-pods=true']);
  await env.createNamespace(OFF, { enabled: true });
  for (const ns of [NS, OFF]) {
    await env.apply([secret(ns, 'github-token', { token: CANARY }), secret(ns, 'linear-token', { token: 'lin_e2e' })]);
    await kube.applyAll([
      connector(ns, 'github', { url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } }),
      connector(ns, 'linear', { url: 'https://mcp.linear.app/mcp', authType: 'token', authSecretKeyRef: { name: 'linear-token', key: 'token' } }),
    ]);
  }
  await kube.applyAll([agent(NS, 'alpha', ['github', 'linear']), agent(NS, 'beta', ['github']), agent(OFF, 'alpha', ['github'])]);
  await setTaskStatus(NS, 'alpha', 'Complete');
  await setTaskStatus(NS, 'beta', 'InProgress');
  await setTaskStatus(OFF, 'alpha', 'Complete');
  // The service's caches must know the connectors before the first pods are created.
  await kube.waitForPod('github injected in ' + NS, soloPod(NS, 'probe', 'alpha', []), (p) => holdsGithub(p));
  await kube.waitForPod('github injected in ' + OFF, soloPod(OFF, 'probe', 'alpha', []), (p) => holdsGithub(p));
  operator = new OperatorStandIn([
    [NS, 'alpha'],
    [NS, 'beta'],
    [OFF, 'alpha'],
  ]);
  operator.start();
});
after(async () => {
  await operator?.stop();
  await stopEnvironment();
});

describe('revocation (opt-in): stale agent pods restarted through the Eviction API', () => {
  let alphaBefore: StoredPod;
  let betaBefore: StoredPod;
  let offBefore: StoredPod;

  test('every agent pod starts with the GitHub token reference', async () => {
    alphaBefore = await onePod(NS, 'alpha', 'alpha pod with github', holdsGithub);
    betaBefore = await onePod(NS, 'beta', 'beta pod with github', holdsGithub);
    offBefore = await onePod(OFF, 'alpha', 'alpha pod (no opt-in) with github', holdsGithub);
    assert.ok(hasLinear(alphaBefore));
  });

  test('a disabled connector: the idle agent pod is evicted and recreated without it; latency printed', async () => {
    const t0 = Date.now();
    await kube.ok(['patch', 'komputerconnector', 'github', '-n', NS, '--type=merge', '-p', '{"spec":{"disabled":true}}']);
    await kube.ok(['patch', 'komputerconnector', 'github', '-n', OFF, '--type=merge', '-p', '{"spec":{"disabled":true}}']);
    // The revocation latency: until no stored pod of the agent references the token.
    await poll('no stored pod of alpha references github', async () => {
      const pods = await podsOf(NS, 'alpha');
      return { ok: pods.every((p) => !holdsGithub(p)), value: pods, detail: JSON.stringify(pods.map((p) => p.metadata.name)) };
    }, 60_000);
    const latencyMs = Date.now() - t0;
    log(`revocation latency (connector disabled -> no stored pod of the agent references its token): ${latencyMs} ms`);
    process.stdout.write(`# revocation latency: ${latencyMs} ms\n`);

    const recreated = await onePod(NS, 'alpha', 'alpha recreated', (p) => !holdsGithub(p));
    assert.notEqual(recreated.metadata.uid, alphaBefore.metadata.uid, 'a new pod');
    assert.ok(hasLinear(recreated), 'the rest is still injected');
    assert.ok(!JSON.stringify(recreated).includes(TOKEN), 'no reference to the disabled connector\'s token');

    await poll('ConnectorRevoked Event on alpha', async () => {
      const events = await eventsRegarding(env, NS, 'alpha');
      const e = events.find((x) => x.reason === 'ConnectorRevoked');
      return { ok: e !== undefined, value: e, detail: JSON.stringify(events.map((x) => [x.reason, x.note])) };
    }, 30_000).then((e) => {
      assert.equal(e!.type, 'Normal');
      assert.equal(e!.note, `restarting pod ${alphaBefore.metadata.name} (eviction): it holds connector github (disabled) and token reference ${TOKEN} that agent alpha no longer gets; the new pod gets what is true now`);
      assert.ok(!e!.note.includes(CANARY));
    });
    const m = await serviceMetrics(env);
    assert.ok(metricSum(m, 'komputer_webhook_revocations_total', { result: 'evicted' }) >= 1);
    assert.equal(metricSum(m, 'komputer_webhook_revocations_total', { result: 'failed' }), 0);
  });

  test('a busy agent pod is left alone until the agent is idle', async () => {
    // Passes have run since the change (alpha's restart); give a few more before looking.
    await new Promise((r) => setTimeout(r, 3000));
    const still = await podsOf(NS, 'beta');
    assert.deepEqual(still.map((p) => p.metadata.uid), [betaBefore.metadata.uid], 'the busy agent keeps its pod');
    assert.ok(holdsGithub(still[0]!), 'and what it holds, for now');

    const t0 = Date.now();
    await setTaskStatus(NS, 'beta', 'Complete');
    const recreated = await onePod(NS, 'beta', 'beta restarted once idle', (p) => p.metadata.uid !== betaBefore.metadata.uid && !holdsGithub(p));
    log(`busy agent: restarted ${Date.now() - t0} ms after it became idle (${recreated.metadata.name})`);
  });

  test('a namespace without the opt-in is left alone', async () => {
    // Both namespaces changed at once, and passes have run since (both restarts above).
    const still = await podsOf(OFF, 'alpha');
    assert.deepEqual(still.map((p) => p.metadata.uid), [offBefore.metadata.uid]);
    assert.ok(holdsGithub(still[0]!), 'stale, and left running: no opt-in');
    const events = await eventsRegarding(env, OFF, 'alpha');
    assert.deepEqual(events.filter((e) => e.reason === 'ConnectorRevoked'), []);
    const m = await serviceMetrics(env);
    assert.equal(metricSum(m, 'komputer_webhook_revocations_total', { result: 'evicted' }), 2, 'exactly the two opted-in pods');
  });

  test('opting in later takes effect: the annotation alone triggers a pass', async () => {
    const t0 = Date.now();
    await kube.ok(['annotate', 'namespace', OFF, 'komputer.ai/revoke-stale-pods=true']);
    // Well within the once-a-minute resync: the namespace change itself triggers the pass.
    await onePod(OFF, 'alpha', 'alpha (now opted in) restarted without github', (p) => p.metadata.uid !== offBefore.metadata.uid && !holdsGithub(p));
    const ms = Date.now() - t0;
    log(`opt-in annotation -> pod restarted in ${ms} ms`);
    assert.ok(ms < 30_000, `restarted by the namespace change, not the resync (${ms} ms)`);
    assert.equal(metricSum(await serviceMetrics(env), 'komputer_webhook_revocations_total', { result: 'evicted' }), 3);
  });

  test('no token value reached a pod, an Event or the log', async () => {
    const events = JSON.stringify(await eventsRegarding(env, NS, 'alpha'));
    assert.ok(!events.includes(CANARY));
    const pods = (await kube.ok(['get', 'pods', '--all-namespaces', '-o', 'json'])).stdout;
    assert.ok(!pods.includes(CANARY));
    assert.ok(env.service);
    const logText = await import('./fixtures/today.ts').then((m) => m.serviceLogText(env));
    assert.ok(!logText.includes(CANARY));
    assert.match(logText, /evicted a running agent pod that holds connectors its agent no longer gets/);
  });
});
