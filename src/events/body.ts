// The events.k8s.io/v1 Event objects the recorder writes, as plain JSON (pure). Field rules
// are the API server's: reportingController a qualified name, action, reason and
// reportingInstance at most 128 characters, note at most 1 KiB, and on update only `series`
// may change. The series patch is what client-go's events broadcaster sends.

import { AGENT_KIND, GROUP, VERSION } from '../config/names.ts';
import type { AgentEvent } from '../injection/events.ts';

export const EVENTS_API_VERSION = 'events.k8s.io/v1';
export const REPORTING_CONTROLLER = 'komputer.ai/connector-webhook';
/** What the service did when it saw the agent (machine-readable). */
export const EVENT_ACTION = 'InjectConnectors';
/** The API server refuses an Event whose note is longer (bytes). */
export const NOTE_MAX_BYTES = 1024;
const FIELD_MAX = 128;
const NAME_MAX = 253;

export interface EventSeries {
  readonly count: number;
  /** Milliseconds. */
  readonly lastObservedTime: number;
}

export interface EventBody {
  apiVersion: typeof EVENTS_API_VERSION;
  kind: 'Event';
  metadata: { name: string; namespace: string };
  eventTime: string;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  type: string;
  note: string;
  regarding: { apiVersion: string; kind: string; namespace: string; name: string; uid?: string };
  series?: { count: number; lastObservedTime: string };
}

/** A MicroTime as the API server writes it: RFC 3339 with six fractional digits, UTC. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** At most `max` UTF-8 bytes, cut at a character boundary, with an ellipsis when cut. */
export function truncateUtf8(text: string, max: number): string {
  if (Buffer.byteLength(text, 'utf8') <= max) return text;
  const ellipsis = '...';
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > max - ellipsis.length) break;
    out += ch;
    bytes += n;
  }
  return out + ellipsis;
}

/**
 * `<agent>.<hex>` as client-go names Events (`%v.%x` of the time in nanoseconds); `seq`
 * tells apart Events created within the same millisecond.
 */
export function eventName(agentName: string, nowMs: number, seq: number): string {
  const suffix = (BigInt(Math.floor(nowMs)) * 1_000_000n + BigInt(seq % 1_000_000)).toString(16);
  return `${agentName.slice(0, NAME_MAX - suffix.length - 1)}.${suffix}`;
}

export function eventBody(event: AgentEvent, o: { name: string; eventTime: number; instance: string; series?: EventSeries | undefined }): EventBody {
  const body: EventBody = {
    apiVersion: EVENTS_API_VERSION,
    kind: 'Event',
    metadata: { name: o.name, namespace: event.agent.namespace },
    eventTime: microTime(o.eventTime),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: o.instance.slice(0, FIELD_MAX) || 'unknown',
    action: EVENT_ACTION,
    reason: event.reason.slice(0, FIELD_MAX),
    type: event.type,
    note: truncateUtf8(event.message, NOTE_MAX_BYTES),
    regarding: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: AGENT_KIND,
      namespace: event.agent.namespace,
      name: event.agent.name,
      ...(event.agent.uid ? { uid: event.agent.uid } : {}),
    },
  };
  // A series needs at least two occurrences (API validation).
  if (o.series && o.series.count >= 2) body.series = { count: o.series.count, lastObservedTime: microTime(o.series.lastObservedTime) };
  return body;
}

/** The strategic merge patch that moves an existing Event's series on. */
export function seriesPatch(series: EventSeries): { series: { count: number; lastObservedTime: string } } {
  return { series: { count: series.count, lastObservedTime: microTime(series.lastObservedTime) } };
}
