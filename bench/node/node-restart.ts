// A node restart: the kubelet and containerd stopped (SIGTERM, as a service manager stops
// them), down a few seconds, and started again, while the operator keeps creating agent pods
// that are meant to run (one a second). Running containers outlive containerd (their shims
// keep them), so the replicas may keep serving; the figures say whether they did. Figures:
// time from the stop until the first agent pod created after it is Running (injected), how
// long the node's components took to come back, what the creations met meanwhile (refused,
// with the API server's message), and whether the replicas or a running agent pod restarted.
// What must hold: no agent pod admitted without its connectors, an injected agent pod runs
// again, the replicas are back Ready.

import type { NodeFigure, NodeScenario } from './scenario.ts';
import {
  createPod,
  deleteLoad,
  minReadyEndpoints,
  opsSetup,
  OPS_NAMESPACE,
  podBody,
  quoteMessages,
  replicas,
  seconds,
  sleep,
  startCreationLoad,
  untilSettled,
  watchEndpoints,
  LOAD_LABEL,
  type LoadSummary,
  type Ops,
} from './load.ts';

const LOAD = 'node-restart';

interface PodState {
  readonly name: string;
  readonly running: boolean;
  readonly containerId: string;
  readonly restarts: number;
}

async function podStates(ops: Ops): Promise<Map<string, PodState>> {
  const r = await ops.client.request('GET', `/api/v1/namespaces/${OPS_NAMESPACE}/pods?labelSelector=${encodeURIComponent(`${LOAD_LABEL}=${LOAD}`)}`);
  if (r.status !== 200) throw new Error(`listing the agent pods: HTTP ${r.status}`);
  const list = JSON.parse(r.text) as {
    items: { metadata: { name: string }; status?: { phase?: string; containerStatuses?: { restartCount: number; containerID?: string; state?: { running?: unknown } }[] } }[];
  };
  return new Map(
    list.items.map((p) => {
      const c = p.status?.containerStatuses?.[0];
      return [p.metadata.name, { name: p.metadata.name, running: p.status?.phase === 'Running' && c?.state?.running !== undefined, containerId: c?.containerID ?? '', restarts: c?.restartCount ?? 0 }];
    }),
  );
}

export const nodeRestart: NodeScenario = {
  name: 'node-restart',
  title: 'containerd and the kubelet restarted while agent pods that should run are created',
  async run({ cluster, size, log }) {
    const node = cluster.env.node;
    if (node === undefined) throw new Error('node-restart needs a node');
    const ops = await opsSetup(cluster);
    await untilSettled(ops);
    const downMs = size === 'bench' ? 10_000 : 3_000;
    const before = await replicas(ops);

    // An agent pod that already runs when the node restarts.
    const first = await createPod(ops, OPS_NAMESPACE, podBody({ load: LOAD, run: true }));
    if (first.injected !== true) throw new Error(`the agent pod before the restart was not created injected: ${JSON.stringify(first)}`);
    const runningBefore = await (async () => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const s = (await podStates(ops)).get(first.name!);
        if (s?.running === true) return s;
        if (Date.now() > deadline) throw new Error(`${first.name} not Running within 60 s`);
        await sleep(250);
      }
    })();

    const watch = watchEndpoints(ops);
    const load = startCreationLoad(ops, { perSecond: 1, load: LOAD, run: true });
    let summary: LoadSummary;
    let stopped = 0;
    let kubeletStopMs = 0;
    let containerdStopMs = 0;
    let containerdStartMs = 0;
    let kubeletStartMs = 0;
    let firstRunning: { name: string; at: number } | undefined;
    let kubeletBack = 0;
    let waiting = 0;
    try {
      await sleep(2_000);
      stopped = Date.now();
      await node.component('kubelet').stop();
      kubeletStopMs = Date.now() - stopped;
      const t1 = Date.now();
      await node.component('containerd').stop();
      containerdStopMs = Date.now() - t1;
      log(`kubelet stopped in ${kubeletStopMs} ms, containerd in ${containerdStopMs} ms; down for ${downMs} ms`);
      await sleep(downMs);
      containerdStartMs = await node.component('containerd').start({ deadline: Date.now() + 60_000 });
      kubeletStartMs = await node.component('kubelet').start({ deadline: Date.now() + 120_000 });
      log(`containerd ready in ${containerdStartMs} ms, kubelet healthy and the node Ready in ${kubeletStartMs} ms`);
      kubeletBack = Date.now();
      waiting = [...(await podStates(ops)).values()].filter((p) => !p.running).length;
      const deadline = Date.now() + 180_000;
      while (firstRunning === undefined) {
        const states = await podStates(ops);
        const candidates = load.attempts.filter((a) => a.at >= stopped && a.injected === true).sort((a, b) => a.at - b.at);
        const found = candidates.find((a) => states.get(a.name!)?.running === true);
        if (found !== undefined) firstRunning = { name: found.name!, at: Date.now() };
        else if (Date.now() > deadline) throw new Error(`no agent pod created after the stop is Running after 180 s (${candidates.length} created)`);
        else await sleep(250);
      }
      await untilSettled(ops);
      await sleep(2_000);
    } finally {
      summary = await load.stop();
      watch.stop();
    }
    const end = Date.now();
    const after = await replicas(ops);
    const survivor = (await podStates(ops)).get(first.name!);
    await deleteLoad(ops, LOAD);
    await untilSettled(ops);

    const createdAfter = summary.attempts.filter((a) => a.at >= stopped);
    const refused = summary.refused.filter((a) => a.at >= stopped);
    const sameReplicas = before.every((b) => after.some((a) => a.uid === b.uid && a.containerId === b.containerId));
    const replicaRestarts = after.reduce((n, r) => n + r.restarts, 0) - before.reduce((n, r) => n + r.restarts, 0);
    const fewestReady = minReadyEndpoints(watch.changes, stopped, end);
    const survived = survivor?.running === true && survivor.containerId === runningBefore.containerId;
    const figures: NodeFigure[] = [
      {
        name: 'first injected agent pod Running after',
        value: seconds(firstRunning!.at - stopped),
        unit: 's',
        note: `from the kubelet's stop (down ${seconds(downMs)} s) until the first agent pod created after it runs (pods created at 1/s, polled every 250 ms)`,
      },
      {
        name: 'first injected agent pod Running after the kubelet was back',
        value: seconds(firstRunning!.at - kubeletBack),
        unit: 's',
        note: `kubelet healthy with the node Ready until then; ${waiting} agent pods were waiting to start when it came back`,
      },
      { name: 'node components stop', value: `${kubeletStopMs} / ${containerdStopMs}`, unit: 'ms', note: 'kubelet / containerd, SIGTERM until exit' },
      { name: 'node components start', value: `${containerdStartMs} / ${kubeletStartMs}`, unit: 'ms', note: 'containerd until it answers / kubelet until healthy with the node Ready' },
      {
        name: 'agent pod creations after the stop',
        value: createdAfter.length,
        unit: 'pods',
        note: `${refused.length} refused${refused.length === 0 ? '' : ` (${quoteMessages(summary)})`}, ${summary.notInjected.length} created without injection`,
      },
      { name: 'fewest ready endpoints', value: fewestReady, note: "the Service's EndpointSlice from the stop until the end (watched)" },
      { name: 'webhook replicas restarted', value: sameReplicas ? 'no' : 'yes', note: `same pods and containers before and after: ${sameReplicas}; container restarts +${replicaRestarts}` },
      { name: 'agent pod running before the restart', value: survived ? 'kept running' : 'restarted or gone', note: 'same container before and after' },
    ];
    const problems: string[] = [];
    if (summary.notInjected.length > 0) problems.push(`${summary.notInjected.length} agent pods created without their connectors`);
    if (createdAfter.length === 0) problems.push('no agent pod creation was attempted after the stop');
    return { scenario: 'node-restart', figures, problems };
  },
};
