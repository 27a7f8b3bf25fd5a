// Is this pod an agent pod we should inject, and which agent runs in which container?
// Pure: labels and annotations in, a decision out (Istio's injectRequired, in spirit).

import {
  ANNOTATION_INJECT,
  INJECTION_ENABLED,
  LABEL_AGENT_NAME,
  LABEL_INJECTION,
  LABEL_MEMBER_PREFIX,
  LABEL_SQUAD,
} from '../config/names.ts';
import { isObject, type JsonObject, type NamespaceInfo } from '../model/objects.ts';

export interface AgentContainer {
  readonly agent: string;
  readonly index: number;
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

export function detectAgentPod(pod: JsonObject, namespace: string, ns: NamespaceInfo | undefined): Detection {
  const metadata = stringRecord(pod.metadata);
  const labels = stringRecord(metadata.labels);
  const squad = labels[LABEL_SQUAD];
  if (typeof squad !== 'string') return { kind: 'not-agent' };

  if (!isInjectionEnabled(ns)) {
    return { kind: 'skip', reason: `namespace ${namespace} is not enabled (${LABEL_INJECTION}=${INJECTION_ENABLED} is missing)`, warn: true, namespaceNotEnabled: true };
  }
  const annotations = stringRecord(metadata.annotations);
  if (annotations[ANNOTATION_INJECT] === 'false') {
    return { kind: 'skip', reason: `opted out by annotation ${ANNOTATION_INJECT}=false`, warn: false };
  }

  const spec = stringRecord(pod.spec);
  const containers = Array.isArray(spec.containers) ? spec.containers : [];
  if (containers.length === 0) return { kind: 'skip', reason: 'agent pod has no containers', warn: true };

  if (squad !== 'true') {
    const agent = labels[LABEL_AGENT_NAME];
    if (typeof agent !== 'string' || agent === '') {
      return { kind: 'skip', reason: `agent pod has no ${LABEL_AGENT_NAME} label`, warn: true };
    }
    return { kind: 'inject', containers: [{ agent, index: 0 }], warnings: [] };
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
    const index = containers.findIndex((c) => isObject(c) && c.name === agent);
    if (index < 0) warnings.push(`squad member ${agent}: no container named ${agent}, nothing injected for it`);
    else found.push({ agent, index });
  }
  if (found.length === 0) {
    return { kind: 'skip', reason: members.length === 0 ? 'squad pod has no member labels' : warnings.join('; '), warn: true };
  }
  found.sort((a, b) => a.index - b.index);
  return { kind: 'inject', containers: found, warnings };
}
