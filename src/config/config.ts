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
  /**
   * Server-side timeout (timeoutSeconds) of every cache watch; the API server then ends it and
   * a new one resumes from the last version. Unset: $KOMPUTER_WATCH_TIMEOUT_SECONDS, else 300
   * (see watchTimeoutSeconds()).
   */
  readonly watchTimeoutSeconds?: number;
  /** `files`: read tls.crt/tls.key from certDir (cert-manager, make certs). `self`: keep a CA and certificate in a Secret. */
  readonly certMode: 'files' | 'self';
  readonly certSecretName: string;
  /** Names of this service's own Mutating/ValidatingWebhookConfigurations (caBundle). */
  readonly webhookConfigName: string;
  /** Serving certificate names in self mode (default: the Service DNS names). */
  readonly certDnsNames: readonly string[];
  readonly certIpAddresses: readonly string[];
  readonly certValidityMs: number;
  readonly caValidityMs: number;
  /** Readiness requires the served certificate to chain to the webhook configurations' caBundle. */
  readonly checkCaBundle: boolean;
  /** Mutual TLS: verify client certificates (the API server's) against this CA file. */
  readonly clientCaFile: string | undefined;
  /** Opt-in: keep `<secret>-from-<ns>` mirrors of shared connectors' Secrets (extra RBAC). */
  readonly mirrorSharedSecrets: boolean;
  /**
   * Record Events on KomputerAgents when their pods are admitted (API server only; never
   * with a state file). Unset: $KOMPUTER_EVENTS, else on (see eventsEnabled()).
   */
  readonly events?: boolean;
  /**
   * Restart (evict) running agent pods that hold a connector their agent should no longer get:
   * `off` (no pod watch), `opt-in` (namespaces annotated komputer.ai/revoke-stale-pods: "true"),
   * `all` (every namespace unless annotated "false"). Unset: off.
   */
  readonly revocation?: RevocationMode;
  /** Agent pods restarting at once, and evictions one pass may start. */
  readonly revocationMaxConcurrent?: number;
  readonly revocationMaxPerPass?: number;
}

/** `--revocation`: off (no pod watch, annotation ignored), opt-in (annotated namespaces), all (unless annotated "false"). */
export const REVOCATION_MODES = ['off', 'opt-in', 'all'] as const;
export type RevocationMode = (typeof REVOCATION_MODES)[number];
export const REVOCATION_DEFAULTS = { maxConcurrent: 1, maxPerPass: 1, debounceMs: 500, resyncMs: 60_000 } as const;

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
  controllerMaxWaitMs: 30_000,
  resyncMs: 600_000,
  watchTimeoutSeconds: 300,
  certMode: 'self',
  certSecretName: 'komputer-connector-webhook-tls',
  webhookConfigName: 'komputer-connector-webhook',
  serviceName: 'komputer-connector-webhook',
  certValidityMs: 90 * 24 * 3600_000,
  caValidityMs: 5 * 365 * 24 * 3600_000,
  checkCaBundle: true,
} as const;

export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) throw new Error(`${flag} must be a duration like 90d, 12h, 30m, 45s or 500ms, got ${JSON.stringify(value)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

export function parsePort(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag} must be a port number (0-65535), got ${JSON.stringify(value)}`);
  return n;
}

/** Environment variable for ServeConfig.watchTimeoutSeconds (positive integer seconds). */
export const WATCH_TIMEOUT_ENV = 'KOMPUTER_WATCH_TIMEOUT_SECONDS';

/**
 * The cache watches' server-side timeout: the config's, else $KOMPUTER_WATCH_TIMEOUT_SECONDS,
 * else 300 s. A watch ending at this timeout is routine (restart metric reason `timeout`).
 */
export function watchTimeoutSeconds(config: Pick<ServeConfig, 'watchTimeoutSeconds'>, env: NodeJS.ProcessEnv = process.env): number {
  if (config.watchTimeoutSeconds !== undefined) return config.watchTimeoutSeconds;
  const raw = env[WATCH_TIMEOUT_ENV]?.trim();
  return raw ? parsePositiveInt(raw, WATCH_TIMEOUT_ENV) : SERVE_DEFAULTS.watchTimeoutSeconds;
}

/** Environment variable for ServeConfig.events: `false` (or 0, off, no) turns Events off. */
export const EVENTS_ENV = 'KOMPUTER_EVENTS';

/** Whether Events on KomputerAgents are recorded: the config's, else $KOMPUTER_EVENTS, else true. */
export function eventsEnabled(config: Pick<ServeConfig, 'events'>, env: NodeJS.ProcessEnv = process.env): boolean {
  if (config.events !== undefined) return config.events;
  const raw = env[EVENTS_ENV]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return true;
  if (['true', '1', 'on', 'yes'].includes(raw)) return true;
  if (['false', '0', 'off', 'no'].includes(raw)) return false;
  throw new Error(`${EVENTS_ENV} must be true or false, got ${JSON.stringify(env[EVENTS_ENV])}`);
}

export function parsePositiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}
