// The node suites' fixture images, run from their OCI archives with runc as the chart-style
// restricted containers they will be in pods (read-only root, no capabilities, image user):
// the test agent runtime calls the fake MCP server with canary tokens, and the server's record
// shows each token (as a digest) in the header its auth type asks for. Logs hold no canary.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './harness/ports.ts';
import { buildImages, IMAGES } from '../image/images.ts';
import { readConfig, restricted, RuncContainer, unpackImage } from '../image/runc.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sha256 = (v: string): string => createHash('sha256').update(v).digest('hex');
let dir: string;
const containers: RuncContainer[] = [];
const archives = new Map<string, string>();

before(async () => {
  const deps = spawnSync('bash', [join(root, 'test/image/install-deps.sh')], { stdio: 'inherit' });
  assert.equal(deps.status, 0, 'the image tools (buildah, mmdebstrap, umoci, runc) are missing: see the message above');
  for (const b of await buildImages('fixtures')) archives.set(b.name, b.archive);
  assert.deepEqual([...archives.keys()].sort(), [IMAGES.fakeMcp, IMAGES.agent].sort());
  dir = mkdtempSync(join(tmpdir(), 'kcw-fixtures-'));
});

after(async () => {
  for (const c of containers) await c.stop();
  const logs = join(root, '.e2e/logs/fixture-images.test');
  mkdirSync(logs, { recursive: true });
  for (const c of containers) writeFileSync(join(logs, `${c.id}.log`), c.output);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function container(image: string, name: string, env: Record<string, string>): RuncContainer {
  const bundle = unpackImage(archives.get(image)!, image, join(dir, name));
  const config = restricted(readConfig(bundle));
  assert.deepEqual(config.process.user, { uid: 65532, gid: 65532 }, `${image} runs as the image's non-root user`);
  config.process.env.push(...Object.entries(env).map(([k, v]) => `${k}=${v}`));
  const c = new RuncContainer(bundle, `kcw-${name}`);
  containers.push(c);
  c.start(config);
  return c;
}

test('the agent image calls the fake MCP server image with each token in its header', async () => {
  const port = await freePort();
  const server = container(IMAGES.fakeMcp, 'fake-mcp', { PORT: String(port) });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch { /* not yet */ }
    assert.equal(server.exitCode, null, `the fake MCP server exited:\n${server.output}`);
    assert.ok(i < 240, `the fake MCP server did not answer:\n${server.output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const canary = { gh: 'canary-img-gh-5b1e', oauth: 'canary-img-oauth-c7d0', key: 'canary-img-key-83fa' };
  const agent = container(IMAGES.agent, 'agent', {
    AGENT_EXIT: '1', AGENT_NAME: 'researcher', AGENT_TIMEOUT_SECONDS: '30',
    KOMPUTER_MCP_SERVERS: JSON.stringify({
      github: { type: 'http', url: `${base}/github/mcp`, tokenEnv: 'CONNECTOR_GITHUB_TOKEN', authType: 'token' },
      notion: { type: 'http', url: `${base}/notion/mcp`, tokenEnv: 'CONNECTOR_NOTION_TOKEN', authType: 'oauth' },
      search: { type: 'http', url: `${base}/search/mcp`, tokenEnv: 'CONNECTOR_SEARCH_TOKEN', authType: 'header', headerName: 'X-API-Key' },
    }),
    CONNECTOR_GITHUB_TOKEN: canary.gh,
    CONNECTOR_NOTION_TOKEN: JSON.stringify({ access_token: canary.oauth }),
    CONNECTOR_SEARCH_TOKEN: canary.key,
  });
  const code = await agent.wait();
  assert.equal(code, 0, agent.output);
  assert.match(agent.output, /"servers":3,"ok":3,"failed":0/);
  const { records } = await (await fetch(`${base}/_records`)).json() as { records: Array<{ path: string; client: string; bearerSha256: string | null; headers: Record<string, string> }> };
  const byPath = new Map(records.map((r) => [r.path, r]));
  assert.equal(byPath.get('/github/mcp')?.bearerSha256, sha256(canary.gh));
  assert.equal(byPath.get('/notion/mcp')?.bearerSha256, sha256(canary.oauth));
  assert.equal(byPath.get('/search/mcp')?.headers['x-api-key'], sha256(canary.key));
  assert.equal(byPath.get('/search/mcp')?.headers.authorization, undefined);
  for (const r of records) assert.equal(r.client, 'researcher');
  const everything = agent.output + server.output + JSON.stringify(records);
  for (const v of Object.values(canary)) assert.ok(!everything.includes(v), `a log or record holds ${v}`);
});
