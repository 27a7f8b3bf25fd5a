// Generates a private CA and a serving certificate signed by it, as PEM strings.
// Pure apart from key generation: nothing is read from or written to disk here.
// Used by `make certs` (src/certs/write-dev.ts), the e2e harness and the service.

import { isIP } from 'node:net';
import { X509Certificate } from 'node:crypto';

export interface CertificateOptions {
  /** DNS names for the serving certificate's subjectAltName (the first is also its CN). */
  readonly dnsNames: readonly string[];
  /** IP addresses for the serving certificate's subjectAltName (e.g. `127.0.0.1`). */
  readonly ipAddresses?: readonly string[];
  /** Validity of the serving certificate in days (default 365). */
  readonly validityDays?: number;
  /** Validity of the CA in days (default 3650). */
  readonly caValidityDays?: number;
  /** Common name of the CA (default `komputer-connector-webhook-ca`). */
  readonly caCommonName?: string;
  /** Reuse an existing CA instead of creating one (PEM). */
  readonly ca?: { readonly cert: string; readonly key: string };
  /** Clock, for tests. */
  readonly now?: Date;
  /** How far notBefore is set in the past (default 5 minutes), for clock skew; validity counts from now. */
  readonly backdateMs?: number;
  /** Validity in milliseconds; overrides validityDays (short-lived certificates for rotation tests). */
  readonly validityMs?: number;
  /** CA validity in milliseconds; overrides caValidityDays. */
  readonly caValidityMs?: number;
  /** Also allow the certificate for TLS client authentication (mutual TLS tests). */
  readonly clientAuth?: boolean;
}

export interface GeneratedCertificates {
  /** CA certificate (PEM): the caBundle of the webhook configurations. */
  readonly caCert: string;
  /** CA private key (PEM, PKCS#8). */
  readonly caKey: string;
  /** Serving certificate (PEM), signed by the CA. */
  readonly cert: string;
  /** Serving private key (PEM, PKCS#8). */
  readonly key: string;
  /** When the serving certificate expires. */
  readonly notAfter: Date;
}

const DAY_MS = 24 * 60 * 60 * 1000;
// Backdate a little: clocks of the API server and this process may disagree slightly.
const BACKDATE_MS = 5 * 60 * 1000;

export async function generateCertificates(options: CertificateOptions): Promise<GeneratedCertificates> {
  const dnsNames = [...options.dnsNames];
  const ipAddresses = [...(options.ipAddresses ?? [])];
  for (const ip of ipAddresses) {
    if (isIP(ip) === 0) throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
  }
  for (const name of dnsNames) {
    if (name === '' || isIP(name) !== 0) {
      throw new Error(`not a DNS name: ${JSON.stringify(name)} (put IP addresses in ipAddresses)`);
    }
  }
  if (dnsNames.length === 0 && ipAddresses.length === 0) {
    throw new Error('a serving certificate needs at least one DNS name or IP address');
  }
  const now = options.now ?? new Date();
  const notBefore = new Date(now.getTime() - (options.backdateMs ?? BACKDATE_MS));

  // Loaded on first use: a server given its certificates never generates one, and the
  // library stays out of its resident memory.
  const { generate } = await import('selfsigned');
  let ca = options.ca;
  if (ca === undefined) {
    const created = await generate([{ name: 'commonName', value: options.caCommonName ?? 'komputer-connector-webhook-ca' }], {
      keyType: 'rsa',
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate: notBefore,
      notAfterDate: new Date(now.getTime() + (options.caValidityMs ?? (options.caValidityDays ?? 3650) * DAY_MS)),
      extensions: [
        { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ],
    });
    ca = { cert: created.cert, key: created.private };
  }

  const commonName = dnsNames[0] ?? ipAddresses[0] ?? 'komputer-connector-webhook';
  const serving = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: new Date(now.getTime() + (options.validityMs ?? (options.validityDays ?? 365) * DAY_MS)),
    ca: { cert: ca.cert, key: ca.key },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, ...(options.clientAuth ? { clientAuth: true } : {}) },
      {
        name: 'subjectAltName',
        altNames: [
          ...dnsNames.map((value) => ({ type: 2 as const, value })),
          ...ipAddresses.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
  });

  const parsed = new X509Certificate(serving.cert);
  return {
    caCert: ca.cert,
    caKey: ca.key,
    cert: serving.cert,
    key: serving.private,
    notAfter: new Date(parsed.validTo),
  };
}

/** DNS names a Service `name` in `namespace` is reached by from inside the cluster. */
export function serviceDnsNames(name: string, namespace: string): string[] {
  return [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`];
}
