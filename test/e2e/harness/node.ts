// A real node for the e2e tests: containerd (Debian package), kubelet, kube-scheduler,
// kube-controller-manager and kube-proxy (built by test/node/build.sh from the control
// plane's pin) beside the control plane, so that what is tested runs in pods.
//
// What a node needs on this machine kind (see the README's node section):
//   - a node IP that is not loopback: an empty bridge (`kn0`) holds it;
//   - the API server listens on that address, with Services in their own range, routed on
//     kn0 so that ClusterIPs never leave the machine;
//   - pods on a CNI bridge (`kcni0`, hairpin, host-local IPAM);
//   - containerd with its own root/state/socket under the run's temp dir, restricted
//     oom_score_adj (no CAP_SYS_RESOURCE here), cgroupfs, and a locally built pause image.
// Kernel state is global: addresses, ports, cgroups and iptables chains are fixed, so one
// node cluster runs per machine, under a lock. Everything the run changes is recorded in the
// lock file before it is changed, and undone by one synchronous teardown: on stop, at exit
// (failed test, uncaught error, SIGINT/SIGTERM), and, after a SIGKILL, by the next run.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { probeHttp, type Component, type ComponentSpec, type ProbeResult } from './components.ts';
import type { ControlPlane } from './controlplane.ts';
import { kubectl } from './kubectl.ts';
import { elapsed, log } from './log.ts';
import { writeOciArchive } from './oci.ts';
import { binDir, repoRoot } from './paths.ts';
import { onExitCleanup } from './process.ts';

/** Fixed addresses of the node cluster (none collides with the API-server-only e2e defaults). */
export const NODE_NETWORK = {
  nodeName: 'komputer-e2e-node',
  /** The node's bridge; holds the node IP. */
  bridge: 'kn0',
  address: '10.210.0.1',
  apiPort: 6443,
  /** Pods' bridge and range. */
  cniBridge: 'kcni0',
  podCidr: '10.244.0.0/24',
  serviceCidr: '10.211.0.0/24',
  serviceIp: '10.211.0.1',
} as const;

/** Images every node has, built from test/node/probe (no registry here). */
export const NODE_IMAGES = {
  pause: 'komputer-e2e.local/pause:1',
  /** `probe sleep | env NAME... | alloc MIB | serve PORT` (test/node/probe/main.go). */
  probe: 'komputer-e2e.local/probe:1',
} as const;

const LOCK_FILE = '/run/komputer-e2e-node.lock';
const CNI_BIN_DIR = '/usr/lib/cni';
const NODE_BINARIES = ['kubelet', 'kube-scheduler', 'kube-controller-manager', 'kube-proxy', 'komputer-probe'] as const;
// Changed by the kubelet (kernel defaults it wants), the bridge plugin (forwarding) and
// kube-proxy (route_localnet, bridge netfilter): recorded before, restored after.
const SYSCTLS = [
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'net/ipv4/ip_forward',
  'net/ipv4/conf/all/route_localnet',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
];
// Paths outside the run's temp dir that the kubelet and containerd use with no setting.
const GLOBAL_PATHS = ['/var/lib/kubelet', '/var/log/containers', '/var/log/pods', '/var/lib/cni', '/run/containerd', '/var/run/netns'];

/** What a run changed, written to the lock file before the change (for a later run's teardown). */
interface HostState {
  pid: number;
  dir: string;
  sysctls: Record<string, string>;
  /** GLOBAL_PATHS that existed before the run (left in place; only what the run added goes). */
  existed: string[];
  netnsBefore: string[];
  containerdSocket: string;
}

export interface NodeTimings {
  readonly containerdMs: number;
  readonly imagesMs: number;
  readonly kubeletReadyMs: number;
  readonly controllersMs: number;
  readonly totalMs: number;
}

export interface Node {
  readonly name: string;
  readonly address: string;
  /** containerd's socket (for `ctr`/crictl-style access). */
  readonly containerdSocket: string;
  readonly timings: NodeTimings;
  component(name: 'containerd' | 'kubelet' | 'kube-scheduler' | 'kube-controller-manager' | 'kube-proxy'): Component;
  /** `ctr -n k8s.io ...` against this node's containerd. */
  ctr(args: readonly string[]): string;
  /** Imports an OCI/docker archive into the node's image store. */
  importImage(archive: string): void;
  /** Stops the node's components (newest first) and undoes every change to the machine. */
  stop(): Promise<void>;
}

function readSysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function run(command: string, args: readonly string[], options: { allowFailure?: boolean } = {}): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0 && options.allowFailure !== true) {
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status}): ${(result.stderr || result.stdout || String(result.error)).trim()}`);
  }
  return result.stdout ?? '';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/** Every kubepods cgroup directory, deepest first, over all mounted hierarchies. */
function kubepodsCgroups(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const entry of entries) walk(path.join(dir, entry));
    found.push(dir);
  };
  let hierarchies: string[] = [];
  try {
    hierarchies = readdirSync('/sys/fs/cgroup').map((h) => path.join('/sys/fs/cgroup', h));
  } catch {
    return [];
  }
  for (const hierarchy of ['/sys/fs/cgroup', ...hierarchies]) {
    const kubepods = path.join(hierarchy, 'kubepods');
    if (existsSync(kubepods)) walk(kubepods);
  }
  return found;
}

function pidsIn(cgroups: readonly string[]): number[] {
  const pids = new Set<number>();
  for (const dir of cgroups) {
    try {
      for (const line of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (line.trim() !== '') pids.add(Number(line));
    } catch {
      // gone already
    }
  }
  return [...pids];
}

/** containerd shims started for `socket` (they outlive containerd by design). */
function shimPids(socket: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline[0]?.includes('containerd-shim') === true && cmdline.includes(socket)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * From `iptables -t T -S` output: the rules that jump to a KUBE- chain (as `-D` arguments)
 * and the KUBE- chains themselves. Pure, so the teardown's parsing is tested on its own.
 */
export function kubeIptablesCleanup(rulesText: string): { deletes: string[][]; chains: string[] } {
  const deletes: string[][] = [];
  const chains: string[] = [];
  for (const rule of rulesText.split('\n')) {
    if (rule.startsWith('-N KUBE-')) chains.push(rule.slice(3).trim());
    // Jumps from any chain (built-in or not) to a KUBE- chain; quoted comments stay one word.
    if (rule.startsWith('-A ') && / -j KUBE-/.test(rule)) {
      deletes.push((rule.slice(3).match(/"[^"]*"|\S+/g) ?? []).map((a) => a.replace(/^"|"$/g, '')));
    }
  }
  return { deletes, chains };
}

/** Removes the KUBE-* chains (and the rules jumping to them) that kubelet and kube-proxy made. */
function removeKubeChains(): void {
  for (const tool of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat', 'mangle']) {
      const { deletes, chains } = kubeIptablesCleanup(run(tool, ['-w', '5', '-t', table, '-S'], { allowFailure: true }));
      for (const args of deletes) run(tool, ['-w', '5', '-t', table, '-D', ...args], { allowFailure: true });
      for (const chain of chains) run(tool, ['-w', '5', '-t', table, '-F', chain], { allowFailure: true });
      for (const chain of chains) run(tool, ['-w', '5', '-t', table, '-X', chain], { allowFailure: true });
    }
  }
}

/** Undoes everything a run recorded in `state`; synchronous so it also runs at process exit. */
export function teardownHost(state: HostState): void {
  const step = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      log(`node teardown: ${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  // 1. Pods' processes and the shims (the kubelet and containerd are stopped by then).
  step('kill pods', () => {
    if (state.containerdSocket === '') return;
    for (let round = 0; round < 20; round++) {
      const pids = [...pidsIn(kubepodsCgroups()), ...shimPids(state.containerdSocket)];
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      sleepSync(100);
    }
  });
  // 2. Mounts: the run's dir (rootfs, shm, secret volumes), network namespaces, shim state.
  step('unmount', () => {
    const netnsAdded = (existsSync('/var/run/netns') ? readdirSync('/var/run/netns') : []).filter((n) => !state.netnsBefore.includes(n)).map((n) => path.join('/var/run/netns', n));
    const mountPoints = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4] ?? '')
      .map((p) => p.replace(/\\040/g, ' '))
      .filter((p) => (state.dir !== '' && p.startsWith(`${state.dir}/`)) || p.startsWith('/run/containerd/') || netnsAdded.includes(p) || netnsAdded.includes(p.replace(/^\/run\//, '/var/run/')));
    for (const mountPoint of mountPoints.sort((a, b) => b.length - a.length)) run('umount', ['-l', mountPoint], { allowFailure: true });
    for (const netns of netnsAdded) rmSync(netns, { force: true });
  });
  // 3. Links (veths go with their namespaces, or here) and with them their routes.
  step('links', () => {
    if (linkExists(NODE_NETWORK.cniBridge)) {
      for (const line of run('ip', ['-o', 'link', 'show', 'master', NODE_NETWORK.cniBridge], { allowFailure: true }).split('\n')) {
        const name = /^\d+: ([^@:]+)/.exec(line)?.[1];
        if (name !== undefined) run('ip', ['link', 'del', name], { allowFailure: true });
      }
      run('ip', ['link', 'del', NODE_NETWORK.cniBridge], { allowFailure: true });
    }
    if (linkExists(NODE_NETWORK.bridge)) run('ip', ['link', 'del', NODE_NETWORK.bridge], { allowFailure: true });
  });
  step('iptables', () => {
    const proxy = path.join(binDir, 'kube-proxy');
    if (existsSync(proxy)) run(proxy, ['--cleanup'], { allowFailure: true });
    removeKubeChains();
  });
  step('cgroups', () => {
    for (let round = 0; round < 10; round++) {
      const left = kubepodsCgroups();
      if (left.length === 0) break;
      for (const dir of left) {
        try {
          rmdirSync(dir);
        } catch {
          // still busy: next round
        }
      }
      sleepSync(100);
    }
  });
  step('sysctls', () => {
    for (const [name, value] of Object.entries(state.sysctls)) {
      if (readSysctl(name) !== value) writeFileSync(`/proc/sys/${name}`, value);
    }
  });
  step('paths', () => {
    // What the kubelet and containerd create outside their settings (device plugins, log
    // links, CNI results, shim sockets): removed when the run created the parent.
    for (const p of ['/var/lib/kubelet/device-plugins', '/var/log/containers', '/var/lib/cni/results', '/run/containerd/s']) rmSync(p, { recursive: true, force: true });
    for (const p of GLOBAL_PATHS) if (!state.existed.includes(p)) rmSync(p, { recursive: true, force: true });
  });
}

function readLock(): HostState | undefined {
  try {
    return JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as HostState;
  } catch {
    return undefined;
  }
}

/**
 * Takes the machine-wide node lock (waiting up to `timeoutMs` for another run); a lock left
 * by a dead process is taken over after undoing what that run left behind.
 */
async function acquireLock(state: HostState, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let reported = 0;
  for (;;) {
    try {
      writeFileSync(LOCK_FILE, JSON.stringify(state), { flag: 'wx', mode: 0o600 });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readLock();
    if (holder !== undefined && holder.pid !== process.pid && isAlive(holder.pid)) {
      if (Date.now() > deadline) throw new Error(`another node cluster (pid ${holder.pid}, ${holder.dir}) holds ${LOCK_FILE}; one node cluster runs per machine`);
      if (Date.now() - reported > 10_000) {
        reported = Date.now();
        log(`waiting for the node cluster of pid ${holder.pid} to finish (one per machine)`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      continue;
    }
    recoverStaleNodeRun();
    rmSync(LOCK_FILE, { force: true });
  }
}

/**
 * If a node run died without its teardown (SIGKILL), undoes what it left and frees the lock.
 * startEnvironment does this itself; a test that records the machine's state first calls it.
 */
export function recoverStaleNodeRun(): void {
  const holder = readLock();
  if (holder === undefined || holder.pid === process.pid || isAlive(holder.pid)) return;
  log(`a node run (pid ${holder.pid}) died without its teardown: undoing what it left`);
  teardownHost(holder);
  if (holder.dir !== '') rmSync(holder.dir, { recursive: true, force: true });
  rmSync(LOCK_FILE, { force: true });
}

/** Whether a socket listens on TCP `port`, on any address (this network namespace). */
function listening(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    // Columns: sl local_address rem_address st ...; st 0A is LISTEN.
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(hex) === true && fields[3] === '0A') return true;
    }
  }
  return false;
}

/** Host preparation before the control plane: lock, recorded state, the node's bridge and routes. */
export interface NodeHost {
  readonly state: HostState;
  /** Records the run's temp dir (mounts and sockets live there) in the lock file. */
  useDir(dir: string): void;
  /** Tears down and releases the lock (idempotent). */
  release(): void;
}

export function missingNodeBinaries(): string[] {
  return NODE_BINARIES.filter((b) => !existsSync(path.join(binDir, b)));
}

/** Builds the node binaries when missing (test/node/build.sh prints its progress). */
export function ensureNodeBinaries(): void {
  const missing = missingNodeBinaries();
  if (missing.length === 0) return;
  log(`node binaries missing in ${binDir} (${missing.join(', ')}): building them (first time: several minutes)`);
  const started = Date.now();
  const result = spawnSync('bash', [path.join(repoRoot, 'test', 'node', 'build.sh')], { stdio: ['ignore', process.stderr, process.stderr], env: { ...process.env, KOMPUTER_BIN_DIR: binDir } });
  if (result.status !== 0) throw new Error(`test/node/build.sh failed (exit ${result.status})`);
  log(`node binaries built in ${elapsed(started)}`);
}

export function checkNodePrerequisites(): void {
  if (process.getuid?.() !== 0) throw new Error('a node needs root (network links, cgroups, mounts)');
  const missing = ['containerd', 'ctr', 'runc', 'iptables', 'ip', 'umount'].filter((tool) => run('sh', ['-c', `command -v ${tool}`], { allowFailure: true }).trim() === '');
  if (!existsSync(path.join(CNI_BIN_DIR, 'bridge'))) missing.push(`${CNI_BIN_DIR}/bridge`);
  if (missing.length > 0) throw new Error(`node prerequisites missing: ${missing.join(', ')}; run \`bash test/node/packages.sh\` (Debian: containerd runc containernetworking-plugins iptables)`);
}

/**
 * Lock, recorded state, the node's bridge and the service route: before the control plane,
 * whose API server listens on the node address. `useDir` then names the run's temp dir.
 */
export async function prepareNodeHost(options: { lockTimeoutMs?: number } = {}): Promise<NodeHost> {
  checkNodePrerequisites();
  ensureNodeBinaries();
  const sysctls: Record<string, string> = {};
  for (const name of SYSCTLS) {
    const value = readSysctl(name);
    if (value !== undefined) sysctls[name] = value;
  }
  const state: HostState = {
    pid: process.pid,
    dir: '',
    sysctls,
    existed: GLOBAL_PATHS.filter((p) => existsSync(p)),
    netnsBefore: existsSync('/var/run/netns') ? readdirSync('/var/run/netns') : [],
    containerdSocket: '',
  };
  await acquireLock(state, options.lockTimeoutMs ?? 20 * 60_000);
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    teardownHost(state);
    rmSync(LOCK_FILE, { force: true });
  };
  // Runs at exit after the children are dead (process.ts), whatever ended the run.
  const unregister = onExitCleanup(release);
  try {
    // A run that held the lock before may still be stopping its API server, bound to the
    // node address's port (older harness versions released the lock first).
    const portDeadline = Date.now() + 60_000;
    for (let waited = false; listening(NODE_NETWORK.apiPort); waited = true) {
      if (!waited) log(`port ${NODE_NETWORK.apiPort} is still taken (a previous run's API server stopping): waiting`);
      if (Date.now() > portDeadline) throw new Error(`port ${NODE_NETWORK.apiPort} still taken after 60 s: another API server listens there`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const { bridge, address, serviceCidr } = NODE_NETWORK;
    // The kernel here has no dummy links: an empty bridge holds the node IP just as well.
    if (linkExists(bridge)) run('ip', ['link', 'del', bridge]);
    run('ip', ['link', 'add', bridge, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${address}/32`, 'dev', bridge]);
    run('ip', ['link', 'set', bridge, 'up']);
    // ClusterIPs stay on the machine (the default route would carry them off it).
    run('ip', ['route', 'replace', serviceCidr, 'dev', bridge]);
  } catch (error) {
    unregister();
    release();
    throw error;
  }
  return {
    state,
    useDir(dir) {
      state.dir = dir;
      state.containerdSocket = path.join(dir, 'containerd', 'containerd.sock');
      writeFileSync(LOCK_FILE, JSON.stringify(state), { mode: 0o600 });
    },
    release: () => {
      unregister();
      release();
    },
  };
}

function containerdConfig(dir: string, socket: string): string {
  const q = JSON.stringify;
  return `version = 2
root = ${q(path.join(dir, 'containerd', 'root'))}
state = ${q(path.join(dir, 'containerd', 'state'))}
# Plugins that would use fixed paths or are of no use here.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = ${q(socket)}

[ttrpc]
  address = ${q(`${socket}.ttrpc`)}

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(NODE_IMAGES.pause)}
  # CAP_SYS_RESOURCE is not in this machine's bounding set: runc cannot lower oom_score_adj.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Network namespaces under the state dir, not the machine's /var/run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(CNI_BIN_DIR)}
    conf_dir = ${q(path.join(dir, 'cni', 'net.d'))}
`;
}

function cniConfig(dir: string): string {
  return JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: 'komputer-e2e',
      plugins: [
        {
          type: 'bridge',
          bridge: NODE_NETWORK.cniBridge,
          isGateway: true,
          // A pod reaching itself through its ClusterIP; incompatible with promiscMode.
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: NODE_NETWORK.podCidr }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: path.join(dir, 'cni', 'ipam') },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(dir: string, socket: string): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: NODE_NETWORK.address,
    port: 10250,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    // The API server reaches the kubelet (logs, exec) without a client certificate here.
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false }, x509: {} },
    authorization: { mode: 'AlwaysAllow' },
    // cgroup v1 (hybrid) machine, no systemd: 1.37 needs the explicit opt-in.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${socket}`,
    // A test machine runs full: only evict at the very end.
    evictionHard: { 'memory.available': '10Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    // Imported images cannot be pulled again: never collect them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    volumePluginDir: path.join(dir, 'kubelet', 'volume-plugins'),
    podLogsDir: path.join(dir, 'pod-logs'),
    protectKernelDefaults: false,
    serializeImagePulls: false,
    resolvConf: '',
    fileCheckFrequency: '1s',
    nodeStatusUpdateFrequency: '2s',
    syncFrequency: '5s',
    podCIDR: NODE_NETWORK.podCidr,
  });
}

/** Starts the node's components against `controlPlane` (started with NODE_NETWORK's flags). */
export async function startNode(controlPlane: ControlPlane, host: NodeHost, options: { kubeProxy?: boolean; readyTimeoutMs?: number } = {}): Promise<Node> {
  const started = Date.now();
  const deadline = started + (options.readyTimeoutMs ?? 120_000);
  const dir = controlPlane.dir;
  const group = controlPlane.components;
  host.useDir(dir);
  const socket = host.state.containerdSocket;
  for (const sub of ['containerd', 'cni/net.d', 'kubelet/volume-plugins', 'images', 'pod-logs']) mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o700 });
  writeFileSync(path.join(dir, 'containerd', 'config.toml'), containerdConfig(dir, socket));
  writeFileSync(path.join(dir, 'cni', 'net.d', '10-komputer-e2e.conflist'), cniConfig(dir));
  writeFileSync(path.join(dir, 'kubelet.yaml'), kubeletConfig(dir, socket));
  const ctr = (args: readonly string[]): string => run('ctr', ['--address', socket, '-n', 'k8s.io', ...args]);
  const kube = (name: string): string => path.join(binDir, name);
  const kubeconfig = controlPlane.kubeconfig;
  const local = (url: string): (() => Promise<ProbeResult>) => () => probeHttp(url, { insecure: true });

  const spec = (s: ComponentSpec): ComponentSpec => s;
  const containerd = group.add(
    spec({
      name: 'containerd',
      command: 'containerd',
      args: ['--config', path.join(dir, 'containerd', 'config.toml'), '--log-level', 'warn'],
      ready: {
        what: 'containerd',
        probe: async () => {
          const r = spawnSync('ctr', ['--address', socket, 'version'], { encoding: 'utf8', timeout: 5_000 });
          return { ok: r.status === 0, detail: (r.stderr || r.stdout || '').trim() };
        },
      },
    }),
  );
  const t0 = Date.now();
  await group.start(containerd, deadline);
  const containerdMs = Date.now() - t0;

  const t1 = Date.now();
  const probe = path.join(binDir, 'komputer-probe');
  for (const [name, image] of [
    ['pause', { name: NODE_IMAGES.pause, files: { '/probe': probe }, entrypoint: ['/probe', 'sleep'] }],
    ['probe', { name: NODE_IMAGES.probe, files: { '/probe': probe }, entrypoint: ['/probe'], cmd: ['sleep'] }],
  ] as const) {
    const archive = path.join(dir, 'images', `${name}.tar`);
    writeOciArchive(image, archive);
    ctr(['images', 'import', archive]);
  }
  const listed = ctr(['images', 'ls', '-q']);
  for (const image of Object.values(NODE_IMAGES)) if (!listed.split('\n').includes(image)) throw new Error(`image ${image} not in containerd after import; it has: ${listed.trim()}`);
  const imagesMs = Date.now() - t1;

  const t2 = Date.now();
  const kubelet = group.add({
    name: 'kubelet',
    command: kube('kubelet'),
    args: [
      `--config=${path.join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${path.join(dir, 'kubelet')}`,
      `--cert-dir=${path.join(dir, 'kubelet', 'pki')}`,
      `--hostname-override=${NODE_NETWORK.nodeName}`,
      `--node-ip=${NODE_NETWORK.address}`,
      '--v=1',
    ],
    ready: {
      what: 'kubelet: node Ready',
      probe: async () => {
        const health = await probeHttp('http://127.0.0.1:10248/healthz');
        if (!health.ok) return health;
        const r = await kubectl(kubeconfig, ['get', 'node', NODE_NETWORK.nodeName, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].message}'], { allowFailure: true });
        return { ok: r.code === 0 && r.stdout.startsWith('True'), detail: r.stdout.trim() || r.stderr.trim() };
      },
    },
  });
  await group.start(kubelet, deadline);
  const kubeletReadyMs = Date.now() - t2;

  const t3 = Date.now();
  const scheduler = group.add({
    name: 'kube-scheduler',
    command: kube('kube-scheduler'),
    args: [`--kubeconfig=${kubeconfig}`, `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`, '--bind-address=127.0.0.1', '--secure-port=10259', '--leader-elect=false'],
    ready: { what: 'kube-scheduler /healthz', probe: local('https://127.0.0.1:10259/healthz') },
  });
  const controllerManager = group.add({
    name: 'kube-controller-manager',
    command: kube('kube-controller-manager'),
    args: [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--secure-port=10257',
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${controlPlane.pki.serviceAccountKeyFile}`,
      // Published as kube-root-ca.crt in every namespace (projected service-account volumes).
      `--root-ca-file=${controlPlane.pki.caFile}`,
      `--service-cluster-ip-range=${NODE_NETWORK.serviceCidr}`,
      '--allocate-node-cidrs=false',
    ],
    ready: { what: 'kube-controller-manager /healthz', probe: local('https://127.0.0.1:10257/healthz') },
  });
  // Both at once: they do not depend on each other.
  scheduler.spawn();
  controllerManager.spawn();
  await scheduler.waitReady(deadline, [containerd, kubelet, controllerManager]);
  await controllerManager.waitReady(deadline, [containerd, kubelet, scheduler]);
  if (options.kubeProxy !== false) {
    const proxy = group.add({
      name: 'kube-proxy',
      command: kube('kube-proxy'),
      args: [
        `--kubeconfig=${kubeconfig}`,
        `--hostname-override=${NODE_NETWORK.nodeName}`,
        '--proxy-mode=iptables',
        `--cluster-cidr=${NODE_NETWORK.podCidr}`,
        '--metrics-bind-address=127.0.0.1:10249',
        '--healthz-bind-address=127.0.0.1:10256',
        // Leave the machine's conntrack settings alone.
        '--conntrack-max-per-core=0',
        '--conntrack-tcp-timeout-established=0',
        '--conntrack-tcp-timeout-close-wait=0',
      ],
      ready: { what: 'kube-proxy /livez', probe: () => probeHttp('http://127.0.0.1:10256/livez') },
    });
    await group.start(proxy, deadline);
  }
  // The default ServiceAccount in `default` marks a controller-manager that does its job.
  await (async () => {
    for (;;) {
      const r = await kubectl(kubeconfig, ['get', 'serviceaccount', 'default', '-n', 'default', '-o', 'name'], { allowFailure: true });
      if (r.code === 0) return;
      if (Date.now() > deadline) throw new Error(`no default ServiceAccount: ${r.stderr.trim()}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  const controllersMs = Date.now() - t3;
  const timings: NodeTimings = { containerdMs, imagesMs, kubeletReadyMs, controllersMs, totalMs: Date.now() - started };
  log(
    `node ${NODE_NETWORK.nodeName} ready in ${elapsed(started)} (containerd ${(containerdMs / 1000).toFixed(1)}s, images ${(imagesMs / 1000).toFixed(1)}s, ` +
      `kubelet Ready ${(kubeletReadyMs / 1000).toFixed(1)}s, scheduler/controller-manager${options.kubeProxy === false ? '' : '/kube-proxy'} ${(controllersMs / 1000).toFixed(1)}s)`,
  );
  let stopped = false;
  return {
    name: NODE_NETWORK.nodeName,
    address: NODE_NETWORK.address,
    containerdSocket: socket,
    timings,
    component: (name) => group.get(name),
    ctr,
    importImage: (archive) => void ctr(['images', 'import', archive]),
    async stop() {
      if (stopped) return;
      stopped = true;
      const t = Date.now();
      for (const name of ['kube-proxy', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'containerd']) {
        const c = group.components.find((x) => x.name === name);
        await c?.stop(5_000);
      }
      host.release();
      log(`node stopped and machine restored in ${elapsed(t)}`);
    },
  };
}

/** For a failed start: stop whatever node components run, then undo the machine's changes. */
export async function abortNode(controlPlane: ControlPlane | undefined, host: NodeHost): Promise<void> {
  for (const name of ['kube-proxy', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'containerd']) {
    const c = controlPlane?.components.components.find((x) => x.name === name);
    await c?.stop(5_000).catch(() => undefined);
  }
  host.release();
}
