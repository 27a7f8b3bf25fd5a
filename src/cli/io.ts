// Small I/O helpers for the CLI: whole-stdin reads and one-line failures with exit code 2.

import { readFileSync } from 'node:fs';

/** A user-facing failure: printed as one line on stderr, exit code 2, no stack trace. */
export class CliError extends Error {
  override name = 'CliError';
}

export async function readStdin(limitBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limitBytes) throw new CliError(`stdin exceeds the limit of ${limitBytes} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}
