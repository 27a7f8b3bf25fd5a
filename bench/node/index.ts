// The scenarios of `npm run bench:node`, in the order they run (each leaves the cluster as
// it found it: the chart installed at its defaults, 2 replicas Ready).

import type { NodeScenario } from './scenario.ts';

export const NODE_SCENARIOS: readonly NodeScenario[] = [];
