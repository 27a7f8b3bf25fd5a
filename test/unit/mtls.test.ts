// Optional mutual TLS: with --client-ca-file, only clients holding a certificate from that CA
// (the API server's admission client certificate) get an answer.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateCertificates } from '../../src/certs/generate.ts';
import { podReview } from '../helpers/review.ts';
import { startTestServer } from '../helpers/server.ts';
import { writeTestCerts } from '../helpers/tls.ts';

const STATE = join(import.meta.dirname, '..', 'golden', 'solo', 'state.yaml');

function call(port: number, ca: string, client?: { cert: string; key: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(podReview({ metadata: { name: 'x' }, spec: { containers: [] } }, 'team-a'));
    const req = request({ host: '127.0.0.1', port, path: '/mutate/pods', method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json' }, ...(client ?? {}) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('mutual TLS: no client certificate or one from another CA is refused; the right one is served', async () => {
  const certs = await writeTestCerts();
  const apiServerClient = await generateCertificates({ dnsNames: ['kube-apiserver'], clientAuth: true });
  const stranger = await generateCertificates({ dnsNames: ['stranger'], clientAuth: true });
  const clientCaFile = join(certs.dir, 'client-ca.crt');
  writeFileSync(clientCaFile, apiServerClient.caCert);
  const { server } = await startTestServer(certs, STATE, { clientCaFile });
  try {
    await assert.rejects(call(server.port, certs.ca), 'no client certificate');
    await assert.rejects(call(server.port, certs.ca, { cert: stranger.cert, key: stranger.key }), 'certificate from another CA');
    assert.equal(await call(server.port, certs.ca, { cert: apiServerClient.cert, key: apiServerClient.key }), 200);
  } finally {
    await server.stop(0);
  }
});
