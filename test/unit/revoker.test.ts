// The leader's revocation loop (cluster/revocation.ts) around the pure decision: the cap on
// pods restarting at once across passes, a refused eviction retried, the Event and the
// counter. The evictor is a recording stand-in; the pods are put in the cache directly.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import fastJsonPatch from 'fast-json-patch';
import { Counter, Registry } from 'prom-client';
import { Revoker, type Evictor, type RevocationResult } from '../../src/cluster/revocation.ts';
import { ClusterStore } from '../../src/cluster/store.ts';
import type { AgentEvent } from '../../src/injection/events.ts';
import { injectPod } from '../../src/injection/inject.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { decodeAgent, decodeConnector, decodeNamespace, type JsonObject } from '../../src/model/objects.ts';

const NS = 'team-a';
const API = 'komputer.komputer.ai/v1alpha1';
const lines: string[] = [];
const logger = createLogger({ destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });

function world(disabled: boolean): ClusterStore {
  const s = new ClusterStore();
  s.putNamespace(decodeNamespace({ metadata: { name: NS, labels: { 'komputer.ai/connector-injection': 'enabled' }, annotations: { 'komputer.ai/revoke-stale-pods': 'true' } } }));
  s.putConnector(decodeConnector({ apiVersion: API, kind: 'KomputerConnector', metadata: { name: 'github', namespace: NS }, spec: { type: 'remote', service: 'github', url: 'https://api.githubcopilot.com/mcp/', authSecretKeyRef: { name: 'gh', key: 'token' }, disabled } }));
  for (const a of ['a1', 'a2', 'a3']) s.putAgent(decodeAgent({ apiVersion: API, kind: 'KomputerAgent', metadata: { name: a, namespace: NS, uid: `uid-${a}` }, spec: { connectors: ['github'] }, status: { taskStatus: 'Idle' } }));
  return s;
}

function pod(agent: string): JsonObject {
  const raw: JsonObject = {
    metadata: { name: `${agent}-pod`, namespace: NS, uid: `pod-${agent}`, labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': agent, [`komputer.ai/member-${agent}`]: 'true' } },
    spec: { containers: [{ name: 'agent', image: 'a' }] },
  };
  const outcome = injectPod(raw, NS, world(false));
  return fastJsonPatch.applyPatch(structuredClone(raw), outcome.patch as fastJsonPatch.Operation[], true, false).newDocument as JsonObject;
}

function setup(answers: RevocationResult[], settings: { maxConcurrent: number; maxPerPass: number }) {
  const store = world(true);
  const evicted: string[] = [];
  const evictor: Evictor = {
    evict: async (_ns, name) => {
      evicted.push(name);
      return answers.shift() ?? 'evicted';
    },
  };
  const events: AgentEvent[] = [];
  const counted = new Counter({ name: 'revocations_total', help: 'h', labelNames: ['result'], registers: [new Registry()] });
  const r = new Revoker(undefined, store, evictor, { mode: 'opt-in', debounceMs: 1_000_000, resyncMs: 1_000_000, ...settings }, { record: (e) => events.push(...e), counted }, logger);
  for (const a of ['a1', 'a2', 'a3']) r.pods.set(`${NS}/${a}-pod`, pod(a));
  r.setLeading(true);
  const count = async (result: string): Promise<number> => (await counted.get()).values.find((v) => v.labels.result === result)?.value ?? -1;
  return { r, evicted, events, count };
}

describe('revoker: the leader loop around the decision', () => {
  test('at most maxConcurrent restarting: the next waits until an evicted pod is gone', async () => {
    const { r, evicted, count } = setup([], { maxConcurrent: 2, maxPerPass: 5 });
    await r.pass();
    assert.deepEqual(evicted, ['a1-pod', 'a2-pod']);
    await r.pass();
    assert.deepEqual(evicted, ['a1-pod', 'a2-pod'], 'two still stored: nothing more, and none asked for twice');
    r.pods.delete(`${NS}/a1-pod`);
    r.podsChanged();
    await r.pass();
    assert.deepEqual(evicted, ['a1-pod', 'a2-pod', 'a3-pod']);
    assert.equal(await count('evicted'), 3);
    r.setLeading(false);
  });

  test('the per-pass cap holds even with room to restart more', async () => {
    const { r, evicted } = setup([], { maxConcurrent: 10, maxPerPass: 1 });
    await r.pass();
    assert.deepEqual(evicted, ['a1-pod']);
    await r.pass();
    assert.deepEqual(evicted, ['a1-pod', 'a2-pod']);
    r.setLeading(false);
  });

  test('a refused eviction (a PodDisruptionBudget) is counted, recorded nowhere else, and retried', async () => {
    const { r, evicted, events, count } = setup(['blocked'], { maxConcurrent: 1, maxPerPass: 1 });
    await r.pass();
    assert.deepEqual(evicted, ['a1-pod']);
    assert.equal(await count('blocked'), 1);
    assert.equal(events.length, 0);
    await r.pass();
    assert.deepEqual(evicted, ['a1-pod', 'a1-pod'], 'retried on the next pass');
    assert.equal(await count('evicted'), 1);
    assert.deepEqual(events.map((e) => [e.agent, e.type, e.reason]), [[{ namespace: NS, name: 'a1', uid: 'uid-a1' }, 'Normal', 'ConnectorRevoked']]);
    r.setLeading(false);
  });

  test('an eviction that throws counts as failed and the loop goes on', async () => {
    const store = world(true);
    const counted = new Counter({ name: 'revocations_total', help: 'h', labelNames: ['result'], registers: [new Registry()] });
    const r = new Revoker(undefined, store, { evict: async () => Promise.reject(new Error('boom')) }, { mode: 'opt-in', debounceMs: 1e6, resyncMs: 1e6, maxConcurrent: 1, maxPerPass: 1 }, { record: () => {}, counted }, logger);
    r.pods.set(`${NS}/a1-pod`, pod('a1'));
    r.setLeading(true);
    await r.pass();
    assert.equal((await counted.get()).values.find((v) => v.labels.result === 'failed')?.value, 1);
    assert.ok(lines.some((l) => l.includes('eviction of a stale agent pod failed')));
    r.setLeading(false);
  });

  test('not leading: no pass, nothing evicted', async () => {
    const { r, evicted } = setup([], { maxConcurrent: 1, maxPerPass: 1 });
    r.setLeading(false);
    assert.deepEqual(await r.pass(), []);
    assert.deepEqual(evicted, []);
  });
});
