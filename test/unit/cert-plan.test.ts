// The certificate leader's decisions (pure) and the pair checks: every step of a renewal
// and a two-step CA rotation, and refusal of unusable pairs.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chainsTo, mergeBundle } from '../../src/certs/bundle.ts';
import { generateCertificates } from '../../src/certs/generate.ts';
import { planCertificates, type CertMaterial, type CertPolicy } from '../../src/certs/plan.ts';
import { checkPair } from '../../src/server/tls.ts';

const MIN = 60_000;
const policy: CertPolicy = { dnsNames: ['svc.ns.svc'], ipAddresses: ['127.0.0.1'], certValidityMs: 90 * MIN, caValidityMs: 900 * MIN, renewFraction: 1 / 3 };
const T0 = new Date('2026-11-25T00:00:00Z');

async function material(opts: { certMin?: number; caMin?: number; names?: string[]; now?: Date } = {}): Promise<CertMaterial> {
  const g = await generateCertificates({ dnsNames: opts.names ?? ['svc.ns.svc'], ipAddresses: ['127.0.0.1'], validityMs: (opts.certMin ?? 90) * MIN, caValidityMs: (opts.caMin ?? 900) * MIN, backdateMs: 0, now: opts.now ?? T0 });
  return { caCert: g.caCert, caKey: g.caKey, cert: g.cert, key: g.key, bundle: g.caCert };
}

const at = (min: number): Date => new Date(T0.getTime() + min * MIN);

describe('planCertificates', () => {
  test('nothing stored: create', () => {
    assert.equal(planCertificates(undefined, T0, policy, []).kind, 'create');
  });
  test('fresh material whose bundle the webhooks hold: keep', async () => {
    const m = await material();
    assert.equal(planCertificates(m, at(1), policy, [m.bundle, m.bundle]).kind, 'keep');
  });
  test('webhooks without our bundle: patch-bundle', async () => {
    const m = await material();
    assert.equal(planCertificates(m, at(1), policy, ['', m.bundle]).kind, 'patch-bundle');
  });
  test('serving certificate with less than a third left: renew-cert', async () => {
    const m = await material();
    assert.equal(planCertificates(m, at(59), policy, [m.bundle]).kind, 'keep');
    assert.equal(planCertificates(m, at(61), policy, [m.bundle]).kind, 'renew-cert');
  });
  test('serving certificate without a wanted name: renew-cert', async () => {
    const m = await material({ names: ['old.ns.svc'] });
    assert.equal(planCertificates(m, at(1), policy, [m.bundle]).kind, 'renew-cert');
  });
  test('CA rotation: stage (bundle gets both), wait for the webhooks, then promote', async () => {
    const m = await material();
    assert.equal(planCertificates(m, at(601), policy, [m.bundle]).kind, 'stage-ca');
    const next = await generateCertificates({ dnsNames: ['x'], caValidityMs: 900 * MIN, backdateMs: 0, now: at(601) });
    const staged: CertMaterial = { ...m, nextCaCert: next.caCert, nextCaKey: next.caKey, bundle: mergeBundle([m.bundle, next.caCert], at(601)) };
    assert.ok(chainsTo(m.cert, staged.bundle), 'the old certificate still verifies against the staged bundle');
    assert.equal(planCertificates(staged, at(602), policy, [m.bundle]).kind, 'patch-bundle', 'webhooks do not trust the next CA yet');
    assert.equal(planCertificates(staged, at(602), policy, [staged.bundle, staged.bundle]).kind, 'promote-ca');
  });
  test('an expired CA left in the bundle is pruned', async () => {
    const old = await material({ caMin: 10, certMin: 5 });
    const m = await material({ now: at(20) });
    const withOld: CertMaterial = { ...m, bundle: m.bundle + old.caCert };
    assert.equal(planCertificates(withOld, at(21), policy, [withOld.bundle]).kind, 'prune-bundle');
    assert.equal(mergeBundle([withOld.bundle], at(21)), mergeBundle([m.bundle], at(21)));
  });
  test('a certificate that does not chain to the stored CA: create', async () => {
    const a = await material();
    const b = await material();
    assert.equal(planCertificates({ ...a, cert: b.cert, key: b.key }, at(1), policy, [a.bundle]).kind, 'create');
  });
});

describe('checkPair', () => {
  test('an expired certificate is refused', async () => {
    const g = await generateCertificates({ dnsNames: ['x'], validityMs: MIN, backdateMs: 0, now: new Date(Date.now() - 10 * MIN) });
    assert.throws(() => checkPair(g.cert, g.key), /expired at/);
  });
  test('a key from another pair is refused', async () => {
    const a = await generateCertificates({ dnsNames: ['x'] });
    const b = await generateCertificates({ dnsNames: ['x'] });
    assert.throws(() => checkPair(a.cert, b.key), /does not match/);
  });
  test('validity counts from now, backdating only moves notBefore', async () => {
    const g = await generateCertificates({ dnsNames: ['x'], validityMs: 40_000, backdateMs: 60_000 });
    const p = checkPair(g.cert, g.key);
    assert.ok(p.notAfter.getTime() > Date.now() + 30_000);
  });
});
