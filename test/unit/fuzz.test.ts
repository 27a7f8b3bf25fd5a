// Property-based fuzzing of the admission path (fast-check): random and mutated
// AdmissionReviews never crash or hang the decision code or the server; every answer is a
// well-formed AdmissionReview or a 4xx with a reason; a connector the policy denies is
// never allowed, however its URL is spelled; every patch applies to the object it was
// computed for. FUZZ_RUNS scales the case counts (`npm run fuzz` runs many more).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import fastJsonPatch from 'fast-json-patch';
import { handlerForKind, processReview } from '../../src/admission/handlers.ts';
import { loadStateFile } from '../../src/cluster/state-file.ts';
import { ClusterStore } from '../../src/cluster/store.ts';
import { injectPod } from '../../src/injection/inject.ts';
import { PolicyHolder } from '../../src/policy/holder.ts';
import { BUILTIN_POLICY, type PolicyList } from '../../src/policy/incompatible.ts';
import { connectorViolation } from '../../src/policy/verdict.ts';
import type { RunningServer } from '../../src/server/serve.ts';
import { podReview } from '../helpers/review.ts';
import { startTestServer } from '../helpers/server.ts';
import { post, writeTestCerts, type TestCerts } from '../helpers/tls.ts';

const SCALE = Number(process.env.FUZZ_RUNS ?? '1');
const STATE = join(import.meta.dirname, '..', 'golden', 'squad', 'state.yaml');
const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const view = loadStateFile(STATE).store;
const ctx = { view, policy: () => BUILTIN_POLICY };
let cases = 0;

const agentPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'team-a', labels: { 'komputer.ai/squad': 'true', 'komputer.ai/member-planner': 'true', 'komputer.ai/member-coder': 'true' } },
  spec: { containers: [{ name: 'planner', image: 'x', env: [{ name: 'A', value: 'b' }] }, { name: 'coder', image: 'x' }] },
};

// A member added to a running squad (pods/ephemeralcontainers), against a state whose agents carry squad labels.
const squadCtx = { view: loadStateFile(join(import.meta.dirname, '..', 'golden', 'squad-member-added', 'state.yaml')).store, policy: () => BUILTIN_POLICY };
const squadPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'squad-alpha-0', namespace: 'team-a', labels: { 'komputer.ai/squad': 'true', 'komputer.ai/squad-name': 'alpha', 'komputer.ai/member-planner': 'true' } },
  spec: { containers: [{ name: 'planner', image: 'x' }], ephemeralContainers: [{ name: 'writer', image: 'x' }] },
};

/** Replaces the value at a random path of `base` with `value` (or deletes it). */
function mutateAt(base: unknown, path: (string | number)[], value: unknown, remove: boolean): unknown {
  const root = structuredClone(base) as Record<string, unknown>;
  let cur: Record<string, unknown> = root;
  for (let i = 0; i < path.length - 1; i++) {
    const next = cur[path[i]!];
    if (typeof next !== 'object' || next === null) return root;
    cur = next as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  if (remove) delete cur[last];
  else cur[last] = value;
  return root;
}

function pathsOf(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      const p = [...prefix, Array.isArray(value) ? Number(k) : k];
      out.push(p);
      pathsOf(v, p, out);
    }
  }
  return out;
}

const base = podReview(agentPod, 'team-a', { uid: 'fuzz' });
const basePaths = pathsOf(base);
const ephemeralBase = podReview(
  { ...squadPod, spec: { ...squadPod.spec, ephemeralContainers: [...squadPod.spec.ephemeralContainers, { name: 'coder', image: 'x', env: [{ name: 'ROLE', value: 'coder' }] }] } },
  'team-a',
  { uid: 'fuzz-ephemeral', operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: squadPod },
);
const ephemeralPaths = pathsOf(ephemeralBase);
const weird = fc.oneof(
  fc.anything({ maxDepth: 3 }),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.constantFrom('', '\u0000', '\u202e', 'a/b/c', '../..', '~1', '-', '__proto__', 'constructor', 'x'.repeat(100_000)),
  fc.integer(),
  fc.constant(null),
);

/** Deeply nested JSON text, without building the value (the parser must cope). */
function deepText(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

function checkWellFormed(out: unknown, uid: string | undefined): void {
  const r = out as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patch?: string; patchType?: string; status?: { code: number; message: string }; warnings?: string[] } };
  assert.equal(r.apiVersion, 'admission.k8s.io/v1');
  assert.equal(r.kind, 'AdmissionReview');
  assert.equal(typeof r.response.allowed, 'boolean');
  if (uid !== undefined) assert.equal(r.response.uid, uid);
  assert.notEqual(r.response.status?.code, 500, `internal error: ${r.response.status?.message}`);
  if (r.response.patch !== undefined) {
    assert.equal(r.response.patchType, 'JSONPatch');
    assert.ok(Array.isArray(JSON.parse(Buffer.from(r.response.patch, 'base64').toString('utf8'))));
  } else assert.equal(r.response.patchType, undefined);
  for (const w of r.response.warnings ?? []) assert.equal(typeof w, 'string');
}

describe('fuzz: decision code (shared by the server and the review CLI)', () => {
  test('mutated AdmissionReviews: a well-formed answer or a one-line reason, never a throw', () => {
    fc.assert(
      fc.property(fc.constantFrom(...basePaths), weird, fc.boolean(), (path, value, remove) => {
        cases++;
        const body = mutateAt(base, path, value, remove);
        const out = processReview(body, ctx, handlerForKind);
        if (out.ok) {
          assert.equal(out.error, undefined, `handler threw: ${String(out.error)}`);
          checkWellFormed(out.body, out.request.uid);
        } else {
          assert.ok(out.reason.length > 0 && !out.reason.includes('\n'));
        }
      }),
      { numRuns: 20_000 * SCALE },
    );
  });

  test('mutated pods/ephemeralcontainers reviews: a well-formed answer or a one-line reason, never a throw', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ephemeralPaths), weird, fc.boolean(), (path, value, remove) => {
        cases++;
        const out = processReview(mutateAt(ephemeralBase, path, value, remove), squadCtx, handlerForKind);
        if (out.ok) {
          assert.equal(out.error, undefined, `handler threw: ${String(out.error)}`);
          checkWellFormed(out.body, out.request.uid);
        } else {
          assert.ok(out.reason.length > 0 && !out.reason.includes('\n'));
        }
      }),
      { numRuns: 5_000 * SCALE },
    );
  });

  test('ephemeral containers: a patch touches only new members, applies, and a second run yields none', () => {
    const name = fc.constantFrom('coder', 'writer', 'planner', 'outsider', 'nolabel', 'debugger', 'ghost');
    const envVar = fc.record({ name: fc.constantFrom('A', 'KOMPUTER_MCP_SERVERS', 'CONNECTOR_GITHUB_TOKEN', 'CONNECTOR_KEYED_TOKEN'), value: fc.string({ maxLength: 8 }) });
    const container = (n: string) => fc.record({ name: fc.constant(n), image: fc.constant('x'), env: fc.option(fc.array(envVar, { maxLength: 4 }), { nil: undefined }) }, { requiredKeys: ['name', 'image'] });
    const split = fc.uniqueArray(name, { maxLength: 5 }).chain((names) => fc.tuple(fc.constant(names), fc.nat({ max: names.length })));
    let patchedRuns = 0;
    fc.assert(
      fc.property(split.chain(([names, cut]) => fc.tuple(fc.tuple(...names.map(container)), fc.constant(cut))), ([ephemeral, cut]) => {
        cases++;
        const pod = (list: unknown[]) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'squad-alpha-0', namespace: 'team-a', labels: { 'komputer.ai/squad': 'true', 'komputer.ai/squad-name': 'alpha', 'komputer.ai/member-planner': 'true' } }, spec: { containers: [{ name: 'planner', image: 'x' }], ephemeralContainers: list } });
        const oldPod = pod(ephemeral.slice(0, cut));
        const obj = pod([...ephemeral]);
        const review = (o: unknown) => podReview(o as Record<string, unknown>, 'team-a', { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: oldPod });
        const out = processReview(review(obj), squadCtx, handlerForKind);
        assert.ok(out.ok);
        const patch = out.body.response.patch;
        if (!patch) return;
        patchedRuns++;
        const ops = JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[];
        for (const op of ops) {
          const m = /^\/spec\/ephemeralContainers\/(\d+)\/env/.exec(op.path);
          assert.ok(m && Number(m[1]) >= cut, `op ${op.path} is outside the new ephemeral containers (from index ${cut})`);
        }
        const result = fastJsonPatch.applyPatch(obj, ops, true, false).newDocument;
        const again = processReview(review(result), squadCtx, handlerForKind);
        assert.ok(again.ok);
        assert.equal(again.body.response.patch, undefined, 'a second pass must not patch');
      }),
      { numRuns: 3_000 * SCALE },
    );
    assert.ok(patchedRuns > 3_000 * SCALE * 0.2, `only ${patchedRuns} runs produced a patch: the property tests too little`);
  });

  test("what the operator wrote for a refused connector never survives; what a user wrote always does", () => {
    // researcher: github, other/unshared (not shared), shared/linear, slack (disabled).
    const opCtx = { view: loadStateFile(join(import.meta.dirname, '..', 'golden', 'operator-unshared', 'state.yaml')).store, policy: () => BUILTIN_POLICY };
    const ref = (name: string, secret: string, key: string, extra: Record<string, unknown> = {}) => ({ name, valueFrom: { secretKeyRef: { name: secret, key, ...extra } } });
    const operators = [ref('CONNECTOR_UNSHARED_TOKEN', 'unshared-token-from-other', 'token'), ref('CONNECTOR_SLACK_TOKEN', 'slack-token', 'xoxp')];
    const users = [
      { name: 'CONNECTOR_UNSHARED_TOKEN', value: 'literal' },
      ref('CONNECTOR_UNSHARED_TOKEN', 'unshared-token', 'token'),
      ref('CONNECTOR_UNSHARED_TOKEN', 'unshared-token-from-other', 'other'),
      ref('CONNECTOR_SLACK_TOKEN', 'slack-token', 'xoxp', { optional: true }),
      ref('CONNECTOR_NOTES_TOKEN', 'unshared-token-from-other', 'token'),
      { name: 'MODEL', value: 'x' },
    ];
    const ours = [ref('CONNECTOR_GITHUB_TOKEN', 'github-token', 'token'), ref('CONNECTOR_LINEAR_TOKEN', 'linear-oauth-from-shared', 'token'), { name: 'KOMPUTER_MCP_SERVERS', value: '{"unshared":{},"slack":{}}' }, { name: 'KOMPUTER_MCP_SERVERS', value: 'x' }];
    const written = new Set(['CONNECTOR_GITHUB_TOKEN', 'CONNECTOR_LINEAR_TOKEN', 'KOMPUTER_MCP_SERVERS']);
    const entry = fc.constantFrom(...operators, ...users, ...ours);
    let removals = 0;
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 8 }), fc.boolean(), (env, solo) => {
        cases++;
        const labels: Record<string, string> = solo ? { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': 'researcher', 'komputer.ai/member-researcher': 'true' } : { 'komputer.ai/squad': 'true', 'komputer.ai/member-researcher': 'true' };
        const obj = { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'team-a', labels }, spec: { containers: [{ name: solo ? 'agent' : 'researcher', image: 'x', env: structuredClone(env) }] } };
        const out = processReview(podReview(obj, 'team-a'), opCtx, handlerForKind);
        assert.ok(out.ok);
        const patch = out.body.response.patch;
        const ops = patch ? (JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[]) : [];
        const result = fastJsonPatch.applyPatch(structuredClone(obj), ops, true, false).newDocument;
        const after = (result.spec.containers[0]!.env ?? []) as unknown[];
        const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
        for (const o of operators) assert.ok(!after.some((e) => same(e, o)), `the operator's ${o.name} survived: ${JSON.stringify(after)}`);
        for (const u of users) {
          const before = env.filter((e) => same(e, u)).length;
          if (before === 0 || written.has(u.name)) continue;
          // Duplicates of a name may collapse only for names this service writes; users' stay.
          assert.equal(after.filter((e) => same(e, u)).length, before, `the user's ${JSON.stringify(u)} was touched`);
        }
        if (env.some((e) => operators.some((o) => same(e, o)))) removals++;
        const again = processReview(podReview(result, 'team-a'), opCtx, handlerForKind);
        assert.ok(again.ok);
        assert.equal(again.body.response.patch, undefined, 'reinvocation must not patch');
      }),
      { numRuns: 3_000 * SCALE },
    );
    assert.ok(removals > 3_000 * SCALE * 0.3, `only ${removals} runs carried an operator variable to remove`);
  });

  test('random JSON values as the whole body', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (body) => {
        cases++;
        const out = processReview(body, ctx, handlerForKind);
        if (out.ok) checkWellFormed(out.body, out.request.uid);
        else assert.ok(out.reason.length > 0);
      }),
      { numRuns: 5_000 * SCALE },
    );
  });

  test('every patch applies to the pod it was computed for, and a second run yields none', () => {
    const label = fc.constantFrom('planner', 'coder', 'ghost', 'x');
    const envVar = fc.record({ name: fc.constantFrom('A', 'KOMPUTER_MCP_SERVERS', 'CONNECTOR_SLACK_TOKEN', 'CONNECTOR_GITHUB_TOKEN', 'B'), value: fc.string({ maxLength: 8 }) });
    const container = fc.record({ name: label, image: fc.constant('x'), env: fc.option(fc.array(envVar, { maxLength: 6 }), { nil: undefined }) }, { requiredKeys: ['name', 'image'] });
    const pod = fc.record({
      members: fc.uniqueArray(label, { maxLength: 3 }),
      containers: fc.array(container, { minLength: 1, maxLength: 4 }),
      annotations: fc.option(fc.dictionary(fc.constantFrom('komputer.ai/injected-connectors', 'a/b', 'c'), fc.string({ maxLength: 5 })), { nil: undefined }),
    });
    fc.assert(
      fc.property(pod, (p) => {
        cases++;
        const labels: Record<string, string> = { 'komputer.ai/squad': 'true' };
        for (const m of p.members) labels[`komputer.ai/member-${m}`] = 'true';
        const obj = { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'team-a', labels, ...(p.annotations ? { annotations: p.annotations } : {}) }, spec: { containers: p.containers } };
        const out = processReview(podReview(obj, 'team-a'), ctx, handlerForKind);
        assert.ok(out.ok);
        const patch = out.body.response.patch;
        if (!patch) return;
        const ops = JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[];
        const result = fastJsonPatch.applyPatch(obj, ops, true, false).newDocument;
        const again = processReview(podReview(result, 'team-a'), ctx, handlerForKind);
        assert.ok(again.ok);
        assert.equal(again.body.response.patch, undefined, 'reinvocation must not patch');
      }),
      { numRuns: 5_000 * SCALE },
    );
  });

  test('at injection: nothing a deny entry refuses is injected, nothing warn or audit allows is dropped, a second pass gives no patch', () => {
    const urls = ['https://mcp.notion.com/mcp', 'HTTPS://MCP.NOTION.COM./mcp/', 'https://mcp.acme.example/mcp', 'https://mcp.acme.example:443/mcp?x=1', 'https://api.githubcopilot.com/mcp/'];
    const connectorArb = fc.record({ url: fc.constantFrom(...urls), authType: fc.constantFrom(undefined, 'token', 'oauth', 'header'), disabled: fc.boolean(), shared: fc.boolean() });
    const world = fc.record({
      connectors: fc.array(connectorArb, { minLength: 1, maxLength: 6 }),
      refs: fc.array(fc.nat(5), { maxLength: 8 }),
      acme: fc.constantFrom('deny', 'warn', 'audit'),
      notion: fc.constantFrom('deny', 'warn', 'audit'),
      operatorCopies: fc.boolean(),
    });
    const policyOf = (acme: string, notion: string, keep: (action: string) => boolean): PolicyList => {
      const text = `entries:\n${[
        ['acme', 'Acme', 'https://mcp.acme.example/mcp', acme],
        ['notion', 'Notion', 'https://mcp.notion.com/mcp', notion],
      ]
        .filter(([, , , a]) => keep(a!))
        .map(([id, service, url, a]) => `  - {id: ${id}, service: ${service}, url: "${url}", why: w, instead: i, action: ${a}}\n`)
        .join('')}disableBuiltins: [notion]\n`;
      const h = new PolicyHolder();
      assert.ok(h.apply(text).valid);
      return h.current;
    };
    fc.assert(
      fc.property(world, (w) => {
        cases++;
        const build = (policy: PolicyList): ClusterStore => {
          const s = new ClusterStore();
          s.putNamespace({ name: 'team-a', labels: { 'komputer.ai/connector-injection': 'enabled' } });
          s.putNamespace({ name: 'shared', labels: {} });
          w.connectors.forEach((c, i) => {
            const ns = c.shared ? 'shared' : 'team-a';
            s.putConnector({ namespace: ns, name: `c${i}`, service: 's', url: c.url, authType: c.authType, headerName: c.authType === 'header' ? 'X-Key' : undefined, authSecretKeyRef: { name: `t${i}`, key: 'k' }, disabled: c.disabled, sharedWith: ['team-a'] });
          });
          s.putAgent({ namespace: 'team-a', name: 'a', connectors: w.refs.filter((r) => r < w.connectors.length).map((r) => (w.connectors[r]!.shared ? `shared/c${r}` : `c${r}`)), officeManager: undefined });
          s.policySource = () => policy;
          return s;
        };
        const env = w.operatorCopies
          ? w.connectors.map((c, i) => ({ name: `CONNECTOR_C${i}_TOKEN`, valueFrom: { secretKeyRef: { name: c.shared ? `t${i}-from-shared` : `t${i}`, key: 'k' } } }))
          : [];
        const pod = { metadata: { name: 'p', labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': 'a' } }, spec: { containers: [{ name: 'agent', env }] } };
        const full = build(policyOf(w.acme, w.notion, () => true));
        const out = injectPod(pod, 'team-a', full);
        const injected = out.containers.flatMap((c) => c.injected);
        const patched = fastJsonPatch.applyPatch(structuredClone(pod), out.patch as fastJsonPatch.Operation[], true, false).newDocument as typeof pod;
        const names = new Set(patched.spec.containers[0]!.env.map((e) => e.name));
        for (const ref of injected) {
          const c = full.connector(ref.includes('/') ? 'shared' : 'team-a', ref.split('/').pop()!)!;
          assert.notEqual(connectorViolation(c, full.policy())?.action, 'deny', `${ref} is refused by a deny entry but injected`);
        }
        for (const skip of out.containers.flatMap((c) => c.skipped)) {
          if (skip.kind === 'refused') assert.ok(!names.has(`CONNECTOR_${skip.ref.split('/').pop()!.toUpperCase()}_TOKEN`), `the operator's copy of ${skip.ref} survives`);
        }
        // warn and audit change nothing about what is injected: the same as without those entries.
        const withoutSoft = injectPod(pod, 'team-a', build(policyOf(w.acme, w.notion, (a) => a === 'deny')));
        assert.deepEqual(injected, withoutSoft.containers.flatMap((c) => c.injected));
        assert.deepEqual(injectPod(patched, 'team-a', full).patch, []);
      }),
      { numRuns: 1_000 * SCALE },
    );
  });

  test('a connector the policy denies is never allowed, however its URL is spelled', () => {
    const spelled = fc
      .record({
        scheme: fc.constantFrom('https', 'HTTPS', 'http', 'HtTpS'),
        host: fc.constantFrom('mcp.notion.com', 'MCP.NOTION.COM', 'mcp.notion.com.', 'Mcp.Notion.Com.'),
        port: fc.constantFrom('', ':443', ':80'),
        userinfo: fc.constantFrom('', 'user@', 'u:p@'),
        path: fc.constantFrom('/mcp', '/mcp/', '//mcp', '/%6Dcp', '/%6dcp/', '/mcp//'),
        query: fc.constantFrom('', '?', '?a=1', '#frag', '?x=y#z'),
        authType: fc.constantFrom(undefined, 'token', ''),
      })
      // An explicit non-default port is another endpoint (https on :80 is not Notion's server).
      .filter((s) => !(s.scheme.toLowerCase() === 'http' && s.port === ':443') && !(s.scheme.toLowerCase() === 'https' && s.port === ':80'));
    fc.assert(
      fc.property(spelled, (s) => {
        cases++;
        const url = `${s.scheme}://${s.userinfo}${s.host}${s.port}${s.path}${s.query}`;
        const connector = { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerConnector', metadata: { name: 'n', namespace: 'team-a' }, spec: { type: 'remote', service: 'notion', url, ...(s.authType !== undefined ? { authType: s.authType } : {}) } };
        const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: 'komputer.komputer.ai', version: 'v1alpha1', kind: 'KomputerConnector' }, operation: 'CREATE', namespace: 'team-a', object: connector } };
        const out = processReview(review, ctx, handlerForKind);
        assert.ok(out.ok);
        assert.equal(out.body.response.allowed, false, `allowed: ${url}`);
      }),
      { numRuns: 3_000 * SCALE },
    );
  });
});

describe('fuzz: the HTTPS server', () => {
  let certs: TestCerts;
  let server: RunningServer;
  before(async () => {
    certs = await writeTestCerts();
    ({ server } = await startTestServer(certs, STATE, { maxBodyBytes: 256 * 1024 }));
  });
  after(async () => {
    await server.stop(0);
  });

  test('raw bodies, content types and duplicate keys: 200 with a well-formed review or 4xx with a reason, within a bound', async () => {
    const text = fc.oneof(
      fc.constantFrom('', '{', 'null', '[]', '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","uid":"b"}}', deepText(5000), '"\u0000"', '{"a":1}'.repeat(3)),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.tuple(fc.constantFrom(...basePaths), weird, fc.boolean()).map(([p, v, r]) => JSON.stringify(mutateAt(base, p, v, r))),
      fc.string({ unit: 'binary', maxLength: 200 }),
    );
    const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded', '');
    await fc.assert(
      fc.asyncProperty(text, contentType, async (body, ct) => {
        cases++;
        const started = Date.now();
        const res = await post(server.port, '/mutate/pods', body, certs.ca, ct ? { 'content-type': ct } : {});
        assert.ok(Date.now() - started < 5000, 'answered within the bound');
        if (res.status === 200) checkWellFormed(JSON.parse(res.text), undefined);
        else {
          assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
          assert.ok(res.text.trim().length > 0 && res.text.trim().split('\n').length === 1);
        }
      }),
      { numRuns: 1_500 * SCALE },
    );
  });

  test('bodies over the cap are refused with 400', async () => {
    const res = await post(server.port, '/mutate/pods', JSON.stringify({ ...base, pad: 'x'.repeat(300 * 1024) }), certs.ca);
    assert.equal(res.status, 400);
  });

  test('a slow-loris upload is cut off by the request timeout, and the server keeps answering', async () => {
    const { connect } = await import('node:tls');
    const socket = connect({ host: '127.0.0.1', port: server.port, ca: certs.ca });
    await new Promise((r) => socket.once('secureConnect', r));
    socket.write('POST /mutate/pods HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{');
    const closed = new Promise<string>((resolve) => {
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('close', () => resolve(data));
    });
    // Meanwhile, normal requests are served.
    const ok = await post(server.port, '/mutate/pods', JSON.stringify(base), certs.ca);
    assert.equal(ok.status, 200);
    const started = Date.now();
    const reply = await closed;
    assert.ok(Date.now() - started < 20_000, 'the stalled upload is closed by the server');
    assert.match(reply, /^HTTP\/1.1 408|^$/);
  });
});

describe('fuzz: the review CLI', () => {
  test('random inputs on stdin: exit 0 with a review, or exit 2 with one line', () => {
    const inputs = fc.sample(
      fc.oneof(
        fc.tuple(fc.constantFrom(...basePaths), weird, fc.boolean()).map(([p, v, r]) => JSON.stringify(mutateAt(base, p, typeof v === 'string' && v.length > 1000 ? v.slice(0, 1000) : v, r))),
        fc.string({ maxLength: 50 }),
      ),
      { numRuns: 8 * SCALE, seed: 42 },
    );
    for (const input of inputs) {
      cases++;
      const r = spawnSync(process.execPath, [CLI, 'review', '--state', STATE], { input, encoding: 'utf8', timeout: 20_000 });
      if (r.status === 0) checkWellFormed(JSON.parse(r.stdout), undefined);
      else {
        assert.equal(r.status, 2, r.stderr);
        assert.equal(r.stderr.trim().split('\n').length, 1);
      }
    }
  });
});

after(() => {
  process.stdout.write(`fuzz: ${cases} cases run\n`);
});
