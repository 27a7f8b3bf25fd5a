// Reference 3, the ceiling: the fastest correct mutating webhook we know how to write on
// node:https for the benchmarked agent pod. The ratios of `npm run bench` are computed
// against it. Per request it does only what the job needs:
//
//   - read the body (bounded), one Buffer, no concat when it came in one chunk;
//   - JSON.parse it (the one unavoidable cost: the pod is ~8.5 KB of JSON);
//   - decide on the parsed object in place, no copy: a solo agent pod (the
//     `komputer.ai/squad` label, not "true") of the benchmarked agent in its namespace, not
//     opted out; its first container is the agent container;
//   - scan that container's env for the names it must carry (replace a different value in
//     place, drop later duplicates, append what is missing: the same rules as ours'
//     envOps), and the annotation;
//   - emit the JSON Patch text directly, by concatenation: each env entry's JSON is
//     stringified once at start-up (the agent's desired env; a real service would cache it
//     per agent), paths are built per request;
//   - base64 it, build the AdmissionReview text by concatenation, write it as one Buffer.
//
// No framework, logging, metrics, cluster lookups or deep copy (compare minimal.ts, the
// deep-copy reference). For this fixture it must produce, byte for byte, the patch ours
// produces: bench/run.ts checks that before any load and aborts on a mismatch.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { BENCH_AGENT, BENCH_NAMESPACE, expectedInjectedEnv } from '../fixtures.ts';
import { parseArgs, serve } from './common.ts';

type Json = { [key: string]: unknown };

const MAX_BODY_BYTES = 3 * 1024 * 1024;
const LABEL_SQUAD = 'komputer.ai/squad';
const LABEL_AGENT = 'komputer.ai/agent-name';
const ANNOTATION_INJECT = 'komputer.ai/inject-connectors';
const ANNOTATION_INJECTED = 'komputer.ai/injected-connectors';
const ANNOTATION_PATH = '/metadata/annotations/komputer.ai~1injected-connectors';
const REFS = 'github,notion,slack';
const REFS_JSON = JSON.stringify(REFS);

// The benchmarked agent's desired env, stringified once.
const desired = expectedInjectedEnv();
const desiredNames = desired.map((e) => e.name as string);
const desiredJson = desired.map((e) => JSON.stringify(e));

const HEAD = '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":';

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Env ops for the agent container: '' when it already carries exactly the desired env. */
function envOps(env: unknown, envPath: string): string | undefined {
  if (env === undefined || env === null) return `{"op":"add","path":"${envPath}","value":[${desiredJson.join(',')}]}`;
  if (!Array.isArray(env)) return undefined; // not a list: leave the pod alone
  let replaces = '';
  let appends = '';
  let removes: number[] | undefined;
  for (let d = 0; d < desiredNames.length; d++) {
    const name = desiredNames[d]!;
    let first = -1;
    for (let j = 0; j < env.length; j++) {
      const have: unknown = env[j];
      if (!isObject(have) || have.name !== name) continue;
      if (first < 0) {
        first = j;
        // Key order matters for the comparison only when the value is otherwise the same:
        // then a replace rewrites it in our order, which is harmless.
        if (JSON.stringify(have) !== desiredJson[d]) replaces += `,{"op":"replace","path":"${envPath}/${j}","value":${desiredJson[d]}}`;
      } else {
        (removes ??= []).push(j);
      }
    }
    if (first < 0) appends += `,{"op":"add","path":"${envPath}/-","value":${desiredJson[d]}}`;
  }
  let ops = replaces;
  if (removes) for (const j of removes.sort((a, b) => b - a)) ops += `,{"op":"remove","path":"${envPath}/${j}"}`;
  ops += appends;
  return ops.length > 0 ? ops.slice(1) : '';
}

/** The patch text for the review's pod, or undefined when the pod is left alone. */
function patchFor(namespace: unknown, pod: unknown): string | undefined {
  if (namespace !== BENCH_NAMESPACE || !isObject(pod)) return undefined;
  const metadata = pod.metadata;
  if (!isObject(metadata)) return undefined;
  const labels = metadata.labels;
  if (!isObject(labels)) return undefined;
  const squad = labels[LABEL_SQUAD];
  // Only the benchmarked solo agent: no lookups here (a squad pod or another agent passes).
  if (typeof squad !== 'string' || squad === 'true' || labels[LABEL_AGENT] !== BENCH_AGENT) return undefined;
  const annotations = metadata.annotations;
  if (isObject(annotations) && annotations[ANNOTATION_INJECT] === 'false') return undefined;
  const spec = pod.spec;
  if (!isObject(spec) || !Array.isArray(spec.containers) || spec.containers.length === 0) return undefined;
  const container: unknown = spec.containers[0];
  const ops = envOps(isObject(container) ? container.env : undefined, '/spec/containers/0/env');
  if (!ops) return undefined; // nothing to change (or an env that is not a list)
  const annotation = isObject(annotations)
    ? annotations[ANNOTATION_INJECTED] === REFS
      ? ''
      : `,{"op":"add","path":"${ANNOTATION_PATH}","value":${REFS_JSON}}`
    : `,{"op":"add","path":"/metadata/annotations","value":{${JSON.stringify(ANNOTATION_INJECTED)}:${REFS_JSON}}}`;
  return `[${ops}${annotation}]`;
}

function reply(res: ServerResponse, status: number, body: string, type = 'application/json'): void {
  const buf = Buffer.from(body);
  res.writeHead(status, ['content-type', type, 'content-length', String(buf.length)]);
  res.end(buf);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'POST' || req.url !== '/mutate/pods') {
    req.resume();
    reply(res, 404, 'not found\n', 'text/plain');
    return;
  }
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  let tooLarge = false;
  req.on('data', (c: Buffer) => {
    if (tooLarge) return;
    size += c.length;
    if (size > MAX_BODY_BYTES) {
      tooLarge = true;
      reply(res, 413, 'body too large\n', 'text/plain');
      req.destroy();
      return;
    }
    if (first === undefined) first = c;
    else (chunks ??= [first]).push(c);
  });
  req.on('end', () => {
    if (tooLarge) return;
    let out: string;
    try {
      const body = chunks ? Buffer.concat(chunks) : first;
      if (body === undefined) throw new Error('empty body');
      const review = JSON.parse(body.toString('utf8')) as { request?: { uid?: unknown; namespace?: unknown; object?: unknown } };
      const request = review.request;
      if (!isObject(request) || typeof request.uid !== 'string') throw new Error('no request.uid');
      const patch = patchFor(request.namespace, request.object);
      out =
        HEAD +
        JSON.stringify(request.uid) +
        (patch === undefined ? ',"allowed":true}}' : `,"allowed":true,"patchType":"JSONPatch","patch":"${Buffer.from(patch).toString('base64')}"}}`);
    } catch {
      reply(res, 400, 'bad request\n', 'text/plain');
      return;
    }
    reply(res, 200, out);
  });
}

serve(parseArgs(process.argv.slice(2)), handle);
