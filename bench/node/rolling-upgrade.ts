// A rolling upgrade as admins run it: `helm upgrade --wait` with a changed pod template (a
// pod annotation, set and then removed again, so the chart ends at its defaults), while
// agent pods are created at a steady rate in an enabled namespace. What must hold: no
// creation refused and no agent pod admitted without its connectors (maxUnavailable 0, the
// readiness gate, and the SIGTERM drain keeping a leaving replica serving until the API
// server's path to it is gone).

import type { NodeFigure, NodeScenario } from './scenario.ts';
import {
  median,
  minReadyEndpoints,
  opsSetup,
  percentile,
  quoteMessages,
  replicas,
  seconds,
  sleep,
  startCreationLoad,
  deleteLoad,
  untilReplicas,
  untilSettled,
  watchEndpoints,
  watchProxy,
  WEBHOOK_PORT,
  type LoadSummary,
} from './load.ts';

const LOAD = 'rolling-upgrade';

interface Rollout {
  readonly started: number;
  readonly ended: number;
  /** `helm upgrade --wait` alone. */
  readonly helmMs: number;
  /** Until only new replicas exist, both Ready (the old ones gone). */
  readonly doneMs: number;
}

export const rollingUpgrade: NodeScenario = {
  name: 'rolling-upgrade',
  title: 'helm upgrade that changes the pod template while agent pods are created at a steady rate',
  async run({ cluster, size, log }) {
    const ops = await opsSetup(cluster);
    await untilSettled(ops);
    const perSecond = size === 'bench' ? 4 : 3;
    // Each round: one upgrade that sets a pod annotation, one that removes it (defaults).
    const rounds = size === 'bench' ? 3 : 1;
    const watch = watchEndpoints(ops);
    const proxy = watchProxy(WEBHOOK_PORT);
    const load = startCreationLoad(ops, { perSecond, load: LOAD });
    const rollouts: Rollout[] = [];
    let summary: LoadSummary;
    try {
      await sleep(2_000);
      for (let i = 0; i < rounds * 2; i++) {
        const sets = i % 2 === 0 ? ['--set-string', `podAnnotations.bench-rollout=r${i}`] : [];
        const old = new Set((await replicas(ops)).map((r) => r.templateHash));
        const started = Date.now();
        const upgrade = await cluster.install(sets, { upgrade: true, timeoutSeconds: 240 });
        const helmMs = Date.now() - started;
        if (upgrade.code !== 0) throw new Error(`helm upgrade failed: ${upgrade.stderr}`);
        await untilReplicas(ops, 2, 240_000, (rs) => rs.every((r) => !old.has(r.templateHash)));
        const ended = Date.now();
        rollouts.push({ started, ended, helmMs, doneMs: ended - started });
        log(`rollout ${i + 1}/${rounds * 2} (${sets.length === 0 ? 'back to the defaults' : 'pod annotation set'}): helm ${seconds(helmMs)} s, old replicas gone after ${seconds(ended - started)} s`);
        await sleep(2_000);
      }
    } finally {
      summary = await load.stop();
      watch.stop();
      await proxy.stop();
    }
    await deleteLoad(ops, LOAD);
    await untilSettled(ops);

    const during = summary.attempts.filter((a) => rollouts.some((r) => a.at >= r.started && a.at <= r.ended));
    const duringLatency = during.filter((a) => a.name !== undefined).map((a) => a.ms);
    const fewestReady = Math.min(...rollouts.map((r) => minReadyEndpoints(watch.changes, r.started, r.ended)));
    // Each leaving replica: from its endpoint turning terminating (the pod deleted, the kubelet
    // sends SIGTERM) until kube-proxy no longer sends to it. The drain must outlast this.
    const leaving = new Map<string, number>();
    for (const c of watch.changes) for (const e of c.endpoints) if (e.terminating && !leaving.has(e.ip)) leaving.set(e.ip, c.at);
    const seen = [...leaving].flatMap(([ip, at]) => {
      const drop = proxy.drops.find((d) => d.ip === ip && d.at >= at - 1_000);
      return drop === undefined ? [] : [drop.at - at];
    });
    const figures: NodeFigure[] = [
      { name: 'rollouts', value: rollouts.length, note: 'helm upgrade --wait, a pod annotation set, then removed (back to the defaults); 2 replicas, maxSurge 1, maxUnavailable 0' },
      { name: 'agent pod creations', value: summary.attempts.length, unit: 'pods', note: `${perSecond}/s throughout, ${during.length} while a rollout ran` },
      { name: 'refused creations', value: summary.refused.length, unit: 'pods', note: summary.refused.length === 0 ? 'goal 0' : quoteMessages(summary) },
      { name: 'created but not injected', value: summary.notInjected.length, unit: 'pods', note: 'goal 0' },
      {
        name: 'rollout duration',
        value: `${seconds(median(rollouts.map((r) => r.doneMs)))} (max ${seconds(Math.max(...rollouts.map((r) => r.doneMs)))})`,
        unit: 's',
        note: 'median (max): helm upgrade start until only new replicas exist, both Ready, the old ones gone',
      },
      { name: 'helm upgrade --wait', value: `${seconds(median(rollouts.map((r) => r.helmMs)))} (max ${seconds(Math.max(...rollouts.map((r) => r.helmMs)))})`, unit: 's', note: 'median (max)' },
      {
        name: 'pod create latency during rollouts',
        value: `${Math.round(percentile(duringLatency, 50))} / ${Math.round(percentile(duringLatency, 99))} / ${Math.round(Math.max(...duringLatency))}`,
        unit: 'ms',
        note: 'p50 / p99 / max, client to API server and back, webhook included',
      },
      {
        name: 'kube-proxy stopped sending to a leaving replica after',
        value: seen.length === 0 ? 'not seen' : `${Math.round(median(seen))} (max ${Math.max(...seen)})`,
        unit: seen.length === 0 ? '' : 'ms',
        note: `median (max) over ${seen.length} of ${leaving.size} leaving replicas: its endpoint turning terminating (pod deleted, SIGTERM) until no DNAT rule to it (iptables-save every 200 ms); the replica keeps serving for --drain-ms (5 s) after SIGTERM`,
      },
      { name: 'fewest ready endpoints during rollouts', value: fewestReady, note: "the Service's EndpointSlice, watched" },
    ];
    const problems: string[] = [];
    if (summary.refused.length > 0) problems.push(`${summary.refused.length} agent pod creations refused across the rollouts: ${quoteMessages(summary)}`);
    if (summary.notInjected.length > 0) problems.push(`${summary.notInjected.length} agent pods created without their connectors (${summary.notInjected.map((a) => a.name).join(', ')})`);
    if (during.length === 0) problems.push('no agent pod was created while a rollout ran: the load did not overlap the upgrade');
    if (fewestReady < 1) problems.push('the Service had no ready endpoint during a rollout');
    return { scenario: 'rolling-upgrade', figures, problems };
  },
};
