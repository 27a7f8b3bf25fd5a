// Writes connector status through the status subresource with a JSON merge patch that
// carries the observed resourceVersion, so a concurrent writer makes us re-read (409)
// instead of being overwritten blindly.

import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { StatusWriter, WriteResult } from '../attachments/controller.ts';
import { CONNECTOR_PLURAL, GROUP, VERSION } from '../config/names.ts';

export const FIELD_MANAGER = 'komputer-connector-webhook';

export function apiStatusWriter(kc: KubeConfig): StatusWriter & { writes: number } {
  const api = kc.makeApiClient(CustomObjectsApi);
  const options = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const writer = {
    writes: 0,
    async write(namespace: string, name: string, status: { attachedAgents: number; agentNames: readonly string[] }, resourceVersion: string | undefined): Promise<WriteResult> {
      const body = { metadata: resourceVersion ? { resourceVersion } : {}, status: { attachedAgents: status.attachedAgents, agentNames: [...status.agentNames] } };
      try {
        writer.writes++;
        const out = (await api.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: CONNECTOR_PLURAL, name, body, fieldManager: FIELD_MANAGER }, options)) as { metadata?: { resourceVersion?: string } };
        return { kind: 'written', resourceVersion: out.metadata?.resourceVersion };
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (code === 409) return { kind: 'conflict' };
        if (code === 404) return { kind: 'gone' };
        throw e;
      }
    },
  };
  return writer;
}
