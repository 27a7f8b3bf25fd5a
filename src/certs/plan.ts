// What the certificate leader must do next, pure. The CA and serving certificate live in
// one Secret; the CA bundle the API server trusts lives in the webhook configurations.
// A CA rotation is two steps so no request ever fails: first the next CA joins the bundle
// (the old one stays), and only once the webhook configurations hold it is the serving
// certificate re-issued from it. Expired CAs are pruned from the bundle afterwards.

import { chainsTo, coversNames, dueForRenewal, parseCerts } from './bundle.ts';

/** The Secret's content. */
export interface CertMaterial {
  readonly caCert: string;
  readonly caKey: string;
  readonly cert: string;
  readonly key: string;
  /** Every CA the API server should trust now (PEM, several blocks). */
  readonly bundle: string;
  /** A staged next CA, during a rotation. */
  readonly nextCaCert?: string | undefined;
  readonly nextCaKey?: string | undefined;
}

export interface CertPolicy {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly caValidityMs: number;
  readonly certValidityMs: number;
  /** Renew when less than this fraction of a lifetime remains (e.g. 1/3). */
  readonly renewFraction: number;
}

export type Plan =
  | { readonly kind: 'create' }
  | { readonly kind: 'stage-ca' }
  | { readonly kind: 'promote-ca' }
  | { readonly kind: 'renew-cert' }
  | { readonly kind: 'prune-bundle' }
  | { readonly kind: 'patch-bundle' }
  | { readonly kind: 'keep' };

/**
 * `webhookBundles` are the caBundles the webhook configurations hold now (one per webhook).
 */
export function planCertificates(m: CertMaterial | undefined, now: Date, policy: CertPolicy, webhookBundles: readonly string[]): Plan {
  if (!m || !m.caCert || !m.caKey || !m.cert || !m.key || !chainsTo(m.cert, m.caCert)) return { kind: 'create' };
  const inAll = (caPem: string): boolean => webhookBundles.length > 0 && webhookBundles.every((b) => parseCerts(b).some((c) => c.fingerprint256 === parseCerts(caPem)[0]?.fingerprint256));
  if (m.nextCaCert && m.nextCaKey) {
    // Step 2 of a rotation: the API server trusts the next CA, so switch to it.
    if (inAll(m.nextCaCert)) return { kind: 'promote-ca' };
    return { kind: 'patch-bundle' };
  }
  if (dueForRenewal(m.caCert, now, policy.renewFraction)) return { kind: 'stage-ca' };
  if (dueForRenewal(m.cert, now, policy.renewFraction) || !coversNames(m.cert, policy.dnsNames, policy.ipAddresses)) return { kind: 'renew-cert' };
  const bundled = parseCerts(m.bundle);
  const caPrint = parseCerts(m.caCert)[0]?.fingerprint256;
  if (bundled.some((c) => new Date(c.validTo) <= now) || !bundled.some((c) => c.fingerprint256 === caPrint)) return { kind: 'prune-bundle' };
  if (!webhookBundles.every((b) => b === m.bundle)) return { kind: 'patch-bundle' };
  return { kind: 'keep' };
}
