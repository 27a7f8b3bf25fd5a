// `npm run bench:footprint`: what the runtime libraries cost in memory before any of our
// code runs. Each row is a fresh Node 24 process with the service's V8 flags that imports
// the listed modules and reports its RSS and JS heap once settled (median of 3 starts);
// the last row is the real `serve --state` with a one-agent state, idle. It shows how much
// of the idle RSS and of the at-scale RSS goals the libraries alone take.
// Writes bench/results/footprint-latest.json. Takes about 30 s.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SERVE_NODE_FLAGS } from '../src/server/node-flags.ts';
import { clusterState } from './fixtures.ts';
import { benchCertificates, children, freePort, untilAnswering } from './load.ts';
import { rssMiB } from './proc.ts';

const ROOT = resolve(import.meta.dirname, '..');
const STARTS = 3;
const say = (m: string): void => void process.stdout.write(`[bench:footprint] ${m}\n`);

/** What `serve --state` imports before the project's own code runs. */
const SERVE_LIBS = ['express', 'pino', 'prom-client', 'commander', 'yaml', 'fast-json-patch'];

const ROWS: { label: string; modules: string[] }[] = [
  { label: 'bare Node 24 (node:https loaded)', modules: ['node:https'] },
  ...SERVE_LIBS.map((m) => ({ label: `+ ${m}`, modules: ['node:https', m] })),
  { label: 'all of serve --state\'s libraries', modules: ['node:https', ...SERVE_LIBS] },
  { label: '+ @kubernetes/client-node (in-cluster serve)', modules: ['node:https', ...SERVE_LIBS, '@kubernetes/client-node'] },
  { label: '@kubernetes/client-node alone', modules: ['node:https', '@kubernetes/client-node'] },
];

interface Sample {
  rssMiB: number;
  heapUsedMiB: number;
}

/** One fresh process: import the modules, let start-up garbage settle, report. */
export function probeScript(modules: readonly string[]): string {
  return [
    ...modules.map((m) => `await import(${JSON.stringify(m)});`),
    'await new Promise((r) => setTimeout(r, 500));',
    'const u = process.memoryUsage();',
    'process.stdout.write(JSON.stringify({ rssMiB: u.rss / 1048576, heapUsedMiB: u.heapUsed / 1048576 }));',
  ].join('\n');
}

function probe(modules: readonly string[]): Sample {
  const r = spawnSync(process.execPath, [...SERVE_NODE_FLAGS, '--input-type=module', '-e', probeScript(modules)], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  if (r.status !== 0) throw new Error(`probe of ${modules.join(', ')} failed: ${r.stderr.slice(-800)}`);
  return JSON.parse(r.stdout) as Sample;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r1 = (x: number): number => Math.round(x * 10) / 10;

/** The real service, idle on a one-agent state: RSS 1 s after it is ready. */
async function serveIdle(dir: string, certDir: string, caCert: string): Promise<number> {
  const state = join(dir, 'tiny.json');
  writeFileSync(state, clusterState(1, 3, 1));
  const port = await freePort();
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [...SERVE_NODE_FLAGS, join(ROOT, 'dist/src/cli/main.js'), 'serve', '--state', state, '--cert-dir', certDir, '--host', '127.0.0.1', '--port', String(port), '--metrics-host', '127.0.0.1', '--metrics-port', String(metricsPort), '--drain-ms', '0'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info' },
    stdio: 'ignore',
  });
  children.add(child);
  try {
    await untilAnswering(port, caCert, '/readyz', 200);
    await new Promise((r) => setTimeout(r, 1000));
    return rssMiB(child.pid!);
  } finally {
    child.kill('SIGKILL');
    children.delete(child);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-footprint-'));
  try {
    say(`Node ${process.version}, flags ${SERVE_NODE_FLAGS.join(' ')}; ${STARTS} starts per row, median`);
    const rows: { label: string; rssMiB: number; heapUsedMiB: number; overBareMiB: number }[] = [];
    let bare = 0;
    for (const row of ROWS) {
      const samples = Array.from({ length: STARTS }, () => probe(row.modules));
      const rss = median(samples.map((s) => s.rssMiB));
      if (rows.length === 0) bare = rss;
      rows.push({ label: row.label, rssMiB: r1(rss), heapUsedMiB: r1(median(samples.map((s) => s.heapUsedMiB))), overBareMiB: r1(rss - bare) });
      say(`${row.label}: RSS ${r1(rss)} MiB (+${r1(rss - bare)} over bare)`);
    }
    const { certDir, caCert } = await benchCertificates(dir);
    const idles: number[] = [];
    for (let i = 0; i < STARTS; i++) idles.push(await serveIdle(dir, certDir, caCert));
    const idle = median(idles);
    rows.push({ label: 'serve --state, one agent, idle (the real service)', rssMiB: r1(idle), heapUsedMiB: NaN, overBareMiB: r1(idle - bare) });
    say(`serve --state idle: RSS ${r1(idle)} MiB (${r1((idle * 1048576) / 1e6)} MB)`);
    const libs = rows.find((r) => r.label.startsWith('all of'))!;
    const table = [
      '| process | RSS MiB | over bare Node MiB | JS heap used MiB |',
      '|---|---:|---:|---:|',
      ...rows.map((r) => `| ${r.label} | ${r.rssMiB} | ${r.overBareMiB} | ${Number.isNaN(r.heapUsedMiB) ? '-' : r.heapUsedMiB} |`),
    ].join('\n');
    const summary = `The libraries serve --state loads take ${libs.rssMiB} MiB (${r1((libs.rssMiB * 1048576) / 1e6)} MB) before any project code; the idle service is ${r1(idle)} MiB (${r1((idle * 1048576) / 1e6)} MB), so the project's own code, TLS context, caches and servers add ${r1(idle - libs.rssMiB)} MiB.`;
    process.stdout.write(`\n${table}\n\n${summary}\n`);
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench', 'results', 'footprint-latest.json'), `${JSON.stringify({ when: new Date().toISOString(), node: process.version, nodeFlags: SERVE_NODE_FLAGS, starts: STARTS, rows, summary }, null, 2)}\n`);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
