// The chart as an admin runs it, on a real node: `helm install` of charts/ with the image
// built from the project's Dockerfile (`npm run image`), 2 replicas. The API server calls
// the webhook through its Service, the leader fills the caBundle, and an agent pod created
// in an enabled namespace is stored injected and started by the kubelet.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createHelm, CHART_DIR, RELEASE, RELEASE_NAMESPACE, type Helm } from './fixtures/helm.ts';
import { startEnvironment, stopEnvironment, type Environment } from './harness/index.ts';
import { untilOnNode } from './fixtures/node-wait.ts';
import { buildImages, IMAGES } from '../image/images.ts';
const TEAM = 'chart-team';
const TOKEN = 'ghp_NODECHARTCANARY0123456789';
let env: Environment;
let helm: Helm;

function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs?: number): Promise<T> {
  return untilOnNode(env, what, probe, ok, timeoutMs);
}

before(async () => {
  // The image of the current tree (`npm run image`: cached per input hash, built if stale).
  const [image] = await buildImages('app');
  assert.equal(image?.name, IMAGES.webhook);
  env = await startEnvironment({ node: true, manifests: false, service: false });
  env.node!.importImage(image.archive);
  helm = await createHelm({ home: path.join(env.controlPlane.dir, 'helm-home'), kubeconfig: env.kubeconfig });
});
after(stopEnvironment);

test('helm install runs 2 replicas of the image; the leader fills the caBundle; the API server calls the webhook through its Service', async () => {
  await env.kubectl(['create', 'namespace', RELEASE_NAMESPACE]);
  const install = await helm.run(
    ['install', RELEASE, CHART_DIR, '-n', RELEASE_NAMESPACE, '--set', `image.repository=${IMAGES.webhook.split(':')[0]}`, '--set', `image.tag=${IMAGES.webhook.split(':')[1]}`, '--set', 'image.pullPolicy=Never', '--wait', '--timeout', '180s'],
    { allowFailure: true },
  );
  assert.equal(install.code, 0, `helm install failed: ${install.stderr}`);
  const ready = await until(
    '2 webhook pods Ready',
    async () => (await env.kubectl(['get', 'deployment', '-n', RELEASE_NAMESPACE, '-o', 'jsonpath={.items[0].status.readyReplicas}'])).stdout,
    (v) => v === '2',
  );
  assert.equal(ready, '2');
  const caBundle = await until(
    'caBundle filled by the leader',
    async () => (await env.kubectl(['get', 'mutatingwebhookconfigurations', '-o', 'jsonpath={.items[*].webhooks[*].clientConfig.caBundle}'])).stdout.trim(),
    (v) => v !== '' && !v.split(' ').includes(''),
  );
  assert.ok(caBundle.length > 100);
  const service = (await env.kubectl(['get', 'mutatingwebhookconfigurations', '-o', 'jsonpath={.items[*].webhooks[*].clientConfig.service.name}'])).stdout.trim();
  assert.ok(service !== '', 'the webhook is called through a Service, not a URL');

  await env.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: TEAM, labels: { 'komputer.ai/connector-injection': 'enabled' } } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gh', namespace: TEAM }, type: 'Opaque', stringData: { token: TOKEN } },
    {
      apiVersion: 'komputer.komputer.ai/v1alpha1',
      kind: 'KomputerConnector',
      metadata: { name: 'github', namespace: TEAM },
      spec: { type: 'remote', service: 'github', url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'gh', key: 'token' } },
    },
    { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { name: 'a1', namespace: TEAM }, spec: { instructions: 'help', connectors: ['github'] } },
  ]);
  await until('default ServiceAccount in the team namespace', async () => (await env.kubectl(['get', 'sa', 'default', '-n', TEAM], { allowFailure: true })).code, (c) => c === 0, 30_000);
  const created = await env.kubectl(['create', '-f', '-', '-o', 'json'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'a1-pod', namespace: TEAM, labels: { 'komputer.ai/agent-name': 'a1', 'komputer.ai/squad': 'false', 'komputer.ai/member-a1': 'true' } },
      spec: { restartPolicy: 'Never', containers: [{ name: 'agent', image: 'komputer-e2e.local/probe:1', imagePullPolicy: 'Never', args: ['env', 'CONNECTOR_GITHUB_TOKEN', 'KOMPUTER_MCP_SERVERS'] }] },
    }),
  });
  const pod = JSON.parse(created.stdout) as { spec: { containers: { env?: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[] }[] } };
  const tokenEnv = pod.spec.containers[0]!.env?.find((e) => e.name === 'CONNECTOR_GITHUB_TOKEN');
  assert.deepEqual(tokenEnv?.valueFrom?.secretKeyRef, { name: 'gh', key: 'token' }, 'injected through the Service-called webhook');
  const message = await until(
    'agent pod finished',
    async () => (await env.kubectl(['get', 'pod', 'a1-pod', '-n', TEAM, '-o', 'jsonpath={.status.containerStatuses[0].state.terminated.message}'])).stdout,
    (m) => m !== '',
  );
  assert.match(message, /^CONNECTOR_GITHUB_TOKEN sha256=[0-9a-f]{64}$/m, 'the kubelet resolved the injected secretKeyRef');
  assert.doesNotMatch(message, /unset/);
});

test('the Lease moves to the other replica when the leader pod is killed; no replica logs the token', async () => {
  const holder = async (): Promise<string> =>
    (await env.kubectl(['get', 'lease', 'komputer-connector-webhook', '-n', RELEASE_NAMESPACE, '-o', 'jsonpath={.spec.holderIdentity}'], { allowFailure: true })).stdout.trim();
  const pods = (await env.kubectl(['get', 'pods', '-n', RELEASE_NAMESPACE, '-o', 'jsonpath={.items[*].metadata.name}'])).stdout.trim().split(' ');
  assert.equal(pods.length, 2);
  // The canary: neither replica's log (read through the kubelet) carries the token.
  for (const pod of pods) {
    const logs = await env.kubectl(['logs', pod, '-n', RELEASE_NAMESPACE]);
    assert.ok(logs.stdout.length > 0, `${pod} logged something`);
    assert.ok(!logs.stdout.includes(TOKEN), `${pod} logged the token`);
  }
  // Memory as the kernel counts it for the limit (cgroup v1: usage minus inactive file pages).
  for (const pod of pods) {
    const uid = (await env.kubectl(['get', 'pod', pod, '-n', RELEASE_NAMESPACE, '-o', 'jsonpath={.metadata.uid}'])).stdout.trim();
    const dir = `/sys/fs/cgroup/memory/kubepods/burstable/pod${uid}`;
    const usage = Number(readFileSync(`${dir}/memory.usage_in_bytes`, 'utf8'));
    const inactive = Number(/^total_inactive_file (\d+)$/m.exec(readFileSync(`${dir}/memory.stat`, 'utf8'))?.[1] ?? 0);
    const limit = Number(readFileSync(`${dir}/memory.limit_in_bytes`, 'utf8'));
    const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
    console.log(`${pod}: working set ${mib(usage - inactive)} MiB (limit ${mib(limit)} MiB) after install and one injection`);
    assert.ok(usage - inactive < limit);
  }
  const leader = await until('a leader', holder, (h) => pods.includes(h));
  const follower = pods.find((p) => p !== leader)!;
  const t0 = Date.now();
  await env.kubectl(['delete', 'pod', leader, '-n', RELEASE_NAMESPACE, '--grace-period=0', '--force', '--wait=false']);
  const next = await until('the Lease held by another replica', holder, (h) => h !== '' && h !== leader, 90_000);
  console.log(`lease moved from ${leader} to ${next} in ${Date.now() - t0} ms`);
  assert.ok(next === follower || !pods.includes(next), `new holder ${next}`);
});
