// The node suites' fixtures (test/image/agent-runtime, test/image/fake-mcp), on the host: the
// runtime's env handling as a table, then the real scripts talking over loopback with canary
// tokens, which must arrive in the right header and never appear in either log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseServers, planCall, loggableUrl } from '../image/agent-runtime/agent.ts';
import { recordOf, sha256, startServer, type RequestRecord } from '../image/fake-mcp/server.ts';

const agentScript = fileURLToPath(new URL('../image/agent-runtime/agent.ts', import.meta.url));
const serverScript = fileURLToPath(new URL('../image/fake-mcp/server.ts', import.meta.url));

test('parseServers: the injected JSON object, absent as none, anything else a clear error', () => {
  assert.deepEqual(parseServers(undefined), {});
  assert.deepEqual(parseServers(''), {});
  assert.deepEqual(parseServers('{"github":{"type":"http","url":"https://x/mcp"}}'), { github: { type: 'http', url: 'https://x/mcp' } });
  assert.throws(() => parseServers('{'), /KOMPUTER_MCP_SERVERS is not JSON/);
  assert.throws(() => parseServers('[]'), /not a JSON object/);
  assert.throws(() => parseServers('{"a":"x"}'), /\["a"\] is not an object/);
});

test('planCall: which header carries which token, per authType', () => {
  const env = { T: 'tok-1', J: '{"access_token":"acc-2","refresh_token":"r"}', BAD: 'not json', NOACC: '{"token":"x"}' };
  const url = 'https://mcp.example/mcp';
  const rows: Array<[string, Record<string, unknown>, unknown]> = [
    ['token (default)', { type: 'http', url, tokenEnv: 'T' }, { header: 'Authorization', headers: { Authorization: 'Bearer tok-1' } }],
    ['token explicit', { type: 'http', url, tokenEnv: 'T', authType: 'token' }, { header: 'Authorization', headers: { Authorization: 'Bearer tok-1' } }],
    ['oauth: access_token of the JSON value', { type: 'http', url, tokenEnv: 'J', authType: 'oauth' }, { header: 'Authorization', headers: { Authorization: 'Bearer acc-2' } }],
    ['header with headerName: verbatim, no Bearer', { type: 'http', url, tokenEnv: 'T', authType: 'header', headerName: 'X-API-Key' }, { header: 'X-API-Key', headers: { 'X-API-Key': 'tok-1' } }],
    ['header without headerName: Bearer', { type: 'http', url, tokenEnv: 'T', authType: 'header' }, { header: 'Authorization', headers: { Authorization: 'Bearer tok-1' } }],
    ['headerName ignored for token', { type: 'http', url, tokenEnv: 'T', authType: 'token', headerName: 'X-API-Key' }, { header: 'Authorization', headers: { Authorization: 'Bearer tok-1' } }],
    ['no tokenEnv: no credentials', { type: 'http', url }, { header: null, headers: {} }],
    ['token env not set', { type: 'http', url, tokenEnv: 'MISSING' }, { error: 'env MISSING is not set' }],
    ['oauth value not JSON', { type: 'http', url, tokenEnv: 'BAD', authType: 'oauth' }, { error: 'env BAD is not a JSON document (authType oauth)' }],
    ['oauth without access_token', { type: 'http', url, tokenEnv: 'NOACC', authType: 'oauth' }, { error: 'env NOACC has no access_token (authType oauth)' }],
    ['type not http', { type: 'stdio', url, tokenEnv: 'T' }, { error: 'type "stdio" is not "http"' }],
    ['no url', { type: 'http', tokenEnv: 'T' }, { error: 'no url' }],
  ];
  for (const [name, entry, want] of rows) {
    const got = planCall('s', entry, env) as unknown as Record<string, unknown>;
    const { server, url: gotUrl, ...rest } = got;
    assert.equal(server, 's', name);
    if (!('error' in rest)) assert.equal(gotUrl, url, name);
    assert.deepEqual(rest, want, name);
    // An error never quotes a token value.
    if ('error' in rest) for (const v of Object.values(env)) assert.ok(!String(rest.error).includes(v), name);
  }
});

test('loggableUrl drops user-info', () => {
  assert.equal(loggableUrl('https://user:secret@mcp.example/mcp'), 'https://mcp.example/mcp');
  assert.equal(loggableUrl('::'), '<unparsable url>');
});

test('recordOf: header names and digests only, bearer digest, calling client', () => {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { clientInfo: { name: 'agent-a' } } });
  const r = recordOf({ method: 'POST', url: '/github/mcp?x=1', headers: { authorization: 'Bearer canary-1', 'x-api-key': 'canary-2' } }, body, new Date(0));
  assert.deepEqual(r, {
    at: '1970-01-01T00:00:00.000Z', method: 'POST', path: '/github/mcp',
    headers: { authorization: sha256('Bearer canary-1'), 'x-api-key': sha256('canary-2') },
    bearerSha256: sha256('canary-1'), client: 'agent-a', rpcMethod: 'initialize',
  });
  assert.ok(!JSON.stringify(r).includes('canary'));
  const plain = recordOf({ method: 'GET', url: '/', headers: {} }, 'not json');
  assert.equal(plain.bearerSha256, null);
  assert.equal(plain.client, null);
});

async function run(script: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
  const [code] = await once(child, 'exit') as [number | null];
  return { code, out };
}

test('the real agent script reaches the real fake server with each token in its header, and no log holds a token', async () => {
  const serverLog: string[] = [];
  const server = startServer(0, 100, (l) => serverLog.push(l));
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const canary = { gh: 'canary-gh-7f3a', linear: 'canary-lin-91bc', notion: 'canary-notion-acc-55d2', key: 'canary-key-0e44' };
  try {
    const servers = {
      github: { type: 'http', url: `${base}/github/mcp`, tokenEnv: 'CONNECTOR_GITHUB_TOKEN', authType: 'token' },
      linear: { type: 'http', url: `${base}/linear/mcp`, tokenEnv: 'CONNECTOR_LINEAR_TOKEN' },
      notion: { type: 'http', url: `${base}/notion/mcp`, tokenEnv: 'CONNECTOR_NOTION_TOKEN', authType: 'oauth' },
      search: { type: 'http', url: `${base}/search/mcp`, tokenEnv: 'CONNECTOR_SEARCH_TOKEN', authType: 'header', headerName: 'X-API-Key' },
      open: { type: 'http', url: `${base}/open/mcp` },
    };
    const { code, out } = await run(agentScript, {
      AGENT_EXIT: '1', AGENT_NAME: 'agent-a', AGENT_TIMEOUT_SECONDS: '10',
      KOMPUTER_MCP_SERVERS: JSON.stringify(servers),
      CONNECTOR_GITHUB_TOKEN: canary.gh, CONNECTOR_LINEAR_TOKEN: canary.linear,
      CONNECTOR_NOTION_TOKEN: JSON.stringify({ access_token: canary.notion, token_type: 'Bearer' }),
      CONNECTOR_SEARCH_TOKEN: canary.key,
    });
    assert.equal(code, 0, out);
    assert.match(out, /"servers":5,"ok":5,"failed":0/);
    const { records } = await (await fetch(`${base}/_records`)).json() as { records: RequestRecord[] };
    const byPath = new Map(records.map((r) => [r.path, r]));
    assert.equal(records.length, 5);
    for (const r of records) { assert.equal(r.client, 'agent-a'); assert.equal(r.rpcMethod, 'initialize'); }
    assert.equal(byPath.get('/github/mcp')?.bearerSha256, sha256(canary.gh));
    assert.equal(byPath.get('/linear/mcp')?.bearerSha256, sha256(canary.linear));
    assert.equal(byPath.get('/notion/mcp')?.bearerSha256, sha256(canary.notion));
    const search = byPath.get('/search/mcp');
    assert.equal(search?.headers['x-api-key'], sha256(canary.key));
    assert.equal(search?.headers.authorization, undefined);
    assert.equal(byPath.get('/open/mcp')?.headers.authorization, undefined);
    const logs = out + serverLog.join('\n') + JSON.stringify(records);
    for (const value of Object.values(canary)) assert.ok(!logs.includes(value), `a log or record holds ${value}`);
    assert.match(out, /"server":"search","url":"[^"]+\/search\/mcp","header":"X-API-Key","status":200/);
  } finally {
    server.close();
  }
});

test('the agent reports a bad config or a missing token clearly and exits non-zero', async () => {
  const bad = await run(agentScript, { AGENT_EXIT: '1', KOMPUTER_MCP_SERVERS: '{"x":' });
  assert.equal(bad.code, 2);
  assert.match(bad.out, /KOMPUTER_MCP_SERVERS is not JSON/);
  const missing = await run(agentScript, { AGENT_EXIT: '1', KOMPUTER_MCP_SERVERS: '{"gh":{"type":"http","url":"http://127.0.0.1:9/","tokenEnv":"CONNECTOR_GH_TOKEN"}}' });
  assert.equal(missing.code, 1);
  assert.match(missing.out, /env CONNECTOR_GH_TOKEN is not set/);
});

test('the real server script starts, answers /healthz and stops on SIGTERM', async () => {
  const probe = startServer(0); await once(probe, 'listening');
  const port = (probe.address() as AddressInfo).port; probe.close(); await once(probe, 'close');
  const child = spawn(process.execPath, [serverScript], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [first] = await once(child.stdout, 'data') as [Buffer];
    assert.match(first.toString(), /"listening"/);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/healthz`)).text(), 'ok');
  } finally {
    child.kill('SIGTERM');
  }
  const [code] = await once(child, 'exit') as [number | null];
  assert.equal(code, 0);
});
