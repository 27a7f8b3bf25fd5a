// A real control plane for the e2e tests: etcd and kube-apiserver (built from Go modules by
// test/controlplane/build.sh) on free loopback ports, in a private temp dir.
// Only the API server runs: no controller-manager, no scheduler, no kubelet. Pods are
// stored but never run; namespaces never finish terminating; no default ServiceAccount
// appears in new namespaces (createNamespace in index.ts makes one).

import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { generateCertificates } from '../../../src/certs/generate.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { elapsed, log } from './log.ts';
import { bin, binDir, repoRoot } from './paths.ts';
import { freePort } from './ports.ts';
import { onExitCleanup, removeTree, startProcess, type ExitStatus, type ManagedProcess } from './process.ts';

export interface ControlPlane {
  /** Private temp dir (mode 0700) holding data, certificates, keys and logs. */
  readonly dir: string;
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  readonly caCert: string;
  /** Bearer token of `admin` (group system:masters). */
  readonly adminToken: string;
  /** Admin kubeconfig. */
  readonly kubeconfig: string;
  readonly etcdUrl: string;
  readonly etcd: ManagedProcess;
  readonly apiserver: ManagedProcess;
  /** How long start-up took, from spawning etcd to /readyz = 200. */
  readonly startupMs: number;
  /** Stops both processes (SIGTERM, then SIGKILL) and removes the temp dir unless kept. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
  /** Last lines of both processes' output. */
  tails(lines?: number): string;
  /**
   * Fault injection: stops kube-apiserver (SIGTERM, or SIGKILL for a crash) while etcd and
   * everything else keep running. `apiserver` is the stopped process until startApiServer().
   */
  stopApiServer(options?: { signal?: 'SIGTERM' | 'SIGKILL'; graceMs?: number }): Promise<ExitStatus>;
  /**
   * Starts kube-apiserver again with the same flags, port, certificates and etcd (plus
   * `extraArgs` for this run only, e.g. `--watch-cache=false`) and waits for /readyz.
   * Returns how long that took (ms). Its output is appended to the same log file.
   */
  startApiServer(options?: { extraArgs?: readonly string[]; readyTimeoutMs?: number }): Promise<number>;
  /**
   * stopApiServer, `downMs` of outage, startApiServer. With open watches kube-apiserver may
   * not exit on SIGTERM for a long time: after `graceMs` (default 10 s) it gets SIGKILL.
   */
  restartApiServer(options?: { signal?: 'SIGTERM' | 'SIGKILL'; graceMs?: number; downMs?: number; extraArgs?: readonly string[] }): Promise<ApiServerRestart>;
}

export interface ApiServerRestart {
  /** From the stop request until /readyz answered 200 again. */
  readonly outageMs: number;
  /** From spawning the new process until /readyz answered 200. */
  readonly startMs: number;
}

export interface ControlPlaneOptions {
  /** Budget for etcd + API server readiness (default 90 s). */
  readonly readyTimeoutMs?: number;
  /** Extra kube-apiserver flags. */
  readonly apiserverArgs?: readonly string[];
}

const BINARIES = ['kube-apiserver', 'kubectl', 'etcd'] as const;

/**
 * Makes sure bin/ has the control-plane binaries: runs test/controlplane/build.sh (with its
 * progress output) when one is missing. The script itself skips work when up to date.
 */
export async function ensureBinaries(): Promise<void> {
  const missing = BINARIES.filter((name) => !existsSync(bin(name)));
  if (missing.length === 0) return;
  log(`control-plane binaries missing in ${binDir} (${missing.join(', ')}): building them (first time: several minutes)`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', [path.join(repoRoot, 'test', 'controlplane', 'build.sh')], {
      cwd: repoRoot,
      // Progress on our stderr: stdout of a test file belongs to the test runner.
      stdio: ['ignore', process.stderr, process.stderr],
      env: { ...process.env, KOMPUTER_BIN_DIR: binDir },
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`test/controlplane/build.sh failed (exit ${code})`))));
  });
  log(`control plane built in ${elapsed(started)}`);
}

interface ProbeResult {
  readonly ok: boolean;
  readonly detail: string;
}

function probeHttp(url: string, options: { ca?: string; token?: string } = {}): Promise<ProbeResult> {
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
        ? httpsRequest(target, { headers, ca: options.ca, timeout: 3_000 }, callback)
        : httpRequest(target, { headers, timeout: 3_000 }, callback);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (error) => resolve({ ok: false, detail: error.message }));
    req.end();
  });
}

/** Polls `probe` until ok, printing progress every 5 s; fails early if `process` exits. */
export async function waitUntil(
  what: string,
  probe: () => Promise<ProbeResult>,
  options: { deadline: number; processes: readonly ManagedProcess[]; intervalMs?: number },
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
      log(`${what}: ready after ${elapsed(started)}`);
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

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  await ensureBinaries();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'komputer-e2e-'));
  await chmod(dir, 0o700);
  const unregister = onExitCleanup(() => removeTree(dir));
  const started = Date.now();
  const deadline = started + (options.readyTimeoutMs ?? 90_000);
  const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
  const server = `https://127.0.0.1:${apiPort}`;
  log(`starting control plane in ${dir} (etcd ${etcdPort}/${etcdPeerPort}, kube-apiserver ${apiPort})`);

  const etcd = startProcess({
    name: 'etcd',
    command: bin('etcd'),
    logFile: path.join(dir, 'etcd.log'),
    cwd: dir,
    args: [
      '--name=default',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
  });
  const processes: ManagedProcess[] = [etcd];
  let apiserver: ManagedProcess | undefined;

  const fail = async (error: unknown): Promise<never> => {
    log(`control plane failed to start: ${error instanceof Error ? error.message : String(error)}`);
    // A process that died already printed its own output (see ManagedProcess).
    for (const p of processes) if (p.isRunning) log(`--- ${p.name} (${p.logFile}), last lines ---\n${p.tail(60)}`);
    for (const p of [...processes].reverse()) await p.stop(5_000);
    unregister();
    removeTree(dir);
    throw error;
  };

  try {
    // Keys and certificates while etcd starts.
    const pki = path.join(dir, 'pki');
    await mkdir(pki, { mode: 0o700 });
    const certs = await generateCertificates({
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ipAddresses: ['127.0.0.1', '10.0.0.1'],
      caCommonName: 'komputer-e2e-apiserver-ca',
    });
    await writeFile(path.join(pki, 'apiserver.crt'), certs.cert, { mode: 0o600 });
    await writeFile(path.join(pki, 'apiserver.key'), certs.key, { mode: 0o600 });
    const sa = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    await writeFile(path.join(pki, 'sa.pub'), sa.publicKey, { mode: 0o600 });
    await writeFile(path.join(pki, 'sa.key'), sa.privateKey, { mode: 0o600 });
    const adminToken = randomBytes(24).toString('hex');
    await writeFile(path.join(pki, 'tokens.csv'), `${adminToken},admin,admin,"system:masters"\n`, { mode: 0o600 });

    await waitUntil('etcd /health', () => probeHttp(`${etcdUrl}/health`).then((r) => ({ ok: r.ok && r.detail.includes('"health":"true"'), detail: r.detail })), {
      deadline,
      processes,
    });

    const spawnApiServer = (extraArgs: readonly string[] = []): ManagedProcess => startProcess({
      name: 'kube-apiserver',
      command: bin('kube-apiserver'),
      logFile: path.join(dir, 'kube-apiserver.log'),
      cwd: dir,
      args: [
        `--etcd-servers=${etcdUrl}`,
        '--advertise-address=127.0.0.1',
        '--bind-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${path.join(pki, 'apiserver.crt')}`,
        `--tls-private-key-file=${path.join(pki, 'apiserver.key')}`,
        '--authorization-mode=RBAC',
        `--token-auth-file=${path.join(pki, 'tokens.csv')}`,
        `--service-account-issuer=${server}/`,
        `--service-account-key-file=${path.join(pki, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(pki, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        // 1.37 refuses a loopback advertise address for the endpoint reconciler, and
        // nothing here needs the `kubernetes` Service's endpoints.
        '--endpoint-reconciler-type=none',
        ...(options.apiserverArgs ?? []),
        ...extraArgs,
      ],
    });
    apiserver = spawnApiServer();
    processes.push(apiserver);

    await waitUntil('kube-apiserver /readyz', () => probeHttp(`${server}/readyz`, { ca: certs.caCert, token: adminToken }), {
      deadline,
      processes,
    });
    const startupMs = Date.now() - started;
    log(`control plane ready in ${elapsed(started)} (${server})`);

    const kubeconfig = await writeKubeconfig(path.join(dir, 'admin.kubeconfig'), {
      server,
      caCert: certs.caCert,
      token: adminToken,
      user: 'admin',
    });
    const etcdProcess = etcd;
    // Replaced by startApiServer() (fault tests restart the API server).
    let apiserverProcess = apiserver;
    const stopApiServer = async (stopOptions: { signal?: 'SIGTERM' | 'SIGKILL'; graceMs?: number } = {}): Promise<ExitStatus> => {
      if (stopOptions.signal === 'SIGKILL') {
        apiserverProcess.killSync('SIGKILL');
        return apiserverProcess.exited;
      }
      return apiserverProcess.stop(stopOptions.graceMs);
    };
    const startApiServer = async (startOptions: { extraArgs?: readonly string[]; readyTimeoutMs?: number } = {}): Promise<number> => {
      if (apiserverProcess.isRunning) throw new Error('kube-apiserver is still running: stopApiServer() first');
      const t0 = Date.now();
      const next = spawnApiServer(startOptions.extraArgs ?? []);
      apiserverProcess = next;
      await waitUntil('kube-apiserver /readyz (restarted)', () => probeHttp(`${server}/readyz`, { ca: certs.caCert, token: adminToken }), {
        deadline: t0 + (startOptions.readyTimeoutMs ?? 60_000),
        processes: [etcdProcess, next],
      });
      return Date.now() - t0;
    };
    return {
      dir,
      server,
      caCert: certs.caCert,
      adminToken,
      kubeconfig,
      etcdUrl,
      etcd: etcdProcess,
      get apiserver() {
        return apiserverProcess;
      },
      startupMs,
      stopApiServer,
      startApiServer,
      async restartApiServer(restartOptions = {}) {
        const t0 = Date.now();
        await stopApiServer({
          ...(restartOptions.signal === undefined ? {} : { signal: restartOptions.signal }),
          ...(restartOptions.graceMs === undefined ? {} : { graceMs: restartOptions.graceMs }),
        });
        if ((restartOptions.downMs ?? 0) > 0) await new Promise((resolve) => setTimeout(resolve, restartOptions.downMs));
        const startMs = await startApiServer(restartOptions.extraArgs === undefined ? {} : { extraArgs: restartOptions.extraArgs });
        return { outageMs: Date.now() - t0, startMs };
      },
      async stop(stopOptions = {}) {
        const t0 = Date.now();
        await apiserverProcess.stop();
        await etcdProcess.stop();
        unregister();
        if (stopOptions.keepDir === true) log(`control plane stopped in ${elapsed(t0)}; kept ${dir}`);
        else {
          removeTree(dir);
          log(`control plane stopped in ${elapsed(t0)}`);
        }
      },
      tails(lines = 40) {
        return [etcdProcess, apiserverProcess].map((p) => `--- ${p.name} (${p.logFile}) ---\n${p.tail(lines)}`).join('\n');
      },
    };
  } catch (error) {
    return fail(error);
  }
}
