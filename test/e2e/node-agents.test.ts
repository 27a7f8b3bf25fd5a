// Agents that run, on a real node: the chart installed from the local image (2 replicas, the
// API server calls the webhook through its Service), an in-cluster fake MCP server (a Pod and
// a Service, test/image/fake-mcp) and agent pods running the test agent runtime
// (test/image/agent-runtime), created as the platform's operator creates them (SPEC.md's
// labels, squad containers named after their member, a member added to a running squad as an
// ephemeral container through pods/ephemeralcontainers, a shared connector's Secret mirrored
// as `<secret>-from-<ns>`). The kubelet resolves the injected secretKeyRefs, the runtime
// calls each server from KOMPUTER_MCP_SERVERS, and the fake server's records (SHA-256
// digests only) show each token in the header its auth type asks for. The canary values
// never reach the replicas' logs, the agents' Events or /metrics.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createHelm, CHART_DIR, RELEASE, RELEASE_NAMESPACE, type Helm } from './fixtures/helm.ts';
import { startEnvironment, stopEnvironment, type Environment } from './harness/index.ts';
import { untilOnNode } from './fixtures/node-wait.ts';
import { buildImages, IMAGES } from '../image/images.ts';

const TEAM = 'agents-team';
const PLATFORM = 'agents-platform';
const MCP_NS = 'agents-mcp';
const SQUAD = 'alpha';
const API = 'komputer.komputer.ai/v1alpha1';
const METRICS_PORT = 9090;

// Canary tokens: each must reach its server (as a digest in the record) and nowhere else.
const TOKENS = {
  github: 'ghp_AGENTSCANARYgithub0123456789ab',
  linear: 'lin_api_AGENTSCANARYlinear0123456789',
  wiki: 'wiki_AGENTSCANARYmember0123456789',
  shared: 'ghp_AGENTSCANARYsharedPlatform012345',
  search: 'key_AGENTSCANARYheader0123456789ab',
  notion: 'ya29.AGENTSCANARYoauthAccess0123456789',
} as const;
const OAUTH_JSON = JSON.stringify({ access_token: TOKENS.notion, token_type: 'Bearer', refresh_token: 'AGENTSCANARYrefresh0123' });

const sha256 = (v: string): string => createHash('sha256').update(v).digest('hex');

let env: Environment;
let helm: Helm;
let mcpBase: string;

interface McpRecord { path: string; client: string | null; bearerSha256: string | null; headers: Record<string, string> }
interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }
interface Container { name: string; env?: EnvVar[] }
interface StoredPod {
  spec: { containers: Container[]; ephemeralContainers?: Container[] };
  status?: {
    phase?: string;
    containerStatuses?: { name: string; state?: Record<string, { exitCode?: number }> }[];
    ephemeralContainerStatuses?: { name: string; state?: Record<string, { exitCode?: number }> }[];
  };
}

function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs?: number): Promise<T> {
  return untilOnNode(env, what, probe, ok, timeoutMs);
}

async function getJson<T>(args: readonly string[]): Promise<T> {
  return JSON.parse((await env.kubectl([...args, '-o', 'json'])).stdout) as T;
}

/** The fake MCP server's records, read through the API server's pod proxy. */
async function records(): Promise<McpRecord[]> {
  const r = await env.kubectl(['get', '--raw', `/api/v1/namespaces/${MCP_NS}/pods/fake-mcp:8080/proxy/_records`]);
  return (JSON.parse(r.stdout) as { records: McpRecord[] }).records;
}

/** The records of `client` calling `server`'s path, once there is at least one. */
async function callsOf(client: string, server: string): Promise<McpRecord[]> {
  return until(`${client} calls ${server}`, async () => (await records()).filter((r) => r.client === client && r.path === `/${server}/mcp`), (rs) => rs.length > 0);
}

function agentContainer(name: string, exit: boolean): Record<string, unknown> {
  return {
    name,
    image: IMAGES.agent,
    imagePullPolicy: 'Never',
    env: [{ name: 'AGENT_NAME', value: name }, { name: 'AGENT_TIMEOUT_SECONDS', value: '60' }, ...(exit ? [{ name: 'AGENT_EXIT', value: '1' }] : [])],
  };
}

function connector(namespace: string, name: string, spec: Record<string, unknown>, annotations?: Record<string, string>): Record<string, unknown> {
  return { apiVersion: API, kind: 'KomputerConnector', metadata: { name, namespace, ...(annotations ? { annotations } : {}) }, spec: { type: 'remote', service: name, url: `${mcpBase}/${name}/mcp`, ...spec } };
}

function agentResource(name: string, connectors: string[], labels?: Record<string, string>): Record<string, unknown> {
  return { apiVersion: API, kind: 'KomputerAgent', metadata: { name, namespace: TEAM, ...(labels ? { labels } : {}) }, spec: { instructions: `e2e agent ${name}`, connectors } };
}

function secret(namespace: string, name: string, data: Record<string, string>, labels?: Record<string, string>): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name, namespace, ...(labels ? { labels } : {}) }, stringData: data };
}

/** A solo agent pod as the operator creates it; the runtime exits when every server answered. */
async function runSolo(agentName: string): Promise<StoredPod> {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${agentName}-pod`, namespace: TEAM, labels: { 'komputer.ai/agent-name': agentName, 'komputer.ai/squad': 'false', [`komputer.ai/member-${agentName}`]: 'true' } },
    spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [agentContainer(agentName, true)] },
  };
  await env.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) });
  const phase = await until(`${agentName}-pod finished`, async () => (await getJson<StoredPod>(['get', 'pod', `${agentName}-pod`, '-n', TEAM])).status?.phase ?? '', (p) => p === 'Succeeded' || p === 'Failed');
  const logs = (await env.kubectl(['logs', `${agentName}-pod`, '-n', TEAM])).stdout;
  assert.equal(phase, 'Succeeded', `the runtime reached every server:\n${logs}`);
  return getJson<StoredPod>(['get', 'pod', `${agentName}-pod`, '-n', TEAM]);
}

function envOf(container: Container | undefined): Map<string, EnvVar> {
  assert.ok(container, 'the container exists');
  return new Map((container.env ?? []).map((e) => [e.name, e]));
}

/** The server keys of the container's KOMPUTER_MCP_SERVERS, and each token variable's secretKeyRef. */
function injected(container: Container | undefined): { servers: string[]; refs: Record<string, string> } {
  const vars = envOf(container);
  const servers = Object.keys(JSON.parse(vars.get('KOMPUTER_MCP_SERVERS')?.value ?? '{}') as object).sort();
  const refs = Object.fromEntries([...vars.values()].filter((e) => e.valueFrom?.secretKeyRef).map((e) => [e.name, `${e.valueFrom!.secretKeyRef!.name}/${e.valueFrom!.secretKeyRef!.key}`]));
  return { servers, refs };
}

before(async () => {
  const images = new Map((await buildImages('all')).map((i) => [i.name, i.archive]));
  assert.deepEqual([...images.keys()].sort(), Object.values(IMAGES).sort());
  env = await startEnvironment({ node: true, manifests: false, service: false });
  for (const archive of images.values()) env.node!.importImage(archive);
  helm = await createHelm({ home: path.join(env.controlPlane.dir, 'helm-home'), kubeconfig: env.kubeconfig });

  const t0 = Date.now();
  await env.kubectl(['create', 'namespace', RELEASE_NAMESPACE]);
  const [repository, tag] = IMAGES.webhook.split(':');
  const install = await helm.run(
    ['install', RELEASE, CHART_DIR, '-n', RELEASE_NAMESPACE, '--set', `image.repository=${repository}`, '--set', `image.tag=${tag}`, '--set', 'image.pullPolicy=Never', '--wait', '--timeout', '180s'],
    { allowFailure: true, timeoutMs: 240_000 },
  );
  assert.equal(install.code, 0, `helm install failed: ${install.stderr}`);
  await until(
    'caBundle filled by the leader',
    async () => (await env.kubectl(['get', 'mutatingwebhookconfigurations', '-o', 'jsonpath={.items[*].webhooks[*].clientConfig.caBundle}'])).stdout.trim(),
    (v) => v !== '' && !v.split(' ').includes(''),
  );

  console.log(`chart installed (2 replicas Ready, caBundle filled) in ${((Date.now() - t0) / 1000).toFixed(1)}s`);

  // The fake MCP server: one Pod + Service standing for every connector by path. No cluster
  // DNS on this node: connectors use the Service's cluster IP, which kube-proxy routes.
  await env.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: MCP_NS } },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'fake-mcp', namespace: MCP_NS, labels: { app: 'fake-mcp' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'server', image: IMAGES.fakeMcp, imagePullPolicy: 'Never', ports: [{ containerPort: 8080 }], readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1 } }],
      },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'fake-mcp', namespace: MCP_NS }, spec: { selector: { app: 'fake-mcp' }, ports: [{ port: 80, targetPort: 8080 }] } },
  ]);
  const clusterIp = (await env.kubectl(['get', 'service', 'fake-mcp', '-n', MCP_NS, '-o', 'jsonpath={.spec.clusterIP}'])).stdout.trim();
  assert.match(clusterIp, /^\d+\.\d+\.\d+\.\d+$/);
  mcpBase = `http://${clusterIp}`;
  await until('fake MCP server Ready', async () => (await env.kubectl(['get', 'pod', 'fake-mcp', '-n', MCP_NS, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout, (s) => s === 'True');

  await env.apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: TEAM, labels: { 'komputer.ai/connector-injection': 'enabled' } } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PLATFORM } },
  ]);
  await env.apply([
    secret(TEAM, 'gh', { token: TOKENS.github }),
    secret(TEAM, 'linear', { token: TOKENS.linear }),
    secret(TEAM, 'wiki', { token: TOKENS.wiki }),
    secret(TEAM, 'search', { key: TOKENS.search }),
    secret(TEAM, 'notion', { oauth: OAUTH_JSON }),
    connector(TEAM, 'github', { authType: 'token', authSecretKeyRef: { name: 'gh', key: 'token' } }),
    connector(TEAM, 'linear', { authType: 'token', authSecretKeyRef: { name: 'linear', key: 'token' } }),
    connector(TEAM, 'wiki', { authType: 'token', authSecretKeyRef: { name: 'wiki', key: 'token' } }),
    connector(TEAM, 'search', { authType: 'header', headerName: 'X-API-Key', authSecretKeyRef: { name: 'search', key: 'key' } }),
    connector(TEAM, 'notion', { authType: 'oauth', authSecretKeyRef: { name: 'notion', key: 'oauth' } }),
    // The shared connector lives in the platform namespace; the platform mirrors its Secret
    // into the agent's namespace as <secret>-from-<namespace>, labelled as it labels mirrors.
    secret(PLATFORM, 'platform-gh', { token: TOKENS.shared }),
    connector(PLATFORM, 'shared', { authType: 'token', authSecretKeyRef: { name: 'platform-gh', key: 'token' } }, { 'komputer.ai/shared-with-namespaces': TEAM }),
    secret(TEAM, `platform-gh-from-${PLATFORM}`, { token: TOKENS.shared }, { 'komputer.ai/synced-from-namespace': PLATFORM, 'komputer.ai/synced-for-connector': 'shared' }),
    agentResource('solo', ['github']),
    agentResource('alice', ['linear'], { 'komputer.ai/squad': SQUAD }),
    agentResource('bob', ['github'], { 'komputer.ai/squad': SQUAD }),
    agentResource('carol', ['wiki'], { 'komputer.ai/squad': SQUAD }),
    agentResource('borrower', [`${PLATFORM}/shared`]),
    agentResource('keyed', ['search']),
    agentResource('oauthy', ['notion']),
  ]);
  await until('default ServiceAccount in the team namespace', async () => (await env.kubectl(['get', 'sa', 'default', '-n', TEAM], { allowFailure: true })).code, (c) => c === 0, 30_000);
  // The replicas' caches see the connectors and agents: a dry-run solo pod comes back injected.
  await until(
    "the replicas' caches hold every agent",
    async () => {
      const names = ['solo', 'borrower', 'keyed', 'oauthy'];
      let ready = 0;
      for (const name of names) {
        const r = await env.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], {
          allowFailure: true,
          input: JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${name}-probe`, namespace: TEAM, labels: { 'komputer.ai/agent-name': name, 'komputer.ai/squad': 'false', [`komputer.ai/member-${name}`]: 'true' } }, spec: { containers: [agentContainer(name, true)] } }),
        });
        if (r.code === 0 && injected((JSON.parse(r.stdout) as StoredPod).spec.containers[0]).servers.length === 1) ready++;
      }
      return ready;
    },
    (n) => n === 4,
    60_000,
  );
  console.log(`fake MCP server, connectors and agents ready ${((Date.now() - t0) / 1000).toFixed(1)}s after the install began`);
});
after(stopEnvironment);

test('a solo agent: the kubelet resolves the injected token and the runtime sends it as a Bearer token', async () => {
  const pod = await runSolo('solo');
  assert.deepEqual(injected(pod.spec.containers[0]), { servers: ['github'], refs: { CONNECTOR_GITHUB_TOKEN: 'gh/token' } });
  const calls = await callsOf('solo', 'github');
  for (const call of calls) assert.equal(call.bearerSha256, sha256(TOKENS.github));
});

test('a squad pod: each member container gets only its own connectors and calls its own servers with its own token', async () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `squad-${SQUAD}-0`,
      namespace: TEAM,
      labels: { 'komputer.ai/squad': 'true', 'komputer.ai/squad-name': SQUAD, 'komputer.ai/member-alice': 'true', 'komputer.ai/member-bob': 'true' },
    },
    // Members stay up like agents do, so a member can join the running pod below.
    spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [agentContainer('alice', false), agentContainer('bob', false)] },
  };
  await env.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) });
  const stored = await getJson<StoredPod>(['get', 'pod', `squad-${SQUAD}-0`, '-n', TEAM]);
  const byName = new Map(stored.spec.containers.map((c) => [c.name, c]));
  assert.deepEqual(injected(byName.get('alice')), { servers: ['linear'], refs: { CONNECTOR_LINEAR_TOKEN: 'linear/token' } });
  assert.deepEqual(injected(byName.get('bob')), { servers: ['github'], refs: { CONNECTOR_GITHUB_TOKEN: 'gh/token' } });

  for (const call of await callsOf('alice', 'linear')) assert.equal(call.bearerSha256, sha256(TOKENS.linear));
  for (const call of await callsOf('bob', 'github')) assert.equal(call.bearerSha256, sha256(TOKENS.github));
  for (const member of ['alice', 'bob']) {
    const logs = await until(`${member} reported`, async () => (await env.kubectl(['logs', `squad-${SQUAD}-0`, '-n', TEAM, '-c', member])).stdout, (l) => l.includes('"servers":'));
    assert.match(logs, /"servers":1,"ok":1,"failed":0/, `${member} called exactly its one server`);
  }
  const all = await records();
  assert.deepEqual([...new Set(all.filter((r) => r.client === 'alice').map((r) => r.path))], ['/linear/mcp'], 'alice called only her server');
  assert.deepEqual([...new Set(all.filter((r) => r.client === 'bob').map((r) => r.path))], ['/github/mcp'], 'bob called only his server');
  const phase = (await getJson<StoredPod>(['get', 'pod', `squad-${SQUAD}-0`, '-n', TEAM])).status?.phase;
  assert.equal(phase, 'Running');
});

test('a member added to the running squad as an ephemeral container is started by the kubelet and reaches its server', async () => {
  const podName = `squad-${SQUAD}-0`;
  // As the operator does it: a strategic merge patch on pods/ephemeralcontainers, then the label.
  const patch = { spec: { ephemeralContainers: [agentContainer('carol', true)] } };
  await env.kubectl(['patch', 'pod', podName, '-n', TEAM, '--subresource=ephemeralcontainers', '--type=strategic', '-p', JSON.stringify(patch)]);
  await env.kubectl(['label', 'pod', podName, '-n', TEAM, 'komputer.ai/member-carol=true']);
  const stored = await getJson<StoredPod>(['get', 'pod', podName, '-n', TEAM]);
  assert.deepEqual(injected(stored.spec.ephemeralContainers?.find((c) => c.name === 'carol')), { servers: ['wiki'], refs: { CONNECTOR_WIKI_TOKEN: 'wiki/token' } });
  const exit = await until(
    'carol ran to completion',
    async () => (await getJson<StoredPod>(['get', 'pod', podName, '-n', TEAM])).status?.ephemeralContainerStatuses?.find((s) => s.name === 'carol')?.state?.['terminated']?.exitCode,
    (c) => c !== undefined,
  );
  const logs = (await env.kubectl(['logs', podName, '-n', TEAM, '-c', 'carol'])).stdout;
  assert.equal(exit, 0, `carol reached every server:\n${logs}`);
  assert.match(logs, /"servers":1,"ok":1,"failed":0/);
  for (const call of await callsOf('carol', 'wiki')) assert.equal(call.bearerSha256, sha256(TOKENS.wiki));
  assert.deepEqual([...new Set((await records()).filter((r) => r.client === 'carol').map((r) => r.path))], ['/wiki/mcp']);
});

test('a cross-namespace shared connector: the token comes from the mirrored Secret', async () => {
  const pod = await runSolo('borrower');
  assert.deepEqual(injected(pod.spec.containers[0]), { servers: ['shared'], refs: { CONNECTOR_SHARED_TOKEN: `platform-gh-from-${PLATFORM}/token` } });
  for (const call of await callsOf('borrower', 'shared')) assert.equal(call.bearerSha256, sha256(TOKENS.shared));
});

test('a header-auth connector: the value verbatim in X-API-Key, no Authorization', async () => {
  const pod = await runSolo('keyed');
  assert.deepEqual(injected(pod.spec.containers[0]), { servers: ['search'], refs: { CONNECTOR_SEARCH_TOKEN: 'search/key' } });
  const config = JSON.parse(envOf(pod.spec.containers[0]).get('KOMPUTER_MCP_SERVERS')!.value!) as Record<string, Record<string, string>>;
  assert.deepEqual(config['search'], { type: 'http', url: `${mcpBase}/search/mcp`, tokenEnv: 'CONNECTOR_SEARCH_TOKEN', authType: 'header', headerName: 'X-API-Key' });
  for (const call of await callsOf('keyed', 'search')) {
    assert.equal(call.headers['x-api-key'], sha256(TOKENS.search));
    assert.equal(call.headers['authorization'], undefined);
    assert.equal(call.bearerSha256, null);
  }
});

test("an oauth connector: the access_token of the Secret's JSON as a Bearer token", async () => {
  const pod = await runSolo('oauthy');
  assert.deepEqual(injected(pod.spec.containers[0]), { servers: ['notion'], refs: { CONNECTOR_NOTION_TOKEN: 'notion/oauth' } });
  for (const call of await callsOf('oauthy', 'notion')) assert.equal(call.bearerSha256, sha256(TOKENS.notion));
});

test("no canary value in the replicas' logs, the agents' Events or /metrics", async () => {
  const canaries = [...Object.values(TOKENS), OAUTH_JSON, 'AGENTSCANARYrefresh0123'].flatMap((v) => [v, Buffer.from(v).toString('base64')]);
  const clean = (what: string, text: string): void => {
    for (const c of canaries) assert.ok(!text.includes(c), `${what} holds a canary value`);
  };
  const replicas = (await env.kubectl(['get', 'pods', '-n', RELEASE_NAMESPACE, '-o', 'jsonpath={.items[*].metadata.name}'])).stdout.trim().split(' ');
  assert.equal(replicas.length, 2);
  let admissions = 0;
  for (const replica of replicas) {
    const logs = (await env.kubectl(['logs', replica, '-n', RELEASE_NAMESPACE])).stdout;
    admissions += logs.split('\n').filter((l) => l.includes('"msg":"admission"')).length;
    clean(`${replica}'s log`, logs);
    const metrics = (await env.kubectl(['get', '--raw', `/api/v1/namespaces/${RELEASE_NAMESPACE}/pods/${replica}:${METRICS_PORT}/proxy/metrics`])).stdout;
    assert.match(metrics, /^# TYPE /m, `${replica} serves /metrics`);
    clean(`${replica}'s /metrics`, metrics);
  }
  assert.ok(admissions > 0, 'the replicas logged the admissions');
  const coreEvents = (await env.kubectl(['get', 'events', '-n', TEAM, '-o', 'json'])).stdout;
  const events = (await env.kubectl(['get', 'events.v1.events.k8s.io', '-n', TEAM, '-o', 'json'])).stdout;
  assert.match(coreEvents + events, /"reason": "(Started|Scheduled)"/, 'the agents have Events');
  clean("the agents' Events", coreEvents + events);
  // The agents' and the fake server's own logs carry digests and names only.
  clean("the fake MCP server's log", (await env.kubectl(['logs', 'fake-mcp', '-n', MCP_NS])).stdout);
  clean("the fake MCP server's records", JSON.stringify(await records()));
});
