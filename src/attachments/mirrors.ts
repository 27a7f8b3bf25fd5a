// Which Secret mirrors must exist (opt-in --mirror-shared-secrets), pure. A connector's
// token Secret is mirrored into another namespace only when the connector is shared with
// that namespace AND an agent there references it: writing `otherns/name` in an agent is
// never enough, and a namespace the connector does not list never gets a copy.

import { isSharedWith, parseConnectorRef } from '../references/references.ts';
import { mirroredSecretName } from '../injection/names.ts';
import { isUsableSecretRef, type Agent, type Connector } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';

export interface MirrorSpec {
  readonly targetNamespace: string;
  /** `<secret>-from-<sourceNamespace>` */
  readonly name: string;
  readonly sourceNamespace: string;
  readonly sourceSecret: string;
  /** The connector (name) the mirror is for, as the platform labels it. */
  readonly connector: string;
}

export function mirrorKey(m: { targetNamespace: string; name: string }): string {
  return `${m.targetNamespace}/${m.name}`;
}

export function desiredMirrors(agents: Iterable<Agent>, view: Pick<ClusterView, 'connector'>): Map<string, MirrorSpec> {
  const out = new Map<string, MirrorSpec>();
  for (const agent of agents) {
    for (const ref of agent.connectors) {
      const t = parseConnectorRef(ref, agent.namespace);
      if (!t || t.namespace === agent.namespace) continue;
      const c: Connector | undefined = view.connector(t.namespace, t.name);
      const secret = c?.authSecretKeyRef;
      if (!c || !secret || !isUsableSecretRef(secret) || !isSharedWith(c.sharedWith, agent.namespace)) continue;
      const spec: MirrorSpec = { targetNamespace: agent.namespace, name: mirroredSecretName(secret.name, c.namespace), sourceNamespace: c.namespace, sourceSecret: secret.name, connector: c.name };
      if (!out.has(mirrorKey(spec))) out.set(mirrorKey(spec), spec);
    }
  }
  return out;
}
