// End-to-end: disabled connectors (`spec.disabled: true`, SPEC.md "Disabled connectors")
// through a real kube-apiserver.
//
// This file forces the project's own CRDs (`startEnvironment({ crds: 'project' })`): the
// platform has announced spec.disabled in its operator's types, but its published CRD does
// not list it yet, so an API server with that CRD prunes the field (or, with kubectl's
// default strict validation, refuses it) and the service never sees it.
// platform-today.test.ts shows exactly that with the default CRDs.
//
// What is proven: a disabled connector is never injected into a new pod (the rest still is,
// and kubectl says why); an agent without any usable connector gets no config at all; a new
// reference to a disabled connector is refused on agent CREATE and UPDATE while an existing
// one stays; disabling a connector in use warns how many agents use it; the attachment counts
// keep counting the agents that reference it; and re-enabling brings it back for new pods.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEnvironment, stopEnvironment, warningsOf, type Environment } from './harness/index.ts';
import { poll } from './harness/poll.ts';
import { INJECTED, Kube, agent, agentEnv, assertDenied, connector, mcp, secret, soloPod, tokenRef, type EnvVar } from './fixtures/today.ts';

const NS = 'e2e-disabled';

const USER_ENV: EnvVar[] = [{ name: 'MODEL', value: 'claude-sonnet' }];

const GITHUB_TOKEN = tokenRef('CONNECTOR_GITHUB_TOKEN', 'github-token', 'token');
const SLACK_TOKEN = tokenRef('CONNECTOR_SLACK_TOKEN', 'slack-token', 'xoxp');
const LINEAR_TOKEN = tokenRef('CONNECTOR_LINEAR_TOKEN', 'linear-token', 'token');
const MCP_GITHUB = '"github":{"type":"http","url":"https://api.githubcopilot.com/mcp/","tokenEnv":"CONNECTOR_GITHUB_TOKEN","authType":"token"}';
const MCP_SLACK = '"slack":{"type":"http","url":"https://mcp.slack.com/mcp","tokenEnv":"CONNECTOR_SLACK_TOKEN","authType":"token"}';
const MCP_LINEAR = '"linear":{"type":"http","url":"https://mcp.linear.app/mcp","tokenEnv":"CONNECTOR_LINEAR_TOKEN","authType":"token"}';

const DISABLED_REASON = 'it is disabled (spec.disabled: true); set spec.disabled: false on the connector to re-enable it';
const notInjected = (ref: string, agentName: string): string => `connector ${ref} not injected into agent ${agentName}: ${DISABLED_REASON}`;
const newlyAttached = (ref: string): string =>
  `spec.connectors: connector "${ref}" is disabled and cannot be newly attached. Fix: re-enable it with spec.disabled: false on the connector, or remove it from spec.connectors.`;

let env: Environment;
let kube: Kube;

interface ConnectorJson {
  spec: Record<string, unknown>;
  status?: { attachedAgents?: number; agentNames?: string[] };
}

/** Polls until the connector's stored status is exactly `names` (the controller is asynchronous). */
async function waitForStatus(name: string, names: string[]): Promise<void> {
  await poll(`${NS}/${name} status ${JSON.stringify(names)}`, async () => {
    const c = await kube.getJson<ConnectorJson>('komputerconnector', NS, name);
    const ok = c.status?.attachedAgents === names.length && JSON.stringify(c.status.agentNames ?? []) === JSON.stringify(names);
    return { ok, value: undefined, detail: JSON.stringify(c.status) };
  }, 30_000);
}

before(async () => {
  env = await startEnvironment({ crds: 'project' });
  assert.equal(env.crds.kind, 'project', 'this file needs the CRD that lists spec.disabled');
  kube = new Kube(env);
  await env.createNamespace(NS, { enabled: true });
  await env.apply([
    secret(NS, 'github-token', { token: 'ghp_not-a-real-token' }),
    secret(NS, 'slack-token', { xoxp: 'xoxp-not-a-real-token' }),
    secret(NS, 'linear-token', { token: 'lin_api_not-a-real-token' }),
  ]);
  await kube.applyAll([
    connector(NS, 'github', { url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } }),
    connector(NS, 'slack', { url: 'https://mcp.slack.com/mcp', authType: 'token', authSecretKeyRef: { name: 'slack-token', key: 'xoxp' } }),
    connector(NS, 'linear', { url: 'https://mcp.linear.app/mcp', authType: 'token', authSecretKeyRef: { name: 'linear-token', key: 'token' } }),
    // Disabled from the start: no agent may newly reference it.
    connector(NS, 'dropbox', { url: 'https://mcp.dropbox.example/mcp', authType: 'token', disabled: true }),
  ]);
  // Created while slack is enabled: these references exist before it is disabled.
  for (const a of [agent(NS, 'a', ['github', 'slack']), agent(NS, 'b', ['slack'])]) {
    const result = await kube.apply(a);
    assert.equal(result.code, 0, result.stderr);
  }
  const stored = await kube.getJson<ConnectorJson>('komputerconnector', NS, 'dropbox');
  assert.equal(stored.spec['disabled'], true, 'the project CRD keeps spec.disabled');
});
after(stopEnvironment);

describe('disabling a connector', () => {
  test('disabling a connector that agents use is allowed, with a warning saying how many use it', async () => {
    await waitForStatus('slack', ['a', 'b']);
    const result = await kube.run(['patch', 'komputerconnector', 'slack', '-n', NS, '--type', 'merge', '-p', '{"spec":{"disabled":true}}']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(warningsOf(result), [
      'spec.disabled is now true while 2 agents use this connector: new pods will not get it, and running pods keep it until they are restarted. Set spec.disabled: false to re-enable it.',
    ]);
    const stored = await kube.getJson<ConnectorJson>('komputerconnector', NS, 'slack');
    assert.equal(stored.spec['disabled'], true);
  });

  test('a new pod gets the enabled connectors only, and kubectl says why the disabled one is missing', async () => {
    await kube.waitForPod('a without slack', soloPod(NS, 'wait-a', 'a', USER_ENV), (p) => p.metadata.annotations?.[INJECTED] === 'github');
    const { stored, warnings } = await kube.createPod(soloPod(NS, 'a-pod', 'a', USER_ENV));
    assert.deepEqual(warnings, [notInjected('slack', 'a')]);
    assert.equal(stored.metadata.annotations?.[INJECTED], 'github');
    assert.deepEqual(agentEnv(stored), [...USER_ENV, GITHUB_TOKEN, mcp(`{${MCP_GITHUB}}`)]);
  });

  test('an agent whose connectors are all disabled gets no MCP config, no token vars and no annotation', async () => {
    const sent = soloPod(NS, 'b-pod', 'b', USER_ENV);
    const { stored, warnings } = await kube.createPod(sent);
    assert.deepEqual(warnings, [notInjected('slack', 'b')]);
    assert.deepEqual(agentEnv(stored), USER_ENV, 'env exactly as sent');
    const names = (agentEnv(stored) ?? []).map((e) => e.name);
    assert.equal(names.includes('KOMPUTER_MCP_SERVERS'), false);
    assert.deepEqual(names.filter((n) => n.startsWith('CONNECTOR_')), []);
    assert.equal(stored.metadata.annotations?.[INJECTED], undefined);
  });
});

describe('agents referencing a disabled connector', () => {
  test('creating an agent that references a disabled connector is refused', async () => {
    assertDenied(await kube.apply(agent(NS, 'c', ['github', 'slack'])), newlyAttached('slack'));
    assert.equal(await kube.exists('komputeragent', NS, 'c'), false);
    assertDenied(await kube.apply(agent(NS, 'd', ['dropbox'])), newlyAttached('dropbox'));
    assert.equal(await kube.exists('komputeragent', NS, 'd'), false);
  });

  test('an update that keeps an existing reference is allowed with a warning; one that adds a disabled connector is refused', async () => {
    const keptWarning = `connector slack: ${DISABLED_REASON}`;
    // Another field changed, the reference kept.
    const edited = await kube.apply(agent(NS, 'a', ['github', 'slack'], 'e2e agent a: new instructions'));
    assert.equal(edited.code, 0, edited.stderr);
    assert.deepEqual(warningsOf(edited), [keptWarning]);
    // An enabled connector added, the reference kept.
    const added = await kube.apply(agent(NS, 'a', ['github', 'slack', 'linear'], 'e2e agent a: new instructions'));
    assert.equal(added.code, 0, added.stderr);
    assert.deepEqual(warningsOf(added), [keptWarning]);
    // A new reference to a disabled connector.
    assertDenied(await kube.apply(agent(NS, 'a', ['github', 'slack', 'linear', 'dropbox'], 'e2e agent a: new instructions')), newlyAttached('dropbox'));
    assertDenied(await kube.apply(agent(NS, 'b', ['slack', 'dropbox'])), newlyAttached('dropbox'));
    const stored = await kube.getJson<{ spec: { connectors: string[] } }>('komputeragent', NS, 'a');
    assert.deepEqual(stored.spec.connectors, ['github', 'slack', 'linear']);
  });
});

describe('attachment counts and re-enabling', () => {
  test('a disabled connector still counts the agents that reference it; re-enabled, new pods get it again', async () => {
    await waitForStatus('slack', ['a', 'b']);
    await waitForStatus('linear', ['a']);
    await waitForStatus('github', ['a']);
    // Not a leftover from before it was disabled: a wrong status written now is corrected
    // to the agents that reference it, disabled or not.
    await kube.ok(['patch', 'komputerconnector', 'slack', '-n', NS, '--subresource=status', '--type=merge', '-p', '{"status":{"attachedAgents":0,"agentNames":[]}}']);
    await waitForStatus('slack', ['a', 'b']);
    const stillDisabled = await kube.getJson<ConnectorJson>('komputerconnector', NS, 'slack');
    assert.equal(stillDisabled.spec['disabled'], true, 'counted while disabled');

    const result = await kube.run(['patch', 'komputerconnector', 'slack', '-n', NS, '--type', 'merge', '-p', '{"spec":{"disabled":false}}']);
    assert.equal(result.code, 0, result.stderr);
    await kube.waitForPod('a with slack again', soloPod(NS, 'wait-a', 'a', USER_ENV), (p) => p.metadata.annotations?.[INJECTED] === 'github,slack,linear');

    const a = await kube.createPod(soloPod(NS, 'a-pod-2', 'a', USER_ENV));
    assert.deepEqual(a.warnings, []);
    assert.equal(a.stored.metadata.annotations?.[INJECTED], 'github,slack,linear');
    assert.deepEqual(agentEnv(a.stored), [...USER_ENV, GITHUB_TOKEN, SLACK_TOKEN, LINEAR_TOKEN, mcp(`{${MCP_GITHUB},${MCP_LINEAR},${MCP_SLACK}}`)]);

    const b = await kube.createPod(soloPod(NS, 'b-pod-2', 'b', USER_ENV));
    assert.deepEqual(b.warnings, []);
    assert.equal(b.stored.metadata.annotations?.[INJECTED], 'slack');
    assert.deepEqual(agentEnv(b.stored), [...USER_ENV, SLACK_TOKEN, mcp(`{${MCP_SLACK}}`)]);
    await waitForStatus('slack', ['a', 'b']);
  });
});
