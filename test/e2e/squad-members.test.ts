// End-to-end: squad members added to a running squad pod as ephemeral containers (SPEC.md,
// "Changes in the platform since the first contract"). Everything goes through a real
// kube-apiserver: members are added exactly as the platform's operator adds them (a
// strategic merge patch on the `pods/ephemeralcontainers` subresource, then the member
// label), debug containers with the real `kubectl debug`, and every assertion is on what
// the API server stored (or returned for a dry run).
//
// The first test is fact-finding: a second, tiny mutating webhook of the test's own, in a
// namespace of its own that is not enabled for the service, shows what the API server keeps
// of a mutating webhook's patch on this subresource and which request fields it sends.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { startProbeWebhook, type ProbeWebhook } from './fixtures/probe-webhook.ts';
import { startEnvironment, stopEnvironment, warningsOf, type Environment, type KubectlResult } from './harness/index.ts';
import { log } from './harness/log.ts';
import { poll } from './harness/poll.ts';

/** Enabled for the service. */
const NS = 'e2e-squad';
/** The same agents and connectors, but not enabled: the service is never called there. */
const OFF_NS = 'e2e-squad-off';
/** Only the probe webhook selects this namespace; not enabled for the service. */
const PROBE_NS = 'e2e-ephemeral-probe';
const PROBE_CONFIG = 'e2e-ephemeral-probe';

const API = 'komputer.komputer.ai/v1alpha1';
const INJECTED = 'komputer.ai/injected-connectors';
const IMAGE = 'ghcr.io/komputer-ai/agent:0.9';
const SQUAD = 'alpha';

// Token-like canaries: the Secret's data and a user's literal env value must never reach a
// response (the Secret's), a warning or the service's log (debug level in the harness).
const CANARY_SECRET = 'ghp_E2ECANARYsquadSecretData0123456789abcdefAB';
const CANARY_ENV = 'ghp_E2ECANARYsquadPodEnvValue0123456789abcdefA';

let env: Environment;
let probe: ProbeWebhook | undefined;

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  image?: string;
  env?: EnvVar[];
  [field: string]: unknown;
}
interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  };
  spec: { containers: Container[]; ephemeralContainers?: Container[] };
}

// ---------------------------------------------------------------------------------------
// Talking to the API server: node:https as admin, keeping every response body and warning
// (for the canary check at the end).

const allResponses: string[] = [];
const allWarnings: string[] = [];

interface ApiResult {
  readonly status: number;
  readonly text: string;
  readonly warnings: string[];
}

/** `299 - "text"` (RFC 7234 warn-text, quoted-string escapes) -> text. */
function warningText(header: string): string {
  const m = /^\d{3} \S+ "((?:[^"\\]|\\.)*)"/.exec(header);
  return m?.[1] === undefined ? header : m[1].replace(/\\(.)/g, '$1');
}

function api(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResult> {
  const url = new URL(path, env.controlPlane.server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method,
        ca: env.controlPlane.caCert,
        agent: false,
        headers: {
          authorization: `Bearer ${env.controlPlane.adminToken}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': contentType }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const warnings = (res.headersDistinct['warning'] ?? []).map(warningText);
          allResponses.push(text);
          allWarnings.push(...warnings);
          resolve({ status: res.statusCode ?? 0, text, warnings });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function kubectl(args: readonly string[], input?: string): Promise<KubectlResult> {
  const result = await env.kubectl(args, { ...(input === undefined ? {} : { input }), allowFailure: true });
  allResponses.push(result.stdout);
  allWarnings.push(...warningsOf(result));
  return result;
}

async function createPod(pod: Pod): Promise<Pod> {
  const namespace = pod.metadata.namespace ?? NS;
  const r = await api('POST', `/api/v1/namespaces/${namespace}/pods`, pod);
  assert.equal(r.status, 201, `create pod ${namespace}/${pod.metadata.name}: ${r.text}`);
  return JSON.parse(r.text) as Pod;
}

async function getPod(namespace: string, name: string): Promise<Pod> {
  const r = await api('GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text) as Pod;
}

interface Addition extends ApiResult {
  /** The pod the API server answered with (stored, or for a dry run what would be). */
  readonly pod: Pod | undefined;
}

/** What the operator does: a strategic merge patch on the pods/ephemeralcontainers subresource. */
async function addEphemeral(namespace: string, pod: string, container: Container, options: { dryRun?: boolean } = {}): Promise<Addition> {
  const r = await api(
    'PATCH',
    `/api/v1/namespaces/${namespace}/pods/${pod}/ephemeralcontainers${options.dryRun === true ? '?dryRun=All' : ''}`,
    { spec: { ephemeralContainers: [container] } },
    'application/strategic-merge-patch+json',
  );
  return { ...r, pod: r.status === 200 ? (JSON.parse(r.text) as Pod) : undefined };
}

/** The operator's second step: the member label on the pod (a plain pod UPDATE). */
async function labelMember(namespace: string, pod: string, agent: string): Promise<ApiResult> {
  const r = await api('PATCH', `/api/v1/namespaces/${namespace}/pods/${pod}`, { metadata: { labels: { [`komputer.ai/member-${agent}`]: 'true' } } }, 'application/merge-patch+json');
  assert.equal(r.status, 200, r.text);
  return r;
}

function ephemeral(pod: Pod | undefined, name: string): Container | undefined {
  return pod?.spec.ephemeralContainers?.find((c) => c.name === name);
}

function container(pod: Pod, name: string): Container {
  const c = pod.spec.containers.find((x) => x.name === name);
  assert.ok(c, `container ${name} exists`);
  return c;
}

// ---------------------------------------------------------------------------------------
// The cluster: connectors, Secrets, agents.

function connector(namespace: string, name: string, spec: Record<string, unknown>): object {
  return { apiVersion: API, kind: 'KomputerConnector', metadata: { name, namespace }, spec: { type: 'remote', service: name, ...spec } };
}

function agent(namespace: string, name: string, connectors: string[], squad: string): object {
  return {
    apiVersion: API,
    kind: 'KomputerAgent',
    metadata: { name, namespace, labels: { 'komputer.ai/squad': squad } },
    spec: { instructions: `e2e agent ${name}: never runs`, connectors },
  };
}

function secret(namespace: string, name: string, data: Record<string, string>): object {
  const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  return { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name, namespace }, data: encoded };
}

function teamObjects(namespace: string): object[] {
  return [
    secret(namespace, 'github-token', { token: CANARY_SECRET }),
    secret(namespace, 'slack-token', { xoxp: 'xoxp-not-a-real-token' }),
    secret(namespace, 'wiki-key', { 'api-key': 'not-a-real-key' }),
    connector(namespace, 'github', { url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } }),
    connector(namespace, 'slack', { url: 'https://mcp.slack.com/mcp', authType: 'token', authSecretKeyRef: { name: 'slack-token', key: 'xoxp' } }),
    // Header auth and an `&` in the URL: Go's encoding/json writes it as \u0026.
    connector(namespace, 'wiki', { url: 'https://wiki.example.com/mcp?space=eng&lang=en', authType: 'header', headerName: 'X-API-Key', authSecretKeyRef: { name: 'wiki-key', key: 'api-key' } }),
  ];
}

function teamAgents(namespace: string): object[] {
  return [
    agent(namespace, 'planner', ['slack'], SQUAD),
    // Token refs in the agent's order; the server map's keys sorted; a missing connector skipped.
    agent(namespace, 'coder', ['slack', 'github', 'wiki', 'missing'], SQUAD),
    // Named like a possible member, but in another squad.
    agent(namespace, 'reviewer', ['github'], 'beta'),
  ];
}

function tokenRef(name: string, secretName: string, key: string): EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: secretName, key } } };
}

const ROLE_CODER: EnvVar = { name: 'ROLE', value: 'coder' };
const GITHUB_TOKEN = tokenRef('CONNECTOR_GITHUB_TOKEN', 'github-token', 'token');
const SLACK_TOKEN = tokenRef('CONNECTOR_SLACK_TOKEN', 'slack-token', 'xoxp');
const WIKI_TOKEN = tokenRef('CONNECTOR_WIKI_TOKEN', 'wiki-key', 'api-key');
const MCP_GITHUB = '"github":{"type":"http","url":"https://api.githubcopilot.com/mcp/","tokenEnv":"CONNECTOR_GITHUB_TOKEN","authType":"token"}';
const MCP_SLACK = '"slack":{"type":"http","url":"https://mcp.slack.com/mcp","tokenEnv":"CONNECTOR_SLACK_TOKEN","authType":"token"}';
const MCP_WIKI = '"wiki":{"type":"http","url":"https://wiki.example.com/mcp?space=eng\\u0026lang=en","tokenEnv":"CONNECTOR_WIKI_TOKEN","authType":"header","headerName":"X-API-Key"}';
/** What the member `coder` must be stored with: the user's env first, then what the operator would inject. */
const CODER_ENV: EnvVar[] = [ROLE_CODER, SLACK_TOKEN, GITHUB_TOKEN, WIKI_TOKEN, { name: 'KOMPUTER_MCP_SERVERS', value: `{${MCP_GITHUB},${MCP_SLACK},${MCP_WIKI}}` }];
const CODER_WARNINGS = [`connector missing not injected into agent coder: connector not found in namespace ${NS}`];
/** What the squad's first member gets at pod creation (the CREATE path, for comparison). */
const PLANNER_ENV: EnvVar[] = [{ name: 'ROLE', value: 'planner' }, SLACK_TOKEN, { name: 'KOMPUTER_MCP_SERVERS', value: `{${MCP_SLACK}}` }];

/** The member as the operator adds it. */
function coderMember(): Container {
  return { name: 'coder', image: IMAGE, env: [ROLE_CODER] };
}

/** A running squad with one member, `planner`; `coder` joins later. */
function squadPod(name: string, namespace = NS): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { 'komputer.ai/squad': 'true', 'komputer.ai/squad-name': SQUAD, 'komputer.ai/member-planner': 'true' },
    },
    spec: { containers: [{ name: 'planner', image: IMAGE, env: [{ name: 'ROLE', value: 'planner' }] }] },
  };
}

// ---------------------------------------------------------------------------------------
// The service's log: one JSON line per admission request.

interface AdmissionLine {
  msg?: string;
  namespace?: string;
  name?: string;
  kind?: string;
  operation?: string;
  subResource?: string;
  dryRun?: boolean;
  /** `patched` when the answer carried a JSON Patch, `allowed` when it carried none. */
  verdict?: string;
  reason?: string;
  injected?: string;
  warnings?: string[];
}

async function serviceLog(): Promise<string> {
  assert.ok(env.service, 'the service runs');
  return readFile(env.service.logFile, 'utf8');
}

function admissionLines(text: string): AdmissionLine[] {
  const lines: AdmissionLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as AdmissionLine;
      if (parsed.msg === 'admission') lines.push(parsed);
    } catch {
      // not a JSON line
    }
  }
  return lines;
}

/** Admission lines of the service for `pods/ephemeralcontainers` of one pod, polled until `count` are there. */
async function ephemeralLines(namespace: string, pod: string, count: number): Promise<AdmissionLine[]> {
  return poll(`${count} pods/ephemeralcontainers admission line(s) for ${namespace}/${pod} in the service log`, async () => {
    const lines = admissionLines(await serviceLog()).filter((l) => l.namespace === namespace && l.name === pod && l.subResource === 'ephemeralcontainers');
    return { ok: lines.length >= count, value: lines, detail: `${lines.length} so far` };
  });
}

let markers = 0;
/**
 * A request that surely reaches the service (a dry-run squad pod CREATE in NS), awaited in
 * its log: every request sent before it has been logged too, so an absence means something.
 */
async function logAfterMarker(): Promise<string> {
  const name = `marker-${++markers}`;
  const r = await api('POST', `/api/v1/namespaces/${NS}/pods?dryRun=All`, squadPod(name));
  assert.equal(r.status, 201, r.text);
  return poll(`the marker ${name} in the service log`, async () => {
    const text = await serviceLog();
    return { ok: admissionLines(text).some((l) => l.name === name), value: text, detail: `${text.length} bytes` };
  });
}

// ---------------------------------------------------------------------------------------

before(async () => {
  env = await startEnvironment();
  await env.createNamespace(NS, { enabled: true });
  await env.createNamespace(OFF_NS);
  await env.createNamespace(PROBE_NS);
  const applied = await kubectl(['apply', '--server-side', '--field-manager=e2e-squad', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...teamObjects(NS), ...teamObjects(OFF_NS)] }));
  assert.equal(applied.code, 0, applied.stderr);
  const agents = await kubectl(['apply', '--server-side', '--field-manager=e2e-squad', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...teamAgents(NS), ...teamAgents(OFF_NS)] }));
  assert.equal(agents.code, 0, agents.stderr);
  // The service's caches are eventually consistent: wait (through the CREATE path, with a
  // dry-run squad pod that has all three as containers) until they hold every agent and
  // connector. An agent's squad label comes in the same object as the agent.
  await poll('the service has seen the agents and connectors', async () => {
    const pod = squadPod('wait-for-caches');
    pod.metadata.labels = { ...pod.metadata.labels, 'komputer.ai/member-coder': 'true', 'komputer.ai/member-reviewer': 'true' };
    pod.spec.containers.push({ name: 'coder', image: IMAGE, env: [ROLE_CODER] }, { name: 'reviewer', image: IMAGE });
    const r = await api('POST', `/api/v1/namespaces/${NS}/pods?dryRun=All`, pod);
    if (r.status !== 201) return { ok: false, value: undefined, detail: r.text };
    const returned = JSON.parse(r.text) as Pod;
    const coder = container(returned, 'coder').env;
    const reviewer = container(returned, 'reviewer').env;
    return {
      ok: JSON.stringify(coder) === JSON.stringify(CODER_ENV) && JSON.stringify(reviewer?.[0]) === JSON.stringify(GITHUB_TOKEN),
      value: undefined,
      detail: `coder ${JSON.stringify(coder)}, reviewer ${JSON.stringify(reviewer)}, warnings ${JSON.stringify(r.warnings)}`,
    };
  });
});

after(async () => {
  await probe?.close();
  await stopEnvironment();
});

describe('fact-finding: a mutating webhook on pods/ephemeralcontainers', () => {
  test('the API server keeps only the ephemeral-container part of a patch, and sends kind Pod, subResource, UPDATE and oldObject', async () => {
    const probeAnnotation = 'probe.e2e.komputer.ai/annotation';
    const probeLabel = 'probe.e2e.komputer.ai/label';
    probe = await startProbeWebhook((request) => {
      if (request['subResource'] !== 'ephemeralcontainers') return {};
      const spec = (request['object'] as { spec?: { ephemeralContainers?: Container[] } } | undefined)?.spec;
      const oldSpec = (request['oldObject'] as { spec?: { ephemeralContainers?: Container[] } } | undefined)?.spec;
      const before = new Set((oldSpec?.ephemeralContainers ?? []).map((c) => c.name));
      const index = (spec?.ephemeralContainers ?? []).findIndex((c) => !before.has(c.name));
      const ops: object[] = [
        { op: 'add', path: `/metadata/annotations/${probeAnnotation.replace('/', '~1')}`, value: 'added-by-probe' },
        { op: 'add', path: `/metadata/labels/${probeLabel.replace('/', '~1')}`, value: 'added-by-probe' },
        { op: 'add', path: '/spec/containers/0/env/-', value: { name: 'PROBE_REGULAR', value: 'added-by-probe' } },
      ];
      if (index >= 0) ops.push({ op: 'add', path: `/spec/ephemeralContainers/${index}/env`, value: [{ name: 'PROBE_EPHEMERAL', value: 'added-by-probe' }] });
      return { patch: ops };
    });
    await env.apply({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: PROBE_CONFIG },
      webhooks: [
        {
          name: 'probe.e2e.komputer.ai',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          timeoutSeconds: 5,
          reinvocationPolicy: 'Never',
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods/ephemeralcontainers'], scope: 'Namespaced' }],
          clientConfig: { url: probe.url, caBundle: probe.caBundle },
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': PROBE_NS } },
        },
      ],
    });
    const created = await createPod({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'probe-pod', namespace: PROBE_NS, labels: { 'probe.e2e.komputer.ai/original': 'yes' }, annotations: { 'probe.e2e.komputer.ai/original': 'yes' } },
      spec: { containers: [{ name: 'main', image: IMAGE, env: [{ name: 'ORIGINAL', value: 'yes' }] }] },
    });

    // The API server picks the new configuration up asynchronously: dry-run additions until the probe is called.
    await poll('the API server calls the probe webhook', async () => {
      const r = await addEphemeral(PROBE_NS, 'probe-pod', { name: 'warm-up', image: 'busybox:1.36' }, { dryRun: true });
      return { ok: probe !== undefined && probe.requests.length > 0, value: undefined, detail: `HTTP ${r.status}, probe calls ${probe?.requests.length ?? 0}` };
    });
    const calledBefore = probe.requests.length;
    const added = await addEphemeral(PROBE_NS, 'probe-pod', { name: 'probe-debug', image: 'busybox:1.36' });
    assert.equal(added.status, 200, `the API server accepts the probe's patch: ${added.text}`);
    assert.equal(probe.requests.length, calledBefore + 1, 'the probe was called once for the real addition');
    const request = probe.requests.at(-1);
    assert.ok(request);
    const stored = await getPod(PROBE_NS, 'probe-pod');

    // What was kept and what was dropped, from the stored pod (and the PATCH answer).
    const observed = {
      podAnnotationAdded: stored.metadata.annotations?.[probeAnnotation] !== undefined,
      podLabelAdded: stored.metadata.labels?.[probeLabel] !== undefined,
      regularContainerEnvAdded: (container(stored, 'main').env ?? []).some((e) => e.name === 'PROBE_REGULAR'),
      ephemeralContainerEnvAdded: (ephemeral(stored, 'probe-debug')?.env ?? []).some((e) => e.name === 'PROBE_EPHEMERAL'),
      patchAnswerEqualsStored: JSON.stringify(added.pod?.spec) === JSON.stringify(stored.spec) && JSON.stringify(added.pod?.metadata.annotations) === JSON.stringify(stored.metadata.annotations),
      warnings: added.warnings,
    };
    log(`probe: what the API server kept of the probe's JSON Patch on pods/ephemeralcontainers: ${JSON.stringify(observed)}`);
    log(
      `probe: stored annotations ${JSON.stringify(stored.metadata.annotations)}, labels ${JSON.stringify(stored.metadata.labels)}, ` +
        `container main env ${JSON.stringify(container(stored, 'main').env)}, ephemeral probe-debug env ${JSON.stringify(ephemeral(stored, 'probe-debug')?.env)}`,
    );
    assert.deepEqual(stored.metadata.annotations, { 'probe.e2e.komputer.ai/original': 'yes' }, 'the pod annotation from the patch is dropped');
    assert.deepEqual(stored.metadata.labels, { 'probe.e2e.komputer.ai/original': 'yes' }, 'the pod label from the patch is dropped');
    assert.deepEqual(container(stored, 'main').env, [{ name: 'ORIGINAL', value: 'yes' }], "the regular container's env from the patch is dropped");
    assert.deepEqual(ephemeral(stored, 'probe-debug')?.env, [{ name: 'PROBE_EPHEMERAL', value: 'added-by-probe' }], "the new ephemeral container's env from the patch is kept");
    assert.deepEqual(container(stored, 'main'), container(created, 'main'), 'the regular container is exactly as created');
    assert.deepEqual(observed.warnings, [], 'the API server says nothing about the dropped parts');
    assert.deepEqual((stored.spec.ephemeralContainers ?? []).map((c) => c.name), ['probe-debug'], 'no dry-run warm-up container was stored');

    // The request as the probe received it.
    const oldObject = request['oldObject'] as Pod | undefined;
    const object = request['object'] as Pod | undefined;
    const fields = {
      kind: request['kind'],
      resource: request['resource'],
      subResource: request['subResource'],
      requestKind: request['requestKind'],
      requestResource: request['requestResource'],
      requestSubResource: request['requestSubResource'],
      operation: request['operation'],
      namespace: request['namespace'],
      name: request['name'],
      dryRun: request['dryRun'],
      options: request['options'],
      oldObjectPresent: oldObject !== undefined && oldObject !== null,
      oldObjectEphemeralContainers: (oldObject?.spec.ephemeralContainers ?? []).map((c) => c.name),
      objectEphemeralContainers: (object?.spec.ephemeralContainers ?? []).map((c) => c.name),
      objectKind: `${String(object?.apiVersion)} ${String(object?.kind)}`,
    };
    log(`probe: AdmissionReview request fields for the real addition: ${JSON.stringify(fields)}`);
    assert.deepEqual(fields.kind, { group: '', version: 'v1', kind: 'Pod' }, 'kind is Pod (what mutatePod checks), not EphemeralContainers');
    assert.equal(fields.subResource, 'ephemeralcontainers');
    assert.equal(fields.operation, 'UPDATE');
    assert.equal(fields.oldObjectPresent, true, 'oldObject is sent: the handler tells new containers from old ones by it');
    assert.deepEqual(fields.oldObjectEphemeralContainers, []);
    assert.deepEqual(fields.objectEphemeralContainers, ['probe-debug']);
    assert.deepEqual(fields.resource, { group: '', version: 'v1', resource: 'pods' });
    assert.equal(fields.namespace, PROBE_NS);
    assert.equal(fields.name, 'probe-pod');
    assert.equal(fields.dryRun, false);
    // The warm-up dry runs reached the probe with dryRun true.
    assert.ok(probe.requests.slice(0, calledBefore).every((r) => r['dryRun'] === true));

    // Done: the probe must not see anything else.
    const deleted = await kubectl(['delete', 'mutatingwebhookconfiguration', PROBE_CONFIG]);
    assert.equal(deleted.code, 0, deleted.stderr);
  });
});

describe('a squad member added as an ephemeral container', () => {
  /** The env the real addition stored, for the dry-run comparison. */
  let storedCoderEnv: EnvVar[] | undefined;

  test("the operator's way (subresource strategic merge patch, then the member label): the member gets its connectors, nothing else changes", async () => {
    const created = await createPod(squadPod('squad-alpha-0'));
    // The CREATE path injected the first member, for comparison.
    assert.deepEqual(container(created, 'planner').env, PLANNER_ENV);
    assert.equal(created.metadata.annotations?.[INJECTED], 'slack');
    const before = await getPod(NS, 'squad-alpha-0');

    const added = await addEphemeral(NS, 'squad-alpha-0', coderMember());
    assert.equal(added.status, 200, added.text);
    assert.deepEqual(added.warnings, CODER_WARNINGS, 'the same skip warning as at pod creation');
    const labelled = await labelMember(NS, 'squad-alpha-0', 'coder');
    assert.deepEqual(labelled.warnings, []);

    const stored = await getPod(NS, 'squad-alpha-0');
    const coder = ephemeral(stored, 'coder');
    assert.ok(coder, 'the ephemeral container coder is stored');
    log(`member coder: stored env of ephemeral container coder: ${JSON.stringify(coder.env)}`);
    assert.deepEqual(coder.env, CODER_ENV);
    assert.equal(coder.image, IMAGE);
    // The exact bytes, and what the runtime's plain JSON parser makes of them.
    const servers = coder.env?.at(-1)?.value ?? '';
    assert.equal(servers, `{${MCP_GITHUB},${MCP_SLACK},${MCP_WIKI}}`);
    const parsed = JSON.parse(servers) as Record<string, Record<string, string>>;
    assert.deepEqual(Object.keys(parsed), ['github', 'slack', 'wiki']);
    assert.equal(parsed['wiki']?.['url'], 'https://wiki.example.com/mcp?space=eng&lang=en');
    assert.deepEqual(ephemeral(added.pod, 'coder')?.env, CODER_ENV, 'the PATCH answer shows the same env');
    storedCoderEnv = coder.env;

    // Nothing else changed: the regular member, the annotations, the labels but the new one.
    assert.deepEqual(stored.spec.containers, before.spec.containers);
    assert.deepEqual(container(stored, 'planner').env, PLANNER_ENV);
    assert.deepEqual(stored.metadata.annotations, before.metadata.annotations, 'no annotation changes (the API server would drop them anyway)');
    assert.deepEqual(stored.metadata.labels, { ...before.metadata.labels, 'komputer.ai/member-coder': 'true' });
    assert.deepEqual((stored.spec.ephemeralContainers ?? []).map((c) => c.name), ['coder']);

    // The service's own account of it.
    const [line] = await ephemeralLines(NS, 'squad-alpha-0', 1);
    assert.equal(line?.operation, 'UPDATE');
    assert.equal(line?.kind, 'Pod');
    assert.equal(line?.dryRun, false);
    assert.equal(line?.verdict, 'patched');
    assert.equal(line?.injected, 'coder=slack,github,wiki');
    assert.deepEqual(line?.warnings, CODER_WARNINGS);
  });

  test('the same addition sent again changes nothing and the service answers without a patch', async () => {
    const before = await getPod(NS, 'squad-alpha-0');
    const again = await addEphemeral(NS, 'squad-alpha-0', coderMember());
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.warnings, []);
    const stored = await getPod(NS, 'squad-alpha-0');
    assert.equal(stored.metadata.resourceVersion, before.metadata.resourceVersion, 'nothing was written');
    assert.deepEqual(stored.spec, before.spec);
    assert.deepEqual(ephemeral(stored, 'coder')?.env, CODER_ENV, 'still exactly once each');
    const lines = await ephemeralLines(NS, 'squad-alpha-0', 2);
    const last = lines.at(-1);
    log(`repeated addition: the service's log line: ${JSON.stringify({ verdict: last?.verdict, reason: last?.reason, injected: last?.injected, warnings: last?.warnings })}`);
    assert.equal(last?.verdict, 'allowed', 'answered without a patch');
    assert.equal(last?.injected, undefined);
    assert.equal(last?.reason, 'no new ephemeral container');
  });

  test('kubectl debug: a debug container is left alone; one named like an agent of another squad too, with a warning', async () => {
    await createPod(squadPod('squad-alpha-debug'));
    const before = await getPod(NS, 'squad-alpha-debug');

    const debug = await kubectl(['debug', 'squad-alpha-debug', '-n', NS, '-c', 'debugger', '--image=busybox:1.36', '--attach=false', '--quiet']);
    assert.equal(debug.code, 0, debug.stderr);
    assert.deepEqual(warningsOf(debug), [], 'not an agent: nothing to say');

    const reviewer = await kubectl(['debug', 'squad-alpha-debug', '-n', NS, '-c', 'reviewer', '--image=busybox:1.36', '--attach=false', '--quiet', `--env=MY_PAT=${CANARY_ENV}`]);
    assert.equal(reviewer.code, 0, reviewer.stderr);
    log(`kubectl debug -c reviewer: stderr ${JSON.stringify(reviewer.stderr)}`);
    assert.deepEqual(warningsOf(reviewer), [
      `ephemeral container reviewer: KomputerAgent reviewer is not a member of squad ${SQUAD} (its komputer.ai/squad label is "beta"), nothing injected`,
    ]);

    const stored = await getPod(NS, 'squad-alpha-debug');
    const debugger_ = ephemeral(stored, 'debugger');
    assert.ok(debugger_, 'kubectl debug stored its container');
    log(`kubectl debug: stored ephemeral containers ${JSON.stringify(stored.spec.ephemeralContainers?.map((c) => ({ name: c.name, image: c.image, env: c.env })))}`);
    assert.equal(debugger_.env, undefined, 'no env injected into the debug container');
    assert.deepEqual(ephemeral(stored, 'reviewer')?.env, [{ name: 'MY_PAT', value: CANARY_ENV }], "only the user's own env");
    assert.deepEqual(stored.spec.containers, before.spec.containers);
    assert.deepEqual(stored.metadata.annotations, before.metadata.annotations);
    assert.deepEqual(stored.metadata.labels, before.metadata.labels);

    const lines = await ephemeralLines(NS, 'squad-alpha-debug', 2);
    assert.deepEqual(
      lines.map((l) => ({ verdict: l.verdict, injected: l.injected })),
      [
        { verdict: 'allowed', injected: undefined },
        { verdict: 'allowed', injected: undefined },
      ],
      'the service was asked both times and answered without a patch',
    );
    assert.equal(lines[0]?.reason, `no new ephemeral container is a member of squad ${SQUAD} (left alone: debugger)`);
  });

  test('a dry-run addition (?dryRun=All) answers with the same env the real addition stored, and stores nothing', async () => {
    await createPod(squadPod('squad-alpha-dry'));
    const before = await getPod(NS, 'squad-alpha-dry');
    const dry = await addEphemeral(NS, 'squad-alpha-dry', coderMember(), { dryRun: true });
    assert.equal(dry.status, 200, dry.text);
    assert.deepEqual(dry.warnings, CODER_WARNINGS);
    assert.deepEqual(ephemeral(dry.pod, 'coder')?.env, storedCoderEnv ?? CODER_ENV, 'the env the real addition stored');
    assert.deepEqual(ephemeral(dry.pod, 'coder')?.env, CODER_ENV);
    assert.deepEqual(dry.pod?.spec.containers, before.spec.containers);
    const stored = await getPod(NS, 'squad-alpha-dry');
    assert.equal(stored.metadata.resourceVersion, before.metadata.resourceVersion, 'nothing was written');
    assert.equal(stored.spec.ephemeralContainers, undefined, 'no ephemeral container stored');
    const [line] = await ephemeralLines(NS, 'squad-alpha-dry', 1);
    assert.equal(line?.dryRun, true);
    assert.equal(line?.verdict, 'patched');
    assert.equal(line?.injected, 'coder=slack,github,wiki');
  });

  test('outside an enabled namespace the addition never reaches the service and the member stays untouched', async () => {
    const created = await createPod(squadPod('squad-alpha-0', OFF_NS));
    assert.deepEqual(container(created, 'planner').env, [{ name: 'ROLE', value: 'planner' }], 'not injected at creation either');
    const added = await addEphemeral(OFF_NS, 'squad-alpha-0', coderMember());
    assert.equal(added.status, 200, added.text);
    assert.deepEqual(added.warnings, []);
    await labelMember(OFF_NS, 'squad-alpha-0', 'coder');
    const stored = await getPod(OFF_NS, 'squad-alpha-0');
    assert.deepEqual(ephemeral(stored, 'coder')?.env, [ROLE_CODER]);
    assert.equal(stored.metadata.annotations, undefined);

    const lines = admissionLines(await logAfterMarker());
    assert.deepEqual(
      lines.filter((l) => l.namespace === OFF_NS || l.namespace === PROBE_NS),
      [],
      'the selectors keep the API server from sending these namespaces to the service',
    );
    // Pod UPDATEs (the member labels) are not even sent: only CREATE and the subresource are.
    assert.deepEqual(
      lines.filter((l) => l.kind === 'Pod' && l.operation !== 'CREATE' && l.subResource !== 'ephemeralcontainers'),
      [],
      'no pod UPDATE reached the service',
    );
  });
});

describe('secrets never leak', () => {
  test('the Secret canary is in no response, no warning and not in the service log; the env canary in no warning nor log', async () => {
    const text = await logAfterMarker();
    assert.match(text, /"level":20\b/, 'the service logs at debug level here, so the check covers debug lines');
    assert.ok(admissionLines(text).some((l) => l.subResource === 'ephemeralcontainers'), 'the log covers the subresource requests');
    for (const form of [CANARY_SECRET, Buffer.from(CANARY_SECRET).toString('base64')]) {
      assert.equal(text.includes(form), false, `the service log must not contain ${form}`);
      assert.deepEqual(allWarnings.filter((w) => w.includes(form)), [], `no warning may contain ${form}`);
      assert.deepEqual(allResponses.filter((r) => r.includes(form)), [], `no response may contain ${form}`);
    }
    for (const form of [CANARY_ENV, Buffer.from(CANARY_ENV).toString('base64')]) {
      assert.equal(text.includes(form), false, `the service log must not contain ${form}`);
      assert.deepEqual(allWarnings.filter((w) => w.includes(form)), [], `no warning may contain ${form}`);
    }
    // Both canaries were really planted, so their absence above means something.
    const planted = await api('GET', `/api/v1/namespaces/${NS}/secrets/github-token`);
    assert.equal(Buffer.from((JSON.parse(planted.text) as { data: Record<string, string> }).data['token'] ?? '', 'base64').toString(), CANARY_SECRET);
    assert.ok(allResponses.some((r) => r.includes(CANARY_ENV)), "the user's env value was stored and read back");
    assert.ok(allResponses.length > 20, `${allResponses.length} responses checked`);
  });
});

