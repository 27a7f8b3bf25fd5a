// Watches the admin's policy ConfigMap in the service's own namespace and feeds it to the
// PolicyHolder; a broken config is reported (log, metric) and the last good list stays.

import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { POLICY_CONFIGMAP_NAME } from '../config/names.ts';
import type { Logger } from '../logging/logger.ts';
import { isObject, type JsonObject } from '../model/objects.ts';
import type { PolicyHolder, PolicyStatus } from '../policy/holder.ts';
import { Reflector, type ReflectorOptions } from './reflector.ts';
import { policyTextOf } from './state-file.ts';

export function watchPolicy(kc: KubeConfig, namespace: string, holder: PolicyHolder, logger: Logger, onStatus: (s: PolicyStatus) => void, options: ReflectorOptions = {}): Reflector<JsonObject> {
  const api = kc.makeApiClient(CoreV1Api);
  const fieldSelector = `metadata.name=${POLICY_CONFIGMAP_NAME}`;
  const apply = (obj: JsonObject | undefined): void => {
    const status = holder.apply(obj ? policyTextOf(obj) : undefined);
    if (status.valid) logger.info({ source: status.source, entries: holder.current.length }, 'connector policy in force');
    else logger.error({ configMap: `${namespace}/${POLICY_CONFIGMAP_NAME}`, reason: status.reason }, 'connector policy ConfigMap is invalid; the last good list stays in force');
    onStatus(status);
  };
  return new Reflector<JsonObject>(
    kc,
    {
      kind: 'policy-configmap',
      watchPath: `/api/v1/namespaces/${namespace}/configmaps`,
      watchQuery: { fieldSelector },
      list: async (token) => {
        const list = (await api.listNamespacedConfigMap({ namespace, fieldSelector, _continue: token })) as unknown as JsonObject;
        const md = isObject(list.metadata) ? list.metadata : {};
        const items = Array.isArray(list.items) ? list.items.map((i) => ({ kind: 'ConfigMap', ...(i as JsonObject) })) : [];
        return { items, resourceVersion: typeof md.resourceVersion === 'string' ? md.resourceVersion : '', continueToken: undefined };
      },
      decode: (raw) => ({ kind: 'ConfigMap', ...raw }),
    },
    {
      replace: (items) => apply(items[0]),
      upsert: (item) => apply(item),
      remove: () => apply(undefined),
    },
    logger,
    options,
  );
}
