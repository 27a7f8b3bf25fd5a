// Reads and patches the caBundle of this service's own webhook configurations, by name
// only (RBAC grants get/patch on exactly these names).

import { AdmissionregistrationV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';

export interface WebhookConfigNames {
  readonly mutating: string;
  readonly validating: string;
}

export type BundleRead = { ok: true; bundles: string[] } | { ok: false; reason: string };

function decode(b64: string | undefined): string {
  return b64 ? Buffer.from(b64, 'base64').toString('utf8') : '';
}

export class WebhookConfigs {
  private readonly api: AdmissionregistrationV1Api;
  readonly names: WebhookConfigNames;

  constructor(kc: KubeConfig, names: WebhookConfigNames) {
    this.api = kc.makeApiClient(AdmissionregistrationV1Api);
    this.names = names;
  }

  /** The caBundle of every webhook in both configurations, decoded to PEM. */
  async bundles(): Promise<BundleRead> {
    try {
      const [m, v] = await Promise.all([this.api.readMutatingWebhookConfiguration({ name: this.names.mutating }), this.api.readValidatingWebhookConfiguration({ name: this.names.validating })]);
      const hooks = [...(m.webhooks ?? []), ...(v.webhooks ?? [])];
      return { ok: true, bundles: hooks.map((h) => decode(h.clientConfig.caBundle)) };
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      return { ok: false, reason: code === 404 ? 'webhook configuration not found' : `cannot read the webhook configurations (${typeof code === 'number' ? `HTTP ${code}` : e instanceof Error ? e.message : 'error'})` };
    }
  }

  /** Sets every webhook's caBundle to `bundlePem` (JSON patch, RBAC verb patch); returns how many configurations changed. */
  async patchBundle(bundlePem: string): Promise<number> {
    const b64 = Buffer.from(bundlePem).toString('base64');
    const options = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
    const opsFor = (hooks: { name: string; clientConfig: { caBundle?: string } }[]): object[] =>
      hooks.flatMap((h, i) =>
        decode(h.clientConfig.caBundle) === bundlePem
          ? []
          : [
              // The test op pins the index to the webhook we read, so a concurrent edit fails instead of patching the wrong entry.
              { op: 'test', path: `/webhooks/${i}/name`, value: h.name },
              { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: b64 },
            ],
      );
    let changed = 0;
    const m = await this.api.readMutatingWebhookConfiguration({ name: this.names.mutating });
    const mOps = opsFor(m.webhooks ?? []);
    if (mOps.length > 0) {
      await this.api.patchMutatingWebhookConfiguration({ name: this.names.mutating, body: mOps }, options);
      changed++;
    }
    const v = await this.api.readValidatingWebhookConfiguration({ name: this.names.validating });
    const vOps = opsFor(v.webhooks ?? []);
    if (vOps.length > 0) {
      await this.api.patchValidatingWebhookConfiguration({ name: this.names.validating, body: vOps }, options);
      changed++;
    }
    return changed;
  }
}
