// What users live through on a real node, at test size: the operations scenarios of
// `npm run bench:node` (bench/node/) against one node with the chart installed from the
// local image at its defaults. No lock-out with every replica gone; a rolling upgrade under
// a steady rate of agent pod creations (none refused, none admitted without its connectors);
// a replica killed with SIGKILL through containerd; containerd and the kubelet restarted.
// Each scenario's figures are printed; what must hold is each scenario's `problems`, empty.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { NODE_SCENARIOS } from '../../bench/node/index.ts';
import { startNodeCluster, type NodeCluster } from './fixtures/node-chart.ts';
import { stopEnvironment } from './harness/index.ts';
import { log } from './harness/log.ts';

const LIFECYCLE = ['no-lockout', 'rolling-upgrade', 'replica-kill', 'node-restart'];
let cluster: NodeCluster;

before(async () => {
  cluster = await startNodeCluster('app');
  const t0 = Date.now();
  const install = await cluster.install();
  assert.equal(install.code, 0, `helm install failed: ${install.stderr}`);
  log(`chart installed (helm install --wait) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});
after(stopEnvironment);

for (const name of LIFECYCLE) {
  const scenario = NODE_SCENARIOS.find((s) => s.name === name);
  test(`${name}: ${scenario?.title ?? '(missing)'}`, async () => {
    assert.ok(scenario, `bench/node/index.ts has the scenario ${name}`);
    const result = await scenario.run({ cluster, size: 'test', log: (m) => log(`${name}: ${m}`) });
    for (const f of result.figures) log(`FIGURE ${name}: ${f.name} = ${f.value}${f.unit ? ` ${f.unit}` : ''}${f.note ? ` (${f.note})` : ''}`);
    assert.deepEqual(result.problems, [], `${name}: what must hold did not`);
  });
}
