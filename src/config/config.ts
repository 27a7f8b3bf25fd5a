// Flags and environment into one typed config, with the defaults documented in the README.

export interface ServeConfig {
  readonly certDir: string;
  readonly host: string;
  readonly port: number;
  readonly metricsHost: string;
  readonly metricsPort: number;
  /** Empty: in-cluster config, or $KUBECONFIG / ~/.kube/config. */
  readonly kubeconfig: string | undefined;
  /** Serve from a static state file instead of the API server. */
  readonly stateFile: string | undefined;
  readonly serviceNamespace: string;
  readonly maxBodyBytes: number;
  readonly certReloadMs: number;
  /** On SIGTERM: keep serving (readiness false, Connection: close) this long, then stop. */
  readonly drainMs: number;
  /** Run the attachment controller (on the elected leader only). */
  readonly controller: boolean;
  readonly leaseName: string;
  /** This replica's identity in the lease (the pod name in a cluster). */
  readonly identity: string;
  readonly controllerQuietMs: number;
  readonly controllerMaxWaitMs: number;
  readonly resyncMs: number;
}

export const SERVE_DEFAULTS = {
  certDir: '/certs',
  host: '0.0.0.0',
  port: 8443,
  metricsHost: '0.0.0.0',
  metricsPort: 9090,
  serviceNamespace: 'komputer-webhook-system',
  maxBodyBytes: 4 * 1024 * 1024,
  certReloadMs: 5000,
  drainMs: 5000,
  controller: true,
  leaseName: 'komputer-connector-webhook',
  controllerQuietMs: 1000,
  controllerMaxWaitMs: 10_000,
  resyncMs: 600_000,
} as const;

export function parsePort(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag} must be a port number (0-65535), got ${JSON.stringify(value)}`);
  return n;
}

export function parsePositiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}
