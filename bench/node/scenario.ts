// What a scenario of `npm run bench:node` is: something users live through on a real node
// (an upgrade, a killed replica, a node restart, a memory limit, ...), run against a
// NodeCluster, returning its figures and whether what must hold held. The node suites run
// the same scenarios at test size and assert `problems` is empty; bench:node runs them at
// bench size and writes the figures to the report.

import type { NodeCluster } from '../../test/e2e/fixtures/node-chart.ts';

export interface NodeFigure {
  /** What was measured, e.g. "refused creations". */
  readonly name: string;
  readonly value: number | string;
  /** e.g. "ms", "MiB", "pods". */
  readonly unit?: string;
  /** How it was measured, or what it means. */
  readonly note?: string;
}

export interface NodeScenarioResult {
  readonly scenario: string;
  readonly figures: readonly NodeFigure[];
  /** Each thing that should have held and did not (empty when all held). */
  readonly problems: readonly string[];
}

export interface NodeScenarioContext {
  readonly cluster: NodeCluster;
  /** 'test': small and quick, for the node suites; 'bench': the sizes the README reports. */
  readonly size: 'test' | 'bench';
  log(message: string): void;
}

export interface NodeScenario {
  readonly name: string;
  readonly title: string;
  run(context: NodeScenarioContext): Promise<NodeScenarioResult>;
}
