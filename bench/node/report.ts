// bench:node's results file and report section. A run of some scenarios (`--only`) replaces
// only their results, so separate runs leave each other's figures in place; each result
// keeps the run it came from (when, at which size, the load average), and the section shows
// one table per run.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { NodeScenarioResult } from './scenario.ts';

export const NODE_RESULTS = join(import.meta.dirname, '..', 'results', 'node-latest.json');

export interface NodeRun {
  readonly size: 'test' | 'bench';
  readonly at: string;
  /** The 1-minute load average when the scenarios started (node and chart up) and at the end. */
  readonly loadavg: { readonly start: number | null; readonly end: number | null };
  readonly cores: number;
  readonly seconds: number;
}

export type StoredResult = NodeScenarioResult & { readonly run: NodeRun };

export function readResults(file = NODE_RESULTS): StoredResult[] {
  if (!existsSync(file)) return [];
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { results?: StoredResult[] };
  return Array.isArray(parsed.results) ? parsed.results.filter((r) => r.run !== undefined) : [];
}

/** The stored results with `fresh` replacing those of the same scenarios, in `order`. */
export function mergeResults(stored: readonly StoredResult[], fresh: readonly StoredResult[], order: readonly string[]): StoredResult[] {
  const byName = new Map(stored.map((r) => [r.scenario, r]));
  for (const r of fresh) byName.set(r.scenario, r);
  const rank = (name: string): number => (order.includes(name) ? order.indexOf(name) : order.length);
  return [...byName.values()].sort((a, b) => rank(a.scenario) - rank(b.scenario));
}

/** A load average as JSON stores it (NaN is written as null: a run that did not record it). */
function loadText(l: { start: number | null; end: number | null }): string {
  const f = (v: number | null): string | undefined => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(2) : undefined);
  const start = f(l.start);
  const end = f(l.end);
  return start === undefined || end === undefined ? 'load average not recorded' : `1-min loadavg ${start} when the scenarios started, ${end} at the end`;
}

export function renderSection(results: readonly StoredResult[]): string {
  const runs = new Map<string, StoredResult[]>();
  for (const r of results) runs.set(r.run.at, [...(runs.get(r.run.at) ?? []), r]);
  const out: string[] = [];
  for (const [at, rs] of runs) {
    const run = rs[0]!.run;
    out.push(
      `### Node (\`npm run bench:node\`, ${run.size} size, ${at.slice(0, 16)}Z, ${run.seconds} s, ${loadText(run.loadavg)}, ${run.cores} cores)`,
      '',
      '| scenario | figure | value | how |',
      '|---|---|---:|---|',
      ...rs.flatMap((r) => r.figures.map((f) => `| ${r.scenario} | ${f.name} | ${f.value}${f.unit ? ` ${f.unit}` : ''} | ${f.note ?? ''} |`)),
      ...rs.flatMap((r) => r.problems.map((p) => `| ${r.scenario} | **problem** | | ${p} |`)),
      '',
    );
  }
  return out.join('\n').trim();
}

export function writeResults(results: readonly StoredResult[], file = NODE_RESULTS): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ results }, null, 2)}\n`);
}
