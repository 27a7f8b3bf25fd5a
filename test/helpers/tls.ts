// Test certificates and an HTTPS client that verifies them, for server tests over real TLS.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCertificates } from '../../src/certs/generate.ts';

export interface TestCerts {
  readonly dir: string;
  readonly ca: string;
}

export async function writeTestCerts(): Promise<TestCerts> {
  const dir = mkdtempSync(join(tmpdir(), 'kcw-certs-'));
  const c = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  writeFileSync(join(dir, 'tls.crt'), c.cert);
  writeFileSync(join(dir, 'tls.key'), c.key, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), c.caCert);
  return { dir, ca: c.caCert };
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

export function post(port: number, path: string, body: string | Buffer, ca: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', ca, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export function get(port: number, path: string, ca: string): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}
