// The AdmissionReview envelope (admission.k8s.io/v1): decoding with explicit checks, and the
// only place responses are built, so no handler can forget the uid or the patch type.

import { isObject, type JsonObject } from '../model/objects.ts';
import type { PatchOp } from '../injection/jsonpatch.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly operation: string;
  /** `ephemeralcontainers` for a pods/ephemeralcontainers request; empty for the resource itself. */
  readonly subResource: string;
  readonly namespace: string;
  readonly name: string;
  readonly object: JsonObject | undefined;
  readonly oldObject: JsonObject | undefined;
  readonly dryRun: boolean;
  readonly user: string;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewOut {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type Decoded = { ok: true; request: AdmissionRequest } | { ok: false; reason: string };

function optionalObject(value: unknown, field: string): JsonObject | undefined | string {
  if (value === undefined || value === null) return undefined;
  return isObject(value) ? value : `request.${field} must be an object`;
}

/** Decodes a parsed body; every rejection reason is one line naming the field. */
export function decodeReview(body: unknown): Decoded {
  if (!isObject(body)) return { ok: false, reason: 'body must be a JSON object (an AdmissionReview)' };
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    return { ok: false, reason: `apiVersion must be ${ADMISSION_API_VERSION}` };
  }
  if (body.kind !== 'AdmissionReview') return { ok: false, reason: 'kind must be AdmissionReview' };
  const req = body.request;
  if (!isObject(req)) return { ok: false, reason: 'request is missing or not an object' };
  if (typeof req.uid !== 'string' || req.uid === '') return { ok: false, reason: 'request.uid must be a non-empty string' };
  const kind = req.kind;
  if (!isObject(kind) || typeof kind.kind !== 'string' || typeof kind.version !== 'string' || (kind.group !== undefined && typeof kind.group !== 'string')) {
    return { ok: false, reason: 'request.kind must be {group, version, kind}' };
  }
  if (typeof req.operation !== 'string') return { ok: false, reason: 'request.operation must be a string' };
  if (req.subResource !== undefined && typeof req.subResource !== 'string') return { ok: false, reason: 'request.subResource must be a string' };
  if (req.namespace !== undefined && typeof req.namespace !== 'string') return { ok: false, reason: 'request.namespace must be a string' };
  if (req.name !== undefined && typeof req.name !== 'string') return { ok: false, reason: 'request.name must be a string' };
  if (req.dryRun !== undefined && typeof req.dryRun !== 'boolean') return { ok: false, reason: 'request.dryRun must be a boolean' };
  const object = optionalObject(req.object, 'object');
  if (typeof object === 'string') return { ok: false, reason: object };
  const oldObject = optionalObject(req.oldObject, 'oldObject');
  if (typeof oldObject === 'string') return { ok: false, reason: oldObject };
  const userInfo = isObject(req.userInfo) ? req.userInfo : {};
  return {
    ok: true,
    request: {
      uid: req.uid,
      kind: { group: typeof kind.group === 'string' ? kind.group : '', version: kind.version, kind: kind.kind },
      operation: req.operation,
      subResource: typeof req.subResource === 'string' ? req.subResource : '',
      namespace: typeof req.namespace === 'string' ? req.namespace : '',
      name: typeof req.name === 'string' ? req.name : '',
      object,
      oldObject,
      dryRun: req.dryRun === true,
      user: typeof userInfo.username === 'string' ? userInfo.username : '',
    },
  };
}

function nonEmpty(warnings: readonly string[]): string[] | undefined {
  return warnings.length > 0 ? [...warnings] : undefined;
}

export function allowed(uid: string, warnings: readonly string[] = []): AdmissionResponse {
  const r: AdmissionResponse = { uid, allowed: true };
  const w = nonEmpty(warnings);
  if (w) r.warnings = w;
  return r;
}

/** Allowed with a patch; an empty patch is a plain allow (no patchType, as the API expects). */
export function patched(uid: string, ops: readonly PatchOp[], warnings: readonly string[] = []): AdmissionResponse {
  const r = allowed(uid, warnings);
  if (ops.length > 0) {
    r.patchType = 'JSONPatch';
    r.patch = Buffer.from(JSON.stringify(ops)).toString('base64');
  }
  return r;
}

export function denied(uid: string, message: string, warnings: readonly string[] = [], code = 403): AdmissionResponse {
  const r: AdmissionResponse = { uid, allowed: false, status: { code, message, reason: code === 403 ? 'Forbidden' : 'BadRequest' } };
  const w = nonEmpty(warnings);
  if (w) r.warnings = w;
  return r;
}

export function review(response: AdmissionResponse): AdmissionReviewOut {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/** The verdict label used in logs and metrics. */
export function verdictOf(r: AdmissionResponse): 'patched' | 'allowed' | 'denied' {
  if (!r.allowed) return 'denied';
  return r.patch ? 'patched' : 'allowed';
}
