// What a pod admission tells the agents' owners, as Kubernetes Events on their KomputerAgents:
// the pure mapping from an injection outcome to {agent, type, reason, message}. No I/O here
// (src/events/ records them). Admission warnings go back to whoever created the pod (the
// platform's operator); these carry the same words to the agent's owner (`kubectl describe
// komputeragent`). Every Warning's message is exactly one of the outcome's admission
// warnings, so nothing here can say more than a warning does (never a secret value).

import { ENV_MCP_SERVERS, LABEL_AGENT_NAME, LABEL_MEMBER_PREFIX, LABEL_SQUAD, LABEL_SQUAD_NAME } from '../config/names.ts';
import { isObject, type JsonObject } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';
import type { InjectionOutcome } from './inject.ts';
import type { Skip, SkipKind } from './resolve.ts';

export type AgentEventType = 'Normal' | 'Warning';

/** The KomputerAgent an Event is about (`regarding`). */
export interface AgentRef {
  readonly namespace: string;
  readonly name: string;
  /** From the watch cache; `kubectl describe` matches events by it. */
  readonly uid?: string | undefined;
}

export interface AgentEvent {
  readonly agent: AgentRef;
  readonly type: AgentEventType;
  /** Stable, CamelCase: one per kind of skip (see EVENT_REASONS). */
  readonly reason: string;
  readonly message: string;
}

/** One reason per kind of skip. Across namespaces, missing and not shared are one reason on purpose. */
export const SKIP_REASONS: Readonly<Record<SkipKind, string>> = {
  'invalid-ref': 'ConnectorRefInvalid',
  missing: 'ConnectorNotFound',
  'not-visible': 'ConnectorNotVisible',
  disabled: 'ConnectorDisabled',
  'secret-ref': 'ConnectorSecretRefInvalid',
  collision: 'ConnectorNameCollision',
  'over-limit': 'ConnectorOverLimit',
  manager: 'OfficeManagerNotFound',
};

/** Reasons that are not about one connector. */
export const EVENT_REASONS = {
  /** Normal: the agent's container got its connectors. */
  injected: 'ConnectorsInjected',
  /** The agent's container is not in the pod (a squad member without its container, a pod without containers). */
  noContainer: 'NoAgentContainer',
  /** The agent's container has an `env` that is not a list: nothing injected into it. */
  envInvalid: 'AgentContainerEnvInvalid',
  /** An ephemeral container named like the agent, whose squad label is not the pod's squad. */
  notSquadMember: 'NotSquadMember',
  /** The operator's KOMPUTER_MCP_SERVERS listed only refused connectors and was taken out. */
  configRemoved: 'ConnectorConfigRemoved',
  /** The service's cache says the namespace is not enabled (the pod was left alone). */
  namespaceNotEnabled: 'NamespaceNotEnabled',
} as const;

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

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function containerName(container: unknown, index: number): string {
  return isObject(container) && typeof container.name === 'string' ? container.name : `#${index}`;
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

/** The warning the core wrote for a skip: with the "removed ..." tail when it took the operator's variable out. */
function skipWarning(skip: Skip, agent: string, warnings: readonly string[]): string {
  const base = skip.kind === 'manager' ? `agent ${agent}: ${skip.reason}` : `connector ${skip.ref} not injected into agent ${agent}: ${skip.reason}`;
  return warnings.find((w) => w === base || w.startsWith(`${base}; removed `)) ?? base;
}

/** The agents a pod is for, by its labels (CREATE) or its new member containers (ephemeral). */
function podAgents(admission: PodAdmission): string[] {
  const labels = record(record(admission.pod.metadata).labels);
  if (admission.oldPod) {
    const squad = labels[LABEL_SQUAD_NAME];
    const before = new Set(list(record(admission.oldPod.spec).ephemeralContainers).map((c, i) => containerName(c, i)));
    return list(record(admission.pod.spec).ephemeralContainers)
      .map((c, i) => containerName(c, i))
      .filter((n) => !before.has(n) && typeof squad === 'string' && admission.view.agent(admission.namespace, n)?.squad === squad);
  }
  if (labels[LABEL_SQUAD] !== 'true') {
    const agent = labels[LABEL_AGENT_NAME];
    return typeof agent === 'string' && agent !== '' ? [agent] : [];
  }
  return Object.keys(labels)
    .filter((k) => k.startsWith(LABEL_MEMBER_PREFIX) && labels[k] === 'true')
    .map((k) => k.slice(LABEL_MEMBER_PREFIX.length))
    .filter((m) => m.length > 0)
    .sort();
}

/**
 * The Events a pod admission records. Only agents found in the view get one (an event needs
 * the KomputerAgent to hang on); a pod left alone on purpose (opted out, not an agent pod)
 * records nothing.
 */
export function podAdmissionEvents(admission: PodAdmission): AgentEvent[] {
  const { pod, namespace, view, outcome } = admission;
  const warnings = outcome.warnings;
  const events: AgentEvent[] = [];
  const refOf = (name: string): AgentRef | undefined => {
    const agent = view.agent(namespace, name);
    return agent ? { namespace, name, ...(agent.uid ? { uid: agent.uid } : {}) } : undefined;
  };
  const warn = (name: string, reason: string, message: string): void => {
    const agent = refOf(name);
    if (agent && warnings.includes(message)) events.push({ agent, type: 'Warning', reason, message });
  };

  // The injection's own detection: the pod is not judged a second time on the request path.
  const detection = outcome.detection;

  if (detection.kind === 'not-agent') return events;
  if (detection.kind === 'skip') {
    // The whole pod was left alone; when the creator was told why, so are its agents.
    if (!detection.warn) return events;
    const message = `connectors not injected: ${detection.reason}`;
    const reason = detection.namespaceNotEnabled ? EVENT_REASONS.namespaceNotEnabled : EVENT_REASONS.noContainer;
    for (const name of podAgents(admission)) warn(name, reason, message);
    return events;
  }

  // Members the detection could not place: no container of theirs, or not of this squad.
  for (const w of detection.warnings) {
    const squadMember = /^squad member ([^:]+): /.exec(w);
    const ephemeral = /^ephemeral container ([^:]+): /.exec(w);
    if (squadMember?.[1]) warn(squadMember[1], EVENT_REASONS.noContainer, w);
    else if (ephemeral?.[1]) warn(ephemeral[1], EVENT_REASONS.notSquadMember, w);
  }

  const spec = record(pod.spec);
  for (const { agent: agentName, index, field } of detection.containers) {
    const container = containerName(list(spec[field])[index], index);
    const summary = outcome.containers.find((c) => c.container === container && c.agent === agentName);
    if (!summary) {
      // Detected but not summarized: its env could not be patched (or the agent is unknown,
      // which refOf drops).
      for (const w of warnings) if (w.startsWith(`container ${container}: `)) warn(agentName, EVENT_REASONS.envInvalid, w);
      continue;
    }
    for (const skip of summary.skipped) warn(agentName, SKIP_REASONS[skip.kind], skipWarning(skip, agentName, warnings));
    if (summary.removed.includes(ENV_MCP_SERVERS)) {
      const prefix = `container ${container}: removed ${ENV_MCP_SERVERS},`;
      const w = warnings.find((x) => x.startsWith(prefix));
      if (w) warn(agentName, EVENT_REASONS.configRemoved, w);
    }
    if (summary.injected.length > 0) {
      const agent = refOf(agentName);
      if (agent) events.push({ agent, type: 'Normal', reason: EVENT_REASONS.injected, message: injectedMessage(summary.injected, container, pod) });
    }
  }
  return events;
}
