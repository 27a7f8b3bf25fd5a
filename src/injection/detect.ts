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

/** Where an agent runs: `spec.containers[index]`, or `spec.ephemeralContainers[index]`. */
export interface AgentContainer {
  readonly agent: string;
  readonly index: number;
  readonly field: 'containers' | 'ephemeralContainers';
}

export type Detection =
  /** Not an agent pod: pass unchanged, nothing to say. */
  | { kind: 'not-agent' }
  /** An agent pod we will not touch; `reason` is logged, and shown as a warning when `warn`. */
  | { kind: 'skip'; reason: string; warn: boolean; namespaceNotEnabled?: boolean }
  | { kind: 'inject'; containers: AgentContainer[]; warnings: string[] };

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
function gate(pod: JsonObject, namespace: string, ns: NamespaceInfo | undefined): Exclude<Detection, { kind: 'inject' }> | { kind: 'pass'; labels: Record<string, unknown> } {
  const metadata = stringRecord(pod.metadata);
  const labels = stringRecord(metadata.labels);
  if (typeof labels[LABEL_SQUAD] !== 'string') return { kind: 'not-agent' };
  if (!isInjectionEnabled(ns)) {
    return { kind: 'skip', reason: `namespace ${namespace} is not enabled (${LABEL_INJECTION}=${INJECTION_ENABLED} is missing)`, warn: true, namespaceNotEnabled: true };
  }
  const annotations = stringRecord(metadata.annotations);
  if (annotations[ANNOTATION_INJECT] === 'false') {
    return { kind: 'skip', reason: `opted out by annotation ${ANNOTATION_INJECT}=false`, warn: false };
  }
  return { kind: 'pass', labels };
}

/** Pod CREATE: the solo agent's first container, or each squad member's container. */
export function detectAgentPod(pod: JsonObject, namespace: string, ns: NamespaceInfo | undefined): Detection {
  const g = gate(pod, namespace, ns);
  if (g.kind !== 'pass') return g;
  const labels = g.labels;
  const containers = listOf(stringRecord(pod.spec).containers);
  if (containers.length === 0) return { kind: 'skip', reason: 'agent pod has no containers', warn: true };

  if (labels[LABEL_SQUAD] !== 'true') {
    const agent = labels[LABEL_AGENT_NAME];
    if (typeof agent !== 'string' || agent === '') {
      return { kind: 'skip', reason: `agent pod has no ${LABEL_AGENT_NAME} label`, warn: true };
    }
    return { kind: 'inject', containers: [{ agent, index: 0, field: 'containers' }], warnings: [] };
  }

  // Squad: one member label per agent, each agent in the container named after it.
  const members = Object.keys(labels)
    .filter((k) => k.startsWith(LABEL_MEMBER_PREFIX) && labels[k] === 'true')
    .map((k) => k.slice(LABEL_MEMBER_PREFIX.length))
    .filter((m) => m.length > 0)
    .sort();
  const warnings: string[] = [];
  const found: AgentContainer[] = [];
  for (const agent of members) {
    const index = containers.findIndex((c) => nameOf(c) === agent);
    if (index < 0) warnings.push(`squad member ${agent}: no container named ${agent}, nothing injected for it`);
    else found.push({ agent, index, field: 'containers' });
  }
  if (found.length === 0) {
    return { kind: 'skip', reason: members.length === 0 ? 'squad pod has no member labels' : warnings.join('; '), warn: true };
  }
  found.sort((a, b) => a.index - b.index);
  return { kind: 'inject', containers: found, warnings };
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
  const g = gate(pod, namespace, ns);
  if (g.kind !== 'pass') return g;
  const squad = g.labels[LABEL_SQUAD_NAME];
  if (g.labels[LABEL_SQUAD] !== 'true' || typeof squad !== 'string' || squad === '') {
    return { kind: 'skip', reason: `not a squad pod (${LABEL_SQUAD}=true and ${LABEL_SQUAD_NAME}), ephemeral containers are not injected`, warn: false };
  }
  const before = new Set(listOf(stringRecord(oldPod.spec).ephemeralContainers).map(nameOf));
  const found: AgentContainer[] = [];
  const warnings: string[] = [];
  const others: string[] = [];
  listOf(stringRecord(pod.spec).ephemeralContainers).forEach((c, index) => {
    const name = nameOf(c);
    if (name === undefined || before.has(name)) return;
    const agent = agentOf(name);
    if (agent?.squad === squad) found.push({ agent: name, index, field: 'ephemeralContainers' });
    else {
      others.push(name);
      // An agent of that name that is not in this squad is most likely a label not set yet.
      if (agent) warnings.push(`ephemeral container ${name}: KomputerAgent ${name} is not a member of squad ${squad} (its ${LABEL_SQUAD} label is ${agent.squad === undefined ? 'not set' : JSON.stringify(agent.squad)}), nothing injected`);
    }
  });
  if (found.length === 0) {
    // One warning per container (the API server may truncate long ones); nothing to inject.
    if (warnings.length > 0) return { kind: 'inject', containers: [], warnings };
    const reason = others.length === 0 ? 'no new ephemeral container' : `no new ephemeral container is a member of squad ${squad} (left alone: ${others.join(', ')})`;
    return { kind: 'skip', reason, warn: false };
  }
  return { kind: 'inject', containers: found, warnings };
}
