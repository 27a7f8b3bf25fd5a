// What the decision found, as data. Every consumer keys on `kind` and renders `text` as it
// is: admission warnings are the texts of warned findings, Events take their reason from
// this table, metrics count by kind, `check` takes severity and remedy from it, the CLI
// prints texts. None of them parses a text or lists kinds of its own, so a new kind of
// finding is one row below and nothing elsewhere.

/** How the consumers treat one kind of finding. */
export interface FindingSpec {
  /** What it is about: one connector of an agent, an agent's container, or the pod as a whole. */
  readonly scope: 'connector' | 'container' | 'pod';
  /** The connector is left out of the agent's config (a skip reason, counted as such). */
  readonly skip: boolean;
  /** Shown to whoever created the pod (an admission warning). */
  readonly warn: boolean;
  /** Reason of the Warning Event on the agent (CamelCase, stable); undefined: no Event. */
  readonly event: string | undefined;
  /** `check`'s severity when an agent's connectors have this finding. */
  readonly severity: 'error' | 'warning';
  /** What to do about it, for `check` (it adds how to edit the agent). */
  readonly remedy: (ref: string, agentNamespace: string) => string;
}

const row = <S extends boolean>(scope: FindingSpec['scope'], skip: S, warn: boolean, event: string | undefined, severity: FindingSpec['severity'], remedy: FindingSpec['remedy']): FindingSpec & { readonly skip: S } => ({ scope, skip, warn, event, severity, remedy });
const none = (): string => 'see the message';

/**
 * Every kind of finding. Across namespaces, missing and not shared are one kind on purpose
 * (an agent's owner cannot probe which connectors exist elsewhere).
 */
export const FINDINGS = {
  // One connector of an agent, left out.
  'invalid-ref': row('connector', true, true, 'ConnectorRefInvalid', 'error', () => 'write it as "name" or "namespace/name"'),
  missing: row('connector', true, true, 'ConnectorNotFound', 'error', (ref, ns) => `create connector ${ref} in namespace ${ns}, or remove it from spec.connectors`),
  'not-visible': row('connector', true, true, 'ConnectorNotVisible', 'error', (_ref, ns) => `its owner lists ${ns} in the connector's komputer.ai/shared-with-namespaces annotation, or remove the reference`),
  disabled: row('connector', true, true, 'ConnectorDisabled', 'warning', () => 're-enable it (spec.disabled: false on the connector), or remove the reference'),
  'secret-ref': row('connector', true, true, 'ConnectorSecretRefInvalid', 'error', () => 'set both name and key of spec.authSecretKeyRef on the connector'),
  refused: row('connector', true, true, 'ConnectorRefusedByPolicy', 'error', () => 'change the connector as the message says (the policy refuses it), or remove the reference'),
  collision: row('connector', true, true, 'ConnectorNameCollision', 'error', () => 'keep one of the connectors of that name on this agent, or rename one'),
  'over-limit': row('connector', true, true, 'ConnectorOverLimit', 'error', () => 'split the connectors over several agents'),
  manager: row('connector', true, true, 'OfficeManagerNotFound', 'warning', () => 'create the office manager agent, or clear spec.officeManager'),
  // One connector of an agent, injected all the same (a policy entry in warn or audit mode).
  'policy-warn': row('connector', false, true, 'ConnectorPolicyWarning', 'warning', () => 'change the connector as the message says before the policy entry moves to deny'),
  'policy-audit': row('connector', false, false, undefined, 'warning', () => 'change the connector as the message says before the policy entry moves to warn or deny'),
  // An agent's container.
  'no-container': row('container', false, true, 'NoAgentContainer', 'error', none),
  'not-squad-member': row('container', false, true, 'NotSquadMember', 'error', none),
  'agent-not-found': row('container', false, true, undefined, 'error', none),
  'env-invalid': row('container', false, true, 'AgentContainerEnvInvalid', 'error', none),
  'config-removed': row('container', false, true, 'ConnectorConfigRemoved', 'warning', none),
  // The pod as a whole, left alone.
  'namespace-not-enabled': row('pod', false, true, 'NamespaceNotEnabled', 'warning', none),
  'pod-not-injectable': row('pod', false, true, 'NoAgentContainer', 'error', none),
  'opted-out': row('pod', false, false, undefined, 'warning', none),
  'not-squad-pod': row('pod', false, false, undefined, 'warning', none),
  'no-new-member': row('pod', false, false, undefined, 'warning', none),
} as const satisfies Record<string, FindingSpec>;

export type FindingKind = keyof typeof FINDINGS;
export const FINDING_KINDS = Object.keys(FINDINGS) as FindingKind[];
/** The kinds that leave a connector out of an agent's config. */
export type SkipKind = { [K in FindingKind]: (typeof FINDINGS)[K]['skip'] extends true ? K : never }[FindingKind];

/**
 * One finding. Fixed shape (every field always present) so the request path's objects keep
 * one hidden class.
 */
export interface Finding {
  readonly kind: FindingKind;
  /** The agent it is about; undefined for the pod as a whole (then it is about every agent of the pod). */
  readonly agent: string | undefined;
  readonly container: string | undefined;
  /** The connector reference as the agent wrote it (qualified across namespaces). */
  readonly ref: string | undefined;
  /** The policy entry (id) behind it. */
  readonly entry: string | undefined;
  /** The whole sentence, as shown to users (the admission warning, when warned). */
  readonly text: string;
}

export function finding(kind: FindingKind, text: string, agent: string | undefined, container: string | undefined, ref: string | undefined, entry: string | undefined): Finding {
  return { kind, agent, container, ref, entry, text };
}

export function specOf(kind: FindingKind): FindingSpec {
  return FINDINGS[kind];
}

/** The admission warnings of a list of findings: the texts of those shown, in order. */
export function warningsOf(findings: readonly Finding[]): string[] {
  const out: string[] = [];
  for (const f of findings) if (FINDINGS[f.kind].warn) out.push(f.text);
  return out;
}
