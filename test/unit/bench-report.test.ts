// The benchmarks' shared pieces that are pure: latest.md's sections (one writer, each
// benchmark replacing only its own) and the one Prometheus text parser.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseSections, renderSections, writeSection } from '../../bench/report.ts';
import { median, slope } from '../../bench/pair.ts';
import { mergeResults, readResults, renderSection, writeResults, type StoredResult } from '../../bench/node/report.ts';
import { histogram, parsePrometheus, sampleSum, sampleValue, sumBy } from '../helpers/prometheus.ts';

describe('bench/results/latest.md sections', () => {
  test('the old layout (run text, scale markers, a bare podcreate header) reads as named sections', () => {
    const old = ['# Run', 'servers table', '', '<!-- bench:scale -->', 'scale text', '<!-- /bench:scale -->', '', '<!-- bench:podcreate -->', '<!-- bench:podcreate c=1 -->', 'c1 text', '<!-- bench:podcreate c=16 -->', 'c16 text', ''].join('\n');
    assert.deepEqual([...parseSections(old)], [
      ['run', '# Run\nservers table'],
      ['scale', 'scale text'],
      ['podcreate c=1', 'c1 text'],
      ['podcreate c=16', 'c16 text'],
    ]);
  });
  test('a writer replaces only its own section, in the fixed order, and the file reads back the same', () => {
    const dir = mkdtempSync(join(tmpdir(), 'report-'));
    try {
      const file = join(dir, 'latest.md');
      writeSection('podcreate c=16', 'c16', file);
      writeSection('run', 'servers', file);
      writeSection('pair', 'gate v1', file);
      writeSection('pair', 'gate v2', file);
      const text = readFileSync(file, 'utf8');
      assert.deepEqual([...parseSections(text).keys()], ['pair', 'run', 'podcreate c=16']);
      assert.equal(parseSections(text).get('pair'), 'gate v2');
      assert.equal(renderSections(parseSections(text)), text);
      writeFileSync(file, text);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the Prometheus text parser', () => {
  const text = [
    '# HELP x_total A counter.',
    '# TYPE x_total counter',
    'x_total{path="/mutate/pods",verdict="patched"} 12',
    'x_total{path="/mutate/pods",verdict="denied"} 3',
    'x_total{path="/validate",verdict="patched"} 1 1700000000000',
    'g 4.5',
    'esc{msg="a \\"quoted\\" \\\\ value, with } and ,"} 1',
    'h_bucket{path="/p",le="0.1"} 2',
    'h_bucket{path="/p",le="+Inf"} 5',
    'h_sum{path="/p"} 1.25',
    'h_count{path="/p"} 5',
    '',
  ].join('\n');
  test('samples, labels (escapes, braces and commas inside values), timestamps', () => {
    const s = parsePrometheus(text);
    assert.equal(s.length, 9);
    assert.deepEqual(s.find((x) => x.name === 'esc')?.labels, { msg: 'a "quoted" \\ value, with } and ,' });
    assert.equal(sampleValue(s, 'x_total', { path: '/validate' }), 1);
  });
  test('one sample, sums, sums by a label, a histogram', () => {
    assert.equal(sampleValue(text, 'g'), 4.5);
    assert.equal(sampleValue(text, 'absent'), undefined);
    assert.equal(sampleSum(text, 'x_total', { path: '/mutate/pods' }), 15);
    assert.equal(sampleSum(text, 'x_total', { verdict: 'patched' }), 13);
    assert.deepEqual([...sumBy(text, 'x_total', 'verdict')], [['patched', 13], ['denied', 3]]);
    assert.deepEqual(histogram(text, 'h', { path: '/p' }), { count: 5, sum: 1.25, buckets: [[0.1, 2], [Infinity, 5]] });
  });
});

describe('the gate\'s statistics', () => {
  test('median and least-squares slope', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(slope([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }]), 2);
    assert.equal(slope([{ x: 0, y: 7 }]), 0);
  });
});

describe("bench:node's results (bench/node/report.ts)", () => {
  const run = (at: string, start: number | null): StoredResult['run'] => ({ size: 'bench', at, loadavg: { start, end: start }, cores: 2, seconds: 10 });
  const result = (scenario: string, at: string, value: number, start: number | null = 1): StoredResult => ({ scenario, figures: [{ name: 'f', value, unit: 's' }], problems: [], run: run(at, start) });

  test('a run of some scenarios replaces only theirs, keeps the others with their own run, in the scenarios order', () => {
    const stored = [result('a', 'T1', 1), result('b', 'T1', 2), result('c', 'T1', 3)];
    const merged = mergeResults(stored, [result('b', 'T2', 20)], ['c', 'b', 'a']);
    assert.deepEqual(merged.map((r) => [r.scenario, r.run.at, r.figures[0]!.value]), [['c', 'T1', 3], ['b', 'T2', 20], ['a', 'T1', 1]]);
  });

  test('one table per run; a run without a load average says so; results round-trip through the file', () => {
    const merged = [result('a', '2026-12-06T10:00:00Z', 1, 3.5), result('b', '2026-12-06T11:00:00Z', 2, null)];
    const md = renderSection(merged);
    assert.equal(md.match(/^### Node/gm)?.length, 2);
    assert.match(md, /1-min loadavg 3\.50 when the scenarios started/);
    assert.match(md, /load average not recorded/);
    assert.match(md, /^\| b \| f \| 2 s \|/m);
    const dir = mkdtempSync(join(tmpdir(), 'node-results-'));
    try {
      writeResults(merged, join(dir, 'node-latest.json'));
      assert.deepEqual(readResults(join(dir, 'node-latest.json')), merged);
      assert.deepEqual(readResults(join(dir, 'missing.json')), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
