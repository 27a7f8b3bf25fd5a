// JSON exactly as Go's encoding/json writes it (json.Marshal), for the values this service
// renders: strings, and objects whose keys are sorted. The platform's operator marshals
// KOMPUTER_MCP_SERVERS this way; producing the same bytes lets both run side by side, and a
// reinvocation or a diff against an operator-injected pod sees no change.
//
// Go's rules, which JSON.stringify does not follow:
//   - HTML-safe escaping: `<`, `>`, `&` become \u003c, \u003e, \u0026;
//   - U+2028 and U+2029 become \u2028 and \u2029;
//   - control characters: \b \f \n \r \t by name, the rest as \u00XX (lower-case hex);
//   - a lone surrogate (JSON text `"\ud800"`) is U+FFFD, written as is: Go's decoder turns
//     it into U+FFFD before the operator ever marshals it (the \ufffd escape Go writes for
//     invalid UTF-8 bytes cannot occur in a string that came from JSON);
//   - map keys sorted bytewise on their UTF-8 encoding (code point order, not UTF-16 order).

/** Printable ASCII that Go writes as is: everything from space to `~` but `"`, `\`, `<`, `>`, `&`, plus DEL. */
const PLAIN = /^[\x20\x21\x23-\x25\x27-\x3b\x3d\x3f-\x5b\x5d-\x7f]*$/;
const HEX = '0123456789abcdef';

function escapeAscii(c: number): string {
  switch (c) {
    case 0x22:
      return '\\"';
    case 0x5c:
      return '\\\\';
    case 0x08:
      return '\\b';
    case 0x0c:
      return '\\f';
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    default:
      // Other control characters, and `<`, `>`, `&` (HTML-safe).
      return c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 ? `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}` : String.fromCharCode(c);
  }
}

/** A JSON string literal, byte for byte as Go's json.Marshal writes `s`. */
export function goJsonString(s: string): string {
  if (PLAIN.test(s)) return `"${s}"`;
  const w = s.toWellFormed();
  let out = '"';
  for (let i = 0; i < w.length; i++) {
    const c = w.charCodeAt(i);
    if (c < 0x80) out += escapeAscii(c);
    else if (c === 0x2028 || c === 0x2029) out += `\\u${c.toString(16)}`;
    else out += w[i]!;
  }
  return out + '"';
}

/** Orders well-formed strings as Go orders map keys: bytewise on UTF-8, which is code point order. */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order agrees with code point order except surrogate pairs (U+10000 and above)
    // against U+E000..U+FFFF: lift surrogates above the BMP so the comparison matches.
    const rank = (u: number): number => (u >= 0xd800 && u <= 0xdfff ? u + 0x10000 : u);
    return rank(x) - rank(y);
  }
  return a.length - b.length;
}

/**
 * A JSON object from already-encoded values, keys sorted and escaped as Go does for a map.
 * Keys that are equal once well-formed are one Go map key: the last value wins.
 */
export function goJsonObject(members: Iterable<readonly [key: string, encodedValue: string]>): string {
  const byKey = new Map<string, string>();
  for (const [key, value] of members) byKey.set(key.toWellFormed(), value);
  const sorted = [...byKey].sort((a, b) => compareUtf8(a[0], b[0]));
  let out = '{';
  for (let i = 0; i < sorted.length; i++) {
    const [key, value] = sorted[i]!;
    out += `${i > 0 ? ',' : ''}${goJsonString(key)}:${value}`;
  }
  return out + '}';
}
