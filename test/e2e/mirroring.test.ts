// Opt-in Secret mirroring against the real API server: a shared connector's Secret is
// copied into exactly the namespaces that are listed AND have an agent using it, kept in
// sync with its source, and removed when no longer needed. The service runs with the
// extra RBAC of manifests/components/secret-mirroring, as an admin would install it.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startEnvironment, stopEnvironment, type Environment } from './harness/index.ts';
import { repoRoot } from './harness/paths.ts';

const TOKEN = 'ghp_MIRRORCANARY000111222333';
let env: Environment;

async function secretData(ns: string, name: string): Promise<Record<string, string> | undefined> {
  const r = await env.kubectl(['get', 'secret', name, '-n', ns, '-o', 'json'], { allowFailure: true });
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { data?: Record<string, string> }).data ?? {};
}

async function eventually<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!ok(last)) {
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
    last = await probe();
  }
  return last;
}

before(async () => {
  env = await startEnvironment({ serviceArgs: ['--mirror-shared-secrets', '--controller-quiet-ms', '200'] });
  await env.apply(readFileSync(path.join(repoRoot, 'manifests', 'components', 'secret-mirroring', 'rbac.yaml'), 'utf8'));
  for (const ns of ['platform', 'team-a', 'team-b', 'team-c']) await env.createNamespace(ns, { enabled: true });
  await env.apply([
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gh', namespace: 'platform' }, type: 'Opaque', stringData: { token: TOKEN } },
    {
      apiVersion: 'komputer.komputer.ai/v1alpha1',
      kind: 'KomputerConnector',
      metadata: { name: 'github', namespace: 'platform', annotations: { 'komputer.ai/shared-with-namespaces': 'team-a,team-b' } },
      spec: { type: 'remote', service: 'github', url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'gh', key: 'token' } },
    },
  ]);
});
after(stopEnvironment);

test('mirrors exactly where a listed namespace has an agent using the connector, never elsewhere', async () => {
  await env.apply([
    { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { name: 'a', namespace: 'team-a' }, spec: { instructions: 'help', connectors: ['platform/github'] } },
    { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { name: 'c', namespace: 'team-c' }, spec: { instructions: 'help', connectors: ['platform/github'] } },
  ]);
  const data = await eventually('mirror in team-a', () => secretData('team-a', 'gh-from-platform'), (d) => d !== undefined);
  assert.equal(Buffer.from(data!.token!, 'base64').toString(), TOKEN);
  const labels = JSON.parse((await env.kubectl(['get', 'secret', 'gh-from-platform', '-n', 'team-a', '-o', 'jsonpath={.metadata.labels}'])).stdout) as Record<string, string>;
  assert.equal(labels['komputer.ai/synced-from-namespace'], 'platform');
  assert.equal(labels['komputer.ai/synced-for-connector'], 'github');
  assert.equal(await secretData('team-b', 'gh-from-platform'), undefined, 'listed, but no agent uses it there');
  assert.equal(await secretData('team-c', 'gh-from-platform'), undefined, 'an agent uses it, but team-c is not listed');
});

test('a rotated source token reaches the mirror; an unused mirror is deleted', async () => {
  const rotated = 'ghp_ROTATED999888777';
  await env.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gh', namespace: 'platform' }, type: 'Opaque', stringData: { token: rotated } });
  // Token rotation is not an agent/connector event: nudge a pass by touching the agent.
  await env.apply({ apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { name: 'a', namespace: 'team-a', labels: { touched: '1' } }, spec: { instructions: 'help', connectors: ['platform/github'] } });
  await eventually('rotated token mirrored', async () => Buffer.from((await secretData('team-a', 'gh-from-platform'))?.token ?? '', 'base64').toString(), (t) => t === rotated);
  await env.kubectl(['delete', 'komputeragent', 'a', '-n', 'team-a']);
  await eventually('mirror deleted', () => secretData('team-a', 'gh-from-platform'), (d) => d === undefined);
});

test('a mirror someone else made is left alone', async () => {
  await env.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gh-from-platform', namespace: 'team-b', labels: { 'komputer.ai/synced-for-connector': 'github' } }, type: 'Opaque', stringData: { token: 'platform-made' } });
  await env.apply({ apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { name: 'b', namespace: 'team-b' }, spec: { instructions: 'help', connectors: ['platform/github'] } });
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(Buffer.from((await secretData('team-b', 'gh-from-platform'))!.token!, 'base64').toString(), 'platform-made');
  await env.kubectl(['delete', 'komputeragent', 'b', '-n', 'team-b']);
  await new Promise((r) => setTimeout(r, 3000));
  assert.ok(await secretData('team-b', 'gh-from-platform'), 'not deleted either');
});

test('the token value never appears in the service log', () => {
  const log = readFileSync(env.service!.logFile, 'utf8');
  assert.ok(log.includes('mirrored a shared connector Secret'), 'mirroring was logged');
  assert.ok(!log.includes(TOKEN) && !log.includes('ghp_ROTATED999888777'), 'token in the log');
  assert.ok(!log.includes(Buffer.from(TOKEN).toString('base64')), 'base64 token in the log');
});
