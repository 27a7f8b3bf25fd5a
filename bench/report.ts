// bench/results/latest.md, the one writer: every benchmark owns a named section and replaces
// only its own, so separate runs (the gate, the servers, scale, pod creates at each
// concurrency) leave each other's figures in place. A section sits between
// `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`, in a fixed order.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const LATEST_MD = join(import.meta.dirname, 'results', 'latest.md');

/** The order of the sections in the file; other names follow, sorted. */
export const SECTION_ORDER = ['pair', 'run', 'scale', 'podcreate c=1', 'podcreate c=16'] as const;

const START = /^<!-- bench:(.+?) -->$/;
const END = /^<!-- \/bench:(.+?) -->$/;

/**
 * The sections of a latest.md text by name. Text before any marker is `run`'s (the file
 * as bench/run.ts wrote it before sections had names); a bare `<!-- bench:podcreate -->`
 * (the old header of the pod-create sections) holds nothing of its own.
 */
export function parseSections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let name = 'run';
  let lines: string[] = [];
  const flush = (): void => {
    const body = lines.join('\n').trim();
    if (body !== '') out.set(name, body);
    lines = [];
  };
  for (const line of text.split('\n')) {
    const start = START.exec(line.trim());
    if (start) {
      flush();
      name = start[1]!;
      continue;
    }
    if (END.test(line.trim())) {
      flush();
      name = 'run';
      continue;
    }
    lines.push(line);
  }
  flush();
  out.delete('podcreate');
  return out;
}

export function renderSections(sections: ReadonlyMap<string, string>): string {
  const known: readonly string[] = SECTION_ORDER;
  const names = [...sections.keys()].sort((a, b) => {
    const ia = known.indexOf(a);
    const ib = known.indexOf(b);
    if (ia >= 0 || ib >= 0) return (ia < 0 ? known.length : ia) - (ib < 0 ? known.length : ib);
    return a.localeCompare(b, 'en', { numeric: true });
  });
  return names.map((n) => `<!-- bench:${n} -->\n${sections.get(n)!.trim()}\n<!-- /bench:${n} -->\n`).join('\n');
}

/** Replaces (or adds) one section of latest.md, keeping every other. */
export function writeSection(name: string, markdown: string, file = LATEST_MD): void {
  const sections = existsSync(file) ? parseSections(readFileSync(file, 'utf8')) : new Map<string, string>();
  sections.set(name, markdown);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, renderSections(sections));
}
