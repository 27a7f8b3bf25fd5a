// Routing by path and kind to the pure decisions. Handlers gather nothing themselves: the
// request and the cluster view come in, a response and a log reason go out.

import { AGENT_KIND, CONNECTOR_KIND, GROUP } from '../config/names.ts';
import { injectPod } from '../injection/inject.ts';
import { attachedAgentsOf, decodeAgent, decodeConnector, DecodeError, isObject } from '../model/objects.ts';
import { evaluateAgent } from '../policy/agent.ts';
import type { PolicyList } from '../policy/incompatible.ts';
import { evaluateConnector, type Verdict } from '../policy/verdict.ts';
import type { ClusterView } from '../model/view.ts';
import { allowed, decodeReview, denied, patched, review, type AdmissionRequest, type AdmissionResponse, type AdmissionReviewOut } from './review.ts';

export interface AdmissionContext {
  readonly view: ClusterView;
  /** The known-incompatible list in force. */
  readonly policy: () => PolicyList;
}

export interface Decision {
  readonly response: AdmissionResponse;
  /** Why the object was left alone or refused, for the log line. */
  readonly reason?: string;
}

/** A request that decodes but cannot be acted on (HTTP 400 with this reason). */
export class BadRequest extends Error {
  override name = 'BadRequest';
}

export type Handler = (req: AdmissionRequest, ctx: AdmissionContext) => Decision;

function unexpectedKind(req: AdmissionRequest, path: string): Decision {
  const what = `${req.kind.group || 'core'}/${req.kind.version} ${req.kind.kind}`;
  const reason = `${path} does not handle ${what}; allowed unchanged (check the webhook configuration's rules)`;
  return { response: allowed(req.uid, [`komputer-connector-webhook: ${reason}`]), reason };
}

function podNamespace(req: AdmissionRequest): string {
  // At CREATE the object may carry no namespace; the request always does.
  if (req.namespace) return req.namespace;
  const md = req.object?.metadata;
  return isObject(md) && typeof md.namespace === 'string' ? md.namespace : '';
}

export const mutatePod: Handler = (req, ctx) => {
  if (req.kind.group !== '' || req.kind.kind !== 'Pod') return unexpectedKind(req, PATHS.mutatePods);
  if (req.operation !== 'CREATE') return { response: allowed(req.uid), reason: `operation ${req.operation} is not mutated` };
  if (!req.object) throw new BadRequest('request.object is missing for a CREATE');
  const namespace = podNamespace(req);
  if (!namespace) throw new BadRequest('request.namespace is missing');
  const outcome = injectPod(req.object, namespace, ctx.view);
  const response = patched(req.uid, outcome.patch, outcome.warnings);
  const reason = outcome.skipped ?? (outcome.patch.length === 0 ? 'already injected' : undefined);
  return reason === undefined ? { response } : { response, reason };
};

function verdictResponse(uid: string, v: Verdict): Decision {
  return v.allowed ? { response: allowed(uid, v.warnings) } : { response: denied(uid, v.message ?? 'denied', v.warnings), reason: v.message ?? 'denied' };
}

function decodeOrBadRequest<T>(decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof DecodeError) throw new BadRequest(e.message);
    throw e;
  }
}

/** Connectors and agents, CREATE and UPDATE; DELETE is never blocked. */
export const validateKomputer: Handler = (req, ctx) => {
  if (req.kind.group !== GROUP || (req.kind.kind !== CONNECTOR_KIND && req.kind.kind !== AGENT_KIND)) return unexpectedKind(req, PATHS.validate);
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return { response: allowed(req.uid), reason: `operation ${req.operation} is not validated` };
  if (!req.object) throw new BadRequest(`request.object is missing for a ${req.operation}`);
  const object = req.object;
  if (req.kind.kind === CONNECTOR_KIND) {
    const connector = decodeOrBadRequest(() => decodeConnector(object, req.namespace || undefined, true));
    const old = req.operation === 'UPDATE' && req.oldObject ? decodeOrBadRequest(() => decodeConnector(req.oldObject, req.namespace || undefined, true)) : undefined;
    return verdictResponse(req.uid, evaluateConnector(connector, ctx.policy(), old, { attachedAgents: attachedAgentsOf(req.oldObject) }));
  }
  const agent = decodeOrBadRequest(() => decodeAgent(object, req.namespace || undefined, true));
  return verdictResponse(req.uid, evaluateAgent(agent, ctx.view));
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

export type ReviewOutcome =
  | { ok: true; body: AdmissionReviewOut; request: AdmissionRequest; decision: Decision; error?: unknown }
  | { ok: false; reason: string; request?: AdmissionRequest };

/**
 * Decodes a parsed body and runs the handler: the single code path behind the HTTPS
 * server and the `review` CLI. A handler that throws unexpectedly still yields a
 * well-formed AdmissionReview (an error status), never a crash.
 */
export function processReview(body: unknown, ctx: AdmissionContext, pick: (req: AdmissionRequest) => Handler): ReviewOutcome {
  const decoded = decodeReview(body);
  if (!decoded.ok) return { ok: false, reason: decoded.reason };
  const request = decoded.request;
  try {
    const decision = pick(request)(request, ctx);
    return { ok: true, body: review(decision.response), request, decision };
  } catch (error) {
    if (error instanceof BadRequest) return { ok: false, reason: error.message, request };
    const decision = { response: denied(request.uid, 'internal error in komputer-connector-webhook (see its log)', [], 500), reason: 'internal error' };
    return { ok: true, body: review(decision.response), request, decision, error };
  }
}
