// The load generator shared by the benchmarks: wrk over HTTPS keep-alive with post.lua, which
// prints a machine-readable summary (p50..p99.9). Installed from Debian packages when missing
// and running as root; otherwise the command to run is printed and the benchmark exits 2.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCertificates } from '../src/certs/generate.ts';
import { schedMicros } from './proc.ts';

/** A free loopback TCP port (the servers under test bind it right after). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

/**
 * Resolves once the server on `port` answers `path` over verified TLS (any status, or only
 * `status` when given), polling every 100 ms for up to 60 s.
 */
export function untilAnswering(port: number, ca: string, path = '/healthz', status?: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  return new Promise((res, rej) => {
    const retry = (): void => void (Date.now() > deadline ? rej(new Error(`https://127.0.0.1:${port}${path} did not answer${status ? ` ${status}` : ''} in 60 s`)) : setTimeout(attempt, 100));
    const attempt = (): void => {
      const req = httpsRequest({ host: '127.0.0.1', port, path, method: 'GET', ca, servername: 'localhost' }, (r) => {
        r.resume();
        r.on('end', () => (status === undefined || r.statusCode === status ? res() : retry()));
      });
      req.on('error', retry);
      req.end();
    };
    attempt();
  });
}

/**
 * What gc.ts and profile.ts serve from: a temp dir with a serving certificate, the review to
 * POST and a state file, and the servers' environment (without NODE_EXTRA_CA_CERTS, as in a pod).
 */
export async function stateWorkspace(prefix: string, review: unknown, state: string): Promise<{ dir: string; certDir: string; caCert: string; bodyFile: string; stateFile: string; env: NodeJS.ProcessEnv }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const { certDir, caCert } = await benchCertificates(dir);
  const bodyFile = join(dir, 'review.json');
  writeFileSync(bodyFile, JSON.stringify(review));
  const stateFile = join(dir, 'state.json');
  writeFileSync(stateFile, state);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return { dir, certDir, caCert, bodyFile, stateFile, env };
}

/** A serving certificate for 127.0.0.1/localhost in `<dir>/certs` (tls.crt, tls.key, ca.crt), as every server under test reads it. */
export async function benchCertificates(dir: string): Promise<{ certDir: string; caCert: string }> {
  const certDir = join(dir, 'certs');
  mkdirSync(certDir);
  const certs = await generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  writeFileSync(join(certDir, 'tls.crt'), certs.cert);
  writeFileSync(join(certDir, 'tls.key'), certs.key, { mode: 0o600 });
  writeFileSync(join(certDir, 'ca.crt'), certs.caCert);
  return { certDir, caCert: certs.caCert };
}

export function has(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error;
}

/** Makes sure wrk is there; returns its version line. */
export function ensureWrk(say: (line: string) => void): string {
  if (!has('wrk', ['--version'])) {
    const root = process.getuid?.() === 0;
    if (!root) {
      say('wrk (the load generator) is not installed. Install it from Debian packages:\n  sudo apt-get update && sudo apt-get install -y wrk');
      process.exit(2);
    }
    say('wrk is not installed; installing it from Debian packages (apt-get install -y wrk)...');
    const up = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    const inst = up.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', 'wrk'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }) : up;
    if (inst.status !== 0 || !has('wrk', ['--version'])) {
      say('could not install wrk: run `apt-get update && apt-get install -y wrk` and retry');
      process.exit(2);
    }
  }
  const v = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  return (v.stdout + v.stderr).split('\n')[0]!.replace(/\s*Copyright.*$/, '').trim();
}

/** Whether the server and the load generator can each have a core of their own. */
export const PIN = has('taskset', ['-V']) && availableParallelism() >= 2;

export function pinned(cpu: number, argv: string[]): string[] {
  return PIN ? ['taskset', '-c', String(cpu), ...argv] : argv;
}

/** Children to kill if the benchmark dies (servers, wrk). */
export const children = new Set<ChildProcess>();

/** SIGTERM, SIGKILL after `graceMs`, and waits for the exit (a profile is written on a normal exit). */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(killer);
  children.delete(child);
}
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

export interface WrkSummary {
  requests: number;
  duration_us: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: { min: number; mean: number; stdev: number; max: number; p50: number; p90: number; p99: number; p999: number };
}

export interface WrkRun {
  summary: WrkSummary;
  /** The load generator's run-queue wait / its lifetime (sampled every 200 ms): starved by other work? */
  waitPct: number | undefined;
}

export interface WrkOptions {
  readonly port: number;
  readonly connections: number;
  readonly seconds: number;
  /** The AdmissionReview to POST (post.lua reads it from BENCH_BODY). */
  readonly bodyFile: string;
  /** The CPU to pin wrk to (when pinning is possible). */
  readonly cpu: number;
  readonly path?: string;
  /** Where the server listens (default 127.0.0.1; e.g. a Service's cluster IP). */
  readonly host?: string;
}

export function wrk(o: WrkOptions): Promise<WrkRun> {
  const argv = pinned(o.cpu, ['wrk', '-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s', '-s', join(import.meta.dirname, 'post.lua'), `https://${o.host ?? '127.0.0.1'}:${o.port}${o.path ?? '/mutate/pods'}`]);
  return new Promise((res, rej) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, BENCH_BODY: o.bodyFile }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => (out += d));
    child.stderr!.on('data', (d: string) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), (o.seconds + 30) * 1000);
    const started = performance.now();
    let sched: { cpu: number; wait: number } | undefined;
    let sampledAt = started;
    const sampler = setInterval(() => {
      const s = child.pid !== undefined ? schedMicros(child.pid) : undefined;
      if (s) {
        sched = s;
        sampledAt = performance.now();
      }
    }, 200);
    child.on('error', rej);
    // 'close', not 'exit': the output may still be in the pipe when the process has exited.
    child.on('close', (code) => {
      clearTimeout(killer);
      clearInterval(sampler);
      children.delete(child);
      const line = out.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
      if (code !== 0 || !line) return rej(new Error(`wrk failed (exit ${code}): ${out.slice(-1500)}`));
      const lifeUs = (sampledAt - started) * 1000;
      res({ summary: JSON.parse(line.slice('BENCH_RESULT '.length)) as WrkSummary, waitPct: sched && lifeUs > 0 ? (sched.wait / lifeUs) * 100 : undefined });
    });
  });
}
