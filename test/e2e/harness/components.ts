// The processes of a test cluster as one list of components (etcd, kube-apiserver, and on a
// node containerd, kubelet, scheduler, controller-manager, kube-proxy): each starts, waits
// until ready, stops, tails and saves its log the same way, through one polling helper.

import { copyFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { elapsed, log } from './log.ts';
import { startProcess, type ExitStatus, type ManagedProcess } from './process.ts';

export interface ProbeResult {
  readonly ok: boolean;
  readonly detail: string;
}

/** GET `url`; ok on HTTP 200. `insecure` skips verification (self-signed component certificates). */
export function probeHttp(url: string, options: { ca?: string; token?: string; insecure?: boolean } = {}): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const target = new URL(url);
    const headers: Record<string, string> = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
    const callback = (response: import('node:http').IncomingMessage): void => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8').trim();
        resolve({ ok: response.statusCode === 200, detail: `HTTP ${response.statusCode}: ${body.slice(0, 300)}` });
      });
      response.on('error', (error) => resolve({ ok: false, detail: error.message }));
    };
    const req =
      target.protocol === 'https:'
        ? httpsRequest(target, { headers, ca: options.ca, rejectUnauthorized: options.insecure !== true, timeout: 3_000 }, callback)
        : httpRequest(target, { headers, timeout: 3_000 }, callback);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error) => resolve({ ok: false, detail: error.message }));
    req.end();
  });
}

/** Polls `probe` until ok, printing progress every 5 s; fails early if one of `processes` exits. */
export async function waitUntil(
  what: string,
  probe: () => Promise<ProbeResult>,
  options: { deadline: number; processes: readonly ManagedProcess[]; intervalMs?: number; quiet?: boolean },
): Promise<void> {
  const started = Date.now();
  let lastReport = started;
  let last: ProbeResult = { ok: false, detail: 'not probed yet' };
  for (;;) {
    const dead = options.processes.find((p) => !p.isRunning);
    if (dead !== undefined) {
      throw new Error(`${dead.name} exited (code ${dead.status?.code}, signal ${dead.status?.signal}) while waiting for ${what} (output: ${dead.logFile})`);
    }
    last = await probe();
    if (last.ok) {
      if (options.quiet !== true) log(`${what}: ready after ${elapsed(started)}`);
      return;
    }
    const now = Date.now();
    if (now >= options.deadline) {
      throw new Error(`timed out waiting for ${what} after ${elapsed(started)}; last answer: ${last.detail}`);
    }
    if (now - lastReport >= 5_000) {
      lastReport = now;
      log(`waiting for ${what} (${elapsed(started)}): ${last.detail.split('\n')[0]}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
  }
}

export interface ComponentSpec {
  /** Short name; its output goes to `<dir>/<name>.log`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** What "ready" means (e.g. `kubelet /healthz`), and how to ask. */
  readonly ready?: { readonly what: string; readonly probe: () => Promise<ProbeResult> };
  /** SIGTERM grace before SIGKILL when stopped (default 10 s). */
  readonly graceMs?: number;
}

/** One component: a spec and the process currently running it (replaced by restart()). */
export class Component {
  readonly spec: ComponentSpec;
  readonly logFile: string;
  readonly dir: string;
  #process: ManagedProcess | undefined;

  constructor(spec: ComponentSpec, dir: string) {
    this.spec = spec;
    this.dir = dir;
    this.logFile = path.join(dir, `${spec.name}.log`);
  }

  get name(): string {
    return this.spec.name;
  }

  /** The running (or last) process; throws before the first start. */
  get process(): ManagedProcess {
    if (this.#process === undefined) throw new Error(`${this.name} was never started`);
    return this.#process;
  }

  get isRunning(): boolean {
    return this.#process?.isRunning === true;
  }

  /** Spawns it (output appended to its log file); `extraArgs` for this run only. */
  spawn(extraArgs: readonly string[] = []): ManagedProcess {
    if (this.isRunning) throw new Error(`${this.name} is already running`);
    this.#process = startProcess({
      name: this.name,
      command: this.spec.command,
      args: [...this.spec.args, ...extraArgs],
      logFile: this.logFile,
      cwd: this.dir,
      ...(this.spec.env === undefined ? {} : { env: this.spec.env }),
    });
    return this.#process;
  }

  /** Waits for its readiness probe; fails early if it or one of `alsoWatch` exits. */
  async waitReady(deadline: number, alsoWatch: readonly Component[] = []): Promise<void> {
    if (this.spec.ready === undefined) return;
    const processes = [this, ...alsoWatch].filter((c) => c.#process !== undefined).map((c) => c.process);
    await waitUntil(this.spec.ready.what, this.spec.ready.probe, { deadline, processes });
  }

  /** Spawns it and waits until ready; returns how long that took (ms). */
  async start(options: { deadline: number; extraArgs?: readonly string[]; alsoWatch?: readonly Component[] }): Promise<number> {
    const t0 = Date.now();
    this.spawn(options.extraArgs);
    await this.waitReady(options.deadline, options.alsoWatch);
    return Date.now() - t0;
  }

  async stop(graceMs = this.spec.graceMs): Promise<ExitStatus | undefined> {
    return this.#process?.stop(graceMs);
  }

  /** For fault tests: a crash (SIGKILL), waiting for the exit. */
  async kill(): Promise<ExitStatus | undefined> {
    this.#process?.killSync('SIGKILL');
    return this.#process?.exited;
  }

  tail(lines = 40): string {
    return this.#process?.tail(lines) ?? '(not started)';
  }
}

/** Components started in order and stopped in reverse, with uniform log handling. */
export class ComponentGroup {
  readonly dir: string;
  readonly #components: Component[] = [];

  constructor(dir: string) {
    this.dir = dir;
  }

  get components(): readonly Component[] {
    return this.#components;
  }

  get(name: string): Component {
    const found = this.#components.find((c) => c.name === name);
    if (found === undefined) throw new Error(`no component ${name}`);
    return found;
  }

  add(spec: ComponentSpec, dir = this.dir): Component {
    if (this.#components.some((c) => c.name === spec.name)) throw new Error(`duplicate component ${spec.name}`);
    const component = new Component(spec, dir);
    this.#components.push(component);
    return component;
  }

  /** Starts `component` (added first if a spec) while watching every other running one. */
  async start(component: Component | ComponentSpec, deadline: number): Promise<Component> {
    const c = component instanceof Component ? component : this.add(component);
    await c.start({ deadline, alsoWatch: this.#components.filter((o) => o !== c && o.isRunning) });
    return c;
  }

  /** Stops every running component, newest first. */
  async stop(): Promise<void> {
    for (const c of [...this.#components].reverse()) {
      try {
        await c.stop();
      } catch (error) {
        log(`stopping ${c.name} failed: ${String(error)}`);
      }
    }
  }

  /** Last lines of each started component's log. */
  tails(lines = 40): string {
    return this.#components.map((c) => `--- ${c.name} (${c.logFile}) ---\n${c.tail(lines)}`).join('\n');
  }

  /** Copies every component's log into `target` (best effort: a missing log is skipped). */
  async saveLogs(target: string): Promise<void> {
    for (const c of this.#components) await copyFile(c.logFile, path.join(target, path.basename(c.logFile))).catch(() => undefined);
  }
}
