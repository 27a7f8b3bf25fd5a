// Proves the e2e harness itself: a real API server answers, the platform's CRDs are
// served, the project's manifests are installed as shipped (only pointed at 127.0.0.1),
// the service runs under its own least-privilege service account and is really called by
// the API server, and no process outlives the harness.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { kubectl, startEnvironment, stopEnvironment, warningsOf, type Environment } from './harness/index.ts';
import { httpsGet, projectNode, waitForWebhookCalls } from './harness/webhook.ts';
import { parseManifests, toYaml } from './harness/install.ts';
import { repoRoot } from './harness/paths.ts';

const SA_USER = 'system:serviceaccount:komputer-webhook-system:komputer-connector-webhook';

let env: Environment;

before(async () => {
  env = await startEnvironment();
});
after(stopEnvironment);

function expectedVersion(): string {
  const text = readFileSync(path.join(repoRoot, 'test', 'controlplane', 'versions.env'), 'utf8');
  const match = /^K8S_VERSION=(\S+)/m.exec(text);
  assert.ok(match?.[1], 'K8S_VERSION in versions.env');
  return process.env['K8S_VERSION'] ?? match[1];
}

describe('control plane', () => {
  test('the API server answers with the pinned version', async () => {
    const result = await env.kubectl(['version', '-o', 'json']);
    const version = JSON.parse(result.stdout) as { serverVersion?: { gitVersion?: string }; clientVersion?: { gitVersion?: string } };
    assert.equal(version.serverVersion?.gitVersion, expectedVersion());
    assert.equal(version.clientVersion?.gitVersion, expectedVersion(), 'kubectl is built from the same release');
    const readyz = await env.kubectl(['get', '--raw', '/readyz']);
    assert.equal(readyz.stdout.trim(), 'ok');
  });

  test("the platform's CRDs are established and served", async () => {
    for (const crd of ['komputerconnectors.komputer.komputer.ai', 'komputeragents.komputer.komputer.ai']) {
      const result = await env.kubectl(['get', 'crd', crd, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']);
      assert.equal(result.stdout, 'True', `${crd} Established`);
    }
    const resources = await env.kubectl(['api-resources', '--api-group=komputer.komputer.ai', '-o', 'name']);
    assert.deepEqual(resources.stdout.trim().split('\n').sort(), ['komputeragents.komputer.komputer.ai', 'komputerconnectors.komputer.komputer.ai']);
  });

  test('the webhook configurations are the shipped ones, pointed at the local service', async () => {
    const mutating = parse((await env.kubectl(['get', 'mutatingwebhookconfiguration', 'komputer-connector-webhook', '-o', 'yaml'])).stdout) as {
      webhooks: { name: string; failurePolicy: string; clientConfig: { url?: string; caBundle?: string; service?: unknown } }[];
    };
    const validating = parse((await env.kubectl(['get', 'validatingwebhookconfiguration', 'komputer-connector-webhook', '-o', 'yaml'])).stdout) as typeof mutating;
    const port = env.service?.port;
    assert.ok(port !== undefined);
    const caBundle = Buffer.from(env.certs.caCert).toString('base64');
    assert.deepEqual(
      mutating.webhooks.map((w) => [w.name, w.failurePolicy, w.clientConfig.url, w.clientConfig.caBundle === caBundle]),
      [['pods.connectors.komputer.ai', 'Fail', `https://127.0.0.1:${port}/mutate/pods`, true]],
    );
    assert.deepEqual(
      validating.webhooks.map((w) => [w.name, w.failurePolicy, w.clientConfig.url, w.clientConfig.caBundle === caBundle]),
      [
        ['validate.connectors.komputer.ai', 'Ignore', `https://127.0.0.1:${port}/validate`, true],
        ['validate-shared.connectors.komputer.ai', 'Ignore', `https://127.0.0.1:${port}/validate`, true],
      ],
    );
  });
});

describe('manifests/base', () => {
  test('the whole base, Deployment included, is accepted as is (server-side dry-run) and meets restricted pod security', async () => {
    const rendered = parseManifests((await env.kubectl(['kustomize', path.join(repoRoot, 'manifests', 'base')])).stdout);
    // The installed webhook configurations point at a URL; applying `service` over them
    // would merge both, so they are dry-run created under another name instead.
    const isWebhook = (m: Record<string, unknown>): boolean => String(m['kind']).endsWith('WebhookConfiguration');
    const applied = await env.kubectl(['apply', '--server-side', '--dry-run=server', '--force-conflicts', '--field-manager=e2e-dry-run', '-f', '-'], {
      input: toYaml(rendered.filter((m) => !isWebhook(m))),
    });
    const webhooks = rendered.filter(isWebhook).map((m) => ({ ...m, metadata: { name: 'e2e-dry-run-copy' } }));
    assert.equal(webhooks.length, 2);
    const created = await env.kubectl(['create', '--dry-run=server', '-f', '-'], { input: toYaml(webhooks) });
    for (const kind of ['deployment.apps', 'service', 'poddisruptionbudget.policy', 'clusterrole.rbac.authorization.k8s.io', 'role.rbac.authorization.k8s.io']) {
      assert.match(applied.stdout, new RegExp(`^${kind.replaceAll('.', '\\.')}/komputer-connector-webhook serverside-applied`, 'm'));
    }
    assert.match(created.stdout, /mutatingwebhookconfiguration\S*\/e2e-dry-run-copy created/);
    assert.match(created.stdout, /validatingwebhookconfiguration\S*\/e2e-dry-run-copy created/);
    // The namespace enforces `restricted`; for a Deployment the API server answers with warnings.
    assert.deepEqual([...warningsOf(applied), ...warningsOf(created)], []);
  });
});

describe("the service's service account", () => {
  const canI = async (...args: string[]): Promise<string> => {
    const result = await env.kubectl(['auth', 'can-i', ...args, `--as=${SA_USER}`], { allowFailure: true });
    return result.stdout.trim();
  };

  test('cannot read secrets anywhere', async () => {
    assert.equal(await canI('get', 'secrets', '--all-namespaces'), 'no');
    assert.equal(await canI('list', 'secrets', '--all-namespaces'), 'no');
    assert.equal(await canI('get', 'secrets', '-n', 'komputer-webhook-system'), 'no');
  });

  test('can read agents, connectors and namespaces, and write only connector status', async () => {
    assert.equal(await canI('list', 'komputeragents.komputer.komputer.ai', '--all-namespaces'), 'yes');
    assert.equal(await canI('watch', 'komputerconnectors.komputer.komputer.ai', '--all-namespaces'), 'yes');
    assert.equal(await canI('list', 'namespaces'), 'yes');
    assert.equal(await canI('patch', 'komputerconnectors.komputer.komputer.ai', '--subresource=status', '-n', 'any'), 'yes');
    assert.equal(await canI('patch', 'komputerconnectors.komputer.komputer.ai', '-n', 'any'), 'no');
    assert.equal(await canI('create', 'pods', '-n', 'any'), 'no');
  });

  test('leases and configmaps only in its own namespace; only its own webhook configurations', async () => {
    assert.equal(await canI('update', 'leases.coordination.k8s.io', '-n', 'komputer-webhook-system'), 'yes');
    assert.equal(await canI('update', 'leases.coordination.k8s.io', '-n', 'default'), 'no');
    assert.equal(await canI('watch', 'configmaps', '-n', 'komputer-webhook-system'), 'yes');
    assert.equal(await canI('get', 'configmaps', '-n', 'default'), 'no');
    assert.equal(await canI('patch', 'mutatingwebhookconfigurations/komputer-connector-webhook'), 'yes');
    assert.equal(await canI('patch', 'validatingwebhookconfigurations/komputer-connector-webhook'), 'yes');
    assert.equal(await canI('patch', 'mutatingwebhookconfigurations/someone-else'), 'no');
  });

  test("the service's kubeconfig carries a real token for it", async () => {
    const whoami = JSON.parse((await kubectl(env.serviceKubeconfig, ['auth', 'whoami', '-o', 'json'])).stdout) as { status?: { userInfo?: { username?: string } } };
    assert.equal(whoami.status?.userInfo?.username, SA_USER);
    await kubectl(env.serviceKubeconfig, ['get', 'komputeragents.komputer.komputer.ai', '--all-namespaces']);
    const secrets = await kubectl(env.serviceKubeconfig, ['get', 'secrets', '--all-namespaces'], { allowFailure: true });
    assert.notEqual(secrets.code, 0);
    assert.match(secrets.stderr, /forbidden/i);
  });
});

describe('the service', () => {
  test('serves /readyz over TLS with the harness CA, and metrics', async () => {
    const service = env.service;
    assert.ok(service !== undefined);
    const readyz = await httpsGet(`${service.url}/readyz`, env.certs.caCert);
    assert.equal(readyz.status, 200);
    const metrics = await new Promise<number>((resolve, reject) => {
      httpRequest(`http://127.0.0.1:${service.metricsPort}/metrics`, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(metrics, 200);
  });

  test('while it is stopped, failurePolicy Fail holds agent pods back and Ignore lets connectors through', async () => {
    const service = env.service;
    assert.ok(service !== undefined);
    await env.createNamespace('e2e-harness-down', { enabled: true });
    await service.stop();
    try {
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'agent', namespace: 'e2e-harness-down', labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': 'a', 'komputer.ai/member-a': 'true' } },
        spec: { containers: [{ name: 'agent', image: 'busybox' }] },
      };
      const refused = await env.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod), allowFailure: true });
      assert.notEqual(refused.code, 0, 'agent pod must not be created without the webhook');
      assert.match(refused.stderr, /failed calling webhook "pods\.connectors\.komputer\.ai"/);

      // Not an agent pod (no komputer.ai/squad label): never sent to the webhook.
      const plain = { ...pod, metadata: { name: 'plain', namespace: 'e2e-harness-down' } };
      await env.kubectl(['create', '-f', '-'], { input: JSON.stringify(plain) });

      const connector = {
        apiVersion: 'komputer.komputer.ai/v1alpha1',
        kind: 'KomputerConnector',
        metadata: { name: 'down', namespace: 'e2e-harness-down' },
        spec: { type: 'remote', service: 'github', url: 'https://api.githubcopilot.com/mcp/' },
      };
      await env.kubectl(['create', '-f', '-'], { input: JSON.stringify(connector) });
    } finally {
      await service.start();
    }
    await waitForWebhookCalls(env.controlPlane, { service });
  });

  test('admission warnings reach the client', async () => {
    // Also a check of the helper the scenarios use.
    const result = { code: 0, stdout: '', stderr: 'Warning: one\nsomething\nWarning: two\n' };
    assert.deepEqual(warningsOf(result), ['one', 'two']);
  });
});

describe('no process outlives the harness', () => {
  const holder = path.join(repoRoot, 'test', 'e2e', 'harness', 'fixtures', 'hold-controlplane.ts');

  async function startHolder(): Promise<{ child: ReturnType<typeof spawn>; pids: number[]; dir: string }> {
    const child = spawn(projectNode, [holder], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let buffer = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        const newline = buffer.indexOf('\n');
        if (newline >= 0) resolve(buffer.slice(0, newline));
      });
      child.once('exit', (code) => reject(new Error(`holder exited early (code ${code})`)));
    });
    const parsed = JSON.parse(line) as { pids: number[]; dir: string };
    return { child, ...parsed };
  }

  function alive(pid: number): boolean {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return !/\) [ZX] /.test(stat);
    } catch {
      return false;
    }
  }

  async function waitGone(pids: number[], ms: number): Promise<number[]> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && pids.some(alive)) await new Promise((resolve) => setTimeout(resolve, 100));
    return pids.filter(alive);
  }

  test('SIGINT stops etcd and the API server and removes the temp dir', async () => {
    const { child, pids, dir } = await startHolder();
    assert.ok(pids.every(alive));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.deepEqual(await waitGone(pids, 5_000), []);
    assert.equal(existsSync(dir), false, `${dir} removed`);
  });

  test('even SIGKILL of the harness takes etcd and the API server with it', async () => {
    const { child, pids, dir } = await startHolder();
    child.kill('SIGKILL');
    try {
      assert.deepEqual(await waitGone(pids, 5_000), [], 'parent-death signal (setpriv --pdeathsig) kills the children');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
