// Capacity on a real node, at test size: the bench:node scenarios `start-latency` (agent pod
// create -> Running with and without the webhook), `match-conditions` (the API server's CPU
// per pod create with the chart's matchConditions against selectors alone, with the same
// safety probes in each) and `memory` (the replicas at the chart's defaults sync a cluster
// and take admission load without an OOMKill, read from their cgroups; a limit below the
// measured use gets them OOMKilled and agent pods refused; raising it back recovers), all
// against one node with the chart installed from the local image. Each scenario lists what
// did not hold in `problems`, which must be empty; every figure is printed.
// `npm run bench:node -- --only start-latency,match-conditions,memory` runs them at the
// sizes the README reports.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startNodeCluster, type NodeCluster } from './fixtures/node-chart.ts';
import { stopEnvironment } from './harness/index.ts';
import { matchConditionsScenario } from '../../bench/node/match-conditions.ts';
import { memoryScenario } from '../../bench/node/memory.ts';
import { twoReady } from '../../bench/node/replicas.ts';
import type { NodeScenario } from '../../bench/node/scenario.ts';
import { startLatencyScenario } from '../../bench/node/start-latency.ts';

let cluster: NodeCluster;

before(async () => {
  cluster = await startNodeCluster('app');
  const install = await cluster.install();
  assert.equal(install.code, 0, `helm install failed: ${install.stderr}`);
});
after(stopEnvironment);

async function runScenario(scenario: NodeScenario): Promise<void> {
  const t0 = Date.now();
  const log = (m: string): void => console.log(`[${scenario.name}] ${m}`);
  const result = await scenario.run({ cluster, size: 'test', log });
  for (const f of result.figures) log(`${f.name} = ${f.value}${f.unit ? ` ${f.unit}` : ''}${f.note ? ` (${f.note})` : ''}`);
  log(`took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  assert.deepEqual(result.problems, [], `${scenario.name}: what did not hold`);
  assert.ok(result.figures.length > 0, 'figures reported');
  assert.ok(await twoReady(cluster.env), 'the chart left at its defaults with 2 Ready replicas');
}

test('agent pod start latency, with and without the webhook', () => runScenario(startLatencyScenario));

test("the pod webhook's matchConditions against selectors alone: API server CPU per create, same safety", () => runScenario(matchConditionsScenario));

test('memory under a real cgroup limit: no OOMKill at the defaults; a small limit refuses agent pods; recovery', () => runScenario(memoryScenario));
