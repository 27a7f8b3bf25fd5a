// The scenarios of `npm run bench:node`, in the order they run (each leaves the cluster as
// it found it: the chart installed at its defaults, 2 replicas Ready).

import { matchConditionsScenario } from './match-conditions.ts';
import { memoryScenario } from './memory.ts';
import { noLockout } from './no-lockout.ts';
import { nodeRestart } from './node-restart.ts';
import { replicaKill } from './replica-kill.ts';
import { rollingUpgrade } from './rolling-upgrade.ts';
import type { NodeScenario } from './scenario.ts';
import { startLatencyScenario } from './start-latency.ts';

export const NODE_SCENARIOS: readonly NodeScenario[] = [noLockout, rollingUpgrade, replicaKill, nodeRestart, startLatencyScenario, matchConditionsScenario, memoryScenario];
