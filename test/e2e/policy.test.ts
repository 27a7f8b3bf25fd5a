// End-to-end: the validating webhook (connector compatibility policy, agent references)
// through a real kube-apiserver, with kubectl showing what a user sees. The admin's policy
// ConfigMap is changed while the service runs: every change must take effect without a
// restart, and a broken one must never switch the built-in list off.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startEnvironment, stopEnvironment, warningsOf, type Environment, type KubectlResult } from './harness/index.ts';
import { poll } from './harness/poll.ts';
import { httpsGet } from './harness/webhook.ts';
import { sampleValue } from '../helpers/prometheus.ts';

const NS = 'e2e-policy';
const API = 'komputer.komputer.ai/v1alpha1';
const WEBHOOK = 'validate.connectors.komputer.ai';
const POLICY_CM = 'komputer-connector-webhook-policy';

const NOTION_DENIAL =
  'Notion rejects static tokens: integration tokens (ntn_...) get invalid_token; only OAuth 2.0 access tokens work. ' +
  'Fix: set spec.authType: oauth, or run the open-source Notion MCP server in-cluster and point spec.url at it.';
const ROVO_DENIAL =
  'Atlassian Rovo rejects static tokens: personal access tokens expose only 2 limited tools; Jira/Confluence need OAuth. ' +
  'Fix: set spec.authType: oauth, or run an Atlassian MCP server (e.g. mcp-atlassian) in-cluster and point spec.url at it.';
const ACME_DENIAL = 'Acme MCP rejects static tokens: Acme refuses personal tokens. Fix: set spec.authType: oauth.';
const USERINFO_DENIAL =
  'spec.url must not contain a user name or password (user:pass@): URLs are copied into pod specs and logs. ' +
  'Put the token in a Secret and reference it with spec.authSecretKeyRef.';

let env: Environment;

async function kubectl(args: readonly string[], options: { input?: string; allowFailure?: boolean } = {}): Promise<KubectlResult> {
  return env.kubectl(args, { ...(options.input === undefined ? {} : { input: options.input }), allowFailure: options.allowFailure === true });
}

function connector(name: string, spec: Record<string, unknown>, namespace = NS): Record<string, unknown> {
  return {
    apiVersion: API,
    kind: 'KomputerConnector',
    metadata: { name, namespace },
    spec: { type: 'remote', service: name, ...spec },
  };
}

/** `kubectl apply` (client-side, what users type) of one object; never throws. */
function kubectlApply(object: object, extra: string[] = []): Promise<KubectlResult> {
  return kubectl(['apply', ...extra, '-f', '-'], { input: JSON.stringify(object), allowFailure: true });
}

async function exists(kind: string, name: string, namespace = NS): Promise<boolean> {
  const result = await kubectl(['get', kind, name, '-n', namespace, '-o', 'name'], { allowFailure: true });
  if (result.code === 0) return true;
  assert.match(result.stderr, /NotFound|not found/);
  return false;
}

/** Asserts kubectl was refused by this service's webhook with exactly `message`. */
function assertDenied(result: KubectlResult, message: string): void {
  assert.notEqual(result.code, 0, `expected a denial, got success: ${result.stdout}`);
  assert.ok(
    result.stderr.includes(`admission webhook "${WEBHOOK}" denied the request: ${message}`),
    `kubectl's stderr shows the service's message.\nexpected: ${message}\nstderr:   ${result.stderr}`,
  );
}


/** Dry-run creates `object` until the verdict is the wanted one (the policy watch is eventually consistent). */
async function waitForVerdict(object: Record<string, unknown>, want: 'denied' | 'allowed'): Promise<KubectlResult> {
  return poll(`${want}: ${JSON.stringify(object['spec'])}`, async () => {
    const result = await kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(object), allowFailure: true });
    const denied = result.code !== 0 && result.stderr.includes(`admission webhook "${WEBHOOK}" denied the request`);
    if (result.code !== 0 && !denied) assert.fail(`unexpected failure: ${result.stderr}`);
    return { ok: want === 'denied' ? denied : result.code === 0, value: result, detail: (result.stderr || result.stdout).trim() };
  });
}

function metrics(): Promise<string> {
  const service = env.service;
  assert.ok(service);
  return new Promise((resolve, reject) => {
    httpRequest(`http://127.0.0.1:${service.metricsPort}/metrics`, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      response.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

async function metricValue(name: string): Promise<number | undefined> {
  return sampleValue(await metrics(), name);
}

async function setPolicy(text: string): Promise<void> {
  await env.apply({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: POLICY_CM, namespace: env.serviceNamespace },
    data: { 'incompatible.yaml': text },
  });
}

async function serviceLog(): Promise<string> {
  const service = env.service;
  assert.ok(service);
  return readFile(service.logFile, 'utf8');
}

const notionToken = (name: string, url = 'https://mcp.notion.com/mcp'): Record<string, unknown> =>
  connector(name, { service: 'notion', url, authType: 'token', authSecretKeyRef: { name: 'notion', key: 'token' } });

const acme = (name: string, authType = 'token'): Record<string, unknown> =>
  connector(name, { service: 'acme', url: 'https://mcp.acme.example/mcp', authType, authSecretKeyRef: { name: 'acme', key: 'token' } });

before(async () => {
  env = await startEnvironment();
  await env.createNamespace(NS, { enabled: true });
  // The validating webhook answers as soon as the service runs (the harness' canary proved
  // it for pods); make sure it is wired for connectors here before the first assertion.
  await waitForVerdict(notionToken('warm-up'), 'denied');
});
after(stopEnvironment);

describe('known-incompatible connectors', () => {
  test('kubectl apply of a Notion connector with a static token is refused with the why and the remedy', async () => {
    const result = await kubectlApply(notionToken('notion'));
    assertDenied(result, NOTION_DENIAL);
    assert.equal(await exists('komputerconnector', 'notion'), false, 'nothing stored');

    // authType left out: the CRD defaults it to token, which is refused the same way.
    const unset = connector('notion-unset', { service: 'notion', url: 'https://mcp.notion.com/mcp' });
    assertDenied(await kubectlApply(unset), NOTION_DENIAL);

    const rovo = connector('rovo', { service: 'atlassian', url: 'https://mcp.atlassian.com/v1/mcp', authType: 'token', authSecretKeyRef: { name: 'rovo', key: 'pat' } });
    assertDenied(await kubectlApply(rovo), ROVO_DENIAL);
    assert.equal(await exists('komputerconnector', 'rovo'), false);
  });

  test('the same connectors with authType: oauth are accepted and stored, without warnings', async () => {
    for (const [name, url] of [
      ['notion', 'https://mcp.notion.com/mcp'],
      ['rovo', 'https://mcp.atlassian.com/v1/mcp'],
    ] as const) {
      const result = await kubectlApply(connector(name, { url, authType: 'oauth', authSecretKeyRef: { name, key: 'oauth.json' } }));
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(warningsOf(result), []);
      assert.equal(await exists('komputerconnector', name), true);
    }
  });

  test('other spellings of a listed endpoint are refused too', async () => {
    const spellings = [
      'HTTPS://MCP.NOTION.COM.:443/mcp/?x=1',
      'http://mcp.notion.com/mcp',
      'https://mcp.notion.com:443//mcp//',
      'https://mcp.notion.com/%6Dcp',
      'https://mcp.notion.com/mcp#fragment',
      'https://Mcp.Notion.Com/mcp/',
    ];
    for (const [i, url] of spellings.entries()) {
      const result = await kubectlApply(notionToken(`spelling-${i}`, url));
      assertDenied(result, NOTION_DENIAL);
    }
    assertDenied(await kubectlApply(connector('rovo-spelled', { url: 'https://MCP.atlassian.com:443/v1//mcp/?y', authType: 'token' })), ROVO_DENIAL);
    for (const i of spellings.keys()) assert.equal(await exists('komputerconnector', `spelling-${i}`), false);
  });

  test('look-alike hosts and paths are not the listed endpoint', async () => {
    for (const [i, url] of ['https://mcp.notion.com.evil.example/mcp', 'https://notmcp.notion.com/mcp', 'https://mcp.notion.com/mcpx'].entries()) {
      const result = await kubectlApply(notionToken(`lookalike-${i}`, url), ['--dry-run=server']);
      assert.equal(result.code, 0, `${url} is another endpoint: ${result.stderr}`);
    }
  });

  test('a URL with user-info is refused for every host, without echoing the credentials', async () => {
    const cases = [
      { name: 'userinfo-notion', url: 'https://alice-e2e:S3cretE2EPassw0rd@mcp.notion.com/mcp', authType: 'oauth', secrets: ['alice-e2e', 'S3cretE2EPassw0rd'] },
      {
        name: 'userinfo-github',
        url: 'https://x-access-token:ghp_E2EUSERINFOcanary0123456789abcdefABCD@api.githubcopilot.com/mcp/',
        authType: 'token',
        secrets: ['ghp_E2EUSERINFOcanary0123456789abcdefABCD'],
      },
      { name: 'userinfo-only-user', url: 'https://ghp_E2EUSERONLYcanary0123456789abcdef@mcp.slack.com/mcp', authType: 'token', secrets: ['ghp_E2EUSERONLYcanary0123456789abcdef'] },
    ];
    for (const c of cases) {
      const result = await kubectlApply(connector(c.name, { url: c.url, authType: c.authType }));
      assertDenied(result, USERINFO_DENIAL);
      for (const s of c.secrets) assert.equal(result.stderr.includes(s), false, `kubectl's output must not contain ${s}`);
      assert.equal(await exists('komputerconnector', c.name), false);
    }
    // Nor the service's log (written at debug level here), once it has logged those requests.
    const log = await poll('the last user-info denial in the service log', async () => {
      const text = await serviceLog();
      return { ok: text.includes('"name":"userinfo-only-user"'), value: text, detail: `${text.length} bytes` };
    });
    for (const s of cases.flatMap((c) => c.secrets)) assert.equal(log.includes(s), false, `the service log must not contain ${s}`);
  });
});

describe('agents', () => {
  test('an agent referencing a missing connector is accepted with a warning', async () => {
    const agent = { apiVersion: API, kind: 'KomputerAgent', metadata: { name: 'hopeful', namespace: NS }, spec: { instructions: 'never runs', connectors: ['notion', 'not-yet'] } };
    const result = await kubectlApply(agent);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(warningsOf(result), [`connector not-yet: connector not found in namespace ${NS}`]);
    assert.equal(await exists('komputeragent', 'hopeful'), true);
  });

  test('an agent reference that can never resolve is refused', async () => {
    const agent = { apiVersion: API, kind: 'KomputerAgent', metadata: { name: 'broken', namespace: NS }, spec: { instructions: 'never runs', connectors: ['a/b/c'] } };
    const result = await kubectlApply(agent);
    assertDenied(result, 'spec.connectors[0] "a/b/c" is not "name" or "namespace/name". Use "name" (same namespace) or "namespace/name".');
    assert.equal(await exists('komputeragent', 'broken'), false);
  });
});

describe("the admin's policy ConfigMap", () => {

  test('an added entry takes effect without a restart', async () => {
    const pid = env.service?.process?.pid;
    // Before: Acme is not listed. A connector created now stays (DELETE test below).
    const before = await kubectlApply(acme('acme-before'));
    assert.equal(before.code, 0, before.stderr);

    await setPolicy(
      [
        'entries:',
        '  - id: acme',
        '    service: Acme MCP',
        '    url: https://mcp.acme.example/mcp',
        '    allowedAuthTypes: [oauth]',
        '    why: Acme refuses personal tokens',
        '    instead: "set spec.authType: oauth"',
        '',
      ].join('\n'),
    );
    await waitForVerdict(acme('acme-new'), 'denied');
    assertDenied(await kubectlApply(acme('acme-new')), ACME_DENIAL);
    const spelled = acme('acme-spelled-new');
    (spelled['spec'] as Record<string, unknown>)['url'] = 'HTTPS://mcp.ACME.example.:443/mcp/?v=2';
    assertDenied(await kubectlApply(spelled), ACME_DENIAL);
    const oauth = await kubectlApply(acme('acme-oauth', 'oauth'));
    assert.equal(oauth.code, 0, oauth.stderr);
    // The built-ins stay in force next to the admin's entries.
    assertDenied(await kubectlApply(notionToken('notion-still')), NOTION_DENIAL);
    assert.equal(await metricValue('komputer_webhook_policy_config_valid'), 1);
    assert.equal(await metricValue('komputer_webhook_policy_entries'), 3);
    assert.equal(env.service?.process?.pid, pid, 'no restart');
  });

  test('a broken ConfigMap keeps the built-ins and the last good list in force, and readiness stays up', async () => {
    const invalidBefore = (await serviceLog()).split('connector policy ConfigMap is invalid').length;
    // A typo (allowedAuthType) must not silently change what is allowed.
    await setPolicy(['entries:', '  - id: acme', '    service: Acme MCP', '    url: https://mcp.acme.example/mcp', '    allowedAuthType: [token]', '    why: x', '    instead: y', ''].join('\n'));
    await poll('the service reports the broken ConfigMap', async () => {
      const count = (await serviceLog()).split('connector policy ConfigMap is invalid').length;
      const valid = await metricValue('komputer_webhook_policy_config_valid');
      return { ok: count > invalidBefore && valid === 0, value: undefined, detail: `log reports ${count - 1}, metric ${valid}` };
    });
    assertDenied(await kubectlApply(notionToken('notion-broken')), NOTION_DENIAL);
    assertDenied(await kubectlApply(acme('acme-broken')), ACME_DENIAL);

    // Not even YAML.
    await setPolicy('entries: [ {id: acme');
    await poll('the service reports the unparsable ConfigMap', async () => {
      const count = (await serviceLog()).split('connector policy ConfigMap is invalid').length;
      return { ok: count > invalidBefore + 1, value: undefined, detail: `log reports ${count - 1}` };
    });
    assertDenied(await kubectlApply(notionToken('notion-unparsable')), NOTION_DENIAL);
    assertDenied(await kubectlApply(connector('rovo-unparsable', { url: 'https://mcp.atlassian.com/v1/mcp', authType: 'token' })), ROVO_DENIAL);
    assertDenied(await kubectlApply(acme('acme-unparsable')), ACME_DENIAL);

    const service = env.service;
    assert.ok(service);
    const readyz = await httpsGet(`${service.url}/readyz`, env.certs.caCert);
    assert.equal(readyz.status, 200, `readiness stays up with a broken policy: ${readyz.body}`);
  });

  test('switching a built-in off works, and removing the ConfigMap restores the built-ins', async () => {
    await setPolicy('disableBuiltins: [notion]\n');
    await waitForVerdict(notionToken('notion-off'), 'allowed');
    const result = await kubectlApply(notionToken('notion-off'));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await exists('komputerconnector', 'notion-off'), true);
    // Only that one: the other built-in stays, and the admin's former entry is gone with the config.
    assertDenied(await kubectlApply(connector('rovo-off', { url: 'https://mcp.atlassian.com/v1/mcp', authType: 'token' })), ROVO_DENIAL);
    const acmeNow = await kubectlApply(acme('acme-after'), ['--dry-run=server']);
    assert.equal(acmeNow.code, 0, acmeNow.stderr);
    assert.equal(await metricValue('komputer_webhook_policy_config_valid'), 1);

    // The same with an entry `enabled: false`.
    await setPolicy('entries:\n  - id: atlassian-rovo\n    enabled: false\n');
    await waitForVerdict(connector('rovo-off', { url: 'https://mcp.atlassian.com/v1/mcp', authType: 'token' }), 'allowed');
    await waitForVerdict(notionToken('notion-back'), 'denied');

    await kubectl(['delete', 'configmap', POLICY_CM, '-n', env.serviceNamespace]);
    await waitForVerdict(connector('rovo-back', { url: 'https://mcp.atlassian.com/v1/mcp', authType: 'token' }), 'denied');
    assertDenied(await kubectlApply(notionToken('notion-back')), NOTION_DENIAL);
  });
});

describe('DELETE is never blocked', () => {
  test('connectors the policy now refuses can still be deleted', async () => {
    // Stored while allowed (before the Acme entry, and while Notion was switched off).
    assert.equal(await exists('komputerconnector', 'acme-before'), true);
    assert.equal(await exists('komputerconnector', 'notion-off'), true);
    await setPolicy(
      'entries:\n  - id: acme\n    service: Acme MCP\n    url: https://mcp.acme.example/mcp\n    why: Acme refuses personal tokens\n    instead: "set spec.authType: oauth"\n',
    );
    await waitForVerdict(acme('acme-probe'), 'denied');
    for (const name of ['acme-before', 'notion-off']) {
      const result = await kubectl(['delete', 'komputerconnector', name, '-n', NS, '--wait=true', '--timeout=20s'], { allowFailure: true });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await exists('komputerconnector', name), false);
    }
  });

  test('a refused connector held by a finalizer can still finish deleting', async () => {
    // Created while the namespace is not enabled (the webhook is not called), then enabled.
    const ns = 'e2e-policy-finalizer';
    await env.createNamespace(ns);
    const object = notionToken('legacy-notion');
    (object['metadata'] as Record<string, unknown>)['namespace'] = ns;
    (object['metadata'] as Record<string, unknown>)['finalizers'] = ['e2e.komputer.ai/cleanup'];
    const created = await kubectlApply(object);
    assert.equal(created.code, 0, created.stderr);
    await kubectl(['label', 'namespace', ns, 'komputer.ai/connector-injection=enabled']);
    // Wait until the webhook is called for this namespace.
    await waitForVerdict({ ...notionToken('probe'), metadata: { name: 'probe', namespace: ns } }, 'denied');

    const deleted = await kubectl(['delete', 'komputerconnector', 'legacy-notion', '-n', ns, '--wait=false'], { allowFailure: true });
    assert.equal(deleted.code, 0, deleted.stderr);
    // The owner of the finalizer removes it: an UPDATE of an object being deleted.
    const released = await kubectl(['patch', 'komputerconnector', 'legacy-notion', '-n', ns, '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]'], {
      allowFailure: true,
    });
    assert.equal(released.code, 0, `removing the finalizer of a connector being deleted must not be refused: ${released.stderr}`);
    assert.equal(await exists('komputerconnector', 'legacy-notion', ns), false);
  });
});
