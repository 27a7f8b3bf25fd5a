// Single-layer OCI image archives made from local files, for a node without a registry
// (`ctr images import` loads them). Deterministic: same files, same digests.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeTree } from './process.ts';

export interface OciImage {
  /** Full reference, e.g. `komputer-e2e.local/probe:1` (what pods name in `image:`). */
  readonly name: string;
  /** Files of the one layer: path in the image -> file on this machine (mode kept). */
  readonly files: Readonly<Record<string, string>>;
  readonly entrypoint: readonly string[];
  readonly cmd?: readonly string[];
  readonly user?: string;
}

function digestOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Writes an OCI archive (tar of an OCI layout) of `image` to `file`. */
export function writeOciArchive(image: OciImage, file: string): void {
  const work = mkdtempSync(path.join(os.tmpdir(), 'komputer-oci-'));
  try {
    const root = path.join(work, 'root');
    for (const [inImage, from] of Object.entries(image.files)) {
      const target = path.join(root, inImage.replace(/^\/+/, ''));
      mkdirSync(path.dirname(target), { recursive: true });
      copyFileSync(from, target);
    }
    const layout = path.join(work, 'layout');
    const blobs = path.join(layout, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    const putBlob = (data: Buffer): { digest: string; size: number } => {
      const digest = digestOf(data);
      writeFileSync(path.join(blobs, digest.slice('sha256:'.length)), data);
      return { digest, size: data.length };
    };
    const layerFile = path.join(work, 'layer.tar');
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', layerFile, '-C', root, '.']);
    const layer = putBlob(readFileSync(layerFile));
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    const config = putBlob(
      Buffer.from(
        JSON.stringify({
          architecture: arch,
          os: 'linux',
          config: { Entrypoint: image.entrypoint, ...(image.cmd === undefined ? {} : { Cmd: image.cmd }), ...(image.user === undefined ? {} : { User: image.user }) },
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
        }),
      ),
    );
    const manifest = putBlob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
        }),
      ),
    );
    const tag = image.name.slice(image.name.lastIndexOf(':') + 1);
    writeFileSync(
      path.join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            platform: { architecture: arch, os: 'linux' },
            // containerd names the image after this annotation; the ref name alone is the tag.
            annotations: { 'io.containerd.image.name': image.name, 'org.opencontainers.image.ref.name': tag },
          },
        ],
      }),
    );
    writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', file, '-C', layout, '.']);
  } finally {
    removeTree(work);
  }
}
