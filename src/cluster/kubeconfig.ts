// One connection pool to the API server per set of TLS settings.
//
// @kubernetes/client-node 2.0.1 builds a new undici Agent for every API call
// (KubeConfig.applySecurityAuthentication -> createDispatcher), so every status write, Event
// and Lease renewal opened a new TLS connection, parsed the CA again and left an idle pool
// behind until its keep-alive timer ran out: at 10,000 status writes that was ~70 writes/s
// and ~600 MB of RSS. This keeps one Agent per distinct dispatcher options (CA, client
// certificate, proxy...) on our own KubeConfig instance, so a rotated client certificate
// still gets a fresh pool; headers (the bearer token, re-read per request) are untouched.

import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';

type CreateDispatcher = (cluster: unknown, agentOptions: unknown) => unknown;

interface Closable {
  close(): Promise<void>;
}

/** A stable key for dispatcher options: Buffers by content, functions by name. */
function optionsKey(options: unknown): string {
  const json = JSON.stringify(options, (_k, v: unknown) => {
    if (typeof v === 'function') return `fn:${v.name}`;
    if (v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return `buf:${Buffer.from((v as { data: number[] }).data).toString('base64')}`;
    }
    return v;
  });
  return createHash('sha256').update(json ?? 'undefined').digest('base64');
}

/**
 * Makes `kc` reuse its dispatcher across API calls. Throws if a library update renamed the
 * private method, rather than silently go back to a connection per call (a unit test pins it).
 */
export function shareDispatchers(kc: KubeConfig): void {
  const target = kc as unknown as { createDispatcher?: unknown; createDispatcherOptions?: unknown };
  if (typeof target.createDispatcher !== 'function' || typeof target.createDispatcherOptions !== 'function') {
    throw new Error('@kubernetes/client-node KubeConfig has no createDispatcher/createDispatcherOptions: cannot share API connections (see src/cluster/kubeconfig.ts)');
  }
  const create = (target.createDispatcher as CreateDispatcher).bind(kc);
  const describe = (target.createDispatcherOptions as CreateDispatcher).bind(kc);
  let current: { key: string; dispatcher: unknown } | undefined;
  target.createDispatcher = (cluster: unknown, agentOptions: unknown): unknown => {
    const key = optionsKey(describe(cluster, agentOptions));
    if (current?.key === key) return current.dispatcher;
    const previous = current?.dispatcher as Partial<Closable> | undefined;
    current = { key, dispatcher: create(cluster, agentOptions) };
    // The old settings are gone (e.g. a rotated client certificate): let its requests finish.
    if (typeof previous?.close === 'function') previous.close().catch(() => undefined);
    return current.dispatcher;
  };
}
