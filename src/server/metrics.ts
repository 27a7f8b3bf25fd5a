// Prometheus metrics, on their own registry so tests can create several servers.
// Labels are low-cardinality by construction: path, verdict, kind. Never names or values.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { readCgroupMemoryLimit } from './cgroup-memory.ts';
import { FINDING_KINDS } from '../injection/findings.ts';

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'path' | 'verdict'>;
  readonly duration: Histogram<'path'>;
  readonly badRequests: Counter<'path'>;
  readonly warnings: Counter<'path'>;
  readonly cacheObjects: Gauge<'kind'>;
  readonly cacheSynced: Gauge<'kind'>;
  readonly watchRestarts: Counter<'kind' | 'reason'>;
  readonly certNotAfter: Gauge<'source'>;
  readonly certReloads: Counter<'result'>;
  readonly policyValid: Gauge;
  readonly policyEntries: Gauge;
  readonly reconciles: Counter<'result'>;
  readonly queueDepth: Gauge;
  readonly leader: Gauge;
  readonly ready: Gauge;
  readonly eventsWritten: Counter<'operation'>;
  readonly eventsDropped: Counter<'reason'>;
  readonly eventsPending: Gauge;
  readonly memoryLimit: Gauge<'cgroup'>;
  readonly findings: Counter<'kind'>;
  readonly policyViolations: Gauge<'entry' | 'action'>;
  readonly revocations: Counter<'result'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'komputer_webhook_' });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({ name: 'komputer_webhook_admission_requests_total', help: 'Admission requests by path and verdict (patched, allowed, denied, error).', labelNames: ['path', 'verdict'], registers }),
    duration: new Histogram({
      name: 'komputer_webhook_admission_duration_seconds',
      help: 'Time from the request body being read to the response being written.',
      labelNames: ['path'],
      // 2.5 and 5: half and all of the webhooks' timeoutSeconds (5), so the latency alert
      // (p99 above half the timeout) can see past 1 s; the namespace-cache wait alone is 2 s.
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2.5, 5],
      registers,
    }),
    badRequests: new Counter({ name: 'komputer_webhook_bad_requests_total', help: 'Requests answered 4xx because the body was not a usable AdmissionReview.', labelNames: ['path'], registers }),
    warnings: new Counter({ name: 'komputer_webhook_admission_warnings_total', help: 'Admission warnings returned to users.', labelNames: ['path'], registers }),
    cacheObjects: new Gauge({ name: 'komputer_webhook_cache_objects', help: 'Objects in the watch caches, by kind.', labelNames: ['kind'], registers }),
    cacheSynced: new Gauge({ name: 'komputer_webhook_cache_synced', help: '1 when the cache of this kind has completed its initial list.', labelNames: ['kind'], registers }),
    watchRestarts: new Counter({
      name: 'komputer_webhook_watch_restarts_total',
      help: 'List/watch restarts of the caches by kind and reason: timeout (the API server ended the watch at its timeout: normal), expired (410 Gone: relisted), disconnect (dropped on purpose), error (a failed list or watch attempt, logged as a warning and retried with backoff).',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    certNotAfter: new Gauge({ name: 'komputer_webhook_certificate_not_after_seconds', help: 'Expiry (unix time) of the certificate being served.', labelNames: ['source'], registers }),
    certReloads: new Counter({ name: 'komputer_webhook_certificate_reloads_total', help: 'Serving certificate reloads by result (loaded, rejected).', labelNames: ['result'], registers }),
    policyValid: new Gauge({ name: 'komputer_webhook_policy_config_valid', help: '0 when the policy ConfigMap is invalid (the last good list stays in force).', registers }),
    policyEntries: new Gauge({ name: 'komputer_webhook_policy_entries', help: 'Entries on the known-incompatible list in force.', registers }),
    reconciles: new Counter({ name: 'komputer_webhook_attachment_reconciles_total', help: 'Connector status reconciles by result (unchanged, written, conflict, gone, error); written = status writes.', labelNames: ['result'], registers }),
    queueDepth: new Gauge({ name: 'komputer_webhook_attachment_queue_depth', help: 'Connector keys waiting for a reconcile.', registers }),
    leader: new Gauge({ name: 'komputer_webhook_leader', help: '1 while this replica holds the lease and runs the controller.', registers }),
    ready: new Gauge({ name: 'komputer_webhook_ready', help: '1 while this replica passes its readiness check (/readyz), as of the scrape.', registers }),
    eventsWritten: new Counter({ name: 'komputer_webhook_events_written_total', help: 'Event writes on KomputerAgents that succeeded, by operation: create (a new Event), patch (series count of an existing one).', labelNames: ['operation'], registers }),
    eventsDropped: new Counter({
      name: 'komputer_webhook_events_dropped_total',
      help: 'Events on KomputerAgents not written, by reason: queue_full, rate_limited (an agent\'s similar-event budget), timeout, write_failed, shutdown.',
      labelNames: ['reason'],
      registers,
    }),
    eventsPending: new Gauge({ name: 'komputer_webhook_events_pending', help: 'Events on KomputerAgents waiting for a write.', registers }),
    memoryLimit: new Gauge({
      name: 'komputer_webhook_memory_limit_bytes',
      help: 'Memory limit of this process\'s cgroup (the container limit), read at each scrape; by cgroup (v1, v2). No series when there is no limit.',
      labelNames: ['cgroup'],
      registers,
      collect() {
        this.reset();
        const limit = readCgroupMemoryLimit();
        if (limit !== undefined) this.set({ cgroup: limit.version }, limit.bytes);
      },
    }),
    findings: findingsCounter(registers),
    revocations: new Counter({
      name: 'komputer_webhook_revocations_total',
      help: 'Evictions of running agent pods that hold a connector their agent should no longer get (--revocation), by result: evicted, blocked (refused for now, e.g. by a PodDisruptionBudget), gone (already deleted), failed. Leader only.',
      labelNames: ['result'],
      registers,
    }),
    policyViolations: new Gauge({
      name: 'komputer_webhook_policy_violations',
      help: 'Connectors (in any namespace) that a policy entry matches with an auth type it does not allow, by entry and action (deny, warn, audit): deny refuses them at admission and leaves them out of pods. Set by the leader from its caches.',
      labelNames: ['entry', 'action'],
      registers,
    }),
  };
}

/** Findings of pod admissions (not dry runs), by kind; every kind from the start, at 0, so a first one shows as an increase. */
function findingsCounter(registers: Registry[]): Counter<'kind'> {
  const c = new Counter({
    name: 'komputer_webhook_injection_findings_total',
    help: 'What pod admissions found, by kind (findings.ts): skip reasons such as refused (a policy entry in deny mode), disabled, not-visible; policy-warn and policy-audit for connectors injected under a warn or audit entry; pod- and container-level kinds.',
    labelNames: ['kind'],
    registers,
  });
  for (const kind of FINDING_KINDS) c.inc({ kind }, 0);
  return c;
}
