// The in-memory cluster view: decoded, narrow records keyed by namespace/name. The watch
// caches (server) and the state file (CLI, `serve --state`) both fill one of these, so the
// decision code cannot tell them apart.

import { objectKey as key, type Agent, type Connector, type NamespaceInfo } from '../model/objects.ts';
import type { ClusterView } from '../model/view.ts';
import { BUILTIN_POLICY, type PolicyList } from '../policy/incompatible.ts';

export type Kind = 'namespace' | 'connector' | 'agent';

export class ClusterStore implements ClusterView {
  readonly namespaces = new Map<string, NamespaceInfo>();
  readonly connectors = new Map<string, Connector>();
  readonly agents = new Map<string, Agent>();

  namespace(name: string): NamespaceInfo | undefined {
    return this.namespaces.get(name);
  }

  connector(namespace: string, name: string): Connector | undefined {
    return this.connectors.get(key(namespace, name));
  }

  agent(namespace: string, name: string): Agent | undefined {
    return this.agents.get(key(namespace, name));
  }

  /** Where the policy in force comes from: the PolicyHolder fed by the ConfigMap watch or the state file. */
  policySource: () => PolicyList = () => BUILTIN_POLICY;

  policy(): PolicyList {
    return this.policySource();
  }

  putNamespace(ns: NamespaceInfo): void {
    this.namespaces.set(ns.name, ns);
    this.namespaceChanged(ns.name);
  }

  private readonly namespaceWaiters = new Map<string, Set<() => void>>();

  /** Wakes requests waiting for this namespace (or all, for a relist). */
  namespaceChanged(name?: string): void {
    const names = name === undefined ? [...this.namespaceWaiters.keys()] : [name];
    for (const n of names) {
      const waiters = this.namespaceWaiters.get(n);
      this.namespaceWaiters.delete(n);
      waiters?.forEach((wake) => wake());
    }
  }

  /** Resolves true when the cached namespace changes, false after `timeoutMs`. */
  awaitNamespaceChange(name: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      let set = this.namespaceWaiters.get(name);
      if (!set) this.namespaceWaiters.set(name, (set = new Set()));
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        set.delete(wake);
        resolve(false);
      }, timeoutMs);
      set.add(wake);
    });
  }

  putConnector(c: Connector): void {
    this.connectors.set(key(c.namespace, c.name), c);
  }

  putAgent(a: Agent): void {
    this.agents.set(key(a.namespace, a.name), a);
  }

  sizes(): Record<Kind, number> {
    return { namespace: this.namespaces.size, connector: this.connectors.size, agent: this.agents.size };
  }
}
