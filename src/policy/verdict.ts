// The admission verdict for a KomputerConnector (CREATE or UPDATE). Pure: the caller
// supplies the effective policy list and, on UPDATE, the old object and attachment count.
//
// Denied (can never work, or leaks a credential):
//   - spec.url empty, unparseable, or not http(s);
//   - spec.url with user-info, for every host: URLs are copied into pod specs and logs;
//   - spec.authSecretKeyRef present with an empty name or key;
//   - spec.authType other than token/oauth/header (the CRD enum; guards state files, old
//     CRDs and tools that send values such as `none`);
//   - spec.authType header without a spec.headerName, or with one that is not an HTTP
//     header name (RFC 9110 token) or is a header the MCP client sets itself;
//   - a URL on the known-incompatible list with an auth type the entry does not allow
//     (a static token in a header does not satisfy an OAuth-only service either).
// Warned (allowed, but the user should know):
//   - plain http:// to a host outside the cluster (see isClusterInternalHost);
//   - a token connector without authSecretKeyRef at a service known to need a token, and a
//     header connector without authSecretKeyRef (it would send an empty header);
//   - spec.headerName on another auth type (the runtime ignores it);
//   - on UPDATE, spec.disabled turned on while agents use the connector;
//   - on UPDATE, spec.url / authType / authSecretKeyRef changed while agents use the
//     connector (and spec.headerName): running pods keep the old values until restarted.
//
// Messages never contain the URL as written nor anything from a Secret: only the canonical
// host, entry texts from the policy, and field names.

import type { Connector, SecretKeyRef } from '../model/objects.ts';
import type { CanonicalUrl } from './url.ts';
import { canonicalUrl, isClusterInternalHost } from './url.ts';
import type { KnownTokenService, PolicyAction, PolicyList } from './incompatible.ts';
import { AUTH_TYPES, KNOWN_TOKEN_SERVICES, findEntry, findTokenService } from './incompatible.ts';
import { clip, plural, quote, sentence } from './text.ts';


/** Why a connector cannot work, as data: consumers render `cause` and `fix`, never split a message. */
export interface Violation {
  /** The policy entry's id; undefined for a spec that can never work whatever the list says. */
  readonly entry: string | undefined;
  /** deny for every violation without an entry. */
  readonly action: PolicyAction;
  /** What is wrong: one or more sentences, ending with a period, without the remedy. */
  readonly cause: string;
  /** The remedy, without a trailing period; undefined when the cause says it. */
  readonly fix: string | undefined;
}

export interface Verdict {
  readonly allowed: boolean;
  /** Why it was denied; set only when `allowed` is false. */
  readonly message: string | undefined;
  readonly warnings: string[];
  /** Set whenever the connector violates the policy, whatever the entry's action (audit too). */
  readonly violation: Violation | undefined;
}

export interface ConnectorVerdictOptions {
  /** `status.attachedAgents` of the old object (UPDATE); enables the URL-change warning. */
  readonly attachedAgents?: number;
  /** Endpoints known to need a static token; defaults to KNOWN_TOKEN_SERVICES. */
  readonly tokenServices?: readonly KnownTokenService[];
}

/** `authType` as the platform reads it: unset or empty means `token`. */
export function effectiveAuthType(connector: Pick<Connector, 'authType'>): string {
  return connector.authType === undefined || connector.authType === '' ? 'token' : connector.authType;
}

/** RFC 9110 section 5.1: a field name is a token, one or more tchar. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Headers the MCP client sets itself: a token there would be overwritten or break the request. */
export const CLIENT_OWNED_HEADERS = ['Host', 'Content-Length', 'Content-Type', 'Transfer-Encoding', 'Connection'] as const;

/** Why `headerName` cannot carry the token of an `authType: header` connector, or undefined. */
export function headerNameProblem(headerName: string): { cause: string; fix: string } | undefined {
  if (headerName === '') {
    return { cause: 'spec.authType header needs spec.headerName, the HTTP header that carries the token (for example X-API-Key).', fix: 'set spec.headerName, or use spec.authType: token to send the token as Authorization: Bearer' };
  }
  if (!HTTP_TOKEN.test(headerName)) {
    return { cause: `spec.headerName ${quote(headerName, 40)} is not an HTTP header name (RFC 9110: letters, digits and !#$%&'*+-.^_\`|~, no spaces or colons).`, fix: 'use a name such as X-API-Key' };
  }
  const owned = CLIENT_OWNED_HEADERS.find((h) => h.toLowerCase() === headerName.toLowerCase());
  if (owned) {
    return { cause: `spec.headerName ${owned} is set by the MCP client itself (${CLIENT_OWNED_HEADERS.join(', ')}), so it cannot carry the token.`, fix: 'use a header such as X-API-Key' };
  }
  return undefined;
}

/** A violation's one-line text: the cause, then `Fix: ...` when there is a remedy. */
export function violationText(v: Pick<Violation, 'cause' | 'fix'>): string {
  return v.fix === undefined ? v.cause : `${v.cause} Fix: ${v.fix}.`;
}

function violation(cause: string, fix: string | undefined = undefined, entry: string | undefined = undefined, action: PolicyAction = 'deny'): Violation {
  return { entry, action, cause, fix };
}

function deny(v: Violation): Verdict {
  return { allowed: false, message: clip(violationText(v), 400), warnings: [], violation: v };
}

/** The admission warning for a connector an entry in warn mode matches. */
export function warnModeText(v: Violation): string {
  return `policy entry ${v.entry ?? ''} (action warn): ${violationText(v)}`;
}

export function evaluateConnector(connector: Connector, policy: PolicyList, old?: Connector, opts: ConnectorVerdictOptions = {}): Verdict {
  const parsed = canonicalUrl(connector.url);
  if (!parsed.ok) return deny(violation(`spec.url ${parsed.reason}.`));
  const url = parsed.url;
  if (url.hasUserInfo) {
    return deny(
      violation(
        'spec.url must not contain a user name or password (user:pass@): URLs are copied into pod specs and logs. ' +
          'Put the token in a Secret and reference it with spec.authSecretKeyRef.',
      ),
    );
  }

  const ref = connector.authSecretKeyRef;
  if (ref && (ref.name === '' || ref.key === '')) {
    const missing = ref.name === '' && ref.key === '' ? 'name and key are' : ref.name === '' ? 'name is' : 'key is';
    return deny(violation(`spec.authSecretKeyRef ${missing} empty: set both name and key of a Secret in namespace ${connector.namespace} that holds the token, or remove authSecretKeyRef.`));
  }

  const authType = effectiveAuthType(connector);
  if (!(AUTH_TYPES as readonly string[]).includes(authType)) {
    // Not echoed: an unexpected value is user input of unknown content.
    return deny(
      violation(
        `spec.authType must be ${AUTH_TYPES.slice(0, -1).join(', ')} or ${AUTH_TYPES.at(-1)} (unset means token). ` +
          'For a server that needs no credentials, use token and leave spec.authSecretKeyRef unset.',
      ),
    );
  }
  const headerName = connector.headerName ?? '';
  if (authType === 'header') {
    const problem = headerNameProblem(headerName);
    if (problem) return deny(violation(problem.cause, problem.fix));
  }

  const warnings: string[] = [];
  const found = entryViolation(url, authType, policy);
  if (found !== undefined) {
    if (found.action === 'deny') return deny(found);
    // warn: admitted with the reason; audit: admitted silently, reported by check and the gauge.
    if (found.action === 'warn') warnings.push(warnModeText(found));
  }

  if (url.scheme === 'http' && !isClusterInternalHost(url.host)) {
    warnings.push(`spec.url uses plain http:// to ${clip(url.host, 80)}, outside the cluster: the token and all tool traffic travel unencrypted. Use https://.`);
  }

  const known = findTokenService(opts.tokenServices ?? KNOWN_TOKEN_SERVICES, url);
  if (known && authType === 'token' && !ref) {
    warnings.push(
      `${known.service} needs a token (${known.tokenHint}) but spec.authSecretKeyRef is not set, so agents will call it without credentials. ` +
        'Point authSecretKeyRef at the Secret key holding it.',
    );
  }

  if (authType === 'header' && !ref) {
    warnings.push(`spec.authType is header but spec.authSecretKeyRef is not set, so agents send no ${headerName} value. Point authSecretKeyRef at the Secret key holding it.`);
  }
  if (authType !== 'header' && headerName !== '') {
    warnings.push(`spec.headerName is ignored because spec.authType is ${authType}: the token is sent as Authorization: Bearer. Set spec.authType: header to send it in ${quote(headerName, 40)} instead.`);
  }

  const attached = opts.attachedAgents ?? 0;
  if (old && attached > 0 && connector.disabled && !old.disabled) {
    warnings.push(
      `spec.disabled is now true while ${plural(attached, 'agent uses', 'agents use')} this connector: new pods will not get it, ` +
        'and running pods keep it until they are restarted. Set spec.disabled: false to re-enable it.',
    );
  }
  if (old && attached > 0) {
    const changed = changedFields(old, connector, url);
    if (changed.length > 0) {
      warnings.push(
        `${changed.join(', ')} changed while ${plural(attached, 'agent uses', 'agents use')} this connector: ` +
          'their running pods keep the old value until they are restarted.',
      );
    }
  }
  return { allowed: true, message: undefined, warnings: warnings.map((w) => clip(w)), violation: found };
}

/** The policy entry a URL falls under, when it does not allow the auth type. */
function entryViolation(url: CanonicalUrl, authType: string, policy: PolicyList): Violation | undefined {
  const entry = findEntry(policy, url);
  if (!entry || (entry.allowedAuthTypes as readonly string[]).includes(authType)) return undefined;
  const what = authType === 'token' ? 'static tokens' : authType === 'header' ? 'static header tokens (authType header)' : `authType ${authType}`;
  return violation(`${entry.service} rejects ${what}: ${sentence(entry.why)}.`, sentence(entry.instead), entry.id, entry.action);
}

const memo = new WeakMap<Connector, { policy: PolicyList; violation: Violation | undefined }>();

/**
 * The connector's violation of a policy entry in force, if any, as injection asks it for
 * every connector of every agent pod. Only the entries: a spec that can never work for
 * other reasons (an auth type the CRD does not know, a bad header name) is the connector
 * admission's to refuse; pods get it as the operator would write it. Remembered per connector object and policy list (both are
 * replaced, never changed, when the cluster or the ConfigMap changes), so a pod admission
 * judges each connector once per change, not once per request.
 */
export function connectorViolation(connector: Connector, policy: PolicyList): Violation | undefined {
  const hit = memo.get(connector);
  if (hit !== undefined && hit.policy === policy) return hit.violation;
  const parsed = canonicalUrl(connector.url);
  const v = parsed.ok ? entryViolation(parsed.url, effectiveAuthType(connector), policy) : undefined;
  memo.set(connector, { policy, violation: v });
  return v;
}

/** Fields the pods copy at start that differ between old and new (URL compared canonically). */
function changedFields(old: Connector, now: Connector, nowUrl: CanonicalUrl): string[] {
  const out: string[] = [];
  const oldUrl = canonicalUrl(old.url);
  // A pure respelling (trailing slash, host case) reaches the same endpoint: not a change.
  const urlChanged = oldUrl.ok ? oldUrl.url.scheme !== nowUrl.scheme || oldUrl.url.key !== nowUrl.key : old.url.trim() !== now.url.trim();
  if (urlChanged) out.push('spec.url');
  if (effectiveAuthType(old) !== effectiveAuthType(now)) out.push('spec.authType');
  if (!sameRef(old.authSecretKeyRef, now.authSecretKeyRef)) out.push('spec.authSecretKeyRef');
  if ((old.headerName ?? '') !== (now.headerName ?? '')) out.push('spec.headerName');
  return out;
}

function sameRef(a: SecretKeyRef | undefined, b: SecretKeyRef | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.name === b.name && a.key === b.key);
}
