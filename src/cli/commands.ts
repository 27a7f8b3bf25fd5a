// The CLI commands that share the server's decision code: review and mutate.

import fastJsonPatch from 'fast-json-patch';
import { stringify } from 'yaml';
import { handlerForKind, processReview } from '../admission/handlers.ts';
import { loadStateFile, parseObjects, policyTextFromState, StateError, type LoadedState } from '../cluster/state-file.ts';
import { computeAll, statusEquals } from '../attachments/counts.ts';
import { ClusterStore } from '../cluster/store.ts';
import { AGENT_KIND, CONNECTOR_KIND, GROUP, POLICY_CONFIGMAP_NAME, VERSION } from '../config/names.ts';
import type { ClusterView } from '../model/view.ts';
import { PolicyHolder } from '../policy/holder.ts';
import { BUILTIN_POLICY, type PolicyList } from '../policy/incompatible.ts';
import { FINDINGS, type Finding } from '../injection/findings.ts';
import { injectEphemeralContainers, injectPod, type InjectionOutcome } from '../injection/inject.ts';
import { isObject, objectKey, type JsonObject } from '../model/objects.ts';
import { DEFAULT_MAX_BODY_BYTES } from '../server/app.ts';
import { parseJson } from '../server/body.ts';
import { CliError, readStdin, readText } from './io.ts';

/** The state file as the server would see it: the cluster view and the policy in force. */
export function loadCliState(stateFile: string | undefined): { view: ClusterStore; policy: PolicyList } {
  if (!stateFile) throw new CliError('--state FILE is required (the cluster objects to decide against)');
  let state: LoadedState;
  try {
    state = loadStateFile(stateFile);
  } catch (e) {
    if (e instanceof StateError) throw new CliError(e.message);
    throw e;
  }
  const holder = new PolicyHolder();
  const status = holder.apply(policyTextFromState(state));
  // The server would keep the built-ins and report; a CI pipeline wants to hear it loudly.
  if (!status.valid) throw new CliError(`${stateFile}: ConfigMap ${POLICY_CONFIGMAP_NAME} is invalid: ${status.reason}`);
  const policy = holder.current;
  state.store.policySource = () => policy;
  return { view: state.store, policy };
}

/** The objects in a YAML/JSON file; unusable input becomes a one-line CliError. */
function readObjectsFile(path: string, what: string): JsonObject[] {
  try {
    return parseObjects(readText(path, what), path);
  } catch (e) {
    if (e instanceof StateError) throw new CliError(e.message);
    throw e;
  }
}

/** `review`: one AdmissionReview on stdin -> the response the server would give, on stdout. */
export async function reviewCommand(opts: { state?: string }): Promise<string> {
  const { view, policy } = loadCliState(opts.state);
  const text = await readStdin(DEFAULT_MAX_BODY_BYTES);
  const parsed = parseJson(text);
  if (!parsed.ok) throw new CliError(`stdin: ${parsed.reason}`);
  const outcome = processReview(parsed.value, { view, policy: () => policy }, handlerForKind);
  if (!outcome.ok) throw new CliError(`stdin: ${outcome.reason}`);
  return JSON.stringify(outcome.body, null, 2) + '\n';
}

export interface MutateResult {
  readonly pod: JsonObject;
  readonly outcome: InjectionOutcome;
  readonly namespace: string;
}

/**
 * Runs the injection on a pod object and applies the patch, as the API server would. With
 * `oldPod`, as a pods/ephemeralcontainers UPDATE from `oldPod` to `pod` (a member added to
 * a running squad); otherwise as a pod CREATE.
 */
export function mutatePodObject(pod: JsonObject, namespace: string, view: ClusterView, oldPod?: JsonObject): MutateResult {
  const outcome = oldPod ? injectEphemeralContainers(pod, oldPod, namespace, view) : injectPod(pod, namespace, view);
  const result = outcome.patch.length > 0 ? (fastJsonPatch.applyPatch(pod, outcome.patch as fastJsonPatch.Operation[], true, false).newDocument as JsonObject) : pod;
  return { pod: result, outcome, namespace };
}

export function summarize(r: MutateResult): string {
  const lines: string[] = [];
  if (r.outcome.skipped && r.outcome.containers.length === 0) lines.push(`not injected: ${r.outcome.skipped}`);
  // Each finding once, as the core wrote it: under its container when that was injected, else on its own.
  const summarized = new Set(r.outcome.containers.map((c) => c.container));
  const label = (f: Finding): string => (FINDINGS[f.kind].skip ? 'skipped' : FINDINGS[f.kind].warn ? 'warning' : 'reported');
  for (const c of r.outcome.containers) {
    lines.push(`container ${c.container} (agent ${c.agent}): ${c.injected.length > 0 ? `injected ${c.injected.join(', ')}` : 'no connectors'}`);
    for (const f of r.outcome.findings) if (f.container === c.container && f.agent === c.agent) lines.push(`  ${label(f)}: ${f.text}`);
  }
  for (const f of r.outcome.findings) if (f.container === undefined || !summarized.has(f.container)) if (FINDINGS[f.kind].warn) lines.push(`warning: ${f.text}`);
  lines.push(r.outcome.patch.length > 0 ? `${r.outcome.patch.length} patch operation(s)` : 'no change');
  return lines.join('\n') + '\n';
}

function readPodFile(path: string): JsonObject {
  const objects = readObjectsFile(path, 'pod file');
  const pod = objects[0];
  if (objects.length !== 1 || !pod || pod.kind !== 'Pod') throw new CliError(`${path} must hold exactly one Pod`);
  return pod;
}

/**
 * `mutate`: a pod file -> the injected pod as YAML (stdout) and a summary (stderr). With
 * `--old OLD.yaml`: the pod as it was before ephemeral containers were added (what a
 * member joining a running squad gets).
 */
export function mutateCommand(opts: { file?: string; state?: string; namespace?: string; old?: string }): { yaml: string; summary: string } {
  if (!opts.file) throw new CliError('-f POD.yaml is required');
  const { view } = loadCliState(opts.state);
  const pod = readPodFile(opts.file);
  const oldPod = opts.old ? readPodFile(opts.old) : undefined;
  const md = pod.metadata as { namespace?: unknown } | undefined;
  const namespace = opts.namespace ?? (typeof md?.namespace === 'string' ? md.namespace : 'default');
  const result = mutatePodObject(pod, namespace, view, oldPod);
  return { yaml: stringify(result.pod), summary: summarize(result) };
}

/**
 * `validate`: judge KomputerConnector/KomputerAgent objects from a file as admission would
 * (CREATE). Returns the report and whether any object was denied (exit 1, for CI pipelines).
 */
export function validateCommand(opts: { file?: string; state?: string }): { report: string; denied: boolean } {
  if (!opts.file) throw new CliError('-f FILE is required');
  const { view, policy } = opts.state ? loadCliState(opts.state) : { view: new ClusterStore(), policy: BUILTIN_POLICY };
  const objects = readObjectsFile(opts.file, 'file');
  const judged = objects.filter((o) => o.kind === CONNECTOR_KIND || o.kind === AGENT_KIND);
  if (judged.length === 0) throw new CliError(`${opts.file} holds no ${CONNECTOR_KIND} or ${AGENT_KIND}`);
  const lines: string[] = [];
  let anyDenied = false;
  judged.forEach((obj, i) => {
    const md = isObject(obj.metadata) ? obj.metadata : {};
    const namespace = typeof md.namespace === 'string' ? md.namespace : 'default';
    const request = podlessReview(obj, namespace, `validate-${i}`);
    const outcome = processReview(request, { view, policy: () => policy }, handlerForKind);
    if (!outcome.ok) throw new CliError(`${opts.file}: ${outcome.reason}`);
    const r = outcome.body.response;
    const name = `${obj.kind} ${namespace}/${typeof md.name === 'string' ? md.name : '(generated)'}`;
    if (r.allowed) lines.push(`${name}: allowed`);
    else {
      anyDenied = true;
      lines.push(`${name}: denied: ${r.status?.message ?? ''}`);
    }
    for (const w of r.warnings ?? []) lines.push(`  warning: ${w}`);
  });
  return { report: lines.join('\n') + '\n', denied: anyDenied };
}

function podlessReview(obj: JsonObject, namespace: string, uid: string): JsonObject {
  const md = isObject(obj.metadata) ? obj.metadata : {};
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: GROUP, version: VERSION, kind: obj.kind },
      operation: 'CREATE',
      namespace,
      name: typeof md.name === 'string' ? md.name : '',
      object: obj,
    },
  };
}

/** `counts`: what the attachment controller would write for every connector in the state. */
export function countsCommand(opts: { state?: string; output?: string }): string {
  const { view } = loadCliState(opts.state);
  const desired = computeAll(view.connectors.values(), view.agents.values());
  const rows = [...view.connectors.values()]
    .sort((a, b) => objectKey(a.namespace, a.name).localeCompare(objectKey(b.namespace, b.name)))
    .map((c) => {
      const want = desired.get(objectKey(c.namespace, c.name))!;
      return { connector: objectKey(c.namespace, c.name), attachedAgents: want.attachedAgents, agentNames: [...want.agentNames], write: !statusEquals(c.status, want) };
    });
  if (opts.output === 'json') return JSON.stringify(rows, null, 2) + '\n';
  if (rows.length === 0) return 'no connectors in the state file\n';
  return rows.map((r) => `${r.connector}: ${r.attachedAgents} [${r.agentNames.join(', ')}]${r.write ? ' (would write)' : ' (unchanged)'}`).join('\n') + '\n';
}
