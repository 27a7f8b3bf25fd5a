// `npm run dev:node`: the service as an admin runs it, on a real node. Builds what is missing
// (the images from the Dockerfile and test/image, the node's binaries: cached, with
// progress), starts a control plane with a node, `helm install`s the chart from the local
// image (2 replicas, the API server calling the webhook through its Service), starts the
// in-cluster fake MCP server, creates a Secret, a connector and an agent, and runs the
// agent's pod with the test agent runtime. Then it shows the pod Running, its injected env
// (the token as a secretKeyRef, never a value) and what the fake MCP server received (the
// header, its value masked), and keeps everything running until Ctrl-C.

import { createHash } from 'node:crypto';
import path from 'node:path';
import { startFakeMcp } from './fixtures/fake-mcp.ts';
import { startNodeCluster } from './fixtures/node-chart.ts';
import { untilOnNode } from './fixtures/node-wait.ts';
import { RELEASE_NAMESPACE } from './fixtures/helm.ts';
import { stopEnvironment } from './harness/index.ts';
import { log } from './harness/log.ts';
import { binDir, repoRoot } from './harness/paths.ts';
import { setSignalExitCode } from './harness/process.ts';
import { IMAGES } from '../image/images.ts';

const NAMESPACE = 'demo';
const MCP_NAMESPACE = 'demo-mcp';
const AGENT = 'demo';
// A stand-in token: only its digest is ever compared; it is shown masked.
const TOKEN = 'ghp_notARealTokenJustForTheNodeDemo000';

setSignalExitCode(0); // Ctrl-C is how this command is meant to end.

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface StoredPod {
  metadata: { name: string };
  spec: { nodeName?: string; containers: { name: string; image: string; env?: EnvVar[] }[] };
  status?: { phase?: string; podIP?: string };
}

function show(title: string, body: string): void {
  process.stdout.write(`\n== ${title}\n${body.trimEnd()}\n`);
}

const mask = (v: string): string => `${v.slice(0, 4)}${'*'.repeat(8)} (${v.length} characters)`;
const sha256 = (v: string): string => createHash('sha256').update(v).digest('hex');

try {
  const t0 = Date.now();
  log('dev:node: building the images if needed (the first build takes several minutes; its progress follows), then a control plane with a node');
  const cluster = await startNodeCluster('all');
  const env = cluster.env;
  log('dev:node: helm install of charts/komputer-connector-webhook from the local image (2 replicas)');
  const install = await cluster.install();
  if (install.code !== 0) throw new Error(`helm install failed: ${install.stderr}`);
  await untilOnNode(
    env,
    'caBundle filled by the leader',
    async () => (await env.kubectl(['get', 'mutatingwebhookconfigurations', '-o', 'jsonpath={.items[*].webhooks[*].clientConfig.caBundle}'])).stdout.trim(),
    (v) => v !== '' && !v.split(' ').includes(''),
  );
  log('dev:node: the fake MCP server (a Pod and a Service)');
  const mcp = await startFakeMcp(env, MCP_NAMESPACE);

  log(`dev:node: namespace ${NAMESPACE} (enabled), a Secret, a connector and an agent`);
  await env.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE, labels: { 'komputer.ai/connector-injection': 'enabled' } } });
  await env.apply([
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'github-token', namespace: NAMESPACE }, type: 'Opaque', stringData: { token: TOKEN } },
    {
      apiVersion: 'komputer.komputer.ai/v1alpha1',
      kind: 'KomputerConnector',
      metadata: { name: 'github', namespace: NAMESPACE },
      spec: { type: 'remote', service: 'github', displayName: 'GitHub (the fake MCP server)', url: `${mcp.base}/github/mcp`, authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } },
    },
    { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { name: AGENT, namespace: NAMESPACE }, spec: { instructions: 'Demo agent of `npm run dev:node`.', connectors: ['github'] } },
  ]);
  await untilOnNode(env, `default ServiceAccount in ${NAMESPACE}`, async () => (await env.kubectl(['get', 'sa', 'default', '-n', NAMESPACE], { allowFailure: true })).code, (c) => c === 0, 30_000);
  // The replicas' caches see the agent: a dry-run pod comes back injected.
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${AGENT}-agent`, namespace: NAMESPACE, labels: { 'komputer.ai/agent-name': AGENT, 'komputer.ai/squad': 'false', [`komputer.ai/member-${AGENT}`]: 'true' } },
    spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'agent', image: IMAGES.agent, imagePullPolicy: 'Never', env: [{ name: 'AGENT_NAME', value: AGENT }] }] },
  };
  await untilOnNode(
    env,
    'the replicas know the agent',
    async () => (await env.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(pod), allowFailure: true })).stdout.includes('CONNECTOR_GITHUB_TOKEN'),
    (ok) => ok,
    60_000,
  );
  log(`dev:node: the agent pod ${NAMESPACE}/${pod.metadata.name} (the test agent runtime)`);
  await env.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) });
  const running = await untilOnNode(
    env,
    'the agent pod Running',
    async () => JSON.parse((await env.kubectl(['get', 'pod', pod.metadata.name, '-n', NAMESPACE, '-o', 'json'])).stdout) as StoredPod,
    (p) => p.status?.phase === 'Running',
  );
  const calls = await untilOnNode(env, 'the agent called the fake MCP server', async () => (await mcp.records()).filter((r) => r.client === AGENT), (rs) => rs.length > 0);

  const replicas = (await env.kubectl(['get', 'pods', '-n', RELEASE_NAMESPACE, '-o', 'wide'])).stdout;
  show(`the chart's replicas (${RELEASE_NAMESPACE}), ready ${((Date.now() - t0) / 1000).toFixed(0)} s after the start`, replicas.replace(/^/gm, '  '));
  show(
    `pod ${NAMESPACE}/${running.metadata.name}: ${running.status?.phase} on node ${running.spec.nodeName ?? '?'} (IP ${running.status?.podIP ?? '?'}), image ${running.spec.containers[0]?.image ?? '?'}`,
    (await env.kubectl(['get', 'pod', running.metadata.name, '-n', NAMESPACE, '-o', 'wide'])).stdout.replace(/^/gm, '  '),
  );
  const container = running.spec.containers[0];
  show(
    `its env, as injected by the webhook (container ${container?.name ?? '?'})`,
    (container?.env ?? [])
      .map((e) => {
        if (e.valueFrom?.secretKeyRef !== undefined) return `  ${e.name} <- secretKeyRef ${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}   (a reference: the kubelet resolves it; no value is stored in the pod)`;
        if (e.name === 'KOMPUTER_MCP_SERVERS' && e.value !== undefined) return `  ${e.name}=${JSON.stringify(JSON.parse(e.value))}`;
        return `  ${e.name}=${e.value ?? ''}`;
      })
      .join('\n'),
  );
  const call = calls[calls.length - 1]!;
  const matches = call.bearerSha256 === sha256(TOKEN);
  show(
    `what the fake MCP server received (${mcp.base}${call.path}, client ${call.client ?? '?'}, ${call.at})`,
    [
      `  Authorization: Bearer ${mask(TOKEN)}`,
      `  the server keeps only a SHA-256 of each header value: ${call.bearerSha256?.slice(0, 16) ?? '-'}… ${matches ? 'matches' : 'DOES NOT match'} the Secret's token`,
      `  headers received: ${Object.keys(call.headers).sort().join(', ')}`,
    ].join('\n'),
  );
  if (!matches) setSignalExitCode(1);

  const kubectlPath = path.relative(process.cwd(), path.join(binDir, 'kubectl')) || path.join(binDir, 'kubectl');
  show(
    'running until Ctrl-C',
    [
      `  export KUBECONFIG=${env.kubeconfig}`,
      `  ${kubectlPath} get pods -A -o wide`,
      `  ${kubectlPath} logs -n ${NAMESPACE} ${running.metadata.name}          # the agent runtime: one line per server, never a token`,
      `  ${kubectlPath} logs -n ${RELEASE_NAMESPACE} -l app.kubernetes.io/name=komputer-connector-webhook   # the replicas`,
      `  ${kubectlPath} get --raw /api/v1/namespaces/${MCP_NAMESPACE}/pods/fake-mcp:8080/proxy/_records   # the fake MCP server's records`,
      `  logs are copied to ${path.relative(repoRoot, path.join(repoRoot, '.e2e', 'logs', 'dev-node'))}/ on exit; Ctrl-C stops the node and restores the machine`,
    ].join('\n'),
  );
  // Keep the event loop alive; SIGINT/SIGTERM run stopEnvironment (node teardown included) and exit 0.
  setInterval(() => undefined, 1 << 30);
} catch (error) {
  process.stderr.write(`\nnpm run dev:node failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await stopEnvironment();
  process.exit(1);
}
