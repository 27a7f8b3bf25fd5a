// Leader election over a coordination.k8s.io Lease, as client-go does it: acquire when the
// lease is free or has not been renewed for its duration (measured on our own clock since
// we last saw it change, so clock skew between replicas does not matter), renew
// periodically with optimistic concurrency, step down when a renewal fails for too long,
// and release on graceful shutdown so a successor need not wait out the duration.

import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../logging/logger.ts';

export interface LeaseOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationSeconds: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

export const LEASE_DEFAULTS = { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } as const;

export interface LeaderCallbacks {
  onStartedLeading(): void;
  onStoppedLeading(): void;
}

function statusCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly options: LeaseOptions;
  private readonly logger: Logger;
  private readonly callbacks: LeaderCallbacks;
  private leading = false;
  private stopped = false;
  private lastRenew = 0;
  private observedRecord = '';
  private observedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;

  constructor(kc: KubeConfig, options: LeaseOptions, callbacks: LeaderCallbacks, logger: Logger) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.options = options;
    this.callbacks = callbacks;
    this.logger = logger.child({ component: 'leader-election', lease: `${options.namespace}/${options.name}`, identity: options.identity });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      await this.tryAcquireOrRenew();
      if (!this.stopped) {
        this.timer = setTimeout(() => {
          this.loop = tick();
        }, this.options.retryPeriodMs);
      }
    };
    this.loop = tick();
  }

  /** Stops campaigning; releases the lease if held, so a successor takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.loop;
    if (this.leading) {
      this.setLeading(false);
      try {
        const lease = await this.api.readNamespacedLease({ name: this.options.name, namespace: this.options.namespace });
        if (lease.spec?.holderIdentity === this.options.identity) {
          lease.spec.holderIdentity = undefined;
          lease.spec.leaseDurationSeconds = 1;
          lease.spec.renewTime = new V1MicroTime();
          await this.api.replaceNamespacedLease({ name: this.options.name, namespace: this.options.namespace, body: lease });
          this.logger.info('lease released');
        }
      } catch (e) {
        this.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not release the lease; it will expire');
      }
    }
  }

  private setLeading(value: boolean): void {
    if (value === this.leading) return;
    this.leading = value;
    if (value) {
      this.logger.info('became leader');
      this.callbacks.onStartedLeading();
    } else {
      this.logger.info('stopped leading');
      this.callbacks.onStoppedLeading();
    }
  }

  private newSpec(transitions: number, acquire: boolean, previous?: V1Lease['spec']): NonNullable<V1Lease['spec']> {
    const now = new V1MicroTime();
    return {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: this.options.leaseDurationSeconds,
      acquireTime: acquire ? now : (previous?.acquireTime ?? now),
      renewTime: now,
      leaseTransitions: transitions,
    };
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { namespace, name, identity } = this.options;
    try {
      let lease: V1Lease;
      try {
        lease = await this.api.readNamespacedLease({ name, namespace });
      } catch (e) {
        if (statusCode(e) !== 404) throw e;
        await this.api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: this.newSpec(0, true) } });
        this.renewed();
        return;
      }
      const spec = lease.spec ?? {};
      const record = `${spec.holderIdentity ?? ''}|${spec.renewTime ? new Date(spec.renewTime).toISOString() : ''}`;
      const now = Date.now();
      if (record !== this.observedRecord) {
        this.observedRecord = record;
        this.observedAt = now;
      }
      const held = !!spec.holderIdentity && spec.holderIdentity !== identity;
      const durationMs = (spec.leaseDurationSeconds ?? this.options.leaseDurationSeconds) * 1000;
      if (held && now - this.observedAt < durationMs) {
        this.setLeading(false);
        return; // someone else holds a live lease
      }
      const mine = spec.holderIdentity === identity;
      lease.spec = this.newSpec((spec.leaseTransitions ?? 0) + (mine ? 0 : 1), !mine, spec);
      await this.api.replaceNamespacedLease({ name, namespace, body: lease }); // carries resourceVersion: a race loses with 409
      if (!mine) this.logger.info({ previousHolder: spec.holderIdentity ?? null }, 'lease acquired');
      this.renewed();
    } catch (e) {
      const code = statusCode(e);
      if (code !== 409) this.logger.warn({ err: e instanceof Error ? e.message : String(e), code }, 'lease acquire/renew failed');
      // Step down once we could not renew within the deadline: another replica may take over.
      if (this.leading && Date.now() - this.lastRenew > this.options.renewDeadlineMs) this.setLeading(false);
    }
  }

  private renewed(): void {
    this.lastRenew = Date.now();
    this.setLeading(true);
  }
}
