// The chart's alerts and dashboard against a real Prometheus (bin/prometheus, built from the
// same pin as promtool: `npm run tools:prometheus`). A real kube-apiserver + etcd and two
// replicas of the service as host processes, each in a memory cgroup of its own (so it has
// a limit to export, as in a pod). Prometheus scrapes both with the labels the chart's
// ServiceMonitor gives them (the Prometheus Operator's relabelling of the rendered
// ServiceMonitor over targets carrying the meta labels Kubernetes discovery gives the
// rendered Service's endpoints) and loads the rendered PrometheusRule's groups with every
// `for` shortened to FOR here (the shipped rules keep theirs). Scrape and evaluation every
// second. Then, through Prometheus' HTTP API, timed from each fault to pending and firing
// and from each repair to resolved:
//   a. healthy replicas: both targets up with the ServiceMonitor's labels, every rule
//      evaluates without error, no alert pending or firing;
//   b. both replicas SIGKILLed: KomputerWebhookNoReadyReplica fires (up == 0), and resolves
//      after they restart; the targets gone (the Deployment scaled to 0): it fires again, on
//      absent(up), and resolves when they are back;
//   c. the policy ConfigMap broken: KomputerWebhookPolicyConfigInvalid fires, and resolves
//      when it is fixed;
//   d. one replica serving a certificate of the project's own cert code that expires in 3
//      days: KomputerWebhookCertificateExpiresSoon fires for that instance only, and
//      resolves when the replica serves a good one again;
//   e. every query of the Grafana dashboard, with its variables interpolated as Grafana
//      does, returns at least one series (what they show happens first: admissions, a
//      warning, a denial, a 400, an Event, a policy violation);
//   f. no canary token (Secret data, a pod's env value) is in any series Prometheus holds.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { generateCertificates } from '../../src/certs/generate.ts';
import { dashboardQueries, grafanaToPromql, labelValuesVariables, type Dashboard } from '../helpers/dashboard.ts';
import { post } from '../helpers/tls.ts';
import { SERVICE_NAMESPACE, startEnvironment, stopEnvironment, type Environment, type WebhookService } from './harness/index.ts';
import { parseManifests } from './harness/install.ts';
import { log } from './harness/log.ts';
import { prometheusBinary } from './harness/paths.ts';
import { pollUntil, servedCertificate } from './fixtures/cluster.ts';
import { CHART_DIR, createHelm, sets } from './fixtures/helm.ts';
import { createMemoryCgroup, type MemoryCgroup } from './fixtures/memory-cgroup.ts';
import { endpointsTargetGroups, only, serviceMonitorScrapeConfig, startPrometheus, type Prometheus, type PromAlert, type ServiceMonitor, type TargetGroup } from './fixtures/prometheus.ts';
import { Kube, agent, connector, secret, soloPod } from './fixtures/today.ts';

/** Every alert's `for`, here only (the shipped rules keep theirs). */
const FOR = '5s';
const FOR_MS = 5_000;
/** Scrape interval and timeout, and rule evaluation interval. */
const INTERVAL = '1s';
const RELOAD_MS = 500;
const DAY_MS = 86_400_000;
/** Each replica's memory limit: far above what it uses, so the memory alert stays quiet. */
const MEMORY_LIMIT = 2 * 1024 ** 3;
const NS = 'e2e-prometheus';
const POLICY_CM = 'komputer-connector-webhook-policy';
const CANARY_SECRET = 'ghp_E2ECANARYprometheusSecretData0123456789';
const CANARY_ENV = 'ghp_E2ECANARYprometheusPodEnvValue012345678';

const NO_READY = 'KomputerWebhookNoReadyReplica';
const POLICY_INVALID = 'KomputerWebhookPolicyConfigInvalid';
const CERT_EXPIRES = 'KomputerWebhookCertificateExpiresSoon';

// An admin entry in warn mode: connectors that break it are admitted (with a warning) and
// counted in komputer_webhook_policy_violations, which a dashboard panel shows.
const GOOD_POLICY = [
  'entries:',
  '  - id: acme',
  '    service: Acme MCP',
  '    url: https://mcp.acme.example/mcp',
  '    allowedAuthTypes: [oauth]',
  '    why: Acme refuses personal tokens',
  '    instead: "set spec.authType: oauth"',
  '    action: warn',
  '',
].join('\n');

interface RuleGroup {
  readonly name: string;
  readonly rules: readonly { readonly alert?: string; readonly expr: string; readonly for?: string }[];
}

interface Running {
  readonly pod: string;
  readonly service: WebhookService;
}

let env: Environment;
let kube: Kube;
let prom: Prometheus;
let cgroup: MemoryCgroup | undefined;
let replicas: Running[];
let targets: TargetGroup[];
let ruleGroups: RuleGroup[];
/** The job every rule selects. */
let rulesJob: string;
let serviceName: string;
let containerName: string;
let dashboard: Dashboard;
const figures: string[] = [];

function figure(text: string): void {
  figures.push(text);
  log(`FIGURE ${text}`);
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** The rule groups with every `for` set to `duration`: the test's only change to the shipped rules. */
function shortenFor(groups: readonly RuleGroup[], duration: string): RuleGroup[] {
  return groups.map((g) => ({ ...g, rules: g.rules.map((r) => (r.for === undefined ? r : { ...r, for: duration })) }));
}

/** Starts a replica (again) and moves it into the memory cgroup. */
async function startReplica(r: Running): Promise<void> {
  await r.service.start();
  const pid = r.service.process?.pid;
  assert.ok(pid !== undefined && pid > 0, `${r.pod} has a pid`);
  cgroup?.add(pid);
}

function instanceOf(r: Running): string {
  return `127.0.0.1:${r.service.metricsPort}`;
}

async function setPolicy(text: string): Promise<void> {
  await env.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: POLICY_CM, namespace: SERVICE_NAMESPACE }, data: { 'incompatible.yaml': text } });
}

/** Replaces tls.key then tls.crt as a mounted Secret update would, and waits until the replica serves it. */
async function serveCertificate(service: WebhookService, cert: string, key: string): Promise<void> {
  for (const [file, content] of [['tls.key', key], ['tls.crt', cert]] as const) {
    await writeFile(path.join(service.certDir, `.${file}.new`), content, { mode: 0o600 });
    await rename(path.join(service.certDir, `.${file}.new`), path.join(service.certDir, file));
  }
  const want = new X509Certificate(cert).fingerprint256;
  await pollUntil('the replica to serve the new certificate', async () => ({ ok: (await servedCertificate(service.port)).fingerprint256 === want }), { timeoutMs: 15_000, intervalMs: 100 });
}

function show(alerts: readonly PromAlert[]): string {
  return alerts.map((a) => `${a.labels['alertname']}{${Object.entries(a.labels).filter(([k]) => k !== 'alertname').map(([k, v]) => `${k}="${v}"`).join(', ')}} ${a.state} since ${a.activeAt}`).join('\n  ') || '(none)';
}

interface Fired {
  readonly alert: PromAlert;
  /** From the fault to the evaluation that made it pending (Prometheus' activeAt). */
  readonly pendingMs: number;
  /** From the fault to the first poll that saw it firing. */
  readonly firingMs: number;
}

/** Polls /api/v1/alerts until `name` (labels matching `match`) fires; checks it was pending for `for` first. */
async function waitFiring(name: string, match: (labels: Readonly<Record<string, string>>) => boolean, since: number, timeoutMs = 45_000): Promise<Fired> {
  let sawPending = false;
  let last: PromAlert[] = [];
  for (;;) {
    last = await prom.api.alerts();
    const now = Date.now();
    const mine = last.filter((a) => a.labels['alertname'] === name && match(a.labels));
    if (mine.some((a) => a.state === 'pending')) sawPending = true;
    const firing = mine.find((a) => a.state === 'firing');
    if (firing !== undefined) {
      const activeAt = Date.parse(firing.activeAt);
      assert.ok(sawPending, `${name} was seen pending before it fired`);
      assert.ok(now - activeAt >= FOR_MS - 50, `${name} fired ${now - activeAt} ms after it became pending, not after its for of ${FOR}`);
      return { alert: firing, pendingMs: activeAt - since, firingMs: now - since };
    }
    if (now - since > timeoutMs) assert.fail(`${name} did not fire within ${timeoutMs} ms; active alerts:\n  ${show(last)}`);
    await sleep(100);
  }
}

/** Polls until no alert `name` is active; returns the time from `since`. */
async function waitResolved(name: string, since: number, timeoutMs = 45_000): Promise<number> {
  for (;;) {
    const alerts = await prom.api.alerts();
    const now = Date.now();
    if (!alerts.some((a) => a.labels['alertname'] === name)) return now - since;
    if (now - since > timeoutMs) assert.fail(`${name} did not resolve within ${timeoutMs} ms; active alerts:\n  ${show(alerts)}`);
    await sleep(100);
  }
}

/** Waits until no alert is active, then requires that for `quietMs` (fails with what stays active). */
async function assertQuiet(what: string, quietMs: number, settleMs = 20_000): Promise<void> {
  const started = Date.now();
  let last: PromAlert[] = [];
  for (;;) {
    last = await prom.api.alerts();
    if (last.length === 0) break;
    if (Date.now() - started > settleMs) assert.fail(`${what}: alerts still active after ${settleMs} ms:\n  ${show(last)}`);
    await sleep(200);
  }
  const quietFrom = Date.now();
  while (Date.now() - quietFrom < quietMs) {
    last = await prom.api.alerts();
    assert.deepEqual(last, [], `${what}: no alert may be pending or firing:\n  ${show(last)}`);
    await sleep(250);
  }
}

before(async () => {
  prometheusBinary(); // before the control plane: a missing binary fails at once, naming `npm run tools:prometheus`
  // The chart as an admin renders it for kube-prometheus-stack.
  const home = await mkdtemp(path.join(os.tmpdir(), 'kcw-prometheus-helm-'));
  let objects: Record<string, unknown>[];
  try {
    const helm = await createHelm({ home });
    objects = parseManifests(await helm.template(sets('serviceMonitor.enabled=true', 'prometheusRule.enabled=true')));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
  const sm = only<ServiceMonitor>(objects, 'ServiceMonitor');
  const rule = only<{ spec: { groups: RuleGroup[] } }>(objects, 'PrometheusRule');
  const deployment = only<{ metadata: { name: string } }>(objects, 'Deployment');
  ruleGroups = rule.spec.groups;
  const jobs = new Set(ruleGroups.flatMap((g) => g.rules.flatMap((r) => [...r.expr.matchAll(/\bjob="([^"]+)"/g)].map((m) => m[1]!))));
  assert.equal(jobs.size, 1, `the rules select one job (found ${[...jobs].join(', ')})`);
  rulesJob = [...jobs][0]!;
  dashboard = JSON.parse(await readFile(path.join(CHART_DIR, 'files', 'grafana-dashboard.json'), 'utf8')) as Dashboard;

  const pods = [`${deployment.metadata.name}-e2e-a`, `${deployment.metadata.name}-e2e-b`] as const;
  const args = (pod: string): string[] => ['--identity', pod, '--cert-reload-ms', String(RELOAD_MS)];
  env = await startEnvironment({ serviceArgs: args(pods[0]) });
  assert.ok(env.service);
  kube = new Kube(env);
  cgroup = createMemoryCgroup(`kcw-e2e-prometheus-${process.pid}`, MEMORY_LIMIT);
  replicas = [
    { pod: pods[0], service: env.service },
    { pod: pods[1], service: await env.createService({ name: 'replica-b', serviceArgs: args(pods[1]) }) },
  ];
  cgroup.add(env.service.process!.pid);
  await startReplica(replicas[1]!);
  await setPolicy(GOOD_POLICY);

  targets = endpointsTargetGroups(
    objects,
    sm,
    replicas.map((r) => ({ pod: r.pod, ports: { https: r.service.port, metrics: r.service.metricsPort } })),
  );
  serviceName = targets[0]?.labels['__meta_kubernetes_service_name'] ?? '';
  containerName = targets.find((t) => t.labels['__meta_kubernetes_endpoint_port_name'] === sm.spec.endpoints[0]?.port)?.labels['__meta_kubernetes_pod_container_name'] ?? '';
  prom = await startPrometheus(env.controlPlane, {
    scrapeConfigs: (file) => sm.spec.endpoints.map((_, i) => serviceMonitorScrapeConfig(sm, i, { files: [file], interval: INTERVAL, scrapeTimeout: INTERVAL })),
    ruleGroups: shortenFor(ruleGroups, FOR),
    evaluationInterval: INTERVAL,
    targets,
  });
  log(`prometheus ${prom.url}: ${targets.length} discovered targets, ${ruleGroups.reduce((n, g) => n + g.rules.length, 0)} rules, every for shortened to ${FOR}`);
});

after(async () => {
  if (figures.length > 0) log(`figures (scrape and evaluation every ${INTERVAL}, every for shortened to ${FOR}):\n  ${figures.join('\n  ')}`);
  await stopEnvironment();
  try {
    cgroup?.remove();
  } catch (error) {
    log(`could not remove ${cgroup?.dir}: ${String(error)}`);
  }
});

describe('a real Prometheus with the chart\'s ServiceMonitor, rules and dashboard', () => {
  test('a. healthy replicas: both scraped with the ServiceMonitor\'s labels, every rule evaluates, no alert pending or firing', async () => {
    const t0 = Date.now();
    await pollUntil(
      'both replicas scraped up and ready',
      async () => {
        const up = await prom.api.query(`up == 1`);
        const ready = await prom.api.query(`komputer_webhook_ready == 1`);
        return { ok: up.length === 2 && ready.length === 2, detail: `up: ${JSON.stringify(up.map((s) => s.metric))}; ready: ${ready.length}` };
      },
      { timeoutMs: 30_000 },
    );
    figure(`both targets up and ready ${seconds(Date.now() - t0)} after Prometheus was ready`);

    // The operator's relabelling computed these from the chart's ServiceMonitor and Service.
    const up = (await prom.api.query('up')).map((s) => s.metric).sort((a, b) => (a['pod']! < b['pod']! ? -1 : 1));
    assert.deepEqual(
      up,
      replicas.map((r) => ({ __name__: 'up', job: rulesJob, namespace: SERVICE_NAMESPACE, service: serviceName, pod: r.pod, container: containerName, endpoint: 'metrics', instance: instanceOf(r) })),
      `the targets carry the job the rules select (${rulesJob}) and the labels a ServiceMonitor scrape has`,
    );
    const { activeTargets, droppedTargets } = await prom.api.targets();
    assert.equal(activeTargets.length, 2, 'only the metrics port of each replica is scraped');
    assert.equal(droppedTargets.length, targets.length - 2, 'the other ports of the Service are dropped by the port filter');

    // Every rule is loaded and evaluates without error (a rule naming a function or label
    // wrongly fails here, not only in promtool).
    const expected = ruleGroups.reduce((n, g) => n + g.rules.length, 0);
    await pollUntil(
      'every rule evaluated since the targets were up',
      async () => {
        const rules = (await prom.api.rules()).flatMap((g) => g.rules);
        const stale = rules.filter((r) => Date.parse(r.lastEvaluation) < t0);
        return { ok: rules.length === expected && stale.length === 0, detail: `${rules.length} of ${expected} rules loaded, ${stale.length} not evaluated yet` };
      },
      { timeoutMs: 15_000 },
    );
    const unhealthy = (await prom.api.rules()).flatMap((g) => g.rules).filter((r) => r.health !== 'ok');
    assert.deepEqual(unhealthy.map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`), []);

    await assertQuiet('healthy replicas', 5_000);
  });

  test('b. both replicas killed: NoReadyReplica fires after its for and resolves after the restart; with no target at all it fires on absent(up)', async () => {
    // Crashed pods: their endpoints stay, every scrape fails (up == 0).
    const killed = Date.now();
    await Promise.all(replicas.map((r) => r.service.kill('SIGKILL')));
    const down = await waitFiring(NO_READY, (l) => l['namespace'] === SERVICE_NAMESPACE && l['job'] === rulesJob, killed);
    assert.equal(down.alert.labels['severity'], 'critical');
    const restarted = Date.now();
    await Promise.all(replicas.map((r) => startReplica(r)));
    const replicasReadyMs = Date.now() - restarted;
    const downResolvedMs = await waitResolved(NO_READY, restarted);
    figure(`${NO_READY} (both replicas SIGKILLed, up == 0): pending ${seconds(down.pendingMs)} and firing ${seconds(down.firingMs)} after the kill; resolved ${seconds(downResolvedMs)} after the restart began (replicas ready after ${seconds(replicasReadyMs)})`);

    // The Deployment scaled to 0: no endpoints, no target, no `up` series at all.
    const gone = Date.now();
    await prom.setTargets([]);
    const absent = await waitFiring(NO_READY, (l) => l['job'] === rulesJob && l['namespace'] === undefined, gone);
    assert.deepEqual(Object.keys(absent.alert.labels).sort(), ['alertname', 'job', 'severity'], 'the absent(up) branch: only the job label');
    const back = Date.now();
    await prom.setTargets(targets);
    const absentResolvedMs = await waitResolved(NO_READY, back);
    figure(`${NO_READY} (no target, absent(up)): pending ${seconds(absent.pendingMs)} and firing ${seconds(absent.firingMs)} after the targets went; resolved ${seconds(absentResolvedMs)} after they came back`);
    await assertQuiet('after the replicas are back', 3_000);
  });

  test('c. a broken policy ConfigMap: PolicyConfigInvalid fires after its for and resolves when it is fixed', async () => {
    const broken = Date.now();
    await setPolicy('entries: [ {id: acme');
    const fired = await waitFiring(POLICY_INVALID, (l) => l['namespace'] === SERVICE_NAMESPACE && l['job'] === rulesJob, broken);
    assert.equal(fired.alert.labels['severity'], 'warning');
    const fixed = Date.now();
    await setPolicy(GOOD_POLICY);
    const resolvedMs = await waitResolved(POLICY_INVALID, fixed);
    figure(`${POLICY_INVALID}: pending ${seconds(fired.pendingMs)} and firing ${seconds(fired.firingMs)} after the ConfigMap broke; resolved ${seconds(resolvedMs)} after it was fixed`);
    await assertQuiet('after the policy is fixed', 3_000);
  });

  test('d. a replica serving a certificate that expires in 3 days: CertificateExpiresSoon fires for that instance only, and resolves with a good certificate', async () => {
    const [a, b] = replicas as [Running, Running];
    const saved = await Promise.all(['tls.crt', 'tls.key'].map((f) => readFile(path.join(b.service.certDir, f), 'utf8')));
    // The project's own cert code, signed by the CA the webhooks trust: only its expiry is wrong.
    const short = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ca: { cert: env.certs.caCert, key: env.certs.caKey }, validityMs: 3 * DAY_MS });
    const swapped = Date.now();
    await serveCertificate(b.service, short.cert, short.key);
    const fired = await waitFiring(CERT_EXPIRES, (l) => l['instance'] === instanceOf(b), swapped);
    assert.equal(fired.alert.labels['pod'], b.pod);
    const left = Number(fired.alert.value);
    assert.ok(left > 2.9 * 86_400 && left < 3 * 86_400, `the alert's value is the time left (${left} s)`);
    const others = (await prom.api.alerts()).filter((x) => x.labels['alertname'] === CERT_EXPIRES && x.labels['instance'] !== instanceOf(b));
    assert.deepEqual(others, [], `${a.pod}, which serves a good certificate, has no alert`);
    const restored = Date.now();
    await serveCertificate(b.service, saved[0]!, saved[1]!);
    const resolvedMs = await waitResolved(CERT_EXPIRES, restored);
    figure(`${CERT_EXPIRES}: pending ${seconds(fired.pendingMs)} and firing ${seconds(fired.firingMs)} after the 3-day certificate was written; resolved ${seconds(resolvedMs)} after the good one was`);
    await assertQuiet('after the certificate is restored', 3_000);
  });

  test('e. every dashboard query, its variables interpolated as Grafana does, returns series', async () => {
    // What the panels show, made to happen (the replicas restarted in b: counters start again).
    await env.createNamespace(NS, { enabled: true });
    await env.apply(secret(NS, 'github-token', { token: CANARY_SECRET }));
    await kube.applyAll([
      connector(NS, 'github', { service: 'github', url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'github-token', key: 'token' } }),
      agent(NS, 'researcher', ['github', 'missing']),
    ]);
    // A connector under the warn entry: admitted with a warning, counted as a violation.
    const acme = await kube.apply(connector(NS, 'acme', { service: 'acme', url: 'https://mcp.acme.example/mcp', authType: 'token', authSecretKeyRef: { name: 'acme', key: 'token' } }));
    assert.equal(acme.code, 0, acme.stderr);
    // A denial on /validate (a built-in entry refuses Notion with a static token).
    const notion = await kube.apply(connector(NS, 'notion', { service: 'notion', url: 'https://mcp.notion.com/mcp', authType: 'token', authSecretKeyRef: { name: 'notion', key: 'token' } }), ['--dry-run=server']);
    assert.notEqual(notion.code, 0, 'the Notion connector is denied');
    // A stored agent pod: injected, warned about the missing connector, an Event written.
    await kube.waitForPod('the agent known to the service', soloPod(NS, 'wait', 'researcher', []), (p) => p.metadata.annotations?.['komputer.ai/injected-connectors'] === 'github');
    const { warnings } = await kube.createPod(soloPod(NS, 'researcher-pod', 'researcher', [{ name: 'MY_PAT', value: CANARY_ENV }]));
    assert.ok(warnings.some((w) => w.includes('connector missing not injected')), `a warning about the missing connector: ${warnings.join('; ')}`);
    // A 400: not an AdmissionReview.
    const bad = await post(replicas[0]!.service.port, '/validate', '{', env.certs.caCert);
    assert.equal(bad.status, 400);

    // The namespace variable: label_values(...) as Grafana asks for it.
    const variables = labelValuesVariables(dashboard);
    assert.deepEqual(variables.map((v) => v.name), ['namespace']);
    const namespaces = await prom.api.labelValues(variables[0]!.label, [variables[0]!.selector]);
    assert.deepEqual(namespaces, [SERVICE_NAMESPACE], 'the namespace variable offers the replicas\' namespace');

    const queries = dashboardQueries(dashboard);
    const empty = new Map<string, string>();
    const started = Date.now();
    // Rates need two samples of a counter that appeared just now: poll each query briefly.
    for (const selection of [undefined, namespaces]) {
      for (const q of queries) {
        const expr = grafanaToPromql(q.expr, selection === undefined ? {} : { namespaces: selection });
        const key = `${q.where} (namespace ${selection === undefined ? 'All' : selection.join(', ')})`;
        try {
          await pollUntil(key, async () => ({ ok: (await prom.api.query(expr)).length > 0, detail: 'no series' }), { timeoutMs: Math.max(1_000, 20_000 - (Date.now() - started)), intervalMs: 250 });
        } catch (error) {
          empty.set(key, `${expr}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
    assert.deepEqual(Object.fromEntries(empty), {}, 'every dashboard query returns at least one series');
    const violations = await prom.api.query('komputer_webhook_policy_violations{entry="acme", action="warn"}');
    assert.deepEqual(violations.map((s) => s.value[1]), ['1'], 'the violations panel counts the Acme connector');
    const limit = await prom.api.query('komputer_webhook_memory_limit_bytes');
    assert.deepEqual(limit.map((s) => Number(s.value[1])), [MEMORY_LIMIT, MEMORY_LIMIT], 'each replica exports its cgroup limit');
    figure(`dashboard: ${queries.length} queries x 2 namespace selections returned series ${seconds(Date.now() - started)} after the events`);
  });

  test('f. no canary token is in any series Prometheus scraped', async () => {
    const all = JSON.stringify(await prom.api.query('{__name__=~".+"}'));
    assert.ok(all.includes('komputer_webhook_admission_requests_total'), 'the scraped series are there');
    const labels = await prom.api.labelNames();
    const values = await Promise.all(labels.map(async (l) => ({ label: l, values: await prom.api.labelValues(l) })));
    const text = `${all}\n${JSON.stringify(values)}`;
    for (const canary of [CANARY_SECRET, CANARY_ENV]) {
      for (const form of [canary, Buffer.from(canary).toString('base64')]) assert.equal(text.includes(form), false, `no series or label value may contain ${form}`);
    }
  });
});
