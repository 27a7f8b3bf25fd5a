// Revocation's decision (check/stale.ts revocations()): which running agent pods the leader
// may restart, table-driven over the cluster state. Pure: pods + connectors + agents + policy.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fastJsonPatch from 'fast-json-patch';
import { IDLE_TASK_STATUSES, revocations, revocationText, stalePods, type RevocationDecision } from '../../src/check/stale.ts';
import { ClusterStore } from '../../src/cluster/store.ts';
import { injectPod } from '../../src/injection/inject.ts';
import { decodeAgent, decodeConnector, decodeNamespace, type JsonObject } from '../../src/model/objects.ts';

const API = 'komputer.komputer.ai/v1alpha1';
const NS = 'team-a';
const ON = { 'komputer.ai/revoke-stale-pods': 'true' };
const ENABLED = { 'komputer.ai/connector-injection': 'enabled' };

const ns = (name: string, annotations?: Record<string, string>): JsonObject => ({ metadata: { name, labels: ENABLED, ...(annotations ? { annotations } : {}) } });
const connector = (namespace: string, name: string, spec: JsonObject, annotations?: Record<string, string>): JsonObject => ({
  apiVersion: API,
  kind: 'KomputerConnector',
  metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
  spec: { type: 'remote', service: name, ...spec },
});
/** taskStatus null: none reported yet (status absent). */
const agent = (namespace: string, name: string, connectors: string[], taskStatus: string | null = 'Complete'): JsonObject => ({
  apiVersion: API,
  kind: 'KomputerAgent',
  metadata: { name, namespace, uid: `uid-${name}` },
  spec: { connectors },
  ...(taskStatus === null ? {} : { status: { taskStatus } }),
});
const GITHUB = { url: 'https://api.githubcopilot.com/mcp/', authSecretKeyRef: { name: 'gh', key: 'token' } };
const LINEAR = { url: 'https://mcp.linear.app/mcp', authSecretKeyRef: { name: 'lin', key: 'token' } };

function solo(namespace: string, name: string, agentName: string, labels: Record<string, string> | undefined = undefined): JsonObject {
  return {
    metadata: { name, namespace, uid: `pod-${name}`, labels: labels ?? { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': agentName, [`komputer.ai/member-${agentName}`]: 'true' } },
    spec: { containers: [{ name: 'agent', image: 'agent:1', env: [{ name: 'MODEL', value: 'm' }] }] },
  };
}

interface World {
  namespaces: JsonObject[];
  connectors: JsonObject[];
  agents: JsonObject[];
}

function store(w: World): ClusterStore {
  const s = new ClusterStore();
  for (const n of w.namespaces) s.putNamespace(decodeNamespace(n));
  for (const c of w.connectors) s.putConnector(decodeConnector(c));
  for (const a of w.agents) s.putAgent(decodeAgent(a));
  return s;
}

/** The pod as created against `w` (what the webhook injected then). */
function created(pod: JsonObject, w: World): JsonObject {
  const outcome = injectPod(pod, (pod.metadata as { namespace: string }).namespace, store(w));
  return fastJsonPatch.applyPatch(structuredClone(pod), outcome.patch as fastJsonPatch.Operation[], true, false).newDocument as JsonObject;
}

const base = (): World => ({
  namespaces: [ns(NS, ON), ns('plain'), ns('shared', {})],
  connectors: [connector(NS, 'github', GITHUB), connector(NS, 'linear', LINEAR), connector('shared', 'jira', { url: 'https://jira.example/mcp', authSecretKeyRef: { name: 'jira', key: 'token' } }, { 'komputer.ai/shared-with-namespaces': NS })],
  agents: [agent(NS, 'researcher', ['github', 'linear', 'shared/jira']), agent('plain', 'researcher', ['github'])],
});

const replace = (list: JsonObject[], name: string, next: JsonObject | undefined): JsonObject[] =>
  list.flatMap((o) => ((o.metadata as { name: string; namespace: string }).name === name && (o.metadata as { namespace: string }).namespace === (next?.metadata as { namespace?: string } | undefined)?.namespace ? (next ? [next] : []) : [o]));

const brief = (ds: RevocationDecision[]): unknown[] => ds.map((d) => ({ pod: `${d.namespace}/${d.name}`, verdict: d.verdict, revoked: d.containers.flatMap((c) => c.revoked.map((r) => `${r.what}:${r.name}:${r.cause}`)), busy: d.busy }));

describe('revocations: which stale agent pods the leader restarts', () => {
  const w0 = base();
  const pod = created(solo(NS, 'researcher-pod', 'researcher'), w0);
  const plainGithub = connector('plain', 'github', GITHUB);
  const w0plain: World = { ...w0, connectors: [...w0.connectors, plainGithub] };
  const plainPod = created(solo('plain', 'researcher-pod', 'researcher'), w0plain);

  const cases: { name: string; world: (w: World) => World; pods?: JsonObject[]; budget?: number; clusterDefault?: boolean; want: unknown[] }[] = [
    { name: 'nothing changed: nothing to restart', world: (w) => w, want: [] },
    {
      name: 'connector disabled: its entry and token reference',
      world: (w) => ({ ...w, connectors: replace(w.connectors, 'github', connector(NS, 'github', { ...GITHUB, disabled: true })) }),
      want: [{ pod: `${NS}/researcher-pod`, verdict: 'evict', revoked: ['server:github:disabled', 'token:CONNECTOR_GITHUB_TOKEN:disabled'], busy: [] }],
    },
    {
      name: 'connector deleted (the agent still names it)',
      world: (w) => ({ ...w, connectors: replace(w.connectors, 'linear', connector(NS, 'linear', {})).filter((c) => (c.metadata as { name: string }).name !== 'linear') }),
      want: [{ pod: `${NS}/researcher-pod`, verdict: 'evict', revoked: ['server:linear:missing', 'token:CONNECTOR_LINEAR_TOKEN:missing'], busy: [] }],
    },
    {
      name: 'connector unshared from the namespace',
      world: (w) => ({ ...w, connectors: w.connectors.map((c) => ((c.metadata as { name: string }).name === 'jira' ? connector('shared', 'jira', { url: 'https://jira.example/mcp', authSecretKeyRef: { name: 'jira', key: 'token' } }) : c)) }),
      want: [{ pod: `${NS}/researcher-pod`, verdict: 'evict', revoked: ['server:jira:not-visible', 'token:CONNECTOR_JIRA_TOKEN:not-visible'], busy: [] }],
    },
    {
      name: 'connector refused by a deny policy entry (built-in notion)',
      world: (w) => ({ ...w, connectors: replace(w.connectors, 'github', connector(NS, 'github', { ...GITHUB, url: 'https://mcp.notion.com/mcp', authType: 'token' })) }),
      want: [{ pod: `${NS}/researcher-pod`, verdict: 'evict', revoked: ['server:github:refused', 'token:CONNECTOR_GITHUB_TOKEN:refused'], busy: [] }],
    },
    {
      name: 'agent no longer names it',
      world: (w) => ({ ...w, agents: [agent(NS, 'researcher', ['github', 'shared/jira']), w.agents[1]!] }),
      want: [{ pod: `${NS}/researcher-pod`, verdict: 'evict', revoked: ['server:linear:unreferenced', 'token:CONNECTOR_LINEAR_TOKEN:unreferenced'], busy: [] }],
    },
    {
      name: 'a URL change is stale but takes nothing back: not restarted',
      world: (w) => ({ ...w, connectors: replace(w.connectors, 'github', connector(NS, 'github', { ...GITHUB, url: 'https://api.githubcopilot.com/mcp/v2' })) }),
      want: [],
    },
    ...['InProgress', 'Queued', 'SomethingNew', null].map((status) => ({
      name: `busy agent (taskStatus ${String(status)}) left alone`,
      world: (w: World): World => ({ ...w, connectors: replace(w.connectors, 'github', connector(NS, 'github', { ...GITHUB, disabled: true })), agents: [agent(NS, 'researcher', ['github', 'linear', 'shared/jira'], status), w.agents[1]!] }),
      want: [{ pod: `${NS}/researcher-pod`, verdict: 'busy', revoked: ['server:github:disabled', 'token:CONNECTOR_GITHUB_TOKEN:disabled'], busy: ['researcher'] }],
    })),
    {
      name: 'namespace without the opt-in left alone (cluster default off)',
      world: (w) => ({ ...w, connectors: [...w.connectors, connector('plain', 'github', { ...GITHUB, disabled: true })] }),
      pods: [plainPod],
      want: [],
    },
    {
      name: 'cluster default on: a namespace without the annotation is included',
      world: (w) => ({ ...w, connectors: [...w.connectors, connector('plain', 'github', { ...GITHUB, disabled: true })] }),
      pods: [plainPod],
      clusterDefault: true,
      want: [{ pod: 'plain/researcher-pod', verdict: 'evict', revoked: ['server:github:disabled', 'token:CONNECTOR_GITHUB_TOKEN:disabled'], busy: [] }],
    },
    {
      name: 'annotation "false" wins over the cluster default',
      world: (w) => ({ ...w, namespaces: [ns(NS, { 'komputer.ai/revoke-stale-pods': 'false' }), ...w.namespaces.slice(1)], connectors: replace(w.connectors, 'github', connector(NS, 'github', { ...GITHUB, disabled: true })) }),
      clusterDefault: true,
      want: [],
    },
    {
      name: 'a pod without the komputer.ai/squad label is not an agent pod: left alone',
      world: (w) => ({ ...w, connectors: replace(w.connectors, 'github', connector(NS, 'github', { ...GITHUB, disabled: true })) }),
      pods: [{ ...pod, metadata: { ...(pod.metadata as JsonObject), labels: { app: 'x', 'komputer.ai/agent-name': 'researcher' } } }],
      want: [],
    },
    {
      name: 'a pod being deleted is left alone',
      world: (w) => ({ ...w, connectors: replace(w.connectors, 'github', connector(NS, 'github', { ...GITHUB, disabled: true })) }),
      pods: [{ ...pod, metadata: { ...(pod.metadata as JsonObject), deletionTimestamp: '2026-01-01T00:00:00Z' } }],
      want: [],
    },
    {
      name: 'cap: over the budget waits for a later pass',
      world: (w) => ({ ...w, connectors: replace(w.connectors, 'github', connector(NS, 'github', { ...GITHUB, disabled: true })) }),
      pods: [pod, { ...pod, metadata: { ...(pod.metadata as JsonObject), name: 'researcher-pod-2', uid: 'pod-2' } }, { ...pod, metadata: { ...(pod.metadata as JsonObject), name: 'researcher-pod-3', uid: 'pod-3' } }],
      budget: 2,
      want: ['researcher-pod', 'researcher-pod-2', 'researcher-pod-3'].map((name, i) => ({ pod: `${NS}/${name}`, verdict: i < 2 ? 'evict' : 'capped', revoked: ['server:github:disabled', 'token:CONNECTOR_GITHUB_TOKEN:disabled'], busy: [] })),
    },
    {
      name: 'budget 0 (as many restarting as allowed): every one capped',
      world: (w) => ({ ...w, connectors: replace(w.connectors, 'github', connector(NS, 'github', { ...GITHUB, disabled: true })) }),
      budget: 0,
      want: [{ pod: `${NS}/researcher-pod`, verdict: 'capped', revoked: ['server:github:disabled', 'token:CONNECTOR_GITHUB_TOKEN:disabled'], busy: [] }],
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      const w = c.world(structuredClone(base()));
      const got = revocations(c.pods ?? [pod], store(w), { clusterDefault: c.clusterDefault ?? false, budget: c.budget ?? 1 });
      assert.deepEqual(brief(got), c.want);
    });
  }

  test('a busy squad member keeps the whole squad pod (a restart stops every member)', () => {
    const w = base();
    w.agents.push(agent(NS, 'writer', ['linear'], 'InProgress'));
    const squad: JsonObject = {
      metadata: { name: 'squad-pod', namespace: NS, uid: 'sq', labels: { 'komputer.ai/squad': 'true', 'komputer.ai/squad-name': 's1', 'komputer.ai/member-researcher': 'true', 'komputer.ai/member-writer': 'true' } },
      spec: { containers: [{ name: 'researcher', image: 'a' }, { name: 'writer', image: 'a' }] },
    };
    const p = created(squad, w);
    // Only researcher's github is taken back; writer is busy.
    const next = { ...w, connectors: replace(w.connectors, 'github', connector(NS, 'github', { ...GITHUB, disabled: true })) };
    assert.deepEqual(brief(revocations([p], store(next), { clusterDefault: false, budget: 1 })), [{ pod: `${NS}/squad-pod`, verdict: 'busy', revoked: ['server:github:disabled', 'token:CONNECTOR_GITHUB_TOKEN:disabled'], busy: ['writer'] }]);
    const idle = { ...next, agents: next.agents.map((a) => ((a.metadata as { name: string }).name === 'writer' ? agent(NS, 'writer', ['linear'], 'Idle') : a)) };
    assert.deepEqual(brief(revocations([p], store(idle), { clusterDefault: false, budget: 1 })).map((d) => (d as { verdict: string }).verdict), ['evict']);
  });

  test('the decision is the pods/stale core: every revoked pod is a stale pod', () => {
    const w = { ...base(), connectors: replace(base().connectors, 'github', connector(NS, 'github', { ...GITHUB, disabled: true })) };
    const s = store(w);
    const stale = stalePods([pod], s);
    assert.equal(stale.length, 1);
    assert.deepEqual(stale[0]!.containers.flatMap((c) => c.revoked), revocations([pod], s, { clusterDefault: false, budget: 1 })[0]!.containers.flatMap((c) => c.revoked));
  });

  test('the Event text names the connector, the cause and the agent; no token value', () => {
    const w = { ...base(), connectors: replace(base().connectors, 'github', connector(NS, 'github', { ...GITHUB, disabled: true })) };
    const [d] = revocations([pod], store(w), { clusterDefault: false, budget: 1 });
    assert.equal(revocationText(d!, 'researcher'), 'restarting pod researcher-pod (eviction): it holds connector github (disabled) and token reference CONNECTOR_GITHUB_TOKEN that agent researcher no longer gets; the new pod gets what is true now');
  });

  test('idle task statuses are a closed list', () => {
    assert.deepEqual(IDLE_TASK_STATUSES, ['Idle', 'Complete', 'Error']);
  });
});
