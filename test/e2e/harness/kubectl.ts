// Runs the built kubectl (same version as the API server) against a kubeconfig.

import { spawn } from 'node:child_process';
import { bin } from './paths.ts';

export interface KubectlOptions {
  /** Written to kubectl's stdin (e.g. YAML for `apply -f -`). */
  readonly input?: string;
  /** Resolve instead of throwing when kubectl exits non-zero. */
  readonly allowFailure?: boolean;
  /** Kill kubectl after this long (default 60 s). */
  readonly timeoutMs?: number;
}

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A command-line tool (kubectl, helm) that exited non-zero. */
export class ToolError extends Error {
  override name = 'ToolError';
  readonly result: KubectlResult;
  constructor(tool: string, args: readonly string[], result: KubectlResult) {
    super(`${tool} ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
    this.result = result;
  }
}

export class KubectlError extends ToolError {
  override name = 'KubectlError';
  constructor(args: readonly string[], result: KubectlResult) {
    super('kubectl', args, result);
  }
}

export interface ToolOptions extends KubectlOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** The error for a non-zero exit (default ToolError). */
  readonly error?: (args: readonly string[], result: KubectlResult) => Error;
}

/**
 * Runs `binary` with `args` to completion: stdout and stderr kept, killed after the timeout,
 * rejected on a non-zero exit unless allowFailure. `shownArgs` are the ones errors quote.
 */
export function runTool(tool: string, binary: string, args: readonly string[], shownArgs: readonly string[], options: ToolOptions = {}): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const result: KubectlResult = {
        code: code ?? (signal === null ? -1 : 128),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (signal === null ? '' : `\n(${tool} killed by ${signal})`),
      };
      if (result.code !== 0 && options.allowFailure !== true) reject(options.error ? options.error(shownArgs, result) : new ToolError(tool, shownArgs, result));
      else resolve(result);
    });
    child.stdin.on('error', () => {
      // The tool may exit before reading all input; the exit code tells what happened.
    });
    child.stdin.end(options.input ?? '');
  });
}

export function kubectl(kubeconfig: string, args: readonly string[], options: KubectlOptions = {}): Promise<KubectlResult> {
  return runTool('kubectl', bin('kubectl'), ['--kubeconfig', kubeconfig, ...args], args, { ...options, error: (a, r) => new KubectlError(a, r) });
}

/** `kubectl` warnings ("Warning: ...") from stderr, e.g. admission warnings. */
export function warningsOf(result: KubectlResult): string[] {
  return result.stderr
    .split('\n')
    .filter((line) => line.startsWith('Warning: '))
    .map((line) => line.slice('Warning: '.length));
}
