import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import { generateCertificates, serviceDnsNames } from '../../src/certs/generate.ts';

test('a serving certificate signed by a fresh CA, with DNS and IP SANs', async () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const c = await generateCertificates({ dnsNames: ['localhost', 'svc.ns.svc'], ipAddresses: ['127.0.0.1', '::1'], validityDays: 30, now });
  const ca = new X509Certificate(c.caCert);
  const leaf = new X509Certificate(c.cert);
  assert.equal(ca.ca, true);
  assert.equal(leaf.ca, false);
  assert.ok(leaf.verify(ca.publicKey), 'signed by the CA');
  assert.ok(leaf.checkIssued(ca));
  assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(leaf.checkHost('svc.ns.svc'), 'svc.ns.svc');
  assert.match(leaf.subjectAltName ?? '', /IP Address:0:0:0:0:0:0:0:1/);
  assert.equal(leaf.checkHost('other.example'), undefined);
  assert.ok(leaf.publicKey.equals(createPublicKey(c.key)), 'key matches the certificate');
  assert.equal(c.notAfter.getTime(), new Date(leaf.validTo).getTime());
  const days = (c.notAfter.getTime() - now.getTime()) / 86_400_000;
  assert.ok(days > 29.9 && days <= 30, `about 30 days, got ${days}`);
  assert.ok(new Date(leaf.validFrom) <= now, 'valid from (slightly before) now');
});

test('reuses a given CA', async () => {
  const first = await generateCertificates({ dnsNames: ['a'] });
  const second = await generateCertificates({ dnsNames: ['b'], ca: { cert: first.caCert, key: first.caKey } });
  assert.equal(second.caCert, first.caCert);
  assert.ok(new X509Certificate(second.cert).checkIssued(new X509Certificate(first.caCert)));
});

test('rejects input that would make a useless certificate', async () => {
  await assert.rejects(generateCertificates({ dnsNames: [] }), /at least one/);
  await assert.rejects(generateCertificates({ dnsNames: ['127.0.0.1'] }), /ipAddresses/);
  await assert.rejects(generateCertificates({ dnsNames: ['x'], ipAddresses: ['localhost'] }), /not an IP/);
});

test('service DNS names', () => {
  assert.deepEqual(serviceDnsNames('hook', 'sys'), ['hook', 'hook.sys', 'hook.sys.svc', 'hook.sys.svc.cluster.local']);
});
