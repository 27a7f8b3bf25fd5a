// Starts the real server in-process (state-file mode) with captured logs.

import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { SERVE_DEFAULTS, type ServeConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/logging/logger.ts';
import { startServer, type RunningServer } from '../../src/server/serve.ts';
import type { TestCerts } from './tls.ts';

export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
    cb();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export async function startTestServer(certs: TestCerts, stateFile: string, overrides: Partial<ServeConfig> = {}): Promise<{ server: RunningServer; logs: LogCapture }> {
  const logs = new LogCapture();
  const config: ServeConfig = {
    ...SERVE_DEFAULTS,
    certDir: certs.dir,
    host: '127.0.0.1',
    port: 0,
    metricsHost: '127.0.0.1',
    metricsPort: 0,
    kubeconfig: undefined,
    stateFile,
    drainMs: 0,
    identity: 'test',
    certMode: 'files',
    certDnsNames: [],
    certIpAddresses: [],
    checkCaBundle: false,
    clientCaFile: undefined,
    mirrorSharedSecrets: false,
    ...overrides,
  };
  const server = await startServer(config, createLogger({ destination: logs }));
  return { server, logs };
}

/** The plain-HTTP /metrics text of a test server. */
export function metricsText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString()));
      res.on('end', () => resolve(t));
    })
      .on('error', reject)
      .end();
  });
}
