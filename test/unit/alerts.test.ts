// The Prometheus alerts (charts/komputer-connector-webhook/files/prometheus-rules.yaml):
// promtool accepts the rule file and its unit tests (test/alerts/*.yaml) pass; every alert
// has a case that fires and one that does not; and every metric and label value the rules
// select on is one a real server exports, so a renamed metric cannot silently mute an alert.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import type { RunningServer } from '../../src/server/serve.ts';
import { dashboardQueries, grafanaToPromql, type Dashboard } from '../helpers/dashboard.ts';
import { podReview } from '../helpers/review.ts';
import { startTestServer, metricsText } from '../helpers/server.ts';
import { post, writeTestCerts, type TestCerts } from '../helpers/tls.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const RULES = path.join(ROOT, 'charts', 'komputer-connector-webhook', 'files', 'prometheus-rules.yaml');
const TESTS_DIR = path.join(ROOT, 'test', 'alerts');
const DASHBOARD = path.join(ROOT, 'charts', 'komputer-connector-webhook', 'files', 'grafana-dashboard.json');
const STATE = path.join(ROOT, 'test', 'golden', 'solo', 'state.yaml');
// Where test/tools/build.sh puts the binary.
const PROMTOOL = path.join(path.resolve(process.env['KOMPUTER_BIN_DIR'] ?? path.join(ROOT, 'bin')), 'promtool');

/** Series the rules may select that this service does not export (Prometheus' own). */
const EXTERNAL_METRICS = new Set(['up']);
/** Labels Prometheus attaches to every scraped series (target labels), not the service. */
const TARGET_LABELS = new Set(['job', 'namespace', 'instance']);

interface Rule {
  readonly alert?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

function loadRules(): Rule[] {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

function alertTestFiles(): string[] {
  return readdirSync(TESTS_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => path.join(TESTS_DIR, f));
}

function promtool(...args: string[]): { status: number | null; output: string } {
  assert.ok(existsSync(PROMTOOL), `promtool not found at ${PROMTOOL}: build it with \`npm run tools:promtool\` (or set KOMPUTER_BIN_DIR to where it is)`);
  const r = spawnSync(PROMTOOL, args, { cwd: ROOT, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

// --- the dashboard's queries: test/helpers/dashboard.ts.

/** Whether a metric's help text names `label` ("by kind and reason", "by cgroup (...)"). */
function documentedLabel(helpText: string | undefined, label: string): boolean {
  return new RegExp(`\\bby (?:[a-z]+(?:, | and ))*${label}\\b`).test(helpText ?? '');
}

// --- PromQL, as far as these rules need: selectors and the metric names they name.

interface Selector {
  readonly metric: string;
  readonly matchers: readonly { readonly label: string; readonly op: string; readonly value: string }[];
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan']);

/** The vector selectors of an expression: metric name plus label matchers. */
function selectors(expr: string): Selector[] {
  const out: Selector[] = [];
  // Drop label lists of grouping/matching modifiers and range/subquery durations first.
  const text = expr
    .replace(/#[^\n]*/g, ' ') // PromQL comments (the threshold markers the chart rewrites)
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  const re = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const name = m[1]!;
    const braces = m[2];
    const rest = text.slice(re.lastIndex);
    if (!braces && /^\s*\(/.test(rest)) continue; // a function or aggregation call
    if (KEYWORDS.has(name.toLowerCase())) continue;
    if (m.index > 0 && /[0-9.]/.test(text[m.index - 1]!)) continue; // the exponent or unit of a number
    const matchers: Selector['matchers'][number][] = [];
    if (braces) {
      const mr = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;
      for (let x = mr.exec(braces); x; x = mr.exec(braces)) matchers.push({ label: x[1]!, op: x[2]!, value: x[3]! });
    }
    out.push({ metric: name, matchers });
  }
  return out;
}

// --- the exposition format, as prom-client writes it.

interface Exposition {
  /** Family name -> type (counter, gauge, histogram, summary). */
  readonly types: Map<string, string>;
  /** Family name -> help text. */
  readonly help: Map<string, string>;
  /** Series name (with _bucket etc.) -> label name -> values seen. */
  readonly labels: Map<string, Map<string, Set<string>>>;
}

function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const labels = new Map<string, Map<string, Set<string>>>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    const h = /^# HELP (\S+) (.*)$/.exec(line);
    if (h) help.set(h[1]!, h[2]!);
    if (line.startsWith('#') || line.trim() === '') continue;
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!s) continue;
    const byLabel = labels.get(s[1]!) ?? new Map<string, Set<string>>();
    labels.set(s[1]!, byLabel);
    for (const l of (s[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      const values = byLabel.get(l[1]!) ?? new Set<string>();
      values.add(l[2]!);
      byLabel.set(l[1]!, values);
    }
  }
  return { types, help, labels };
}

/** The family a series name belongs to: itself, or a histogram/summary's _bucket/_sum/_count. */
function familyOf(name: string, exp: Exposition): string | undefined {
  if (exp.types.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!m) return undefined;
  const type = exp.types.get(m[1]!);
  if (type === 'histogram' || (type === 'summary' && m[2] !== 'bucket')) return m[1]!;
  return undefined;
}

/**
 * Label values a metric documents in its help text: "... by path and verdict (patched,
 * allowed, denied, error)" or "... by result (loaded, rejected)". Values that a test server
 * cannot produce (an internal error, a failed status write) are checked against these.
 */
function documentedValues(helpText: string | undefined): Set<string> {
  const m = /\(([a-z]+(?:, [a-z]+)+)\)/.exec(helpText ?? '');
  return new Set(m ? m[1]!.split(', ') : []);
}

describe('Prometheus alerts', () => {
  const rules = loadRules();
  const alerts = rules.filter((r) => r.alert !== undefined);

  test('the rule file has alerts, each with severity, summary, description and a README runbook anchor', () => {
    assert.ok(alerts.length >= 8, `expected at least 8 alerts, found ${alerts.length}`);
    const names = alerts.map((a) => a.alert!);
    assert.equal(new Set(names).size, names.length, 'alert names are unique');
    for (const a of alerts) {
      assert.match(a.labels?.['severity'] ?? '', /^(critical|warning)$/, `${a.alert}: labels.severity`);
      assert.ok(a.annotations?.['summary'], `${a.alert}: annotations.summary`);
      assert.ok((a.annotations?.['description'] ?? '').length > 40, `${a.alert}: annotations.description says what to do`);
      assert.equal(a.annotations?.['runbook_url'], `https://github.com/komputer-ai/komputer-connector-webhook#runbook-${a.alert!.toLowerCase()}`, `${a.alert}: runbook_url`);
      assert.ok(a.for, `${a.alert}: has a for: duration`);
      for (const s of selectors(a.expr)) {
        assert.ok(
          s.matchers.some((m) => m.label === 'job' && m.op === '=' && m.value === 'komputer-connector-webhook'),
          `${a.alert}: selector ${s.metric} carries job="komputer-connector-webhook"`,
        );
      }
    }
  });

  test('promtool check rules accepts the rule file', () => {
    const r = promtool('check', 'rules', RULES);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS/);
  });

  test('promtool test rules passes every test/alerts/*.yaml', () => {
    const files = alertTestFiles();
    assert.ok(files.length > 0, `no alert tests in ${TESTS_DIR}`);
    for (const f of files) {
      const doc = parse(readFileSync(f, 'utf8')) as { rule_files?: string[] };
      assert.deepEqual(
        (doc.rule_files ?? []).map((r) => path.resolve(path.dirname(f), r)),
        [RULES],
        `${path.relative(ROOT, f)} tests the chart's rule file`,
      );
    }
    const r = promtool('test', 'rules', ...files.map((f) => path.relative(ROOT, f)));
    assert.equal(r.status, 0, r.output);
    assert.doesNotMatch(r.output, /FAILED/);
  });

  test('every alert has at least one firing and one non-firing test case', () => {
    const firing = new Map<string, number>();
    const silent = new Map<string, number>();
    for (const f of alertTestFiles()) {
      const doc = parse(readFileSync(f, 'utf8')) as { tests?: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] | null }[] }[] };
      for (const group of doc.tests ?? []) {
        for (const c of group.alert_rule_test ?? []) {
          const into = (c.exp_alerts ?? []).length > 0 ? firing : silent;
          into.set(c.alertname, (into.get(c.alertname) ?? 0) + 1);
        }
      }
    }
    const known = new Set(alerts.map((a) => a.alert!));
    for (const name of [...firing.keys(), ...silent.keys()]) assert.ok(known.has(name), `test/alerts names ${name}, which is no alert in the rule file`);
    const missing = alerts.flatMap((a) => [...(firing.has(a.alert!) ? [] : [`${a.alert}: no firing case`]), ...(silent.has(a.alert!) ? [] : [`${a.alert}: no non-firing case`])]);
    assert.deepEqual(missing, []);
  });

  test('the selector parser finds the metrics of a typical expression', () => {
    assert.deepEqual(
      selectors('histogram_quantile(0.99, sum by (namespace, le) (rate(a_bucket{job="j", path=~"x|y"}[5m]))) > 2.5 or absent(up{job="j"}) unless on(job) b * 7 * 24'),
      [
        { metric: 'a_bucket', matchers: [{ label: 'job', op: '=', value: 'j' }, { label: 'path', op: '=~', value: 'x|y' }] },
        { metric: 'up', matchers: [{ label: 'job', op: '=', value: 'j' }] },
        { metric: 'b', matchers: [] },
      ],
    );
  });

  describe('against a real server', () => {
    let certs: TestCerts;
    let server: RunningServer;
    let exposition: Exposition;

    before(async () => {
      certs = await writeTestCerts();
      ({ server } = await startTestServer(certs, STATE));
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'team-a', labels: { 'komputer.ai/agent-name': 'researcher', 'komputer.ai/squad': 'false' } }, spec: { containers: [{ name: 'agent', image: 'x' }] } };
      const notion = { apiVersion: 'komputer.komputer.ai/v1alpha1', kind: 'KomputerConnector', metadata: { name: 'notion', namespace: 'team-a' }, spec: { type: 'remote', service: 'notion', url: 'https://mcp.notion.com/mcp', authType: 'token', authSecretKeyRef: { name: 'notion-token', key: 'token' } } };
      const validate = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'v', kind: { group: 'komputer.komputer.ai', version: 'v1alpha1', kind: 'KomputerConnector' }, operation: 'CREATE', namespace: 'team-a', name: 'notion', object: notion, oldObject: null } });
      // One request of each kind, so every labelled series the rules select exists.
      const answers = [
        await post(server.port, '/mutate/pods', JSON.stringify(podReview(pod, 'team-a')), certs.ca), // patched
        await post(server.port, '/mutate/pods', JSON.stringify(podReview(pod, 'team-a', { operation: 'UPDATE' })), certs.ca), // allowed
        await post(server.port, '/validate', validate, certs.ca), // denied (Notion refuses static tokens)
        await post(server.port, '/mutate/pods', '{', certs.ca), // bad request
        await post(server.port, '/validate', '{', certs.ca), // bad request
        // allowed with a warning (no such KomputerAgent), so the warnings counter has a series
        await post(server.port, '/mutate/pods', JSON.stringify(podReview({ ...pod, metadata: { ...pod.metadata, labels: { 'komputer.ai/agent-name': 'no-such-agent', 'komputer.ai/squad': 'false' } } }, 'team-a')), certs.ca),
      ];
      assert.deepEqual(
        answers.map((a) => a.status),
        [200, 200, 200, 400, 400, 200],
      );
      assert.ok(((JSON.parse(answers[5]!.text) as { response: { warnings?: string[] } }).response.warnings ?? []).length > 0, 'a pod of an unknown agent gets a warning');
      assert.equal((JSON.parse(answers[2]!.text) as { response: { allowed: boolean } }).response.allowed, false, 'the Notion connector with a static token is denied');
      exposition = parseExposition(await metricsText(server.metricsPort));
    });
    after(async () => {
      await server?.stop(0);
    });

    test('every metric named in an alert expression (or annotation) is one the service exports', () => {
      const problems: string[] = [];
      for (const a of alerts) {
        const names = new Set(selectors(a.expr).map((s) => s.metric));
        assert.ok(names.size > 0, `${a.alert}: no metric found in its expression`);
        for (const text of Object.values(a.annotations ?? {})) for (const m of text.matchAll(/\bkomputer_webhook_[a-z0-9_]+/g)) names.add(m[0]);
        for (const name of names) {
          if (EXTERNAL_METRICS.has(name)) continue;
          if (!familyOf(name, exposition)) problems.push(`${a.alert}: ${name} is not exported by the service`);
        }
      }
      assert.deepEqual(problems, []);
    });

    test('every label value an alert selects on is one the service emits', () => {
      const problems: string[] = [];
      for (const a of alerts) {
        for (const s of selectors(a.expr)) {
          if (EXTERNAL_METRICS.has(s.metric)) continue;
          const family = familyOf(s.metric, exposition);
          if (!family) continue; // reported by the test above
          const seen = exposition.labels.get(s.metric) ?? new Map<string, Set<string>>();
          const documented = documentedValues(exposition.help.get(family));
          for (const m of s.matchers) {
            if (TARGET_LABELS.has(m.label)) continue;
            const values = seen.get(m.label);
            if (!values && documented.size === 0) {
              problems.push(`${a.alert}: ${s.metric} has no label ${m.label}`);
              continue;
            }
            const wanted = m.op === '=~' || m.op === '!~' ? m.value.split('|') : [m.value];
            for (const v of wanted) {
              if (!/^[A-Za-z0-9_/+.-]*$/.test(v)) {
                problems.push(`${a.alert}: ${s.metric}{${m.label}${m.op}"${m.value}"} is not a plain list of values; cannot check it`);
                continue;
              }
              if (!values?.has(v) && !documented.has(v)) problems.push(`${a.alert}: ${s.metric}{${m.label}${m.op}"${m.value}"}: the service never emits ${m.label}="${v}" (seen: ${[...(values ?? [])].join(', ') || 'none'}; documented: ${[...documented].join(', ') || 'none'})`);
            }
          }
        }
      }
      assert.deepEqual(problems, []);
    });

    test('the latency histogram has buckets at half and all of the webhooks\' timeoutSeconds', () => {
      const webhooks = readFileSync(path.join(ROOT, 'manifests', 'base', 'webhooks.yaml'), 'utf8');
      const timeouts = new Set([...webhooks.matchAll(/timeoutSeconds: (\d+)/g)].map((m) => Number(m[1])));
      assert.deepEqual([...timeouts], [5], 'both webhooks have timeoutSeconds 5 (the latency alert\'s 2.5 s budget assumes it)');
      const les = exposition.labels.get('komputer_webhook_admission_duration_seconds_bucket')?.get('le') ?? new Set<string>();
      for (const le of ['2.5', '5']) assert.ok(les.has(le), `bucket le="${le}" exists (seen: ${[...les].join(', ')})`);
      const latency = alerts.find((a) => a.alert === 'KomputerWebhookAdmissionLatencyHigh');
      for (const which of ['mutating', 'validating']) assert.match(latency?.expr ?? '', new RegExp(`\\)\\s*> 2\\.5 # threshold: half of webhook\\.${which}\\.timeoutSeconds\\n`));
    });

    describe('the Grafana dashboard (files/grafana-dashboard.json)', () => {
      const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
      const queries = dashboardQueries(dashboard);

      test('has the panels an operator needs, each with queries', () => {
        const titles = dashboard.panels.filter((p) => p.type !== 'row').map((p) => p.title);
        for (const wanted of ['Admissions by verdict', 'Latency p50 / p99 against the timeout', 'Warnings and findings', 'Cache objects', 'Watch restarts', 'Leader', 'Certificate expires in', 'Events dropped', 'Memory against the limit', 'Policy violations']) {
          assert.ok(titles.includes(wanted), `a panel "${wanted}" (panels: ${titles.join(', ')})`);
        }
        for (const p of dashboard.panels.filter((p) => p.type !== 'row')) assert.ok((p.targets ?? []).length > 0, `${p.title}: has queries`);
        assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'panel ids are unique');
      });

      test('every query selects job="komputer-connector-webhook" (the ServiceMonitor\'s job) and parses (promtool)', () => {
        const problems: string[] = [];
        for (const q of queries) {
          for (const sel of selectors(q.expr)) {
            if (!sel.matchers.some((m) => m.label === 'job' && m.op === '=' && m.value === 'komputer-connector-webhook')) problems.push(`${q.where}: ${sel.metric} lacks job="komputer-connector-webhook"`);
          }
        }
        assert.deepEqual(problems, []);
        // promtool parses rule files only: each query becomes a recording rule, with Grafana's
        // variables replaced by what Grafana would send.
        const dir = mkdtempSync(path.join(tmpdir(), 'kcw-dashboard-'));
        try {
          const file = path.join(dir, 'dashboard-queries.yaml');
          const rules = queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: grafanaToPromql(q.expr) }));
          writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
          const r = promtool('check', 'rules', file);
          assert.equal(r.status, 0, r.output);
          assert.match(r.output, new RegExp(`SUCCESS: ${rules.length} rules found`));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });

      test('every metric and label value a panel uses is one the service exports', () => {
        const problems: string[] = [];
        for (const q of queries) {
          const found = selectors(q.expr);
          if (found.length === 0 && !/^vector\(/.test(q.expr)) problems.push(`${q.where}: no metric found in ${q.expr}`);
          for (const sel of found) {
            if (EXTERNAL_METRICS.has(sel.metric)) continue;
            const family = familyOf(sel.metric, exposition);
            if (!family) {
              problems.push(`${q.where}: ${sel.metric} is not exported by the service`);
              continue;
            }
            const seen = exposition.labels.get(sel.metric) ?? new Map<string, Set<string>>();
            const documented = documentedValues(exposition.help.get(family));
            for (const m of sel.matchers) {
              if (TARGET_LABELS.has(m.label)) continue;
              const values = seen.get(m.label);
              for (const v of m.op === '=~' || m.op === '!~' ? m.value.split('|') : [m.value]) {
                if (!values?.has(v) && !documented.has(v)) problems.push(`${q.where}: ${sel.metric}{${m.label}${m.op}"${m.value}"}: the service never emits ${m.label}="${v}"`);
              }
            }
          }
          // Labels a panel groups or names series by must exist on what it reads.
          for (const by of q.expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
            for (const label of by[1]!.split(',').map((l) => l.trim()).filter((l) => l !== '' && l !== 'le' && !TARGET_LABELS.has(l))) {
              const names = found.map((f) => f.metric).filter((n) => !EXTERNAL_METRICS.has(n));
              if (names.length > 0 && !names.some((n) => exposition.labels.get(n)?.has(label) || documentedLabel(exposition.help.get(familyOf(n, exposition) ?? ''), label))) {
                problems.push(`${q.where}: groups by ${label}, which none of ${names.join(', ')} carries`);
              }
            }
          }
        }
        assert.deepEqual(problems, []);
      });
    });
  });
});
