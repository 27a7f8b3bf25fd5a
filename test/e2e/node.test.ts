// The node itself, before anything of ours runs on it: pods from locally imported images
// run and get an IP, the kubelet resolves a secretKeyRef, an OOM kill under a small limit is
// reported, a Service reaches its pod (kube-proxy), and the teardown leaves the machine as
// it found it. If the node cannot start, every test here fails with the reason.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { NODE_IMAGES, NODE_NETWORK, startEnvironment, stopEnvironment, type Environment } from './harness/index.ts';
import { recoverStaleNodeRun } from './harness/node.ts';

const NS = 'node-e2e';
const CANARY = 'node-secret-canary-7f3a9c';
let env: Environment;

const sysctlNames = ['kernel/panic', 'kernel/panic_on_oops', 'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes', 'vm/overcommit_memory', 'vm/panic_on_oom', 'net/ipv4/ip_forward', 'net/ipv4/conf/all/route_localnet'];
const readSysctls = (): Record<string, string> => Object.fromEntries(sysctlNames.map((n) => [n, readFileSync(`/proc/sys/${n}`, 'utf8').trim()]));
const kubeChains = (): string[] =>
  ['filter', 'nat', 'mangle'].flatMap((table) => (spawnSync('iptables', ['-w', '5', '-t', table, '-S'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((l) => /^-N KUBE-/.test(l)));
// The machine before this run, after undoing what a killed earlier run may have left.
recoverStaleNodeRun();
const sysctlsBefore = readSysctls();
const chainsBefore = kubeChains();

interface PodStatus {
  phase?: string;
  podIP?: string;
  containerStatuses?: { state?: Record<string, { reason?: string; message?: string; exitCode?: number }>; lastState?: Record<string, { reason?: string }> }[];
}

async function podStatus(name: string): Promise<PodStatus> {
  const r = await env.kubectl(['get', 'pod', name, '-n', NS, '-o', 'jsonpath={.status}'], { allowFailure: true });
  return r.code === 0 && r.stdout !== '' ? (JSON.parse(r.stdout) as PodStatus) : {};
}

async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (!ok(last)) {
    if (Date.now() > deadline) {
      const events = await env.kubectl(['get', 'events', '-n', NS, '-o', 'custom-columns=OBJ:.involvedObject.name,REASON:.reason,MSG:.message'], { allowFailure: true });
      assert.fail(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms\nevents:\n${events.stdout}`);
    }
    await new Promise((r) => setTimeout(r, 250));
    last = await probe();
  }
  return last;
}

function pod(name: string, args: readonly string[], extra: { env?: object[]; limits?: Record<string, string>; labels?: Record<string, string> } = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: extra.labels ?? {} },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: NODE_IMAGES.probe,
          imagePullPolicy: 'Never',
          args,
          terminationMessagePolicy: 'FallbackToLogsOnError',
          ...(extra.env === undefined ? {} : { env: extra.env }),
          ...(extra.limits === undefined ? {} : { resources: { limits: extra.limits, requests: extra.limits } }),
        },
      ],
    },
  };
}

before(async () => {
  env = await startEnvironment({ node: true, service: false });
  await env.createNamespace(NS);
});

after(async () => {
  await stopEnvironment();
  // The machine as it was: links, cgroups, iptables chains, sysctls.
  assert.equal(existsSync(`/sys/class/net/${NODE_NETWORK.bridge}`), false, 'node bridge removed');
  assert.equal(existsSync(`/sys/class/net/${NODE_NETWORK.cniBridge}`), false, 'CNI bridge removed');
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) assert.equal(existsSync(`/sys/fs/cgroup/${hierarchy}/kubepods`), false, `kubepods cgroup in ${hierarchy} removed`);
  assert.deepEqual(kubeChains(), chainsBefore, 'KUBE-* chains removed');
  assert.deepEqual(readSysctls(), sysctlsBefore, 'sysctls restored');
  assert.equal(existsSync('/var/lib/kubelet/device-plugins'), false);
  assert.equal(existsSync('/var/lib/cni/results'), false);
});

test('the node is Ready with the pinned kubelet and reports its own address', async () => {
  const node = JSON.parse((await env.kubectl(['get', 'node', NODE_NETWORK.nodeName, '-o', 'json'])).stdout) as {
    status: { addresses: { type: string; address: string }[]; nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string } };
  };
  assert.deepEqual(node.status.addresses.find((a) => a.type === 'InternalIP')?.address, NODE_NETWORK.address);
  const pinned = /^K8S_VERSION=(\S+)/m.exec(readFileSync(new URL('../controlplane/versions.env', import.meta.url), 'utf8'))?.[1];
  assert.equal(node.status.nodeInfo.kubeletVersion, pinned);
  assert.match(node.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\//);
  // The `kubernetes` Service has the node address as its endpoint (the reconciler is on).
  const endpoints = await env.kubectl(['get', 'endpointslices', '-n', 'default', '-l', 'kubernetes.io/service-name=kubernetes', '-o', 'jsonpath={.items[*].endpoints[*].addresses[*]}']);
  assert.equal(endpoints.stdout.trim(), NODE_NETWORK.address);
  console.log(`node start: ${JSON.stringify(env.node?.timings)}; environment ${env.timings.totalMs} ms`);
});

test('a pod from a locally imported image runs, gets a pod IP and answers from the host and through a Service', async () => {
  await env.apply([
    pod('web', ['serve', '8080'], { labels: { app: 'web' } }),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } },
  ]);
  const status = await until('web Running', () => podStatus('web'), (s) => s.phase === 'Running' && s.podIP !== undefined);
  assert.match(status.podIP!, /^10\.244\.0\.\d+$/, 'pod IP from the CNI range');
  const direct = await fetch(`http://${status.podIP}:8080/`);
  assert.equal((await direct.text()).trim(), 'web', 'answers from the host');
  // Through the ClusterIP from another pod: kube-proxy's rules on the node.
  const clusterIp = (await env.kubectl(['get', 'service', 'web', '-n', NS, '-o', 'jsonpath={.spec.clusterIP}'])).stdout;
  assert.ok(clusterIp.startsWith('10.211.0.'), `ClusterIP ${clusterIp} in the node's service range`);
  await env.apply(pod('client', ['get', `http://${clusterIp}/`]));
  const client = await until('client finished', () => podStatus('client'), (s) => s.phase === 'Succeeded' || s.phase === 'Failed');
  assert.equal(client.phase, 'Succeeded', JSON.stringify(client));
  assert.equal(client.containerStatuses?.[0]?.state?.['terminated']?.message?.trim(), '200 web');
});

test('the kubelet resolves a secretKeyRef into the container env', async () => {
  await env.apply([
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tok', namespace: NS }, type: 'Opaque', stringData: { token: CANARY } },
    pod('envcheck', ['env', 'TOKEN', 'ABSENT'], { env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'tok', key: 'token' } } }] }),
  ]);
  const status = await until('envcheck finished', () => podStatus('envcheck'), (s) => s.phase === 'Succeeded' || s.phase === 'Failed');
  assert.equal(status.phase, 'Succeeded', JSON.stringify(status));
  const digest = createHash('sha256').update(CANARY).digest('hex');
  assert.equal(status.containerStatuses?.[0]?.state?.['terminated']?.message?.trim(), `TOKEN sha256=${digest}\nABSENT unset`);
});

test('a container over its memory limit is OOMKilled and reported so', async () => {
  await env.apply(pod('hog', ['alloc', '200'], { limits: { memory: '32Mi', cpu: '100m' } }));
  const status = await until('hog terminated', () => podStatus('hog'), (s) => s.phase === 'Failed' || s.phase === 'Succeeded', 90_000);
  const terminated = status.containerStatuses?.[0]?.state?.['terminated'];
  assert.equal(terminated?.reason, 'OOMKilled', JSON.stringify(status));
  assert.equal(terminated?.exitCode, 137);
});
