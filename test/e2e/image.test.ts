// The image an admin runs, run the way the chart runs it, without a node: `npm run image`
// builds it (buildah, on the local Node 24 + Debian base), umoci unpacks the OCI archive into a
// runtime bundle, and runc runs it with the chart's pod settings (read-only root filesystem,
// no capabilities, no privilege escalation, an emptyDir-like /tmp, certificates and the state
// file mounted read-only) and with the image's own user: no user override.
// It proves: the process runs as 65532, the root filesystem refuses writes (EROFS), and
// `serve --state` answers readiness and a real admission review over TLS.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { writeTestCerts, post } from '../helpers/tls.ts';
import { podReview, decodePatch } from '../helpers/review.ts';
import { freePort } from './harness/ports.ts';
import { buildImages, IMAGES } from '../image/images.ts';
import { readConfig, restricted, RuncContainer, unpackImage } from '../image/runc.ts';
import type { JsonObject } from '../../src/model/objects.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const IMAGE = IMAGES.webhook;
const UID = 65532;
let dir: string;
let container: RuncContainer;
let ports: { https: number; metrics: number };
let ca: string;

const mib = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;

before(async () => {
  const deps = spawnSync('bash', [join(root, 'test/image/install-deps.sh')], { stdio: 'inherit' });
  assert.equal(deps.status, 0, 'the image tools (buildah, mmdebstrap, umoci, runc) are missing: see the message above');
  // Cold: builds the base and the image (minutes, progress on stderr); warm: seconds.
  const [built] = await buildImages('app');
  assert.equal(built?.name, IMAGE);

  dir = mkdtempSync(join(tmpdir(), 'kcw-image-'));
  const bundle = unpackImage(built.archive, IMAGE, dir);
  // The archive names the image as pods do (containerd's import reads this annotation).
  const index = JSON.parse(readFileSync(join(dir, 'layout', 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
  assert.deepEqual(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']), [IMAGE]);
  const unpacked = Number(execFileSync('du', ['-sb', join(bundle, 'rootfs')], { encoding: 'utf8' }).split('\t')[0]);
  console.log(`# image ${IMAGE}: archive ${mib(statSync(built.archive).size)} (gzip layers), unpacked ${mib(unpacked)}`);

  // Mounted read-only, as the chart mounts its Secret: certificates and a state file.
  const certs = await writeTestCerts();
  ca = certs.ca;
  chmodSync(certs.dir, 0o755);
  for (const f of readdirSync(certs.dir)) chownSync(join(certs.dir, f), UID, UID);
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir);
  copyFileSync(join(root, 'examples/state.yaml'), join(stateDir, 'state.yaml'));

  ports = { https: await freePort(), metrics: await freePort() };
  const config = readConfig(bundle);
  // The image's own user and command line, as the Dockerfile declares them.
  assert.deepEqual(config.process.user, { uid: UID, gid: UID });
  assert.deepEqual(config.process.args, ['node', '--max-semi-space-size=8', '/app/dist/src/cli/main.js', 'serve', '--cert-dir', '/certs']);
  config.process.args = [...config.process.args.slice(0, 3), 'serve', '--state', '/state/state.yaml', '--cert-dir', '/certs',
    '--host', '127.0.0.1', '--port', String(ports.https), '--metrics-host', '127.0.0.1', '--metrics-port', String(ports.metrics), '--drain-ms', '0'];
  restricted(config).mounts.push(
    { destination: '/certs', type: 'bind', source: certs.dir, options: ['rbind', 'ro'] },
    { destination: '/state', type: 'bind', source: stateDir, options: ['rbind', 'ro'] },
  );
  container = new RuncContainer(bundle, 'kcw-image-test');
  container.start(config);
});

after(async () => {
  await container?.stop();
  const logs = join(root, '.e2e/logs/image.test');
  mkdirSync(logs, { recursive: true });
  writeFileSync(join(logs, 'container.log'), container?.output ?? '');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (container.exitCode !== null) assert.fail(`the container exited (${container.exitCode}) while waiting for ${what}:\n${container.output}`);
    try { const v = await probe(); if (v !== undefined) return v; } catch (err) { last = (err as Error).message; }
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what} (${last}):\n${container.output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('serve --state answers readiness and an admission review from the image', async () => {
  const t0 = Date.now();
  await until('/readyz', async () => {
    const r = await fetch(`http://127.0.0.1:${ports.metrics}/readyz`);
    return r.status === 200 ? true : undefined;
  });
  console.log(`# ready ${Date.now() - t0} ms after runc run`);
  const pod = parse(readFileSync(join(root, 'examples/pod-solo.yaml'), 'utf8')) as JsonObject;
  const res = await post(ports.https, '/mutate/pods', JSON.stringify(podReview(pod, 'team-a')), ca);
  assert.equal(res.status, 200, res.text);
  const review = JSON.parse(res.text) as { response: { allowed: boolean; patch?: string } };
  assert.equal(review.response.allowed, true);
  const patch = JSON.stringify(decodePatch(review.response.patch));
  assert.match(patch, /KOMPUTER_MCP_SERVERS/);
  assert.match(patch, /CONNECTOR_GITHUB_TOKEN/);
});

test('the process runs as 65532 (the image user), with no capabilities', async () => {
  const state = await until('runc state', async () => container.state());
  assert.equal(state.status, 'running');
  const status = readFileSync(`/proc/${state.pid}/status`, 'utf8');
  const field = (name: string): string[] => (status.match(new RegExp(`^${name}:\\s+(.*)$`, 'm'))?.[1] ?? '').split(/\s+/);
  assert.deepEqual(field('Uid'), [String(UID), String(UID), String(UID), String(UID)]);
  assert.deepEqual(field('Gid'), [String(UID), String(UID), String(UID), String(UID)]);
  assert.equal(field('CapEff')[0], '0000000000000000');
  assert.equal(field('NoNewPrivs')[0], '1');
  assert.match(readFileSync(`/proc/${state.pid}/cmdline`, 'utf8'), /^node\0--max-semi-space-size=8\0\/app\/dist\/src\/cli\/main\.js\0serve\0/);
});

test('the root filesystem is read-only; only the mounted /tmp is writable', () => {
  const write = (path: string): { status: number | null; out: string } => {
    const r = container.exec(['node', '-e',
      `try { require('fs').writeFileSync(${JSON.stringify(path)}, 'x'); console.log('WROTE'); } catch (e) { console.log(e.code); process.exit(3); }`]);
    return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
  };
  for (const path of ['/app/probe', '/probe', '/etc/probe', '/certs/probe']) {
    assert.deepEqual(write(path), { status: 3, out: 'EROFS' }, path);
  }
  // Even uid 0 in the container cannot write the root filesystem.
  const asRoot = container.exec(['sh', '-c', 'echo x > /app/probe'], '0:0');
  assert.notEqual(asRoot.status, 0);
  assert.match(asRoot.stderr, /Read-only file system/);
  assert.deepEqual(write('/tmp/probe'), { status: 0, out: 'WROTE' });
});
