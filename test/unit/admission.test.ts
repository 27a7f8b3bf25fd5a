// Admission-layer decisions that the golden cases do not cover: updates of objects the
// policy refuses, finalizer removal, and waiting (bounded) for a namespace cache that lags
// behind the API server's namespaceSelector.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { handlerForKind, processReview, processReviewAwaitingCache } from '../../src/admission/handlers.ts';
import { ClusterStore } from '../../src/cluster/store.ts';
import { BUILTIN_POLICY } from '../../src/policy/incompatible.ts';
import { podReview } from '../helpers/review.ts';

function connectorReview(operation: string, spec: Record<string, unknown>, oldSpec?: Record<string, unknown>, metadata: Record<string, unknown> = {}) {
  const obj = (s: Record<string, unknown>) => ({ apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerConnector', metadata: { name: 'n', namespace: 'a', ...metadata }, spec: { type: 'remote', service: 'notion', ...s } });
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: 'komputer.komputer.ai', version: 'v1alpha1', kind: 'KomputerConnector' }, operation, namespace: 'a', object: obj(spec), oldObject: oldSpec ? obj(oldSpec) : null } };
}

const ctx = { view: new ClusterStore(), policy: () => BUILTIN_POLICY };
const notionToken = { url: 'https://mcp.notion.com/mcp', authType: 'token' };

function verdict(body: unknown): { allowed: boolean; warnings?: string[] } {
  const out = processReview(body, ctx, handlerForKind);
  assert.ok(out.ok);
  return out.body.response;
}

describe('validating updates', () => {
  test('CREATE of a refused connector is denied', () => {
    assert.equal(verdict(connectorReview('CREATE', notionToken)).allowed, false);
  });
  test('an UPDATE that keeps the judged fields is allowed with a warning (labels, annotations, sharing)', () => {
    const r = verdict(connectorReview('UPDATE', notionToken, notionToken, { labels: { x: 'y' } }));
    assert.equal(r.allowed, true);
    assert.match(r.warnings![0]!, /would be refused if created now.*Notion/);
  });
  test('an UPDATE that changes to a refused URL is denied', () => {
    assert.equal(verdict(connectorReview('UPDATE', notionToken, { url: 'https://api.githubcopilot.com/mcp/', authType: 'token' })).allowed, false);
  });
  test('finishing a deletion (finalizer removal on an object being deleted) is never blocked', () => {
    const r = verdict(connectorReview('UPDATE', notionToken, { url: 'https://x.example/mcp' }, { deletionTimestamp: '2026-11-25T00:00:00Z' }));
    assert.equal(r.allowed, true);
  });
  test('DELETE is never validated', () => {
    assert.equal(verdict(connectorReview('DELETE', notionToken)).allowed, true);
  });
});

describe('namespace cache behind the API server', () => {
  const pod = { metadata: { name: 'p', labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': 'x' } }, spec: { containers: [{ name: 'agent', image: 'i' }] } };
  function store(enabled: boolean): ClusterStore {
    const s = new ClusterStore();
    s.putNamespace({ name: 'a', labels: enabled ? { 'komputer.ai/connector-injection': 'enabled' } : {} });
    s.putConnector({ namespace: 'a', name: 'gh', service: 'github', url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'gh', key: 'token' }, sharedWith: [] });
    s.putAgent({ namespace: 'a', name: 'x', connectors: ['gh'], officeManager: undefined });
    return s;
  }
  test('a label that arrives while the request waits is honoured', async () => {
    const s = store(false);
    const c = { view: s, policy: () => BUILTIN_POLICY, awaitNamespaceChange: (n: string, ms: number) => s.awaitNamespaceChange(n, ms) };
    setTimeout(() => s.putNamespace({ name: 'a', labels: { 'komputer.ai/connector-injection': 'enabled' } }), 50);
    const out = await processReviewAwaitingCache(podReview(pod, 'a'), c, handlerForKind);
    assert.ok(out.ok);
    assert.ok(out.body.response.patch, 'injected after the cache caught up');
  });
  test('without a change, the cache answer stands after the bound', async () => {
    const s = store(false);
    const c = { view: s, policy: () => BUILTIN_POLICY, awaitNamespaceChange: (n: string) => s.awaitNamespaceChange(n, 30) };
    const out = await processReviewAwaitingCache(podReview(pod, 'a'), c, handlerForKind);
    assert.ok(out.ok);
    assert.equal(out.body.response.patch, undefined);
    assert.match(out.body.response.warnings![0]!, /not enabled/);
  });
  test('an enabled namespace never waits', async () => {
    const s = store(true);
    let waited = false;
    const c = { view: s, policy: () => BUILTIN_POLICY, awaitNamespaceChange: async () => (waited = true) };
    const out = await processReviewAwaitingCache(podReview(pod, 'a'), c, handlerForKind);
    assert.ok(out.ok && out.body.response.patch);
    assert.equal(waited, false);
  });
});
