// The pure parts of the live-Prometheus e2e test (test/e2e/prometheus.test.ts): Grafana's
// interpolation of the dashboard's variables, the Prometheus Operator's scrape config for a
// ServiceMonitor, and the targets Kubernetes endpoints discovery would give. The e2e test
// runs them against a real Prometheus; these pin the details it cannot tell apart.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { grafanaToPromql } from '../helpers/dashboard.ts';
import { endpointsTargetGroups, serviceMonitorScrapeConfig, type ServiceMonitor } from '../e2e/fixtures/prometheus.ts';

describe('grafanaToPromql', () => {
  const expr = 'sum(rate(x{namespace=~"$namespace"}[$__rate_interval]))';
  const rows: [string, Parameters<typeof grafanaToPromql>[1], string][] = [
    ['All (allValue .*) and the default rate interval', {}, 'sum(rate(x{namespace=~".*"}[1m]))'],
    ['one namespace', { namespaces: ['team-a'] }, 'sum(rate(x{namespace=~"team-a"}[1m]))'],
    ['several, regex characters escaped inside the string', { namespaces: ['a.b', 'c'], rateInterval: '4s' }, 'sum(rate(x{namespace=~"(a\\\\.b|c)"}[4s]))'],
  ];
  for (const [name, vars, want] of rows) test(name, () => assert.equal(grafanaToPromql(expr, vars), want));
});

const sm = (spec: Partial<ServiceMonitor['spec']> = {}): ServiceMonitor => ({
  kind: 'ServiceMonitor',
  metadata: { name: 'web', namespace: 'mon' },
  spec: { selector: { matchLabels: { 'app.kubernetes.io/name': 'web' } }, namespaceSelector: { matchNames: ['apps'] }, endpoints: [{ port: 'metrics', path: '/metrics', scheme: 'http' }], ...spec },
});

describe('serviceMonitorScrapeConfig (the Prometheus Operator\'s, over file_sd)', () => {
  const options = { files: ['/t/targets.json'], interval: '1s', scrapeTimeout: '1s' };

  test('job name, discovery, selector and port filters, and job after the Service', () => {
    const config = serviceMonitorScrapeConfig(sm(), 0, options);
    assert.equal(config['job_name'], 'serviceMonitor/mon/web/0');
    assert.deepEqual(config['file_sd_configs'], [{ files: ['/t/targets.json'], refresh_interval: '1s' }]);
    assert.equal(config['metrics_path'], '/metrics');
    const relabel = config['relabel_configs'] as Record<string, unknown>[];
    assert.deepEqual(relabel[1], { action: 'keep', source_labels: ['__meta_kubernetes_service_label_app_kubernetes_io_name', '__meta_kubernetes_service_labelpresent_app_kubernetes_io_name'], regex: '(web);true' });
    assert.deepEqual(relabel[2], { action: 'keep', source_labels: ['__meta_kubernetes_endpoint_port_name'], regex: 'metrics' });
    const job = relabel.filter((r) => r['target_label'] === 'job');
    assert.deepEqual(job, [{ source_labels: ['__meta_kubernetes_service_name'], target_label: 'job', replacement: '${1}' }]);
    assert.deepEqual(relabel.at(-1), { target_label: 'endpoint', replacement: 'metrics' });
  });

  test('jobLabel overrides the job; the ServiceMonitor\'s relabelings come last, in Prometheus\' spelling', () => {
    const config = serviceMonitorScrapeConfig(
      sm({ jobLabel: 'team', endpoints: [{ port: 'metrics', relabelings: [{ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }, { action: 'LabelDrop', regex: 'container' }], metricRelabelings: [{ action: 'Drop', sourceLabels: ['__name__'], regex: 'go_.*' }] }] }),
      0,
      options,
    );
    const relabel = config['relabel_configs'] as Record<string, unknown>[];
    assert.deepEqual(relabel.filter((r) => r['target_label'] === 'job').at(-1), { source_labels: ['__meta_kubernetes_service_label_team'], target_label: 'job', regex: '(.+)', replacement: '${1}' });
    assert.deepEqual(relabel.slice(-2), [{ source_labels: ['__meta_kubernetes_pod_node_name'], target_label: 'node' }, { regex: 'container', action: 'labeldrop' }]);
    assert.deepEqual(config['metric_relabel_configs'], [{ source_labels: ['__name__'], regex: 'go_.*', action: 'drop' }]);
  });

  test('an endpoint by targetPort is refused, not emulated wrongly', () => {
    assert.throws(() => serviceMonitorScrapeConfig(sm({ endpoints: [{ targetPort: 9090 }] }), 0, options), /only endpoints naming a Service port/);
  });
});

describe('endpointsTargetGroups', () => {
  const deployment = {
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'apps' },
    spec: { template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'main', ports: [{ name: 'https', containerPort: 8443 }, { name: 'metrics', containerPort: 9090 }] }] } } },
  };
  const service = (namespace: string, selector: Record<string, string>) => ({
    kind: 'Service',
    metadata: { name: 'web', namespace, labels: { 'app.kubernetes.io/name': 'web' } },
    spec: { selector, ports: [{ name: 'https', port: 443, targetPort: 'https' }, { name: 'metrics', port: 9090, targetPort: 'metrics' }] },
  });
  const replicas = [{ pod: 'web-a', ports: { https: 10001, metrics: 10002 } }, { pod: 'web-b', ports: { https: 10003, metrics: 10004 } }];

  test('one target per replica and Service port, with the endpoints, service and pod meta labels', () => {
    const groups = endpointsTargetGroups([deployment, service('apps', { app: 'web' })], sm(), replicas);
    assert.deepEqual(groups.map((g) => [g.targets[0], g.labels['__meta_kubernetes_endpoint_port_name'], g.labels['__meta_kubernetes_pod_name']]), [
      ['127.0.0.1:10001', 'https', 'web-a'],
      ['127.0.0.1:10003', 'https', 'web-b'],
      ['127.0.0.1:10002', 'metrics', 'web-a'],
      ['127.0.0.1:10004', 'metrics', 'web-b'],
    ]);
    const labels = groups[2]!.labels;
    assert.equal(labels['__meta_kubernetes_service_label_app_kubernetes_io_name'], 'web');
    assert.equal(labels['__meta_kubernetes_service_labelpresent_app_kubernetes_io_name'], 'true');
    assert.equal(labels['__meta_kubernetes_pod_label_app'], 'web');
    assert.equal(labels['__meta_kubernetes_pod_container_name'], 'main');
    assert.equal(labels['__meta_kubernetes_pod_container_port_number'], '9090');
    assert.equal(labels['__meta_kubernetes_endpoint_address_target_kind'], 'Pod');
  });

  test('no targets outside the watched namespaces, nor for a Service that selects no pods', () => {
    assert.deepEqual(endpointsTargetGroups([{ ...deployment, metadata: { name: 'web', namespace: 'elsewhere' } }, service('elsewhere', { app: 'web' })], sm(), replicas), []);
    assert.deepEqual(endpointsTargetGroups([deployment, service('apps', { app: 'other' })], sm(), replicas), []);
  });
});
