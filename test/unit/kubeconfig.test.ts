// shareDispatchers: API calls through @kubernetes/client-node reuse one connection pool,
// proven by counting TLS connections on a real HTTPS server (loopback, its own CA); a changed
// CA (rotation) gets a new pool; the library's private hook is pinned.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { generateCertificates, type GeneratedCertificates } from '../../src/certs/generate.ts';
import { shareDispatchers } from '../../src/cluster/kubeconfig.ts';

let server: Server;
let certs: GeneratedCertificates;
let url: string;
let handshakes = 0;
let requests = 0;
const tokens: string[] = [];

before(async () => {
  certs = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  server = createServer({ cert: certs.cert, key: certs.key }, (req, res) => {
    requests++;
    tokens.push(String(req.headers.authorization));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] }));
  });
  server.on('secureConnection', () => handshakes++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function kubeconfig(caPem: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, caData: Buffer.from(caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function calls(kc: KubeConfig, n: number): Promise<{ handshakes: number; requests: number }> {
  const api = kc.makeApiClient(CoreV1Api);
  const [h0, r0] = [handshakes, requests];
  for (let i = 0; i < n; i++) await api.listNamespace();
  return { handshakes: handshakes - h0, requests: requests - r0 };
}

describe('shareDispatchers', () => {
  test('the library alone opens a TLS connection per API call (what this fixes)', async () => {
    const got = await calls(kubeconfig(certs.caCert, 'plain'), 5);
    assert.equal(got.requests, 5);
    assert.equal(got.handshakes, 5);
  });

  // undici may open a second connection when a call follows the previous one before its
  // connection is back in the pool; after that the pool is reused.
  test('shared: 20 sequential API calls over at most 2 TLS connections, each with its token', async () => {
    const kc = kubeconfig(certs.caCert, 'shared-token');
    shareDispatchers(kc);
    tokens.length = 0;
    const got = await calls(kc, 20);
    assert.equal(got.requests, 20);
    assert.ok(got.handshakes >= 1 && got.handshakes <= 2, `${got.handshakes} TLS connections for 20 calls`);
    assert.deepEqual(new Set(tokens), new Set(['Bearer shared-token']));
  });

  test('new TLS settings (a rotated CA) get a new pool; the same settings keep theirs', async () => {
    const kc = kubeconfig(certs.caCert, 't');
    shareDispatchers(kc);
    assert.ok((await calls(kc, 3)).handshakes <= 2);
    assert.equal((await calls(kc, 3)).handshakes, 0, 'the same settings reuse the pool');
    // Same CA, different bytes: a trailing newline changes the options, so a new pool.
    const cluster = kc.getCurrentCluster() as { caData?: string };
    Object.assign(cluster, { caData: Buffer.from(`${certs.caCert}\n`).toString('base64') });
    assert.ok((await calls(kc, 3)).handshakes >= 1, 'new settings, new connections');
    assert.equal((await calls(kc, 3)).handshakes, 0, 'then reused');
  });

  test('throws when the library no longer has the hook', () => {
    const kc = new KubeConfig();
    Object.defineProperty(kc, 'createDispatcher', { value: undefined });
    assert.throws(() => shareDispatchers(kc), /createDispatcher/);
  });
});
