// A real control plane for the e2e tests: etcd and kube-apiserver (built from Go modules by
// test/controlplane/build.sh) on free loopback ports, in a private temp dir.
// Only the API server runs: no controller-manager, no scheduler, no kubelet. Pods are
// stored but never run; namespaces never finish terminating; no default ServiceAccount
// appears in new namespaces (createNamespace in index.ts makes one).

import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateCertificates } from '../../../src/certs/generate.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { elapsed, log } from './log.ts';
import { bin, binDir, repoRoot } from './paths.ts';
import { freePort } from './ports.ts';
import { ComponentGroup, probeHttp, waitUntil } from './components.ts';
import { onExitCleanup, removeTree, type ExitStatus, type ManagedProcess } from './process.ts';

export { probeHttp, waitUntil, type ProbeResult } from './components.ts';

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
  /** etcd and kube-apiserver as components; a node adds its own after them. */
  readonly components: ComponentGroup;
  /** Key files: the API server's CA (PEM file) and the service-account signing key. */
  readonly pki: { readonly caFile: string; readonly serviceAccountKeyFile: string };
  /** Stops every component, newest first (SIGTERM, then SIGKILL) and removes the temp dir unless kept. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
  /** Last lines of every component's output. */
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
  /**
   * For a cluster with a node: the API server listens on and advertises `address` (a node
   * address, not loopback: 1.37 refuses a loopback advertise address for the endpoint
   * reconciler, which a node's `kubernetes` Service needs), on a fixed `port`, with Services
   * in `serviceCidr` (first address: `serviceIp`).
   */
  readonly node?: { readonly address: string; readonly port: number; readonly serviceCidr: string; readonly serviceIp: string };
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

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  await ensureBinaries();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'komputer-e2e-'));
  await chmod(dir, 0o700);
  const unregister = onExitCleanup(() => removeTree(dir));
  const started = Date.now();
  const deadline = started + (options.readyTimeoutMs ?? 90_000);
  const node = options.node;
  const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), node?.port ?? (await freePort())];
  const apiHost = node?.address ?? '127.0.0.1';
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
  const server = `https://${apiHost}:${apiPort}`;
  log(`starting control plane in ${dir} (etcd ${etcdPort}/${etcdPeerPort}, kube-apiserver ${apiHost}:${apiPort})`);

  const components = new ComponentGroup(dir);
  const etcdComponent = components.add({
    name: 'etcd',
    command: bin('etcd'),
    ready: {
      what: 'etcd /health',
      probe: () => probeHttp(`${etcdUrl}/health`).then((r) => ({ ok: r.ok && r.detail.includes('"health":"true"'), detail: r.detail })),
    },
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
  const etcd = etcdComponent.spawn();

  const fail = async (error: unknown): Promise<never> => {
    log(`control plane failed to start: ${error instanceof Error ? error.message : String(error)}`);
    // A process that died already printed its own output (see ManagedProcess).
    for (const c of components.components) if (c.isRunning) log(`--- ${c.name} (${c.logFile}), last lines ---\n${c.tail(60)}`);
    for (const c of [...components.components].reverse()) await c.stop(5_000);
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
      ipAddresses: ['127.0.0.1', '10.0.0.1', ...(node === undefined ? [] : [node.address, node.serviceIp])],
      caCommonName: 'komputer-e2e-apiserver-ca',
    });
    await writeFile(path.join(pki, 'apiserver.crt'), certs.cert, { mode: 0o600 });
    await writeFile(path.join(pki, 'apiserver.key'), certs.key, { mode: 0o600 });
    await writeFile(path.join(pki, 'ca.crt'), certs.caCert, { mode: 0o600 });
    const sa = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    await writeFile(path.join(pki, 'sa.pub'), sa.publicKey, { mode: 0o600 });
    await writeFile(path.join(pki, 'sa.key'), sa.privateKey, { mode: 0o600 });
    const adminToken = randomBytes(24).toString('hex');
    await writeFile(path.join(pki, 'tokens.csv'), `${adminToken},admin,admin,"system:masters"\n`, { mode: 0o600 });

    await etcdComponent.waitReady(deadline);

    const apiserverComponent = components.add({
      name: 'kube-apiserver',
      command: bin('kube-apiserver'),
      ready: { what: 'kube-apiserver /readyz', probe: () => probeHttp(`${server}/readyz`, { ca: certs.caCert, token: adminToken }) },
      args: [
        `--etcd-servers=${etcdUrl}`,
        `--advertise-address=${apiHost}`,
        `--bind-address=${apiHost}`,
        `--secure-port=${apiPort}`,
        `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${path.join(pki, 'apiserver.crt')}`,
        `--tls-private-key-file=${path.join(pki, 'apiserver.key')}`,
        '--authorization-mode=RBAC',
        `--token-auth-file=${path.join(pki, 'tokens.csv')}`,
        `--service-account-issuer=${server}/`,
        `--service-account-key-file=${path.join(pki, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(pki, 'sa.key')}`,
        `--service-cluster-ip-range=${node?.serviceCidr ?? '10.0.0.0/24'}`,
        '--allow-privileged=true',
        // 1.37 refuses a loopback advertise address for the endpoint reconciler; without a
        // node nothing needs the `kubernetes` Service's endpoints.
        ...(node === undefined ? ['--endpoint-reconciler-type=none'] : ['--kubelet-preferred-address-types=InternalIP']),
        ...(options.apiserverArgs ?? []),
      ],
    });
    await components.start(apiserverComponent, deadline);
    const startupMs = Date.now() - started;
    log(`control plane ready in ${elapsed(started)} (${server})`);

    const kubeconfig = await writeKubeconfig(path.join(dir, 'admin.kubeconfig'), {
      server,
      caCert: certs.caCert,
      token: adminToken,
      user: 'admin',
    });
    const etcdProcess = etcd;
    const stopApiServer = async (stopOptions: { signal?: 'SIGTERM' | 'SIGKILL'; graceMs?: number } = {}): Promise<ExitStatus> => {
      const current = apiserverComponent.process;
      if (stopOptions.signal === 'SIGKILL') {
        current.killSync('SIGKILL');
        return current.exited;
      }
      return current.stop(stopOptions.graceMs);
    };
    const startApiServer = async (startOptions: { extraArgs?: readonly string[]; readyTimeoutMs?: number } = {}): Promise<number> => {
      if (apiserverComponent.isRunning) throw new Error('kube-apiserver is still running: stopApiServer() first');
      // Same flags, port, certificates and etcd; output appended to the same log.
      return apiserverComponent.start({
        deadline: Date.now() + (startOptions.readyTimeoutMs ?? 60_000),
        extraArgs: startOptions.extraArgs ?? [],
        alsoWatch: [etcdComponent],
      });
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
        return apiserverComponent.process;
      },
      startupMs,
      components,
      pki: { caFile: path.join(pki, 'ca.crt'), serviceAccountKeyFile: path.join(pki, 'sa.key') },
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
        await components.stop();
        unregister();
        if (stopOptions.keepDir === true) log(`control plane stopped in ${elapsed(t0)}; kept ${dir}`);
        else {
          removeTree(dir);
          log(`control plane stopped in ${elapsed(t0)}`);
        }
      },
      tails(lines = 40) {
        return components.tails(lines);
      },
    };
  } catch (error) {
    return fail(error);
  }
}
