// The validating path end to end in-process: HTTPS server and CLI, built-in list and an
// admin ConfigMap from the state file, broken ConfigMap keeps the defaults.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { startTestServer } from '../helpers/server.ts';
import { post, writeTestCerts } from '../helpers/tls.ts';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
const dir = mkdtempSync(join(tmpdir(), 'kcw-validate-'));
const write = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

function connector(name: string, url: string, authType?: string): Record<string, unknown> {
  return { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerConnector', metadata: { name, namespace: 'team-a' }, spec: { type: 'remote', service: name, url, ...(authType ? { authType } : {}), authSecretKeyRef: { name: `${name}-token`, key: 'token' } } };
}

function review(object: Record<string, unknown>, operation = 'CREATE', oldObject?: Record<string, unknown>): string {
  const kind = object.kind as string;
  return JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'v-1', kind: { group: 'komputer.komputer.ai', version: 'v1alpha1', kind }, operation, namespace: 'team-a', name: 'x', object, oldObject: oldObject ?? null } });
}

const POLICY_STATE = `apiVersion: v1
kind: ConfigMap
metadata: {name: komputer-connector-webhook-policy, namespace: komputer-webhook-system}
data:
  incompatible.yaml: |
    disableBuiltins: [atlassian-rovo]
    entries:
      - id: acme
        service: Acme MCP
        url: https://mcp.acme.example/mcp
        why: Acme refuses personal tokens
        instead: set spec.authType oauth
`;

describe('validating webhook over HTTPS', () => {
  test('built-in list: Notion with a static token is denied with the reason and the remedy; OAuth is allowed; DELETE is never blocked', async () => {
    const certs = await writeTestCerts();
    const { server } = await startTestServer(certs, write('empty.yaml', ''));
    try {
      const denied = JSON.parse((await post(server.port, '/validate', review(connector('notion', 'HTTPS://MCP.Notion.com./mcp/?x=1', 'token')), certs.ca)).text) as { response: { uid: string; allowed: boolean; status: { code: number; message: string } } };
      assert.equal(denied.response.uid, 'v-1');
      assert.equal(denied.response.allowed, false);
      assert.equal(denied.response.status.code, 403);
      assert.match(denied.response.status.message, /Notion rejects static tokens.*authType: oauth/);
      const unset = JSON.parse((await post(server.port, '/validate', review(connector('notion', 'https://mcp.notion.com/mcp')), certs.ca)).text) as { response: { allowed: boolean } };
      assert.equal(unset.response.allowed, false, 'unset authType means token');
      const oauth = JSON.parse((await post(server.port, '/validate', review(connector('notion', 'https://mcp.notion.com/mcp', 'oauth')), certs.ca)).text) as { response: { allowed: boolean } };
      assert.equal(oauth.response.allowed, true);
      const del = JSON.parse((await post(server.port, '/validate', review(connector('notion', 'https://mcp.notion.com/mcp', 'token'), 'DELETE'), certs.ca)).text) as { response: { allowed: boolean } };
      assert.equal(del.response.allowed, true);
    } finally {
      await server.stop(0);
    }
  });

  test('a URL change on a connector agents use is allowed with a warning', async () => {
    const certs = await writeTestCerts();
    const { server } = await startTestServer(certs, write('empty2.yaml', ''));
    try {
      const old = { ...connector('github', 'https://api.githubcopilot.com/mcp/', 'token'), status: { attachedAgents: 3, agentNames: ['a', 'b', 'c'] } };
      const res = JSON.parse((await post(server.port, '/validate', review(connector('github', 'https://github.example/mcp', 'token'), 'UPDATE', old), certs.ca)).text) as { response: { allowed: boolean; warnings: string[] } };
      assert.equal(res.response.allowed, true);
      assert.ok(res.response.warnings.some((w) => /3 agents/.test(w)), JSON.stringify(res.response.warnings));
    } finally {
      await server.stop(0);
    }
  });

  test('agents: a missing connector is a warning; a malformed reference is denied', async () => {
    const certs = await writeTestCerts();
    const { server } = await startTestServer(certs, join(import.meta.dirname, '..', 'golden', 'solo', 'state.yaml'));
    try {
      const agent = (connectors: string[]) => ({ apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { generateName: 'a-', namespace: 'team-a' }, spec: { connectors } });
      const warn = JSON.parse((await post(server.port, '/validate', review(agent(['github', 'nope'])), certs.ca)).text) as { response: { allowed: boolean; warnings: string[] } };
      assert.equal(warn.response.allowed, true);
      assert.ok(warn.response.warnings.some((w) => w.includes('nope') && w.includes('not found')));
      const bad = JSON.parse((await post(server.port, '/validate', review(agent(['a/b/c'])), certs.ca)).text) as { response: { allowed: boolean } };
      assert.equal(bad.response.allowed, false);
    } finally {
      await server.stop(0);
    }
  });

  test('admin ConfigMap in the state file extends and switches off entries; a broken one keeps the built-ins', async () => {
    const certs = await writeTestCerts();
    const good = await startTestServer(certs, write('policy.yaml', POLICY_STATE));
    try {
      const acme = JSON.parse((await post(good.server.port, '/validate', review(connector('acme', 'https://mcp.acme.example/mcp', 'token')), certs.ca)).text) as { response: { allowed: boolean; status: { message: string } } };
      assert.equal(acme.response.allowed, false);
      assert.match(acme.response.status.message, /Acme MCP/);
      const rovo = JSON.parse((await post(good.server.port, '/validate', review(connector('jira', 'https://mcp.atlassian.com/v1/mcp', 'token')), certs.ca)).text) as { response: { allowed: boolean } };
      assert.equal(rovo.response.allowed, true, 'atlassian-rovo switched off');
    } finally {
      await good.server.stop(0);
    }
    const broken = await startTestServer(certs, write('broken.yaml', POLICY_STATE.replace('disableBuiltins: [atlassian-rovo]', 'disableBuiltins: {{{ notion')));
    try {
      const notion = JSON.parse((await post(broken.server.port, '/validate', review(connector('notion', 'https://mcp.notion.com/mcp', 'token')), certs.ca)).text) as { response: { allowed: boolean } };
      assert.equal(notion.response.allowed, false, 'built-ins still in force');
      assert.ok(broken.logs.text.includes('invalid'), 'the broken config is reported');
    } finally {
      await broken.server.stop(0);
    }
  });
});

describe('komputer-webhook validate', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, 'validate', ...args], { encoding: 'utf8' });
  test('exits 1 with the denial for the Notion token example', () => {
    const r = run(['-f', join(EXAMPLES, 'connector-notion-token.yaml')]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /denied: Notion rejects static tokens/);
  });
  test('exits 0 for the OAuth example', () => {
    const r = run(['-f', join(EXAMPLES, 'connector-notion-oauth.yaml')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /allowed/);
  });
  test('uses the ConfigMap from --state', () => {
    const f = write('acme.yaml', JSON.stringify(connector('acme', 'https://mcp.acme.example/mcp/', 'token')));
    assert.equal(run(['-f', f]).status, 0);
    const r = run(['-f', f, '--state', write('policy2.yaml', POLICY_STATE)]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /Acme MCP/);
  });
  test('a broken policy ConfigMap in --state is exit 2 with the reason', () => {
    const r = run(['-f', join(EXAMPLES, 'connector-notion-oauth.yaml'), '--state', write('broken2.yaml', POLICY_STATE.replace('why: Acme', 'wyh: Acme'))]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /is invalid/);
  });
  test('authType none (sent by the platform\'s own tools), a header connector without headerName: exit 1 with the fix; a good header connector: exit 0', () => {
    const spec = (extra: Record<string, unknown>) => ({ ...connector('keyed', 'https://mcp.keyed.example/mcp'), spec: { type: 'remote', service: 'keyed', url: 'https://mcp.keyed.example/mcp', authSecretKeyRef: { name: 'k', key: 'v' }, ...extra } });
    const none = run(['-f', write('none.yaml', JSON.stringify(spec({ authType: 'none' })))]);
    assert.equal(none.status, 1, none.stderr);
    assert.equal(none.stdout, 'KomputerConnector team-a/keyed: denied: spec.authType must be token, oauth or header (unset means token). For a server that needs no credentials, use token and leave spec.authSecretKeyRef unset.\n');
    const reviewed = spawnSync(process.execPath, [CLI, 'review', '--state', write('none-state.yaml', '')], { input: review(spec({ authType: 'none' })), encoding: 'utf8' });
    assert.equal(reviewed.status, 0, reviewed.stderr);
    const answer = (JSON.parse(reviewed.stdout) as { response: { uid: string; allowed: boolean; status: { code: number; message: string } } }).response;
    assert.deepEqual([answer.uid, answer.allowed, answer.status.code], ['v-1', false, 403]);
    assert.match(answer.status.message, /^spec\.authType must be token, oauth or header/);
    const nameless = run(['-f', write('nameless.yaml', JSON.stringify(spec({ authType: 'header' })))]);
    assert.equal(nameless.status, 1);
    assert.match(nameless.stdout, /denied: spec\.authType header needs spec\.headerName/);
    const good = run(['-f', write('keyed.yaml', JSON.stringify(spec({ authType: 'header', headerName: 'X-API-Key' })))]);
    assert.equal(good.status, 0, good.stdout + good.stderr);
    assert.equal(good.stdout, 'KomputerConnector team-a/keyed: allowed\n');
  });
  test('an agent naming a disabled connector, or one in a namespace that does not share it: the same answers as the server', () => {
    const state = write('disabled-state.yaml', `apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {komputer.ai/connector-injection: enabled}}
---
apiVersion: komputer.komputer.ai/v1alpha1
kind: KomputerConnector
metadata: {name: slack, namespace: team-a}
spec: {type: remote, service: slack, url: "https://mcp.slack.com/mcp", disabled: true}
---
apiVersion: komputer.komputer.ai/v1alpha1
kind: KomputerConnector
metadata: {name: hidden, namespace: owner}
spec: {type: remote, service: hidden, url: "https://mcp.hidden.example/mcp"}
`);
    const agent = (connectors: string[]) => JSON.stringify({ apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerAgent', metadata: { name: 'bot', namespace: 'team-a' }, spec: { connectors } });
    const disabled = run(['-f', write('agent-disabled.yaml', agent(['slack'])), '--state', state]);
    assert.equal(disabled.status, 1);
    assert.equal(disabled.stdout, 'KomputerAgent team-a/bot: denied: spec.connectors: connector "slack" is disabled and cannot be newly attached. Fix: re-enable it with spec.disabled: false on the connector, or remove it from spec.connectors.\n');
    const hidden = run(['-f', write('agent-hidden.yaml', agent(['owner/hidden', 'owner/absent'])), '--state', state]);
    assert.equal(hidden.status, 0);
    const lines = hidden.stdout.split('\n').filter((l) => l.startsWith('  warning:'));
    assert.deepEqual(lines.map((l) => l.replace(/owner\/(hidden|absent)/, 'owner/X')), [
      '  warning: connector owner/X: not found in namespace owner, or not shared with namespace team-a (its owner shares it with the komputer.ai/shared-with-namespaces annotation)',
      '  warning: connector owner/X: not found in namespace owner, or not shared with namespace team-a (its owner shares it with the komputer.ai/shared-with-namespaces annotation)',
    ]);
  });
  test('garbage YAML is exit 2', () => {
    const r = run(['-f', write('garbage.yaml', '- [')]);
    assert.equal(r.status, 2);
  });
});
