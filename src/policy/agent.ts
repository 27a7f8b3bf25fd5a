// The admission verdict for a KomputerAgent's `spec.connectors`.
//
// Denied: references that can never resolve, whatever else exists in the cluster: not
// `name` or `namespace/name` (empty, more than one slash), or with a part that is not a
// valid Kubernetes name (a connector is `metadata.name`, a DNS-1123 subdomain; a namespace
// is a DNS-1123 label), e.g. `GitHub` or ` github`. And, as the platform's API does, a new
// reference to a disabled connector (on CREATE, or added by an UPDATE; references the old
// object already had stay allowed, with injection's warning). A disabled connector in a
// namespace that does not share it is reported like a missing one, never as disabled.
// Warned: everything injection would skip for now but that can change later (connector
// not created yet, not shared yet, name or token-variable collision, office manager
// missing, ...). The warnings are injection's own skip reasons (resolveConnectors), so
// admission tells the user exactly what the agent's pods will (not) get.

import { objectKey, type Agent } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';
import { resolveConnectors } from '../injection/resolve.ts';
import { parseConnectorRef, referencedKeys, visibleConnector } from '../references/references.ts';
import { FINDINGS } from '../injection/findings.ts';
import type { Verdict } from './verdict.ts';
import { clip, quote } from './text.ts';

/** Enough to act on; the API server also caps the total size of warnings. */
const MAX_WARNINGS = 8;
const MAX_LISTED_INVALID = 3;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why a reference as written can never resolve, or undefined when it is well formed. */
export function invalidRefReason(ref: string, agentNamespace: string): string | undefined {
  if (ref === '') return 'is empty';
  const target = parseConnectorRef(ref, agentNamespace);
  if (!target) return 'is not "name" or "namespace/name"';
  if (!DNS1123_LABEL.test(target.namespace)) return 'has a namespace that is not a valid namespace name';
  if (target.name.length > 253 || !DNS1123_SUBDOMAIN.test(target.name)) return 'has a name that is not a valid Kubernetes name (lower-case letters, digits, "-", ".")';
  return undefined;
}

/** `old` is the object before an UPDATE: its references are not new. */
export function evaluateAgent(agent: Agent, view: ClusterView, old?: Agent): Verdict {
  const invalid: string[] = [];
  const valid: string[] = [];
  agent.connectors.forEach((ref, i) => {
    const reason = invalidRefReason(ref, agent.namespace);
    if (reason) invalid.push(`spec.connectors[${i}] ${ref === '' ? '' : `${quote(ref, 60)} `}${reason}`);
    else valid.push(ref);
  });

  // A new reference to a disabled connector the agent may see: refused, as the platform does.
  // Compared by key, so `slack` and `team-a/slack` are one reference.
  const keyOf = (ref: string): string => {
    const t = parseConnectorRef(ref, agent.namespace)!;
    return objectKey(t.namespace, t.name);
  };
  const before = new Set(old ? referencedKeys(old) : []);
  const disabled = new Map<string, string>(); // key -> the reference as first written
  for (const ref of valid) {
    const key = keyOf(ref);
    if (before.has(key) || disabled.has(key)) continue;
    if (visibleConnector(parseConnectorRef(ref, agent.namespace)!, agent.namespace, view)?.disabled) disabled.set(key, ref);
  }

  // Warnings for the well-formed rest, so one apply shows every problem (a refused
  // reference is not warned about again).
  const { skipped, notes } = resolveConnectors({ ...agent, connectors: valid }, view);
  const lines = [...skipped.filter((s) => !(s.kind === 'disabled' && disabled.has(keyOf(s.ref)))), ...notes.filter((n) => FINDINGS[n.kind].warn)]
    .map((s) => clip(s.kind === 'manager' ? `spec.officeManager: ${s.reason}` : `connector ${clip(s.ref, 80)}: ${s.reason}`));
  const warnings = lines.length > MAX_WARNINGS ? [...lines.slice(0, MAX_WARNINGS - 1), `and ${lines.length - MAX_WARNINGS + 1} more connector problems`] : lines;

  if (invalid.length > 0) {
    const more = invalid.length > MAX_LISTED_INVALID ? `; and ${invalid.length - MAX_LISTED_INVALID} more` : '';
    return {
      allowed: false,
      message: clip(`${invalid.slice(0, MAX_LISTED_INVALID).join('; ')}${more}. Use "name" (same namespace) or "namespace/name".`, 400),
      warnings,
      violation: undefined,
    };
  }
  if (disabled.size > 0) {
    const refs = [...disabled.values()];
    const listed = refs.slice(0, MAX_LISTED_INVALID).map((r) => quote(r, 60)).join(', ');
    const more = refs.length > MAX_LISTED_INVALID ? ` and ${refs.length - MAX_LISTED_INVALID} more` : '';
    const one = refs.length === 1;
    return {
      allowed: false,
      message: clip(
        `spec.connectors: ${one ? 'connector' : 'connectors'} ${listed}${more} ${one ? 'is' : 'are'} disabled and cannot be newly attached. ` +
          `Fix: re-enable ${one ? 'it' : 'them'} with spec.disabled: false on the connector, or remove ${one ? 'it' : 'them'} from spec.connectors.`,
        400,
      ),
      warnings,
      violation: undefined,
    };
  }
  return { allowed: true, message: undefined, warnings, violation: undefined };
}
