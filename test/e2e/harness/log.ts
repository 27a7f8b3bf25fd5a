// Progress output of the harness. It goes to stderr so that it shows up next to test
// results and in `npm run dev`, without mixing into anything a test parses.

const started = Date.now();

export function log(message: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[e2e ${seconds}s] ${message}\n`);
}

export function elapsed(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}
