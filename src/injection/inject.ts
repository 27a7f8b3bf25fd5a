// The pure pod mutation: raw pod + namespace + cluster view -> JSON Patch, warnings, and a
// summary. Nothing here copies the pod: ops are emitted against the raw object the API
// server sent, so fields this code does not know survive untouched.

import { ANNOTATION_INJECTED, ENV_MCP_SERVERS } from '../config/names.ts';
import { isObject, type JsonObject } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';
import { detectAgentPod, detectNewSquadMembers, type AgentContainer, type Detection } from './detect.ts';
import { finding, warningsOf, type Finding } from './findings.ts';
import { pointer, type PatchOp } from './jsonpatch.ts';
import { mcpServersJson, tokenEnvName, type Attachment } from './names.ts';
import { refusedConnector, resolveConnectors, skip, type Note, type OperatorToken, type Skip } from './resolve.ts';

/** Upper bound on the KOMPUTER_MCP_SERVERS value: connectors past it are skipped, with a warning. */
export const MAX_MCP_SERVERS_BYTES = 32 * 1024;

export type EnvVar =
  | { name: string; value: string }
  | { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } };

export interface ContainerSummary {
  readonly container: string;
  /** Where the container is: `spec[field][index]`. */
  readonly field: AgentContainer['field'];
  readonly index: number;
  readonly agent: string;
  readonly injected: string[];
  readonly skipped: Skip[];
  /** Injected connectors a policy entry in warn or audit mode matches. */
  readonly notes: Note[];
  /** Variables the operator wrote for refused connectors, taken out of this container. */
  readonly removed: string[];
  /** The token variables this service writes into the container or takes out of it. */
  readonly tokens: string[];
}

/** Fixed shape: every field is always present, so the request path keeps one hidden class. */
export interface InjectionOutcome {
  /** Empty when the pod is already as it should be. */
  readonly patch: PatchOp[];
  /** The admission warnings: the texts of the warned findings, in order. */
  readonly warnings: string[];
  /** Everything the decision found, as data (see findings.ts). */
  readonly findings: Finding[];
  /** Set when the pod was left alone as a whole, with the reason. */
  readonly skipped: string | undefined;
  /** The view says the namespace is not enabled (the API server, which called us, may know better). */
  readonly namespaceNotEnabled: boolean;
  readonly containers: ContainerSummary[];
  /** Which containers were judged as whose (kept so callers such as the events need not detect again). */
  readonly detection: Detection;
  /** Every connector reference injected into some container, in first-seen order. */
  readonly injectedRefs: string[];
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
  const refused: { ref: string; name: string; token: OperatorToken | undefined }[] = [];
  for (const s of skipped) if (s.refused !== undefined) refused.push({ ref: s.ref, name: s.refused.name, token: s.refused.token });
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
    skipped.push(skip('over-limit', dropped.ref, `the connector config would exceed ${MAX_MCP_SERVERS_BYTES} bytes`, refusedConnector(dropped.connector, agentNamespace)));
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
  if (outcome.injectedRefs.length > 0 && outcome.patch.length > 0) outcome.patch.push(...annotationOps(pod.metadata, outcome.injectedRefs.join(',')));
  return outcome;
}

/**
 * `pods/ephemeralcontainers` UPDATE: a member added to a running squad gets its connectors
 * in its new ephemeral container, exactly as a squad container would. The patch touches
 * nothing else: the API server keeps only ephemeral-container changes on this subresource
 * (so the pod annotation cannot follow), and everything already in the pod is immutable.
 */
export function injectEphemeralContainers(pod: JsonObject, oldPod: JsonObject, namespace: string, view: ClusterView): InjectionOutcome {
  const detection = detectNewSquadMembers(pod, oldPod, namespace, view.namespace(namespace), (name) => view.agent(namespace, name));
  return injectDetected(pod, namespace, view, detection);
}

function outcomeOf(patch: PatchOp[], findings: Finding[], skipped: string | undefined, containers: ContainerSummary[], detection: Detection, injectedRefs: string[]): InjectionOutcome {
  const namespaceNotEnabled = detection.kind === 'skip' && detection.finding === 'namespace-not-enabled';
  return { patch, warnings: warningsOf(findings), findings, skipped, namespaceNotEnabled, containers, detection, injectedRefs };
}

/** A pod left alone as a whole: one pod-level finding (about each of its agents), no patch. */
function podLeftAlone(detection: Detection): InjectionOutcome {
  if (detection.kind === 'not-agent') return outcomeOf([], [], 'not an agent pod', [], detection, []);
  if (detection.kind !== 'skip') throw new Error('podLeftAlone: the pod is to be injected');
  return outcomeOf([], [finding(detection.finding, `connectors not injected: ${detection.reason}`, undefined, undefined, undefined, undefined)], detection.reason, [], detection, []);
}

/** What one agent container gets: its env ops, its summary, and its findings (pushed onto `findings`). */
function injectContainer(spec: JsonObject, target: AgentContainer, namespace: string, view: ClusterView, patch: PatchOp[], findings: Finding[]): ContainerSummary | undefined {
  const { agent: agentName, index, field } = target;
  const container = (spec[field] as unknown[])[index];
  const containerName = isObject(container) && typeof container.name === 'string' ? container.name : `#${index}`;
  const agent = view.agent(namespace, agentName);
  if (!agent) {
    findings.push(finding('agent-not-found', `agent ${agentName}: KomputerAgent not found in namespace ${namespace}, nothing injected for it`, agentName, containerName, undefined, undefined));
    return undefined;
  }
  const { attachments, skipped, notes } = resolveConnectors(agent, view);
  const { kept, servers } = fitToBound(attachments, skipped, namespace);
  const env = isObject(container) ? container.env : undefined;
  // No connector resolves: no config is added (the operator adds no empty one either).
  const desired = kept.length === 0 ? [] : desiredEnv(kept, servers);
  const leftovers = operatorLeftovers(env, skipped, desired);
  const ops = envOps(env, pointer('spec', field, index), desired, leftovers.indices);
  if (typeof ops === 'string') {
    findings.push(finding('env-invalid', `container ${containerName}: ${ops}, nothing injected`, agentName, containerName, undefined, undefined));
    return undefined;
  }
  for (const op of ops) patch.push(op);
  for (const s of skipped) findings.push(skipFinding(s, agentName, containerName, leftovers.byRef.get(s.ref)));
  for (const n of notes) findings.push(finding(n.kind, `connector ${n.ref} injected into agent ${agentName}, but ${n.reason}`, agentName, containerName, n.ref, n.entry));
  if (leftovers.names.includes(ENV_MCP_SERVERS)) {
    findings.push(finding('config-removed', `container ${containerName}: removed ${ENV_MCP_SERVERS}, which listed only connectors agent ${agentName} may not use`, agentName, containerName, undefined, undefined));
  }
  const tokens: string[] = [];
  for (const d of desired) if (d.name !== ENV_MCP_SERVERS) tokens.push(d.name);
  for (const n of leftovers.names) if (n !== ENV_MCP_SERVERS) tokens.push(n);
  return { container: containerName, field, index, agent: agentName, injected: kept.map((a) => a.ref), skipped, notes, removed: leftovers.names, tokens };
}

/** A skipped connector's finding; `removed`: the operator's variable for it taken out of the container. */
function skipFinding(s: Skip, agentName: string, containerName: string, removed: string | undefined): Finding {
  if (s.kind === 'manager') return finding(s.kind, `agent ${agentName}: ${s.reason}`, agentName, containerName, undefined, s.entry);
  const tail = removed === undefined ? '' : `; removed ${removed}, which the operator wrote for it, from container ${containerName}`;
  return finding(s.kind, `connector ${s.ref} not injected into agent ${agentName}: ${s.reason}${tail}`, agentName, containerName, s.ref, s.entry);
}

/** The decision both paths share: the detected agent containers -> env ops, findings, summaries. */
function injectDetected(pod: JsonObject, namespace: string, view: ClusterView, detection: Detection): InjectionOutcome {
  if (detection.kind !== 'inject') return podLeftAlone(detection);
  const spec = pod.spec as JsonObject;
  const patch: PatchOp[] = [];
  const findings: Finding[] = [...detection.findings];
  const summaries: ContainerSummary[] = [];
  const injectedRefs: string[] = [];
  for (const target of detection.containers) {
    const summary = injectContainer(spec, target, namespace, view, patch, findings);
    if (summary === undefined) continue;
    summaries.push(summary);
    for (const ref of summary.injected) if (!injectedRefs.includes(ref)) injectedRefs.push(ref);
  }
  if (summaries.length === 0) return outcomeOf([], findings, 'no agent container could be injected', [], detection, []);
  return outcomeOf(patch, findings, injectedRefs.length === 0 ? 'no connector resolves for any agent container' : undefined, summaries, detection, injectedRefs);
}
