// Serving certificate from files, reloaded without a restart. Kubernetes updates mounted
// Secrets by swapping a symlink, and cert-manager rewrites files in place, so the files are
// polled and re-read rather than trusting fs events; a pair is only swapped in when the key
// matches the certificate, so a half-written update never breaks the handshake.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SecureContextOptions } from 'node:tls';

export interface CertPair {
  readonly cert: string;
  readonly key: string;
  readonly notAfter: Date;
  readonly fingerprint: string;
}

export const TLS_OPTIONS = { minVersion: 'TLSv1.2' as const };

/** Reads and checks a certificate/key pair; throws with a one-line reason. */
export function readPair(certFile: string, keyFile: string): CertPair {
  return checkPair(readFileSync(certFile, 'utf8'), readFileSync(keyFile, 'utf8'), certFile, keyFile);
}

/** Checks that a PEM certificate and key belong together. */
export function checkPair(cert: string, key: string, certFile = 'certificate', keyFile = 'key'): CertPair {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new Error(`${certFile} is not a PEM certificate`);
  }
  let ok = false;
  try {
    ok = x509.checkPrivateKey(createPrivateKey(key));
  } catch {
    throw new Error(`${keyFile} is not a PEM private key`);
  }
  if (!ok) throw new Error(`${keyFile} does not match ${certFile}`);
  const notAfter = new Date(x509.validTo);
  const now = Date.now();
  // An expired or not-yet-valid certificate fails every handshake: keep the last good one.
  if (notAfter.getTime() <= now) throw new Error(`${certFile} expired at ${notAfter.toISOString()}`);
  if (new Date(x509.validFrom).getTime() > now + 60_000) throw new Error(`${certFile} is not valid before ${new Date(x509.validFrom).toISOString()}`);
  return { cert, key, notAfter, fingerprint: x509.fingerprint256 };
}

/** `clientCa`: when set, clients must present a certificate it signed (mutual TLS). */
export function secureContextOptions(pair: CertPair, clientCa?: string): SecureContextOptions {
  return { cert: pair.cert, key: pair.key, ...TLS_OPTIONS, ...(clientCa ? { ca: clientCa } : {}) };
}

export interface CertWatcherEvents {
  onLoad(pair: CertPair): void;
  onError(error: Error): void;
}

/** Polls `dir/tls.crt` and `dir/tls.key`; calls onLoad when a new valid pair appears. */
export class CertWatcher {
  private current: CertPair | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;
  readonly certFile: string;
  readonly keyFile: string;
  private readonly events: CertWatcherEvents;

  constructor(dir: string, events: CertWatcherEvents, certName = 'tls.crt', keyName = 'tls.key') {
    this.certFile = join(dir, certName);
    this.keyFile = join(dir, keyName);
    this.events = events;
  }

  get pair(): CertPair | undefined {
    return this.current;
  }

  /** Loads once; returns whether a usable pair is in force. */
  check(): boolean {
    try {
      const next = readPair(this.certFile, this.keyFile);
      this.lastError = undefined;
      if (!this.current || next.fingerprint !== this.current.fingerprint || next.key !== this.current.key) {
        this.current = next;
        this.events.onLoad(next);
      }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      // Report each distinct problem once; the last good pair stays in force.
      if (message !== this.lastError) {
        this.lastError = message;
        this.events.onError(new Error(message));
      }
    }
    return this.current !== undefined;
  }

  start(intervalMs: number): void {
    this.check();
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
