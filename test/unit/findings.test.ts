// Findings as data: the consumers (admission warnings, Events, metrics, check, the CLI)
// key on `kind` and render `text`; none lists kinds of its own or parses a text. Proven two
// ways: a new kind added to the core's table alone flows through every consumer, and no
// consumer's source names a kind.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { summarize } from '../../src/cli/commands.ts';
import { ClusterStore } from '../../src/cluster/store.ts';
import { podAdmissionEvents } from '../../src/injection/events.ts';
import { finding, FINDING_KINDS, FINDINGS, warningsOf, type FindingKind, type FindingSpec } from '../../src/injection/findings.ts';
import { injectPod } from '../../src/injection/inject.ts';
import type { JsonObject } from '../../src/model/objects.ts';
import { createMetrics } from '../../src/server/metrics.ts';

const SRC = join(import.meta.dirname, '..', '..', 'src');

/** The consumers: everything that renders, records or counts findings. */
const CONSUMERS = [
  'injection/events.ts',
  ...readdirSync(join(SRC, 'check')).map((f) => `check/${f}`),
  ...readdirSync(join(SRC, 'cli')).map((f) => `cli/${f}`),
  ...readdirSync(join(SRC, 'server')).map((f) => `server/${f}`),
  ...readdirSync(join(SRC, 'admission')).map((f) => `admission/${f}`),
  ...readdirSync(join(SRC, 'events')).map((f) => `events/${f}`),
];

describe('findings as data', () => {
  test('no consumer names a finding kind or matches warning text', () => {
    for (const file of CONSUMERS) {
      const text = readFileSync(join(SRC, file), 'utf8');
      for (const kind of FINDING_KINDS) assert.ok(!text.includes(`'${kind}'`) && !text.includes(`"${kind}"`), `${file} names the finding kind ${kind}`);
      // The regexes that used to map warning text back to agents and causes.
      assert.ok(!/squad member \(|ephemeral container \(|' Fix: '|CONNECTOR_\.\+_TOKEN/.test(text), `${file} parses the core's text`);
    }
  });

  test('every kind has a spec; Event reasons are CamelCase', () => {
    for (const kind of FINDING_KINDS) {
      const spec: FindingSpec = FINDINGS[kind];
      if (spec.event !== undefined) assert.match(spec.event, /^[A-Z][A-Za-z]+$/);
      assert.ok(spec.remedy('x', 'ns').length > 0);
    }
  });

  test('a new kind is one row in the core: warnings, Events, metrics and the CLI take it as it is', async () => {
    const kind = 'brand-new-reason' as FindingKind;
    const table = FINDINGS as unknown as Record<string, FindingSpec>;
    const kinds = FINDING_KINDS as string[];
    table[kind] = { scope: 'connector', skip: true, warn: true, event: 'BrandNewReason', severity: 'error', remedy: () => 'do the new thing' };
    kinds.push(kind);
    try {
      const view = new ClusterStore();
      view.putNamespace({ name: 'ns', labels: { 'komputer.ai/connector-injection': 'enabled' } });
      view.putAgent({ namespace: 'ns', name: 'a', connectors: [], officeManager: undefined, uid: 'u1' });
      const pod: JsonObject = { metadata: { name: 'p', labels: { 'komputer.ai/squad': 'false', 'komputer.ai/agent-name': 'a' } }, spec: { containers: [{ name: 'agent' }] } };
      const base = injectPod(pod, 'ns', view);
      const f = finding(kind, 'connector x not injected into agent a: the new reason', 'a', 'agent', 'x', undefined);
      const findings = [...base.findings, f];
      const outcome = { ...base, findings, warnings: warningsOf(findings) };

      assert.deepEqual(outcome.warnings, ['connector x not injected into agent a: the new reason']);
      const events = podAdmissionEvents({ pod, namespace: 'ns', view, outcome });
      assert.deepEqual(events.map((e) => [e.agent.name, e.type, e.reason, e.message]), [['a', 'Warning', 'BrandNewReason', 'connector x not injected into agent a: the new reason']]);
      assert.match(summarize({ pod, outcome, namespace: "ns" }), /\n  skipped: connector x not injected into agent a: the new reason\n/);
      const metrics = createMetrics({ defaultMetrics: false });
      metrics.findings.inc({ kind: f.kind });
      assert.match(await metrics.registry.metrics(), /komputer_webhook_injection_findings_total\{kind="brand-new-reason"\} 1/);
      // A kind that is not warned is neither a warning nor an Event, but still counted.
      table[kind] = { ...table[kind]!, warn: false };
      assert.deepEqual(warningsOf(findings), []);
      assert.deepEqual(podAdmissionEvents({ pod, namespace: 'ns', view, outcome: { ...outcome, warnings: [] } }), []);
    } finally {
      delete table[kind];
      kinds.pop();
    }
  });

  test('every kind is counted from the start, at 0', async () => {
    const text = await createMetrics({ defaultMetrics: false }).registry.metrics();
    for (const kind of FINDING_KINDS) assert.match(text, new RegExp(`komputer_webhook_injection_findings_total\\{kind="${kind}"\\} 0`));
  });
});
