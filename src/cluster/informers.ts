// The server's cluster view: three reflectors (namespaces, connectors, agents) filling one
// ClusterStore. Built on @kubernetes/client-node; nothing here runs on the request path.

import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { AGENT_PLURAL, CONNECTOR_PLURAL, GROUP, VERSION } from '../config/names.ts';
import type { Logger } from '../logging/logger.ts';
import { decodeAgent, decodeConnector, decodeNamespace, isObject, objectKey, splitKey, type Agent, type Connector, type NamespaceInfo } from '../model/objects.ts';
import { Reflector, type ListPage, type ReflectorOptions, type ReflectorSink, type ResourceSource, type WatchRestartReason } from './reflector.ts';
import { ClusterStore } from './store.ts';

function pageOf(list: unknown): ListPage {
  if (!isObject(list)) throw new Error('list response is not an object');
  const md = isObject(list.metadata) ? list.metadata : {};
  return {
    items: Array.isArray(list.items) ? list.items : [],
    resourceVersion: typeof md.resourceVersion === 'string' ? md.resourceVersion : '',
    continueToken: typeof md._continue === 'string' && md._continue ? md._continue : typeof md.continue === 'string' && md.continue ? md.continue : undefined,
  };
}

function customSource<T>(kc: KubeConfig, kind: string, plural: string, decode: (raw: unknown) => T, pageSize: number): ResourceSource<T> {
  const api = kc.makeApiClient(CustomObjectsApi);
  return {
    kind,
    watchPath: `/apis/${GROUP}/${VERSION}/${plural}`,
    list: async (token) => pageOf(await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural, limit: pageSize, _continue: token })),
    decode,
  };
}

function namespaceSource(kc: KubeConfig, pageSize: number): ResourceSource<NamespaceInfo> {
  const api = kc.makeApiClient(CoreV1Api);
  return {
    kind: 'namespace',
    watchPath: '/api/v1/namespaces',
    list: async (token) => pageOf(await api.listNamespace({ limit: pageSize, _continue: token })),
    decode: decodeNamespace,
  };
}

/** Change notifications for the attachment controller. */
export interface StoreListener {
  connectorsReplaced?(all: Connector[]): void;
  connectorChanged?(namespace: string, name: string): void;
  agentsReplaced?(all: Agent[]): void;
  agentChanged?(previous: Agent | undefined, next: Agent | undefined): void;
  /** A namespace's labels or annotations may have changed (undefined: a relist). */
  namespaceChanged?(name: string | undefined): void;
}

function mapSink<T>(map: Map<string, T>, keyOf: (t: T) => string, hooks: { replaced?: (all: T[]) => void; changed?: (prev: T | undefined, next: T | undefined, ns: string, name: string) => void } = {}): ReflectorSink<T> {
  return {
    replace(items) {
      map.clear();
      for (const item of items) map.set(keyOf(item), item);
      hooks.replaced?.(items);
    },
    upsert(item, previous) {
      const k = keyOf(item);
      const before = previous ?? map.get(k);
      map.set(k, item);
      const [ns, name] = splitKey(k);
      hooks.changed?.(before, item, ns, name);
    },
    remove(namespace, name) {
      const k = namespace ? objectKey(namespace, name) : name;
      const before = map.get(k);
      map.delete(k);
      hooks.changed?.(before, undefined, namespace, name);
    },
  };
}

export interface InformerOptions extends Omit<ReflectorOptions, 'onRestart'> {
  /** Each restart of a kind's list/watch, with why (kind as in the cache metrics: namespaces, connectors, agents). */
  readonly watchRestarted?: (kind: string, reason: WatchRestartReason) => void;
}

/** The kinds, in reflector order, as unsynced() and the metrics name them. */
export const INFORMER_KINDS = ['namespaces', 'connectors', 'agents'] as const;

export class ClusterInformers {
  readonly store = new ClusterStore();
  private readonly reflectors: Reflector<unknown>[] = [];
  private readonly runs: Promise<void>[] = [];
  readonly listeners: StoreListener[] = [];

  constructor(kc: KubeConfig, logger: Logger, informerOptions: InformerOptions = {}) {
    const { watchRestarted, ...base } = informerOptions;
    const pageSize = base.pageSize ?? 500;
    const options = (kind: (typeof INFORMER_KINDS)[number]): ReflectorOptions => ({ ...base, onRestart: (reason) => watchRestarted?.(kind, reason) });
    const s = this.store;
    const l = this.listeners;
    this.reflectors.push(
      new Reflector(
        kc,
        namespaceSource(kc, pageSize),
        mapSink(s.namespaces, (n) => n.name, {
          replaced: () => {
            s.namespaceChanged();
            l.forEach((x) => x.namespaceChanged?.(undefined));
          },
          changed: (_p, _n, _ns, name) => {
            s.namespaceChanged(name);
            l.forEach((x) => x.namespaceChanged?.(name));
          },
        }),
        logger,
        options('namespaces'),
      ) as Reflector<unknown>,
      new Reflector(
        kc,
        customSource(kc, 'connector', CONNECTOR_PLURAL, (raw) => decodeConnector(raw), pageSize),
        mapSink(s.connectors, (c: Connector) => objectKey(c.namespace, c.name), {
          replaced: (all) => l.forEach((x) => x.connectorsReplaced?.(all)),
          changed: (_p, _n, ns, name) => l.forEach((x) => x.connectorChanged?.(ns, name)),
        }),
        logger,
        options('connectors'),
      ) as Reflector<unknown>,
      new Reflector(
        kc,
        customSource(kc, 'agent', AGENT_PLURAL, (raw) => decodeAgent(raw), pageSize),
        mapSink(s.agents, (a: Agent) => objectKey(a.namespace, a.name), {
          replaced: (all) => l.forEach((x) => x.agentsReplaced?.(all)),
          changed: (prev, next) => l.forEach((x) => x.agentChanged?.(prev, next)),
        }),
        logger,
        options('agents'),
      ) as Reflector<unknown>,
    );
  }

  start(): void {
    for (const r of this.reflectors) this.runs.push(r.run());
  }

  async stop(): Promise<void> {
    for (const r of this.reflectors) r.stop();
    await Promise.allSettled(this.runs);
  }

  /** Kinds whose initial list has not completed yet. */
  unsynced(): string[] {
    return this.reflectors.flatMap((r, i) => (r.synced ? [] : [INFORMER_KINDS[i]!]));
  }

  /** For fault tests: drop every watch connection. */
  disconnectAll(): void {
    for (const r of this.reflectors) r.disconnect();
  }
}
