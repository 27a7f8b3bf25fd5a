// The CLI commands that share the server's decision code: review and mutate.

import fastJsonPatch from 'fast-json-patch';
import { stringify } from 'yaml';
import { handlerForKind, processReview } from '../admission/handlers.ts';
import { loadStateFile, parseObjects, StateError } from '../cluster/state-file.ts';
import { injectPod, type InjectionOutcome } from '../injection/inject.ts';
import type { JsonObject } from '../model/objects.ts';
import { DEFAULT_MAX_BODY_BYTES } from '../server/app.ts';
import { parseJson } from '../server/body.ts';
import { CliError, readStdin, readText } from './io.ts';

function loadView(stateFile: string | undefined) {
  if (!stateFile) throw new CliError('--state FILE is required (the cluster objects to decide against)');
  try {
    return loadStateFile(stateFile).store;
  } catch (e) {
    if (e instanceof StateError) throw new CliError(e.message);
    throw e;
  }
}

/** `review`: one AdmissionReview on stdin -> the response the server would give, on stdout. */
export async function reviewCommand(opts: { state?: string }): Promise<string> {
  const view = loadView(opts.state);
  const text = await readStdin(DEFAULT_MAX_BODY_BYTES);
  const parsed = parseJson(text);
  if (!parsed.ok) throw new CliError(`stdin: ${parsed.reason}`);
  const outcome = processReview(parsed.value, { view }, handlerForKind);
  if (!outcome.ok) throw new CliError(`stdin: ${outcome.reason}`);
  return JSON.stringify(outcome.body, null, 2) + '\n';
}

export interface MutateResult {
  readonly pod: JsonObject;
  readonly outcome: InjectionOutcome;
  readonly namespace: string;
}

/** Runs the injection on a pod object and applies the patch, as the API server would. */
export function mutatePodObject(pod: JsonObject, namespace: string, view: ReturnType<typeof loadView>): MutateResult {
  const outcome = injectPod(pod, namespace, view);
  const result = outcome.patch.length > 0 ? (fastJsonPatch.applyPatch(pod, outcome.patch as fastJsonPatch.Operation[], true, false).newDocument as JsonObject) : pod;
  return { pod: result, outcome, namespace };
}

export function summarize(r: MutateResult): string {
  const lines: string[] = [];
  if (r.outcome.skipped && r.outcome.containers.length === 0) lines.push(`not injected: ${r.outcome.skipped}`);
  for (const c of r.outcome.containers) {
    lines.push(`container ${c.container} (agent ${c.agent}): ${c.injected.length > 0 ? `injected ${c.injected.join(', ')}` : 'no connectors'}`);
    for (const s of c.skipped) lines.push(`  skipped ${s.ref}: ${s.reason}`);
  }
  const containerWarnings = new Set(r.outcome.containers.flatMap((c) => c.skipped.map((s) => s.ref)));
  for (const w of r.outcome.warnings) if (![...containerWarnings].some((ref) => w.startsWith(`connector ${ref} `))) lines.push(`warning: ${w}`);
  lines.push(r.outcome.patch.length > 0 ? `${r.outcome.patch.length} patch operation(s)` : 'no change');
  return lines.join('\n') + '\n';
}

/** `mutate`: a pod file -> the injected pod as YAML (stdout) and a summary (stderr). */
export function mutateCommand(opts: { file?: string; state?: string; namespace?: string }): { yaml: string; summary: string } {
  if (!opts.file) throw new CliError('-f POD.yaml is required');
  const view = loadView(opts.state);
  let objects: JsonObject[];
  try {
    objects = parseObjects(readText(opts.file, 'pod file'), opts.file);
  } catch (e) {
    if (e instanceof StateError) throw new CliError(e.message);
    throw e;
  }
  const pod = objects[0];
  if (objects.length !== 1 || !pod || pod.kind !== 'Pod') throw new CliError(`${opts.file} must hold exactly one Pod`);
  const md = pod.metadata as { namespace?: unknown } | undefined;
  const namespace = opts.namespace ?? (typeof md?.namespace === 'string' ? md.namespace : 'default');
  const result = mutatePodObject(pod, namespace, view);
  return { yaml: stringify(result.pod), summary: summarize(result) };
}
