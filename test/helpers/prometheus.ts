// The one reader of the Prometheus text format (version 0.0.4) for the tests and the
// benchmarks: samples with their labels parsed (quoted values with escapes), and the
// lookups they all need: one sample, a sum over label sets, a histogram's buckets.

export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;

function unescape(v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function toNumber(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

/** Every sample line of an exposition (comments and blank lines skipped). */
export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = unescape(l[2]!);
    out.push({ name: m[1]!, labels, value: toNumber(m[3]!) });
  }
  return out;
}

type Source = string | readonly PromSample[];

function samplesOf(source: Source): readonly PromSample[] {
  return typeof source === 'string' ? parsePrometheus(source) : source;
}

function matches(s: PromSample, name: string, labels: Readonly<Record<string, string>>): boolean {
  if (s.name !== name) return false;
  for (const k in labels) if (s.labels[k] !== labels[k]) return false;
  return true;
}

/** The first sample of `name` whose labels include `labels`, or undefined. */
export function sampleValue(source: Source, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  for (const s of samplesOf(source)) if (matches(s, name, labels)) return s.value;
  return undefined;
}

/** The sum of every sample of `name` whose labels include `labels` (0 when there is none). */
export function sampleSum(source: Source, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0;
  for (const s of samplesOf(source)) if (matches(s, name, labels)) sum += s.value;
  return sum;
}

/** Sums of `name` by the value of one label (e.g. restarts by kind). */
export function sumBy(source: Source, name: string, label: string, labels: Readonly<Record<string, string>> = {}): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samplesOf(source)) {
    if (!matches(s, name, labels)) continue;
    const key = s.labels[label] ?? '';
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

export interface PromHistogram {
  readonly count: number;
  readonly sum: number;
  /** Cumulative counts by upper bound, +Inf last (summed over the other label sets that match). */
  readonly buckets: [number, number][];
}

/** A histogram's `_bucket`, `_count` and `_sum`, summed over the label sets that include `labels`. */
export function histogram(source: Source, name: string, labels: Readonly<Record<string, string>> = {}): PromHistogram {
  const samples = samplesOf(source);
  const byLe = sumBy(samples, `${name}_bucket`, 'le', labels);
  const buckets = [...byLe.entries()].map(([le, v]): [number, number] => [toNumber(le), v]).sort((x, y) => x[0] - y[0]);
  return { count: sampleSum(samples, `${name}_count`, labels), sum: sampleSum(samples, `${name}_sum`, labels), buckets };
}
