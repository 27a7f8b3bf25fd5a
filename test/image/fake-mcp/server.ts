// Fake MCP server (a test fixture): answers any POST as an MCP server would answer
// `initialize`, and records what each request carried so a test can check which header each
// token arrived in. A record holds header names and the SHA-256 of each value, never a value,
// so neither the record nor the log ever holds a token (tests plant canaries and compare
// digests).
//   GET  /_records  -> {"records":[...]} (oldest first, at most MAX_RECORDS kept)
//   GET  /healthz   -> ok
//   anything else   -> recorded; POST gets a JSON-RPC result
// PORT (default 8080), MAX_RECORDS (default 1000).
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface RequestRecord {
  at: string;
  method: string;
  path: string;
  /** Lower-cased header name -> hex SHA-256 of its value (values joined with ", " if repeated). */
  headers: Record<string, string>;
  /** For `Authorization: Bearer <x>`: SHA-256 of <x>, so a test compares it with its token's digest. */
  bearerSha256: string | null;
  /** params.clientInfo.name of a JSON-RPC body, if any (which agent called). */
  client: string | null;
  rpcMethod: string | null;
}

export function sha256(value: string): string { return createHash('sha256').update(value).digest('hex'); }

export function recordOf(req: { method?: string | undefined; url?: string | undefined; headers: IncomingMessage['headers'] }, body: string, at = new Date()): RequestRecord {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = sha256(Array.isArray(value) ? value.join(', ') : value);
  }
  const auth = req.headers.authorization;
  const bearer = typeof auth === 'string' && /^Bearer /i.test(auth) ? auth.slice('Bearer '.length) : null;
  let client: string | null = null;
  let rpcMethod: string | null = null;
  try {
    const doc = JSON.parse(body) as { method?: unknown; params?: { clientInfo?: { name?: unknown } } };
    if (typeof doc.method === 'string') rpcMethod = doc.method;
    if (typeof doc.params?.clientInfo?.name === 'string') client = doc.params.clientInfo.name;
  } catch { /* not JSON: recorded without client */ }
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  return { at: at.toISOString(), method: req.method ?? 'GET', path, headers, bearerSha256: bearer === null ? null : sha256(bearer), client, rpcMethod };
}

export function startServer(port: number, maxRecords = 1000, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Server {
  const records: RequestRecord[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; if (size <= 1 << 20) chunks.push(c); });
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && path === '/_records') {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ records }));
        return;
      }
      if (req.method === 'GET' && path === '/healthz') { res.writeHead(200).end('ok'); return; }
      const body = Buffer.concat(chunks).toString('utf8');
      const record = recordOf(req, body);
      records.push(record);
      if (records.length > maxRecords) records.shift();
      log(JSON.stringify({ method: record.method, path: record.path, headers: Object.keys(record.headers), client: record.client }));
      if (req.method !== 'POST') { res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}'); return; }
      let id: unknown = null;
      try { id = (JSON.parse(body) as { id?: unknown }).id ?? null; } catch { /* no id */ }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({
        jsonrpc: '2.0', id,
        result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'komputer-fake-mcp', version: '1' } },
      }));
    });
  });
  server.listen(port);
  return server;
}

if (import.meta.main) {
  const server = startServer(Number(process.env.PORT ?? 8080), Number(process.env.MAX_RECORDS ?? 1000));
  server.on('listening', () => process.stdout.write(`${JSON.stringify({ listening: server.address() })}\n`));
  const stop = (): void => { server.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
