// The pure mapping from a pod admission's outcome to the Events on its agents
// (src/injection/events.ts), table-driven: one row per kind of skip and per container-level
// case. Every Warning's message must be exactly one of the admission warnings, and every
// warning about an agent that exists must become an Event.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { handlerForKind, processReview } from '../../src/admission/handlers.ts';
import { ClusterStore } from '../../src/cluster/store.ts';
import { EVENT_REASONS, podAdmissionEvents, type AgentEvent } from '../../src/injection/events.ts';
import { FINDINGS, FINDING_KINDS } from '../../src/injection/findings.ts';
import { injectEphemeralContainers, injectPod } from '../../src/injection/inject.ts';
import { MAX_CONNECTORS_PER_AGENT } from '../../src/injection/resolve.ts';
import type { Agent, Connector, JsonObject } from '../../src/model/objects.ts';
import { BUILTIN_POLICY } from '../../src/policy/incompatible.ts';
import { podReview } from '../helpers/review.ts';

const NS = 'team-a';
const ENABLED = { 'komputer.ai/connector-injection': 'enabled' };
const NOT_VISIBLE = (owner: string): string => `not found in namespace ${owner}, or not shared with namespace ${NS} (its owner shares it with the komputer.ai/shared-with-namespaces annotation)`;
const DISABLED = 'it is disabled (spec.disabled: true); set spec.disabled: false on the connector to re-enable it';

function connector(name: string, namespace = NS, extra: Partial<Connector> = {}): Connector {
  return { namespace, name, service: name, url: `https://${name}.example/mcp`, authType: 'token', authSecretKeyRef: { name: `${name}-token`, key: 'token' }, sharedWith: [], ...extra };
}

function agent(name: string, connectors: string[], extra: Partial<Agent> = {}, namespace = NS): Agent {
  return { namespace, name, connectors, officeManager: undefined, uid: `uid-${name}`, ...extra };
}

function store(): ClusterStore {
  const s = new ClusterStore();
  s.putNamespace({ name: NS, labels: ENABLED });
  s.putNamespace({ name: 'owner', labels: {} });
  s.putNamespace({ name: 'shared', labels: {} });
  for (const c of [
    connector('github'),
    connector('slack', NS, { disabled: true }),
    connector('bad', NS, { authSecretKeyRef: { name: '', key: 'token' } }),
    connector('linear'),
    connector('linear', 'shared', { sharedWith: [NS] }),
    connector('private', 'owner'),
  ]) s.putConnector(c);
  const many = Array.from({ length: MAX_CONNECTORS_PER_AGENT + 2 }, (_, i) => `c${i}`);
  for (const n of many) s.putConnector(connector(n, NS, { authSecretKeyRef: undefined }));
  for (const a of [
    agent('a', ['github', 'gone', 'slack', 'bad', 'owner/private', 'owner/absent', 'x/y/z', 'linear', 'shared/linear'], { officeManager: 'boss' }),
    agent('ok', ['github', 'shared/linear']),
    agent('many', many),
    agent('only-slack', ['slack']),
    agent('planner', ['github'], { squad: 'sq' }),
    agent('coder', ['github', 'gone'], { squad: 'sq' }),
    agent('writer', ['github'], { squad: 'other' }),
    agent('o', ['github'], {}, 'owner'),
  ]) s.putAgent(a);
  return s;
}

function solo(agentName: string, env?: unknown, metadata: JsonObject = { name: `${agentName}-pod` }): JsonObject {
  return {
    metadata: { ...metadata, labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': agentName, [`komputer.ai/member-${agentName}`]: 'true' } },
    spec: { containers: [{ name: 'agent', image: 'i', ...(env === undefined ? {} : { env }) }] },
  };
}

function squad(members: string[], containers: string[], ephemeral: string[] = []): JsonObject {
  return {
    metadata: { name: 'sq-pod', labels: { 'komputer.ai/squad': 'true', 'komputer.ai/squad-name': 'sq', ...Object.fromEntries(members.map((m) => [`komputer.ai/member-${m}`, 'true'])) } },
    spec: { containers: containers.map((name) => ({ name, image: 'i' })), ...(ephemeral.length ? { ephemeralContainers: ephemeral.map((name) => ({ name, image: 'i' })) } : {}) },
  };
}

interface Row {
  readonly name: string;
  readonly pod: JsonObject;
  readonly oldPod?: JsonObject;
  readonly namespace?: string;
  /** [agent, type, reason, message or (for Normal) the message] in order. */
  readonly want: readonly (readonly [string, AgentEvent['type'], string, string])[];
  /** Warnings that concern no agent with a KomputerAgent to attach to. */
  readonly unmapped?: readonly string[];
}

const operatorPrivate = { name: 'CONNECTOR_PRIVATE_TOKEN', valueFrom: { secretKeyRef: { name: 'private-token-from-owner', key: 'token' } } };

const ROWS: readonly Row[] = [
  {
    name: 'every kind of connector skip, and the manager, on one agent; what was injected',
    pod: solo('a'),
    want: [
      ['a', 'Warning', 'OfficeManagerNotFound', 'agent a: office manager agent team-a/boss not found, its connectors are not inherited'],
      ['a', 'Warning', 'ConnectorNotFound', 'connector gone not injected into agent a: connector not found in namespace team-a'],
      ['a', 'Warning', 'ConnectorDisabled', `connector slack not injected into agent a: ${DISABLED}`],
      ['a', 'Warning', 'ConnectorSecretRefInvalid', 'connector bad not injected into agent a: spec.authSecretKeyRef needs both name and key'],
      ['a', 'Warning', 'ConnectorNotVisible', `connector owner/private not injected into agent a: ${NOT_VISIBLE('owner')}`],
      ['a', 'Warning', 'ConnectorNotVisible', `connector owner/absent not injected into agent a: ${NOT_VISIBLE('owner')}`],
      ['a', 'Warning', 'ConnectorRefInvalid', 'connector x/y/z not injected into agent a: not a valid reference: use "name" or "namespace/name"'],
      ['a', 'Warning', 'ConnectorNameCollision', 'connector shared/linear not injected into agent a: its name collides with linear (both would be MCP server "linear"); the first is kept'],
      ['a', 'Normal', 'ConnectorsInjected', 'injected github, linear into container agent of pod a-pod'],
    ],
  },
  {
    name: "the operator's token variable taken out: the message says so",
    pod: solo('a', [{ name: 'MODEL', value: 'x' }, operatorPrivate]),
    want: [
      ['a', 'Warning', 'OfficeManagerNotFound', 'agent a: office manager agent team-a/boss not found, its connectors are not inherited'],
      ['a', 'Warning', 'ConnectorNotFound', 'connector gone not injected into agent a: connector not found in namespace team-a'],
      ['a', 'Warning', 'ConnectorDisabled', `connector slack not injected into agent a: ${DISABLED}`],
      ['a', 'Warning', 'ConnectorSecretRefInvalid', 'connector bad not injected into agent a: spec.authSecretKeyRef needs both name and key'],
      ['a', 'Warning', 'ConnectorNotVisible', `connector owner/private not injected into agent a: ${NOT_VISIBLE('owner')}; removed CONNECTOR_PRIVATE_TOKEN, which the operator wrote for it, from container agent`],
      ['a', 'Warning', 'ConnectorNotVisible', `connector owner/absent not injected into agent a: ${NOT_VISIBLE('owner')}`],
      ['a', 'Warning', 'ConnectorRefInvalid', 'connector x/y/z not injected into agent a: not a valid reference: use "name" or "namespace/name"'],
      ['a', 'Warning', 'ConnectorNameCollision', 'connector shared/linear not injected into agent a: its name collides with linear (both would be MCP server "linear"); the first is kept'],
      ['a', 'Normal', 'ConnectorsInjected', 'injected github, linear into container agent of pod a-pod'],
    ],
  },
  {
    name: 'over the per-agent limit',
    pod: solo('many'),
    want: [
      ['many', 'Warning', 'ConnectorOverLimit', `connector c${MAX_CONNECTORS_PER_AGENT} not injected into agent many: more than ${MAX_CONNECTORS_PER_AGENT} connectors on one agent`],
      ['many', 'Warning', 'ConnectorOverLimit', `connector c${MAX_CONNECTORS_PER_AGENT + 1} not injected into agent many: more than ${MAX_CONNECTORS_PER_AGENT} connectors on one agent`],
      ['many', 'Normal', 'ConnectorsInjected', `injected ${Array.from({ length: MAX_CONNECTORS_PER_AGENT }, (_, i) => `c${i}`).join(', ')} into container agent of pod many-pod`],
    ],
  },
  {
    name: "a config of only refused connectors, taken out; nothing injected: no Normal event",
    pod: solo('only-slack', [{ name: 'KOMPUTER_MCP_SERVERS', value: '{"slack":{"type":"http","url":"https://slack.example/mcp"}}' }]),
    want: [
      ['only-slack', 'Warning', 'ConnectorDisabled', `connector slack not injected into agent only-slack: ${DISABLED}`],
      ['only-slack', 'Warning', 'ConnectorConfigRemoved', 'container agent: removed KOMPUTER_MCP_SERVERS, which listed only connectors agent only-slack may not use'],
    ],
  },
  {
    name: 'an agent container whose env is not a list',
    pod: solo('ok', 'nope'),
    want: [['ok', 'Warning', 'AgentContainerEnvInvalid', 'container agent: env is not a list, nothing injected']],
  },
  {
    name: 'a generateName pod: the Normal event says so',
    pod: solo('ok', undefined, { generateName: 'ok-' }),
    want: [['ok', 'Normal', 'ConnectorsInjected', 'injected github, shared/linear into container agent of a new pod ok-*']],
  },
  {
    name: 'a squad member without its container; the other member injected',
    pod: squad(['planner', 'coder'], ['planner']),
    want: [
      ['coder', 'Warning', 'NoAgentContainer', 'squad member coder: no container named coder, nothing injected for it'],
      ['planner', 'Normal', 'ConnectorsInjected', 'injected github into container planner of pod sq-pod'],
    ],
  },
  {
    name: 'a squad pod none of whose members has a container: each member hears it',
    pod: squad(['planner', 'coder'], ['sidecar']),
    want: [
      ['coder', 'Warning', 'NoAgentContainer', 'connectors not injected: squad member coder: no container named coder, nothing injected for it; squad member planner: no container named planner, nothing injected for it'],
      ['planner', 'Warning', 'NoAgentContainer', 'connectors not injected: squad member coder: no container named coder, nothing injected for it; squad member planner: no container named planner, nothing injected for it'],
    ],
  },
  {
    name: 'a KomputerAgent that is not found: nothing to attach an event to',
    pod: solo('ghost'),
    want: [],
    unmapped: ['agent ghost: KomputerAgent not found in namespace team-a, nothing injected for it'],
  },
  {
    name: 'a namespace the cache says is not enabled',
    pod: solo('o'),
    namespace: 'owner',
    want: [['o', 'Warning', 'NamespaceNotEnabled', 'connectors not injected: namespace owner is not enabled (komputer.ai/connector-injection=enabled is missing)']],
  },
  {
    name: 'opted out by annotation: nothing to say',
    pod: { ...solo('ok'), metadata: { name: 'p', annotations: { 'komputer.ai/inject-connectors': 'false' }, labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': 'ok' } } },
    want: [],
  },
  {
    name: 'not an agent pod',
    pod: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }] } },
    want: [],
  },
  {
    name: 'ephemeral: a member joining a running squad, with a skip',
    pod: squad(['planner'], ['planner'], ['coder']),
    oldPod: squad(['planner'], ['planner']),
    want: [
      ['coder', 'Warning', 'ConnectorNotFound', 'connector gone not injected into agent coder: connector not found in namespace team-a'],
      ['coder', 'Normal', 'ConnectorsInjected', 'injected github into container coder of pod sq-pod'],
    ],
  },
  {
    name: 'ephemeral: a container named like an agent of another squad',
    pod: squad(['planner'], ['planner'], ['writer']),
    oldPod: squad(['planner'], ['planner']),
    want: [['writer', 'Warning', 'NotSquadMember', 'ephemeral container writer: KomputerAgent writer is not a member of squad sq (its komputer.ai/squad label is "other"), nothing injected']],
  },
];

describe('podAdmissionEvents: outcome -> Events on the agents', () => {
  for (const row of ROWS) {
    test(row.name, () => {
      const view = store();
      const namespace = row.namespace ?? NS;
      const outcome = row.oldPod ? injectEphemeralContainers(row.pod, row.oldPod, namespace, view) : injectPod(row.pod, namespace, view);
      const events = podAdmissionEvents({ pod: row.pod, oldPod: row.oldPod, namespace, view, outcome });
      assert.deepEqual(
        events.map((e) => [e.agent.name, e.type, e.reason, e.message]),
        row.want.map((w) => [...w]),
      );
      for (const e of events) {
        assert.deepEqual(e.agent, { namespace, name: e.agent.name, uid: `uid-${e.agent.name}` }, 'regarding: the agent, with its uid');
        if (e.type === 'Warning') assert.ok(outcome.warnings.includes(e.message), `the message is an admission warning: ${e.message}`);
      }
      // Nothing said to the pod's creator is kept from the agents' owners (but for agents that do not exist).
      const said = new Set(events.map((e) => e.message));
      assert.deepEqual(outcome.warnings.filter((w) => !said.has(w)), [...(row.unmapped ?? [])]);
    });
  }

  test('every kind of skip has its own stable CamelCase reason; not-visible is one reason for missing and unshared', () => {
    const skips = FINDING_KINDS.filter((k) => FINDINGS[k].skip);
    const reasons = skips.map((k) => FINDINGS[k].event);
    assert.ok(skips.includes('not-visible') && skips.includes('missing'), 'missing and not-visible are both kinds');
    assert.equal(new Set(reasons).size, reasons.length, 'every kind of skip has its own reason');
    for (const k of skips) assert.ok(FINDINGS[k].warn, `skip ${k} is warned`);
    for (const r of EVENT_REASONS) assert.match(r, /^[A-Z][A-Za-z]+$/);
  });
});

describe('the pod handler carries the Events out', () => {
  const review = (dryRun: boolean) => podReview(solo('a'), NS, { dryRun });
  test('a real admission carries them; the response is unchanged by it', () => {
    const view = store();
    const withEvents = processReview(review(false), { view, policy: () => BUILTIN_POLICY, events: true }, handlerForKind);
    const without = processReview(review(false), { view, policy: () => BUILTIN_POLICY }, handlerForKind);
    assert.ok(withEvents.ok && without.ok);
    assert.equal(withEvents.decision.events?.length, 9);
    assert.equal(without.decision.events, undefined, 'no recorder: nothing computed');
    assert.deepEqual({ ...withEvents.body.response, uid: '' }, { ...without.body.response, uid: '' });
  });
  test('a dry run records nothing', () => {
    const out = processReview(review(true), { view: store(), policy: () => BUILTIN_POLICY, events: true }, handlerForKind);
    assert.ok(out.ok);
    assert.ok((out.body.response.warnings ?? []).length > 0, 'the dry run still gets its warnings');
    assert.equal(out.decision.events, undefined);
  });
  test('an ephemeral-containers UPDATE carries them too', () => {
    const pod = squad(['planner'], ['planner'], ['coder']);
    const out = processReview(podReview(pod, NS, { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: squad(['planner'], ['planner']) }), { view: store(), policy: () => BUILTIN_POLICY, events: true }, handlerForKind);
    assert.ok(out.ok);
    assert.deepEqual(out.decision.events?.map((e) => e.reason), ['ConnectorNotFound', 'ConnectorsInjected']);
  });
});
