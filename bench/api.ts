// What the API-server benchmarks share: a keep-alive HTTPS client to the API server as admin,
// and a plain-HTTP GET (the service's metrics port).

import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { Environment } from '../test/e2e/harness/index.ts';

export interface Client {
  request(method: string, path: string, body?: string, contentType?: string): Promise<{ status: number; text: string; ms: number }>;
  close(): void;
}

/** One keep-alive HTTPS client as admin, at most `sockets` connections. */
export function apiClient(env: Environment, sockets: number): Client {
  const url = new URL(env.controlPlane.server);
  const agent = new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, ca: env.controlPlane.caCert });
  const auth = `Bearer ${env.controlPlane.adminToken}`;
  return {
    request(method, path, body, contentType = 'application/json') {
      return new Promise((resolve, reject) => {
        const t0 = performance.now();
        const headers: Record<string, string | number> = { authorization: auth, accept: 'application/json' };
        let payload: Buffer | undefined;
        if (body !== undefined) {
          payload = Buffer.from(body);
          headers['content-type'] = contentType;
          headers['content-length'] = payload.length;
        }
        const req = httpsRequest({ host: url.hostname, port: url.port, path, method, agent, headers, timeout: 30_000 }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
        req.on('error', reject);
        req.end(payload);
      });
    },
    close: () => agent.destroy(),
  };
}

/** A plain-HTTP GET on loopback (the service's metrics and health port): status and body. */
export function httpGet(port: number, path: string, timeoutMs = 10_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export async function httpGetText(port: number, path: string): Promise<string> {
  return (await httpGet(port, path)).text;
}
