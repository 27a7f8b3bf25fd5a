// A replica killed with SIGKILL through the runtime (`ctr task kill`: an OOM kill, a crash,
// a node-level kill), while agent pods are created at a steady rate. Nothing drains: until
// the kubelet sees the container dead and the endpoint update reaches kube-proxy, the
// Service still sends a share of the API server's calls to the dead pod, and the pod
// webhook's failurePolicy Fail turns each into a refused creation (the API server does not
// retry a refused connection). Figures: the refusals and their message, how long after the
// kill the endpoint leaves the Service, and when the replica is back. What must hold: no
// agent pod admitted without its connectors, the endpoint leaves, the replica comes back,
// and nothing is refused once it is back.

import type { NodeFigure, NodeScenario } from './scenario.ts';
import {
  deleteLoad,
  median,
  opsSetup,
  podAdmissions,
  proxySends,
  quoteMessages,
  replicas,
  seconds,
  sleep,
  startCreationLoad,
  untilReplicas,
  untilProxyDrops,
  untilSettled,
  watchEndpoints,
  WEBHOOK_PORT,
  type LoadSummary,
} from './load.ts';

const LOAD = 'replica-kill';
const WEBHOOK_FAILURE = /failed calling webhook "pods\.connectors\.komputer\.ai"/;

interface Kill {
  readonly replica: string;
  readonly at: number;
  /** Kill until its endpoint is not ready (or gone) in the Service's EndpointSlice. */
  readonly leftMs: number;
  /** Kill until kube-proxy no longer sends the Service's traffic to it (its DNAT rule gone). */
  readonly proxyMs: number | undefined;
  /** Kill until its endpoint is ready again (the container restarted and passed readiness). */
  readonly backMs: number;
  /** The killed replica's share of the pod admissions in the 3 s before the kill. */
  readonly share: number;
  /** The next kill (or the end of the load). */
  until: number;
}

export const replicaKill: NodeScenario = {
  name: 'replica-kill',
  title: 'a webhook replica killed with SIGKILL through containerd while agent pods are created at a steady rate',
  async run({ cluster, size, log }) {
    const node = cluster.env.node;
    if (node === undefined) throw new Error('replica-kill needs a node');
    const ops = await opsSetup(cluster);
    await untilSettled(ops);
    const perSecond = size === 'bench' ? 4 : 3;
    // Alternating replicas: a replica's second kill shows the kubelet's restart back-off too.
    const count = size === 'bench' ? 4 : 1;
    const watch = watchEndpoints(ops);
    const load = startCreationLoad(ops, { perSecond, load: LOAD });
    const kills: Kill[] = [];
    let summary: LoadSummary;
    try {
      for (let k = 0; k < count; k++) {
        const settled = (await untilReplicas(ops, 2, 180_000)).sort((a, b) => a.name.localeCompare(b.name));
        const target = settled[k % 2]!;
        // Which replica answers: the API server reuses its kept-alive connections.
        const counts0 = await Promise.all(settled.map((r) => podAdmissions(ops, r.name)));
        await sleep(3_000);
        const counts1 = await Promise.all(settled.map((r) => podAdmissions(ops, r.name)));
        const deltas = counts1.map((c, i) => c - counts0[i]!);
        const share = deltas[k % 2]! / (deltas[0]! + deltas[1]!);
        if (!(await proxySends(target.ip, WEBHOOK_PORT))) throw new Error(`kube-proxy has no rule to ${target.ip}:${WEBHOOK_PORT} before the kill: cannot tell when it drops it`);
        const at = Date.now();
        node.ctr(['tasks', 'kill', '--signal', 'SIGKILL', target.containerId]);
        const dropped = untilProxyDrops(target.ip, WEBHOOK_PORT, 60_000);
        const left = await watch.until(`${target.name}'s endpoint leaves the Service`, (eps) => !eps.some((e) => e.ip === target.ip && e.ready), { since: at, timeoutMs: 60_000 });
        const droppedAt = await dropped;
        const proxyMs = droppedAt === undefined ? undefined : droppedAt - at;
        const back = await watch.until(`${target.name}'s endpoint ready again`, (eps) => eps.some((e) => e.ip === target.ip && e.ready), { since: left.at, timeoutMs: 180_000 });
        await untilReplicas(ops, 2, 60_000, (rs) => rs.some((r) => r.name === target.name && r.restarts > target.restarts));
        kills.push({ replica: target.name, at, leftMs: left.at - at, proxyMs, backMs: back.at - at, share, until: Number.POSITIVE_INFINITY });
        if (k > 0) kills[k - 1]!.until = at;
        log(`kill ${k + 1}/${count} (${target.name}, ${Math.round(share * 100)}% of the admissions before): endpoint not ready after ${left.at - at} ms, kube-proxy dropped it after ${proxyMs ?? '(not seen)'} ms, ready again after ${seconds(back.at - at)} s`);
      }
      await sleep(3_000);
    } finally {
      summary = await load.stop();
      watch.stop();
    }
    await deleteLoad(ops, LOAD);
    await untilSettled(ops);

    const refusedPerKill = kills.map((k) => summary.refused.filter((a) => a.at >= k.at && a.at < k.until));
    const lastRefusal = kills.map((k, i) => Math.max(0, ...refusedPerKill[i]!.map((a) => a.at + a.ms - k.at)));
    const proxied = kills.flatMap((k) => (k.proxyMs === undefined ? [] : [k.proxyMs]));
    const restarts = (await replicas(ops)).reduce((n, r) => n + r.restarts, 0);
    const figures: NodeFigure[] = [
      { name: 'kills', value: kills.length, note: '`ctr -n k8s.io tasks kill --signal SIGKILL` on the webhook container, alternating replicas, each after both were Ready for 3 s' },
      { name: 'agent pod creations', value: summary.attempts.length, unit: 'pods', note: `${perSecond}/s throughout` },
      {
        name: 'refused creations',
        value: summary.refused.length,
        unit: 'pods',
        note: `per kill: ${refusedPerKill.map((r) => r.length).join(', ')}${summary.refused.length === 0 ? '' : `; the API server's message: ${quoteMessages(summary)}`}`,
      },
      {
        name: "killed replica's share of the admissions before",
        value: kills.map((k) => `${Number.isNaN(k.share) ? '?' : Math.round(k.share * 100)}%`).join(', '),
        note: "per kill: its pod admissions over both replicas' in the 3 s before the kill (their /metrics)",
      },
      { name: 'last refusal after the kill', value: lastRefusal.map((ms) => seconds(ms)).join(', '), unit: 's', note: 'per kill: when the last refused create returned' },
      {
        name: 'endpoint left the Service after',
        value: `${Math.round(median(kills.map((k) => k.leftMs)))} (max ${Math.max(...kills.map((k) => k.leftMs))})`,
        unit: 'ms',
        note: "median (max): kill until the pod's endpoint is not ready in the Service's EndpointSlice (watched)",
      },
      {
        name: 'kube-proxy stopped sending to it after',
        value: proxied.length === 0 ? 'not seen' : `${Math.round(median(proxied))} (max ${Math.max(...proxied)})`,
        unit: proxied.length === 0 ? '' : 'ms',
        note: `median (max) over ${proxied.length} of ${kills.length} kills: kill until the node's NAT rules have no DNAT to the pod's webhook port (iptables-save, polled every 100 ms)`,
      },
      { name: 'replica Ready again after', value: kills.map((k) => seconds(k.backMs)).join(', '), unit: 's', note: 'per kill: kill until its endpoint is ready again (restarted in place by the kubelet)' },
      { name: 'created but not injected', value: summary.notInjected.length, unit: 'pods', note: 'goal 0' },
      { name: 'container restarts after the scenario', value: restarts, note: 'sum over both replicas' },
    ];
    const problems: string[] = [];
    if (summary.notInjected.length > 0) problems.push(`${summary.notInjected.length} agent pods created without their connectors`);
    const unexplained = summary.refused.filter((a) => !WEBHOOK_FAILURE.test(a.message ?? ''));
    if (unexplained.length > 0) problems.push(`${unexplained.length} creations refused for another reason than the webhook call: ${unexplained.map((a) => a.message).join('; ')}`);
    const beforeKill = summary.refused.filter((a) => kills.length === 0 || a.at < kills[0]!.at);
    if (beforeKill.length > 0) problems.push(`${beforeKill.length} creations refused before the first kill, with both replicas Ready`);
    kills.forEach((k, i) => {
      const afterBack = refusedPerKill[i]!.filter((a) => a.at > k.at + k.backMs);
      if (afterBack.length > 0) problems.push(`kill ${i + 1}: ${afterBack.length} creations refused after the replica was Ready again`);
    });
    return { scenario: 'replica-kill', figures, problems };
  },
};
