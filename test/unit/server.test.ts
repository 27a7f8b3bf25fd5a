// The HTTPS server over real TLS: bad input gets a 400 with a one-line reason, never a
// crash or a hang; health, readiness, metrics; certificate reload without a restart.

import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:tls';
import { generateCertificates } from '../../src/certs/generate.ts';
import type { RunningServer } from '../../src/server/serve.ts';
import { podReview } from '../helpers/review.ts';
import { startTestServer, type LogCapture, metricsText } from '../helpers/server.ts';
import { get, post, writeTestCerts, type TestCerts } from '../helpers/tls.ts';

const STATE = join(import.meta.dirname, '..', 'golden', 'solo', 'state.yaml');
const POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'team-a', labels: { 'komputer.ai/agent-name': 'researcher', 'komputer.ai/squad': 'false' } },
  spec: { containers: [{ name: 'agent', image: 'x' }] },
};

describe('admission server', () => {
  let certs: TestCerts;
  let server: RunningServer;
  let logs: LogCapture;

  before(async () => {
    certs = await writeTestCerts();
    ({ server, logs } = await startTestServer(certs, STATE, { maxBodyBytes: 64 * 1024, certReloadMs: 100 }));
  });
  after(async () => {
    await server.stop(0);
  });

  const bad: [string, string | Buffer, Record<string, string>, RegExp][] = [
    ['malformed JSON', '{"apiVersion": ', { 'content-type': 'application/json' }, /^body is not valid JSON$/],
    ['JSON that is not an object', '[1,2]', { 'content-type': 'application/json' }, /must be a JSON object/],
    ['wrong apiVersion', JSON.stringify({ ...podReview(POD, 'team-a'), apiVersion: 'admission.k8s.io/v1beta1' }), { 'content-type': 'application/json' }, /apiVersion must be admission.k8s.io\/v1/],
    ['wrong kind', JSON.stringify({ ...podReview(POD, 'team-a'), kind: 'Pod' }), { 'content-type': 'application/json' }, /kind must be AdmissionReview/],
    ['missing request', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), { 'content-type': 'application/json' }, /request is missing/],
    ['missing uid', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE' } }), { 'content-type': 'application/json' }, /request.uid/],
    ['object of the wrong type', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: 'nope' } }), { 'content-type': 'application/json' }, /request.object must be an object/],
    ['CREATE without object', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'team-a' } }), { 'content-type': 'application/json' }, /request.object is missing/],
    ['ephemeral containers without oldObject', JSON.stringify(podReview(POD, 'team-a', { operation: 'UPDATE', subResource: 'ephemeralcontainers' })), { 'content-type': 'application/json' }, /^request\.oldObject is missing for a pods\/ephemeralcontainers UPDATE$/],
    ['ephemeral containers without object', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'UPDATE', subResource: 'ephemeralcontainers', namespace: 'team-a', oldObject: POD } }), { 'content-type': 'application/json' }, /^request\.object is missing for a pods\/ephemeralcontainers UPDATE$/],
    ['ephemeral containers whose object is not a Pod', JSON.stringify(podReview({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: {} }, 'team-a', { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: POD })), { 'content-type': 'application/json' }, /^request\.object is not a Pod \(kind Pod with a spec\)$/],
    ['ephemeral containers whose oldObject has no spec', JSON.stringify(podReview(POD, 'team-a', { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: { kind: 'Pod', metadata: { name: 'p' } } })), { 'content-type': 'application/json' }, /^request\.oldObject is not a Pod/],
    ['subResource of the wrong type', JSON.stringify({ ...podReview(POD, 'team-a'), request: { ...(podReview(POD, 'team-a').request as object), subResource: 7 } }), { 'content-type': 'application/json' }, /^request\.subResource must be a string$/],
    ['wrong content type', JSON.stringify(podReview(POD, 'team-a')), { 'content-type': 'text/plain' }, /content type must be application\/json/],
    ['no content type', JSON.stringify(podReview(POD, 'team-a')), {}, /content type must be application\/json/],
    ['oversized body', JSON.stringify({ ...podReview(POD, 'team-a'), padding: 'x'.repeat(100 * 1024) }), { 'content-type': 'application/json' }, /exceeds the limit of 65536 bytes/],
  ];
  for (const [name, body, headers, reason] of bad) {
    test(`${name} -> 400 with a one-line reason`, async () => {
      const res = await post(server.port, '/mutate/pods', body, certs.ca, headers);
      assert.equal(res.status, 400);
      assert.match(res.text.trim(), reason);
      assert.equal(res.text.trim().split('\n').length, 1);
    });
  }

  test('an oversized body sent without content-length (chunked) is cut off at the cap', async () => {
    const { request } = await import('node:https');
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: '/mutate/pods', method: 'POST', ca: certs.ca, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, agent: false }, (r) => {
        let t = '';
        r.on('data', (c: Buffer) => (t += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, text: t }));
      });
      req.on('error', reject);
      for (let i = 0; i < 20; i++) req.write('x'.repeat(8 * 1024));
      req.end();
    });
    assert.equal(res.status, 400);
    assert.match(res.text, /exceeds the limit/);
  });

  test('a body in several pieces, with or without content-length, gets the same answer as in one; the answer is JSON with its length', async () => {
    const { request } = await import('node:https');
    const text = JSON.stringify(podReview(POD, 'team-a'));
    const send = (pieces: number, declared: boolean): Promise<{ status: number; headers: Record<string, unknown>; text: string }> =>
      new Promise((resolve, reject) => {
        const headers: Record<string, string | number> = { 'content-type': 'application/json', ...(declared ? { 'content-length': Buffer.byteLength(text) } : { 'transfer-encoding': 'chunked' }) };
        const req = request({ host: '127.0.0.1', port: server.port, path: '/mutate/pods', method: 'POST', ca: certs.ca, headers, agent: false }, (r) => {
          let t = '';
          r.on('data', (c: Buffer) => (t += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, text: t }));
        });
        req.on('error', reject);
        const size = Math.ceil(text.length / pieces);
        // Separate writes with a pause between them, so they arrive as separate chunks.
        const next = (i: number): void => {
          if (i * size >= text.length) return void req.end();
          req.write(text.slice(i * size, (i + 1) * size));
          setTimeout(() => next(i + 1), 5);
        };
        next(0);
      });
    const one = await send(1, true);
    assert.equal(one.status, 200);
    assert.equal(one.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(Number(one.headers['content-length']), Buffer.byteLength(one.text));
    assert.ok((JSON.parse(one.text) as { response: { patch?: string } }).response.patch, 'the pod is patched');
    for (const [pieces, declared] of [[3, true], [3, false]] as const) {
      const res = await send(pieces, declared);
      assert.equal(res.status, 200);
      assert.equal(res.text, one.text, `${pieces} pieces, ${declared ? 'content-length' : 'chunked'}`);
    }
  });

  test('a pod UPDATE (not the ephemeralcontainers subresource) is allowed untouched', async () => {
    for (const subResource of [undefined, 'status', 'resize']) {
      const res = await post(server.port, '/mutate/pods', JSON.stringify(podReview(POD, 'team-a', { operation: 'UPDATE', oldObject: POD, ...(subResource ? { subResource } : {}) })), certs.ca);
      assert.equal(res.status, 200);
      const out = JSON.parse(res.text) as { response: { allowed: boolean; patch?: string; warnings?: string[] } };
      assert.equal(out.response.allowed, true);
      assert.equal(out.response.patch, undefined);
      assert.equal(out.response.warnings, undefined);
    }
  });

  test('an unknown path is a 404, not a crash', async () => {
    const res = await post(server.port, '/nope', '{}', certs.ca);
    assert.equal(res.status, 404);
  });

  test('a pod sent to the validating path is allowed unchanged with a warning naming the mistake', async () => {
    const res = await post(server.port, '/validate', JSON.stringify(podReview(POD, 'team-a', { uid: 'x1' })), certs.ca);
    assert.equal(res.status, 200);
    const out = JSON.parse(res.text) as { response: { uid: string; allowed: boolean; patch?: string; warnings: string[] } };
    assert.equal(out.response.uid, 'x1');
    assert.equal(out.response.allowed, true);
    assert.equal(out.response.patch, undefined);
    assert.match(out.response.warnings[0]!, /does not handle core\/v1 Pod/);
  });

  test('UPDATE of a pod is allowed without a patch', async () => {
    const res = await post(server.port, '/mutate/pods', JSON.stringify(podReview(POD, 'team-a', { operation: 'UPDATE' })), certs.ca);
    const out = JSON.parse(res.text) as { response: { allowed: boolean; patch?: string } };
    assert.equal(out.response.allowed, true);
    assert.equal(out.response.patch, undefined);
  });

  test('the server still answers after all of that', async () => {
    const res = await post(server.port, '/mutate/pods', JSON.stringify(podReview(POD, 'team-a', { uid: 'ok' })), certs.ca);
    assert.equal(res.status, 200);
    assert.ok((JSON.parse(res.text) as { response: { patch?: string } }).response.patch);
  });

  test('healthz and readyz answer 200 in state-file mode', async () => {
    assert.equal((await get(server.port, '/healthz', certs.ca)).status, 200);
    assert.equal((await get(server.port, '/readyz', certs.ca)).status, 200);
  });

  test('TLS below 1.2 is refused', async () => {
    const err = await new Promise<Error | undefined>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: server.port, ca: certs.ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => {
        s.end();
        resolve(undefined);
      });
      s.on('error', resolve);
    });
    assert.ok(err, 'a TLS 1.1 handshake must fail');
  });

  test('metrics count requests by path and verdict, and bad requests, and cache sizes', async () => {
    const text = await metricsText(server.metricsPort);
    assert.match(text, /komputer_webhook_admission_requests_total\{path="\/mutate\/pods",verdict="patched"\} [1-9]/);
    assert.match(text, /komputer_webhook_bad_requests_total\{path="\/mutate\/pods"\} [1-9]/);
    assert.match(text, /komputer_webhook_admission_duration_seconds_bucket/);
    assert.match(text, /komputer_webhook_cache_objects\{kind="connector"\} 3/);
    assert.match(text, /komputer_webhook_certificate_not_after_seconds\{source="serving"\} \d+/);
  });

  test('every admission request is logged with uid, namespace, kind, operation, verdict and duration', () => {
    const line = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.uid === 'ok');
    assert.ok(line);
    assert.equal(line.namespace, 'team-a');
    assert.equal(line.kind, 'Pod');
    assert.equal(line.operation, 'CREATE');
    assert.equal(line.verdict, 'patched');
    assert.equal(typeof line.ms, 'number');
  });

  test('a new certificate is served without a restart; a broken one is refused and the old stays', async () => {
    const fresh = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    // A key that does not match the certificate: must be refused, the old pair kept.
    writeFileSync(join(certs.dir, 'tls.crt'), fresh.cert);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await get(server.port, '/healthz', certs.ca)).status, 200, 'old pair still served');
    writeFileSync(join(certs.dir, 'tls.key'), fresh.key);
    await new Promise((r) => setTimeout(r, 400));
    await assert.rejects(get(server.port, '/healthz', certs.ca), 'old CA no longer verifies');
    assert.equal((await get(server.port, '/healthz', fresh.caCert)).status, 200);
    copyFileSync(join(certs.dir, 'ca.crt'), join(certs.dir, 'old-ca.crt'));
    writeFileSync(join(certs.dir, 'ca.crt'), fresh.caCert);
    certs = { dir: certs.dir, ca: fresh.caCert };
  });
});
