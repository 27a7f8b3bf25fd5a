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
import { ANNOTATION_INJECTED, ANNOTATION_REVOKE, ENV_MCP_SERVERS, LABEL_AGENT_NAME, LABEL_MEMBER_PREFIX, LABEL_SQUAD } from '../config/names.ts';
import type { SkipKind } from '../injection/findings.ts';
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
  /** What the container holds that a new pod of its agent would not get (empty: nothing to take back). */
  readonly revoked: readonly Revoked[];
}

/**
 * Why a held connector is no longer granted: the core's skip kind for it now (`disabled`,
 * `refused`, `missing`, `not-visible`, ...), or `unreferenced` when the agent no longer
 * names it at all.
 */
export type RevokedCause = SkipKind | 'unreferenced';

export interface Revoked {
  /** A server entry of KOMPUTER_MCP_SERVERS, or a token variable (its secretKeyRef). */
  readonly what: 'server' | 'token';
  readonly name: string;
  readonly cause: RevokedCause;
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

/**
 * The server entries and token references `before` holds that `after` (what a new pod gets)
 * does not: an entry gone, a token variable gone or pointing at another Secret key. A changed
 * URL or header is stale but takes nothing back.
 */
function revokedBetween(before: Env, after: Env, tokens: Iterable<string>, causeOf: (server: string) => RevokedCause): Revoked[] {
  const was = serversOf(before) ?? {};
  const will = serversOf(after) ?? {};
  const out: Revoked[] = [];
  const serverOfToken = new Map<string, string>();
  for (const [name, entry] of Object.entries(was)) if (isObject(entry) && typeof entry.tokenEnv === 'string') serverOfToken.set(entry.tokenEnv, name);
  const gone = new Set<string>();
  for (const name of Object.keys(was).sort()) {
    if (name in will) continue;
    gone.add(name);
    out.push({ what: 'server', name, cause: causeOf(name) });
  }
  for (const t of [...new Set([...tokens, ...serverOfToken.keys()])].sort()) {
    const a = before.filter((e) => isObject(e) && e.name === t);
    if (a.length === 0) continue;
    const server = serverOfToken.get(t);
    // A token whose entry is gone is taken back even where the patch leaves the variable (one
    // it cannot attribute): the operator writes no variable for a connector it cannot resolve.
    const b = after.filter((e) => isObject(e) && e.name === t);
    if (jsonEqual(a, b) && !(server !== undefined && gone.has(server))) continue;
    out.push({ what: 'token', name: t, cause: server === undefined ? 'unreferenced' : causeOf(server) });
  }
  return out;
}

/** The skip kind the decision gives the connector a server entry is keyed by, else `unreferenced`. */
function causes(summary: InjectionOutcome['containers'][number], namespace: string): (server: string) => RevokedCause {
  return (server) => {
    for (const skip of summary.skipped) {
      const bare = skip.refused?.name ?? parseConnectorRef(skip.ref, namespace)?.name;
      if (bare === server) return skip.kind;
    }
    return 'unreferenced';
  };
}

function judged(pod: JsonObject, outcome: InjectionOutcome, namespace: string, view: ClusterView, only?: string): StaleContainer[] {
  const after = outcome.patch.length > 0 ? (fastJsonPatch.applyPatch(structuredClone(pod), outcome.patch as fastJsonPatch.Operation[], true, false).newDocument as JsonObject) : pod;
  const out: StaleContainer[] = [];
  for (const summary of outcome.containers) {
    if (only !== undefined && summary.container !== only) continue;
    const before = envOf(containerAt(pod, summary.field, summary.index));
    const afterEnv = envOf(containerAt(after, summary.field, summary.index));
    let changes = envChanges(before, afterEnv, summary.tokens);
    let revoked = revokedBetween(before, afterEnv, summary.tokens, causes(summary, namespace));
    if (changes.length === 0 && summary.injected.length === 0) {
      // Nothing resolves now: a new pod gets no config at all (see the file comment).
      const servers = serversOf(before);
      const keys = servers ? Object.keys(servers) : [];
      const ours = attributableNames(summary.agent, namespace, pod, view);
      if (keys.length > 0 && keys.every((k) => ours.has(k))) {
        const tokens = new Set(keys.map((k) => servers![k]).flatMap((e) => (isObject(e) && typeof e.tokenEnv === 'string' ? [e.tokenEnv] : [])));
        const none = before.filter((e) => !(isObject(e) && (e.name === ENV_MCP_SERVERS || tokens.has(e.name as string))));
        changes = envChanges(before, none, tokens);
        revoked = revokedBetween(before, none, tokens, causes(summary, namespace));
      }
    }
    if (changes.length > 0) out.push({ container: summary.container, agent: summary.agent, changes, revoked });
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

// --- revocation: which stale pods the leader may restart --------------------------------------

/**
 * `status.taskStatus` values that mean the agent is between tasks. Anything else, including
 * no value yet and values this service does not know, counts as busy: a restart then waits.
 */
export const IDLE_TASK_STATUSES: readonly string[] = ['Idle', 'Complete', 'Error'];

export interface RevocationOptions {
  /** For namespaces without the komputer.ai/revoke-stale-pods annotation. */
  readonly clusterDefault: boolean;
  /** How many pods this pass may restart (the concurrency cap minus those still restarting, at most the per-pass cap). */
  readonly budget: number;
}

/** `evict`: restart now. `busy`: an agent of the pod is busy (or unknown). `capped`: over this pass's budget. */
export type RevocationVerdict = 'evict' | 'busy' | 'capped';

export interface RevocationDecision {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | undefined;
  readonly verdict: RevocationVerdict;
  /** Per stale container: its agent and what it holds that it should no longer get. */
  readonly containers: readonly { readonly container: string; readonly agent: string; readonly revoked: readonly Revoked[] }[];
  /** The pod's agents that are busy (empty unless the verdict is `busy`). */
  readonly busy: readonly string[];
}

/** Whether revocation applies in a namespace: its annotation ("true"/"false"), else the cluster default. */
export function revocationEnabled(namespace: string, view: ClusterView, clusterDefault: boolean): boolean {
  const value = view.namespace(namespace)?.annotations?.[ANNOTATION_REVOKE];
  if (value === 'true') return true;
  if (value === 'false') return false;
  return clusterDefault;
}

function labelsOf(pod: JsonObject): Record<string, unknown> {
  const md = isObject(pod.metadata) ? pod.metadata : {};
  return isObject(md.labels) ? md.labels : {};
}

/** Every agent of a pod: its stale containers' and its member labels' (a restart stops them all). */
function agentsOf(pod: JsonObject, stale: StalePod): string[] {
  const labels = labelsOf(pod);
  const names = new Set(stale.containers.map((c) => c.agent));
  if (typeof labels[LABEL_AGENT_NAME] === 'string') names.add(labels[LABEL_AGENT_NAME]);
  for (const [k, v] of Object.entries(labels)) if (k.startsWith(LABEL_MEMBER_PREFIX) && v === 'true') names.add(k.slice(LABEL_MEMBER_PREFIX.length));
  return [...names].sort();
}

/**
 * The running agent pods (label komputer.ai/squad) in namespaces where revocation is on that
 * hold a server entry or token reference their agent should no longer get, judged by the same
 * core as `check`'s pods/stale, each with a verdict. Pods that are not agent pods, are in a
 * namespace without revocation, or take nothing back are not returned at all.
 */
export function revocations(pods: readonly JsonObject[], view: ClusterView, options: RevocationOptions): RevocationDecision[] {
  const candidates = pods.filter((pod) => {
    const md = isObject(pod.metadata) ? pod.metadata : {};
    return LABEL_SQUAD in labelsOf(pod) && typeof md.namespace === 'string' && revocationEnabled(md.namespace, view, options.clusterDefault);
  });
  const byKey = new Map(candidates.map((p) => [`${(p.metadata as JsonObject).namespace as string}/${(p.metadata as JsonObject).name as string}`, p]));
  let budget = Math.max(0, options.budget);
  const out: RevocationDecision[] = [];
  for (const stale of stalePods(candidates, view)) {
    const containers = stale.containers.filter((c) => c.revoked.length > 0).map(({ container, agent, revoked }) => ({ container, agent, revoked }));
    if (containers.length === 0) continue;
    const pod = byKey.get(`${stale.namespace}/${stale.name}`)!;
    const md = pod.metadata as JsonObject;
    const busy = agentsOf(pod, stale).filter((a) => {
      const status = view.agent(stale.namespace, a)?.taskStatus;
      return status === undefined || !IDLE_TASK_STATUSES.includes(status);
    });
    const verdict: RevocationVerdict = busy.length > 0 ? 'busy' : budget > 0 ? 'evict' : 'capped';
    if (verdict === 'evict') budget--;
    out.push({ namespace: stale.namespace, name: stale.name, uid: typeof md.uid === 'string' ? md.uid : undefined, verdict, containers, busy });
  }
  return out;
}

/** The Event message for a restart: what each agent held and why it no longer gets it. */
export function revocationText(decision: RevocationDecision, agent: string): string {
  const held = decision.containers
    .filter((c) => c.agent === agent)
    .flatMap((c) => c.revoked.filter((r) => r.what === 'server').map((r) => `${r.name} (${r.cause})`));
  const tokens = decision.containers.filter((c) => c.agent === agent).flatMap((c) => c.revoked.filter((r) => r.what === 'token').map((r) => r.name));
  const what = [held.length > 0 ? `connector ${held.join(', ')}` : '', tokens.length > 0 ? `token reference ${tokens.join(', ')}` : ''].filter(Boolean).join(' and ');
  return `restarting pod ${decision.name} (eviction): it holds ${what || 'connector variables'} that agent ${agent} no longer gets; the new pod gets what is true now`;
}
