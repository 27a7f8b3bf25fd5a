// RFC 6902 operations, emitted directly rather than by diffing deep copies: a deep copy of
// a pod costs more than the whole admission decision, and a positional diff of an env
// array would echo the user's own env values back in the patch.

export type PatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** Escapes one JSON Pointer segment (RFC 6901): `~` -> `~0`, `/` -> `~1`. */
export function pointerSegment(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointer(...segments: (string | number)[]): string {
  return '/' + segments.map(pointerSegment).join('/');
}
