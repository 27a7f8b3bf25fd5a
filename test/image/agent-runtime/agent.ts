// Test agent runtime: does with its env what the platform's agent runtime does, and no more.
// It parses KOMPUTER_MCP_SERVERS, pops tokenEnv/authType/headerName from each entry, reads the
// token from the named env var (for `oauth`, the `access_token` of the JSON value) and calls
// each server (an MCP `initialize` over HTTP) with `Authorization: Bearer <token>`, or with
// `<headerName>: <token>` for `header` auth with a headerName.
// It logs one JSON line per server (name, URL without credentials, header name, status) and
// never a token. Then it stays up (an agent is a long-running container) until SIGTERM, or
// exits when AGENT_EXIT=1 (status 0 only if every server answered 2xx).
// Plain Node, no dependencies: the image is the local base plus this file.

export interface ServerEntry { type?: unknown; url?: unknown; [key: string]: unknown }
export interface Call { server: string; url: string; header: string | null; headers: Record<string, string> }
export interface Problem { server: string; error: string }

/** KOMPUTER_MCP_SERVERS as the runtime reads it: a JSON object keyed by connector name. */
export function parseServers(text: string | undefined): Record<string, ServerEntry> {
  if (text === undefined || text === '') return {};
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch (err) { throw new Error(`KOMPUTER_MCP_SERVERS is not JSON: ${(err as Error).message}`); }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('KOMPUTER_MCP_SERVERS is not a JSON object');
  for (const [name, entry] of Object.entries(parsed)) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new Error(`KOMPUTER_MCP_SERVERS["${name}"] is not an object`);
  }
  return parsed as Record<string, ServerEntry>;
}

/** What the runtime pops before the rest goes to its MCP client, and the headers it then sends. */
export function planCall(server: string, entry: ServerEntry, env: Record<string, string | undefined>): Call | Problem {
  const { tokenEnv, authType, headerName, ...rest } = entry;
  if (rest.type !== 'http') return { server, error: `type ${JSON.stringify(rest.type)} is not "http"` };
  if (typeof rest.url !== 'string' || rest.url === '') return { server, error: 'no url' };
  const url = rest.url;
  if (tokenEnv === undefined || tokenEnv === '') return { server, url, header: null, headers: {} };
  if (typeof tokenEnv !== 'string') return { server, error: 'tokenEnv is not a string' };
  let token = env[tokenEnv];
  if (token === undefined || token === '') return { server, error: `env ${tokenEnv} is not set` };
  if (authType === 'oauth') {
    let doc: unknown;
    try { doc = JSON.parse(token); } catch { return { server, error: `env ${tokenEnv} is not a JSON document (authType oauth)` }; }
    const access = (doc !== null && typeof doc === 'object') ? (doc as { access_token?: unknown }).access_token : undefined;
    if (typeof access !== 'string' || access === '') return { server, error: `env ${tokenEnv} has no access_token (authType oauth)` };
    token = access;
  }
  if (authType === 'header' && typeof headerName === 'string' && headerName !== '') {
    return { server, url, header: headerName, headers: { [headerName]: token } };
  }
  return { server, url, header: 'Authorization', headers: { Authorization: `Bearer ${token}` } };
}

/** A URL fit for a log line: user-info dropped. */
export function loggableUrl(url: string): string {
  try { const u = new URL(url); u.username = ''; u.password = ''; return u.toString(); } catch { return '<unparsable url>'; }
}

async function callOnce(call: Call, clientName: string, timeoutMs: number): Promise<number> {
  const body = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: clientName, version: '1' } } };
  const res = await fetch(call.url, {
    method: 'POST',
    headers: { ...call.headers, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.arrayBuffer();
  return res.status;
}

function log(line: Record<string, unknown>): void { process.stdout.write(`${JSON.stringify(line)}\n`); }

async function main(): Promise<number> {
  const clientName = process.env.AGENT_NAME || process.env.HOSTNAME || 'komputer-test-agent';
  const deadline = Date.now() + Number(process.env.AGENT_TIMEOUT_SECONDS ?? 60) * 1000;
  let servers: Record<string, ServerEntry>;
  try { servers = parseServers(process.env.KOMPUTER_MCP_SERVERS); } catch (err) { log({ agent: clientName, error: (err as Error).message }); return 2; }
  let ok = 0; let failed = 0;
  for (const name of Object.keys(servers).sort()) {
    const plan = planCall(name, servers[name]!, process.env);
    if ('error' in plan) { failed++; log({ agent: clientName, ...plan }); continue; }
    // The server may not be up yet (pods start in any order): retry until the deadline.
    for (let attempt = 1; ; attempt++) {
      try {
        const status = await callOnce(plan, clientName, 5000);
        log({ agent: clientName, server: name, url: loggableUrl(plan.url), header: plan.header, status, attempt });
        if (status >= 200 && status < 300) ok++; else failed++;
        break;
      } catch (err) {
        if (Date.now() > deadline) { failed++; log({ agent: clientName, server: name, url: loggableUrl(plan.url), error: (err as Error).message, attempt }); break; }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
  log({ agent: clientName, servers: Object.keys(servers).length, ok, failed });
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) {
  const code = await main();
  if (process.env.AGENT_EXIT === '1') process.exit(code);
  // Stay up like an agent; exit promptly on SIGTERM/SIGINT (PID 1 has no default handlers).
  const stop = (): never => process.exit(code);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  setInterval(() => {}, 1 << 30);
}
