// The leader's komputer_webhook_policy_violations gauge: recomputed from the watch cache
// (no API call) whenever a connector or the policy changes, debounced so a relist of many
// connectors is one pass. Other replicas export no series (the leader's is the answer).

import type { Logger } from '../logging/logger.ts';
import type { PolicyList } from '../policy/incompatible.ts';
import { countViolations, type ViolationCount } from '../policy/violations.ts';
import type { Gauge } from 'prom-client';
import type { StoreListener } from './informers.ts';
import type { ClusterStore } from './store.ts';

export class PolicyViolationsGauge implements StoreListener {
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private last = '';
  /** Passes run (for tests and the bench: each one reads only the cache). */
  passes = 0;
  private readonly store: ClusterStore;
  private readonly policy: () => PolicyList;
  private readonly gauge: Gauge<'entry' | 'action'>;
  private readonly logger: Logger;
  private readonly debounceMs: number;

  constructor(store: ClusterStore, policy: () => PolicyList, gauge: Gauge<'entry' | 'action'>, logger: Logger, debounceMs = 250) {
    this.store = store;
    this.policy = policy;
    this.gauge = gauge;
    this.logger = logger;
    this.debounceMs = debounceMs;
  }

  connectorsReplaced(): void {
    this.schedule();
  }

  connectorChanged(): void {
    this.schedule();
  }

  /** The policy ConfigMap changed (or was found invalid: the last good list stays, counts too). */
  policyChanged(): void {
    this.schedule();
  }

  setLeading(leading: boolean): void {
    this.leading = leading;
    if (leading) this.schedule(0);
    else {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.gauge.reset();
      this.last = '';
    }
  }

  /** One pass now: the counts, set on the gauge. */
  recompute(): ViolationCount[] {
    this.passes++;
    const counts = countViolations(this.store.connectors.values(), this.policy());
    this.gauge.reset();
    for (const c of counts) this.gauge.set({ entry: c.entry, action: c.action }, c.connectors);
    const summary = JSON.stringify(counts.filter((c) => c.connectors > 0));
    if (summary !== this.last) {
      this.last = summary;
      this.logger.info({ violations: counts.filter((c) => c.connectors > 0) }, 'connectors that violate the policy (komputer_webhook_policy_violations)');
    }
    return counts;
  }

  private schedule(ms = this.debounceMs): void {
    if (!this.leading || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.leading) this.recompute();
    }, ms);
    this.timer.unref();
  }

  stop(): void {
    this.setLeading(false);
  }
}
