// The pure pod mutation: raw pod + namespace + cluster view -> JSON Patch, warnings, and a
// summary. Nothing here copies the pod: ops are emitted against the raw object the API
// server sent, so fields this code does not know survive untouched.

import { ANNOTATION_INJECTED, ENV_MCP_SERVERS } from '../config/names.ts';
import { isObject, type JsonObject } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';
import { detectAgentPod, detectNewSquadMembers, type Detection } from './detect.ts';
import { pointer, type PatchOp } from './jsonpatch.ts';
import { mcpServersJson, tokenEnvName, type Attachment } from './names.ts';
import { refusedConnector, resolveConnectors, type Skip } from './resolve.ts';

/** Upper bound on the KOMPUTER_MCP_SERVERS value: connectors past it are skipped, with a warning. */
export const MAX_MCP_SERVERS_BYTES = 32 * 1024;

export type EnvVar =
  | { name: string; value: string }
  | { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } };

export interface ContainerSummary {
  readonly container: string;
  readonly agent: string;
  readonly injected: string[];
  readonly skipped: Skip[];
  /** Variables the operator wrote for refused connectors, taken out of this container. */
  readonly removed: string[];
}

export interface InjectionOutcome {
  /** Empty when the pod is already as it should be. */
  readonly patch: PatchOp[];
  readonly warnings: string[];
  /** Set when the pod was left alone as a whole, with the reason. */
  readonly skipped?: string;
  /** The view says the namespace is not enabled (the API server, which called us, may know better). */
  readonly namespaceNotEnabled?: boolean;
  readonly containers: ContainerSummary[];
  /** Which containers were judged as whose (kept so callers such as the events need not detect again). */
  readonly detection: Detection;
}

/** The env vars an agent container must carry, token references first. */
export function desiredEnv(attachments: readonly Attachment[], servers: string = mcpServersJson(attachments)): EnvVar[] {
  const env: EnvVar[] = [];
  for (const a of attachments) {
    if (a.tokenRef) env.push({ name: tokenEnvName(a.connector.name), valueFrom: { secretKeyRef: { name: a.tokenRef.name, key: a.tokenRef.key } } });
  }
  env.push({ name: ENV_MCP_SERVERS, value: servers });
  return env;
}

/** Structural equality for small JSON values (env entries). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/**
 * Ops that make `container.env` carry `desired`: same-named entries are replaced in place
 * (so users' order and `$(VAR)` references hold), later duplicates removed, new ones appended.
 */
export function envOps(env: unknown, containerPath: string, desired: readonly EnvVar[], drop: readonly number[] = []): PatchOp[] | string {
  const envPath = `${containerPath}/env`;
  if (env === undefined || env === null) return desired.length === 0 ? [] : [{ op: 'add', path: envPath, value: desired }];
  if (!Array.isArray(env)) return 'env is not a list';
  const replaces: PatchOp[] = [];
  // `drop` never holds an index of a desired name (operatorLeftovers leaves those to us).
  const removes: number[] = [...drop];
  const appends: PatchOp[] = [];
  for (const want of desired) {
    let first = -1;
    for (let j = 0; j < env.length; j++) {
      const have: unknown = env[j];
      if (!isObject(have) || have.name !== want.name) continue;
      if (first < 0) {
        first = j;
        if (!jsonEqual(have, want)) replaces.push({ op: 'replace', path: `${envPath}/${j}`, value: want });
      } else {
        removes.push(j);
      }
    }
    if (first < 0) appends.push({ op: 'add', path: `${envPath}/-`, value: want });
  }
  // Replaces use original indices, so they go first; removals from the end keep the rest valid.
  removes.sort((a, b) => b - a);
  return [...replaces, ...removes.map((j): PatchOp => ({ op: 'remove', path: `${envPath}/${j}` })), ...appends];
}

function annotationOps(metadata: unknown, value: string): PatchOp[] {
  if (!isObject(metadata)) return [{ op: 'add', path: '/metadata', value: { annotations: { [ANNOTATION_INJECTED]: value } } }];
  const annotations = metadata.annotations;
  if (!isObject(annotations)) return [{ op: 'add', path: '/metadata/annotations', value: { [ANNOTATION_INJECTED]: value } }];
  if (annotations[ANNOTATION_INJECTED] === value) return [];
  return [{ op: 'add', path: pointer('metadata', 'annotations', ANNOTATION_INJECTED), value }];
}

/**
 * What the operator wrote into a container for connectors this service refuses: each
 * token variable exactly as it writes it (`CONNECTOR_<NAME>_TOKEN` from that Secret key,
 * nothing else), and, when nothing is injected here, a `KOMPUTER_MCP_SERVERS` that lists
 * only refused connectors. Anything a user wrote (a literal, another reference) stays.
 */
export function operatorLeftovers(env: unknown, skipped: readonly Skip[], desired: readonly EnvVar[]): { indices: number[]; names: string[]; byRef: Map<string, string> } {
  const found = { indices: [] as number[], names: [] as string[], byRef: new Map<string, string>() };
  if (!Array.isArray(env)) return found;
  const refused = skipped.flatMap((s) => (s.refused ? [{ ref: s.ref, ...s.refused }] : []));
  if (refused.length === 0) return found;
  const keep = new Set(desired.map((d) => d.name));
  env.forEach((entry: unknown, i) => {
    if (!isObject(entry) || typeof entry.name !== 'string' || keep.has(entry.name)) return;
    const name = entry.name;
    const hit = refused.find((r) => r.token && r.token.name === name && 'valueFrom' in entry && !('value' in entry) && jsonEqual(entry.valueFrom, { secretKeyRef: r.token.secretKeyRef }));
    if (hit) {
      found.indices.push(i);
      if (!found.names.includes(name)) found.names.push(name);
      found.byRef.set(hit.ref, name);
      return;
    }
    if (name === ENV_MCP_SERVERS && desired.length === 0 && listsOnly(entry, new Set(refused.map((r) => r.name)))) {
      found.indices.push(i);
      if (!found.names.includes(name)) found.names.push(name);
    }
  });
  return found;
}

/** A `KOMPUTER_MCP_SERVERS` literal whose servers are all among `names`. */
function listsOnly(entry: Record<string, unknown>, names: ReadonlySet<string>): boolean {
  if (typeof entry.value !== 'string' || 'valueFrom' in entry) return false;
  let servers: unknown;
  try {
    servers = JSON.parse(entry.value);
  } catch {
    return false;
  }
  if (!isObject(servers)) return false;
  const keys = Object.keys(servers);
  return keys.length > 0 && keys.every((k) => names.has(k));
}

/** Drops trailing attachments until the MCP config fits the size bound; returns it too. */
function fitToBound(attachments: Attachment[], skipped: Skip[], agentNamespace: string): { kept: Attachment[]; servers: string } {
  const kept = [...attachments];
  let servers = mcpServersJson(kept);
  while (kept.length > 0 && servers.length > MAX_MCP_SERVERS_BYTES) {
    const dropped = kept.pop()!;
    skipped.push({ ref: dropped.ref, reason: `the connector config would exceed ${MAX_MCP_SERVERS_BYTES} bytes`, kind: 'over-limit', refused: refusedConnector(dropped.connector, agentNamespace) });
    servers = mcpServersJson(kept);
  }
  return { kept, servers };
}

/**
 * Pod CREATE: every agent container gets its connectors, and the pod, when its env was
 * changed, the annotation naming them. A container whose agent resolves no connector is
 * left exactly as it came (the operator adds no empty KOMPUTER_MCP_SERVERS either).
 */
export function injectPod(pod: JsonObject, namespace: string, view: ClusterView): InjectionOutcome {
  const outcome = injectDetected(pod, namespace, view, detectAgentPod(pod, namespace, view.namespace(namespace)));
  // The annotation records what this service changed: nothing injected (not even an empty
  // annotation), or an env already right, as the operator injects it, is left as it came.
  // (Taking out what the operator wrote for refused connectors records nothing either.)
  if (outcome.injectedRefs.length === 0 || outcome.result.patch.length === 0) return outcome.result;
  return { ...outcome.result, patch: [...outcome.result.patch, ...annotationOps(pod.metadata, outcome.injectedRefs.join(','))] };
}

/**
 * `pods/ephemeralcontainers` UPDATE: a member added to a running squad gets its connectors
 * in its new ephemeral container, exactly as a squad container would. The patch touches
 * nothing else: the API server keeps only ephemeral-container changes on this subresource
 * (so the pod annotation cannot follow), and everything already in the pod is immutable.
 */
export function injectEphemeralContainers(pod: JsonObject, oldPod: JsonObject, namespace: string, view: ClusterView): InjectionOutcome {
  const detection = detectNewSquadMembers(pod, oldPod, namespace, view.namespace(namespace), (name) => view.agent(namespace, name));
  return injectDetected(pod, namespace, view, detection).result;
}

interface Detected {
  readonly result: InjectionOutcome;
  /** Every connector reference injected into some container, in first-seen order. */
  readonly injectedRefs: string[];
}

/** The decision both paths share: the detected agent containers -> env ops, warnings, summaries. */
function injectDetected(pod: JsonObject, namespace: string, view: ClusterView, detection: Detection): Detected {
  const none = (result: Omit<InjectionOutcome, 'detection'>): Detected => ({ result: { ...result, detection }, injectedRefs: [] });
  if (detection.kind === 'not-agent') return none({ patch: [], warnings: [], skipped: 'not an agent pod', containers: [] });
  if (detection.kind === 'skip') {
    const warnings = detection.warn ? [`connectors not injected: ${detection.reason}`] : [];
    return none({ patch: [], warnings, skipped: detection.reason, containers: [], ...(detection.namespaceNotEnabled ? { namespaceNotEnabled: true } : {}) });
  }

  const spec = pod.spec as JsonObject;
  const patch: PatchOp[] = [];
  const warnings = [...detection.warnings];
  const summaries: ContainerSummary[] = [];
  const injectedRefs: string[] = [];

  for (const { agent: agentName, index, field } of detection.containers) {
    const container = (spec[field] as unknown[])[index];
    const containerName = isObject(container) && typeof container.name === 'string' ? container.name : `#${index}`;
    const agent = view.agent(namespace, agentName);
    if (!agent) {
      warnings.push(`agent ${agentName}: KomputerAgent not found in namespace ${namespace}, nothing injected for it`);
      continue;
    }
    const { attachments, skipped } = resolveConnectors(agent, view);
    const { kept, servers } = fitToBound(attachments, skipped, namespace);
    const env = isObject(container) ? container.env : undefined;
    // No connector resolves: no config is added (the operator adds no empty one either).
    const desired = kept.length === 0 ? [] : desiredEnv(kept, servers);
    const leftovers = operatorLeftovers(env, skipped, desired);
    const ops = envOps(env, pointer('spec', field, index), desired, leftovers.indices);
    if (typeof ops === 'string') {
      warnings.push(`container ${containerName}: ${ops}, nothing injected`);
      continue;
    }
    patch.push(...ops);
    for (const s of skipped) {
      const removed = leftovers.byRef.get(s.ref);
      const tail = removed ? `; removed ${removed}, which the operator wrote for it, from container ${containerName}` : '';
      warnings.push(s.kind === 'manager' ? `agent ${agentName}: ${s.reason}` : `connector ${s.ref} not injected into agent ${agentName}: ${s.reason}${tail}`);
    }
    if (leftovers.names.includes(ENV_MCP_SERVERS)) warnings.push(`container ${containerName}: removed ${ENV_MCP_SERVERS}, which listed only connectors agent ${agentName} may not use`);
    for (const a of kept) if (!injectedRefs.includes(a.ref)) injectedRefs.push(a.ref);
    summaries.push({ container: containerName, agent: agentName, injected: kept.map((a) => a.ref), skipped, removed: leftovers.names });
  }

  if (summaries.length === 0) return none({ patch: [], warnings, skipped: 'no agent container could be injected', containers: [] });
  const skippedAll = injectedRefs.length === 0 ? { skipped: 'no connector resolves for any agent container' } : {};
  return { result: { patch, warnings, containers: summaries, detection, ...skippedAll }, injectedRefs };
}
