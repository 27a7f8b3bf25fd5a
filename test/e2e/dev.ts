// `npm run dev`: the one-command local run. Builds the control plane if needed, starts it,
// installs the CRDs and the project's manifests, starts the service, creates a demo
// namespace, Secret, connector, agent and agent pod, prints what the API server stored,
// and keeps everything running until Ctrl-C.

import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { startEnvironment, stopEnvironment, warningsOf } from './harness/index.ts';
import { binDir, repoRoot } from './harness/paths.ts';
import { setSignalExitCode } from './harness/process.ts';

const NAMESPACE = 'demo';
const AGENT = 'demo';

setSignalExitCode(0); // Ctrl-C is how this command is meant to end.

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface StoredPod {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { containers: { name: string; env?: EnvVar[] }[] };
}

function show(title: string, body: string): void {
  process.stdout.write(`\n== ${title}\n${body.trimEnd()}\n`);
}

try {
  const env = await startEnvironment({ name: 'dev' });

  await env.createNamespace(NAMESPACE, { enabled: true });
  await env.apply([
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'github-token', namespace: NAMESPACE },
      type: 'Opaque',
      stringData: { token: 'ghp_notARealTokenJustForTheLocalDemo0000' },
    },
    {
      apiVersion: 'komputer.komputer.ai/v1alpha1',
      kind: 'KomputerConnector',
      metadata: { name: 'github', namespace: NAMESPACE },
      spec: {
        type: 'remote',
        service: 'github',
        displayName: 'GitHub',
        url: 'https://api.githubcopilot.com/mcp/',
        authSecretKeyRef: { name: 'github-token', key: 'token' },
      },
    },
    {
      apiVersion: 'komputer.komputer.ai/v1alpha1',
      kind: 'KomputerAgent',
      metadata: { name: AGENT, namespace: NAMESPACE },
      spec: { instructions: 'Demo agent of `npm run dev`: list my open pull requests.', connectors: ['github'] },
    },
  ]);

  // What the platform's operator would create for a solo agent.
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${AGENT}-agent`,
      namespace: NAMESPACE,
      labels: {
        'komputer.ai/agent-name': AGENT,
        'komputer.ai/squad': 'false',
        [`komputer.ai/member-${AGENT}`]: 'true',
      },
    },
    spec: { containers: [{ name: 'agent', image: 'busybox', command: ['sleep', '3600'] }] },
  };
  const created = await env.kubectl(['create', '-f', '-', '-o', 'name'], { input: JSON.stringify(pod) });
  const warnings = warningsOf(created);
  const stored = JSON.parse((await env.kubectl(['get', 'pod', pod.metadata.name, '-n', NAMESPACE, '-o', 'json'])).stdout) as StoredPod;

  const container = stored.spec.containers[0];
  const lines = (container?.env ?? []).map((e) => {
    if (e.valueFrom?.secretKeyRef !== undefined) return `${e.name} <- secret ${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`;
    if (e.name === 'KOMPUTER_MCP_SERVERS' && e.value !== undefined) {
      try {
        return `${e.name}=${JSON.stringify(JSON.parse(e.value), null, 2).replace(/\n/g, '\n    ')}`;
      } catch {
        // printed as is below
      }
    }
    return `${e.name}=${e.value ?? ''}`;
  });
  show(
    `pod ${NAMESPACE}/${stored.metadata.name}, container ${container?.name ?? '?'}: env as stored by the API server`,
    lines.length > 0 ? lines.map((l) => `  ${l}`).join('\n') : '  (no env: the webhook injected nothing)',
  );
  if (lines.length === 0 && env.service !== undefined) show(`service log (${env.service.logFile}), last lines`, env.service.tail(20));
  const annotations = Object.entries(stored.metadata.annotations ?? {}).filter(([key]) => key.startsWith('komputer.ai/'));
  if (annotations.length > 0) show('pod annotations', annotations.map(([k, v]) => `  ${k}: ${v}`).join('\n'));
  if (warnings.length > 0) show('admission warnings', warnings.map((w) => `  ${w}`).join('\n'));

  // Attachment counts are written asynchronously by the service's controller.
  let status: unknown;
  for (let i = 0; i < 20; i++) {
    const connector = JSON.parse((await env.kubectl(['get', 'komputerconnector', 'github', '-n', NAMESPACE, '-o', 'json'])).stdout) as { status?: unknown };
    status = connector.status;
    if (status !== undefined) break;
    await sleep(500);
  }
  show(`connector ${NAMESPACE}/github status`, status === undefined ? '  (no status yet)' : JSON.stringify(status, null, 2).replace(/^/gm, '  '));

  const kubectlPath = path.relative(process.cwd(), path.join(binDir, 'kubectl')) || path.join(binDir, 'kubectl');
  show(
    'running until Ctrl-C',
    [
      `  export KUBECONFIG=${env.kubeconfig}`,
      `  ${kubectlPath} get komputerconnectors,komputeragents,pods -n ${NAMESPACE}   # same version as the API server`,
      `  ${kubectlPath} get pod ${stored.metadata.name} -n ${NAMESPACE} -o yaml`,
      `  tail -f ${env.service?.logFile ?? '(no service)'}   # service log (LOG_LEVEL=debug)`,
      `  service: ${env.service?.url ?? '-'} (metrics: http://127.0.0.1:${env.service?.metricsPort ?? '-'}/metrics)`,
      `  logs are copied to ${path.relative(repoRoot, path.join(repoRoot, '.e2e', 'logs', 'dev'))}/ on exit`,
    ].join('\n'),
  );
  // Keep the event loop alive; SIGINT/SIGTERM run stopEnvironment and exit 0.
  setInterval(() => {
    const service = env.service?.process;
    if (service !== undefined && !service.isRunning && !service.stopRequested) {
      process.stderr.write('the service exited on its own; shutting down\n');
      setSignalExitCode(1);
      process.kill(process.pid, 'SIGTERM');
    }
  }, 2_000);
} catch (error) {
  process.stderr.write(`\nnpm run dev failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  await stopEnvironment();
  process.exit(1);
}
