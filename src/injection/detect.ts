// Is this pod an agent pod we should inject, and which agent runs in which container?
// Pure: labels and annotations in, a decision out (Istio's injectRequired, in spirit).

import {
  ANNOTATION_INJECT,
  INJECTION_ENABLED,
  LABEL_AGENT_NAME,
  LABEL_INJECTION,
  LABEL_MEMBER_PREFIX,
  LABEL_SQUAD,
  LABEL_SQUAD_NAME,
} from '../config/names.ts';
import { isObject, type Agent, type JsonObject, type NamespaceInfo } from '../model/objects.ts';
import { finding, type Finding, type FindingKind } from './findings.ts';

/** Where an agent runs: `spec.containers[index]`, or `spec.ephemeralContainers[index]`. */
export interface AgentContainer {
  readonly agent: string;
  readonly index: number;
  readonly field: 'containers' | 'ephemeralContainers';
}

/** An agent pod left alone as a whole: why (logged; shown and recorded as its finding kind says), and whose pod it is. */
export interface PodSkip {
  readonly kind: 'skip';
  readonly reason: string;
  readonly finding: FindingKind;
  /** The agents the pod is for, as far as its labels (or new containers) tell: a pod-level finding is about each. */
  readonly agents: string[];
}

export type Detection =
  /** Not an agent pod: pass unchanged, nothing to say. */
  | { readonly kind: 'not-agent' }
  | PodSkip
  /** `findings`: members that could not be placed (one per agent, about that agent). */
  | { readonly kind: 'inject'; readonly containers: AgentContainer[]; readonly findings: Finding[] };

const NOT_AGENT = { kind: 'not-agent' } as const;

function podSkip(finding: FindingKind, reason: string, agents: string[]): PodSkip {
  return { kind: 'skip', reason, finding, agents };
}

function stringRecord(value: unknown): Record<string, unknown> {
  return isObject(value) ? value : {};
}

export function isInjectionEnabled(ns: NamespaceInfo | undefined): boolean {
  return ns?.labels[LABEL_INJECTION] === INJECTION_ENABLED;
}

function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function nameOf(container: unknown): string | undefined {
  return isObject(container) && typeof container.name === 'string' ? container.name : undefined;
}

/**
 * What every path checks first: an agent pod (the `komputer.ai/squad` label), in an enabled
 * namespace, not opted out. Returns the pod's labels when it may be injected.
 */
function gate(pod: JsonObject, namespace: string, ns: NamespaceInfo | undefined, agents: (labels: Record<string, unknown>) => string[]): { readonly kind: 'not-agent' } | PodSkip | { kind: 'pass'; labels: Record<string, unknown> } {
  const metadata = stringRecord(pod.metadata);
  const labels = stringRecord(metadata.labels);
  if (typeof labels[LABEL_SQUAD] !== 'string') return NOT_AGENT;
  if (!isInjectionEnabled(ns)) {
    return podSkip('namespace-not-enabled', `namespace ${namespace} is not enabled (${LABEL_INJECTION}=${INJECTION_ENABLED} is missing)`, agents(labels));
  }
  const annotations = stringRecord(metadata.annotations);
  if (annotations[ANNOTATION_INJECT] === 'false') {
    return podSkip('opted-out', `opted out by annotation ${ANNOTATION_INJECT}=false`, agents(labels));
  }
  return { kind: 'pass', labels };
}

/** The members a squad pod's labels name, sorted. */
function memberLabels(labels: Record<string, unknown>): string[] {
  return Object.keys(labels)
    .filter((k) => k.startsWith(LABEL_MEMBER_PREFIX) && labels[k] === 'true')
    .map((k) => k.slice(LABEL_MEMBER_PREFIX.length))
    .filter((m) => m.length > 0)
    .sort();
}

/** The agents a pod CREATE is for, by its labels. */
function labelledAgents(labels: Record<string, unknown>): string[] {
  if (labels[LABEL_SQUAD] === 'true') return memberLabels(labels);
  const agent = labels[LABEL_AGENT_NAME];
  return typeof agent === 'string' && agent !== '' ? [agent] : [];
}

/** Pod CREATE: the solo agent's first container, or each squad member's container. */
export function detectAgentPod(pod: JsonObject, namespace: string, ns: NamespaceInfo | undefined): Detection {
  const g = gate(pod, namespace, ns, labelledAgents);
  if (g.kind !== 'pass') return g;
  const labels = g.labels;
  const containers = listOf(stringRecord(pod.spec).containers);
  if (containers.length === 0) return podSkip('pod-not-injectable', 'agent pod has no containers', labelledAgents(labels));

  if (labels[LABEL_SQUAD] !== 'true') {
    const agent = labels[LABEL_AGENT_NAME];
    if (typeof agent !== 'string' || agent === '') return podSkip('pod-not-injectable', `agent pod has no ${LABEL_AGENT_NAME} label`, []);
    return { kind: 'inject', containers: [{ agent, index: 0, field: 'containers' }], findings: [] };
  }

  // Squad: one member label per agent, each agent in the container named after it.
  const members = memberLabels(labels);
  const findings: Finding[] = [];
  const found: AgentContainer[] = [];
  for (const agent of members) {
    const index = containers.findIndex((c) => nameOf(c) === agent);
    if (index < 0) findings.push(finding('no-container', `squad member ${agent}: no container named ${agent}, nothing injected for it`, agent, undefined, undefined, undefined));
    else found.push({ agent, index, field: 'containers' });
  }
  if (found.length === 0) {
    if (members.length === 0) return podSkip('pod-not-injectable', 'squad pod has no member labels', []);
    // Several members and not one container: each is told about its own, as a pod-level text.
    return podSkip('pod-not-injectable', findings.map((f) => f.text).join('; '), members);
  }
  found.sort((a, b) => a.index - b.index);
  return { kind: 'inject', containers: found, findings };
}

/**
 * `pods/ephemeralcontainers` UPDATE: the platform adds a member to a running squad as an
 * ephemeral container named after the agent, and labels the pod `member-<agent>` only
 * afterwards. So membership is decided from what exists now: the pod's squad name, and a
 * KomputerAgent named like the container whose `komputer.ai/squad` label is that squad.
 * Only containers absent from `oldPod` are considered: the ones before are immutable, and
 * anything else (a `kubectl debug` container) is left alone.
 */
export function detectNewSquadMembers(pod: JsonObject, oldPod: JsonObject, namespace: string, ns: NamespaceInfo | undefined, agentOf: (name: string) => Agent | undefined): Detection {
  const before = new Set(listOf(stringRecord(oldPod.spec).ephemeralContainers).map(nameOf));
  // The members joining: new ephemeral containers named after an agent of the pod's squad.
  const joining = (labels: Record<string, unknown>): string[] => {
    const squad = labels[LABEL_SQUAD_NAME];
    if (typeof squad !== 'string' || squad === '') return [];
    const out: string[] = [];
    for (const c of listOf(stringRecord(pod.spec).ephemeralContainers)) {
      const name = nameOf(c);
      if (name !== undefined && !before.has(name) && agentOf(name)?.squad === squad) out.push(name);
    }
    return out;
  };
  const g = gate(pod, namespace, ns, joining);
  if (g.kind !== 'pass') return g;
  const squad = g.labels[LABEL_SQUAD_NAME];
  if (g.labels[LABEL_SQUAD] !== 'true' || typeof squad !== 'string' || squad === '') {
    return podSkip('not-squad-pod', `not a squad pod (${LABEL_SQUAD}=true and ${LABEL_SQUAD_NAME}), ephemeral containers are not injected`, []);
  }
  const found: AgentContainer[] = [];
  const findings: Finding[] = [];
  const others: string[] = [];
  listOf(stringRecord(pod.spec).ephemeralContainers).forEach((c, index) => {
    const name = nameOf(c);
    if (name === undefined || before.has(name)) return;
    const agent = agentOf(name);
    if (agent?.squad === squad) found.push({ agent: name, index, field: 'ephemeralContainers' });
    else {
      others.push(name);
      // An agent of that name that is not in this squad is most likely a label not set yet.
      if (agent) findings.push(finding('not-squad-member', `ephemeral container ${name}: KomputerAgent ${name} is not a member of squad ${squad} (its ${LABEL_SQUAD} label is ${agent.squad === undefined ? 'not set' : JSON.stringify(agent.squad)}), nothing injected`, name, name, undefined, undefined));
    }
  });
  if (found.length === 0) {
    // One warning per container (the API server may truncate long ones); nothing to inject.
    if (findings.length > 0) return { kind: 'inject', containers: [], findings };
    const reason = others.length === 0 ? 'no new ephemeral container' : `no new ephemeral container is a member of squad ${squad} (left alone: ${others.join(', ')})`;
    return podSkip('no-new-member', reason, []);
  }
  return { kind: 'inject', containers: found, findings };
}
