// Which connectors an agent gets: its own list, then its office manager's, duplicates
// dropped (SPEC.md). Anything that cannot be attached is returned as a skip with a reason
// the user can act on; the rest is still attached.

import { ANNOTATION_SHARED_WITH } from '../config/names.ts';
import { objectKey, type Agent, type Connector } from '../model/objects.ts';
import { isUsableSecretRef, type SecretKeyRef } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';
import { mirroredSecretName, tokenEnvName, type Attachment } from './names.ts';

/**
 * Why something of an agent is not attached, one stable kind per cause (event reasons and
 * metrics key on it). Across namespaces, missing and not shared are one kind on purpose.
 */
export type SkipKind = 'invalid-ref' | 'missing' | 'not-visible' | 'disabled' | 'secret-ref' | 'collision' | 'over-limit' | 'manager';

/** A token variable as the platform's operator writes it: this name, from this Secret key. */
export interface OperatorToken {
  readonly name: string;
  readonly secretKeyRef: SecretKeyRef;
}

export interface Skip {
  readonly ref: string;
  readonly reason: string;
  readonly kind: SkipKind;
  /**
   * For a connector that exists but is refused: the bare name the operator keys it by in
   * its config, and the token variable it would have written for it. Never shown to the
   * user for a connector the agent may not see; used only to take the operator's copy out.
   */
  readonly refused?: { readonly name: string; readonly token: OperatorToken | undefined };
}

export interface Resolution {
  readonly attachments: Attachment[];
  readonly skipped: Skip[];
}

/** Upper bound on connectors attached to one agent: keeps the env and the patch bounded. */
export const MAX_CONNECTORS_PER_AGENT = 64;

/**
 * Why a `namespace/name` reference is not attached when the connector is missing or not
 * shared with the agent's namespace: one text for both, in every path (pod warnings, agent
 * validation, CLI, logs).
 */
export function notVisibleReason(connectorNamespace: string, agentNamespace: string): string {
  return `not found in namespace ${connectorNamespace}, or not shared with namespace ${agentNamespace} (its owner shares it with the ${ANNOTATION_SHARED_WITH} annotation)`;
}

/** Why a disabled connector is not injected, and how it comes back. */
export const DISABLED_REASON = 'it is disabled (spec.disabled: true); set spec.disabled: false on the connector to re-enable it';

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

export function isSharedWith(sharedWith: readonly string[], namespace: string): boolean {
  return sharedWith.includes('*') || sharedWith.includes(namespace);
}

/**
 * The connector a reference names, if an agent in `agentNamespace` may use it: same
 * namespace, or shared with that namespace. Across namespaces, "missing" and "not shared"
 * are one answer, so an agent's owner cannot probe which connectors exist elsewhere.
 */
export function visibleConnector(target: { namespace: string; name: string }, agentNamespace: string, view: ClusterView): Connector | undefined {
  const connector = view.connector(target.namespace, target.name);
  if (!connector || (target.namespace !== agentNamespace && !isSharedWith(connector.sharedWith, agentNamespace))) return undefined;
  return connector;
}

/** The references an agent uses, own first, then its manager's (one level, same namespace). */
export function connectorRefs(agent: Agent, view: ClusterView, skipped: Skip[]): { ref: string; namespace: string }[] {
  const refs = agent.connectors.map((ref) => ({ ref, namespace: agent.namespace }));
  if (agent.officeManager && agent.officeManager !== agent.name) {
    const manager = view.agent(agent.namespace, agent.officeManager);
    if (manager) {
      for (const ref of manager.connectors) refs.push({ ref, namespace: manager.namespace });
    } else {
      skipped.push({ ref: `spec.officeManager ${agent.officeManager}`, reason: `office manager agent ${agent.namespace}/${agent.officeManager} not found, its connectors are not inherited`, kind: 'manager' });
    }
  }
  return refs;
}

/**
 * The Secret key the operator references for a connector's token from the agent's
 * namespace: the connector's own, or its mirror `<secret>-from-<namespace>`.
 */
export function operatorTokenRef(connector: Connector, agentNamespace: string): SecretKeyRef | undefined {
  const secret = connector.authSecretKeyRef;
  if (!secret || !isUsableSecretRef(secret)) return undefined;
  return connector.namespace !== agentNamespace ? { name: mirroredSecretName(secret.name, connector.namespace), key: secret.key } : { name: secret.name, key: secret.key };
}

/** What the operator would have injected for a connector this service refuses. */
export function refusedConnector(connector: Connector, agentNamespace: string): NonNullable<Skip['refused']> {
  const ref = operatorTokenRef(connector, agentNamespace);
  return { name: connector.name, token: ref && { name: tokenEnvName(connector.name), secretKeyRef: ref } };
}

export function resolveConnectors(agent: Agent, view: ClusterView): Resolution {
  const attachments: Attachment[] = [];
  const skipped: Skip[] = [];
  const seen = new Set<string>();
  const byName = new Map<string, Attachment>();
  const byTokenEnv = new Map<string, Attachment>();

  for (const { ref, namespace } of connectorRefs(agent, view, skipped)) {
    const target = parseConnectorRef(ref, namespace);
    if (!target) {
      skipped.push({ ref, reason: 'not a valid reference: use "name" or "namespace/name"', kind: 'invalid-ref' });
      continue;
    }
    const qualified = objectKey(target.namespace, target.name);
    if (seen.has(qualified)) continue; // duplicates are dropped silently, as the platform does
    seen.add(qualified);
    const crossNamespace = target.namespace !== agent.namespace;
    const shownRef = crossNamespace ? qualified : target.name;

    const connector = visibleConnector(target, agent.namespace, view);
    if (!connector) {
      // The operator injects a cross-namespace connector without a sharing check: what it
      // wrote for one that exists is taken out again (the reason stays the one text).
      const unshared = crossNamespace ? view.connector(target.namespace, target.name) : undefined;
      skipped.push({
        ref: shownRef,
        reason: crossNamespace ? notVisibleReason(target.namespace, agent.namespace) : `connector not found in namespace ${target.namespace}`,
        kind: crossNamespace ? 'not-visible' : 'missing',
        ...(unshared ? { refused: refusedConnector(unshared, agent.namespace) } : {}),
      });
      continue;
    }
    if (connector.disabled) {
      skipped.push({ ref: shownRef, reason: DISABLED_REASON, kind: 'disabled', refused: refusedConnector(connector, agent.namespace) });
      continue;
    }
    const secret = connector.authSecretKeyRef;
    if (secret && !isUsableSecretRef(secret)) {
      skipped.push({ ref: shownRef, reason: 'spec.authSecretKeyRef needs both name and key', kind: 'secret-ref' });
      continue;
    }
    const tokenRef = operatorTokenRef(connector, agent.namespace);
    const attachment: Attachment = { ref: shownRef, connector, tokenRef };

    // The runtime keys servers and token vars by the bare name: a second connector with the
    // same name (or the same token var) would overwrite the first, so it is refused.
    const sameName = byName.get(connector.name);
    if (sameName) {
      skipped.push({ ref: shownRef, reason: `its name collides with ${sameName.ref} (both would be MCP server "${connector.name}"); the first is kept`, kind: 'collision', refused: refusedConnector(connector, agent.namespace) });
      continue;
    }
    const envName = tokenEnvName(connector.name);
    const sameEnv = tokenRef ? byTokenEnv.get(envName) : undefined;
    if (sameEnv) {
      skipped.push({ ref: shownRef, reason: `its token variable ${envName} collides with ${sameEnv.ref}; the first is kept`, kind: 'collision', refused: refusedConnector(connector, agent.namespace) });
      continue;
    }
    if (attachments.length >= MAX_CONNECTORS_PER_AGENT) {
      skipped.push({ ref: shownRef, reason: `more than ${MAX_CONNECTORS_PER_AGENT} connectors on one agent`, kind: 'over-limit', refused: refusedConnector(connector, agent.namespace) });
      continue;
    }
    byName.set(connector.name, attachment);
    if (tokenRef) byTokenEnv.set(envName, attachment);
    attachments.push(attachment);
  }
  return { attachments, skipped };
}
