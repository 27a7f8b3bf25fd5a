// How many connectors each policy entry matches with an auth type it does not allow, per
// the entry's action: what komputer_webhook_policy_violations shows. Pure: the leader feeds
// it every connector of its watch cache and the policy in force.

import type { Connector } from '../model/objects.ts';
import type { PolicyAction, PolicyList } from './incompatible.ts';
import { connectorViolation } from './verdict.ts';

export interface ViolationCount {
  readonly entry: string;
  readonly action: PolicyAction;
  readonly connectors: number;
}

/**
 * Every entry of the policy with its count, 0 included (so a series drops to 0 rather than
 * vanishing when the last connector is fixed), sorted by entry. Each connector's verdict is
 * remembered per connector object and policy list (connectorViolation), so a recompute
 * after one change judges only the changed connector again.
 */
export function countViolations(connectors: Iterable<Connector>, policy: PolicyList): ViolationCount[] {
  const counts = new Map<string, number>();
  for (const e of policy) counts.set(e.id, 0);
  for (const c of connectors) {
    const v = connectorViolation(c, policy);
    if (v?.entry !== undefined) counts.set(v.entry, (counts.get(v.entry) ?? 0) + 1);
  }
  const out: ViolationCount[] = [];
  for (const e of policy) out.push({ entry: e.id, action: e.action, connectors: counts.get(e.id) ?? 0 });
  return out.sort((a, b) => (a.entry < b.entry ? -1 : a.entry > b.entry ? 1 : 0));
}
