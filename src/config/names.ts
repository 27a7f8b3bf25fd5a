// The one place that knows the platform's label and annotation names and API coordinates.
// SPEC.md fixes the komputer.ai/ names the platform's operator writes; the rest are ours.

export const GROUP = 'komputer.komputer.ai';
export const VERSION = 'v1alpha1';
export const CONNECTOR_PLURAL = 'komputerconnectors';
export const AGENT_PLURAL = 'komputeragents';
export const CONNECTOR_KIND = 'KomputerConnector';
export const AGENT_KIND = 'KomputerAgent';

/** Pod labels set by the platform's operator. */
export const LABEL_SQUAD = 'komputer.ai/squad';
export const LABEL_AGENT_NAME = 'komputer.ai/agent-name';
export const LABEL_SQUAD_NAME = 'komputer.ai/squad-name';
export const LABEL_MEMBER_PREFIX = 'komputer.ai/member-';

/** Namespace label a cluster admin sets to enable injection. */
export const LABEL_INJECTION = 'komputer.ai/connector-injection';
export const INJECTION_ENABLED = 'enabled';

/** Pod annotation that opts a single pod out (value "false"). */
export const ANNOTATION_INJECT = 'komputer.ai/inject-connectors';
/** Pod annotation recording what was injected (comma-separated connector references). */
export const ANNOTATION_INJECTED = 'komputer.ai/injected-connectors';
/** Connector annotation listing namespaces (comma-separated, or "*") it is shared with. */
export const ANNOTATION_SHARED_WITH = 'komputer.ai/shared-with-namespaces';

/** Labels the platform puts on a Secret mirrored into an agent's namespace. */
export const LABEL_SYNCED_FROM_NAMESPACE = 'komputer.ai/synced-from-namespace';
export const LABEL_SYNCED_FOR_CONNECTOR = 'komputer.ai/synced-for-connector';

/** Env var names the agent runtime reads. */
export const ENV_MCP_SERVERS = 'KOMPUTER_MCP_SERVERS';

/** The admin's policy ConfigMap, in the service's own namespace (key: see policy/incompatible.ts). */
export const POLICY_CONFIGMAP_NAME = 'komputer-connector-webhook-policy';

/**
 * Namespace annotation: "true" lets the leader restart (evict) running agent pods that still
 * hold a connector their agent should no longer get; "false" forbids it whatever the cluster
 * default (`--revocation`).
 */
export const ANNOTATION_REVOKE = 'komputer.ai/revoke-stale-pods';
