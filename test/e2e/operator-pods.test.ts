// End-to-end: beside the platform's operator. Its operator (7267b1d) injects every
// connector an agent names, copying a cross-namespace connector's Secret into the agent's
// namespace as `<secret>-from-<namespace>` without a sharing check, and knows nothing of
// spec.disabled (SPEC.md). With this service in the chain after it, what the operator
// wrote for a connector this service refuses must not stay in the stored pod: the token
// variable exactly as the operator writes it goes (in containers, squad containers and a
// member's ephemeral container), a variable the user wrote stays, and the canary in the
// unshared connector's Secret reaches no stored pod, warning, log line or event.
//
// The project's CRDs are used (`crds: 'project'`): the platform's prunes spec.disabled.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEnvironment, stopEnvironment, warningsOf, type Environment } from './harness/index.ts';
import { log } from './harness/log.ts';
import {
  INJECTED,
  Kube,
  SHARED_WITH,
  agent,
  agentEnv,
  assertNoCanaries,
  buildOperatorJson,
  connector,
  mcp,
  secret,
  soloPod,
  tokenRef,
  type EnvVar,
  type OperatorEntry,
  type OperatorJson,
  type Pod,
} from './fixtures/today.ts';

const NS = 'e2e-operator';
const OTHER = 'e2e-operator-other';
const SHARED = 'e2e-operator-shared';

// The unshared connector's token, in its own Secret and in the copy the operator makes.
const CANARY = 'ntn_E2ECANARYunsharedSecretValue0123456789ab';

const GITHUB: OperatorEntry = { name: 'github', url: 'https://api.githubcopilot.com/mcp/', tokenEnv: 'CONNECTOR_GITHUB_TOKEN', authType: 'token' };
const LINEAR: OperatorEntry = { name: 'linear', url: 'https://mcp.linear.app/mcp', tokenEnv: 'CONNECTOR_LINEAR_TOKEN', authType: 'oauth' };
const SLACK: OperatorEntry = { name: 'slack', url: 'https://mcp.slack.com/mcp', tokenEnv: 'CONNECTOR_SLACK_TOKEN', authType: 'token' };
const UNSHARED: OperatorEntry = { name: 'unshared', url: 'https://mcp.notes.example/mcp', tokenEnv: 'CONNECTOR_UNSHARED_TOKEN', authType: 'token' };

const GITHUB_TOKEN = tokenRef('CONNECTOR_GITHUB_TOKEN', 'github-token', 'token');
const LINEAR_TOKEN = tokenRef('CONNECTOR_LINEAR_TOKEN', 'linear-oauth-from-' + SHARED, 'token');
const SLACK_TOKEN = tokenRef('CONNECTOR_SLACK_TOKEN', 'slack-token', 'xoxp');
const UNSHARED_TOKEN = tokenRef('CONNECTOR_UNSHARED_TOKEN', 'unshared-token-from-' + OTHER, 'token');

let env: Environment;
let kube: Kube;
let operator: OperatorJson;

function removedWarning(ref: string, reason: string, agentName: string, variable: string, container: string): string {
  return `connector ${ref} not injected into agent ${agentName}: ${reason}; removed ${variable}, which the operator wrote for it, from container ${container}`;
}
const NOT_VISIBLE = `not found in namespace ${OTHER}, or not shared with namespace ${NS} (its owner shares it with the ${SHARED_WITH} annotation)`;
const DISABLED = 'it is disabled (spec.disabled: true); set spec.disabled: false on the connector to re-enable it';

/** A pod's env as the operator writes it: the agent's own vars, a token var per connector in its order, then its config. */
function operatorEnv(own: EnvVar[], tokens: EnvVar[], entries: OperatorEntry[]): EnvVar[] {
  return [...own, ...tokens, mcp(operator.bytes(entries))];
}

function show(title: string, envVars: EnvVar[] | undefined): void {
  log(`${title}:`);
  for (const e of envVars ?? []) log(`  ${e.name}${e.valueFrom?.secretKeyRef ? ` <- secretKeyRef ${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}` : `=${e.value ?? ''}`}`);
}

before(async () => {
  env = await startEnvironment({ crds: 'project' });
  assert.equal(env.crds.kind, 'project', 'this file needs the CRD that lists spec.disabled');
  kube = new Kube(env);
  operator = buildOperatorJson();
  await env.createNamespace(NS, { enabled: true });
  await env.createNamespace(OTHER);
  await env.createNamespace(SHARED);
  await env.apply([
    secret(NS, 'github-token', { token: 'not-a-real-token' }),
    secret(NS, 'slack-token', { xoxp: 'not-a-real-token' }),
    secret(OTHER, 'unshared-token', { token: CANARY }),
    // The operator's copy of the unshared connector's Secret in the agent's namespace.
    secret(NS, `unshared-token-from-${OTHER}`, { token: CANARY }),
    secret(SHARED, 'linear-oauth', { token: '{"access_token":"not-a-real-token"}' }),
    connector(OTHER, 'unshared', { url: UNSHARED.url, authType: 'token', authSecretKeyRef: { name: 'unshared-token', key: 'token' } }),
    connector(SHARED, 'linear', { url: LINEAR.url, authType: 'oauth', authSecretKeyRef: { name: 'linear-oauth', key: 'token' } }, { [SHARED_WITH]: NS }),
  ]);
  await kube.applyAll([
    connector(NS, 'github', { url: GITHUB.url, authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } }),
    connector(NS, 'slack', { url: SLACK.url, authType: 'token', authSecretKeyRef: { name: 'slack-token', key: 'xoxp' } }),
  ]);
  // Agents are created before anything is disabled in the platform's API; here the
  // validating webhook refuses a new reference to a disabled connector, so slack is
  // disabled after the agents exist.
  await kube.applyAll([
    agent(NS, 'researcher', ['github', `${OTHER}/unshared`, `${SHARED}/linear`, 'slack']),
    agent(NS, 'lonely', [`${OTHER}/unshared`, 'slack']),
    { ...agent(NS, 'planner', ['github', `${OTHER}/unshared`]), metadata: { name: 'planner', namespace: NS, labels: { 'komputer.ai/squad': 'alpha' } } },
    { ...agent(NS, 'coder', [`${OTHER}/unshared`, 'github', 'slack']), metadata: { name: 'coder', namespace: NS, labels: { 'komputer.ai/squad': 'alpha' } } },
  ]);
  await kube.ok(['patch', 'komputerconnector', 'slack', '-n', NS, '--type=merge', '-p', '{"spec":{"disabled":true}}']);
  // The caches hold all of it once researcher resolves to exactly github and shared/linear.
  await kube.waitForPod('the service sees the agents and the disabled connector', soloPod(NS, 'wait', 'researcher', []), (p) => p.metadata.annotations?.[INJECTED] === `github,${SHARED}/linear`);
});

after(async () => {
  operator?.cleanup();
  await stopEnvironment();
});

describe("the operator's injection for refused connectors does not stay in the pod", () => {
  test('a solo pod as the operator writes it keeps the shared connectors, loses the unshared and the disabled token variables', async () => {
    const own: EnvVar[] = [{ name: 'KOMPUTER_MODEL', value: 'claude-sonnet' }];
    const written = soloPod(NS, 'researcher-pod', 'researcher', operatorEnv(own, [GITHUB_TOKEN, UNSHARED_TOKEN, LINEAR_TOKEN, SLACK_TOKEN], [GITHUB, LINEAR, SLACK, UNSHARED]));
    const { stored, warnings } = await kube.createPod(written);
    show('as the operator wrote it', agentEnv(written));
    show('as the API server stored it', agentEnv(stored));
    assert.deepEqual(agentEnv(stored), [...own, GITHUB_TOKEN, LINEAR_TOKEN, mcp(operator.bytes([GITHUB, LINEAR]))], 'the operator’s bytes for what may be used');
    assert.equal(stored.metadata.annotations?.[INJECTED], `github,${SHARED}/linear`);
    assert.deepEqual(warnings, [
      removedWarning(`${OTHER}/unshared`, NOT_VISIBLE, 'researcher', 'CONNECTOR_UNSHARED_TOKEN', 'agent'),
      removedWarning('slack', DISABLED, 'researcher', 'CONNECTOR_SLACK_TOKEN', 'agent'),
    ]);
  });

  test('when nothing of the agent may be used, its token variables and its config go; what the user wrote stays', async () => {
    const own: EnvVar[] = [
      { name: 'KOMPUTER_MODEL', value: 'claude-sonnet' },
      { name: 'NOTES_API_TOKEN', valueFrom: { secretKeyRef: { name: 'my-own-notes', key: 'token' } } },
    ];
    const { stored, warnings } = await kube.createPod(soloPod(NS, 'lonely-pod', 'lonely', operatorEnv(own, [UNSHARED_TOKEN, SLACK_TOKEN], [SLACK, UNSHARED])));
    assert.deepEqual(agentEnv(stored), own);
    assert.equal(stored.metadata.annotations?.[INJECTED], undefined, 'nothing was injected, so nothing is recorded');
    assert.deepEqual(warnings, [
      removedWarning(`${OTHER}/unshared`, NOT_VISIBLE, 'lonely', 'CONNECTOR_UNSHARED_TOKEN', 'agent'),
      removedWarning('slack', DISABLED, 'lonely', 'CONNECTOR_SLACK_TOKEN', 'agent'),
      'container agent: removed KOMPUTER_MCP_SERVERS, which listed only connectors agent lonely may not use',
    ]);
  });

  test('a variable under the same name that the user wrote (a literal, another Secret) is never removed', async () => {
    const userVars: EnvVar[] = [
      { name: 'CONNECTOR_UNSHARED_TOKEN', value: 'user-literal-not-a-secret' },
      { name: 'CONNECTOR_SLACK_TOKEN', valueFrom: { secretKeyRef: { name: 'slack-token', key: 'other-key' } } },
    ];
    const { stored, warnings } = await kube.createPod(soloPod(NS, 'user-vars-pod', 'researcher', userVars));
    assert.deepEqual(agentEnv(stored), [...userVars, GITHUB_TOKEN, LINEAR_TOKEN, mcp(operator.bytes([GITHUB, LINEAR]))]);
    assert.deepEqual(warnings, [
      `connector ${OTHER}/unshared not injected into agent researcher: ${NOT_VISIBLE}`,
      `connector slack not injected into agent researcher: ${DISABLED}`,
    ]);
  });

  test('squad containers: each member loses only what the operator wrote for its own refused connectors', async () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'squad-alpha-0', namespace: NS, labels: { 'komputer.ai/squad': 'true', 'komputer.ai/squad-name': 'alpha', 'komputer.ai/member-planner': 'true' } },
      spec: { containers: [{ name: 'planner', image: 'ghcr.io/komputer-ai/agent:0.9', env: operatorEnv([], [GITHUB_TOKEN, UNSHARED_TOKEN], [GITHUB, UNSHARED]) }] },
    };
    const { stored, warnings } = await kube.createPod(pod);
    assert.deepEqual(stored.spec.containers[0]?.env, [GITHUB_TOKEN, mcp(operator.bytes([GITHUB]))]);
    assert.deepEqual(warnings, [removedWarning(`${OTHER}/unshared`, NOT_VISIBLE, 'planner', 'CONNECTOR_UNSHARED_TOKEN', 'planner')]);

    // A member added to the running squad: the operator's ephemeral container with its injection.
    const member = { name: 'coder', image: 'ghcr.io/komputer-ai/agent:0.9', env: operatorEnv([], [UNSHARED_TOKEN, GITHUB_TOKEN, SLACK_TOKEN], [GITHUB, SLACK, UNSHARED]) };
    const added = await kube.run(['patch', 'pod', 'squad-alpha-0', '-n', NS, '--subresource=ephemeralcontainers', '--type=strategic', '-o', 'json', '-p', JSON.stringify({ spec: { ephemeralContainers: [member] } })]);
    assert.equal(added.code, 0, added.stderr);
    const after = await kube.getJson<Pod & { spec: { ephemeralContainers?: { name: string; env?: EnvVar[] }[] } }>('pod', NS, 'squad-alpha-0');
    assert.deepEqual(after.spec.ephemeralContainers?.find((c) => c.name === 'coder')?.env, [GITHUB_TOKEN, mcp(operator.bytes([GITHUB]))]);
    assert.deepEqual(warningsOf(added), [
      removedWarning(`${OTHER}/unshared`, NOT_VISIBLE, 'coder', 'CONNECTOR_UNSHARED_TOKEN', 'coder'),
      removedWarning('slack', DISABLED, 'coder', 'CONNECTOR_SLACK_TOKEN', 'coder'),
    ]);
  });

  test("the unshared connector's secret value reaches no stored pod, warning, log line or event", async () => {
    const pods = (await kube.ok(['get', 'pods', '-n', NS, '-o', 'json'])).stdout;
    assert.ok(pods.includes('researcher-pod') && pods.includes('squad-alpha-0'), 'the stored pods are read');
    const events = (await kube.ok(['get', 'events.events.k8s.io', '-A', '-o', 'json'])).stdout;
    for (const form of [CANARY, Buffer.from(CANARY).toString('base64')]) {
      assert.equal(pods.includes(form), false, `no stored pod may contain ${form}`);
      assert.equal(events.includes(form), false, `no event may contain ${form}`);
    }
    // The Secret reference is gone from every stored pod, not only its value.
    assert.equal(pods.includes(`unshared-token-from-${OTHER}`), false, 'no stored pod references the operator’s copy of the unshared Secret');
    await assertNoCanaries(env, kube, [CANARY]);
  });
});
