// The violations gauge: counts per entry and action, from the cache alone.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { PolicyViolationsGauge } from '../../../src/cluster/policy-violations.ts';
import { ClusterStore } from '../../../src/cluster/store.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import type { Connector } from '../../../src/model/objects.ts';
import { PolicyHolder } from '../../../src/policy/holder.ts';
import { countViolations } from '../../../src/policy/violations.ts';
import { createMetrics } from '../../../src/server/metrics.ts';

function connector(i: number, url: string, authType: string | undefined = undefined): Connector {
  return { namespace: `ns-${i % 7}`, name: `c${i}`, service: 's', url, authType, authSecretKeyRef: { name: 't', key: 'k' }, sharedWith: [] };
}

const POLICY = `entries:
  - {id: acme, service: Acme, url: "https://mcp.acme.example/mcp", why: w, instead: i, action: audit}
  - {id: beta, service: Beta, url: "https://beta.example/", match: prefix, why: w, instead: i, action: warn}
`;

describe('policy violations', () => {
  test('counted per entry with its action, every entry present (0 too), in any namespace', () => {
    const h = new PolicyHolder();
    h.apply(POLICY);
    const cs = [connector(1, 'https://mcp.notion.com/mcp'), connector(2, 'https://MCP.NOTION.COM/mcp/', 'token'), connector(3, 'https://mcp.notion.com/mcp', 'oauth'), connector(4, 'https://mcp.acme.example/mcp'), connector(5, 'https://beta.example/v1/x', 'header')];
    assert.deepEqual(countViolations(cs, h.current), [
      { entry: 'acme', action: 'audit', connectors: 1 },
      { entry: 'atlassian-rovo', action: 'deny', connectors: 0 },
      { entry: 'beta', action: 'warn', connectors: 1 },
      { entry: 'notion', action: 'deny', connectors: 2 },
    ]);
  });

  test('the leader recomputes 500 connectors from its cache: one pass, no API client at all', async () => {
    const store = new ClusterStore();
    for (let i = 0; i < 500; i++) store.putConnector(connector(i, i % 5 === 0 ? 'https://mcp.notion.com/mcp' : i % 5 === 1 ? 'https://mcp.acme.example/mcp' : 'https://api.githubcopilot.com/mcp/'));
    const h = new PolicyHolder();
    h.apply(POLICY);
    const metrics = createMetrics({ defaultMetrics: false });
    const gauge = new PolicyViolationsGauge(store, () => h.current, metrics.policyViolations, createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) }), 10);
    // Not leading: no series, no pass.
    gauge.connectorsReplaced();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(gauge.passes, 0);
    gauge.setLeading(true);
    // A burst of changes (a relist) is one debounced pass.
    for (let i = 0; i < 50; i++) gauge.connectorChanged();
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(gauge.passes, 1);
    const text = await metrics.registry.metrics();
    assert.match(text, /komputer_webhook_policy_violations\{entry="notion",action="deny"\} 100/);
    assert.match(text, /komputer_webhook_policy_violations\{entry="acme",action="audit"\} 100/);
    assert.match(text, /komputer_webhook_policy_violations\{entry="beta",action="warn"\} 0/);
    // The admin moves acme to deny: the series follows, the old one goes.
    h.apply(POLICY.replace('action: audit', 'action: deny'));
    gauge.policyChanged();
    await new Promise((r) => setTimeout(r, 60));
    const after = await metrics.registry.metrics();
    assert.match(after, /komputer_webhook_policy_violations\{entry="acme",action="deny"\} 100/);
    assert.doesNotMatch(after, /entry="acme",action="audit"/);
    gauge.setLeading(false);
    assert.doesNotMatch(await metrics.registry.metrics(), /komputer_webhook_policy_violations\{/);
  });
});
