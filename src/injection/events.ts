// What a pod admission tells the agents' owners, as Kubernetes Events on their KomputerAgents:
// the pure mapping from an injection outcome to {agent, type, reason, message}. No I/O here
// (src/events/ records them). Admission warnings go back to whoever created the pod (the
// platform's operator); these carry the same words to the agent's owner (`kubectl describe
// komputeragent`). Every Warning's message is exactly one of the outcome's admission
// warnings, so nothing here can say more than a warning does (never a secret value).

import { isObject, type JsonObject } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';
import { FINDING_KINDS, FINDINGS } from './findings.ts';
import type { InjectionOutcome } from './inject.ts';

export type AgentEventType = 'Normal' | 'Warning';

/** The KomputerAgent an Event is about (`regarding`). */
export interface AgentRef {
  readonly namespace: string;
  readonly name: string;
  /** From the watch cache; `kubectl describe` matches events by it. */
  readonly uid: string | undefined;
}

export interface AgentEvent {
  readonly agent: AgentRef;
  readonly type: AgentEventType;
  /** Stable, CamelCase: the finding kind's reason (findings.ts), or INJECTED_REASON. */
  readonly reason: string;
  readonly message: string;
}

/** The Normal event's reason: the agent's container got its connectors. */
export const INJECTED_REASON = 'ConnectorsInjected';

/** Every reason an Event of this service can carry (the findings' and the Normal one). */
export const EVENT_REASONS: readonly string[] = [...new Set([...FINDING_KINDS.flatMap((k) => (FINDINGS[k].event === undefined ? [] : [FINDINGS[k].event])), INJECTED_REASON])];

export interface PodAdmission {
  readonly pod: JsonObject;
  /** Set for a pods/ephemeralcontainers UPDATE (a member joining a running squad). */
  readonly oldPod?: JsonObject | undefined;
  readonly namespace: string;
  readonly view: ClusterView;
  readonly outcome: InjectionOutcome;
}

function record(value: unknown): Record<string, unknown> {
  return isObject(value) ? value : {};
}

/** How the pod is named in a Normal event: its name, or its generateName at CREATE. */
export function podLabel(pod: JsonObject): string {
  const md = record(pod.metadata);
  if (typeof md.name === 'string' && md.name !== '') return `pod ${md.name}`;
  if (typeof md.generateName === 'string' && md.generateName !== '') return `a new pod ${md.generateName}*`;
  return 'a new pod';
}

/** The Normal event's message for one container. */
export function injectedMessage(refs: readonly string[], container: string, pod: JsonObject): string {
  return `injected ${refs.join(', ')} into container ${container} of ${podLabel(pod)}`;
}

/**
 * The Events a pod admission records: one Warning per warned finding that names an Event
 * reason, on the agent it is about (a pod-level finding: on every agent of the pod), and
 * one Normal per container that got connectors. Only agents found in the view get one (an
 * event needs the KomputerAgent to hang on); a pod left alone on purpose (opted out, not an
 * agent pod) records nothing, because its findings are not warned.
 */
export function podAdmissionEvents(admission: PodAdmission): AgentEvent[] {
  const { pod, namespace, view, outcome } = admission;
  const events: AgentEvent[] = [];
  const refOf = (name: string): AgentRef | undefined => {
    const agent = view.agent(namespace, name);
    return agent ? { namespace, name, uid: agent.uid } : undefined;
  };
  const podAgents = outcome.detection.kind === 'skip' ? outcome.detection.agents : [];
  for (const f of outcome.findings) {
    const spec = FINDINGS[f.kind];
    if (!spec.warn || spec.event === undefined) continue;
    for (const name of f.agent === undefined ? podAgents : [f.agent]) {
      const agent = refOf(name);
      if (agent) events.push({ agent, type: 'Warning', reason: spec.event, message: f.text });
    }
  }
  for (const summary of outcome.containers) {
    if (summary.injected.length === 0) continue;
    const agent = refOf(summary.agent);
    if (agent) events.push({ agent, type: 'Normal', reason: INJECTED_REASON, message: injectedMessage(summary.injected, summary.container, pod) });
  }
  return events;
}
