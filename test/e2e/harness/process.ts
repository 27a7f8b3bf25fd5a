// Child processes the harness owns (etcd, kube-apiserver, the service), with their output
// in log files, and the guarantee that none of them outlives us:
//   - normal path: stop() sends SIGTERM, then SIGKILL after a grace period;
//   - SIGINT/SIGTERM to this process: everything is stopped the same way, then we exit;
//   - process exit for any other reason (uncaught error, process.exit in a test runner):
//     a synchronous SIGTERM, a short wait, then SIGKILL;
//   - this process killed with SIGKILL: Linux's parent-death signal (set via `setpriv
//     --pdeathsig`, when available) kills the children too.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { log } from './log.ts';

export interface ProcessOptions {
  /** Short name for logs, e.g. `etcd`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** stdout and stderr go here (appended). */
  readonly logFile: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const SETPRIV = '/usr/bin/setpriv';
const useSetpriv = process.platform === 'linux' && existsSync(SETPRIV);

const running = new Set<ManagedProcess>();
const cleanups = new Set<() => void>();

export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  #child: ChildProcess;
  #status: ExitStatus | undefined;
  #stopping = false;

  constructor(options: ProcessOptions) {
    this.name = options.name;
    this.logFile = options.logFile;
    const fd = openSync(options.logFile, 'a', 0o600);
    const [command, args] = useSetpriv
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', options.command, ...options.args]]
      : [options.command, [...options.args]];
    try {
      this.#child = spawn(command, args, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: ['ignore', fd, fd],
        // Own process group: a Ctrl-C in the terminal reaches only us, and we stop the
        // children in order (service, API server, etcd) instead of all at once.
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    // A child does not by itself keep this process alive: a test file that forgets
    // stopEnvironment() still exits, and the exit handler below stops the child.
    this.#child.unref();
    if (this.#child.pid === undefined) {
      // spawn failed synchronously (e.g. ENOENT); the 'error' event carries the reason.
      this.pid = -1;
    } else {
      this.pid = this.#child.pid;
    }
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.#child.once('error', (error) => {
        log(`${this.name}: failed to start: ${error.message}`);
        this.#status = { code: -1, signal: null };
        running.delete(this);
        resolve(this.#status);
      });
      this.#child.once('exit', (code, signal) => {
        this.#status = { code, signal };
        running.delete(this);
        if (!this.#stopping) {
          log(`${this.name} (pid ${this.pid}) exited unexpectedly (code ${code}, signal ${signal}); last output:\n${this.tail()}`);
        }
        resolve(this.#status);
      });
    });
    running.add(this);
    installHandlers();
  }

  /** Exit status, or undefined while it runs. */
  get status(): ExitStatus | undefined {
    return this.#status;
  }

  get isRunning(): boolean {
    return this.#status === undefined;
  }

  /** True once stop() (or a shutdown) asked it to exit. */
  get stopRequested(): boolean {
    return this.#stopping;
  }

  /** The last `lines` lines of the process's output. */
  tail(lines = 40): string {
    try {
      const text = readFileSync(this.logFile, 'utf8');
      return text.split('\n').slice(-lines - 1).join('\n').trimEnd();
    } catch {
      return '(no output)';
    }
  }

  /** SIGTERM, then SIGKILL when it has not exited after graceMs. */
  async stop(graceMs = 10_000): Promise<ExitStatus> {
    if (this.#status !== undefined) return this.#status;
    this.#stopping = true;
    this.#child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      log(`${this.name} did not exit ${graceMs} ms after SIGTERM: SIGKILL`);
      this.#child.kill('SIGKILL');
      // The child is unref'd: without a handle of our own a script awaiting this could see its
      // event loop empty (and exit) before the child's exit is reported.
      const keepAlive = setInterval(() => undefined, 1000);
      await this.exited;
      clearInterval(keepAlive);
    }
    return this.exited;
  }

  /** For the exit handler only: no event loop, so no promises. */
  killSync(signal: NodeJS.Signals): void {
    this.#stopping = true;
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Starts a process whose output goes to options.logFile. */
export function startProcess(options: ProcessOptions): ManagedProcess {
  return new ManagedProcess(options);
}

/**
 * Registers a synchronous clean-up (e.g. removing a temp dir) that runs at process exit
 * after all children are dead. Returns a function that unregisters it.
 */
export function onExitCleanup(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  installHandlers();
  return () => cleanups.delete(cleanup);
}

/** Stops every running child, newest first (the service before the API server before etcd). */
export async function stopAll(): Promise<void> {
  for (const child of [...running].reverse()) await child.stop();
}

let signalExitCode: number | undefined;
let shutdownHandler: (() => Promise<void>) | undefined;

/** Exit code used after a SIGINT/SIGTERM clean-up (default 128 + signal number). */
export function setSignalExitCode(code: number): void {
  signalExitCode = code;
}

/**
 * An orderly shutdown (e.g. stopEnvironment, which also keeps the logs) to run on
 * SIGINT/SIGTERM before whatever is left is stopped.
 */
export function setShutdownHandler(handler: () => Promise<void>): void {
  shutdownHandler = handler;
  installHandlers();
}

let installed = false;

function installHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('exit', exitSync);
  for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping ${running.size} child process(es)`);
      // A second signal while we clean up means "now": the exit handler kills the rest.
      process.once(signal, () => process.exit(128 + number));
      Promise.resolve()
        .then(() => shutdownHandler?.())
        .then(stopAll)
        .catch((error: unknown) => log(`clean-up failed: ${String(error)}`))
        .finally(() => process.exit(signalExitCode ?? 128 + number));
    });
  }
}

function isGone(pid: number): boolean {
  try {
    // Our own exited children stay zombies until reaped, which cannot happen here.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function exitSync(): void {
  const children = [...running].reverse();
  if (children.length > 0) {
    for (const child of children) child.killSync('SIGTERM');
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && children.some((child) => !isGone(child.pid))) sleepSync(50);
    for (const child of children) if (!isGone(child.pid)) child.killSync('SIGKILL');
  }
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // best effort at exit
    }
  }
}

/** Removes a directory tree, tolerating files that a just-killed process still writes. */
export function removeTree(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
}
