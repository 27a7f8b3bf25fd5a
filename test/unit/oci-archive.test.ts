// The node's local images: an OCI archive that containerd imports under the name pods use.
// A tag mismatch only shows on the node as ErrImageNeverPull, so the names are checked here.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { writeOciArchive } from '../e2e/harness/oci.ts';
import { removeTree } from '../e2e/harness/process.ts';

test('an OCI archive names its image for containerd, links its blobs by digest, and is reproducible', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oci-test-'));
  try {
    const program = path.join(dir, 'program');
    writeFileSync(program, '#!/bin/sh\necho hi\n', { mode: 0o755 });
    const image = { name: 'komputer-e2e.local/probe:1', files: { '/bin/probe': program }, entrypoint: ['/bin/probe'], cmd: ['sleep'] };
    const [a, b] = [path.join(dir, 'a.tar'), path.join(dir, 'b.tar')];
    writeOciArchive(image, a);
    writeOciArchive(image, b);
    assert.deepEqual(readFileSync(a), readFileSync(b), 'same files, same archive');

    const layout = path.join(dir, 'layout');
    execFileSync('mkdir', ['-p', layout]);
    execFileSync('tar', ['-xf', a, '-C', layout]);
    const blob = (digest: string): Buffer => {
      const data = readFileSync(path.join(layout, 'blobs', 'sha256', digest.replace('sha256:', '')));
      assert.equal(`sha256:${createHash('sha256').update(data).digest('hex')}`, digest, 'blob content matches its digest');
      return data;
    };
    const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0]!.annotations['io.containerd.image.name'], 'komputer-e2e.local/probe:1');
    assert.equal(index.manifests[0]!.annotations['org.opencontainers.image.ref.name'], '1');
    const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as { config: { digest: string }; layers: { digest: string }[] };
    const config = JSON.parse(blob(manifest.config.digest).toString()) as { config: { Entrypoint: string[]; Cmd: string[] }; rootfs: { diff_ids: string[] } };
    assert.deepEqual(config.config.Entrypoint, ['/bin/probe']);
    assert.deepEqual(config.config.Cmd, ['sleep']);
    assert.deepEqual(config.rootfs.diff_ids, [manifest.layers[0]!.digest], 'uncompressed layer: its digest is its diff id');
    const listing = execFileSync('tar', ['-tvf', '-'], { input: blob(manifest.layers[0]!.digest), encoding: 'utf8' });
    assert.match(listing, /-rwxr-xr-x 0\/0 .* \.\/bin\/probe/);
  } finally {
    removeTree(dir);
  }
});
