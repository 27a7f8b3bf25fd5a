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

export class KubectlError extends Error {
  override name = 'KubectlError';
  readonly result: KubectlResult;
  constructor(args: readonly string[], result: KubectlResult) {
    super(`kubectl ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
    this.result = result;
  }
}

export function kubectl(kubeconfig: string, args: readonly string[], options: KubectlOptions = {}): Promise<KubectlResult> {
  const fullArgs = ['--kubeconfig', kubeconfig, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(bin('kubectl'), fullArgs, {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
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
        stderr: Buffer.concat(err).toString('utf8') + (signal === null ? '' : `\n(kubectl killed by ${signal})`),
      };
      if (result.code !== 0 && options.allowFailure !== true) reject(new KubectlError(args, result));
      else resolve(result);
    });
    child.stdin.on('error', () => {
      // kubectl may exit before reading all input; the exit code tells what happened.
    });
    child.stdin.end(options.input ?? '');
  });
}

/** `kubectl` warnings ("Warning: ...") from stderr, e.g. admission warnings. */
export function warningsOf(result: KubectlResult): string[] {
  return result.stderr
    .split('\n')
    .filter((line) => line.startsWith('Warning: '))
    .map((line) => line.slice('Warning: '.length));
}
