// What `check` gathered from the cluster: raw objects as the API server returned them and
// the results of the probes. The checks (checks.ts) are pure functions of this snapshot, so
// every one of them is tested with a table of snapshots, without a cluster.

import type { JsonObject } from '../model/objects.ts';

/** A read: the object(s), `undefined` for a 404, or why it could not be read. */
export type Fetched<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export function fetched<T>(value: T): Fetched<T> {
  return { ok: true, value };
}

export function failedRead<T>(reason: string): Fetched<T> {
  return { ok: false, reason };
}

/** Names the check looks for: the server's defaults unless flags say otherwise. */
export interface CheckSettings {
  readonly serviceNamespace: string;
  readonly serviceName: string;
  /** Both webhook configurations carry this name (as the server's --webhook-config-name). */
  readonly webhookConfigName: string;
  readonly leaseName: string;
  /** The Deployment of an in-cluster install (default: the service name). */
  readonly deploymentName: string;
  /** The self-managed certificate Secret (read for the certificate's expiry only). */
  readonly certSecretName: string;
  /** `--endpoint host:port`: where to reach the service directly for a TLS handshake. */
  readonly endpoint?: string;
}

/** A TLS handshake with the service, without verification (judged in checks.ts). */
export interface TlsProbe {
  /** `host:port` connected to. */
  readonly endpoint: string;
  /** The name the API server verifies (the URL's host, or the Service's DNS name). */
  readonly serverName: string;
  /** Served chain, leaf first (PEM), when the handshake completed. */
  readonly chain?: readonly string[];
  /** Why there is no chain (connection refused, timeout, ...). */
  readonly error?: string;
}

/** GET /readyz of the service: directly (URL, --endpoint) or through the API server's service proxy. */
export interface HealthProbe {
  readonly via: string;
  readonly status?: number;
  readonly body?: string;
  readonly error?: string;
}

/** A server-side dry-run create sent so that the API server must call a webhook. */
export interface DryRunProbe {
  readonly namespace: string;
  /** HTTP status of the API server's answer; undefined when no answer came. */
  readonly status?: number;
  /** The API server's `Status.message` on failure. */
  readonly message?: string;
  /** Admission warnings of the answer (`Warning` headers). */
  readonly warnings: readonly string[];
  readonly error?: string;
}

export interface Snapshot {
  /** The API server's clock (its Date header) when known, else this machine's. */
  readonly now: Date;
  readonly settings: CheckSettings;
  readonly mutating: Fetched<JsonObject | undefined>;
  readonly validating: Fetched<JsonObject | undefined>;
  readonly namespaces: Fetched<readonly JsonObject[]>;
  readonly connectors: Fetched<readonly JsonObject[]>;
  readonly agents: Fetched<readonly JsonObject[]>;
  /** Agent pods (label komputer.ai/squad present), every namespace. */
  readonly pods: Fetched<readonly JsonObject[]>;
  readonly policyConfigMap: Fetched<JsonObject | undefined>;
  readonly lease: Fetched<JsonObject | undefined>;
  /** Read only when a webhook calls a Service (in-cluster install). */
  readonly deployment?: Fetched<JsonObject | undefined>;
  /** The certificate Secret's tls.crt (PEM), read only when no handshake showed the certificate. */
  readonly secretCertificate?: Fetched<string | undefined>;
  /** One per distinct endpoint the webhooks call (or --endpoint). */
  readonly tls: readonly TlsProbe[];
  readonly health?: HealthProbe;
  /** Dry-run agent pod (the mutating webhook); undefined when no namespace could take one. */
  readonly podProbe?: DryRunProbe;
  /** Dry-run connector (the validating webhook). */
  readonly connectorProbe?: DryRunProbe;
}
