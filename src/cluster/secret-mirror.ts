// Opt-in Secret mirroring (--mirror-shared-secrets, with the extra RBAC of
// manifests/components/secret-mirroring): keeps `<secret>-from-<ns>` in each namespace that
// desiredMirrors() names in sync with its source, and deletes the mirrors this service
// made that are no longer needed. Mirrors someone else made (the platform) are left alone.
// Secret data is copied as opaque bytes and never logged.

import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { LABEL_SYNCED_FOR_CONNECTOR, LABEL_SYNCED_FROM_NAMESPACE } from '../config/names.ts';
import type { Logger } from '../logging/logger.ts';
import { mirrorKey, type MirrorSpec } from '../attachments/mirrors.ts';

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGER = 'komputer-connector-webhook';

function code(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

function sameData(a: V1Secret['data'], b: V1Secret['data']): boolean {
  const ka = Object.keys(a ?? {}).sort();
  const kb = Object.keys(b ?? {}).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a![k] === b![k]);
}

export interface MirrorResult {
  created: number;
  updated: number;
  deleted: number;
  skipped: number;
}

export class SecretMirror {
  private readonly api: CoreV1Api;
  private readonly logger: Logger;

  constructor(kc: KubeConfig, logger: Logger) {
    this.api = kc.makeApiClient(CoreV1Api);
    this.logger = logger.child({ component: 'secret-mirror' });
  }

  async reconcile(desired: Map<string, MirrorSpec>): Promise<MirrorResult> {
    const result: MirrorResult = { created: 0, updated: 0, deleted: 0, skipped: 0 };
    for (const m of desired.values()) {
      try {
        await this.ensure(m, result);
      } catch (e) {
        result.skipped++;
        this.logger.warn({ mirror: mirrorKey(m), source: `${m.sourceNamespace}/${m.sourceSecret}`, code: code(e) }, 'could not mirror the Secret; will retry');
      }
    }
    const ours = await this.api.listSecretForAllNamespaces({ labelSelector: `${LABEL_MANAGED_BY}=${MANAGER},${LABEL_SYNCED_FOR_CONNECTOR}` });
    for (const s of ours.items) {
      const key = `${s.metadata?.namespace}/${s.metadata?.name}`;
      if (desired.has(key)) continue;
      try {
        await this.api.deleteNamespacedSecret({ name: s.metadata!.name!, namespace: s.metadata!.namespace! });
        result.deleted++;
        this.logger.info({ mirror: key }, 'deleted a Secret mirror no longer needed');
      } catch (e) {
        if (code(e) !== 404) this.logger.warn({ mirror: key, code: code(e) }, 'could not delete a Secret mirror; will retry');
      }
    }
    return result;
  }

  private async ensure(m: MirrorSpec, result: MirrorResult): Promise<void> {
    let source: V1Secret;
    try {
      source = await this.api.readNamespacedSecret({ name: m.sourceSecret, namespace: m.sourceNamespace });
    } catch (e) {
      if (code(e) === 404) {
        result.skipped++;
        return; // nothing to mirror yet; the pod's secretKeyRef waits for it
      }
      throw e;
    }
    const labels = { [LABEL_SYNCED_FROM_NAMESPACE]: m.sourceNamespace, [LABEL_SYNCED_FOR_CONNECTOR]: m.connector, [LABEL_MANAGED_BY]: MANAGER };
    let target: V1Secret | undefined;
    try {
      target = await this.api.readNamespacedSecret({ name: m.name, namespace: m.targetNamespace });
    } catch (e) {
      if (code(e) !== 404) throw e;
    }
    if (!target) {
      await this.api.createNamespacedSecret({ namespace: m.targetNamespace, body: { metadata: { name: m.name, namespace: m.targetNamespace, labels }, type: source.type ?? 'Opaque', data: source.data ?? {} } });
      result.created++;
      this.logger.info({ mirror: mirrorKey(m), source: `${m.sourceNamespace}/${m.sourceSecret}` }, 'mirrored a shared connector Secret');
      return;
    }
    if (target.metadata?.labels?.[LABEL_MANAGED_BY] !== MANAGER) {
      result.skipped++;
      return; // made by someone else (the platform): not ours to change
    }
    if (sameData(target.data, source.data)) return;
    await this.api.replaceNamespacedSecret({ name: m.name, namespace: m.targetNamespace, body: { ...target, data: source.data ?? {} } });
    result.updated++;
    this.logger.info({ mirror: mirrorKey(m) }, 'updated a Secret mirror from its source');
  }
}
