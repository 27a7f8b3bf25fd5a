// Reference 2, the deep-copy reference (the file keeps its old name, minimal.ts): a correct
// webhook as many hand-written webhooks are built: node:https, JSON.parse, a mutated deep
// copy of the pod (the same env vars and annotation ours adds for the benchmarked agent),
// fast-json-patch `compare`, base64. No framework, no logging, no metrics, no cluster
// lookups. Not the floor: the deep copy and the diff cost more than the decision; the
// ceiling (ceiling.ts) emits the ops directly and is what the bench ratios are against.

import fastJsonPatch from 'fast-json-patch';
import { expectedInjectedEnv } from '../fixtures.ts';
import { parseArgs, serve } from './common.ts';

type Json = { [key: string]: unknown };
type Env = { name: string };

const injected = expectedInjectedEnv() as Env[];
const injectedRefs = 'github,notion,slack';

function mutate(pod: Json): Json {
  const copy = fastJsonPatch.deepClone(pod) as Json;
  const labels = ((copy.metadata as Json | undefined)?.labels ?? {}) as Json;
  if (typeof labels['komputer.ai/squad'] !== 'string') return copy;
  const container = ((copy.spec as Json).containers as Json[])[0]!;
  const env = ((container.env as Env[] | undefined) ?? []).filter((e) => !injected.some((i) => i.name === e.name));
  container.env = [...env, ...injected];
  const md = copy.metadata as Json;
  md.annotations = { ...((md.annotations as Json | undefined) ?? {}), 'komputer.ai/injected-connectors': injectedRefs };
  return copy;
}

serve(parseArgs(process.argv.slice(2)), (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: string;
    try {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string; object: Json } };
      const pod = review.request.object;
      const ops = fastJsonPatch.compare(pod, mutate(pod));
      const response: Json = { uid: review.request.uid, allowed: true };
      if (ops.length > 0) {
        response.patchType = 'JSONPatch';
        response.patch = Buffer.from(JSON.stringify(ops)).toString('base64');
      }
      body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('bad request\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
