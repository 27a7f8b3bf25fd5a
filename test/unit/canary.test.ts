// Secrets never leak: canary strings planted in pod env values, Secret objects and
// secret-looking fields must not appear in logs (at the most verbose level), patches,
// warnings or metrics, through the server and through the CLI.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { podReview } from '../helpers/review.ts';
import { startTestServer } from '../helpers/server.ts';
import { post, writeTestCerts } from '../helpers/tls.ts';

process.env.LOG_LEVEL = 'trace';

const CANARY = 'ghp_CANARY0123456789abcdefCANARY';
const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

const stateWithSecrets = readFileSync(join(import.meta.dirname, '..', 'golden', 'solo', 'state.yaml'), 'utf8') + `
---
apiVersion: v1
kind: Secret
metadata: {name: github-token, namespace: team-a}
stringData: {token: ${CANARY}}
data: {token: ${Buffer.from(CANARY).toString('base64')}}
`;

function canaryPod(): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'team-a', labels: { 'komputer.ai/agent-name': 'researcher', 'komputer.ai/squad': 'false' }, annotations: { 'x/token': CANARY } },
    spec: {
      containers: [
        {
          name: 'agent',
          image: 'x',
          env: [
            { name: 'GITHUB_PAT', value: CANARY },
            { name: 'CONNECTOR_GITHUB_TOKEN', value: CANARY },
            { name: 'KOMPUTER_MCP_SERVERS', value: `{"github":{"url":"https://x:${CANARY}@h/"}}` },
            { name: 'KOMPUTER_MCP_SERVERS', value: CANARY },
          ],
        },
      ],
    },
  };
}

function assertNoCanary(where: string, text: string): void {
  assert.ok(!text.includes(CANARY), `${where} contains the canary`);
  assert.ok(!text.includes(Buffer.from(CANARY).toString('base64')), `${where} contains the base64 canary`);
}

describe('canary secrets', () => {
  test('server: not in patches, warnings, logs at trace level, or metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcw-canary-'));
    const state = join(dir, 'state.yaml');
    writeFileSync(state, stateWithSecrets);
    const certs = await writeTestCerts();
    const { server, logs } = await startTestServer(certs, state);
    try {
      const res = await post(server.port, '/mutate/pods', JSON.stringify(podReview(canaryPod(), 'team-a')), certs.ca);
      assert.equal(res.status, 200);
      const out = JSON.parse(res.text) as { response: { patch: string; warnings?: string[] } };
      const patch = Buffer.from(out.response.patch, 'base64').toString('utf8');
      assert.match(patch, /CONNECTOR_GITHUB_TOKEN/, 'the stale literal token var is replaced by a reference');
      assertNoCanary('patch', patch);
      assertNoCanary('warnings', JSON.stringify(out.response.warnings ?? []));
      // Bad requests that carry the canary must not echo it in the reason or the log.
      const bad = await post(server.port, '/mutate/pods', `{"token": "${CANARY}", `, certs.ca);
      assert.equal(bad.status, 400);
      assertNoCanary('400 reason', bad.text);
      const metrics = await new Promise<string>((resolve) => {
        httpRequest({ host: '127.0.0.1', port: server.metricsPort, path: '/metrics' }, (r) => {
          let t = '';
          r.on('data', (c: Buffer) => (t += c.toString()));
          r.on('end', () => resolve(t));
        }).end();
      });
      assertNoCanary('metrics', metrics);
      assert.ok(logs.lines.length >= 3, 'trace logging produced lines');
      assertNoCanary('logs', logs.text);
    } finally {
      await server.stop(0);
    }
  });

  test('CLI: review and mutate at trace level print no canary on stdout or stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcw-canary-'));
    const state = join(dir, 'state.yaml');
    writeFileSync(state, stateWithSecrets);
    const podFile = join(dir, 'pod.json');
    const pod = canaryPod();
    writeFileSync(podFile, JSON.stringify(pod));
    const env = { ...process.env, LOG_LEVEL: 'trace' };
    const review = execFileSync(process.execPath, [CLI, 'review', '--state', state], { input: JSON.stringify(podReview(pod, 'team-a')), env, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    const patch = Buffer.from((JSON.parse(review) as { response: { patch: string } }).response.patch, 'base64').toString('utf8');
    assertNoCanary('review patch', patch);
    // mutate prints the whole pod, so the user's own env values appear there by design;
    // its stderr summary must not carry them.
    const r = spawnSync(process.execPath, [CLI, 'mutate', '-f', podFile, '--state', state], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /injected github, notion, slack/);
    assertNoCanary('mutate stderr', r.stderr);
  });
});
