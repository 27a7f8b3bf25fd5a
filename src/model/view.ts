import type { PolicyList } from '../policy/incompatible.ts';
import type { Agent, Connector, NamespaceInfo } from './objects.ts';

/**
 * What the decisions may know of the cluster. The server backs it with watch caches,
 * the CLI with a state file: both run the same decision code against this interface.
 */
export interface ClusterView {
  namespace(name: string): NamespaceInfo | undefined;
  connector(namespace: string, name: string): Connector | undefined;
  agent(namespace: string, name: string): Agent | undefined;
  /** The known-incompatible list in force (the admin's ConfigMap merged with the built-ins). */
  policy(): PolicyList;
}
