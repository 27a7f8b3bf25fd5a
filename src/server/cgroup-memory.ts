// The memory limit of this process's cgroup (cgroup v2 or v1), i.e. the container's
// resources.limits.memory: the line the kernel OOM-kills at. Exported as a gauge so the
// dashboard and the memory alert compare usage with the real limit, not with a value
// copied from the chart. Pure parsing over a file reader, so both layouts are tested
// without a cgroup.

import { readFileSync } from 'node:fs';

export interface CgroupMemoryLimit {
  readonly version: 'v1' | 'v2';
  /** Bytes; the lowest limit on the way from this cgroup to the root of the mount. */
  readonly bytes: number;
}

/** Reads a file as text, or undefined when it does not exist or cannot be read. */
export type ReadText = (file: string) => string | undefined;

// cgroup v1 reports "no limit" as a page-aligned LONG_MAX; anything this large is no limit.
const V1_UNLIMITED = 2 ** 62;

function parseLimit(text: string | undefined, version: 'v1' | 'v2'): number | undefined {
  const value = text?.trim();
  if (value === undefined || value === '' || value === 'max') return undefined;
  if (!/^[0-9]+$/.test(value)) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0 || (version === 'v1' && n >= V1_UNLIMITED)) return undefined;
  return n;
}

/** `/a/b/c` -> [`/a/b/c`, `/a/b`, `/a`, `/`]. */
function ancestors(cgroupPath: string): string[] {
  const parts = cgroupPath.split('/').filter((p) => p !== '');
  const out: string[] = [];
  for (let i = parts.length; i >= 0; i--) out.push(`/${parts.slice(0, i).join('/')}`);
  return out;
}

function lowest(read: ReadText, root: string, cgroupPath: string, file: string, version: 'v1' | 'v2'): number | undefined {
  let min: number | undefined;
  // In a container with its own cgroup namespace the path is "/" and the mount is the
  // container's cgroup; on a host (or without the namespace) the path is the full one.
  for (const dir of ancestors(cgroupPath)) {
    const limit = parseLimit(read(`${root}${dir === '/' ? '' : dir}/${file}`), version);
    if (limit !== undefined && (min === undefined || limit < min)) min = limit;
  }
  return min;
}

/**
 * The memory limit from /proc/self/cgroup and the cgroup mounts: v2 (a `0::<path>` line,
 * `memory.max` under /sys/fs/cgroup) first, then v1 (the `memory` controller's line,
 * `memory.limit_in_bytes` under /sys/fs/cgroup/memory). Undefined when no limit is set or
 * none can be read (not Linux, no cgroup mount).
 */
export function readCgroupMemoryLimit(read: ReadText = readText, root = '/sys/fs/cgroup'): CgroupMemoryLimit | undefined {
  const self = read('/proc/self/cgroup');
  if (self === undefined) return undefined;
  const lines = self.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (v2 !== undefined && read(`${root}/cgroup.controllers`) !== undefined) {
    const bytes = lowest(read, root, v2.slice(3), 'memory.max', 'v2');
    return bytes === undefined ? undefined : { version: 'v2', bytes };
  }
  const v1 = lines.map((l) => l.split(':')).find((f) => f.length >= 3 && f[1]!.split(',').includes('memory'));
  if (v1 !== undefined) {
    const bytes = lowest(read, `${root}/memory`, f2(v1), 'memory.limit_in_bytes', 'v1');
    return bytes === undefined ? undefined : { version: 'v1', bytes };
  }
  return undefined;
}

function f2(fields: string[]): string {
  return fields.slice(2).join(':');
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
