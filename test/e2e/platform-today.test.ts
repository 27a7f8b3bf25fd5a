// End-to-end: the platform as it is today (SPEC.md, "Changes in the platform since the first
// contract"), through a real kube-apiserver with the default CRDs: the platform's published
// ones when ../shared is beside the repository (as in CI), else the project's own component.
// Covered: header auth (authType header + spec.headerName), the operator's exact bytes for
// KOMPUTER_MCP_SERVERS (checked against test/operator-json, the operator's real Go
// encoding/json), no empty config, cross-namespace references that must not reveal whether a
// connector exists elsewhere, and what the installed CRD does with spec.disabled (the
// disabled behaviour itself is proven in disabled.test.ts, with the project's CRD).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEnvironment, stopEnvironment, warningsOf, type Environment, type KubectlResult } from './harness/index.ts';
import { log } from './harness/log.ts';
import { poll } from './harness/poll.ts';
import {
  CONNECTOR_CRD,
  INJECTED,
  Kube,
  SHARED_WITH,
  admissionLines,
  agent,
  agentEnv,
  assertDenied,
  assertNoCanaries,
  buildOperatorJson,
  connector,
  mcp,
  secret,
  serviceLogLines,
  soloPod,
  tokenRef,
  type EnvVar,
  type LogLine,
  type OperatorJson,
  type Pod,
} from './fixtures/today.ts';

const NS = 'e2e-today';
/** Holds connector secret-one, shared with FRIEND only (not with NS). */
const OWNER = 'owner';
/** Holds no connector at all. */
const NOTHING = 'nothing';
/** The namespace secret-one is shared with: proves the service's cache holds it. */
const FRIEND = 'e2e-today-friend';

// Token-like canaries: in Secret data and in a user's env value; never in a warning, a denial
// message or the service's log (written at debug level by the harness).
const CANARY_SECRET = 'ghp_E2ECANARYtodaySecretData0123456789abcdef';
const CANARY_ENV = 'ghp_E2ECANARYtodayPodEnvValue0123456789abcde';

const USER_ENV: EnvVar[] = [
  { name: 'MY_PAT', value: CANARY_ENV },
  { name: 'MODEL', value: 'claude-sonnet' },
];

const KEYED_URL = 'https://mcp.keyed.example/mcp';
const KEYED_SPEC = { url: KEYED_URL, authType: 'header', headerName: 'X-API-Key', authSecretKeyRef: { name: 'api-key', key: 'key' } };
const KEYED_TOKEN = tokenRef('CONNECTOR_KEYED_TOKEN', 'api-key', 'key');
const KEYED_ENTRY = `{"type":"http","url":"${KEYED_URL}","tokenEnv":"CONNECTOR_KEYED_TOKEN","authType":"header","headerName":"X-API-Key"}`;

/** `&`, `<`, `>` and U+2028 in the query string: Go's encoding/json escapes all four. */
const ODD_URL = 'https://mcp.odd.example/mcp?scope=read&team=<r&d>&note=a\u2028b';
const ZETA_TOKEN = tokenRef('CONNECTOR_ZETA_Q_TOKEN', 'zeta-token', 'token');

let env: Environment;
let kube: Kube;
let operator: OperatorJson;
/** kubectl apply of the header connector, made in before() (asserted in the first test). */
let keyedApplied: KubectlResult;

function notVisible(refNamespace: string): string {
  return `not found in namespace ${refNamespace}, or not shared with namespace ${NS} (its owner shares it with the ${SHARED_WITH} annotation)`;
}

before(async () => {
  env = await startEnvironment();
  kube = new Kube(env);
  operator = buildOperatorJson();
  await env.createNamespace(NS, { enabled: true });
  await env.createNamespace(OWNER);
  await env.createNamespace(NOTHING);
  await env.createNamespace(FRIEND, { enabled: true });
  await env.apply([
    secret(NS, 'api-key', { key: CANARY_SECRET }),
    secret(NS, 'zeta-token', { token: 'not-a-real-token' }),
    secret(OWNER, 'one-token', { token: 'lin_api_not-a-real-token' }),
    // Not enabled, so not validated; shared with FRIEND, not with NS.
    connector(OWNER, 'secret-one', { url: 'https://mcp.linear.app/mcp', authType: 'token', authSecretKeyRef: { name: 'one-token', key: 'token' } }, { [SHARED_WITH]: FRIEND }),
  ]);
  keyedApplied = await kube.apply(connector(NS, 'keyed', KEYED_SPEC));
  await kube.applyAll([agent(FRIEND, 'friend', [`${OWNER}/secret-one`])]);
  // The service's caches are eventually consistent: this proves they hold owner/secret-one
  // before the leak test compares it with a connector that never existed.
  await kube.waitForPod('friend injected with owner/secret-one', soloPod(FRIEND, 'wait-friend', 'friend', []), (p) => p.metadata.annotations?.[INJECTED] === `${OWNER}/secret-one`);
});

after(async () => {
  operator?.cleanup();
  await stopEnvironment();
});

describe('header auth (authType header, spec.headerName)', () => {
  test('a header connector is admitted, and its pods get the entry with headerName in the operator field order', async () => {
    assert.equal(keyedApplied.code, 0, keyedApplied.stderr);
    assert.deepEqual(warningsOf(keyedApplied), []);
    await kube.applyAll([agent(NS, 'keyed-agent', ['keyed'])]);
    await kube.waitForPod('keyed-agent injected', soloPod(NS, 'wait-keyed', 'keyed-agent', USER_ENV), (p) => p.metadata.annotations?.[INJECTED] === 'keyed');

    const { stored, warnings } = await kube.createPod(soloPod(NS, 'keyed-pod', 'keyed-agent', USER_ENV));
    assert.deepEqual(warnings, []);
    assert.equal(stored.metadata.annotations?.[INJECTED], 'keyed');
    const servers = `{"keyed":${KEYED_ENTRY}}`;
    assert.deepEqual(agentEnv(stored), [...USER_ENV, KEYED_TOKEN, mcp(servers)]);
    const entry = (JSON.parse(servers) as Record<string, Record<string, string>>)['keyed'];
    assert.deepEqual(Object.keys(entry ?? {}), ['type', 'url', 'tokenEnv', 'authType', 'headerName'], 'field order as the operator');
    // And the very bytes the operator writes for it.
    assert.equal(
      agentEnv(stored)?.at(-1)?.value,
      operator.bytes([{ name: 'keyed', url: KEYED_URL, tokenEnv: 'CONNECTOR_KEYED_TOKEN', authType: 'header', headerName: 'X-API-Key' }]),
    );
  });

  test('header connectors that cannot work are refused with the reason, and nothing is stored', async () => {
    const ref = { authSecretKeyRef: { name: 'api-key', key: 'key' } };
    const refused: string[] = [];
    const check = async (name: string, spec: Record<string, unknown>, message: string): Promise<KubectlResult> => {
      const result = await kube.apply(connector(NS, name, { ...ref, ...spec }));
      assertDenied(result, message);
      refused.push(name);
      return result;
    };
    await check('hdr-missing', { url: KEYED_URL, authType: 'header' }, 'spec.authType header needs spec.headerName');
    for (const [i, headerName] of ['Host', 'host', 'HOST', 'hOsT'].entries()) {
      await check(`hdr-host-${i}`, { url: KEYED_URL, authType: 'header', headerName }, 'spec.headerName Host is set by the MCP client itself');
    }
    for (const [i, headerName] of ['Content-Type', 'content-type'].entries()) {
      await check(`hdr-ctype-${i}`, { url: KEYED_URL, authType: 'header', headerName }, 'spec.headerName Content-Type is set by the MCP client itself');
    }
    const spaced = await check('hdr-space', { url: KEYED_URL, authType: 'header', headerName: 'X API Key' }, 'spec.headerName ');
    assert.ok(spaced.stderr.includes('is not an HTTP header name'), spaced.stderr);
    await check('notion-hdr', { service: 'notion', url: 'https://mcp.notion.com/mcp', authType: 'header', headerName: 'X-API-Key' }, 'Notion rejects static header tokens (authType header)');
    for (const name of refused) assert.equal(await kube.exists('komputerconnector', NS, name), false, `${name} is not stored`);
  });

  test('spec.headerName on a token connector is admitted with a warning that it is ignored (the entry still carries it, as the operator copies it)', async () => {
    const result = await kube.apply(connector(NS, 'token-hdr', { url: 'https://mcp.linear.app/mcp', authType: 'token', headerName: 'X-API-Key', authSecretKeyRef: { name: 'zeta-token', key: 'token' } }));
    assert.equal(result.code, 0, result.stderr);
    const warnings = warningsOf(result);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.ok(warnings[0]?.startsWith('spec.headerName is ignored because spec.authType is token: '), warnings[0]);

    // SPEC.md: the operator copies headerName into the entry whenever it is set.
    await kube.applyAll([agent(NS, 'token-hdr-agent', ['token-hdr'])]);
    const { returned } = await kube.waitForPod('token-hdr-agent injected', soloPod(NS, 'wait-token-hdr', 'token-hdr-agent', []), (p) => p.metadata.annotations?.[INJECTED] === 'token-hdr');
    assert.deepEqual(agentEnv(returned), [
      tokenRef('CONNECTOR_TOKEN_HDR_TOKEN', 'zeta-token', 'token'),
      mcp(operator.bytes([{ name: 'token-hdr', url: 'https://mcp.linear.app/mcp', tokenEnv: 'CONNECTOR_TOKEN_HDR_TOKEN', authType: 'token', headerName: 'X-API-Key' }])),
    ]);
  });

  test('authType none: refused by the API server (the CRD enum), before any webhook is called', async () => {
    const crd = await kube.getJson<CrdJson>('crd', '', CONNECTOR_CRD);
    const authType = connectorSpecSchema(crd)['authType'] as { enum?: string[] } | undefined;
    assert.deepEqual(authType?.enum, ['token', 'oauth', 'header'], `the installed (${env.crds.kind}) CRD enumerates spec.authType`);

    const result = await kube.apply(connector(NS, 'auth-none', { url: 'https://mcp.none.example/mcp', authType: 'none' }));
    // Who refused it: the kube-apiserver's validation of the CRD schema (enum), which runs
    // before the validating webhooks; the service never sees the request.
    assert.notEqual(result.code, 0);
    assert.ok(result.stderr.includes('The KomputerConnector "auth-none" is invalid: spec.authType: Unsupported value: "none"'), result.stderr);
    assert.equal(result.stderr.includes('admission webhook'), false, result.stderr);
    assert.equal(await kube.exists('komputerconnector', NS, 'auth-none'), false);

    // A request made after it reaches the service (its log line proves the log caught up)...
    const marker = await kube.apply(connector(NS, 'after-none', { url: 'https://mcp.none.example/mcp', authType: 'token' }));
    assert.equal(marker.code, 0, marker.stderr);
    await admissionLines(env, 'KomputerConnector', NS, 'after-none');
    // ...and none for auth-none.
    assert.deepEqual((await serviceLogLines(env)).filter((l) => l['name'] === 'auth-none').map((l) => l.raw), []);
  });
});

describe("the operator's bytes", () => {
  let goBytes = '';

  test('KOMPUTER_MCP_SERVERS is byte for byte what the operator (Go encoding/json) writes', async () => {
    const created = await kube.apply(connector(NS, 'zeta-q', { url: ODD_URL, authType: 'token', authSecretKeyRef: { name: 'zeta-token', key: 'token' } }));
    assert.equal(created.code, 0, `a URL with & < > and U+2028 in its query is admitted: ${created.stderr}`);
    assert.deepEqual(warningsOf(created), []);
    const stored = await kube.getJson<{ spec: { url: string } }>('komputerconnector', NS, 'zeta-q');
    assert.equal(stored.spec.url, ODD_URL, 'the API server stores the URL as written');

    // Listed out of alphabetical order: the operator's map sorts the keys.
    await kube.applyAll([agent(NS, 'bytes', ['zeta-q', 'keyed'])]);
    await kube.waitForPod('bytes injected', soloPod(NS, 'wait-bytes', 'bytes', []), (p) => p.metadata.annotations?.[INJECTED] === 'zeta-q,keyed');

    goBytes = operator.bytes([
      { name: 'zeta-q', url: ODD_URL, tokenEnv: 'CONNECTOR_ZETA_Q_TOKEN', authType: 'token' },
      { name: 'keyed', url: KEYED_URL, tokenEnv: 'CONNECTOR_KEYED_TOKEN', authType: 'header', headerName: 'X-API-Key' },
    ]);
    // The Go side really escaped what this test is about, and sorted.
    for (const escape of ['\\u0026', '\\u003c', '\\u003e', '\\u2028']) assert.ok(goBytes.includes(escape), `Go wrote ${escape}: ${goBytes}`);
    assert.ok(goBytes.startsWith(`{"keyed":${KEYED_ENTRY},"zeta-q":`), goBytes);

    const pod = await kube.createPod(soloPod(NS, 'bytes-pod', 'bytes', USER_ENV));
    assert.deepEqual(pod.warnings, []);
    assert.equal(pod.stored.metadata.annotations?.[INJECTED], 'zeta-q,keyed');
    assert.deepEqual(agentEnv(pod.stored), [...USER_ENV, ZETA_TOKEN, KEYED_TOKEN, mcp(goBytes)]);
    const value = agentEnv(pod.stored)?.at(-1)?.value ?? '';
    assert.ok(Buffer.from(value, 'utf8').equals(Buffer.from(goBytes, 'utf8')), `byte for byte:\nstored ${JSON.stringify(value)}\ngo     ${JSON.stringify(goBytes)}`);
    assert.equal((JSON.parse(value) as Record<string, { url: string }>)['zeta-q']?.url, ODD_URL, 'a plain JSON parser reads the URL back as written');
  });

  test('a pod the operator already injected is stored exactly as sent, and the service sends no patch', async () => {
    assert.ok(goBytes, 'the previous test computed the operator bytes');
    const operatorEnv = [...USER_ENV, ZETA_TOKEN, KEYED_TOKEN, mcp(goBytes)];
    const sent = soloPod(NS, 'operator-pod', 'bytes', operatorEnv, { [INJECTED]: 'zeta-q,keyed' });
    const { stored, warnings } = await kube.createPod(sent);
    assert.deepEqual(warnings, []);
    assert.deepEqual(agentEnv(stored), operatorEnv);
    assert.deepEqual(stored.metadata.annotations, { [INJECTED]: 'zeta-q,keyed' });
    const lines = await admissionLines(env, 'Pod', NS, 'operator-pod');
    assert.equal(lines.length, 1, JSON.stringify(lines.map((l) => l.raw)));
    assert.equal(lines[0]?.['verdict'], 'allowed', lines[0]?.raw);
    assert.equal(lines[0]?.['reason'], 'already injected', lines[0]?.raw);
    // The same agent's pod without the operator's env was patched (the contrast).
    const patched = await admissionLines(env, 'Pod', NS, 'bytes-pod');
    assert.equal(patched[0]?.['verdict'], 'patched', patched[0]?.raw);
  });
});

describe('no empty config', () => {
  test('an agent without connectors, or whose connectors all do not exist, gets no MCP config, no token vars and no annotation', async () => {
    await kube.applyAll([agent(NS, 'loner', undefined), agent(NS, 'ghosts', ['gone-1', 'gone-2'])]);
    const ghostWarnings = ['gone-1', 'gone-2'].map((c) => `connector ${c} not injected into agent ghosts: connector not found in namespace ${NS}`);
    // Wait until the service knows both agents (before that it warns "KomputerAgent not found").
    await kube.waitForPod('loner known', soloPod(NS, 'wait-loner', 'loner', USER_ENV), (_p, w) => w.length === 0);
    await kube.waitForPod('ghosts known', soloPod(NS, 'wait-ghosts', 'ghosts', USER_ENV), (_p, w) => JSON.stringify(w) === JSON.stringify(ghostWarnings));

    const cases: { pod: Pod; warnings: string[] }[] = [
      { pod: soloPod(NS, 'loner-pod', 'loner', USER_ENV), warnings: [] },
      { pod: soloPod(NS, 'ghosts-pod', 'ghosts', USER_ENV), warnings: ghostWarnings },
      { pod: { ...soloPod(NS, 'loner-bare', 'loner', []), spec: { containers: [{ name: 'agent', image: 'ghcr.io/komputer-ai/agent:0.9' }] } }, warnings: [] },
    ];
    for (const c of cases) {
      const { stored, warnings } = await kube.createPod(c.pod);
      assert.deepEqual(warnings, c.warnings, c.pod.metadata.name);
      assert.deepEqual(agentEnv(stored), agentEnv(c.pod), `${c.pod.metadata.name}: env exactly as sent`);
      const names = (agentEnv(stored) ?? []).map((e) => e.name);
      assert.equal(names.includes('KOMPUTER_MCP_SERVERS'), false);
      assert.deepEqual(names.filter((n) => n.startsWith('CONNECTOR_')), []);
      assert.equal(stored.metadata.annotations?.[INJECTED], undefined, `${c.pod.metadata.name}: no ${INJECTED} annotation`);
    }
  });
});

describe('nothing about other namespaces leaks', () => {
  test('a connector that exists but is not shared reads exactly like one that never existed: warnings and log lines', async () => {
    const cases = [
      { agent: 'peek-one', ref: `${OWNER}/secret-one`, refNamespace: OWNER },
      { agent: 'peek-two', ref: `${OWNER}/never-existed`, refNamespace: OWNER },
      { agent: 'peek-six', ref: `${NOTHING}/x`, refNamespace: NOTHING },
    ];
    const seen: { agentWarnings: string[]; podWarnings: string[]; lines: string[] }[] = [];
    for (const c of cases) {
      const podName = `${c.agent}-pod`;
      const logBefore = (await serviceLogLines(env)).length;
      const created = await kube.apply(agent(NS, c.agent, [c.ref]));
      assert.equal(created.code, 0, created.stderr);
      const agentWarnings = warningsOf(created);
      assert.deepEqual(agentWarnings, [`connector ${c.ref}: ${notVisible(c.refNamespace)}`], `agent ${c.agent}`);

      const podWarning = `connector ${c.ref} not injected into agent ${c.agent}: ${notVisible(c.refNamespace)}`;
      await kube.waitForPod(`${c.agent} known`, soloPod(NS, `wait-${c.agent}`, c.agent, USER_ENV), (_p, w) => JSON.stringify(w) === JSON.stringify([podWarning]));
      const { stored, warnings } = await kube.createPod(soloPod(NS, podName, c.agent, USER_ENV));
      assert.deepEqual(warnings, [podWarning], `pod of ${c.agent}`);
      assert.deepEqual(agentEnv(stored), USER_ENV);
      assert.equal(stored.metadata.annotations?.[INJECTED], undefined);

      const lines = [...(await admissionLines(env, 'KomputerAgent', NS, c.agent)), ...(await admissionLines(env, 'Pod', NS, podName))];
      assert.equal(lines.length, 2, JSON.stringify(lines.map((l) => l.raw)));
      for (const l of lines) assert.equal(l.level, 30, `info level: ${l.raw}`);
      // Any other info-level line about this agent or reference written since its create
      // (not a dry run; e.g. the attachment controller's) belongs in the comparison too.
      const other = (await serviceLogLines(env)).slice(logBefore).filter(
        (l) => l.level >= 30 && l['dryRun'] !== true && !lines.some((x) => x.raw === l.raw) && (l.raw.includes(c.agent) || l.raw.includes(c.ref)),
      );
      const replace: [string, string][] = [
        [podName, '<pod>'],
        [c.agent, '<agent>'],
        [c.ref, '<ref>'],
        [`namespace ${c.refNamespace},`, 'namespace <ref-namespace>,'],
      ];
      seen.push({
        agentWarnings: agentWarnings.map((w) => normalizeText(w, replace)),
        podWarnings: warnings.map((w) => normalizeText(w, replace)),
        lines: [...lines, ...other].map((l) => JSON.stringify(normalizeLine(l, replace))),
      });
    }
    const [existing, never, nothing] = seen;
    assert.ok(existing && never && nothing);
    assert.deepEqual(existing.agentWarnings, never.agentWarnings, 'agent validation: same text apart from the reference');
    assert.deepEqual(existing.podWarnings, never.podWarnings, 'injection: same text apart from the reference');
    assert.deepEqual(existing.lines, never.lines, 'the service log: same lines apart from reference, uid, name and timing');
    assert.deepEqual(nothing.agentWarnings, never.agentWarnings);
    assert.deepEqual(nothing.podWarnings, never.podWarnings);
    assert.deepEqual(nothing.lines, never.lines);

    // The count does not claim an attachment injection refuses: only FRIEND's agent uses secret-one.
    await poll('owner/secret-one counts only the agent it is shared with', async () => {
      const c = await kube.getJson<{ status?: { attachedAgents?: number; agentNames?: string[] } }>('komputerconnector', OWNER, 'secret-one');
      const ok = c.status?.attachedAgents === 1 && JSON.stringify(c.status.agentNames) === JSON.stringify([`${FRIEND}/friend`]);
      return { ok, value: undefined, detail: JSON.stringify(c.status) };
    }, 30_000);
  });
});

describe('what the installed CRD does with spec.disabled', () => {
  test('the platform CRD prunes spec.disabled (the connector stays injected); the project CRD keeps it', async () => {
    const crd = await kube.getJson<CrdJson>('crd', '', CONNECTOR_CRD);
    const hasDisabled = 'disabled' in connectorSpecSchema(crd);
    assert.equal(hasDisabled, env.crds.kind === 'project', `the ${env.crds.kind} CRD ${hasDisabled ? 'lists' : 'does not list'} spec.disabled`);
    log(`CRDs: the ${env.crds.kind}'s (${env.crds.dir}); spec.disabled ${hasDisabled ? 'is in the connector schema: expecting it kept' : 'is not in the connector schema: expecting it pruned'}`);

    // The agent first: creating an agent that newly references a disabled connector is refused.
    await kube.applyAll([agent(NS, 'pauser', ['paused'])]);
    const paused = connector(NS, 'paused', { url: 'https://mcp.paused.example/mcp', authType: 'token', authSecretKeyRef: { name: 'paused-token', key: 'token' }, disabled: true });
    const pausedEntry = operator.bytes([{ name: 'paused', url: 'https://mcp.paused.example/mcp', tokenEnv: 'CONNECTOR_PAUSED_TOKEN', authType: 'token' }]);
    const pausedToken = tokenRef('CONNECTOR_PAUSED_TOKEN', 'paused-token', 'token');

    if (!hasDisabled) {
      // kubectl's default (--validate=strict) asks the API server to refuse unknown fields...
      const strict = await kube.apply(paused);
      assert.notEqual(strict.code, 0);
      assert.ok(strict.stderr.includes('strict decoding error: unknown field "spec.disabled"'), strict.stderr);
      assert.equal(strict.stderr.includes('admission webhook'), false, strict.stderr);
      // ...without it, the API server prunes the field and stores the rest.
      const pruned = await kube.apply(paused, ['--validate=warn']);
      assert.equal(pruned.code, 0, pruned.stderr);
      assert.deepEqual(warningsOf(pruned), ['unknown field "spec.disabled"']);
      const stored = await kube.getJson<{ spec: Record<string, unknown> }>('komputerconnector', NS, 'paused');
      assert.equal('disabled' in stored.spec, false, `stored without spec.disabled: ${JSON.stringify(stored.spec)}`);
      log('spec.disabled: true was pruned by the API server; the connector is still injected');

      await kube.waitForPod('pauser injected', soloPod(NS, 'wait-pauser', 'pauser', []), (p) => p.metadata.annotations?.[INJECTED] === 'paused');
      const { stored: pod, warnings } = await kube.createPod(soloPod(NS, 'pauser-pod', 'pauser', USER_ENV));
      assert.deepEqual(warnings, []);
      assert.equal(pod.metadata.annotations?.[INJECTED], 'paused');
      assert.deepEqual(agentEnv(pod), [...USER_ENV, pausedToken, mcp(pausedEntry)]);
    } else {
      const kept = await kube.apply(paused);
      assert.equal(kept.code, 0, kept.stderr);
      assert.deepEqual(warningsOf(kept), []);
      const stored = await kube.getJson<{ spec: Record<string, unknown> }>('komputerconnector', NS, 'paused');
      assert.equal(stored.spec['disabled'], true, `stored with spec.disabled: ${JSON.stringify(stored.spec)}`);
      log('spec.disabled: true was kept by the API server; the connector is not injected');

      const disabledWarning = 'connector paused not injected into agent pauser: it is disabled (spec.disabled: true); set spec.disabled: false on the connector to re-enable it';
      await kube.waitForPod('pauser sees paused disabled', soloPod(NS, 'wait-pauser', 'pauser', []), (_p, w) => JSON.stringify(w) === JSON.stringify([disabledWarning]));
      const { stored: pod, warnings } = await kube.createPod(soloPod(NS, 'pauser-pod', 'pauser', USER_ENV));
      assert.deepEqual(warnings, [disabledWarning]);
      assert.equal(pod.metadata.annotations?.[INJECTED], undefined);
      assert.deepEqual(agentEnv(pod), USER_ENV);
    }
  });
});

describe('secrets never leak', () => {
  test('the canaries in Secret data and in a pod env value never reach a warning, a denial message or the service log', async () => {
    // One more pod carrying the env canary; its log line proves the log has caught up.
    await kube.createPod(soloPod(NS, 'canary-last', 'keyed-agent', USER_ENV));
    await admissionLines(env, 'Pod', NS, 'canary-last');
    await assertNoCanaries(env, kube, [CANARY_SECRET, CANARY_ENV]);
    // The canaries were really planted, so their absence above means something.
    const planted = await kube.getJson<{ data: Record<string, string> }>('secret', NS, 'api-key');
    assert.equal(Buffer.from(planted.data['key'] ?? '', 'base64').toString(), CANARY_SECRET);
    const pod = await kube.getJson<Pod>('pod', NS, 'canary-last');
    assert.deepEqual(agentEnv(pod)?.[0], { name: 'MY_PAT', value: CANARY_ENV });
    assert.ok(kube.stderr.some((s) => s.includes('denied the request')), 'denial messages were among what was checked');
  });
});

// --- helpers ----------------------------------------------------------------------------------

interface CrdJson {
  spec: { versions: { name: string; schema?: { openAPIV3Schema?: { properties?: Record<string, { properties?: Record<string, unknown> }> } } }[] };
}

function connectorSpecSchema(crd: CrdJson): Record<string, unknown> {
  const version = crd.spec.versions.find((v) => v.name === 'v1alpha1');
  const spec = version?.schema?.openAPIV3Schema?.properties?.['spec']?.properties;
  assert.ok(spec, 'the connector CRD has a spec schema');
  return spec;
}

function normalizeText(text: string, replace: readonly [string, string][]): string {
  let out = text;
  for (const [from, to] of replace) out = out.split(from).join(to);
  return out;
}

/** A log line without its uid and timing, with the case's names and reference replaced. */
function normalizeLine(line: LogLine, replace: readonly [string, string][]): unknown {
  const { raw: _raw, uid: _uid, time: _time, ms: _ms, ...rest } = line;
  const walk = (v: unknown): unknown =>
    typeof v === 'string' ? normalizeText(v, replace) : Array.isArray(v) ? v.map(walk) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)])) : v;
  return walk(rest);
}
