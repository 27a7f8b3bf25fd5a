// PEM bundles and chains, pure: which CAs a bundle holds, whether a certificate chains to
// one of them, and when a certificate is due for renewal.

import { X509Certificate } from 'node:crypto';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function splitPem(bundle: string): string[] {
  return bundle.match(PEM_BLOCK)?.map((b) => b + '\n') ?? [];
}

export function parseCerts(bundle: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const pem of splitPem(bundle)) {
    try {
      out.push(new X509Certificate(pem));
    } catch {
      // an unparsable block trusts nothing; the others still count
    }
  }
  return out;
}

/** Does `certPem` verify against one of the CAs in `bundlePem`? */
export function chainsTo(certPem: string, bundlePem: string): boolean {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return false;
  }
  return parseCerts(bundlePem).some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
}

/** Joins CA certificates into one bundle, dropping duplicates and expired ones, newest first. */
export function mergeBundle(pems: readonly string[], now: Date): string {
  const seen = new Set<string>();
  const keep: X509Certificate[] = [];
  for (const pem of pems) {
    for (const c of parseCerts(pem)) {
      if (seen.has(c.fingerprint256) || new Date(c.validTo) <= now) continue;
      seen.add(c.fingerprint256);
      keep.push(c);
    }
  }
  keep.sort((a, b) => new Date(b.validFrom).getTime() - new Date(a.validFrom).getTime());
  return keep.map((c) => c.toString()).join('');
}

/** True when less than `fraction` of the certificate's lifetime remains (or it does not parse). */
export function dueForRenewal(pem: string, now: Date, fraction: number): boolean {
  try {
    const c = new X509Certificate(pem);
    const from = new Date(c.validFrom).getTime();
    const to = new Date(c.validTo).getTime();
    return to - now.getTime() < (to - from) * fraction;
  } catch {
    return true;
  }
}

/** Does the certificate cover every wanted DNS name and IP address? */
export function coversNames(pem: string, dnsNames: readonly string[], ipAddresses: readonly string[]): boolean {
  try {
    const c = new X509Certificate(pem);
    return dnsNames.every((n) => c.checkHost(n) !== undefined) && ipAddresses.every((ip) => c.checkIP(ip) !== undefined);
  } catch {
    return false;
  }
}
