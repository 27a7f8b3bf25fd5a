// Self-managed certificates: the CA and serving certificate live in one Secret in the
// service's namespace. Every replica reads it and serves its certificate; only the elected
// leader writes it (with resourceVersion preconditions, so a deposed leader cannot
// overwrite a newer state) and patches the caBundle of this service's own webhook
// configurations. Decisions come from planCertificates (pure).

import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../logging/logger.ts';
import { mergeBundle } from './bundle.ts';
import { generateCertificates } from './generate.ts';
import { planCertificates, type CertMaterial, type CertPolicy, type Plan } from './plan.ts';
import type { WebhookConfigs } from './webhook-configs.ts';

const KEYS = { cert: 'tls.crt', key: 'tls.key', caCert: 'ca.crt', caKey: 'ca.key', bundle: 'ca-bundle.crt', nextCaCert: 'next-ca.crt', nextCaKey: 'next-ca.key' } as const;

function fromSecret(secret: V1Secret | undefined): CertMaterial | undefined {
  const d = secret?.data;
  if (!d) return undefined;
  const get = (k: string): string => (d[k] ? Buffer.from(d[k], 'base64').toString('utf8') : '');
  const m = { caCert: get(KEYS.caCert), caKey: get(KEYS.caKey), cert: get(KEYS.cert), key: get(KEYS.key), bundle: get(KEYS.bundle), nextCaCert: get(KEYS.nextCaCert) || undefined, nextCaKey: get(KEYS.nextCaKey) || undefined };
  return m.cert && m.key ? m : undefined;
}

function toData(m: CertMaterial): Record<string, string> {
  const data: Record<string, string> = {};
  const put = (k: string, v: string | undefined): void => {
    if (v) data[k] = Buffer.from(v).toString('base64');
  };
  put(KEYS.cert, m.cert);
  put(KEYS.key, m.key);
  put(KEYS.caCert, m.caCert);
  put(KEYS.caKey, m.caKey);
  put(KEYS.bundle, m.bundle);
  put(KEYS.nextCaCert, m.nextCaCert);
  put(KEYS.nextCaKey, m.nextCaKey);
  return data;
}

export interface SelfManagedOptions {
  readonly namespace: string;
  readonly secretName: string;
  readonly policy: CertPolicy;
  readonly pollMs: number;
}

export class SelfManagedCertificates {
  private readonly api: CoreV1Api;
  private readonly options: SelfManagedOptions;
  private readonly webhooks: WebhookConfigs;
  private readonly logger: Logger;
  private readonly onMaterial: (m: CertMaterial) => void;
  private material: CertMaterial | undefined;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> | undefined;
  /** Plans executed, for tests and logs. */
  readonly actions: Plan['kind'][] = [];

  constructor(kc: KubeConfig, webhooks: WebhookConfigs, options: SelfManagedOptions, logger: Logger, onMaterial: (m: CertMaterial) => void) {
    this.api = kc.makeApiClient(CoreV1Api);
    this.webhooks = webhooks;
    this.options = options;
    this.logger = logger.child({ component: 'certificates', secret: `${options.namespace}/${options.secretName}` });
    this.onMaterial = onMaterial;
  }

  start(): void {
    const tick = (): void => {
      this.busy = this.sync().finally(() => {
        this.busy = undefined;
        this.timer = setTimeout(tick, this.options.pollMs);
        this.timer.unref();
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.busy;
  }

  /** The leader (only) writes the Secret and the caBundle. */
  setLeading(leading: boolean): void {
    this.leading = leading;
    if (leading && !this.busy) {
      if (this.timer) clearTimeout(this.timer);
      this.start();
    }
  }

  private async read(): Promise<V1Secret | undefined> {
    try {
      return await this.api.readNamespacedSecret({ name: this.options.secretName, namespace: this.options.namespace });
    } catch (e) {
      if ((e as { code?: unknown }).code === 404) return undefined;
      throw e;
    }
  }

  private observe(m: CertMaterial | undefined): void {
    if (m && (m.cert !== this.material?.cert || m.key !== this.material?.key)) this.onMaterial(m);
    this.material = m;
  }

  async sync(): Promise<void> {
    try {
      const secret = await this.read();
      this.observe(fromSecret(secret));
      if (!this.leading) return;
      const bundles = await this.webhooks.bundles();
      const plan = planCertificates(this.material, new Date(), this.options.policy, bundles.ok ? bundles.bundles : []);
      if (plan.kind === 'keep') return;
      this.actions.push(plan.kind);
      const next = plan.kind === 'patch-bundle' ? this.material! : await this.execute(plan, this.material);
      if (next !== this.material) await this.write(secret, next);
      const changed = bundles.ok ? await this.webhooks.patchBundle(next.bundle) : 0;
      this.logger.info({ action: plan.kind, webhookConfigsPatched: changed }, 'certificates updated');
    } catch (e) {
      this.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'certificate sync failed; will retry');
    }
  }

  private async issue(ca?: { cert: string; key: string }) {
    const p = this.options.policy;
    // Backdated a little for clock skew, never by a large share of a short lifetime (the
    // renewal point is a fraction of notBefore..notAfter).
    const backdateMs = Math.min(60_000, p.certValidityMs / 10);
    return generateCertificates({ dnsNames: p.dnsNames, ipAddresses: p.ipAddresses, validityMs: p.certValidityMs, caValidityMs: p.caValidityMs, backdateMs, ...(ca ? { ca } : {}) });
  }

  private async execute(plan: Plan, m: CertMaterial | undefined): Promise<CertMaterial> {
    const now = new Date();
    switch (plan.kind) {
      case 'create': {
        const g = await this.issue();
        return { caCert: g.caCert, caKey: g.caKey, cert: g.cert, key: g.key, bundle: mergeBundle([g.caCert, m?.bundle ?? ''], now) };
      }
      case 'stage-ca': {
        const g = await this.issue(); // only its CA is used; the serving cert follows once trusted
        return { ...m!, nextCaCert: g.caCert, nextCaKey: g.caKey, bundle: mergeBundle([m!.bundle, g.caCert], now) };
      }
      case 'promote-ca': {
        const g = await this.issue({ cert: m!.nextCaCert!, key: m!.nextCaKey! });
        return { caCert: g.caCert, caKey: g.caKey, cert: g.cert, key: g.key, bundle: m!.bundle, nextCaCert: undefined, nextCaKey: undefined };
      }
      case 'renew-cert': {
        const g = await this.issue({ cert: m!.caCert, key: m!.caKey });
        return { ...m!, cert: g.cert, key: g.key };
      }
      case 'prune-bundle':
        return { ...m!, bundle: mergeBundle([m!.caCert, m!.nextCaCert ?? '', m!.bundle], now) };
      default:
        return m!;
    }
  }

  private async write(current: V1Secret | undefined, m: CertMaterial): Promise<void> {
    const { namespace, secretName } = this.options;
    if (current) {
      // resourceVersion from our read: if anyone wrote in between, this fails (409) and the
      // next tick re-plans from what is actually stored.
      await this.api.replaceNamespacedSecret({ name: secretName, namespace, body: { ...current, type: current.type ?? 'Opaque', data: toData(m) } });
    } else {
      await this.api.createNamespacedSecret({ namespace, body: { metadata: { name: secretName, namespace, labels: { 'app.kubernetes.io/name': 'komputer-connector-webhook' } }, type: 'Opaque', data: toData(m) } });
    }
    this.observe(m);
  }
}
