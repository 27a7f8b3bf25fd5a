// Golden cases: each test/golden/<case>/ holds pod.yaml, state.yaml and the expected
// injected pod (expected.yaml) and warnings (warnings.txt). Every case runs through the
// CLI (`mutate` and `review`, as real processes), through the HTTPS server, and through the
// pure core; then once more on its own output, which must yield no patch (reinvocation).
// A case with old.yaml is a pods/ephemeralcontainers UPDATE from old.yaml to pod.yaml (a
// member added to a running squad): its patch may touch only the new ephemeral containers.
// UPDATE_GOLDEN=1 rewrites the expected files (never in CI); review the diff by eye.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fastJsonPatch from 'fast-json-patch';
import { Pod } from 'kubernetes-models/v1/Pod';
import { parse, stringify } from 'yaml';
import { mutatePodObject } from '../../src/cli/commands.ts';
import { loadStateFile } from '../../src/cluster/state-file.ts';
import type { JsonObject } from '../../src/model/objects.ts';
import { decodePatch, podReview } from '../helpers/review.ts';
import { startTestServer } from '../helpers/server.ts';
import { post, writeTestCerts, type TestCerts } from '../helpers/tls.ts';

const GOLDEN = join(import.meta.dirname, '..', 'golden');
const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const UPDATE = process.env.UPDATE_GOLDEN === '1' && !process.env.CI;

interface CaseOptions {
  namespace?: string;
  dryRun?: boolean;
  schema?: boolean;
  /** The pod must come back exactly as it went in: no patch at all. */
  noPatch?: boolean;
}

function readCase(dir: string) {
  const pod = parse(readFileSync(join(dir, 'pod.yaml'), 'utf8')) as JsonObject;
  const opts: CaseOptions = existsSync(join(dir, 'case.yaml')) ? (parse(readFileSync(join(dir, 'case.yaml'), 'utf8')) as CaseOptions) : {};
  const md = pod.metadata as { namespace?: string };
  const namespace = opts.namespace ?? md.namespace ?? 'default';
  const oldFile = join(dir, 'old.yaml');
  const old = existsSync(oldFile) ? (parse(readFileSync(oldFile, 'utf8')) as JsonObject) : undefined;
  return { pod, old, oldFile, opts, namespace, stateFile: join(dir, 'state.yaml') };
}

/** The AdmissionReview the API server would send for the case. */
function caseReview(c: ReturnType<typeof readCase>, pod: JsonObject, uid?: string): JsonObject {
  const options = { dryRun: c.opts.dryRun ?? false, ...(uid ? { uid } : {}) };
  return c.old ? podReview(pod, c.namespace, { ...options, operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: c.old }) : podReview(pod, c.namespace, options);
}

/** Ephemeral cases: every op must stay inside an ephemeral container that oldObject lacks. */
function assertOnlyNewEphemeralContainers(c: ReturnType<typeof readCase>, ops: readonly unknown[]): void {
  if (!c.old) return;
  const names = (p: JsonObject | undefined): string[] => (((p?.spec as JsonObject | undefined)?.ephemeralContainers ?? []) as { name: string }[]).map((e) => e.name);
  const before = new Set(names(c.old));
  const fresh = names(c.pod).flatMap((n, i) => (before.has(n) ? [] : [i]));
  for (const op of ops as { path: string }[]) {
    const m = /^\/spec\/ephemeralContainers\/(\d+)\//.exec(op.path);
    assert.ok(m && fresh.includes(Number(m[1])), `op ${op.path} touches more than the new ephemeral containers ${JSON.stringify(fresh)}`);
  }
}

function validatePod(pod: JsonObject): void {
  new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate();
}

function expectedWarnings(dir: string): string[] {
  const f = join(dir, 'warnings.txt');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l.length > 0) : [];
}

const cases = readdirSync(GOLDEN, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

describe('golden injection cases', () => {
  let certs: TestCerts;
  before(async () => {
    certs = await writeTestCerts();
  });

  test('there are golden cases to run', () => {
    assert.ok(cases.length >= 15, `expected at least 15 cases, found ${cases.length}`);
  });

  for (const name of cases) {
    const dir = join(GOLDEN, name);
    describe(name, () => {
      const c = readCase(dir);
      const view = loadStateFile(c.stateFile).store;

      test('pure core matches expected.yaml and warnings.txt', () => {
        const result = mutatePodObject(c.pod, c.namespace, view, c.old);
        assertOnlyNewEphemeralContainers(c, result.outcome.patch);
        if (c.opts.noPatch) assert.deepEqual(result.outcome.patch, []);
        if (UPDATE) {
          writeFileSync(join(dir, 'expected.yaml'), stringify(result.pod));
          writeFileSync(join(dir, 'warnings.txt'), result.outcome.warnings.map((w) => w + '\n').join(''));
        }
        const expected = parse(readFileSync(join(dir, 'expected.yaml'), 'utf8')) as JsonObject;
        assert.deepEqual(result.pod, expected);
        assert.deepEqual(result.outcome.warnings, expectedWarnings(dir));
        if (c.opts.schema !== false) validatePod(result.pod);
      });

      test('reinvocation on the injected pod yields no patch', () => {
        const expected = parse(readFileSync(join(dir, 'expected.yaml'), 'utf8')) as JsonObject;
        const again = mutatePodObject(expected, c.namespace, view, c.old);
        assert.deepEqual(again.outcome.patch, []);
      });

      test('CLI mutate prints the expected pod', () => {
        const old = c.old ? ['--old', c.oldFile] : [];
        const out = execFileSync(process.execPath, [CLI, 'mutate', '-f', join(dir, 'pod.yaml'), '--state', c.stateFile, '--namespace', c.namespace, ...old], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        assert.deepEqual(parse(out), parse(readFileSync(join(dir, 'expected.yaml'), 'utf8')));
      });

      test('CLI review answers with a patch that yields the expected pod', () => {
        const input = JSON.stringify(caseReview(c, c.pod, `uid-${name}`));
        const out = JSON.parse(execFileSync(process.execPath, [CLI, 'review', '--state', c.stateFile], { input, encoding: 'utf8' })) as { response: { uid: string; allowed: boolean; patch?: string; patchType?: string; warnings?: string[] } };
        assert.equal(out.response.uid, `uid-${name}`);
        assert.equal(out.response.allowed, true);
        const ops = decodePatch(out.response.patch);
        assertOnlyNewEphemeralContainers(c, ops);
        if (ops.length > 0) assert.equal(out.response.patchType, 'JSONPatch');
        else assert.equal(out.response.patchType, undefined);
        const patchedPod = fastJsonPatch.applyPatch(c.pod, ops as fastJsonPatch.Operation[], true, false).newDocument;
        assert.deepEqual(patchedPod, parse(readFileSync(join(dir, 'expected.yaml'), 'utf8')));
        assert.deepEqual(out.response.warnings ?? [], expectedWarnings(dir));
      });

      test('HTTPS server answers with a patch that yields the expected pod, then none on reinvocation', async () => {
        const { server } = await startTestServer(certs, c.stateFile);
        try {
          const body = JSON.stringify(caseReview(c, c.pod, `uid-${name}`));
          const res = await post(server.port, '/mutate/pods', body, certs.ca);
          assert.equal(res.status, 200, res.text);
          const out = JSON.parse(res.text) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patch?: string; warnings?: string[] } };
          assert.equal(out.apiVersion, 'admission.k8s.io/v1');
          assert.equal(out.kind, 'AdmissionReview');
          assert.equal(out.response.uid, `uid-${name}`);
          assert.equal(out.response.allowed, true);
          const patchedPod = fastJsonPatch.applyPatch(c.pod, decodePatch(out.response.patch) as fastJsonPatch.Operation[], true, false).newDocument as JsonObject;
          assert.deepEqual(patchedPod, parse(readFileSync(join(dir, 'expected.yaml'), 'utf8')));
          assert.deepEqual(out.response.warnings ?? [], expectedWarnings(dir));

          const again = await post(server.port, '/mutate/pods', JSON.stringify(caseReview(c, patchedPod)), certs.ca);
          const againOut = JSON.parse(again.text) as { response: { patch?: string; patchType?: string } };
          assert.equal(againOut.response.patch, undefined);
          assert.equal(againOut.response.patchType, undefined);
        } finally {
          await server.stop(0);
        }
      });
    });
  }
});

after(() => undefined);
