// The known-incompatible list: endpoints that refuse some auth types, as data.
//
// Built-in entries cover the endpoints SPEC.md names (Notion, Atlassian Rovo). A cluster
// admin extends or overrides them with a ConfigMap whose key `incompatible.yaml` holds
// YAML (or JSON, which is YAML too) in this format:
//
//   # Built-in ids to switch off (optional). Ids that are not built in are ignored, so a
//   # config keeps working across an upgrade that drops a built-in.
//   disableBuiltins: [atlassian-rovo]
//   # Entries to add (optional). An entry whose id equals a built-in replaces it entirely.
//   entries:
//     - id: acme                       # required; lower-case letters, digits, '-', '.', '_' (max 63)
//       service: Acme MCP              # required; display name (max 60 chars)
//       url: https://mcp.acme.example/mcp   # required; http(s), no user-info
//       match: exact                   # optional; exact (default) or prefix
//       allowedAuthTypes: [oauth]      # optional; subset of [token, oauth, header]; default [oauth]
//       why: Acme refuses personal tokens   # required; why other auth types fail (max 160)
//       instead: set spec.authType: oauth   # required; the remedy (max 160)
//       action: deny                   # optional; deny (default), warn or audit (see below)
//     - id: notion                     # an entry with `enabled: false` needs only its id:
//       enabled: false                 #   it switches off the built-in with that id
//
// Unknown fields (at the top or in an entry), wrong types, duplicate ids or keys, and
// invalid URLs make the whole config invalid, with a reason naming entry and field: a
// typo such as `allowedAuthType` must not silently change what is allowed. Limits: 500
// entries, 256 KiB of text.
//
// Matching compares canonical keys (see url.ts): scheme, host case, trailing dots and
// slashes, default ports, percent-encoding, user-info, query and fragment do not matter.
// `match: exact` (default) matches the canonical path exactly; `match: prefix` also
// matches every path below it on a segment boundary (`/v1` matches `/v1/mcp`, not
// `/v1mcp`; `/` matches the whole host:port). When several entries match, an exact match
// beats a prefix match, a longer prefix beats a shorter one, and on a tie the admin's
// entry wins over a built-in. Hosts are always compared exactly: no wildcards.
//
// `action` rolls an entry out the way Gatekeeper's enforcementAction and Kyverno's
// Audit/Enforce do: `deny` refuses a matching connector at admission and leaves it out of
// every agent pod (the operator's copy of its token variable is taken out too); `warn`
// admits and injects it with an admission warning and an Event; `audit` admits and injects
// it silently and only reports it (`check`, the log, komputer_webhook_policy_violations).
// Built-in entries deny.
//
// Keep `why` and `instead` short (about 200 characters together): the denial message is
// `<service> rejects <auth>: <why>. Fix: <instead>.` and should fit two terminal lines.
//
// A config that fails to parse is reported and changes nothing: the caller keeps its last
// good list (at start, the built-ins), so a typo can never switch the defaults off.

import { parse as parseYaml } from 'yaml';
import { isObject } from '../model/objects.ts';
import type { CanonicalUrl } from './url.ts';
import { canonicalUrl } from './url.ts';
import { clip, quote } from './text.ts';

/** The ConfigMap data key holding the admin's policy. */
export const POLICY_CONFIGMAP_KEY = 'incompatible.yaml';

/** The auth types the platform's CRD allows (`spec.authType` enum, commit 7267b1d). */
export const AUTH_TYPES = ['token', 'oauth', 'header'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

export type MatchMode = 'exact' | 'prefix';

/** What an entry does to a connector it matches; `deny` unless the admin says otherwise. */
export const POLICY_ACTIONS = ['deny', 'warn', 'audit'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];

export interface PolicyEntry {
  readonly id: string;
  /** Display name used in messages. */
  readonly service: string;
  /** The URL as written in the built-ins or the config (never carries user-info). */
  readonly url: string;
  /** Canonical key of `url` (url.ts), what matching compares. */
  readonly key: string;
  readonly match: MatchMode;
  readonly allowedAuthTypes: readonly AuthType[];
  readonly why: string;
  readonly instead: string;
  readonly action: PolicyAction;
  readonly source: 'builtin' | 'config';
}

/** The effective list, in priority order for ties (admin entries first). */
export type PolicyList = readonly PolicyEntry[];

export interface PolicyConfig {
  /** Entries to add or to replace built-ins with (enabled ones only). */
  readonly entries: readonly PolicyEntry[];
  /** Ids switched off, from `disableBuiltins` and from entries with `enabled: false`. */
  readonly disabled: readonly string[];
}

export type PolicyConfigResult = { readonly ok: true; readonly config: PolicyConfig } | { readonly ok: false; readonly reason: string };

/** An endpoint known to work with a static token: used to warn when no token is configured. */
export interface KnownTokenService {
  readonly id: string;
  readonly service: string;
  readonly url: string;
  readonly key: string;
  /** What the token looks like, to help the user find the right one. */
  readonly tokenHint: string;
}

const ENTRY_FIELDS = ['id', 'service', 'url', 'match', 'allowedAuthTypes', 'why', 'instead', 'action', 'enabled'] as const;
const TOP_FIELDS = ['entries', 'disableBuiltins'] as const;
const ID_PATTERN = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
const MAX_SERVICE = 60;
const MAX_TEXT = 160;
const MAX_ENTRIES = 500;
// Bounds the work done on a (1 MiB at most) ConfigMap value and the size of a reason.
const MAX_CONFIG_CHARS = 256 * 1024;
const MAX_REPORTED_ERRORS = 5;

function keyOf(url: string): string {
  const c = canonicalUrl(url);
  if (!c.ok || c.url.hasUserInfo) throw new Error(`built-in policy URL ${url} is invalid`);
  return c.url.key;
}

function builtin(e: Omit<PolicyEntry, 'key' | 'source' | 'match' | 'action'>): PolicyEntry {
  return { ...e, match: 'exact', key: keyOf(e.url), action: 'deny', source: 'builtin' };
}

/** The built-in entries (SPEC.md, "Connector compatibility"). */
export const BUILTIN_POLICY: PolicyList = Object.freeze([
  builtin({
    id: 'notion',
    service: 'Notion',
    url: 'https://mcp.notion.com/mcp',
    allowedAuthTypes: ['oauth'],
    why: 'integration tokens (ntn_...) get invalid_token; only OAuth 2.0 access tokens work',
    instead: 'set spec.authType: oauth, or run the open-source Notion MCP server in-cluster and point spec.url at it',
  }),
  builtin({
    id: 'atlassian-rovo',
    service: 'Atlassian Rovo',
    url: 'https://mcp.atlassian.com/v1/mcp',
    allowedAuthTypes: ['oauth'],
    why: 'personal access tokens expose only 2 limited tools; Jira/Confluence need OAuth',
    instead: 'set spec.authType: oauth, or run an Atlassian MCP server (e.g. mcp-atlassian) in-cluster and point spec.url at it',
  }),
]);

function tokenService(e: Omit<KnownTokenService, 'key'>): KnownTokenService {
  return { ...e, key: keyOf(e.url) };
}

/** Endpoints known to work with a static token (SPEC.md), matched exactly on the canonical key. */
export const KNOWN_TOKEN_SERVICES: readonly KnownTokenService[] = Object.freeze([
  tokenService({ id: 'github', service: 'GitHub MCP', url: 'https://api.githubcopilot.com/mcp/', tokenHint: 'a PAT, ghp_...' }),
  tokenService({ id: 'gmail', service: 'Gmail MCP', url: 'https://mcp.google.com/a/gmail/mcp', tokenHint: 'an OAuth access token, ya29....' }),
  tokenService({ id: 'google-calendar', service: 'Google Calendar MCP', url: 'https://mcp.google.com/a/calendar/mcp', tokenHint: 'an OAuth access token, ya29....' }),
  tokenService({ id: 'linear', service: 'Linear MCP', url: 'https://mcp.linear.app/mcp', tokenHint: 'an API key, lin_api_...' }),
  tokenService({ id: 'slack', service: 'Slack MCP', url: 'https://mcp.slack.com/mcp', tokenHint: 'a user token, xoxp-...' }),
]);

/** Parses the ConfigMap value. Reports every problem it finds (up to a few), naming entry and field. */
export function parsePolicyConfig(text: string): PolicyConfigResult {
  if (text.length > MAX_CONFIG_CHARS) return { ok: false, reason: `${POLICY_CONFIGMAP_KEY} is larger than ${MAX_CONFIG_CHARS} characters` };
  let doc: unknown;
  try {
    // uniqueKeys: a duplicated key is almost always a mistake; maxAliasCount bounds alias expansion.
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    // The parser's first line names the problem and its line/column; the rest is a snippet.
    const first = ((err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '').replace(/:$/, '');
    return { ok: false, reason: `${POLICY_CONFIGMAP_KEY} is not valid YAML/JSON: ${clip(first, 200)}` };
  }
  if (doc === null || doc === undefined) return { ok: true, config: { entries: [], disabled: [] } }; // empty or comments only
  if (!isObject(doc)) return { ok: false, reason: `${POLICY_CONFIGMAP_KEY} must be a mapping with "entries" and/or "disableBuiltins"` };

  const errors: string[] = [];
  for (const k of Object.keys(doc)) {
    if (!(TOP_FIELDS as readonly string[]).includes(k)) errors.push(`unknown field ${quote(k, 40)} (known: ${TOP_FIELDS.join(', ')})`);
  }

  const disabled: string[] = [];
  if (doc.disableBuiltins !== undefined && doc.disableBuiltins !== null) {
    if (!Array.isArray(doc.disableBuiltins)) errors.push('disableBuiltins must be a list of entry ids');
    else
      doc.disableBuiltins.forEach((id: unknown, i) => {
        if (typeof id !== 'string' || !ID_PATTERN.test(id)) errors.push(`disableBuiltins[${i}] must be an entry id like "notion"`);
        else disabled.push(id);
      });
  }

  const entries: PolicyEntry[] = [];
  const seen = new Set<string>();
  if (doc.entries !== undefined && doc.entries !== null) {
    if (!Array.isArray(doc.entries)) errors.push('entries must be a list');
    else if (doc.entries.length > MAX_ENTRIES) errors.push(`entries has more than ${MAX_ENTRIES} items`);
    else
      doc.entries.forEach((raw: unknown, i) => {
        const r = parseEntry(raw, `entries[${i}]`, errors);
        if (!r) return;
        if (seen.has(r.id)) {
          errors.push(`entries[${i}]: id ${quote(r.id)} appears more than once`);
          return;
        }
        seen.add(r.id);
        if (r.entry) entries.push(r.entry);
        else disabled.push(r.id);
      });
  }

  if (errors.length > 0) {
    const more = errors.length > MAX_REPORTED_ERRORS ? `; and ${errors.length - MAX_REPORTED_ERRORS} more` : '';
    return { ok: false, reason: `${POLICY_CONFIGMAP_KEY}: ${errors.slice(0, MAX_REPORTED_ERRORS).join('; ')}${more}` };
  }
  return { ok: true, config: { entries, disabled: [...new Set(disabled)] } };
}

/** One entry: `{id, entry}` when enabled, `{id}` when `enabled: false`, undefined on error. */
function parseEntry(raw: unknown, at: string, errors: string[]): { id: string; entry?: PolicyEntry } | undefined {
  if (!isObject(raw)) {
    errors.push(`${at} must be a mapping`);
    return undefined;
  }
  const before = errors.length;
  const id = raw.id;
  // Name the entry by id once we know it, so the admin finds it without counting.
  const where = typeof id === 'string' && id !== '' ? `${at} (id ${quote(id, 63)})` : at;
  const fail = (msg: string): void => void errors.push(`${where}: ${msg}`);

  for (const k of Object.keys(raw)) {
    if (!(ENTRY_FIELDS as readonly string[]).includes(k)) fail(`unknown field ${quote(k, 40)} (known: ${ENTRY_FIELDS.join(', ')})`);
  }
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) fail('id is required: lower-case letters, digits, ".", "_" or "-", at most 63');

  if (raw.enabled !== undefined && typeof raw.enabled !== 'boolean') {
    // Intent unknown (switch off, or a full entry?): checking the other fields would only add noise.
    fail('enabled must be true or false');
    return undefined;
  }
  if (raw.enabled === false) {
    return errors.length === before && typeof id === 'string' ? { id } : undefined;
  }

  const text = (field: 'service' | 'why' | 'instead', max: number): string => {
    const v = raw[field];
    if (typeof v !== 'string' || v.trim() === '') {
      fail(`${field} is required (a non-empty string)`);
      return '';
    }
    if (v.length > max) fail(`${field} is longer than ${max} characters`);
    return v.trim();
  };
  const service = text('service', MAX_SERVICE);
  const why = text('why', MAX_TEXT);
  const instead = text('instead', MAX_TEXT);

  let url = '';
  let key = '';
  if (typeof raw.url !== 'string') fail('url is required (an http(s) URL)');
  else {
    const c = canonicalUrl(raw.url);
    if (!c.ok) fail(`url ${c.reason}`);
    else if (c.url.hasUserInfo) fail('url must not contain user-info (user:password@)');
    else {
      url = raw.url.trim();
      key = c.url.key;
    }
  }

  let match: MatchMode = 'exact';
  if (raw.match !== undefined) {
    if (raw.match === 'exact' || raw.match === 'prefix') match = raw.match;
    else fail('match must be "exact" or "prefix"');
  }

  let action: PolicyAction = 'deny';
  if (raw.action !== undefined) {
    if (typeof raw.action === 'string' && (POLICY_ACTIONS as readonly string[]).includes(raw.action)) action = raw.action as PolicyAction;
    else fail(`action ${typeof raw.action === 'string' ? quote(raw.action, 40) : 'of that type'} is not one of ${POLICY_ACTIONS.join(', ')}`);
  }

  let allowedAuthTypes: AuthType[] = ['oauth'];
  if (raw.allowedAuthTypes !== undefined) {
    if (!Array.isArray(raw.allowedAuthTypes)) fail(`allowedAuthTypes must be a list, a subset of [${AUTH_TYPES.join(', ')}]`);
    else {
      allowedAuthTypes = [];
      raw.allowedAuthTypes.forEach((t: unknown, j) => {
        if (typeof t === 'string' && (AUTH_TYPES as readonly string[]).includes(t)) {
          if (!allowedAuthTypes.includes(t as AuthType)) allowedAuthTypes.push(t as AuthType);
        } else fail(`allowedAuthTypes[${j}] must be one of ${AUTH_TYPES.join(', ')}`);
      });
    }
  }

  if (errors.length > before || typeof id !== 'string') return undefined;
  return { id, entry: { id, service, url, key, match, allowedAuthTypes, why, instead, action, source: 'config' } };
}

/**
 * The effective list: admin entries first (they win ties), then the built-ins that are
 * neither switched off nor replaced by an admin entry with the same id.
 */
export function mergePolicy(builtins: PolicyList, config: PolicyConfig): PolicyList {
  const replaced = new Set(config.entries.map((e) => e.id));
  const off = new Set(config.disabled);
  return Object.freeze([...config.entries, ...builtins.filter((b) => !replaced.has(b.id) && !off.has(b.id))]);
}

/** Whether `key` (a canonical key) falls under `entry`. */
export function entryMatches(entry: PolicyEntry, key: string): boolean {
  if (key === entry.key) return true;
  if (entry.match !== 'prefix') return false;
  // Segment boundary: the root entry `host/` is already a boundary, others need the `/`.
  return key.startsWith(entry.key.endsWith('/') ? entry.key : `${entry.key}/`);
}

/** The most specific entry for a URL: exact beats prefix, longer beats shorter, earlier wins ties. */
export function findEntry(policy: PolicyList, url: CanonicalUrl): PolicyEntry | undefined {
  let best: PolicyEntry | undefined;
  const rank = (e: PolicyEntry): number => (e.match === 'exact' ? Number.MAX_SAFE_INTEGER : e.key.length);
  for (const e of policy) {
    if (entryMatches(e, url.key) && (!best || rank(e) > rank(best))) best = e;
  }
  return best;
}

/** The known token service at exactly this URL, if any. */
export function findTokenService(services: readonly KnownTokenService[], url: CanonicalUrl): KnownTokenService | undefined {
  return services.find((s) => s.key === url.key);
}
