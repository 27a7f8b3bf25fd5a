// Routing by path and kind to the pure decisions. Handlers gather nothing themselves: the
// request and the cluster view come in, a response and a log reason go out.

import { AGENT_KIND, CONNECTOR_KIND, GROUP } from '../config/names.ts';
import { podAdmissionEvents, type AgentEvent, type PodAdmission } from '../injection/events.ts';
import type { Finding } from '../injection/findings.ts';
import { injectEphemeralContainers, injectPod, type InjectionOutcome } from '../injection/inject.ts';
import { attachedAgentsOf, decodeAgent, decodeConnector, DecodeError, isObject, type Connector, type JsonObject } from '../model/objects.ts';
import { evaluateAgent } from '../policy/agent.ts';
import type { PolicyList } from '../policy/incompatible.ts';
import { evaluateConnector, type Verdict } from '../policy/verdict.ts';
import type { ClusterView } from '../model/view.ts';
import { allowed, decodeReview, denied, patched, review, type AdmissionRequest, type AdmissionResponse, type AdmissionReviewOut } from './review.ts';

export interface AdmissionContext {
  readonly view: ClusterView;
  /** The known-incompatible list in force. */
  readonly policy: () => PolicyList;
  /** Watch caches only: resolves true once the namespace's cached object changes (false on timeout). */
  readonly awaitNamespaceChange?: (name: string, timeoutMs: number) => Promise<boolean>;
  /** Pod decisions carry the Events to record on the agents (only where a recorder runs). */
  readonly events?: boolean;
}

/** What the pod handler keeps to compute the agents' Events after the answer is written. */
type EventInputs = PodAdmission;

/**
 * A handler's answer. One class, so every decision on the request path has the same shape
 * (V8 keeps the handlers optimised only while the objects they see keep one map); optional
 * fields are `undefined` (pino and JSON drop them). The log line's `injected` and the
 * agents' Events are computed on first read, after the response is written, never on the
 * request path, and only once.
 */
const NO_FINDINGS: readonly Finding[] = [];

export class Decision {
  readonly response: AdmissionResponse;
  /** Why the object was left alone or refused, for the log line. */
  readonly reason: string | undefined;
  /** The cache said this namespace is not enabled although the API server sent the pod. */
  readonly staleNamespace: string | undefined;
  /** Pods: what the decision found, as data (metrics count them by kind); empty otherwise. */
  readonly findings: readonly Finding[];
  #outcome: InjectionOutcome | undefined;
  #eventInputs: EventInputs | undefined;
  #injected: string | undefined | null = null;
  #events: AgentEvent[] | undefined | null = null;

  constructor(response: AdmissionResponse, reason: string | undefined, staleNamespace: string | undefined = undefined, outcome: InjectionOutcome | undefined = undefined, eventInputs: EventInputs | undefined = undefined) {
    this.response = response;
    this.reason = reason;
    this.staleNamespace = staleNamespace;
    this.findings = outcome ? outcome.findings : NO_FINDINGS;
    this.#outcome = outcome;
    this.#eventInputs = eventInputs;
  }

  /** Pods: which container got which connectors (`container=ref,ref ...`), for the log line. */
  get injected(): string | undefined {
    if (this.#injected === null) this.#injected = this.#outcome ? injectedSummary(this.#outcome) : undefined;
    return this.#injected;
  }

  /**
   * Pods: the Events for the agents' owners (undefined when there are none, for a dry run,
   * or where no recorder runs). Computed on first read: the server reads it after the answer.
   */
  get events(): AgentEvent[] | undefined {
    if (this.#events === null) {
      const events = this.#eventInputs ? podAdmissionEvents(this.#eventInputs) : [];
      this.#events = events.length > 0 ? events : undefined;
      this.#eventInputs = undefined;
    }
    return this.#events;
  }
}

/** A request that decodes but cannot be acted on (HTTP 400 with this reason). */
export class BadRequest extends Error {
  override name = 'BadRequest';
}

export type Handler = (req: AdmissionRequest, ctx: AdmissionContext) => Decision;

function unexpectedKind(req: AdmissionRequest, path: string): Decision {
  const what = `${req.kind.group || 'core'}/${req.kind.version} ${req.kind.kind}`;
  const reason = `${path} does not handle ${what}; allowed unchanged (check the webhook configuration's rules)`;
  return new Decision(allowed(req.uid, [`komputer-connector-webhook: ${reason}`]), reason);
}

function podNamespace(req: AdmissionRequest): string {
  // At CREATE the object may carry no namespace; the request always does.
  if (req.namespace) return req.namespace;
  const md = req.object?.metadata;
  return isObject(md) && typeof md.namespace === 'string' ? md.namespace : '';
}

/** The pod subresource through which the platform adds a member to a running squad. */
export const EPHEMERAL_CONTAINERS = 'ephemeralcontainers';

/** A request object that claims to be a Pod but is not shaped like one. */
function assertPod(obj: JsonObject, field: string): void {
  if ((obj.kind !== undefined && obj.kind !== 'Pod') || !isObject(obj.spec)) throw new BadRequest(`request.${field} is not a Pod (kind Pod with a spec)`);
}

export const mutatePod: Handler = (req, ctx) => {
  if (req.kind.group !== '' || req.kind.kind !== 'Pod') return unexpectedKind(req, PATHS.mutatePods);
  const ephemeral = req.subResource === EPHEMERAL_CONTAINERS && req.operation === 'UPDATE';
  if (!ephemeral && (req.operation !== 'CREATE' || req.subResource !== '')) {
    return new Decision(allowed(req.uid), `operation ${req.operation}${req.subResource ? ` on pods/${req.subResource}` : ''} is not mutated`);
  }
  if (!req.object) throw new BadRequest(`request.object is missing for a ${ephemeral ? 'pods/ephemeralcontainers UPDATE' : 'CREATE'}`);
  const namespace = podNamespace(req);
  if (!namespace) throw new BadRequest('request.namespace is missing');
  let outcome: InjectionOutcome;
  if (ephemeral) {
    // Which ephemeral containers are new is only known against the old pod.
    if (!req.oldObject) throw new BadRequest('request.oldObject is missing for a pods/ephemeralcontainers UPDATE');
    assertPod(req.object, 'object');
    assertPod(req.oldObject, 'oldObject');
    outcome = injectEphemeralContainers(req.object, req.oldObject, namespace, ctx.view);
  } else {
    outcome = injectPod(req.object, namespace, ctx.view);
  }
  const response = patched(req.uid, outcome.patch, outcome.warnings);
  const reason = outcome.skipped ?? (outcome.patch.length === 0 ? 'already injected' : undefined);
  // A dry run changes nothing, so it tells nobody anything either. The Events themselves are
  // computed from these inputs after the answer (Decision.events).
  const eventInputs: EventInputs | undefined = ctx.events && !req.dryRun ? { pod: req.object, oldPod: ephemeral ? req.oldObject : undefined, namespace, view: ctx.view, outcome } : undefined;
  return new Decision(response, reason, outcome.namespaceNotEnabled ? namespace : undefined, outcome, eventInputs);
};

/** `container=ref,ref` per injected container, for the log line: which member got what. */
function injectedSummary(outcome: InjectionOutcome): string | undefined {
  let out = '';
  for (const c of outcome.containers) {
    if (c.injected.length === 0) continue;
    out += `${out === '' ? '' : ' '}${c.container}=${c.injected.join(',')}`;
  }
  return out === '' ? undefined : out;
}

function verdictResponse(uid: string, v: Verdict): Decision {
  return v.allowed ? new Decision(allowed(uid, v.warnings), undefined) : new Decision(denied(uid, v.message ?? 'denied', v.warnings), v.message ?? 'denied');
}

function decodeOrBadRequest<T>(decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof DecodeError) throw new BadRequest(e.message);
    throw e;
  }
}

/**
 * An UPDATE that leaves the judged fields as they were cannot make anything worse: its
 * denial becomes a warning, so removing a finalizer, editing labels or annotations, or
 * sharing a connector admitted before the policy changed is never blocked.
 */
function unlessUnchanged(v: Verdict, unchanged: boolean): Verdict {
  if (v.allowed || !unchanged) return v;
  return { allowed: true, message: undefined, violation: v.violation, warnings: [`this object would be refused if created now (the update is allowed because it leaves the judged fields unchanged): ${v.message ?? ''}`, ...v.warnings] };
}

function beingDeleted(obj: JsonObject): boolean {
  return isObject(obj.metadata) && typeof obj.metadata.deletionTimestamp === 'string';
}

function sameConnectorSpec(a: Connector, b: Connector): boolean {
  return a.url === b.url && (a.authType ?? '') === (b.authType ?? '') && (a.headerName ?? '') === (b.headerName ?? '') && a.authSecretKeyRef?.name === b.authSecretKeyRef?.name && a.authSecretKeyRef?.key === b.authSecretKeyRef?.key;
}

/** Connectors and agents, CREATE and UPDATE; DELETE (and finishing one) is never blocked. */
export const validateKomputer: Handler = (req, ctx) => {
  if (req.kind.group !== GROUP || (req.kind.kind !== CONNECTOR_KIND && req.kind.kind !== AGENT_KIND)) return unexpectedKind(req, PATHS.validate);
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return new Decision(allowed(req.uid), `operation ${req.operation} is not validated`);
  if (!req.object) throw new BadRequest(`request.object is missing for a ${req.operation}`);
  const object = req.object;
  // Finalizer removal on an object being deleted arrives as an UPDATE.
  if (req.operation === 'UPDATE' && beingDeleted(object)) return new Decision(allowed(req.uid), 'object is being deleted');
  const oldObject = req.operation === 'UPDATE' ? req.oldObject : undefined;
  if (req.kind.kind === CONNECTOR_KIND) {
    const connector = decodeOrBadRequest(() => decodeConnector(object, req.namespace || undefined, true));
    const old = oldObject ? decodeOrBadRequest(() => decodeConnector(oldObject, req.namespace || undefined, true)) : undefined;
    const verdict = evaluateConnector(connector, ctx.policy(), old, { attachedAgents: attachedAgentsOf(oldObject) });
    return verdictResponse(req.uid, unlessUnchanged(verdict, old !== undefined && sameConnectorSpec(old, connector)));
  }
  const agent = decodeOrBadRequest(() => decodeAgent(object, req.namespace || undefined, true));
  const old = oldObject ? decodeOrBadRequest(() => decodeAgent(oldObject, req.namespace || undefined, true)) : undefined;
  const unchanged = old !== undefined && old.connectors.length === agent.connectors.length && old.connectors.every((c, i) => c === agent.connectors[i]);
  return verdictResponse(req.uid, unlessUnchanged(evaluateAgent(agent, ctx.view, old), unchanged));
};

export const PATHS = {
  mutatePods: '/mutate/pods',
  validate: '/validate',
} as const;

export const ROUTES: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  [PATHS.mutatePods, mutatePod],
  [PATHS.validate, validateKomputer],
]);

/** Picks the handler by the object's kind (the CLI has no path to route by). */
export function handlerForKind(req: AdmissionRequest): Handler {
  return req.kind.group === '' && req.kind.kind === 'Pod' ? mutatePod : validateKomputer;
}

/** Both variants carry every field (unused ones undefined), so the server sees one shape per variant. */
export type ReviewOutcome =
  | { ok: true; body: AdmissionReviewOut; request: AdmissionRequest; decision: Decision; error: unknown; reason: undefined }
  | { ok: false; reason: string; request: AdmissionRequest | undefined; body: undefined; decision: undefined; error: undefined };

function refused(reason: string, request: AdmissionRequest | undefined): ReviewOutcome {
  return { ok: false, reason, request, body: undefined, decision: undefined, error: undefined };
}

/**
 * Decodes a parsed body and runs the handler: the single code path behind the HTTPS
 * server and the `review` CLI. A handler that throws unexpectedly still yields a
 * well-formed AdmissionReview (an error status), never a crash.
 */
export function processReview(body: unknown, ctx: AdmissionContext, pick: (req: AdmissionRequest) => Handler): ReviewOutcome {
  const decoded = decodeReview(body);
  if (!decoded.ok) return refused(decoded.reason, undefined);
  const request = decoded.request;
  try {
    const decision = pick(request)(request, ctx);
    return { ok: true, body: review(decision.response), request, decision, error: undefined, reason: undefined };
  } catch (error) {
    if (error instanceof BadRequest) return refused(error.message, request);
    const decision = new Decision(denied(request.uid, 'internal error in komputer-connector-webhook (see its log)', [], 500), 'internal error');
    return { ok: true, body: review(decision.response), request, decision, error, reason: undefined };
  }
}

/** How long a request waits for the namespace cache when it disagrees with the API server. */
export const NAMESPACE_CACHE_WAIT_MS = 2000;

/**
 * processReview, plus one bounded wait: the API server only sends pods from namespaces its
 * namespaceSelector enables, so when the cache says "not enabled" it is most likely a few
 * milliseconds behind a label just set. Wait for the cached namespace to change (no API
 * call) and decide again; after the bound, the cache's answer stands.
 */
export function processReviewAwaitingCache(body: unknown, ctx: AdmissionContext, pick: (req: AdmissionRequest) => Handler): ReviewOutcome | Promise<ReviewOutcome> {
  const first = processReview(body, ctx, pick);
  const ns = first.ok ? first.decision.staleNamespace : undefined;
  // The usual case answers synchronously: no promise, no microtask on the request path.
  if (!ns || !ctx.awaitNamespaceChange) return first;
  return ctx.awaitNamespaceChange(ns, NAMESPACE_CACHE_WAIT_MS).then((changed) => (changed ? processReview(body, ctx, pick) : first));
}
