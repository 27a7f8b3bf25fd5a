// Runs an image from its OCI archive without a node: umoci unpacks it into a runtime bundle,
// runc runs the bundle. The container keeps the image's user, command and environment;
// `restricted` applies what the chart's securityContext asks for (read-only root, no
// capabilities, no privilege escalation, a tmpfs /tmp like its emptyDir). It shares the
// host's network namespace, so tests reach its ports on 127.0.0.1.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RuntimeConfig {
  process: { user: { uid: number; gid: number }; args: string[]; env: string[]; terminal?: boolean; noNewPrivileges?: boolean; capabilities?: unknown };
  root: { path: string; readonly?: boolean };
  mounts: Array<{ destination: string; type: string; source: string; options?: string[] }>;
  linux: { namespaces: Array<{ type: string }> };
}

/** Extracts the archive and unpacks the image `name` into `<dir>/bundle`; returns the bundle. */
export function unpackImage(archive: string, name: string, dir: string): string {
  const layout = join(dir, 'layout');
  mkdirSync(layout, { recursive: true });
  execFileSync('tar', ['-xf', archive, '-C', layout]);
  const bundle = join(dir, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${layout}:${name}`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
  return bundle;
}

export function readConfig(bundle: string): RuntimeConfig {
  return JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as RuntimeConfig;
}

/** The chart's container securityContext and pod volumes, applied to a bundle's config. */
export function restricted(config: RuntimeConfig): RuntimeConfig {
  config.process.terminal = false;
  config.process.noNewPrivileges = true; // allowPrivilegeEscalation: false
  config.process.capabilities = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] }; // drop: [ALL]
  config.root = { path: 'rootfs', readonly: true }; // readOnlyRootFilesystem: true
  config.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=16m'] }); // emptyDir
  config.linux.namespaces = config.linux.namespaces.filter((n) => n.type !== 'network');
  return config;
}

export class RuncContainer {
  output = '';
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  readonly id: string;
  private readonly stateRoot: string;
  private readonly bundle: string;
  constructor(bundle: string, id: string) {
    this.bundle = bundle;
    this.id = `${id}-${process.pid}`;
    this.stateRoot = join(bundle, '..', 'runc-state'); // never containerd's runc root
  }

  start(config: RuntimeConfig): void {
    writeFileSync(join(this.bundle, 'config.json'), JSON.stringify(config, null, 2));
    const child = spawn('runc', ['--root', this.stateRoot, 'run', '--bundle', this.bundle, this.id], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => { this.output += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { this.output += c.toString(); });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.child = child;
  }

  /** The exit status once the container's process ended, or null while it runs. */
  get exitCode(): number | null { return this.child?.exitCode ?? null; }
  wait(): Promise<number | null> { return this.exited; }

  state(): { pid: number; status: string } {
    return JSON.parse(execFileSync('runc', ['--root', this.stateRoot, 'state', this.id], { encoding: 'utf8' })) as { pid: number; status: string };
  }

  exec(args: string[], user?: string): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('runc', ['--root', this.stateRoot, 'exec', ...(user ? ['--user', user] : []), this.id, ...args], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      spawnSync('runc', ['--root', this.stateRoot, 'kill', this.id, 'TERM']);
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    spawnSync('runc', ['--root', this.stateRoot, 'delete', '--force', this.id]);
  }
}
