// A large cluster in a real API server, fast: bench/fixtures.ts's clusterState as objects to
// POST (namespaces, connectors without status, agents), created at a fixed concurrency with
// 429/5xx retried. bench:scale and bench:node's memory scenario both create their clusters
// this way.

import type { Client } from './api.ts';
import { clusterState } from './fixtures.ts';
import { mapLimit } from '../test/e2e/fixtures/cluster.ts';

type Json = { [key: string]: unknown };

export const KOMPUTER_API = '/apis/komputer.komputer.ai/v1alpha1';

export interface ClusterObjects {
  namespaces: Json[];
  connectors: Json[];
  agents: Json[];
}

/** clusterState(agents, connectors, namespaces), split by kind, ready to create. */
export function clusterObjects(agents: number, connectors: number, namespaces: number): ClusterObjects {
  const list = JSON.parse(clusterState(agents, connectors, namespaces)) as { items: Json[] };
  const out: ClusterObjects = { namespaces: [], connectors: [], agents: [] };
  for (const item of list.items) {
    if (item.kind === 'Namespace') out.namespaces.push(item);
    else if (item.kind === 'KomputerConnector') {
      delete item.status; // a create ignores it (status subresource); the controller writes it
      out.connectors.push(item);
    } else if (item.kind === 'KomputerAgent') out.agents.push(item);
  }
  return out;
}

export const metaOf = (o: Json): { namespace: string; name: string } => o.metadata as { namespace: string; name: string };

/** The collection an object is created in. */
export function collectionPath(o: Json): string {
  if (o.kind === 'Namespace') return '/api/v1/namespaces';
  const plural = o.kind === 'KomputerConnector' ? 'komputerconnectors' : 'komputeragents';
  return `${KOMPUTER_API}/namespaces/${metaOf(o).namespace}/${plural}`;
}

export interface CreateOptions {
  readonly concurrency: number;
  readonly say: (line: string) => void;
  /** Stop starting creates at this time (Date.now() ms); the objects created are a prefix of `items`. */
  readonly deadline?: number;
}

export interface Created {
  readonly created: number;
  readonly seconds: number;
  readonly perSecond: number;
}

/**
 * Creates the objects at a fixed concurrency; 429/5xx are retried. With a deadline, stops
 * starting new creates when it passes, so what exists is `items.slice(0, created)`.
 */
export async function createObjects(client: Client, items: readonly Json[], what: string, options: CreateOptions): Promise<Created> {
  const t0 = performance.now();
  let done = 0;
  let started = 0;
  let lastReport = t0;
  await mapLimit(items, options.concurrency, async (o) => {
    if (options.deadline !== undefined && Date.now() > options.deadline) return;
    started++;
    const body = JSON.stringify(o);
    for (let attempt = 0; ; attempt++) {
      const r = await client.request('POST', collectionPath(o), body);
      if (r.status === 201) break;
      if ((r.status === 429 || r.status >= 500) && attempt < 5) {
        await new Promise((res) => setTimeout(res, 200 * (attempt + 1)));
        continue;
      }
      throw new Error(`create ${String(o.kind)} ${metaOf(o).namespace ?? ''}/${metaOf(o).name}: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
    }
    done++;
    const now = performance.now();
    if (now - lastReport > 10_000) {
      lastReport = now;
      options.say(`  ${what}: ${done}/${items.length} (${Math.round(done / ((now - t0) / 1000))}/s)`);
    }
  });
  // Workers start items in order, so with a deadline the created ones are the first `started`.
  const seconds = (performance.now() - t0) / 1000;
  const perSecond = done / Math.max(seconds, 1e-3);
  options.say(`created ${done} ${what} in ${seconds.toFixed(1)} s (${Math.round(perSecond)}/s)${done < items.length ? `; stopped at the time budget (${items.length - done} not created)` : ''}`);
  if (started !== done) throw new Error(`${what}: ${started} creates started, ${done} finished`);
  return { created: done, seconds, perSecond };
}
