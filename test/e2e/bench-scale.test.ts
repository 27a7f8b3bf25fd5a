// CI's small version of `npm run bench:scale` (bench/scale.ts --small), so the scale benchmark
// cannot rot: a real API server with 2,000 agents and 200 connectors, the service started
// three times on it. Asserts what the benchmark checks, from its JSON: the controller's
// initial syncs write exactly the connectors whose counts changed, a restart writes nothing,
// agent edits write only the connectors they change, and the admission load was served
// without errors. No timing is asserted (that is the full run's job, on a quiet machine).
// Needs wrk (installed from Debian's package when root and missing, as bench/run.ts does).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './harness/paths.ts';
import { projectNode } from './harness/webhook.ts';

interface Load {
  connections: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number };
}
interface Size {
  agents: number;
  connectors: number;
  readySeconds: number;
  statusWrites: number;
  changedConnectors: number;
  rssAfterSyncMiB: number;
  rssAfterLoadMiB: number;
  loads: Load[];
}
interface Result {
  small: boolean;
  sizes: Size[];
  controller: {
    fullRecompute: { writes: number; reconciled: number };
    edits: { agents: number; writes: number; changedConnectors: number };
  };
  checksFailed: string[];
}

test('bench:scale --small: counts, writes and load at 2,000 agents from a real API server', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-scale-test-'));
  const out = path.join(dir, 'scale.json');
  try {
    const output: string[] = [];
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(projectNode, [path.join(repoRoot, 'bench', 'scale.ts'), '--small', '--out', out], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      for (const stream of [child.stdout, child.stderr]) {
        stream.setEncoding('utf8');
        stream.on('data', (d: string) => {
          output.push(d);
          process.stdout.write(d.replace(/^/gm, '    '));
        });
      }
      child.on('error', reject);
      child.on('exit', resolve);
    });
    assert.equal(code, 0, `bench/scale.ts --small exited ${code}:\n${output.join('').slice(-3000)}`);
    const r = JSON.parse(readFileSync(out, 'utf8')) as Result;
    assert.equal(r.small, true);
    assert.deepEqual(r.checksFailed, []);
    assert.deepEqual(r.sizes.map((s) => s.agents), [10, 2000]);
    for (const s of r.sizes) {
      assert.ok(s.connectors === 200, `connectors ${s.connectors}`);
      // The first start finds every connector without a status; the second the ones the new agents use.
      assert.ok(s.changedConnectors > 0, `${s.agents} agents: no connector changed, so the check proves nothing`);
      assert.equal(s.statusWrites, s.changedConnectors, `${s.agents} agents: writes`);
      assert.deepEqual(s.loads.map((l) => l.connections), [1, 16]);
      for (const l of s.loads) assert.ok(l.requestsPerSecond > 0 && l.latencyMs.p50 > 0, `${s.agents} agents c=${l.connections}: ${JSON.stringify(l)}`);
      assert.ok(s.rssAfterSyncMiB > 0 && s.rssAfterLoadMiB > 0);
    }
    assert.ok(r.sizes[0]!.changedConnectors >= 200, 'the first start writes every connector');
    assert.equal(r.controller.fullRecompute.writes, 0, 'a restart on unchanged counts writes nothing');
    assert.ok(r.controller.fullRecompute.reconciled >= 200, 'the restart reconciled every connector');
    assert.ok(r.controller.edits.changedConnectors > 0, 'the edits changed some connector');
    assert.equal(r.controller.edits.writes, r.controller.edits.changedConnectors, 'agent edits write only the connectors they change');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
