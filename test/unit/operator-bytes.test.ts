// Differential test of KOMPUTER_MCP_SERVERS against the real Go toolchain: serversJson must
// write exactly the bytes the platform's operator writes with json.Marshal (SPEC.md, "The
// exact bytes"). test/operator-json is a copy of the operator's struct and marshalling; it is
// built once, then every case (a hand-picked table, then fast-check properties) goes to one
// Go process per batch, one JSON line per case. Go is required: without it the test fails.
//
// Inputs reach Go as JSON.stringify text, which round-trips every well-formed string exactly.
// A lone surrogate cannot reach Go as such: JSON.stringify writes it as a \udXXX escape and
// Go's decoder turns that into U+FFFD, which is exactly what the operator sees when the same
// string comes to it in JSON. Those cases therefore check that serversJson writes, for a
// lone surrogate, what the operator writes for the U+FFFD it decoded.
// FUZZ_RUNS scales the property runs; FC_SEED fixes their seed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { parse } from 'yaml';
import { serversJson, type ServerEntry } from '../../src/injection/names.ts';

const SCALE = Number(process.env.FUZZ_RUNS ?? '1');
const SEED = process.env.FC_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FC_SEED);
const GO_DIR = join(import.meta.dirname, '..', 'operator-json');

let tmp = '';
let bin = '';

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'operator-json-'));
  bin = join(tmp, 'operator-json');
  const env = { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0', GOTOOLCHAIN: 'local' };
  const r = spawnSync('go', ['build', '-o', bin, '.'], { cwd: GO_DIR, env, encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('`go` is not on PATH: this test needs the Go 1.26 toolchain to build test/operator-json and compare its bytes (it is never skipped)');
  }
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`go build of test/operator-json failed (exit ${r.status}):\n${r.stderr}`);
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The operator's bytes for each case, from one Go process; each line must be valid UTF-8. */
function operatorLines(cases: readonly (readonly ServerEntry[])[]): string[] {
  const input = cases.map((c) => JSON.stringify(c) + '\n').join('');
  const r = spawnSync(bin, [], { input, maxBuffer: 1 << 28 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`operator-json exited ${r.status}: ${r.stderr.toString()}`);
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < r.stdout.length; i++) {
    if (r.stdout[i] !== 0x0a) continue;
    out.push(utf8.decode(r.stdout.subarray(start, i)));
    start = i + 1;
  }
  assert.equal(start, r.stdout.length, 'operator-json output does not end in a newline');
  assert.equal(out.length, cases.length, 'operator-json wrote one line per case');
  return out;
}

/** Printable ASCII as is, `\` doubled, everything else as \u{X} by code point (so `\\ufffd` is text, `\u{FFFD}` the character). */
function show(s: string, quote = false): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\' || (quote && ch === '"')) out += `\\${ch}`;
    else if (c >= 0x20 && c <= 0x7e) out += ch;
    else out += `\\u{${c.toString(16).toUpperCase()}}`;
  }
  return out;
}

function showEntries(entries: readonly ServerEntry[]): string {
  const one = (e: ServerEntry) =>
    '{' +
    Object.entries(e)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: "${show(String(v), true)}"`)
      .join(', ') +
    '}';
  return `[${entries.map(one).join(', ')}]`;
}

function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function mismatch(entries: readonly ServerEntry[], ts: string, go: string, where: string): string {
  return [
    `serversJson differs from the operator's json.Marshal (${where})`,
    `  input: ${showEntries(entries)}`,
    `  ts:    ${show(ts)}`,
    `  go:    ${show(go)}`,
    `  first difference at UTF-16 offset ${firstDifference(ts, go)}`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Hand-picked cases.

const e = (name: string, url = 'https://mcp.example/', extra: Partial<ServerEntry> = {}): ServerEntry => ({ name, url, ...extra });
const hex = (c: number) => c.toString(16).padStart(2, '0');

const TABLE: [string, ServerEntry[]][] = [
  ['no entries', []],
  ['one plain entry, all fields', [e('github', 'https://api.github.com/mcp', { tokenEnv: 'CONNECTOR_GITHUB_TOKEN', authType: 'Bearer', headerName: 'Authorization' })]],
  ['empty optional fields are omitted', [e('a', 'u', { tokenEnv: '', authType: '', headerName: '' })]],
  ['each optional field alone', [e('t', 'u', { tokenEnv: 'T' }), e('a', 'u', { authType: 'A' }), e('h', 'u', { headerName: 'H' })]],
  ['empty name and empty url', [e('', '')]],
  ['& < > are HTML-escaped', [e('a&b<c>d', 'https://x.example/?a=1&b=<2>', { tokenEnv: '&', authType: '<', headerName: '>' })]],
  ['U+2028 and U+2029', [e('\u2028\u2029', 'x\u2028y\u2029z', { headerName: '\u2028' })]],
  ['quotes and backslash', [e('"q"\\', 'a"b\\c', { authType: '\\"' })]],
  ['all control characters at once', [e(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => i)), String.fromCharCode(...Array.from({ length: 32 }, (_, i) => 31 - i)))]],
  ...Array.from({ length: 32 }, (_, c): [string, ServerEntry[]] => [`control 0x${hex(c)}`, [e(`k${String.fromCharCode(c)}`, `u${String.fromCharCode(c)}v`, { tokenEnv: String.fromCharCode(c) })]]),
  ['DEL 0x7f is written as is', [e('\x7f', 'a\x7fb', { headerName: '\x7f' })]],
  ['non-BMP emoji', [e('😀', 'https://x.example/😀', { tokenEnv: '👩‍💻', authType: '\u{10FFFF}' })]],
  ['U+FFFD itself is written as is', [e('\uFFFD', 'a\uFFFDb')]],
  ['sort: U+E000..U+FFFF before astral keys', [e('\u{10000}'), e('\uFFFF'), e('😀'), e('\uE000'), e('\uFFFD'), e('z'), e('\u{10FFFF}'), e('\uFEFF')]],
  ['sort: astral key against BMP prefix', [e('a\u{1F600}'), e('a\uFFFF'), e('a'), e('a\uE000b'), e('a\u0000')]],
  ['keys that need escaping', [e('<script>'), e('a&b'), e('"'), e('\\'), e('\n'), e('\u2028'), e('\u0000'), e('>')]],
  ['several entries out of order', [e('linear'), e('github'), e('a-b'), e('A'), e('a.b'), e('Zed'), e('a_b'), e('0')]],
  ['a repeated name keeps the last entry', [e('dup', 'first', { tokenEnv: 'T1' }), e('other'), e('dup', 'second', { authType: 'A2' })]],
  // Lone surrogates: Go decodes each to U+FFFD (see the header).
  ['lone high surrogate in a url', [e('x', 'a\uD800b')]],
  ['lone low surrogate in a name', [e('\uDFFF')]],
  ['reversed surrogate pair', [e('k', '\uDC00\uD800')]],
  ['lone surrogate in every optional field', [e('k', 'u', { tokenEnv: '\uD83D', authType: '\uDE00', headerName: 'x\uDBFFy' })]],
  ['two names that differ only in their lone surrogate', [e('\uD800', 'first'), e('\uDC00', 'second')]],
  ['a lone surrogate name against a U+FFFD name', [e('\uFFFD', 'real'), e('\uD800', 'lone')]],
  ['a lone surrogate name sorts as U+FFFD, before astral names', [e('😀', 'astral'), e('\uDC00', 'lone')]],
];

describe('serversJson equals the operator bytes: hand-picked cases', () => {
  let lines: string[] = [];
  before(() => {
    lines = operatorLines(TABLE.map(([, entries]) => entries));
  });
  TABLE.forEach(([title, entries], i) => {
    test(title, () => {
      const ts = serversJson(entries);
      const go = lines[i]!;
      assert.equal(ts, go, mismatch(entries, ts, go, `case "${title}"`));
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: many random cases, one Go process for each property.

const char = (min: number, max: number) => fc.integer({ min, max }).map((c) => String.fromCodePoint(c));
/** Any code point but a surrogate: fc.string({ unit: 'binary' }) draws the same, but takes over a second to set up. */
const anyScalar = fc.integer({ min: 0, max: 0x10ffff - 0x800 }).map((c) => String.fromCodePoint(c < 0xd800 ? c : c + 0x800));
/** One code point, weighted towards the ones Go treats specially, plus anything in Unicode. */
const wellFormedUnit = fc.oneof(
  { weight: 4, arbitrary: anyScalar },
  { weight: 3, arbitrary: char(0x00, 0x7f) },
  { weight: 2, arbitrary: fc.constantFrom('&', '<', '>', '"', '\\', '\u2028', '\u2029', '\x7f', '\uFFFD', '\uE000', '\uFFFF', '\u{10000}', '\u{10FFFF}', '😀') },
  { weight: 1, arbitrary: char(0xe000, 0xffff) },
);
const loneSurrogate = char(0xd800, 0xdfff);
const withLoneUnit = fc.oneof({ weight: 4, arbitrary: wellFormedUnit }, { weight: 1, arbitrary: loneSurrogate });

function entriesArb(unit: fc.Arbitrary<string>): fc.Arbitrary<ServerEntry[]> {
  const str = fc.string({ unit, maxLength: 12 });
  // Names from a small set now and then, so that repeated names (last one wins) come up.
  const name = fc.oneof({ weight: 4, arbitrary: str }, { weight: 1, arbitrary: fc.constantFrom('', 'a', 'github', '\uFFFD') });
  const entry = fc.record({ name, url: str, tokenEnv: str, authType: str, headerName: str }, { requiredKeys: ['name', 'url'] });
  return fc.array(entry, { maxLength: 8 });
}

function checkProperty(arb: fc.Arbitrary<ServerEntry[]>, numRuns: number): void {
  const cases = fc.sample(arb, { numRuns, seed: SEED });
  const lines = operatorLines(cases);
  let first = -1;
  let count = 0;
  for (let i = 0; i < cases.length; i++) {
    if (serversJson(cases[i]!) === lines[i]) continue;
    if (first < 0) first = i;
    count++;
  }
  if (first < 0) return;
  const ts = serversJson(cases[first]!);
  assert.equal(ts, lines[first], mismatch(cases[first]!, ts, lines[first]!, `case ${first} of ${cases.length}, FC_SEED=${SEED}; ${count} mismatching cases in all`));
}

describe('serversJson equals the operator bytes: properties', () => {
  test('arbitrary well-formed Unicode in every field', () => checkProperty(entriesArb(wellFormedUnit), 400 * SCALE));
  test('strings with lone surrogates (Go decodes them to U+FFFD)', () => checkProperty(entriesArb(withLoneUnit), 200 * SCALE));
});

// Every KOMPUTER_MCP_SERVERS in the golden cases (what the service injects, and what the
// operator-injected pods carry) is re-rendered by Go from its own entries: same bytes.
describe('golden KOMPUTER_MCP_SERVERS values are the operator bytes', () => {
  const golden = join(import.meta.dirname, '..', 'golden');
  const values: { where: string; value: string }[] = [];
  for (const name of readdirSync(golden).sort()) {
    for (const file of ['pod.yaml', 'expected.yaml']) {
      const path = join(golden, name, file);
      if (!existsSync(path)) continue;
      const pod = parse(readFileSync(path, 'utf8')) as { spec?: { containers?: unknown[]; ephemeralContainers?: unknown[] } };
      for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.ephemeralContainers ?? [])] as { name: string; env?: { name: string; value?: string }[] }[]) {
        for (const e of c.env ?? []) if (e.name === 'KOMPUTER_MCP_SERVERS' && e.value?.startsWith('{')) values.push({ where: `${name}/${file} ${c.name}`, value: e.value });
      }
    }
  }

  test('there are golden values to check', () => assert.ok(values.length >= 15, `found ${values.length}`));

  test('each equals what Go writes for its entries', () => {
    const cases = values.map(({ value }) =>
      Object.entries(JSON.parse(value) as Record<string, Omit<ServerEntry, 'name'>>).map(([name, e]) => ({ name, url: e.url, tokenEnv: e.tokenEnv, authType: e.authType, headerName: e.headerName })),
    );
    const lines = operatorLines(cases);
    values.forEach(({ where, value }, i) => assert.equal(value, lines[i], `${where}: not the operator's bytes`));
  });
});
