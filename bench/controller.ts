// Controller benchmark on the real API server (the e2e harness): 5,000 agent changes
// spread over 50 connectors, with the service's default coalescing. Reports the status
// writes (goal: no more than the connectors whose value changed) and the time from the
// last change until every connector carries its true status. `npm run bench:controller`.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEnvironment, stopEnvironment } from '../test/e2e/harness/index.ts';
import { adminClients, agentObject, connectorObject, expectedStatuses, GROUP, mapLimit, VERSION, waitForCounts, writes, type AgentModel, type ConnectorModel } from '../test/e2e/fixtures/cluster.ts';

const CONNECTORS = 50;
const CHANGES = Number(process.env.BENCH_CHANGES ?? 5000);
const NAMESPACES = ['bench-a', 'bench-b'];

const say = (m: string): void => void process.stdout.write(`[bench:controller] ${m}\n`);

const env = await startEnvironment({ name: 'bench-controller' });
let failed = false;
try {
  const service = env.service!;
  const clients = adminClients(env.kubeconfig);
  for (const ns of NAMESPACES) await env.createNamespace(ns, { enabled: true });
  const connectors: ConnectorModel[] = Array.from({ length: CONNECTORS }, (_, i) => ({ namespace: 'bench-a', name: `c${i}`, sharedWith: ['bench-b'] }));
  await mapLimit(connectors, 8, (c) => clients.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: c.namespace, plural: 'komputerconnectors', body: connectorObject(c) }));
  // Settle the initial zero counts, then measure only the burst.
  await waitForCounts(clients, expectedStatuses(connectors, []), { what: 'initial counts', timeoutMs: 60_000 });
  const before = await writes(service.metricsPort);

  // 5,000 changes: creates, then edits that move agents between connectors, then deletes.
  const agents = new Map<string, AgentModel>();
  const changes: (() => Promise<unknown>)[] = [];
  const creates = Math.floor(CHANGES * 0.6);
  const edits = Math.floor(CHANGES * 0.3);
  const deletes = CHANGES - creates - edits;
  for (let i = 0; i < creates; i++) {
    const ns = NAMESPACES[i % 2]!;
    const c = i % CONNECTORS;
    const a: AgentModel = { namespace: ns, name: `agent-${i}`, connectors: [ns === 'bench-a' ? `c${c}` : `bench-a/c${c}`] };
    agents.set(`${ns}/${a.name}`, a);
    changes.push(() => clients.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'komputeragents', body: agentObject(a) }));
  }
  const created = [...agents.values()];
  for (let i = 0; i < edits; i++) {
    const a = created[i]!;
    const moved: AgentModel = { ...a, connectors: [a.namespace === 'bench-a' ? `c${(i * 7) % CONNECTORS}` : `bench-a/c${(i * 7) % CONNECTORS}`] };
    agents.set(`${a.namespace}/${a.name}`, moved);
    changes.push(() => clients.custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: a.namespace, plural: 'komputeragents', name: a.name, body: [{ op: 'replace', path: '/spec/connectors', value: moved.connectors }] }));
  }
  for (let i = 0; i < deletes; i++) {
    const a = created[created.length - 1 - i]!;
    agents.delete(`${a.namespace}/${a.name}`);
    changes.push(() => clients.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: a.namespace, plural: 'komputeragents', name: a.name }));
  }
  say(`${CHANGES} agent changes (${creates} creates, ${edits} edits, ${deletes} deletes) over ${CONNECTORS} connectors...`);
  const t0 = performance.now();
  // Phases in order (an edit needs its create), each with bounded parallelism.
  await mapLimit(changes.slice(0, creates), 16, (f) => f());
  await mapLimit(changes.slice(creates, creates + edits), 16, (f) => f());
  await mapLimit(changes.slice(creates + edits), 16, (f) => f());
  const burstS = (performance.now() - t0) / 1000;
  const lastChange = performance.now();
  const expected = expectedStatuses(connectors, agents.values());
  await waitForCounts(clients, expected, { what: 'counts after the burst', timeoutMs: 120_000 });
  const convergeS = (performance.now() - lastChange) / 1000;
  const written = (await writes(service.metricsPort)) - before;
  const changed = [...expected.values()].filter((names) => names.length > 0).length;
  const result = { changes: CHANGES, connectors: CONNECTORS, connectorsChanged: changed, statusWrites: written, burstSeconds: +burstS.toFixed(1), changesPerSecond: Math.round(CHANGES / burstS), convergeSecondsAfterLastChange: +convergeS.toFixed(2), goalMet: written <= changed };
  say(`burst took ${burstS.toFixed(1)} s (${result.changesPerSecond} changes/s)`);
  say(`status writes: ${written} for ${changed} connectors whose value changed (goal: <= ${changed}) ${written <= changed ? 'met' : 'MISSED'}`);
  say(`converged ${convergeS.toFixed(2)} s after the last change`);
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'controller-latest.json'), JSON.stringify({ at: new Date().toISOString(), ...result }, null, 2) + '\n');
  // Gate: fail loudly well past the goal (0.7x rule: more than changed / 0.7 writes).
  if (written > changed / 0.7) {
    say(`GATE FAILED: ${written} writes > ${(changed / 0.7).toFixed(0)}`);
    failed = true;
  }
} finally {
  await stopEnvironment();
}
process.exit(failed ? 1 : 0);
