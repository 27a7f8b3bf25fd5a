// The pure parts of the node scenarios' measurements: a container's memory from its cgroup
// v1 files, the nearest-rank percentile of the latency figures, and the message of a refused
// API request.

export interface CgroupMemory {
  /** usage minus inactive file pages: what the kubelet reports as the working set. */
  readonly workingSetBytes: number;
  /** Anonymous memory (total_rss): what reclaim cannot drop. */
  readonly anonBytes: number;
  readonly usageBytes: number;
  /** memory.max_usage_in_bytes: the peak of usage (page cache included) since the container started. */
  readonly peakBytes: number;
  readonly limitBytes: number;
  /** Times usage hit the limit (memory.failcnt). */
  readonly failcnt: number;
}

/** The cgroup v1 memory figures from the files' text (pure; `stat` is memory.stat). */
export function parseCgroupMemory(files: { usage: string; stat: string; peak: string; limit: string; failcnt: string }): CgroupMemory {
  const stat = (key: string): number => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(files.stat)?.[1] ?? 0);
  const usage = Number(files.usage.trim());
  if (!Number.isFinite(usage)) throw new Error(`memory.usage_in_bytes is not a number: ${files.usage.slice(0, 40)}`);
  const inactive = stat('total_inactive_file');
  return {
    workingSetBytes: Math.max(0, usage - inactive),
    anonBytes: stat('total_rss'),
    usageBytes: usage,
    peakBytes: Number(files.peak.trim()),
    limitBytes: Number(files.limit.trim()),
    failcnt: Number(files.failcnt.trim()),
  };
}

/** p (0..1) of ascending `sorted` (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** The message of a refused API request (a Status body), or the body's start. */
export function statusMessage(text: string): string {
  try {
    const s = JSON.parse(text) as { message?: unknown };
    if (typeof s.message === 'string') return s.message;
  } catch {
    // not JSON
  }
  return text.slice(0, 300);
}
