// Attachment counts, pure: which agents use a connector. An agent is counted on a
// connector when one of its own `spec.connectors` references resolves to it (`name` in the
// agent's namespace, or `namespace/name`) and the reference is allowed (same namespace, or
// the connector is shared with the agent's namespace): the agents whose pods get the
// connector, so the count never claims an attachment injection would refuse.
// A disabled connector (`spec.disabled: true`) still counts the agents that reference it:
// they keep the reference, and their new pods get the connector back once it is re-enabled.

import { objectKey, type Agent, type Connector } from '../model/objects.ts';
import { isSharedWith, referencedKeys } from '../references/references.ts';

export interface AttachmentStatus {
  readonly attachedAgents: number;
  readonly agentNames: readonly string[];
}

/** How an agent is listed on a connector: by name in its own namespace, else `namespace/name`. */
export function agentDisplayName(connectorNamespace: string, agent: { namespace: string; name: string }): string {
  return agent.namespace === connectorNamespace ? agent.name : `${agent.namespace}/${agent.name}`;
}

/** The status a connector must carry, given the agents that reference it. */
export function statusFor(connector: Pick<Connector, 'namespace' | 'sharedWith'>, referencing: Iterable<{ namespace: string; name: string }>): AttachmentStatus {
  const names: string[] = [];
  for (const a of referencing) {
    if (a.namespace !== connector.namespace && !isSharedWith(connector.sharedWith, a.namespace)) continue;
    names.push(agentDisplayName(connector.namespace, a));
  }
  names.sort();
  return { attachedAgents: names.length, agentNames: names };
}

export function statusEquals(a: AttachmentStatus | undefined, b: AttachmentStatus): boolean {
  if (!a || a.attachedAgents !== b.attachedAgents || a.agentNames.length !== b.agentNames.length) return false;
  return a.agentNames.every((n, i) => n === b.agentNames[i]);
}

/** Reverse index: connector key -> agents referencing it. The controller keeps one live. */
export class ReferenceIndex {
  private readonly byConnector = new Map<string, Map<string, Agent>>();

  static build(agents: Iterable<Agent>): ReferenceIndex {
    const index = new ReferenceIndex();
    for (const a of agents) index.update(undefined, a);
    return index;
  }

  /** Applies an agent change; returns every connector key whose referencing set may differ. */
  update(previous: Agent | undefined, next: Agent | undefined): string[] {
    const touched = new Set<string>();
    if (previous) {
      const k = objectKey(previous.namespace, previous.name);
      for (const c of referencedKeys(previous)) {
        touched.add(c);
        const set = this.byConnector.get(c);
        set?.delete(k);
        if (set && set.size === 0) this.byConnector.delete(c);
      }
    }
    if (next) {
      const k = objectKey(next.namespace, next.name);
      for (const c of referencedKeys(next)) {
        touched.add(c);
        let set = this.byConnector.get(c);
        if (!set) this.byConnector.set(c, (set = new Map()));
        set.set(k, next);
      }
    }
    return [...touched];
  }

  referencing(key: string): Iterable<Agent> {
    return this.byConnector.get(key)?.values() ?? [];
  }
}

/** Every connector's desired status from scratch (the CLI's `counts`, and tests). */
export function computeAll(connectors: Iterable<Connector>, agents: Iterable<Agent>): Map<string, AttachmentStatus> {
  const index = ReferenceIndex.build(agents);
  const out = new Map<string, AttachmentStatus>();
  for (const c of connectors) out.set(objectKey(c.namespace, c.name), statusFor(c, index.referencing(objectKey(c.namespace, c.name))));
  return out;
}
