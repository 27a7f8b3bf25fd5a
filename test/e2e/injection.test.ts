// End-to-end: the pod mutation through a real kube-apiserver. Every pod here is created
// with the built kubectl as admin and read back from the API server, so what is asserted is
// what the API server stored after applying the service's JSON Patch (an invalid patch
// would fail the create). The scenarios follow SPEC.md ("What gets injected") and the
// golden cases in test/golden/.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { startEnvironment, stopEnvironment, warningsOf, type Environment, type KubectlResult } from './harness/index.ts';
import { poll } from './harness/poll.ts';

const NS = 'e2e-inject';
/** Same objects, but the namespace is not labelled: the webhook must not touch its pods. */
const OFF_NS = 'e2e-inject-off';
/** Owns connectors shared (or not) with NS. Not enabled itself: that does not matter for sharing. */
const PLATFORM = 'e2e-platform';
/** Labelled only during the cache test. */
const LATE_NS = 'e2e-inject-late';

const API = 'komputer.komputer.ai/v1alpha1';
const INJECTED = 'komputer.ai/injected-connectors';
const OPT_OUT = 'komputer.ai/inject-connectors';
const SHARED_WITH = 'komputer.ai/shared-with-namespaces';

// Token-like canaries: planted in Secret data and in pod env values, they must never reach
// the service's log (written at debug level by the harness) nor any admission warning.
const CANARY_SECRET = 'ghp_E2ECANARYsecretData0123456789abcdefABCD';
const CANARY_ENV = 'ghp_E2ECANARYpodEnvValue0123456789abcdefABCD';
const CANARY_STALE = 'xoxp-E2ECANARY-stale-literal-token-0123456789';
const CANARIES = [CANARY_SECRET, CANARY_ENV, CANARY_STALE];

let env: Environment;

interface SecretKeyRef {
  name: string;
  key: string;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: SecretKeyRef };
}
interface Container {
  name: string;
  image?: string;
  env?: EnvVar[];
}
interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: unknown[];
    uid?: string;
  };
  spec: { containers: Container[] };
}

// Every warning kubectl printed in this file, for the canary check at the end.
const allWarnings: string[] = [];

async function kubectl(args: readonly string[], options: { input?: string; allowFailure?: boolean } = {}): Promise<KubectlResult> {
  const result = await env.kubectl(args, { ...(options.input === undefined ? {} : { input: options.input }), allowFailure: true });
  allWarnings.push(...warningsOf(result));
  if (result.code !== 0 && options.allowFailure !== true) {
    throw new Error(`kubectl ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim()}`);
  }
  return result;
}

/** Server-side apply (as admin), keeping kubectl's warnings. */
async function apply(objects: readonly object[]): Promise<KubectlResult> {
  return kubectl(['apply', '--server-side', '--field-manager=e2e-injection', '--force-conflicts', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  });
}

function connector(namespace: string, name: string, spec: Record<string, unknown>, annotations?: Record<string, string>): object {
  return {
    apiVersion: API,
    kind: 'KomputerConnector',
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    spec: { type: 'remote', service: name, ...spec },
  };
}

function agent(namespace: string, name: string, connectors: string[], officeManager?: string): object {
  return {
    apiVersion: API,
    kind: 'KomputerAgent',
    metadata: { name, namespace },
    spec: { instructions: `e2e agent ${name}: never runs`, connectors, ...(officeManager ? { officeManager } : {}) },
  };
}

function secret(namespace: string, name: string, data: Record<string, string>, labels?: Record<string, string>): object {
  const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  return { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name, namespace, ...(labels ? { labels } : {}) }, data: encoded };
}

function soloLabels(agentName: string): Record<string, string> {
  return { 'komputer.ai/agent-name': agentName, 'komputer.ai/squad': 'false', [`komputer.ai/member-${agentName}`]: 'true' };
}

const USER_ENV: EnvVar[] = [
  { name: 'MODEL', value: 'claude-sonnet' },
  { name: 'WORKDIR', value: '/workspace' },
  { name: 'PROMPT_FILE', value: '$(WORKDIR)/prompt.md' },
];

function soloPod(name: string, agentName: string, options: { namespace?: string; env?: EnvVar[]; annotations?: Record<string, string> } = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: options.namespace ?? NS,
      labels: soloLabels(agentName),
      ...(options.annotations ? { annotations: options.annotations } : {}),
    },
    spec: {
      containers: [
        { name: 'agent', image: 'ghcr.io/komputer-ai/agent:0.9', env: structuredClone(options.env ?? USER_ENV) },
        { name: 'sidecar', image: 'busybox' },
      ],
    },
  };
}

/** `kubectl create` of a pod; fails the test when the API server refuses it. */
async function createPod(pod: Pod, extraArgs: string[] = []): Promise<{ returned: Pod; warnings: string[] }> {
  const result = await kubectl(['create', ...extraArgs, '-o', 'json', '-f', '-'], { input: JSON.stringify(pod), allowFailure: true });
  assert.equal(result.code, 0, `the API server must accept the pod (and the service's patch): ${result.stderr}`);
  return { returned: JSON.parse(result.stdout) as Pod, warnings: warningsOf(result) };
}

async function getPod(namespace: string, name: string): Promise<Pod> {
  return JSON.parse((await kubectl(['get', 'pod', name, '-n', namespace, '-o', 'json'])).stdout) as Pod;
}

/**
 * The stored pod passes the API server's validation as a whole (an update with the same
 * object re-validates the full spec), and no container carries an env var twice.
 */
async function assertStoredPodValid(pod: Pod): Promise<void> {
  for (const c of pod.spec.containers) {
    const names = (c.env ?? []).map((e) => e.name);
    assert.deepEqual(names, [...new Set(names)], `container ${c.name}: no duplicate env names`);
    for (const e of c.env ?? []) {
      assert.ok((e.value === undefined) !== (e.valueFrom === undefined), `container ${c.name} env ${e.name}: exactly one of value/valueFrom`);
    }
  }
  const replaced = await kubectl(['replace', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(pod), allowFailure: true });
  assert.equal(replaced.code, 0, `stored pod ${pod.metadata.name} re-validates: ${replaced.stderr}`);
  assert.deepEqual(warningsOf(replaced), [], 'the stored pod draws no API server warnings');
}

function containerEnv(pod: Pod, container: string): EnvVar[] | undefined {
  const c = pod.spec.containers.find((x) => x.name === container);
  assert.ok(c, `container ${container} exists`);
  return c.env;
}

function tokenRef(name: string, secretName: string, key: string): EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: secretName, key } } };
}

function mcp(value: string): EnvVar {
  return { name: 'KOMPUTER_MCP_SERVERS', value };
}

const GITHUB_TOKEN = tokenRef('CONNECTOR_GITHUB_TOKEN', 'github-token', 'token');
const NOTION_TOKEN = tokenRef('CONNECTOR_NOTION_TOKEN', 'notion-oauth', 'oauth.json');
const SLACK_TOKEN = tokenRef('CONNECTOR_SLACK_TOKEN', 'slack-token', 'xoxp');
const MCP_GITHUB = '"github":{"type":"http","url":"https://api.githubcopilot.com/mcp/","tokenEnv":"CONNECTOR_GITHUB_TOKEN","authType":"token"}';
const MCP_NOTION = '"notion":{"type":"http","url":"https://mcp.notion.com/mcp","tokenEnv":"CONNECTOR_NOTION_TOKEN","authType":"oauth"}';
const MCP_SLACK = '"slack":{"type":"http","url":"https://mcp.slack.com/mcp","tokenEnv":"CONNECTOR_SLACK_TOKEN","authType":"token"}';


/** Dry-run creates a pod for `agentName` until the service's caches give `annotation`. */
async function waitForInjection(namespace: string, agentName: string, annotation: string | undefined, check: (pod: Pod, warnings: string[]) => boolean = () => true): Promise<Pod> {
  const pod = await poll(`pod for agent ${namespace}/${agentName} injected with ${annotation}`, async () => {
    const result = await kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], {
      input: JSON.stringify(soloPod(`wait-${agentName}`, agentName, { namespace })),
      allowFailure: true,
    });
    if (result.code !== 0) return { ok: false, value: undefined, detail: result.stderr.trim() };
    const returned = JSON.parse(result.stdout) as Pod;
    const got = returned.metadata.annotations?.[INJECTED];
    return { ok: got === annotation && check(returned, warningsOf(result)), value: returned, detail: `annotation ${JSON.stringify(got)}, warnings ${JSON.stringify(warningsOf(result))}` };
  });
  assert.ok(pod);
  return pod;
}

before(async () => {
  env = await startEnvironment();
  await env.createNamespace(NS, { enabled: true });
  await env.createNamespace(OFF_NS);
  await env.createNamespace(PLATFORM);
  await env.createNamespace(LATE_NS);

  const teamConnectors = (namespace: string): object[] => [
    connector(namespace, 'github', { url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } }),
    connector(namespace, 'slack', { url: 'https://mcp.slack.com/mcp', authType: 'token', authSecretKeyRef: { name: 'slack-token', key: 'xoxp' } }),
    connector(namespace, 'notion', { url: 'https://mcp.notion.com/mcp', authType: 'oauth', authSecretKeyRef: { name: 'notion-oauth', key: 'oauth.json' } }),
  ];
  await apply([
    secret(NS, 'github-token', { token: CANARY_SECRET }),
    secret(NS, 'slack-token', { xoxp: 'xoxp-not-a-real-token' }),
    secret(NS, 'notion-oauth', { 'oauth.json': '{"access_token":"not-a-real-token"}' }),
    // What the platform mirrors for the shared connector (SPEC.md): never created by the service.
    secret(NS, 'linear-token-from-e2e-platform', { token: 'lin_api_not-a-real-token' }, {
      'komputer.ai/synced-from-namespace': PLATFORM,
      'komputer.ai/synced-for-connector': 'linear',
    }),
    ...teamConnectors(NS),
    ...teamConnectors(OFF_NS),
    connector(NS, 'my-git.hub', { url: 'https://git.example.com/mcp', authType: 'token', authSecretKeyRef: { name: 'my-git-hub', key: 'pat' } }),
    connector(NS, 'docs', { url: 'http://docs-mcp.tools.svc:8080/mcp', authType: 'oauth' }),
    connector(PLATFORM, 'linear', { url: 'https://mcp.linear.app/mcp', authType: 'token', authSecretKeyRef: { name: 'linear-token', key: 'token' } }, {
      [SHARED_WITH]: `team-b, ${NS}`,
    }),
    connector(PLATFORM, 'jira', { url: 'https://mcp.atlassian.com/v1/mcp', authType: 'oauth', authSecretKeyRef: { name: 'jira-oauth', key: 'token' } }, {
      [SHARED_WITH]: 'team-b',
    }),
    connector(PLATFORM, 'github', { url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'org-github', key: 'token' } }, {
      [SHARED_WITH]: '*',
    }),
  ]);
  await apply([
    agent(NS, 'researcher', ['github', 'notion', 'slack']),
    agent(OFF_NS, 'researcher', ['github', 'notion', 'slack']),
    agent(NS, 'planner', ['slack']),
    agent(NS, 'coder', ['github', 'slack']),
    agent(NS, 'boss', ['github', 'notion']),
    agent(NS, 'helper', ['slack', 'github'], 'boss'),
    agent(NS, 'stale', ['github', 'slack']),
    agent(NS, 'tools', ['my-git.hub', 'docs']),
    agent(NS, 'crossy', ['github', `${PLATFORM}/linear`, `${PLATFORM}/jira`]),
    agent(NS, 'collider', ['github', `${PLATFORM}/github`, `${NS}/github`]),
  ]);
  // The service's caches are eventually consistent: wait until they hold what was applied.
  await waitForInjection(NS, 'researcher', 'github,notion,slack');
  await waitForInjection(NS, 'crossy', `github,${PLATFORM}/linear`);
  await waitForInjection(NS, 'helper', 'slack,github,notion');
  await waitForInjection(NS, 'collider', 'github');
  await waitForInjection(NS, 'tools', 'my-git.hub,docs');
  await waitForInjection(NS, 'stale', 'github,slack');
});
after(stopEnvironment);

describe('injection into agent pods', () => {
  test('an agent pod in an enabled namespace is stored with the injected env, user env order kept', async () => {
    const { warnings } = await createPod(soloPod('researcher-pod', 'researcher'));
    assert.deepEqual(warnings, []);
    const stored = await getPod(NS, 'researcher-pod');
    assert.equal(stored.metadata.annotations?.[INJECTED], 'github,notion,slack');
    assert.deepEqual(containerEnv(stored, 'agent'), [
      ...USER_ENV,
      GITHUB_TOKEN,
      NOTION_TOKEN,
      SLACK_TOKEN,
      mcp(`{${MCP_GITHUB},${MCP_NOTION},${MCP_SLACK}}`),
    ]);
    // The runtime parses it with a plain JSON parser.
    const servers = JSON.parse(containerEnv(stored, 'agent')?.at(-1)?.value ?? '') as Record<string, Record<string, string>>;
    assert.deepEqual(Object.keys(servers), ['github', 'notion', 'slack']);
    assert.deepEqual(servers['github'], { type: 'http', url: 'https://api.githubcopilot.com/mcp/', tokenEnv: 'CONNECTOR_GITHUB_TOKEN', authType: 'token' });
    assert.equal(containerEnv(stored, 'sidecar'), undefined, 'only the agent container (the first one) is injected');
    await assertStoredPodValid(stored);
  });

  test('token variable names follow the connector name; a connector without a secret gets no tokenEnv', async () => {
    const { warnings } = await createPod(soloPod('tools-pod', 'tools', { env: [] }));
    assert.deepEqual(warnings, []);
    const stored = await getPod(NS, 'tools-pod');
    assert.equal(stored.metadata.annotations?.[INJECTED], 'my-git.hub,docs');
    assert.deepEqual(containerEnv(stored, 'agent'), [
      tokenRef('CONNECTOR_MY_GIT_HUB_TOKEN', 'my-git-hub', 'pat'),
      // Keys sorted bytewise, as the operator's Go encoding/json writes them.
      mcp(
        '{"docs":{"type":"http","url":"http://docs-mcp.tools.svc:8080/mcp","authType":"oauth"},' +
          '"my-git.hub":{"type":"http","url":"https://git.example.com/mcp","tokenEnv":"CONNECTOR_MY_GIT_HUB_TOKEN","authType":"token"}}',
      ),
    ]);
    await assertStoredPodValid(stored);
  });

  test('a pod in a namespace without the label is stored unchanged', async () => {
    const pod = soloPod('researcher-pod', 'researcher', { namespace: OFF_NS });
    const { warnings } = await createPod(pod);
    assert.deepEqual(warnings, [], 'the webhook is not even called there');
    const stored = await getPod(OFF_NS, 'researcher-pod');
    assert.equal(stored.metadata.annotations?.[INJECTED], undefined);
    assert.deepEqual(containerEnv(stored, 'agent'), USER_ENV);
    assert.equal(containerEnv(stored, 'sidecar'), undefined);
  });

  test('the opt-out annotation komputer.ai/inject-connectors: "false" leaves the pod unchanged', async () => {
    const { warnings } = await createPod(soloPod('opted-out', 'researcher', { annotations: { [OPT_OUT]: 'false' } }));
    assert.deepEqual(warnings, []);
    const stored = await getPod(NS, 'opted-out');
    assert.deepEqual(stored.metadata.annotations, { [OPT_OUT]: 'false' });
    assert.deepEqual(containerEnv(stored, 'agent'), USER_ENV);
    await assertStoredPodValid(stored);
  });

  test('a server-side dry-run create returns the injected pod and stores nothing', async () => {
    const { returned, warnings } = await createPod(soloPod('dry-run-pod', 'researcher'), ['--dry-run=server']);
    assert.deepEqual(warnings, []);
    assert.equal(returned.metadata.annotations?.[INJECTED], 'github,notion,slack');
    assert.deepEqual(containerEnv(returned, 'agent'), [...USER_ENV, GITHUB_TOKEN, NOTION_TOKEN, SLACK_TOKEN, mcp(`{${MCP_GITHUB},${MCP_NOTION},${MCP_SLACK}}`)]);
    const get = await kubectl(['get', 'pod', 'dry-run-pod', '-n', NS, '-o', 'name'], { allowFailure: true });
    assert.notEqual(get.code, 0);
    assert.match(get.stderr, /NotFound|not found/);
  });

  test('a squad pod gets per-member env in the container named after each member', async () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'squad-alpha-0',
        namespace: NS,
        labels: { 'komputer.ai/squad': 'true', 'komputer.ai/squad-name': 'alpha', 'komputer.ai/member-planner': 'true', 'komputer.ai/member-coder': 'true' },
      },
      spec: {
        containers: [
          { name: 'planner', image: 'ghcr.io/komputer-ai/agent:0.9', env: [{ name: 'ROLE', value: 'planner' }] },
          { name: 'coder', image: 'ghcr.io/komputer-ai/agent:0.9' },
          { name: 'proxy', image: 'envoyproxy/envoy:v1.31', env: [{ name: 'KOMPUTER_MCP_SERVERS', value: 'not mine' }] },
        ],
      },
    };
    const { warnings } = await createPod(pod);
    assert.deepEqual(warnings, []);
    const stored = await getPod(NS, 'squad-alpha-0');
    assert.equal(stored.metadata.annotations?.[INJECTED], 'slack,github');
    assert.deepEqual(containerEnv(stored, 'planner'), [{ name: 'ROLE', value: 'planner' }, SLACK_TOKEN, mcp(`{${MCP_SLACK}}`)]);
    assert.deepEqual(containerEnv(stored, 'coder'), [GITHUB_TOKEN, SLACK_TOKEN, mcp(`{${MCP_GITHUB},${MCP_SLACK}}`)]);
    assert.deepEqual(containerEnv(stored, 'proxy'), [{ name: 'KOMPUTER_MCP_SERVERS', value: 'not mine' }], 'a container that is not a member is untouched');
    await assertStoredPodValid(stored);
  });

  test('a generateName pod without metadata.name or metadata.namespace is injected', async () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: 'researcher-',
        labels: soloLabels('researcher'),
        ownerReferences: [{ apiVersion: API, kind: 'KomputerAgent', name: 'researcher', uid: '7f1c2a4e-0000-4000-8000-000000000001', controller: true }],
      },
      spec: { containers: [{ name: 'agent', image: 'ghcr.io/komputer-ai/agent:0.9' }] },
    };
    // --raw sends the body exactly as written: no name, no namespace; only the URL has it.
    const result = await kubectl(['create', '--raw', `/api/v1/namespaces/${NS}/pods`, '-f', '-'], { input: JSON.stringify(pod), allowFailure: true });
    assert.equal(result.code, 0, result.stderr);
    const created = JSON.parse(result.stdout) as Pod;
    const name = created.metadata.name ?? '';
    assert.match(name, /^researcher-[a-z0-9]{5}$/);
    const stored = await getPod(NS, name);
    assert.equal(stored.metadata.annotations?.[INJECTED], 'github,notion,slack');
    assert.deepEqual(containerEnv(stored, 'agent'), [GITHUB_TOKEN, NOTION_TOKEN, SLACK_TOKEN, mcp(`{${MCP_GITHUB},${MCP_NOTION},${MCP_SLACK}}`)]);
    await assertStoredPodValid(stored);
  });

  test("a sub-agent inherits its office manager's connectors: own first, then the manager's, no duplicates", async () => {
    const { warnings } = await createPod(soloPod('helper-pod', 'helper'));
    assert.deepEqual(warnings, []);
    const stored = await getPod(NS, 'helper-pod');
    assert.equal(stored.metadata.annotations?.[INJECTED], 'slack,github,notion');
    // Token variables in resolution order; the config's keys sorted as Go writes them.
    assert.deepEqual(containerEnv(stored, 'agent'), [...USER_ENV, SLACK_TOKEN, GITHUB_TOKEN, NOTION_TOKEN, mcp(`{${MCP_GITHUB},${MCP_NOTION},${MCP_SLACK}}`)]);
    await assertStoredPodValid(stored);
  });

  test('a shared cross-namespace connector uses the mirrored Secret; one not shared is skipped with a warning', async () => {
    const secretsBefore = (await kubectl(['get', 'secrets', '-n', NS, '-o', 'name'])).stdout.trim().split('\n').sort();
    const result = await kubectl(['create', '-o', 'json', '-f', '-'], { input: JSON.stringify(soloPod('crossy-pod', 'crossy')), allowFailure: true });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(
      result.stderr.includes(
        `Warning: connector ${PLATFORM}/jira not injected into agent crossy: not found in namespace ${PLATFORM}, or not shared with namespace ${NS} ` +
          '(its owner shares it with the komputer.ai/shared-with-namespaces annotation)\n',
      ),
      `kubectl prints the warning; stderr was: ${result.stderr}`,
    );
    assert.equal(warningsOf(result).length, 1);
    const stored = await getPod(NS, 'crossy-pod');
    assert.equal(stored.metadata.annotations?.[INJECTED], `github,${PLATFORM}/linear`);
    assert.deepEqual(containerEnv(stored, 'agent'), [
      ...USER_ENV,
      GITHUB_TOKEN,
      tokenRef('CONNECTOR_LINEAR_TOKEN', 'linear-token-from-e2e-platform', 'token'),
      mcp(`{${MCP_GITHUB},"linear":{"type":"http","url":"https://mcp.linear.app/mcp","tokenEnv":"CONNECTOR_LINEAR_TOKEN","authType":"token"}}`),
    ]);
    await assertStoredPodValid(stored);
    // Writing `otherns/name` never copies a Secret.
    const secretsAfter = (await kubectl(['get', 'secrets', '-n', NS, '-o', 'name'])).stdout.trim().split('\n').sort();
    assert.deepEqual(secretsAfter, secretsBefore);
  });

  test('two connectors with the same name from different namespaces collide: detected, the first kept, with a warning', async () => {
    const result = await kubectl(['create', '-o', 'json', '-f', '-'], { input: JSON.stringify(soloPod('collider-pod', 'collider')), allowFailure: true });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(warningsOf(result), [
      `connector ${PLATFORM}/github not injected into agent collider: its name collides with github (both would be MCP server "github"); the first is kept`,
    ]);
    const stored = await getPod(NS, 'collider-pod');
    assert.equal(stored.metadata.annotations?.[INJECTED], 'github');
    assert.deepEqual(containerEnv(stored, 'agent'), [...USER_ENV, GITHUB_TOKEN, mcp(`{${MCP_GITHUB}}`)]);
    await assertStoredPodValid(stored);
  });

  test('stale KOMPUTER_MCP_SERVERS / CONNECTOR_*_TOKEN entries are replaced in place, never duplicated', async () => {
    const pod = soloPod('stale-pod', 'stale', {
      annotations: { [INJECTED]: 'github,old' },
      env: [
        { name: 'KOMPUTER_MCP_SERVERS', value: '{"github":{"type":"http","url":"https://old.example/mcp"}}' },
        { name: 'MODEL', value: 'claude-sonnet' },
        GITHUB_TOKEN,
        { name: 'CONNECTOR_SLACK_TOKEN', value: CANARY_STALE },
        { name: 'KOMPUTER_MCP_SERVERS', value: 'duplicate' },
      ],
    });
    // Self-check: the API server warns about a duplicate env name in what it stores. Where
    // the webhook is not called, the very same pod draws that warning...
    const unmutated = await createPod({ ...pod, metadata: { ...pod.metadata, namespace: OFF_NS } }, ['--dry-run=server']);
    assert.ok(
      unmutated.warnings.some((w) => w.includes('hides previous definition of "KOMPUTER_MCP_SERVERS"')),
      `expected the API server's duplicate-env warning, got ${JSON.stringify(unmutated.warnings)}`,
    );
    // ...and through the webhook it draws none: nothing is left duplicated.
    const { warnings } = await createPod(pod);
    assert.deepEqual(warnings, []);
    const stored = await getPod(NS, 'stale-pod');
    assert.equal(stored.metadata.annotations?.[INJECTED], 'github,slack');
    assert.deepEqual(containerEnv(stored, 'agent'), [mcp(`{${MCP_GITHUB},${MCP_SLACK}}`), { name: 'MODEL', value: 'claude-sonnet' }, GITHUB_TOKEN, SLACK_TOKEN]);
    await assertStoredPodValid(stored);
  });

  test('a pod that already carries exactly the injected env (operator did it) is stored identical', async () => {
    const desired = [...USER_ENV, GITHUB_TOKEN, SLACK_TOKEN, mcp(`{${MCP_GITHUB},${MCP_SLACK}}`)];
    const { warnings } = await createPod(soloPod('already-pod', 'stale', { env: desired, annotations: { [INJECTED]: 'github,slack' } }));
    assert.deepEqual(warnings, []);
    const stored = await getPod(NS, 'already-pod');
    assert.deepEqual(stored.metadata.annotations, { [INJECTED]: 'github,slack' });
    assert.deepEqual(containerEnv(stored, 'agent'), desired);
    await assertStoredPodValid(stored);
  });
});

describe('the caches follow the cluster without a restart', () => {
  test('a connector created after its agent, then changed, then deleted, is picked up each time', async () => {
    const pid = env.service?.process?.pid;
    await apply([agent(NS, 'late', ['late-conn'])]);
    // The agent exists, its connector does not yet: the env stays as it came (no empty
    // config, no annotation), and the warning shows the service knows the agent.
    await waitForInjection(
      NS,
      'late',
      undefined,
      (pod, warnings) =>
        JSON.stringify(containerEnv(pod, 'agent')) === JSON.stringify(USER_ENV) &&
        warnings.includes(`connector late-conn not injected into agent late: connector not found in namespace ${NS}`),
    );

    await apply([connector(NS, 'late-conn', { url: 'https://mcp.linear.app/mcp', authType: 'token', authSecretKeyRef: { name: 'late-secret', key: 'token' } })]);
    const first = await waitForInjection(NS, 'late', 'late-conn');
    assert.deepEqual(containerEnv(first, 'agent'), [
      ...USER_ENV,
      tokenRef('CONNECTOR_LATE_CONN_TOKEN', 'late-secret', 'token'),
      mcp('{"late-conn":{"type":"http","url":"https://mcp.linear.app/mcp","tokenEnv":"CONNECTOR_LATE_CONN_TOKEN","authType":"token"}}'),
    ]);

    // Changed: a new URL, auth type and key.
    await apply([connector(NS, 'late-conn', { url: 'https://mcp.linear.app/v2/mcp', authType: 'oauth', authSecretKeyRef: { name: 'late-secret', key: 'oauth.json' } })]);
    const changed = await waitForInjection(NS, 'late', 'late-conn', (pod) => (containerEnv(pod, 'agent')?.at(-1)?.value ?? '').includes('/v2/mcp'));
    assert.deepEqual(containerEnv(changed, 'agent'), [
      ...USER_ENV,
      tokenRef('CONNECTOR_LATE_CONN_TOKEN', 'late-secret', 'oauth.json'),
      mcp('{"late-conn":{"type":"http","url":"https://mcp.linear.app/v2/mcp","tokenEnv":"CONNECTOR_LATE_CONN_TOKEN","authType":"oauth"}}'),
    ]);

    // A real pod now gets the changed connector.
    await createPod(soloPod('late-pod', 'late'));
    const stored = await getPod(NS, 'late-pod');
    assert.deepEqual(containerEnv(stored, 'agent'), containerEnv(changed, 'agent'));
    await assertStoredPodValid(stored);

    // The agent's own list changes too.
    await apply([agent(NS, 'late', ['late-conn', 'github'])]);
    await waitForInjection(NS, 'late', 'late-conn,github');

    await kubectl(['delete', 'komputerconnector', 'late-conn', '-n', NS]);
    await waitForInjection(NS, 'late', 'github');
    assert.equal(env.service?.process?.pid, pid, 'the service was not restarted');
  });

  test('labelling a namespace enables injection there without a restart', async () => {
    await apply([
      connector(LATE_NS, 'github', { url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } }),
      agent(LATE_NS, 'researcher', ['github']),
    ]);
    await createPod(soloPod('before-label', 'researcher', { namespace: LATE_NS }));
    assert.equal((await getPod(LATE_NS, 'before-label')).metadata.annotations?.[INJECTED], undefined);

    await kubectl(['label', 'namespace', LATE_NS, 'komputer.ai/connector-injection=enabled']);
    await waitForInjection(LATE_NS, 'researcher', 'github');
    await createPod(soloPod('after-label', 'researcher', { namespace: LATE_NS }));
    const stored = await getPod(LATE_NS, 'after-label');
    assert.equal(stored.metadata.annotations?.[INJECTED], 'github');
    assert.deepEqual(containerEnv(stored, 'agent'), [...USER_ENV, GITHUB_TOKEN, mcp(`{${MCP_GITHUB}}`)]);
  });
});

describe('secrets never leak', () => {
  test('token-like values in Secret data and pod env never reach the service log nor any warning', async () => {
    // A user's own literal token in an agent pod (kept: it is theirs), next to the injected vars.
    const pod = soloPod('canary-pod', 'researcher', { env: [{ name: 'MY_PAT', value: CANARY_ENV }, ...USER_ENV] });
    await createPod(pod);
    const stored = await getPod(NS, 'canary-pod');
    assert.deepEqual(containerEnv(stored, 'agent')?.[0], { name: 'MY_PAT', value: CANARY_ENV }, 'the user variable is kept as written');
    // And a dry-run, and a pod outside the enabled namespaces, carrying it too.
    await createPod(soloPod('canary-dry', 'stale', { env: [{ name: 'CONNECTOR_GITHUB_TOKEN', value: CANARY_ENV }] }), ['--dry-run=server']);

    const service = env.service;
    assert.ok(service);
    // The admission line of the last request proves the log has caught up with it.
    const log = await poll('the admission of canary-pod in the service log', async () => {
      const text = await readFile(service.logFile, 'utf8');
      return { ok: text.includes('"name":"canary-pod"'), value: text, detail: `${text.length} bytes` };
    });
    assert.match(log, /"level":20\b/, 'the service logs at debug level here, so the check covers debug lines');
    for (const canary of CANARIES) {
      const forms = [canary, Buffer.from(canary).toString('base64')];
      for (const form of forms) {
        assert.equal(log.includes(form), false, `the service log must not contain ${form}`);
        assert.deepEqual(
          allWarnings.filter((w) => w.includes(form)),
          [],
          `no warning may contain ${form}`,
        );
      }
    }
    // The canaries were really planted (in the cluster), so their absence above means something.
    const planted = JSON.parse((await kubectl(['get', 'secret', 'github-token', '-n', NS, '-o', 'json'])).stdout) as { data: Record<string, string> };
    assert.equal(Buffer.from(planted.data['token'] ?? '', 'base64').toString(), CANARY_SECRET);
  });
});
