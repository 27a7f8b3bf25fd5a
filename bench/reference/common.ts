// Shared by the reference servers: TLS material, the listen address, and server settings
// identical to ours (keep-alive longer than the client's, bounded headers).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface ReferenceArgs {
  readonly certDir: string;
  readonly host: string;
  readonly port: number;
}

/** `--cert-dir DIR --host H --port P`, the same flags as `komputer-webhook serve`. */
export function parseArgs(argv: readonly string[]): ReferenceArgs {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const certDir = get('--cert-dir');
  const port = Number(get('--port'));
  if (!certDir || !Number.isInteger(port)) throw new Error('usage: --cert-dir DIR --port P [--host H]');
  return { certDir, host: get('--host') ?? '127.0.0.1', port };
}

export function serve(args: ReferenceArgs, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer({ cert: readFileSync(join(args.certDir, 'tls.crt')), key: readFileSync(join(args.certDir, 'tls.key')), minVersion: 'TLSv1.2' }, handler);
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.listen(args.port, args.host, () => process.stdout.write(`listening on ${args.host}:${args.port}\n`));
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
  return server;
}
