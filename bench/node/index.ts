// The scenarios of `npm run bench:node`, in the order they run (each leaves the cluster as
// it found it: the chart installed at its defaults, 2 replicas Ready).

import { matchConditionsScenario } from './match-conditions.ts';
import { memoryScenario } from './memory.ts';
import type { NodeScenario } from './scenario.ts';
import { startLatencyScenario } from './start-latency.ts';

export const NODE_SCENARIOS: readonly NodeScenario[] = [startLatencyScenario, matchConditionsScenario, memoryScenario];
