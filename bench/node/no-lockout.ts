// No lock-out: with every replica gone (the Deployment scaled to 0), the cluster keeps
// creating pods everywhere the webhook has no business: kube-system and the service's own
// namespace (also when they carry the injection label: the namespaceSelector and the
// matchConditions exclude them whatever the labels say), and pods without the agent label
// in enabled namespaces. Only agent pods in enabled namespaces are refused (failurePolicy
// Fail: started without their connectors they would run without their tools), and the API
// server's message is quoted. Connectors can still be created (the validating webhook is
// failurePolicy Ignore). Then the replicas come back and inject again.

import { RELEASE_NAMESPACE } from '../../test/e2e/fixtures/helm.ts';
import type { NodeFigure, NodeScenario } from './scenario.ts';
import {
  CHART_NAME,
  createPod,
  deleteLoad,
  opsSetup,
  OPS_NAMESPACE,
  podBody,
  replicas,
  seconds,
  sleep,
  untilInjecting,
  untilNoProxyTarget,
  untilSettled,
  watchEndpoints,
  WEBHOOK_PORT,
  type Attempt,
} from './load.ts';

const LOAD = 'no-lockout';
const INJECTION_LABEL = 'komputer.ai/connector-injection';

interface Case {
  readonly name: string;
  readonly namespace: string;
  readonly agent: boolean;
  readonly expect: 'created' | 'refused';
}

const CASES: readonly Case[] = [
  { name: 'agent-labelled pod in kube-system', namespace: 'kube-system', agent: true, expect: 'created' },
  { name: "agent-labelled pod in the service's namespace", namespace: RELEASE_NAMESPACE, agent: true, expect: 'created' },
  { name: 'pod without the agent label in an enabled namespace', namespace: OPS_NAMESPACE, agent: false, expect: 'created' },
  { name: 'agent pod in an enabled namespace', namespace: OPS_NAMESPACE, agent: true, expect: 'refused' },
];

export const noLockout: NodeScenario = {
  name: 'no-lockout',
  title: 'every replica gone: only agent pods in enabled namespaces are refused',
  async run({ cluster, log }) {
    const { env } = cluster;
    const ops = await opsSetup(cluster);
    await untilSettled(ops);
    const figures: NodeFigure[] = [];
    const problems: string[] = [];
    const watch = watchEndpoints(ops);
    const labelled: string[] = [];
    try {
      const t0 = Date.now();
      await env.kubectl(['scale', 'deployment', CHART_NAME, '-n', RELEASE_NAMESPACE, '--replicas=0']);
      // Polled from the start: terminating replicas keep their rules (kube-proxy falls back
      // to serving, terminating endpoints) until they are gone.
      const proxySynced = untilNoProxyTarget(WEBHOOK_PORT, 120_000);
      proxySynced.catch(() => undefined); // awaited below
      const empty = await watch.until('no endpoint in the Service', (eps) => eps.length === 0, { since: t0, timeoutMs: 120_000 });
      while ((await replicas(ops)).length > 0) {
        if (Date.now() - t0 > 120_000) throw new Error('replicas still there 120 s after scaling to 0');
        await sleep(250);
      }
      const goneMs = Date.now() - t0;
      log(`scaled to 0: the Service had no endpoint after ${empty.at - t0} ms, the pods were gone after ${goneMs} ms`);
      figures.push({ name: 'every replica gone after', value: seconds(goneMs), unit: 's', note: `kubectl scale --replicas=0 until no pod is left (no endpoint in the Service after ${seconds(empty.at - t0)} s)` });

      const attempt = async (c: Case, suffix = ''): Promise<Attempt> => {
        const a = await createPod(ops, c.namespace, podBody({ load: LOAD, agent: c.agent, namePrefix: c.agent ? 'agent' : 'plain' }));
        const outcome = a.name === undefined ? 'refused' : 'created';
        const name = `${c.name}${suffix}`;
        figures.push({ name, value: outcome, note: `${Math.round(a.ms)} ms${a.message === undefined ? '' : `; the API server's message: "${a.message}"`}` });
        if (outcome !== c.expect) problems.push(`${name}: ${outcome}, expected ${c.expect}${a.message === undefined ? '' : ` ("${a.message}")`}`);
        return a;
      };
      // Right away, kube-proxy may still send to the last replica's address (gone with its
      // pod): what users see in that window differs from what they see once it caught up.
      await attempt(CASES.find((c) => c.expect === 'refused')!, ', right after the last replica went');
      const synced = await proxySynced;
      figures.push({
        name: 'kube-proxy sends to no replica after',
        value: seconds(synced - t0),
        unit: 's',
        note: `kubectl scale --replicas=0 until no DNAT rule to the webhook port is left (iptables-save every 100 ms): ${seconds(synced - empty.at)} s after the Service had no endpoint`,
      });
      for (const c of CASES) await attempt(c);
      // Whatever the labels say: kube-system and the service's namespace labelled for injection.
      for (const ns of ['kube-system', RELEASE_NAMESPACE]) {
        await env.kubectl(['label', 'namespace', ns, `${INJECTION_LABEL}=enabled`, '--overwrite']);
        labelled.push(ns);
      }
      for (const c of CASES.filter((x) => x.namespace !== OPS_NAMESPACE)) await attempt(c, ', the namespace labelled for injection');

      // The validating webhook is failurePolicy Ignore: connectors are still created.
      const connector = {
        apiVersion: 'komputer.komputer.ai/v1alpha1',
        kind: 'KomputerConnector',
        metadata: { name: 'lockout-probe', namespace: OPS_NAMESPACE },
        spec: { type: 'remote', service: 'github', url: 'https://api.githubcopilot.com/mcp/', authType: 'token', authSecretKeyRef: { name: 'gh', key: 'token' } },
      };
      const c0 = Date.now();
      const r = await ops.client.request('POST', `/apis/komputer.komputer.ai/v1alpha1/namespaces/${OPS_NAMESPACE}/komputerconnectors`, JSON.stringify(connector));
      figures.push({ name: 'connector in an enabled namespace', value: r.status === 201 ? 'created' : 'refused', note: `${Date.now() - c0} ms (validating webhook, failurePolicy Ignore)` });
      if (r.status !== 201) problems.push(`a connector was refused with every replica gone: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      else await ops.client.request('DELETE', `/apis/komputer.komputer.ai/v1alpha1/namespaces/${OPS_NAMESPACE}/komputerconnectors/lockout-probe`);
    } finally {
      watch.stop();
      for (const ns of labelled) await env.kubectl(['label', 'namespace', ns, `${INJECTION_LABEL}-`]);
      await env.kubectl(['scale', 'deployment', CHART_NAME, '-n', RELEASE_NAMESPACE, '--replicas=2']);
      const injectingMs = await untilInjecting(ops, 180_000);
      figures.push({ name: 'back: an agent pod injected again after', value: seconds(injectingMs), unit: 's', note: 'kubectl scale --replicas=2 until a dry-run agent pod comes back injected' });
      log(`scaled back to 2: injecting again after ${injectingMs} ms`);
      await deleteLoad(ops, LOAD, ['kube-system', RELEASE_NAMESPACE, OPS_NAMESPACE]);
      await untilSettled(ops);
    }
    return { scenario: 'no-lockout', figures, problems };
  },
};
