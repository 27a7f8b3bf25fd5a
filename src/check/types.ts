// `komputer-webhook check`: what a check says. One result per line of output; a check that
// finds several problems (connectors, agents, pods) yields one result per object, and a
// single ok result when it finds none.

/**
 * `ok`: as it should be. `skipped`: does not apply to this install (e.g. no Deployment when the
 * webhook is reached by URL) or could not be judged, and says why. `warning`: needs attention
 * but nothing is broken for users yet (exit 0). `error`: something is broken (exit 1).
 */
export type CheckStatus = 'ok' | 'skipped' | 'warning' | 'error';

export interface CheckResult {
  /** Stable id (see CHECKS), for scripts and docs. */
  readonly id: CheckId;
  readonly status: CheckStatus;
  /** One line: what was found. */
  readonly message: string;
  /** What to do about it; set on every warning and error. */
  readonly remedy?: string;
  /** The object the result is about (`namespace/name`), when it is about one. */
  readonly subject?: string;
}

/** Every check, in output order, with what it looks at (the README's table is built from this). */
export const CHECKS = [
  { id: 'webhook-config/mutating', group: 'service', what: 'the MutatingWebhookConfiguration exists, has the pod webhook, calls this service (or a URL) on /mutate/pods, for pod CREATE and pods/ephemeralcontainers UPDATE' },
  { id: 'webhook-config/validating', group: 'service', what: 'the ValidatingWebhookConfiguration exists, has the connector webhook, calls this service (or a URL) on /validate, for connector and agent CREATE/UPDATE' },
  { id: 'webhook/tls', group: 'service', what: 'a TLS handshake with the webhook URL (or --endpoint): the served certificate chains to every caBundle and covers the host' },
  { id: 'webhook/admission', group: 'service', what: 'a server-side dry-run agent pod: the API server calls the pod webhook and trusts it (its TLS error otherwise)' },
  { id: 'webhook/validation', group: 'service', what: 'a server-side dry-run connector: the API server calls the validating webhook' },
  { id: 'service/health', group: 'service', what: "the service's /readyz (directly for a URL, through the API server's service proxy for a Service)" },
  { id: 'certificate/expiry', group: 'service', what: 'the serving certificate is valid and not close to expiry' },
  { id: 'service/replicas', group: 'service', what: 'the Deployment has ready replicas (in-cluster installs only)' },
  { id: 'lease/leader', group: 'service', what: 'the Lease is held by a replica that renews it (attachment controller, certificates)' },
  { id: 'policy/configmap', group: 'service', what: 'the policy ConfigMap parses, with the same parser the server uses' },
  { id: 'namespaces/enabled', group: 'namespaces', what: 'which namespaces are enabled' },
  { id: 'namespaces/reachable', group: 'namespaces', what: 'every enabled namespace is selected by both webhooks and is not terminating' },
  { id: 'connectors/policy', group: 'connectors', what: 'connectors agents in enabled namespaces reference that a policy entry matches: deny (refused, not injected) is an error, warn and audit are warnings' },
  { id: 'connectors/counts', group: 'connectors', what: 'status.attachedAgents/agentNames equal what the controller computes' },
  { id: 'agents/references', group: 'agents', what: 'agents in enabled namespaces whose connectors do not resolve (missing, not shared, disabled, collisions, ...)' },
  { id: 'pods/stale', group: 'pods', what: 'running agent pods whose injected connectors differ from what their agent would get now' },
] as const;

export type CheckId = (typeof CHECKS)[number]['id'];

/** The exit code for a set of results: 1 when any is an error, else 0 (warnings alone exit 0). */
export function exitCodeOf(results: readonly CheckResult[]): 0 | 1 {
  return results.some((r) => r.status === 'error') ? 1 : 0;
}

export function summaryOf(results: readonly CheckResult[]): Record<CheckStatus, number> {
  const out: Record<CheckStatus, number> = { ok: 0, skipped: 0, warning: 0, error: 0 };
  for (const r of results) out[r.status]++;
  return out;
}
