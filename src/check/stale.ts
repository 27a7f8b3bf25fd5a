// Running agent pods whose injected connectors differ from what their agent would get now.
// The decision is the server's own: injectPod (and, for members added to a running squad,
// injectEphemeralContainers) run on the stored pod yield a patch exactly when the pod's env
// is not what a new pod would get. Applying that patch gives the env it would have; the
// difference between the two is the reason (servers added, removed or changed).
//
// One case the patch cannot show, on purpose: when nothing resolves any more (the agent's
// only connector was deleted), injection adds no config to a new pod but leaves an existing
// one alone (it never removes what it cannot attribute). A pod whose KOMPUTER_MCP_SERVERS
// lists only connectors its agent references (or that this service recorded in the
// komputer.ai/injected-connectors annotation) is then stale as well: a new pod gets none.

import fastJsonPatch from 'fast-json-patch';
import { ANNOTATION_INJECTED, ENV_MCP_SERVERS } from '../config/names.ts';
import { injectEphemeralContainers, injectPod, jsonEqual, type InjectionOutcome } from '../injection/inject.ts';
import { connectorRefs } from '../injection/resolve.ts';
import { parseConnectorRef } from '../references/references.ts';
import { isObject, type JsonObject } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';

export interface StaleContainer {
  readonly container: string;
  readonly agent: string;
  /** What a new pod would get differently, e.g. `github url changed`, `slack removed`. */
  readonly changes: readonly string[];
}

export interface StalePod {
  readonly namespace: string;
  readonly name: string;
  readonly containers: readonly StaleContainer[];
}

/**
 * Stored pods are "running" unless finished (phase Succeeded/Failed) or being deleted. The
 * phase is what the kubelet reports; a pod no kubelet ever picked up (e2e: an API server
 * without nodes) stays Pending and counts as running, which is the safe side: it will start
 * with the env it carries.
 */
export function isRunning(pod: JsonObject): boolean {
  const md = isObject(pod.metadata) ? pod.metadata : {};
  if (typeof md.deletionTimestamp === 'string') return false;
  const phase = isObject(pod.status) ? pod.status.phase : undefined;
  return phase !== 'Succeeded' && phase !== 'Failed';
}

type Env = readonly unknown[];
type Field = 'containers' | 'ephemeralContainers';

function containersOf(pod: JsonObject, field: Field): JsonObject[] {
  const spec = isObject(pod.spec) ? pod.spec : {};
  const list = spec[field];
  return Array.isArray(list) ? list.filter(isObject) : [];
}

function envOf(container: JsonObject | undefined): Env {
  return container && Array.isArray(container.env) ? container.env : [];
}

function containerAt(pod: JsonObject, field: Field, index: number): JsonObject | undefined {
  const spec = isObject(pod.spec) ? pod.spec : {};
  const list = spec[field];
  const c: unknown = Array.isArray(list) ? list[index] : undefined;
  return isObject(c) ? c : undefined;
}

function envEntry(env: Env, name: string): JsonObject | undefined {
  return env.find((e): e is JsonObject => isObject(e) && e.name === name);
}

/** KOMPUTER_MCP_SERVERS as an object of server entries, or undefined when absent or not JSON. */
function serversOf(env: Env): Record<string, unknown> | undefined {
  const entry = envEntry(env, ENV_MCP_SERVERS);
  if (!entry || typeof entry.value !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(entry.value);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

const ENTRY_FIELDS = ['url', 'authType', 'headerName', 'tokenEnv', 'type'] as const;

/**
 * Human reasons for the difference between a container's env now and the one a new pod
 * gets. `tokens`: the token variables the decision writes or takes out (from the core, never
 * guessed from names).
 */
export function envChanges(before: Env, after: Env, tokens: Iterable<string> = []): string[] {
  const changes: string[] = [];
  const was = serversOf(before) ?? {};
  const will = serversOf(after) ?? {};
  const explainedTokens = new Set<string>();
  const tokenOf = (entry: unknown): string | undefined => (isObject(entry) && typeof entry.tokenEnv === 'string' ? entry.tokenEnv : undefined);
  for (const name of [...new Set([...Object.keys(was), ...Object.keys(will)])].sort()) {
    const a = was[name];
    const b = will[name];
    if (a === undefined) {
      changes.push(`${name} added`);
      const t = tokenOf(b);
      if (t) explainedTokens.add(t);
    } else if (b === undefined) {
      changes.push(`${name} removed`);
      const t = tokenOf(a);
      if (t) explainedTokens.add(t);
    } else if (!jsonEqual(a, b)) {
      const fields = ENTRY_FIELDS.filter((f) => !jsonEqual(isObject(a) ? a[f] : undefined, isObject(b) ? b[f] : undefined));
      changes.push(`${name} ${fields.length > 0 ? fields.join(', ') : 'entry'} changed`);
      for (const t of [tokenOf(a), tokenOf(b)]) if (t) explainedTokens.add(t);
    }
  }
  // Token variables whose Secret reference changed with the config staying the same.
  const tokenNames = new Set<string>(tokens);
  for (const name of [...tokenNames].sort()) {
    if (explainedTokens.has(name)) continue;
    const a = before.filter((e) => isObject(e) && e.name === name);
    const b = after.filter((e) => isObject(e) && e.name === name);
    if (jsonEqual(a, b)) continue;
    changes.push(b.length === 0 ? `${name} removed` : a.length === 0 ? `${name} added` : `${name} now references another Secret key`);
  }
  if (changes.length === 0 && !jsonEqual([...before], [...after])) changes.push('its connector variables differ from what a new pod gets');
  return changes;
}

/** Bare connector names an agent's pods may carry: its references (own and manager's) and the pod's annotation. */
function attributableNames(agentName: string, namespace: string, pod: JsonObject, view: ClusterView): Set<string> {
  const names = new Set<string>();
  const agent = view.agent(namespace, agentName);
  if (agent) {
    for (const { ref, namespace: ns } of connectorRefs(agent, view, [])) {
      const t = parseConnectorRef(ref, ns);
      if (t) names.add(t.name);
    }
  }
  const md = isObject(pod.metadata) ? pod.metadata : {};
  const annotation = isObject(md.annotations) ? md.annotations[ANNOTATION_INJECTED] : undefined;
  if (typeof annotation === 'string') {
    for (const ref of annotation.split(',')) {
      const t = parseConnectorRef(ref.trim(), namespace);
      if (t) names.add(t.name);
    }
  }
  return names;
}

function judged(pod: JsonObject, outcome: InjectionOutcome, namespace: string, view: ClusterView, only?: string): StaleContainer[] {
  const after = outcome.patch.length > 0 ? (fastJsonPatch.applyPatch(structuredClone(pod), outcome.patch as fastJsonPatch.Operation[], true, false).newDocument as JsonObject) : pod;
  const out: StaleContainer[] = [];
  for (const summary of outcome.containers) {
    if (only !== undefined && summary.container !== only) continue;
    const before = envOf(containerAt(pod, summary.field, summary.index));
    let changes = envChanges(before, envOf(containerAt(after, summary.field, summary.index)), summary.tokens);
    if (changes.length === 0 && summary.injected.length === 0) {
      // Nothing resolves now: a new pod gets no config at all (see the file comment).
      const servers = serversOf(before);
      const keys = servers ? Object.keys(servers) : [];
      const ours = attributableNames(summary.agent, namespace, pod, view);
      if (keys.length > 0 && keys.every((k) => ours.has(k))) {
        const tokens = new Set(keys.map((k) => servers![k]).flatMap((e) => (isObject(e) && typeof e.tokenEnv === 'string' ? [e.tokenEnv] : [])));
        changes = envChanges(before, before.filter((e) => !(isObject(e) && (e.name === ENV_MCP_SERVERS || tokens.has(e.name as string)))), tokens);
      }
    }
    if (changes.length > 0) out.push({ container: summary.container, agent: summary.agent, changes });
  }
  return out;
}

/** The stale pods among `pods` (raw, as listed), judged against the cluster as it is now. */
export function stalePods(pods: readonly JsonObject[], view: ClusterView): StalePod[] {
  const out: StalePod[] = [];
  for (const pod of pods) {
    if (!isRunning(pod)) continue;
    const md = isObject(pod.metadata) ? pod.metadata : {};
    const namespace = typeof md.namespace === 'string' ? md.namespace : '';
    const name = typeof md.name === 'string' ? md.name : '';
    if (!namespace || !isObject(pod.spec)) continue;
    const containers = judged(pod, injectPod(pod, namespace, view), namespace, view);
    // Members added to a running squad: each ephemeral container as if it had just been added.
    for (const eph of containersOf(pod, 'ephemeralContainers')) {
      if (typeof eph.name !== 'string') continue;
      const spec = pod.spec as JsonObject;
      const oldPod = { ...pod, spec: { ...spec, ephemeralContainers: containersOf(pod, 'ephemeralContainers').filter((c) => c !== eph) } };
      containers.push(...judged(pod, injectEphemeralContainers(pod, oldPod, namespace, view), namespace, view, eph.name));
    }
    if (containers.length > 0) out.push({ namespace, name, containers });
  }
  return out.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
}
