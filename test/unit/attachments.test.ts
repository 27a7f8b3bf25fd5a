// Attachment counting (pure) and the controller's queue semantics with an in-memory
// writer: coalescing, write-only-when-different, conflicts, deletes mid-flight, relists.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { AttachmentController, type StatusWriter, type WriteResult } from '../../src/attachments/controller.ts';
import { computeAll, ReferenceIndex, statusFor } from '../../src/attachments/counts.ts';
import { ClusterStore } from '../../src/cluster/store.ts';
import { createLogger } from '../../src/logging/logger.ts';
import type { Agent, Connector } from '../../src/model/objects.ts';

const quiet = createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) });

function connector(namespace: string, name: string, sharedWith: string[] = [], status?: Connector['status']): Connector {
  return { namespace, name, service: name, url: 'https://x/mcp', authType: 'token', authSecretKeyRef: undefined, sharedWith, status, resourceVersion: '1' };
}
function agent(namespace: string, name: string, connectors: string[], officeManager?: string): Agent {
  return { namespace, name, connectors, officeManager };
}

describe('statusFor / computeAll', () => {
  const cases: { name: string; connectors: Connector[]; agents: Agent[]; want: Record<string, [number, string[]]> }[] = [
    {
      name: 'same-namespace by name, other namespaces as namespace/name, sorted',
      connectors: [connector('a', 'gh', ['b', 'c'])],
      agents: [agent('a', 'zed', ['gh']), agent('c', 'one', ['a/gh']), agent('a', 'alpha', ['a/gh']), agent('b', 'two', ['a/gh'])],
      want: { 'a/gh': [4, ['alpha', 'b/two', 'c/one', 'zed']] },
    },
    {
      name: 'a reference from a namespace the connector is not shared with does not count',
      connectors: [connector('a', 'gh', ['b'])],
      agents: [agent('c', 'x', ['a/gh']), agent('b', 'y', ['a/gh'])],
      want: { 'a/gh': [1, ['b/y']] },
    },
    {
      name: 'shared with * counts every namespace',
      connectors: [connector('a', 'gh', ['*'])],
      agents: [agent('c', 'x', ['a/gh'])],
      want: { 'a/gh': [1, ['c/x']] },
    },
    {
      name: 'a name resolves in the agent namespace only; duplicates in a list count once',
      connectors: [connector('a', 'gh'), connector('b', 'gh')],
      agents: [agent('b', 'x', ['gh', 'b/gh', 'gh'])],
      want: { 'a/gh': [0, []], 'b/gh': [1, ['x']] },
    },
    {
      name: 'office-manager inheritance does not attach (only spec.connectors count)',
      connectors: [connector('a', 'gh')],
      agents: [agent('a', 'boss', ['gh']), agent('a', 'sub', [], 'boss')],
      want: { 'a/gh': [1, ['boss']] },
    },
    {
      name: 'a disabled connector still counts the agents that reference it (they get it back when re-enabled)',
      connectors: [{ ...connector('a', 'gh', ['b']), disabled: true }],
      agents: [agent('a', 'x', ['gh']), agent('b', 'y', ['a/gh']), agent('c', 'z', ['a/gh'])],
      want: { 'a/gh': [2, ['b/y', 'x']] },
    },
    {
      name: 'malformed references are ignored',
      connectors: [connector('a', 'gh')],
      agents: [agent('a', 'x', ['', 'a/b/gh', '/gh'])],
      want: { 'a/gh': [0, []] },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const all = computeAll(c.connectors, c.agents);
      const got = Object.fromEntries([...all].map(([k, v]) => [k, [v.attachedAgents, [...v.agentNames]]]));
      assert.deepEqual(got, c.want);
    });
  }

  test('the incremental index equals a rebuild after any sequence of changes', () => {
    const index = new ReferenceIndex();
    const agents = new Map<string, Agent>();
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 2000; i++) {
      const name = `ag${rand(50)}`;
      const ns = `ns${rand(3)}`;
      const key = `${ns}/${name}`;
      const prev = agents.get(key);
      const next = rand(5) === 0 ? undefined : agent(ns, name, Array.from({ length: rand(4) }, () => (rand(2) ? `c${rand(6)}` : `ns${rand(3)}/c${rand(6)}`)));
      index.update(prev, next);
      if (next) agents.set(key, next);
      else agents.delete(key);
    }
    const rebuilt = ReferenceIndex.build(agents.values());
    for (let ns = 0; ns < 3; ns++) {
      for (let c = 0; c < 6; c++) {
        const conn = connector(`ns${ns}`, `c${c}`, ['*']);
        assert.deepEqual(statusFor(conn, index.referencing(`ns${ns}/c${c}`)), statusFor(conn, rebuilt.referencing(`ns${ns}/c${c}`)));
      }
    }
  });
});

class MemoryWriter implements StatusWriter {
  writes: { key: string; attachedAgents: number; agentNames: readonly string[] }[] = [];
  conflictsLeft = 0;
  failuresLeft = 0;
  private readonly store: ClusterStore;
  constructor(store: ClusterStore) {
    this.store = store;
  }
  async write(namespace: string, name: string, status: { attachedAgents: number; agentNames: readonly string[] }): Promise<WriteResult> {
    await new Promise((r) => setImmediate(r));
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error('connection reset');
    }
    if (this.conflictsLeft > 0) {
      this.conflictsLeft--;
      return { kind: 'conflict' };
    }
    if (!this.store.connector(namespace, name)) return { kind: 'gone' };
    this.writes.push({ key: `${namespace}/${name}`, ...status });
    return { kind: 'written', resourceVersion: String(this.writes.length + 1) };
  }
}

function setup(connectors: Connector[], agents: Agent[] = []) {
  const store = new ClusterStore();
  for (const c of connectors) store.putConnector(c);
  for (const a of agents) store.putAgent(a);
  const writer = new MemoryWriter(store);
  const controller = new AttachmentController(store, writer, quiet, undefined, { quietMs: 20, maxWaitMs: 200, backoffMs: { initial: 5, max: 20 } });
  controller.connectorsReplaced();
  controller.agentsReplaced([...store.agents.values()]);
  return { store, writer, controller };
}

async function settle(controller: AttachmentController): Promise<void> {
  await new Promise((r) => setTimeout(r, 60));
  await controller.idle();
}

describe('AttachmentController', () => {
  test('start recomputes all and writes only connectors whose value differs', async () => {
    const { writer, controller } = setup([connector('a', 'gh'), connector('a', 'slack', [], { attachedAgents: 1, agentNames: ['x'] }), connector('a', 'idle', [], { attachedAgents: 0, agentNames: [] })], [agent('a', 'x', ['gh', 'slack'])]);
    controller.start();
    await settle(controller);
    assert.deepEqual(writer.writes, [{ key: 'a/gh', attachedAgents: 1, agentNames: ['x'] }]);
    await controller.stop();
  });

  test('a burst of 1,000 agent changes touching one connector produces one write', async () => {
    const { store, writer, controller } = setup([connector('a', 'gh', [], { attachedAgents: 0, agentNames: [] })]);
    controller.start();
    await settle(controller);
    for (let i = 0; i < 1000; i++) {
      const a = agent('a', `agent-${String(i).padStart(4, '0')}`, ['gh']);
      store.putAgent(a);
      controller.agentChanged(undefined, a);
    }
    await settle(controller);
    assert.equal(writer.writes.length, 1);
    assert.equal(writer.writes[0]!.attachedAgents, 1000);
    await controller.stop();
  });

  test('conflicts and transient errors are retried until the value is written', async () => {
    const { writer, controller } = setup([connector('a', 'gh')], [agent('a', 'x', ['gh'])]);
    writer.conflictsLeft = 2;
    writer.failuresLeft = 1;
    controller.start();
    for (let i = 0; i < 20 && writer.writes.length === 0; i++) await settle(controller);
    assert.deepEqual(writer.writes, [{ key: 'a/gh', attachedAgents: 1, agentNames: ['x'] }]);
    await controller.stop();
  });

  test('a connector deleted mid-flight is not an error and is not written', async () => {
    const { store, writer, controller } = setup([connector('a', 'gh')], [agent('a', 'x', ['gh'])]);
    store.connectors.delete('a/gh');
    controller.start();
    await settle(controller);
    assert.deepEqual(writer.writes, []);
    await controller.stop();
  });

  test('agents moving between connectors update both (old and new references)', async () => {
    const { store, writer, controller } = setup([connector('a', 'gh', [], { attachedAgents: 1, agentNames: ['x'] }), connector('a', 'slack', [], { attachedAgents: 0, agentNames: [] })], [agent('a', 'x', ['gh'])]);
    controller.start();
    await settle(controller);
    assert.equal(writer.writes.length, 0);
    const prev = store.agent('a', 'x');
    const next = agent('a', 'x', ['slack']);
    store.putAgent(next);
    controller.agentChanged(prev, next);
    await settle(controller);
    assert.deepEqual(
      writer.writes.sort((p, q) => p.key.localeCompare(q.key)),
      [
        { key: 'a/gh', attachedAgents: 0, agentNames: [] },
        { key: 'a/slack', attachedAgents: 1, agentNames: ['x'] },
      ],
    );
    await controller.stop();
  });

  test('a relist after missed events converges to the truth', async () => {
    const { store, writer, controller } = setup([connector('a', 'gh', [], { attachedAgents: 5, agentNames: ['stale1', 'stale2', 'stale3', 'stale4', 'stale5'] })]);
    controller.start();
    await settle(controller);
    // Events were missed: the agents appear only through a relist.
    const agents = [agent('a', 'p', ['gh']), agent('b', 'q', ['a/gh'])];
    for (const a of agents) store.putAgent(a);
    controller.agentsReplaced(agents);
    await settle(controller);
    assert.deepEqual(writer.writes.at(-1), { key: 'a/gh', attachedAgents: 1, agentNames: ['p'] });
    await controller.stop();
  });

  test('leader before the lists complete: no pass runs over a partial index', async () => {
    const store = new ClusterStore();
    const writer = new MemoryWriter(store);
    const controller = new AttachmentController(store, writer, quiet, undefined, { quietMs: 5, maxWaitMs: 20, backoffMs: { initial: 5, max: 20 } });
    controller.start();
    // The connector list is in; the agents are still being listed (a restart at scale).
    store.putConnector(connector('a', 'gh', [], { attachedAgents: 2, agentNames: ['x', 'y'] }));
    controller.connectorsReplaced();
    await new Promise((r) => setTimeout(r, 100)); // 20 quiet periods, 5 max waits
    assert.deepEqual(writer.writes, [], 'no write from an empty agent index');
    assert.equal(controller.passes, 0);
    const agents = [agent('a', 'x', ['gh']), agent('a', 'y', ['gh']), agent('a', 'z', ['gh'])];
    for (const a of agents) store.putAgent(a);
    controller.agentsReplaced(agents);
    await settle(controller);
    assert.deepEqual(writer.writes, [{ key: 'a/gh', attachedAgents: 3, agentNames: ['x', 'y', 'z'] }]);
    await controller.stop();
  });

  test('not leader: events update the index but nothing is written', async () => {
    const { store, writer, controller } = setup([connector('a', 'gh')]);
    const a = agent('a', 'x', ['gh']);
    store.putAgent(a);
    controller.agentChanged(undefined, a);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(writer.writes.length, 0);
    controller.start();
    await settle(controller);
    assert.deepEqual(writer.writes, [{ key: 'a/gh', attachedAgents: 1, agentNames: ['x'] }]);
    await controller.stop();
  });
});

describe('desiredMirrors', () => {
  test('only listed namespaces with an agent using the connector get a mirror', async () => {
    const { desiredMirrors } = await import('../../src/attachments/mirrors.ts');
    const store = new ClusterStore();
    store.putConnector({ ...connector('platform', 'gh', ['team-a', 'team-b']), authSecretKeyRef: { name: 'gh-token', key: 'token' } });
    store.putConnector({ ...connector('platform', 'open', ['*']), authSecretKeyRef: undefined });
    const agents = [agent('team-a', 'x', ['platform/gh', 'platform/open']), agent('team-c', 'y', ['platform/gh']), agent('platform', 'z', ['gh']), agent('team-a', 'w', ['platform/gh'])];
    const got = [...desiredMirrors(agents, store).values()];
    assert.deepEqual(got, [{ targetNamespace: 'team-a', name: 'gh-token-from-platform', sourceNamespace: 'platform', sourceSecret: 'gh-token', connector: 'gh' }]);
  });
});
