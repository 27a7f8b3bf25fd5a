// End-to-end: the policy holds at the pod, through a real kube-apiserver.
// 1. The reproduction: connectors the policy refuses reach the cluster unvalidated (one
//    created while the service, and with it the validating webhook, is down; one in a
//    namespace without the injection label, shared into an enabled one). An agent pod created
//    afterwards gets neither, the operator's copy of their token variables is taken out, the
//    warning names connector, entry and fix, and the agent carries the Events.
// 2. A new entry rolled out audit -> warn -> deny with live pods: at each step the violations
//    gauge, `check`'s lines, the pod's warnings and the Events.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startEnvironment, stopEnvironment, type Environment } from './harness/index.ts';
import { poll } from './harness/poll.ts';
import { checkJson } from './fixtures/check.ts';
import { eventsRegarding, metricSum, serviceMetrics } from './fixtures/events.ts';
import { INJECTED, Kube, SHARED_WITH, agent, connector, secret, soloPod, tokenRef, type Pod } from './fixtures/today.ts';

const NS = 'e2e-pol-pod';
const SHARED = 'e2e-pol-shared';
const POLICY_CM = 'komputer-connector-webhook-policy';
const NOTION_FIX = 'Notion rejects static tokens: integration tokens (ntn_...) get invalid_token; only OAuth 2.0 access tokens work. Fix: set spec.authType: oauth, or run the open-source Notion MCP server in-cluster and point spec.url at it';
const ACME = (action: string): string => `entries:\n  - {id: acme, service: Acme MCP, url: "https://mcp.acme.example/mcp", why: Acme retired personal tokens, instead: set spec.authType oauth, action: ${action}}\n`;

let env: Environment;
let kube: Kube;

function envNames(pod: Pod): string[] {
  return (pod.spec.containers[0]?.env ?? []).map((e) => e.name);
}

async function gauge(entry: string, action: string): Promise<number> {
  return metricSum(await serviceMetrics(env), 'komputer_webhook_policy_violations', { entry, action });
}

async function waitForGauge(entry: string, action: string, want: number): Promise<void> {
  await poll(`komputer_webhook_policy_violations{entry=${entry},action=${action}} = ${want}`, async () => {
    const m = await serviceMetrics(env);
    const present = m.some((s) => s.name === 'komputer_webhook_policy_violations' && s.labels.entry === entry && s.labels.action === action);
    const v = metricSum(m, 'komputer_webhook_policy_violations', { entry, action });
    return { ok: present && v === want, value: v, detail: String(v) };
  });
}

async function waitForEvent(agentName: string, reason: string, message: string): Promise<void> {
  await poll(`${reason} on ${agentName}`, async () => {
    const events = await eventsRegarding(env, NS, agentName);
    return { ok: events.some((e) => e.reason === reason && e.note === message), value: events, detail: JSON.stringify(events.map((e) => [e.reason, e.note])) };
  });
}

before(async () => {
  env = await startEnvironment();
  kube = new Kube(env);
  await env.createNamespace(NS, { enabled: true });
  await env.createNamespace(SHARED);
  await env.apply([secret(NS, 'github-token', { token: 'ghp_e2e' }), secret(NS, 'acme-token', { token: 'acme_e2e' })]);
  await kube.applyAll([connector(NS, 'github', { url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } })]);
});
after(stopEnvironment);

describe('the policy at the pod', () => {
  test('the reproduction: connectors created past validation are refused at the pod', async () => {
    const service = env.service;
    assert.ok(service);
    // The service is down: the validating webhook fails open, the platform's CRUD goes on.
    await service.stop();
    const sharedNotion = connector(SHARED, 'linear', { url: 'https://mcp.notion.com/mcp', authType: 'token', authSecretKeyRef: { name: 'linear-token', key: 'token' } }, { [SHARED_WITH]: NS });
    await kube.applyAll([
      connector(NS, 'notion', { url: 'https://mcp.notion.com/mcp', authType: 'token', authSecretKeyRef: { name: 'notion-token', key: 'token' } }),
      // In a namespace without the injection label, shared into the enabled one.
      sharedNotion,
    ]);
    await service.start();
    // With the service up, validation covers a shared connector outside enabled namespaces too.
    const again = await env.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify({ ...sharedNotion, metadata: { ...(sharedNotion.metadata as object), name: 'linear-2' } }), allowFailure: true });
    assert.match(again.stderr, /admission webhook "validate-shared\.connectors\.komputer\.ai" denied the request: Notion rejects static tokens/);
    await kube.applyAll([agent(NS, 'researcher', ['github', 'notion', `${SHARED}/linear`])]);
    const operatorCopies = [tokenRef('CONNECTOR_NOTION_TOKEN', 'notion-token', 'token'), tokenRef('CONNECTOR_LINEAR_TOKEN', `linear-token-from-${SHARED}`, 'token')];
    const expected = [
      `connector notion not injected into agent researcher: policy entry notion refuses it: ${NOTION_FIX}; removed CONNECTOR_NOTION_TOKEN, which the operator wrote for it, from container agent`,
      `connector ${SHARED}/linear not injected into agent researcher: policy entry notion refuses it: ${NOTION_FIX}; removed CONNECTOR_LINEAR_TOKEN, which the operator wrote for it, from container agent`,
    ];
    await kube.waitForPod('caches caught up', soloPod(NS, 'wait-researcher', 'researcher', operatorCopies), (_p, w) => JSON.stringify(w) === JSON.stringify(expected));
    const { stored, warnings } = await kube.createPod(soloPod(NS, 'researcher-pod', 'researcher', operatorCopies));
    assert.deepEqual(warnings, expected);
    assert.equal(stored.metadata.annotations?.[INJECTED], 'github');
    assert.deepEqual(envNames(stored), ['CONNECTOR_GITHUB_TOKEN', 'KOMPUTER_MCP_SERVERS']);
    const servers = stored.spec.containers[0]!.env!.find((e) => e.name === 'KOMPUTER_MCP_SERVERS')!;
    assert.deepEqual(Object.keys(JSON.parse((servers as { value: string }).value) as object), ['github']);
    for (const w of expected) await waitForEvent('researcher', 'ConnectorRefusedByPolicy', w);
    assert.ok(metricSum(await serviceMetrics(env), 'komputer_webhook_injection_findings_total', { kind: 'refused' }) >= 2);
    // The gauge counts both (any namespace), from the leader's cache.
    await waitForGauge('notion', 'deny', 2);
  });

  test('an entry rolled out audit -> warn -> deny with live pods', async () => {
    await kube.applyAll([connector(NS, 'acme', { url: 'https://mcp.acme.example/mcp', authType: 'token', authSecretKeyRef: { name: 'acme-token', key: 'token' } })]);
    await kube.applyAll([agent(NS, 'builder', ['acme', 'github'])]);
    const setPolicy = (action: string) => env.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: POLICY_CM, namespace: env.serviceNamespace }, data: { 'incompatible.yaml': ACME(action) } });
    const cause = 'Acme MCP rejects static tokens: Acme retired personal tokens.';

    // audit: nothing changes for users; check and the gauge report it.
    await setPolicy('audit');
    await waitForGauge('acme', 'audit', 1);
    const audited = await kube.waitForPod('audit in force', soloPod(NS, 'b-audit', 'builder', []), (p, w) => p.metadata.annotations?.[INJECTED] === 'acme,github' && w.length === 0);
    assert.deepEqual(audited.warnings, []);
    let report = (await checkJson(env.kubeconfig)).report;
    assert.ok(report.checks.some((c) => c.id === 'connectors/policy' && c.status === 'warning' && c.message === `connector ${NS}/acme violates the policy (policy entry acme, action audit): ${cause}`), JSON.stringify(report.checks.filter((c) => c.id === 'connectors/policy')));

    // warn: a warning and an Event; still injected.
    await setPolicy('warn');
    await waitForGauge('acme', 'warn', 1);
    assert.equal(await gauge('acme', 'audit'), 0, 'the audit series is gone');
    const warnText = `connector acme injected into agent builder, but policy entry acme (action warn): ${cause} Fix: set spec.authType oauth.`;
    await kube.waitForPod('warn in force', soloPod(NS, 'b-warn-wait', 'builder', []), (_p, w) => w.includes(warnText));
    const warned = await kube.createPod(soloPod(NS, 'b-warn', 'builder', []));
    assert.deepEqual(warned.warnings, [warnText]);
    assert.equal(warned.stored.metadata.annotations?.[INJECTED], 'acme,github');
    await waitForEvent('builder', 'ConnectorPolicyWarning', warnText);
    report = (await checkJson(env.kubeconfig)).report;
    assert.ok(report.checks.some((c) => c.id === 'agents/references' && c.status === 'warning' && c.message.startsWith(`agent ${NS}/builder: connector acme: policy entry acme (action warn)`)));

    // deny: left out of new pods; the running ones are stale.
    await setPolicy('deny');
    await waitForGauge('acme', 'deny', 1);
    const denyText = `connector acme not injected into agent builder: policy entry acme refuses it: ${cause} Fix: set spec.authType oauth`;
    await kube.waitForPod('deny in force', soloPod(NS, 'b-deny-wait', 'builder', []), (_p, w) => w.includes(denyText));
    const denied = await kube.createPod(soloPod(NS, 'b-deny', 'builder', []));
    assert.deepEqual(denied.warnings, [denyText]);
    assert.equal(denied.stored.metadata.annotations?.[INJECTED], 'github');
    assert.ok(!envNames(denied.stored).includes('CONNECTOR_ACME_TOKEN'));
    await waitForEvent('builder', 'ConnectorRefusedByPolicy', denyText);
    const final = await checkJson(env.kubeconfig);
    assert.equal(final.code, 1, 'a connector refused now is an error');
    const lines = final.report.checks;
    assert.ok(lines.some((c) => c.id === 'connectors/policy' && c.status === 'error' && c.message === `connector ${NS}/acme would be refused if created now: ${cause}`));
    assert.ok(lines.some((c) => c.id === 'agents/references' && c.status === 'error' && c.message === `agent ${NS}/builder: connector acme: policy entry acme refuses it: ${cause} Fix: set spec.authType oauth`));
    assert.ok(lines.some((c) => c.id === 'pods/stale' && c.subject === `${NS}/b-warn` && c.message.includes('acme removed')), JSON.stringify(lines.filter((c) => c.id === 'pods/stale')));
  });
});
