// The chart's memory sizing is evidence, not a guess: every row of the README's "Sizing"
// table names a cluster size bench:scale measured (bench/results/scale-latest.json), asks at
// least the RSS after sync and limits at least 25% above the RSS after load; the row marked
// as the defaults is what values.yaml and manifests/base ship.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const HEADROOM = 1.25;

interface Size {
  readonly connectors: number;
  readonly agents: number;
  readonly rssAfterSyncMiB: number;
  readonly rssAfterLoadMiB: number;
}

interface Row {
  readonly connectors: number;
  readonly agents: number;
  readonly syncMiB: number;
  readonly loadMiB: number;
  readonly requestMi: number;
  readonly limitMi: number;
  readonly headroomPct: number;
  readonly isDefault: boolean;
}

function mi(quantity: unknown): number {
  const m = /^(\d+)Mi$/.exec(String(quantity));
  assert.ok(m, `a quantity in Mi: ${String(quantity)}`);
  return Number(m[1]);
}

function readmeRows(): Row[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Sizing\n'));
  assert.ok(section.length > 20, 'README has a "Sizing" section');
  const rows: Row[] = [];
  const re = /^\| ([\d,]+) connectors × ([\d,]+) agents( \(\*\*the defaults\*\*\))? \| ([\d.]+) \/ ([\d.]+) MiB \| (\d+)Mi \| (\d+)Mi \| (\d+)% \|$/gm;
  for (const m of section.slice(0, section.indexOf('\n## ', 5)).matchAll(re)) {
    rows.push({
      connectors: Number(m[1]!.replaceAll(',', '')),
      agents: Number(m[2]!.replaceAll(',', '')),
      isDefault: m[3] !== undefined,
      syncMiB: Number(m[4]),
      loadMiB: Number(m[5]),
      requestMi: Number(m[6]),
      limitMi: Number(m[7]),
      headroomPct: Number(m[8]),
    });
  }
  return rows;
}

describe('memory sizing', () => {
  const figures = JSON.parse(readFileSync(path.join(ROOT, 'bench', 'results', 'scale-latest.json'), 'utf8')) as { when: string; small: boolean; sizes: Size[] };
  const rows = readmeRows();

  test('the committed bench:scale figures are a full run', () => {
    assert.equal(figures.small, false, 'not a --small run');
    assert.ok(figures.sizes.length >= 2);
  });

  test('every README row is a measured size, with the request over RSS after sync and >= 25% headroom over RSS after load', () => {
    assert.ok(rows.length >= 2, `README sizing rows found: ${rows.length}`);
    for (const row of rows) {
      const size = figures.sizes.find((s) => s.connectors === row.connectors && s.agents === row.agents);
      assert.ok(size, `${row.connectors} x ${row.agents} was measured by bench:scale (${figures.when})`);
      assert.equal(row.syncMiB, Math.round(size.rssAfterSyncMiB * 10) / 10, 'RSS after sync as measured');
      assert.equal(row.loadMiB, Math.round(size.rssAfterLoadMiB * 10) / 10, 'RSS after load as measured');
      assert.ok(row.requestMi >= size.rssAfterSyncMiB, `${row.connectors} x ${row.agents}: request ${row.requestMi}Mi >= ${size.rssAfterSyncMiB} MiB`);
      assert.ok(row.limitMi >= HEADROOM * size.rssAfterLoadMiB, `${row.connectors} x ${row.agents}: limit ${row.limitMi}Mi >= 1.25 x ${size.rssAfterLoadMiB} MiB`);
      assert.equal(row.headroomPct, Math.floor((row.limitMi / size.rssAfterLoadMiB - 1) * 100), 'headroom as stated');
    }
  });

  test('the defaults row is what values.yaml and manifests/base ship, and holds every measured size up to it', () => {
    const defaults = rows.filter((r) => r.isDefault);
    assert.equal(defaults.length, 1, 'one row is marked as the defaults');
    const row = defaults[0]!;
    const values = parse(readFileSync(path.join(ROOT, 'charts', 'komputer-connector-webhook', 'values.yaml'), 'utf8')) as { resources: { requests: Record<string, string>; limits: Record<string, string> } };
    assert.equal(mi(values.resources.requests['memory']), row.requestMi);
    assert.equal(mi(values.resources.limits['memory']), row.limitMi);
    const deployment = parseAllDocuments(readFileSync(path.join(ROOT, 'manifests', 'base', 'deployment.yaml'), 'utf8')).map((d) => d.toJS() as { kind?: string; spec?: { template: { spec: { containers: { resources: { requests: Record<string, string>; limits: Record<string, string> } }[] } } } }).find((d) => d.kind === 'Deployment')!;
    const resources = deployment.spec!.template.spec.containers[0]!.resources;
    assert.equal(mi(resources.requests['memory']), row.requestMi);
    assert.equal(mi(resources.limits['memory']), row.limitMi);
    for (const size of figures.sizes.filter((s) => s.connectors <= row.connectors && s.agents <= row.agents)) {
      assert.ok(row.limitMi >= HEADROOM * size.rssAfterLoadMiB, `the default limit holds ${size.connectors} x ${size.agents} (${size.rssAfterLoadMiB} MiB after load) with 25% headroom`);
    }
  });
});
