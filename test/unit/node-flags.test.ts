// The image runs the service with the V8 flags the harness and the benchmarks use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVE_NODE_FLAGS } from '../../src/server/node-flags.ts';

test('the Dockerfile ENTRYPOINT passes SERVE_NODE_FLAGS before the entry point', () => {
  const dockerfile = readFileSync(join(import.meta.dirname, '..', '..', 'Dockerfile'), 'utf8');
  const line = dockerfile.split('\n').find((l) => l.startsWith('ENTRYPOINT '));
  assert.ok(line, 'Dockerfile has an ENTRYPOINT');
  assert.deepEqual(JSON.parse(line.slice('ENTRYPOINT '.length)), ['node', ...SERVE_NODE_FLAGS, '/app/dist/src/cli/main.js']);
});

test('each flag is an option this Node knows (a typo would stop the container)', () => {
  for (const f of SERVE_NODE_FLAGS) {
    assert.match(f, /^--[a-z0-9-]+(=\S+)?$/);
    assert.ok(process.allowedNodeEnvironmentFlags.has(f.split('=')[0]!), `${f} is a Node/V8 option`);
  }
});
