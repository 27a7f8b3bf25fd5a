// What a connector reference in `spec.connectors` is, and which connectors an agent may see
// through one. Injection, agent validation, attachment counts, secret mirroring and `check`
// all decide by these rules, so they live here, apart from any one of them.

import { ANNOTATION_SHARED_WITH } from '../config/names.ts';
import { objectKey, type Agent, type Connector } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';

/** A reference as written in `spec.connectors`, split and checked. */
export function parseConnectorRef(ref: string, agentNamespace: string): { namespace: string; name: string } | undefined {
  const parts = ref.split('/');
  if (parts.length === 1 && parts[0]) return { namespace: agentNamespace, name: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { namespace: parts[0], name: parts[1] };
  return undefined;
}

/** The connector keys (`namespace/name`) an agent's own list points at: valid references, deduplicated. */
export function referencedKeys(agent: Agent): string[] {
  const keys = new Set<string>();
  for (const ref of agent.connectors) {
    const t = parseConnectorRef(ref, agent.namespace);
    if (t) keys.add(objectKey(t.namespace, t.name));
  }
  return [...keys];
}

/** Whether a connector's `shared-with` list lets agents of `namespace` use it (`*`: everyone). */
export function isSharedWith(sharedWith: readonly string[], namespace: string): boolean {
  return sharedWith.includes('*') || sharedWith.includes(namespace);
}

/**
 * The connector a reference names, if an agent in `agentNamespace` may use it: same
 * namespace, or shared with that namespace. Across namespaces, "missing" and "not shared"
 * are one answer, so an agent's owner cannot probe which connectors exist elsewhere.
 */
export function visibleConnector(target: { namespace: string; name: string }, agentNamespace: string, view: Pick<ClusterView, 'connector'>): Connector | undefined {
  const connector = view.connector(target.namespace, target.name);
  if (!connector || (target.namespace !== agentNamespace && !isSharedWith(connector.sharedWith, agentNamespace))) return undefined;
  return connector;
}

/**
 * Why a `namespace/name` reference is not attached when the connector is missing or not
 * shared with the agent's namespace: one text for both, in every path (pod warnings, agent
 * validation, CLI, logs).
 */
export function notVisibleReason(connectorNamespace: string, agentNamespace: string): string {
  return `not found in namespace ${connectorNamespace}, or not shared with namespace ${agentNamespace} (its owner shares it with the ${ANNOTATION_SHARED_WITH} annotation)`;
}
