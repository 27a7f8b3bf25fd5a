// Canonical form of a connector URL, so that policy matching cannot be fooled by spelling.
//
// Parsing is WHATWG `URL` (the same parser Node's fetch uses), which already lower-cases
// the scheme and host, applies IDNA/punycode (full-width letters map to ASCII), decodes
// percent-escapes in the host, turns `\` into `/` for http(s), strips surrounding
// whitespace and embedded tabs/newlines, resolves `.`/`..` (also `%2e`) segments and
// normalises IPv4 spellings (`0x7f.1` -> `127.0.0.1`). On top of that we:
//   - accept only http and https;
//   - drop trailing dots on the host (`mcp.notion.com.` is the same DNS name);
//   - make the port explicit (443 for https, 80 for http);
//   - decode percent-escapes of unreserved characters in the path (`%6D` -> `m`) and
//     upper-case the remaining escapes (`%2f` -> `%2F`), as RFC 3986 section 6.2.2 does;
//   - collapse empty path segments, so `/mcp/`, `/mcp` and `//mcp//` are one path;
//   - drop the query string and fragment (they select nothing about which service it is);
//   - report user-info instead of keeping it, so callers can refuse it without ever
//     having to print it.
//
// No reason string ever contains the input: a URL can carry credentials.

export type Scheme = 'http' | 'https';

export interface CanonicalUrl {
  readonly scheme: Scheme;
  /** Lower-case ASCII (punycode) host without trailing dots; IPv6 keeps its brackets. */
  readonly host: string;
  /** Effective port: the explicit one, or the scheme's default. */
  readonly port: number;
  /** Canonical path: starts with `/`, no empty segments, no trailing slash (root is `/`). */
  readonly path: string;
  /** The URL carried a user name or password (its value is deliberately not kept). */
  readonly hasUserInfo: boolean;
  /**
   * The matching key: `host/path` when the port is the scheme's default, else
   * `host:port/path`. It is scheme-insensitive on purpose: `http://mcp.notion.com/mcp` and
   * `https://mcp.notion.com/mcp` reach the same service (the first is redirected to the
   * second), so a policy about the service must catch both spellings.
   */
  readonly key: string;
}

export type CanonicalResult = { readonly ok: true; readonly url: CanonicalUrl } | { readonly ok: false; readonly reason: string };

export const DEFAULT_PORTS: Readonly<Record<Scheme, number>> = { http: 80, https: 443 };

// Schemes we may safely name in a reason. Anything else is not echoed: in `user:pass@host`
// WHATWG parses `user` as the scheme, so echoing an unknown scheme could leak a credential.
const NAMEABLE_SCHEMES = new Set(['ftp', 'ftps', 'ws', 'wss', 'file', 'ssh', 'git', 'grpc', 'grpcs', 'tcp', 'udp', 'unix', 'stdio', 'mailto', 'data', 'javascript', 'sse', 'mcp']);

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * Canonicalises a connector URL. On failure, `reason` is a clause that reads after the
 * field name (`spec.url ${reason}`) and never contains any part of the input.
 */
export function canonicalUrl(raw: string): CanonicalResult {
  if (raw.trim() === '') return { ok: false, reason: 'is empty' };
  let parsed: URL;
  try {
    parsed = new URL(raw); // no base: relative references are not connector URLs
  } catch {
    return { ok: false, reason: 'is not a valid absolute URL (expected https://host/path)' };
  }
  const scheme = parsed.protocol.slice(0, -1);
  if (scheme !== 'http' && scheme !== 'https') {
    const named = NAMEABLE_SCHEMES.has(scheme) ? `scheme ${scheme}:` : 'a scheme';
    return { ok: false, reason: `uses ${named} that is not supported; only http:// and https:// MCP endpoints work` };
  }
  const host = parsed.hostname.replace(/\.+$/, '');
  if (host === '') return { ok: false, reason: 'has no host' };
  const port = parsed.port === '' ? DEFAULT_PORTS[scheme] : Number(parsed.port);
  const path = canonicalPath(parsed.pathname);
  const hostPort = port === DEFAULT_PORTS[scheme] ? host : `${host}:${port}`;
  return {
    ok: true,
    url: {
      scheme,
      host,
      port,
      path,
      // WHATWG already drops an empty `@` or `:@`, so this is true only when something was there.
      hasUserInfo: parsed.username !== '' || parsed.password !== '',
      key: `${hostPort}${path}`,
    },
  };
}

/** `/%6Dcp//x/` -> `/mcp/x`; escapes of reserved characters stay escaped (upper-case). */
export function canonicalPath(pathname: string): string {
  const segments = pathname
    .split('/')
    .filter((s) => s !== '')
    .map((s) =>
      s.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => {
        const ch = String.fromCharCode(parseInt(hex, 16));
        return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
      }),
    );
  return `/${segments.join('/')}`;
}

/**
 * Whether a canonical host is reachable only from inside the cluster (so plain http:// to
 * it does not cross the internet). Counted as internal:
 *   - single-label names (`my-mcp`, resolved through the pod's search domains) and `localhost`;
 *   - `*.svc`, `*.cluster.local` (which covers `*.svc.cluster.local`), `*.localhost`;
 *   - loopback, private (RFC 1918), link-local and carrier-grade NAT (100.64/10, used by
 *     some CNIs for pods) IPv4; IPv6 loopback, unique-local (fc00::/7) and link-local.
 * Clusters with a custom cluster domain get a (harmless) warning for their FQDNs.
 */
export function isClusterInternalHost(host: string): boolean {
  if (host.startsWith('[')) return isInternalIpv6(host.slice(1, -1));
  const v4 = parseIpv4(host);
  if (v4) return isInternalIpv4(v4);
  if (!host.includes('.')) return true;
  return host === 'localhost' || ['.svc', '.cluster.local', '.localhost'].some((suffix) => host.endsWith(suffix));
}

function parseIpv4(host: string): number[] | undefined {
  // WHATWG already normalised every IPv4 spelling to dotted decimal.
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return m ? m.slice(1).map(Number) : undefined;
}

function isInternalIpv4([a = -1, b = -1]: number[]): boolean {
  return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
}

function isInternalIpv6(addr: string): boolean {
  if (addr === '::1') return true;
  // IPv4-mapped (`::ffff:10.0.0.1`, which WHATWG serialises as `::ffff:a00:1`).
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(addr);
  if (mapped) {
    const hi = parseInt(mapped[1] ?? '0', 16);
    const lo = parseInt(mapped[2] ?? '0', 16);
    return isInternalIpv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  }
  // A first group of exactly four digits: `fc::1` is 00fc::1, which is public.
  return /^f[cd][0-9a-f]{2}:/.test(addr) || /^fe[89ab][0-9a-f]:/.test(addr);
}
