// End-to-end: the service account's RBAC, exactly as rendered from manifests/base and
// applied by the harness (server-side apply), checked by impersonation with
// `kubectl auth can-i` (a SubjectAccessReview through the real RBAC authorizer): what the
// service needs, and nothing more. Table-driven; the service itself is not started.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kubectl, startEnvironment, stopEnvironment, type Environment } from './harness/index.ts';
import { parseManifests } from './harness/install.ts';
import { repoRoot } from './harness/paths.ts';

const OWN_NS = 'komputer-webhook-system';
const SA = 'komputer-connector-webhook';
const AS = `--as=system:serviceaccount:${OWN_NS}:${SA}`;
const TLS_SECRET = 'komputer-connector-webhook-tls';
const WEBHOOK_CONFIG = 'komputer-connector-webhook';
const OTHER_NS = 'team-a';

const CONNECTORS = 'komputerconnectors.komputer.komputer.ai';
const AGENTS = 'komputeragents.komputer.komputer.ai';
const LEASES = 'leases.coordination.k8s.io';
const MWC = 'mutatingwebhookconfigurations.admissionregistration.k8s.io';
const VWC = 'validatingwebhookconfigurations.admissionregistration.k8s.io';
const EVENTS = 'events.events.k8s.io';

let env: Environment;

before(async () => {
  env = await startEnvironment({ service: false });
  await env.createNamespace(OTHER_NS);
});
after(stopEnvironment);

/** One `kubectl auth can-i` question: the arguments after `can-i`, without --as. */
type Question = readonly string[];

async function canI(question: Question): Promise<'yes' | 'no'> {
  // can-i exits 1 for "no": not a failure here.
  const result = await env.kubectl(['auth', 'can-i', ...question, AS], { allowFailure: true });
  const answer = result.stdout.trim();
  assert.ok(answer === 'yes' || answer === 'no', `kubectl auth can-i ${question.join(' ')}: ${result.stdout}${result.stderr}`);
  assert.equal(result.code, answer === 'yes' ? 0 : 1, result.stderr);
  return answer;
}

async function expectAll(table: readonly (readonly [string, Question])[], want: 'yes' | 'no'): Promise<void> {
  const answers = await Promise.all(table.map(async ([why, q]) => ({ why, q, got: await canI(q) })));
  const wrong = answers.filter((a) => a.got !== want).map((a) => `${a.why}: kubectl auth can-i ${a.q.join(' ')} -> ${a.got}`);
  assert.deepEqual(wrong, [], `expected "${want}" for every row`);
}

const CAN: readonly (readonly [string, Question])[] = [
  // Caches: connectors, agents and namespaces, cluster-wide.
  ['list connectors everywhere', ['list', CONNECTORS, '--all-namespaces']],
  ['watch connectors everywhere', ['watch', CONNECTORS, '--all-namespaces']],
  ['get a connector', ['get', CONNECTORS, '-n', OTHER_NS]],
  ['list agents everywhere', ['list', AGENTS, '--all-namespaces']],
  ['watch agents everywhere', ['watch', AGENTS, '--all-namespaces']],
  ['list namespaces', ['list', 'namespaces']],
  ['watch namespaces', ['watch', 'namespaces']],
  // Attachment counts: the status subresource only.
  ['patch connector status', ['patch', CONNECTORS, '--subresource=status', '-n', OTHER_NS]],
  // Leader election in its own namespace.
  ['get leases in its namespace', ['get', LEASES, '-n', OWN_NS]],
  ['update leases in its namespace', ['update', LEASES, '-n', OWN_NS]],
  ['create its lease (first election)', ['create', LEASES, '-n', OWN_NS]],
  // The policy ConfigMap in its own namespace.
  ['get configmaps in its namespace', ['get', 'configmaps', '-n', OWN_NS]],
  ['list configmaps in its namespace', ['list', 'configmaps', '-n', OWN_NS]],
  ['watch configmaps in its namespace', ['watch', 'configmaps', '-n', OWN_NS]],
  // Its own certificate Secret, by name.
  ['get its TLS secret', ['get', `secrets/${TLS_SECRET}`, '-n', OWN_NS]],
  ['update its TLS secret', ['update', `secrets/${TLS_SECRET}`, '-n', OWN_NS]],
  // caBundle upkeep on exactly its own two webhook configurations.
  ['get its mutating webhook configuration', ['get', `${MWC}/${WEBHOOK_CONFIG}`]],
  ['patch its mutating webhook configuration', ['patch', `${MWC}/${WEBHOOK_CONFIG}`]],
  ['get its validating webhook configuration', ['get', `${VWC}/${WEBHOOK_CONFIG}`]],
  ['patch its validating webhook configuration', ['patch', `${VWC}/${WEBHOOK_CONFIG}`]],
  // Events on KomputerAgents, in the agents' namespaces: a new Event, then its series count.
  ['create events (events.k8s.io) where agents live', ['create', EVENTS, '-n', OTHER_NS]],
  ['patch events (events.k8s.io) where agents live', ['patch', EVENTS, '-n', OTHER_NS]],
  // Revocation: the leader's agent-pod cache, and restarts through the Eviction API only.
  ['list pods everywhere', ['list', 'pods', '--all-namespaces']],
  ['watch pods everywhere', ['watch', 'pods', '--all-namespaces']],
  ['evict a pod (pods/eviction)', ['create', 'pods', '--subresource=eviction', '-n', OTHER_NS]],
];

const CANNOT: readonly (readonly [string, Question])[] = [
  // Secrets: only its own one, and never list, create or delete.
  ['get secrets in another namespace', ['get', 'secrets', '-n', OTHER_NS]],
  ['list secrets in another namespace', ['list', 'secrets', '-n', OTHER_NS]],
  ['get a same-named secret in another namespace', ['get', `secrets/${TLS_SECRET}`, '-n', OTHER_NS]],
  ['get secrets anywhere', ['get', 'secrets', '--all-namespaces']],
  ['list secrets anywhere', ['list', 'secrets', '--all-namespaces']],
  ['watch secrets anywhere', ['watch', 'secrets', '--all-namespaces']],
  ['get another secret in its namespace', ['get', 'secrets/some-other-secret', '-n', OWN_NS]],
  ['update another secret in its namespace', ['update', 'secrets/some-other-secret', '-n', OWN_NS]],
  ['list secrets in its namespace', ['list', 'secrets', '-n', OWN_NS]],
  ['watch secrets in its namespace', ['watch', 'secrets', '-n', OWN_NS]],
  ['create secrets in its namespace', ['create', 'secrets', '-n', OWN_NS]],
  ['create secrets in another namespace', ['create', 'secrets', '-n', OTHER_NS]],
  // Connectors and agents: spec is read-only.
  ['update connectors', ['update', CONNECTORS, '-n', OTHER_NS]],
  ['patch connectors', ['patch', CONNECTORS, '-n', OTHER_NS]],
  ['create connectors', ['create', CONNECTORS, '-n', OTHER_NS]],
  ['update agents', ['update', AGENTS, '-n', OTHER_NS]],
  ['patch agent status', ['patch', AGENTS, '--subresource=status', '-n', OTHER_NS]],
  // Pods: it mutates them in admission and may evict them (revocation), it never writes them.
  ['create pods', ['create', 'pods', '-n', OTHER_NS]],
  ['patch pods', ['patch', 'pods', '-n', OTHER_NS]],
  ['update pods', ['update', 'pods', '-n', OTHER_NS]],
  ['update pod status', ['update', 'pods', '--subresource=status', '-n', OTHER_NS]],
  ['create pods in its namespace', ['create', 'pods', '-n', OWN_NS]],
  ['get pods', ['get', 'pods', '-n', OTHER_NS]],
  ['exec into pods', ['create', 'pods', '--subresource=exec', '-n', OTHER_NS]],
  // Namespaces: reads the enablement label, never sets it.
  ['patch namespaces', ['patch', 'namespaces']],
  ['update namespaces', ['update', `namespaces/${OTHER_NS}`]],
  // Leases and configmaps: only in its own namespace; the policy is the admin's to write.
  ['update leases elsewhere', ['update', LEASES, '-n', OTHER_NS]],
  ['get leases in kube-system', ['get', LEASES, '-n', 'kube-system']],
  ['get configmaps elsewhere', ['get', 'configmaps', '-n', OTHER_NS]],
  ['update configmaps in its namespace', ['update', 'configmaps', '-n', OWN_NS]],
  ['create configmaps in its namespace', ['create', 'configmaps', '-n', OWN_NS]],
  // Webhook configurations: not anyone else's, and not create/list.
  ['patch another mutating webhook configuration', ['patch', `${MWC}/someone-else`]],
  ['patch another validating webhook configuration', ['patch', `${VWC}/someone-else`]],
  ['get another mutating webhook configuration', ['get', `${MWC}/someone-else`]],
  ['patch webhook configurations without a name', ['patch', MWC]],
  ['list mutating webhook configurations', ['list', MWC]],
  ['create mutating webhook configurations', ['create', MWC]],
  ['create validating webhook configurations', ['create', VWC]],
  // Events: written, never read back, rewritten or deleted; nothing through the core group.
  ['get events', ['get', EVENTS, '-n', OTHER_NS]],
  ['list events', ['list', EVENTS, '--all-namespaces']],
  ['watch events', ['watch', EVENTS, '-n', OTHER_NS]],
  ['update events', ['update', EVENTS, '-n', OTHER_NS]],
  ['delete events', ['delete', EVENTS, '-n', OTHER_NS]],
  ['create core events', ['create', 'events.', '-n', OTHER_NS]],
  ['patch core events', ['patch', 'events.', '-n', OTHER_NS]],
  // Delete: nothing at all.
  ['delete connectors', ['delete', CONNECTORS, '-n', OTHER_NS]],
  ['delete agents', ['delete', AGENTS, '-n', OTHER_NS]],
  ['delete namespaces', ['delete', `namespaces/${OTHER_NS}`]],
  ['delete pods', ['delete', 'pods', '-n', OTHER_NS]],
  ['delete its lease', ['delete', LEASES, '-n', OWN_NS]],
  ['delete configmaps in its namespace', ['delete', 'configmaps', '-n', OWN_NS]],
  ['delete its TLS secret', ['delete', `secrets/${TLS_SECRET}`, '-n', OWN_NS]],
  ['delete its mutating webhook configuration', ['delete', `${MWC}/${WEBHOOK_CONFIG}`]],
  ['delete its validating webhook configuration', ['delete', `${VWC}/${WEBHOOK_CONFIG}`]],
  ['delete anything anywhere', ['delete', '*.*', '--all-namespaces']],
  // No escalation.
  ['create rolebindings in its namespace', ['create', 'rolebindings.rbac.authorization.k8s.io', '-n', OWN_NS]],
  ['create rolebindings elsewhere', ['create', 'rolebindings.rbac.authorization.k8s.io', '-n', OTHER_NS]],
  ['create clusterrolebindings', ['create', 'clusterrolebindings.rbac.authorization.k8s.io']],
  ['update its own role', ['update', `roles.rbac.authorization.k8s.io/${SA}`, '-n', OWN_NS]],
  ['update its own cluster role', ['update', `clusterroles.rbac.authorization.k8s.io/${SA}`]],
  ['escalate roles', ['escalate', 'roles.rbac.authorization.k8s.io', '-n', OWN_NS]],
  ['bind cluster roles', ['bind', 'clusterroles.rbac.authorization.k8s.io']],
  ['impersonate users', ['impersonate', 'users']],
  ['impersonate service accounts', ['impersonate', 'serviceaccounts', '-n', OWN_NS]],
  ['mint service account tokens', ['create', 'serviceaccounts', '--subresource=token', '-n', OWN_NS]],
  ['anything on anything', ['*', '*.*', '--all-namespaces']],
];

describe("the service account's RBAC (manifests/base as applied)", () => {
  test('the rendered manifests are the ones installed', async () => {
    // Guards the premise: the RBAC under test is manifests/base, unchanged by the harness.
    const rendered = parseManifests((await env.kubectl(['kustomize', path.join(repoRoot, 'manifests', 'base')])).stdout);
    const rbac = rendered.filter((m) => ['ClusterRole', 'Role', 'ClusterRoleBinding', 'RoleBinding'].includes(String(m['kind'])));
    assert.equal(rbac.length, 4);
    for (const m of rbac) {
      const md = m['metadata'] as { name: string; namespace?: string };
      const kind = `${String(m['kind']).toLowerCase()}.rbac.authorization.k8s.io`;
      const args = ['get', kind, md.name, '-o', 'json', ...(md.namespace ? ['-n', md.namespace] : [])];
      const stored = JSON.parse((await env.kubectl(args)).stdout) as Record<string, unknown>;
      for (const field of ['rules', 'roleRef', 'subjects']) {
        if (field in m) assert.deepEqual(stored[field], m[field], `${String(m['kind'])}/${md.name} ${field}`);
      }
    }
  });

  test(`the service account CAN do what the service needs (${CAN.length} checks)`, async () => {
    await expectAll(CAN, 'yes');
  });

  test(`the service account CANNOT do anything else (${CANNOT.length} checks)`, async () => {
    await expectAll(CANNOT, 'no');
  });

  test("with the service's own token, the API server agrees (real requests, not only reviews)", async () => {
    const asService = (args: string[]) => kubectl(env.serviceKubeconfig, args, { allowFailure: true });
    const tls = await asService(['get', 'secret', TLS_SECRET, '-n', OWN_NS, '-o', 'name']);
    assert.equal(tls.code, 0, tls.stderr);
    await env.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'not-yours', namespace: OWN_NS }, stringData: { token: 'x' } });
    await env.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'not-yours', namespace: OTHER_NS }, stringData: { token: 'x' } });
    for (const args of [
      ['get', 'secret', 'not-yours', '-n', OWN_NS],
      ['get', 'secret', 'not-yours', '-n', OTHER_NS],
      ['delete', 'secret', TLS_SECRET, '-n', OWN_NS, '--dry-run=server'],
      ['create', 'secret', 'generic', 'mine', '--from-literal=a=b', '-n', OWN_NS, '--dry-run=server'],
      ['create', 'rolebinding', 'escalate', '--clusterrole=cluster-admin', `--serviceaccount=${OWN_NS}:${SA}`, '-n', OWN_NS, '--dry-run=server'],
      ['label', 'namespace', OTHER_NS, 'komputer.ai/connector-injection=enabled', '--dry-run=server'],
    ]) {
      const result = await asService(args);
      assert.notEqual(result.code, 0, `kubectl ${args.join(' ')} must be refused`);
      assert.match(result.stderr, /forbidden/i, `kubectl ${args.join(' ')}`);
    }
  });
});
