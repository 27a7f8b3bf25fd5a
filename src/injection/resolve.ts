// Which connectors an agent gets: its own list, then its office manager's, duplicates
// dropped (SPEC.md). Anything that cannot be attached is returned as a skip with a reason
// the user can act on; the rest is still attached.

import { objectKey, type Agent, type Connector } from '../model/objects.ts';
import { isUsableSecretRef, type SecretKeyRef } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';
import { notVisibleReason, parseConnectorRef, visibleConnector } from '../references/references.ts';
import { connectorViolation, violationText, type Violation } from '../policy/verdict.ts';
import type { FindingKind, SkipKind } from './findings.ts';
import { mirroredSecretName, tokenEnvName, type Attachment } from './names.ts';

export type { SkipKind } from './findings.ts';

/** A token variable as the platform's operator writes it: this name, from this Secret key. */
export interface OperatorToken {
  readonly name: string;
  readonly secretKeyRef: SecretKeyRef;
}

/** What the operator would have written for a connector this service refuses. */
export interface Refused {
  readonly name: string;
  readonly token: OperatorToken | undefined;
}

/** Something of an agent that is not attached. Fixed shape: every field is always present. */
export interface Skip {
  readonly ref: string;
  readonly reason: string;
  readonly kind: SkipKind;
  /** The policy entry that refuses it (kind `refused`). */
  readonly entry: string | undefined;
  /**
   * For a connector that exists but is refused: the bare name the operator keys it by in
   * its config, and the token variable it would have written for it. Never shown to the
   * user for a connector the agent may not see; used only to take the operator's copy out.
   */
  readonly refused: Refused | undefined;
}

/** An attached connector the policy has something to say about (an entry in warn or audit mode). */
export interface Note {
  readonly ref: string;
  readonly reason: string;
  readonly kind: Extract<FindingKind, 'policy-warn' | 'policy-audit'>;
  readonly entry: string | undefined;
}

export interface Resolution {
  readonly attachments: Attachment[];
  readonly skipped: Skip[];
  readonly notes: Note[];
}

/** Upper bound on connectors attached to one agent: keeps the env and the patch bounded. */
export const MAX_CONNECTORS_PER_AGENT = 64;

/** Why a disabled connector is not injected, and how it comes back. */
export const DISABLED_REASON = 'it is disabled (spec.disabled: true); set spec.disabled: false on the connector to re-enable it';

export function skip(kind: SkipKind, ref: string, reason: string, refused: Refused | undefined = undefined, entry: string | undefined = undefined): Skip {
  return { ref, reason, kind, entry, refused };
}

/** Why the policy refuses a connector at injection: the entry, the cause and the fix. */
export function refusedReason(v: Violation): string {
  // No closing period: a "; removed ..." may follow, as after every other reason.
  return `policy entry ${v.entry ?? ''} refuses it: ${v.cause}${v.fix === undefined ? '' : ` Fix: ${v.fix}`}`;
}

/** A skip or note as one line about the agent: `connector <ref>: <reason>`, or the reason alone when it is not about one connector. */
export function agentLine(s: Skip | Note): string {
  return s.kind === 'manager' ? s.reason : `connector ${s.ref}: ${s.reason}`;
}

/** What an entry in warn or audit mode says about a connector that is injected all the same. */
export function notedReason(v: Violation): string {
  return `policy entry ${v.entry ?? ''} (action ${v.action}): ${violationText(v)}`;
}

/** The references an agent uses, own first, then its manager's (one level, same namespace). */
export function connectorRefs(agent: Agent, view: ClusterView, skipped: Skip[]): { ref: string; namespace: string }[] {
  const refs = agent.connectors.map((ref) => ({ ref, namespace: agent.namespace }));
  if (agent.officeManager && agent.officeManager !== agent.name) {
    const manager = view.agent(agent.namespace, agent.officeManager);
    if (manager) {
      for (const ref of manager.connectors) refs.push({ ref, namespace: manager.namespace });
    } else {
      skipped.push(skip('manager', `spec.officeManager ${agent.officeManager}`, `office manager agent ${agent.namespace}/${agent.officeManager} not found, its connectors are not inherited`));
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
export function refusedConnector(connector: Connector, agentNamespace: string): Refused {
  const ref = operatorTokenRef(connector, agentNamespace);
  return { name: connector.name, token: ref && { name: tokenEnvName(connector.name), secretKeyRef: ref } };
}

/** Dedupe and name bookkeeping of one resolution. */
interface Seen {
  readonly keys: Set<string>;
  readonly byName: Map<string, Attachment>;
  readonly byTokenEnv: Map<string, Attachment>;
}

/**
 * One reference: the connector it attaches, or why it does not. The checks run in the order
 * a user fixes them: the reference, the connector's existence and visibility, its own state
 * (disabled, secret reference, the policy), then what it would clash with on this agent.
 */
function resolveOne(ref: string, refNamespace: string, agent: Agent, view: ClusterView, seen: Seen, attached: number, notes: Note[]): Attachment | Skip | undefined {
  const target = parseConnectorRef(ref, refNamespace);
  if (!target) return skip('invalid-ref', ref, 'not a valid reference: use "name" or "namespace/name"');
  const qualified = objectKey(target.namespace, target.name);
  if (seen.keys.has(qualified)) return undefined; // duplicates are dropped silently, as the platform does
  seen.keys.add(qualified);
  const crossNamespace = target.namespace !== agent.namespace;
  const shownRef = crossNamespace ? qualified : target.name;

  const connector = visibleConnector(target, agent.namespace, view);
  if (!connector) {
    // The operator injects a cross-namespace connector without a sharing check: what it
    // wrote for one that exists is taken out again (the reason stays the one text).
    const unshared = crossNamespace ? view.connector(target.namespace, target.name) : undefined;
    if (crossNamespace) return skip('not-visible', shownRef, notVisibleReason(target.namespace, agent.namespace), unshared && refusedConnector(unshared, agent.namespace));
    return skip('missing', shownRef, `connector not found in namespace ${target.namespace}`);
  }
  if (connector.disabled) return skip('disabled', shownRef, DISABLED_REASON, refusedConnector(connector, agent.namespace));
  const secret = connector.authSecretKeyRef;
  if (secret && !isUsableSecretRef(secret)) return skip('secret-ref', shownRef, 'spec.authSecretKeyRef needs both name and key');
  // The policy in force, wherever the connector lives and whenever it was admitted.
  const violation = connectorViolation(connector, view.policy());
  if (violation !== undefined && violation.action === 'deny') return skip('refused', shownRef, refusedReason(violation), refusedConnector(connector, agent.namespace), violation.entry);

  const tokenRef = operatorTokenRef(connector, agent.namespace);
  // The runtime keys servers and token vars by the bare name: a second connector with the
  // same name (or the same token var) would overwrite the first, so it is refused.
  const sameName = seen.byName.get(connector.name);
  if (sameName) return skip('collision', shownRef, `its name collides with ${sameName.ref} (both would be MCP server "${connector.name}"); the first is kept`, refusedConnector(connector, agent.namespace));
  const envName = tokenEnvName(connector.name);
  const sameEnv = tokenRef ? seen.byTokenEnv.get(envName) : undefined;
  if (sameEnv) return skip('collision', shownRef, `its token variable ${envName} collides with ${sameEnv.ref}; the first is kept`, refusedConnector(connector, agent.namespace));
  if (attached >= MAX_CONNECTORS_PER_AGENT) return skip('over-limit', shownRef, `more than ${MAX_CONNECTORS_PER_AGENT} connectors on one agent`, refusedConnector(connector, agent.namespace));

  const attachment: Attachment = { ref: shownRef, connector, tokenRef };
  seen.byName.set(connector.name, attachment);
  if (tokenRef) seen.byTokenEnv.set(envName, attachment);
  if (violation !== undefined) notes.push({ ref: shownRef, reason: notedReason(violation), kind: violation.action === 'warn' ? 'policy-warn' : 'policy-audit', entry: violation.entry });
  return attachment;
}

export function resolveConnectors(agent: Agent, view: ClusterView): Resolution {
  const attachments: Attachment[] = [];
  const skipped: Skip[] = [];
  const notes: Note[] = [];
  const seen: Seen = { keys: new Set(), byName: new Map(), byTokenEnv: new Map() };
  for (const { ref, namespace } of connectorRefs(agent, view, skipped)) {
    const r = resolveOne(ref, namespace, agent, view, seen, attachments.length, notes);
    if (r === undefined) continue;
    if ('kind' in r) skipped.push(r);
    else attachments.push(r);
  }
  return { attachments, skipped, notes };
}
