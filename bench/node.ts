// `npm run bench:node`: what users live through on a real node, with figures. Starts a
// control plane with a node, installs the chart from the local image at its defaults, runs
// each scenario of bench/node/index.ts at bench size (or test size with --size test), prints
// every figure and writes them to bench/results/node-latest.json and bench/results/latest.md
// (section "node"), replacing only the scenarios it ran. Exits 1 if anything that must hold
// did not.
//
//   node bench/node.ts [--only name,name] [--size bench|test]

import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { startNodeCluster } from '../test/e2e/fixtures/node-chart.ts';
import { stopEnvironment } from '../test/e2e/harness/index.ts';
import { NODE_SCENARIOS } from './node/index.ts';
import type { NodeScenarioResult } from './node/scenario.ts';
import { writeSection } from './report.ts';
import { mergeResults, readResults, renderSection, writeResults, type NodeRun } from './node/report.ts';

const { values } = parseArgs({ options: { only: { type: 'string' }, size: { type: 'string', default: 'bench' } } });
const size = values.size === 'test' ? 'test' : 'bench';
const only = values.only?.split(',').map((s) => s.trim()).filter((s) => s !== '');
const unknown = (only ?? []).filter((n) => !NODE_SCENARIOS.some((s) => s.name === n));
if (unknown.length > 0) {
  console.error(`bench:node: no scenario named ${unknown.join(', ')}; known: ${NODE_SCENARIOS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const scenarios = NODE_SCENARIOS.filter((s) => only === undefined || only.includes(s.name));
const log = (m: string): void => console.log(`[bench:node ${new Date().toISOString().slice(11, 19)}] ${m}`);
const started = Date.now();
log(`${scenarios.length} scenario(s) at ${size} size; loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

const results: NodeScenarioResult[] = [];
// The 1-minute load average when the scenarios start (the node and the chart up) and at the end.
let loadAtStart = Number.NaN;
const cluster = await startNodeCluster('all');
try {
  const install = await cluster.install();
  if (install.code !== 0) throw new Error(`helm install failed: ${install.stderr}`);
  loadAtStart = loadavg()[0]!;
  for (const scenario of scenarios) {
    log(`${scenario.name}: ${scenario.title}`);
    const result = await scenario.run({ cluster, size, log: (m) => log(`${scenario.name}: ${m}`) });
    for (const f of result.figures) log(`${scenario.name}: ${f.name} = ${f.value}${f.unit ? ` ${f.unit}` : ''}${f.note ? ` (${f.note})` : ''}`);
    for (const p of result.problems) log(`${scenario.name}: PROBLEM ${p}`);
    results.push(result);
  }
} finally {
  await stopEnvironment();
}

const run: NodeRun = { size, at: new Date().toISOString(), loadavg: { start: loadAtStart, end: loadavg()[0]! }, cores: availableParallelism(), seconds: Math.round((Date.now() - started) / 1000) };
const all = mergeResults(readResults(), results.map((r) => ({ ...r, run })), NODE_SCENARIOS.map((s) => s.name));
writeResults(all);
writeSection('node', renderSection(all));
const failed = results.filter((r) => r.problems.length > 0);
log(`done in ${Math.round((Date.now() - started) / 1000)} s; ${failed.length === 0 ? 'everything held' : `problems in ${failed.map((r) => r.scenario).join(', ')}`}`);
process.exit(failed.length === 0 ? 0 : 1);
