// End-to-end: `komputer-webhook check` against a real kube-apiserver with the service running
// as a local process behind webhook URLs (as `npm run dev` sets it up). A healthy install
// reports only ok and skipped lines and exits 0; then each failure is induced on its own and
// undone afterwards, and check must name it on the right line with the right exit code:
// a caBundle from another CA, a certificate close to expiry and one already expired, a
// connector the policy refuses (created while the validating webhook was away), an agent
// referencing a missing connector, running pods whose connector changed or was deleted, an
// invalid policy ConfigMap, kube-system enabled, and a pod webhook pointed at a Service that
// does not exist (the in-cluster code path: Deployment, API server errors).
//
// The harness runs the service with --cert-mode files: it never patches the caBundle, so
// a caBundle the test sets stays as set (in self mode the leader would restore its own
// within seconds; see certificates.test.ts).

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateCertificates } from '../../src/certs/generate.ts';
import { CHECKS } from '../../src/check/types.ts';
import { startEnvironment, stopEnvironment, type Environment } from './harness/index.ts';
import { log } from './harness/log.ts';
import { pollUntil, servedCertificate } from './fixtures/cluster.ts';
import { INJECTED, Kube, agent, connector, secret, soloPod } from './fixtures/today.ts';
import { checkJson, notOk, runCheck, show, standInTlsServer, startCheck, waitHealthy, type CheckJson, type CheckLine } from './fixtures/check.ts';
import { setWebhookBundles } from './fixtures/webhook-configs.ts';

const NS = 'check-a';
const CONFIG = 'komputer-connector-webhook';
const DAY = 86_400_000;
const RELOAD_MS = 500;

let env: Environment;
let kube: Kube;

function lines(report: CheckJson, id: string): CheckLine[] {
  return report.checks.filter((c) => c.id === id);
}

/** The one line of `id` with `status` whose message matches; fails with the whole report otherwise. */
function line(report: CheckJson, id: string, status: string, message: RegExp): CheckLine {
  const found = lines(report, id).find((c) => c.status === status && message.test(c.message));
  assert.ok(found, `expected a ${status} line ${id} matching ${message}; got:\n${show(report.checks)}`);
  assert.ok(status === 'ok' || status === 'skipped' || (found.remedy ?? '').length > 0, `a ${status} line carries a remedy: ${show([found])}`);
  return found;
}

async function text(): Promise<string> {
  const run = await runCheck(env.kubeconfig);
  return run.stdout;
}

async function setBundles(pem: string): Promise<void> {
  await setWebhookBundles(env, CONFIG, pem);
}

/** Replaces tls.key then tls.crt as a mounted Secret update would, and waits until the service serves it. */
async function serveCertificate(cert: string, key: string): Promise<void> {
  const service = env.service;
  assert.ok(service);
  for (const [file, content] of [['tls.key', key], ['tls.crt', cert]] as const) {
    await writeFile(path.join(service.certDir, `.${file}.new`), content, { mode: 0o600 });
    await rename(path.join(service.certDir, `.${file}.new`), path.join(service.certDir, file));
  }
  const want = new X509Certificate(cert).fingerprint256;
  await pollUntil('the service to serve the new certificate', async () => ({ ok: (await servedCertificate(service.port)).fingerprint256 === want }), { timeoutMs: 15_000, intervalMs: 100 });
}

before(async () => {
  env = await startEnvironment({ serviceArgs: ['--cert-reload-ms', String(RELOAD_MS)] });
  kube = new Kube(env);
  await env.createNamespace(NS, { enabled: true });
  await env.apply([secret(NS, 'github-token', { token: 'ghp_notARealTokenOfCheckTest000000000000' }), secret(NS, 'linear-token', { token: 'lin_api_notARealToken' })]);
  await kube.applyAll([
    connector(NS, 'github', { service: 'github', url: 'https://api.githubcopilot.com/mcp/', authSecretKeyRef: { name: 'github-token', key: 'token' } }),
    connector(NS, 'linear', { service: 'linear', url: 'https://mcp.linear.app/mcp', authSecretKeyRef: { name: 'linear-token', key: 'token' } }),
    agent(NS, 'researcher', ['github']),
    agent(NS, 'writer', ['linear']),
  ]);
  // Real (stored) agent pods, created once the service's caches know their agents.
  for (const [pod, agentName, ref] of [['researcher-pod', 'researcher', 'github'], ['writer-pod', 'writer', 'linear']] as const) {
    await kube.waitForPod(`${agentName} known`, soloPod(NS, `wait-${pod}`, agentName, []), (p) => p.metadata.annotations?.[INJECTED] === ref);
    const { stored } = await kube.createPod(soloPod(NS, pod, agentName, [{ name: 'MODEL', value: 'claude-sonnet' }]));
    assert.equal(stored.metadata.annotations?.[INJECTED], ref);
  }
});

after(stopEnvironment);

describe('komputer-webhook check', () => {
  test('a healthy install: every check reports, only ok and skipped lines, exit 0', async () => {
    const report = await waitHealthy(env.kubeconfig, 'at the start');
    const { code } = await checkJson(env.kubeconfig);
    assert.equal(code, 0);
    for (const c of CHECKS) assert.ok(lines(report, c.id).length > 0, `check ${c.id} reported`);
    assert.deepEqual(notOk(report), []);
    // What cannot apply to a service outside the cluster says so.
    line(report, 'service/replicas', 'skipped', /the webhooks call a URL/);
    line(report, 'webhook/tls', 'ok', /chains to the caBundle of pods\.connectors\.komputer\.ai and validate\.connectors\.komputer\.ai and covers 127\.0\.0\.1/);
    line(report, 'webhook/admission', 'ok', /the API server called pods\.connectors\.komputer\.ai for a dry-run agent pod/);
    line(report, 'webhook/validation', 'ok', /the API server called validate\.connectors\.komputer\.ai/);
    line(report, 'lease/leader', 'ok', /is held by .*, renewed \d+s ago/);
    line(report, 'namespaces/reachable', 'ok', /^every enabled namespace is selected by pods\.connectors\.komputer\.ai and validate\.connectors\.komputer\.ai$/);
    line(report, 'pods/stale', 'ok', /^2 agent pods in enabled namespaces carry what their agents get now$/);
    line(report, 'connectors/counts', 'ok', /carry the counts the controller computes/);
    // Read only: the dry runs stored nothing.
    const probes = await env.kubectl(['get', 'pods,komputerconnectors', '-A', '-o', 'name']);
    assert.equal(probes.stdout.includes('komputer-webhook-check'), false, probes.stdout);
    const out = await text();
    assert.match(out, /^komputer-webhook check: context /);
    assert.match(out, /0 error\(s\), 0 warning\(s\), \d+ ok, \d+ skipped: healthy \(exit 0\)\n$/);
    log(`check on a healthy install:\n${out}`);
  });

  test('a caBundle from another CA: webhook/tls, webhook/admission (with the API server\'s TLS error) and webhook/validation fail, exit 1', async () => {
    const other = await generateCertificates({ dnsNames: ['other.example'], caCommonName: 'other-ca' });
    await setBundles(other.caCert);
    try {
      // The service's own readiness follows the caBundle within its reload period.
      await pollUntil('the service to report the bundle', async () => ({ ok: (await checkJson(env.kubeconfig)).report.checks.some((c) => c.id === 'service/health' && c.status === 'error') }), { timeoutMs: 15_000, intervalMs: 300 });
      const { code, report } = await checkJson(env.kubeconfig);
      assert.equal(code, 1);
      line(report, 'webhook/tls', 'error', /does not chain to the caBundle of pods\.connectors\.komputer\.ai and validate\.connectors\.komputer\.ai \(CN=other-ca\)/);
      const admission = line(report, 'webhook/admission', 'error', /the API server cannot call pods\.connectors\.komputer\.ai: .*x509/);
      assert.match(admission.remedy ?? '', /the caBundle does not hold the CA of the served certificate.*The API server said: .*failed calling webhook "pods\.connectors\.komputer\.ai".*x509/);
      line(report, 'webhook/validation', 'error', /without an answer from validate\.connectors\.komputer\.ai/);
      line(report, 'service/health', 'error', /not ready: .*does not chain to the caBundle/);
      log(`check with a caBundle from another CA:\n${await text()}`);
    } finally {
      await setBundles(env.certs.caCert);
    }
    await waitHealthy(env.kubeconfig, 'after the caBundle was restored');
  });

  test('check --wait: healthy at once; broken until the deadline (exit 1); broken, then healthy again while it waits (exit 0)', async () => {
    const healthy = await runCheck(env.kubeconfig, ['--wait=30s', '-o', 'json']);
    assert.equal(healthy.code, 0, healthy.stderr);
    assert.equal(healthy.stderr, '', 'no retry when healthy at once');

    const other = await generateCertificates({ dnsNames: ['other.example'], caCommonName: 'other-ca' });
    await setBundles(other.caCert);
    try {
      let started = Date.now();
      const broken = await runCheck(env.kubeconfig, ['--wait=6s', '-o', 'json']);
      const brokenMs = Date.now() - started;
      assert.equal(broken.code, 1, broken.stderr);
      assert.ok(brokenMs >= 6_000, `waited the full deadline (${brokenMs} ms)`);
      assert.match(broken.stderr, /check --wait: attempt 1: \d+ error\(s\): .*webhook\/tls.*; retrying in 2s/);
      assert.match(broken.stderr, /check --wait: not healthy after 6s \(\d+ attempt\(s\)\)/);
      line(JSON.parse(broken.stdout) as CheckJson, 'webhook/tls', 'error', /does not chain to the caBundle/);
      log(`FIGURE check --wait=6s on a broken install: exit 1 after ${brokenMs} ms; stderr:\n${broken.stderr}`);

      started = Date.now();
      const waiting = startCheck(env.kubeconfig, ['--wait=90s', '-o', 'json']);
      // Fixed only once check has seen it broken (a run takes seconds on a loaded machine).
      await pollUntil('check --wait to report a broken attempt', async () => ({ ok: /attempt 1: /.test(waiting.stderr()), detail: waiting.stderr() }), { timeoutMs: 60_000, intervalMs: 100 });
      const fixedAt = Date.now();
      await setBundles(env.certs.caCert);
      const recovered = await waiting.done;
      const doneAt = Date.now();
      assert.equal(recovered.code, 0, `${recovered.stderr}${recovered.stdout}`);
      assert.match(recovered.stderr, /check --wait: attempt 1: .*webhook\/tls/);
      assert.match(recovered.stderr, /check --wait: healthy at attempt \d+\n$/);
      assert.equal((JSON.parse(recovered.stdout) as CheckJson).healthy, true);
      log(`FIGURE check --wait=90s: broken for ${fixedAt - started} ms, healthy ${doneAt - fixedAt} ms after the caBundle was restored; stderr:\n${recovered.stderr}`);
    } finally {
      await setBundles(env.certs.caCert);
    }
    await waitHealthy(env.kubeconfig, 'after check --wait');
  });

  test('a serving certificate close to expiry: a warning under 30 days (exit 0), an error under 7 days (exit 1)', async () => {
    const service = env.service;
    assert.ok(service);
    const saved = await Promise.all(['tls.crt', 'tls.key'].map((f) => readFile(path.join(service.certDir, f), 'utf8')));
    const ca = { cert: env.certs.caCert, key: env.certs.caKey };
    try {
      // Issued 345 (then 362) days ago for a year: 20 (3) days left.
      const twenty = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ca, now: new Date(Date.now() - 345 * DAY), validityDays: 365 });
      await serveCertificate(twenty.cert, twenty.key);
      const warned = await checkJson(env.kubeconfig);
      line(warned.report, 'certificate/expiry', 'warning', /expires in 19d, at .*: its renewal is overdue/);
      assert.deepEqual(notOk(warned.report).map((l) => l.id), ['certificate/expiry'], show(notOk(warned.report)));
      assert.equal(warned.code, 0, 'warnings alone exit 0');

      const three = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ca, now: new Date(Date.now() - 362 * DAY), validityDays: 365 });
      await serveCertificate(three.cert, three.key);
      const failed = await checkJson(env.kubeconfig);
      line(failed.report, 'certificate/expiry', 'error', /the serving certificate \(served at 127\.0\.0\.1:\d+\) expires in 2d, at /);
      assert.equal(failed.code, 1);
    } finally {
      await serveCertificate(saved[0]!, saved[1]!);
    }
    await waitHealthy(env.kubeconfig, 'after the certificate was restored');
  });

  test('an expired certificate (a stand-in server, since the service refuses to load one): certificate/expiry and webhook/admission fail, exit 1', async () => {
    const service = env.service;
    assert.ok(service);
    const expired = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ca: { cert: env.certs.caCert, key: env.certs.caKey }, now: new Date(Date.now() - 2 * DAY), backdateMs: 0, validityDays: 1 });
    await service.stop(); // releases the Lease
    const standIn = await standInTlsServer(service.port, expired.cert, expired.key);
    try {
      const { code, report } = await checkJson(env.kubeconfig);
      assert.equal(code, 1);
      line(report, 'certificate/expiry', 'error', /the serving certificate \(served at 127\.0\.0\.1:\d+\) expired at .* \(24h ago\): the API server refuses it/);
      const admission = line(report, 'webhook/admission', 'error', /the API server cannot call pods\.connectors\.komputer\.ai: .*expired/);
      assert.match(admission.remedy ?? '', /outside its validity.*The API server said: .*x509: certificate has expired/);
      line(report, 'lease/leader', 'error', /is held by no replica/);
      line(report, 'service/health', 'error', /HTTP 503: stand-in TLS server/);
      log(`check with an expired certificate and the service stopped:\n${await text()}`);
    } finally {
      await standIn.close();
      await service.start();
    }
    await waitHealthy(env.kubeconfig, 'after the service was restarted');
  });

  test('a connector the policy refuses, created while the validating webhook was away: connectors/policy, exit 1', async () => {
    const saved = JSON.parse((await env.kubectl(['get', 'validatingwebhookconfiguration', CONFIG, '-o', 'json'])).stdout) as { metadata: Record<string, unknown> };
    for (const k of ['resourceVersion', 'uid', 'creationTimestamp', 'managedFields', 'generation']) delete saved.metadata[k];
    await env.kubectl(['delete', 'validatingwebhookconfiguration', CONFIG]);
    try {
      const missing = await checkJson(env.kubeconfig);
      line(missing.report, 'webhook-config/validating', 'error', /ValidatingWebhookConfiguration komputer-connector-webhook not found: connectors and agents are not validated/);
      await kube.ok(['apply', '-f', '-'], JSON.stringify(connector(NS, 'notion', { service: 'notion', url: 'https://mcp.notion.com/mcp', authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } })));
    } finally {
      await env.kubectl(['create', '-f', '-'], { input: JSON.stringify(saved) });
    }
    try {
      const { code, report } = await checkJson(env.kubeconfig);
      assert.equal(code, 1);
      const denied = line(report, 'connectors/policy', 'error', /^connector check-a\/notion would be refused if created now: Notion rejects static tokens: integration tokens .* only OAuth 2\.0 access tokens work\.$/);
      assert.equal(denied.subject, 'check-a/notion');
      assert.match(denied.remedy ?? '', /^set spec\.authType: oauth, or run the open-source Notion MCP server in-cluster and point spec\.url at it \(kubectl -n check-a edit komputerconnector notion\); until then agents do not get it injected$/);
      log(`check with a connector the policy refuses:\n${await text()}`);
    } finally {
      await env.kubectl(['delete', 'komputerconnector', 'notion', '-n', NS]);
    }
    await waitHealthy(env.kubeconfig, 'after the refused connector was deleted');
  });

  test('an agent that references a missing connector: agents/references, exit 1', async () => {
    await kube.applyAll([agent(NS, 'lost', ['nowhere', 'github'])]);
    try {
      await pollUntil('the counts of github to include lost', async () => ({ ok: (await checkJson(env.kubeconfig)).report.checks.every((c) => c.id !== 'connectors/counts' || c.status === 'ok') }), { timeoutMs: 15_000, intervalMs: 300 });
      const { code, report } = await checkJson(env.kubeconfig);
      assert.equal(code, 1);
      const missing = line(report, 'agents/references', 'error', /^agent check-a\/lost: connector nowhere: connector not found in namespace check-a$/);
      assert.match(missing.remedy ?? '', /create connector nowhere in namespace check-a, or remove it from spec\.connectors/);
      assert.deepEqual(notOk(report).map((l) => l.id), ['agents/references'], show(notOk(report)));
    } finally {
      await env.kubectl(['delete', 'komputeragent', 'lost', '-n', NS]);
    }
    await waitHealthy(env.kubeconfig, 'after the agent was deleted');
  });

  test('a running pod whose connector URL changed (warning, exit 0), then whose connector was deleted (with the missing reference: exit 1)', async () => {
    // Stored pods never run here (no kubelet): a stored pod that is not finished counts as running.
    await kube.ok(['patch', 'komputerconnector', 'linear', '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: { url: 'https://mcp.linear.app/v2/mcp' } })]);
    try {
      const changed = await checkJson(env.kubeconfig);
      const stale = line(changed.report, 'pods/stale', 'warning', /^pod check-a\/writer-pod runs with connectors its agent no longer gets: container agent \(agent writer\): linear url changed$/);
      assert.equal(stale.remedy, 'restart it to pick up the change (running pods keep what they were given): kubectl -n check-a delete pod writer-pod');
      assert.deepEqual(notOk(changed.report).map((l) => l.subject), ['check-a/writer-pod'], show(notOk(changed.report)));
      assert.equal(changed.code, 0, 'a stale pod is a warning');

      await env.kubectl(['delete', 'komputerconnector', 'linear', '-n', NS]);
      const deleted = await checkJson(env.kubeconfig);
      line(deleted.report, 'pods/stale', 'warning', /^pod check-a\/writer-pod runs with connectors its agent no longer gets: container agent \(agent writer\): linear removed$/);
      line(deleted.report, 'agents/references', 'error', /^agent check-a\/writer: connector linear: connector not found in namespace check-a$/);
      assert.equal(deleted.code, 1);
      log(`check with a deleted connector still in a running pod:\n${await text()}`);
    } finally {
      // The connector as the pod was given it: the pod is current again.
      await kube.applyAll([connector(NS, 'linear', { service: 'linear', url: 'https://mcp.linear.app/mcp', authSecretKeyRef: { name: 'linear-token', key: 'token' } })]);
    }
    await waitHealthy(env.kubeconfig, 'after the connector was restored');
  });

  test('an invalid policy ConfigMap: policy/configmap with the parser\'s reason, exit 1', async () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'komputer-connector-webhook-policy', namespace: env.serviceNamespace }, data: { 'incompatible.yaml': 'entries:\n  - id: acme\n    allowedAuthType: [oauth]\n' } };
    await env.apply(cm);
    try {
      const { code, report } = await checkJson(env.kubeconfig);
      assert.equal(code, 1);
      line(report, 'policy/configmap', 'error', /ConfigMap komputer-webhook-system\/komputer-connector-webhook-policy is invalid: .*allowedAuthType.*; the service keeps its last good list/);
    } finally {
      await env.kubectl(['delete', 'configmap', 'komputer-connector-webhook-policy', '-n', env.serviceNamespace]);
    }
  });

  test('kube-system labelled enabled: namespaces/reachable says the webhook never acts there, exit 1', async () => {
    await env.kubectl(['label', 'namespace', 'kube-system', 'komputer.ai/connector-injection=enabled']);
    try {
      const { code, report } = await checkJson(env.kubeconfig);
      assert.equal(code, 1);
      const l = line(report, 'namespaces/reachable', 'error', /^namespace kube-system is enabled, but pods\.connectors\.komputer\.ai never acts there: its namespaceSelector does not select it \(kube-system and the service's own namespace are never injected\)$/);
      assert.match(l.remedy ?? '', /kubectl label namespace kube-system komputer\.ai\/connector-injection-/);
    } finally {
      await env.kubectl(['label', 'namespace', 'kube-system', 'komputer.ai/connector-injection-']);
    }
  });

  test('the pod webhook pointed at a Service that does not exist (in-cluster path): webhook/admission with the API server\'s error, service/replicas, exit 1', async () => {
    const config = JSON.parse((await env.kubectl(['get', 'mutatingwebhookconfiguration', CONFIG, '-o', 'json'])).stdout) as { webhooks: { clientConfig: Record<string, unknown> }[] };
    const original = config.webhooks[0]!.clientConfig;
    const toService = { service: { namespace: env.serviceNamespace, name: 'komputer-connector-webhook', path: '/mutate/pods', port: 443 }, caBundle: original['caBundle'] };
    await env.kubectl(['patch', 'mutatingwebhookconfiguration', CONFIG, '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig', value: toService }])]);
    try {
      const { code, report } = await checkJson(env.kubeconfig);
      assert.equal(code, 1);
      line(report, 'webhook-config/mutating', 'ok', /pods\.connectors\.komputer\.ai calls service komputer-webhook-system\/komputer-connector-webhook:443\/mutate\/pods/);
      const admission = line(report, 'webhook/admission', 'error', /the API server cannot call pods\.connectors\.komputer\.ai: /);
      assert.match(admission.remedy ?? '', /The API server said: .*failed calling webhook "pods\.connectors\.komputer\.ai"/);
      line(report, 'service/replicas', 'error', /Deployment komputer-webhook-system\/komputer-connector-webhook not found, but the webhooks call a Service/);
      log(`check with the pod webhook pointed at a missing Service:\n${await text()}`);
    } finally {
      await env.kubectl(['patch', 'mutatingwebhookconfiguration', CONFIG, '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig', value: original }])]);
    }
    await waitHealthy(env.kubeconfig, 'after the pod webhook was restored');
  });

  test('bad input: a context that does not exist, an unreachable API server: exit 2, one line, no stack trace', async () => {
    const noContext = await runCheck(env.kubeconfig, ['--context', 'nope']);
    assert.equal(noContext.code, 2, noContext.stderr);
    assert.equal(noContext.stderr, 'komputer-webhook: context "nope" is not in the kubeconfig (it has: komputer-e2e)\n');
    const kc = (await readFile(env.kubeconfig, 'utf8')).replace(env.controlPlane.server, 'https://127.0.0.1:1');
    const file = path.join(env.controlPlane.dir, 'unreachable.kubeconfig');
    await writeFile(file, kc, { mode: 0o600 });
    const unreachable = await runCheck(file);
    assert.equal(unreachable.code, 2, unreachable.stderr);
    assert.match(unreachable.stderr, /^komputer-webhook: cannot reach the API server https:\/\/127\.0\.0\.1:1 \(context komputer-e2e\): connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
    assert.equal(unreachable.stdout, '');
  });
});
