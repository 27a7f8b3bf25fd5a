// CLI error paths: unusable input or state -> exit 2 with one line on stderr, no stack trace.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const STATE = join(import.meta.dirname, '..', 'golden', 'solo', 'state.yaml');
const dir = mkdtempSync(join(tmpdir(), 'kcw-cli-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

function run(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8' });
}

describe('komputer-webhook CLI errors', () => {
  const cases: [string, string[], string, RegExp][] = [
    ['review: stdin is not JSON', ['review', '--state', STATE], 'not json', /stdin: body is not valid JSON/],
    ['review: not an AdmissionReview', ['review', '--state', STATE], '{"kind":"Pod"}', /stdin: apiVersion must be/],
    ['review: garbage YAML state', ['review', '--state', file('garbage.yaml', 'a: [b\n  c: {')], '{}', /garbage.yaml: document 1 is not valid YAML/],
    ['review: state that is a scalar', ['review', '--state', file('scalar.yaml', 'just a string')], '{}', /is not an object/],
    ['review: state file missing', ['review', '--state', join(dir, 'nope.yaml')], '{}', /cannot read state file .*ENOENT/],
    ['review: connector without a name in state', ['review', '--state', file('noname.yaml', 'kind: KomputerConnector\nmetadata: {}\n')], '{}', /metadata.name is missing/],
    ['mutate: pod file is not a pod', ['mutate', '-f', file('cm.yaml', 'kind: ConfigMap\nmetadata: {name: x}\n'), '--state', STATE], '', /must hold exactly one Pod/],
    ['mutate: garbage pod YAML', ['mutate', '-f', file('bad-pod.yaml', '{{{{'), '--state', STATE], '', /not valid YAML/],
    ['mutate: missing -f', ['mutate', '--state', STATE], '', /required option/],
    ['unknown command', ['frobnicate'], '', /unknown command/],
  ];
  for (const [name, args, input, pattern] of cases) {
    test(`${name} -> exit 2, one line`, () => {
      const r = run(args, input);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
    });
  }
  test('review of a well-formed review exits 0 even when nothing is injected', () => {
    const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'team-a', object: { metadata: {}, spec: { containers: [] } } } };
    const r = run(['review', '--state', STATE], JSON.stringify(review));
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { response: { allowed: boolean } }).response.allowed, true);
  });
});
