// Small text helpers shared by the verdicts.

/**
 * Kubernetes may truncate admission warnings longer than 256 characters; we keep every
 * message under this so the remedy at its end survives.
 */
export const MAX_MESSAGE_CHARS = 250;

/** Cuts `text` to `max` characters, marking the cut. */
export function clip(text: string, max: number = MAX_MESSAGE_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** `1 agent uses` / `3 agents use`. */
export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Quotes a user-written value for a message, cut short so one value cannot flood it. */
export function quote(value: string, max = 80): string {
  return JSON.stringify(clip(value, max));
}

/** Drops a trailing period so texts can be joined into one sentence. */
export function sentence(text: string): string {
  return text.trim().replace(/\.+$/, '');
}
