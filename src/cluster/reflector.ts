// List-then-watch of one resource into decoded records: the informer, written against
// @kubernetes/client-node's Watch so only narrow records are kept (a full KomputerAgent
// embeds a pod spec; 100,000 of them must fit in a small pod), and so every relist is an
// explicit event the attachment controller can recompute on.

import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../logging/logger.ts';
import { isObject, type JsonObject } from '../model/objects.ts';

export interface ListPage {
  readonly items: unknown[];
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
}

export interface ResourceSource<T> {
  /** For logs and metrics. */
  readonly kind: string;
  /** The watch path, e.g. `/api/v1/namespaces`. */
  readonly watchPath: string;
  /** Extra watch query parameters (e.g. a fieldSelector matching the list's). */
  readonly watchQuery?: Record<string, string>;
  list(continueToken: string | undefined): Promise<ListPage>;
  decode(raw: JsonObject): T;
}

export interface ReflectorSink<T> {
  /** A complete, consistent list: replace everything of this kind. */
  replace(items: T[]): void;
  upsert(item: T, previous: T | undefined): void;
  remove(namespace: string, name: string): void;
}

/**
 * Why a list/watch started over (a low-cardinality metric label):
 * `timeout`: the API server ended the watch normally (its timeoutSeconds); routine, resumed
 * from the last version. `expired`: 410 Gone, relisted. `disconnect`: we dropped it on purpose
 * (disconnect()). `error`: a failed list or watch attempt (logged as a warning, retried with
 * backoff). stop() ends the loop and is not a restart.
 */
export const WATCH_RESTART_REASONS = ['timeout', 'expired', 'disconnect', 'error'] as const;
export type WatchRestartReason = (typeof WATCH_RESTART_REASONS)[number];

export interface ReflectorOptions {
  readonly pageSize?: number;
  readonly backoffMs?: { initial: number; max: number };
  /** Server-side watch timeout; a fresh watch is started after it, from the last version. */
  readonly watchTimeoutSeconds?: number;
  /** Called each time the list/watch starts over, with why. */
  readonly onRestart?: (reason: WatchRestartReason) => void;
}

/** How long after the server-side timeout a silent watch is given up as hung. */
export const WATCH_INACTIVITY_MARGIN_MS = 30_000;

/**
 * @kubernetes/client-node 2.0.1's Watch aborts a watch after `requestTimeoutMs` (30 s) without
 * data, far below the server-side timeoutSeconds asked for, and offers no option to change it:
 * the field is TypeScript-private (a custom fetch dispatcher cannot help, the timer is the
 * Watch's own). It is a plain instance property read at every timer reset, so it is set on our
 * own instance; no global is touched. Throws if a library update renamed it, rather than
 * silently bring back watches cut every 30 s (a unit test pins this).
 */
export function setWatchInactivityLimit(watch: Watch, ms: number): void {
  const w = watch as unknown as { requestTimeoutMs?: unknown };
  if (typeof w.requestTimeoutMs !== 'number') throw new Error('@kubernetes/client-node Watch has no numeric requestTimeoutMs: cannot set the watch inactivity limit (see src/cluster/reflector.ts)');
  w.requestTimeoutMs = ms;
}

class Gone extends Error {}

/** The watch in progress: its abort handle once established, and whether we are ending it. */
interface CurrentWatch {
  abort: AbortController | undefined;
  endedByUs: boolean;
}

function metaOf(raw: unknown): { namespace: string; name: string; resourceVersion: string | undefined } | undefined {
  if (!isObject(raw) || !isObject(raw.metadata)) return undefined;
  const md = raw.metadata;
  if (typeof md.name !== 'string') return undefined;
  return { namespace: typeof md.namespace === 'string' ? md.namespace : '', name: md.name, resourceVersion: typeof md.resourceVersion === 'string' ? md.resourceVersion : undefined };
}

export class Reflector<T> {
  private resourceVersion = '';
  private stopped = false;
  private current: CurrentWatch | undefined;
  private syncedOnce = false;
  private known = new Map<string, T>();
  private readonly watch: Watch;
  private readonly source: ResourceSource<T>;
  private readonly sink: ReflectorSink<T>;
  private readonly logger: Logger;
  private readonly options: Required<Omit<ReflectorOptions, 'onRestart'>>;
  private readonly onRestart: (reason: WatchRestartReason) => void;
  private wake: (() => void) | undefined;

  constructor(kc: KubeConfig, source: ResourceSource<T>, sink: ReflectorSink<T>, logger: Logger, options: ReflectorOptions = {}) {
    this.source = source;
    this.sink = sink;
    this.logger = logger.child({ resource: source.kind });
    this.options = {
      pageSize: options.pageSize ?? 500,
      backoffMs: options.backoffMs ?? { initial: 250, max: 30_000 },
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? 300,
    };
    this.onRestart = options.onRestart ?? (() => undefined);
    this.watch = new Watch(kc);
    // Bookmarks (about every minute, and just before the deadline) keep a quiet watch alive
    // until the server ends it; only a connection silent past the deadline is hung.
    setWatchInactivityLimit(this.watch, this.options.watchTimeoutSeconds * 1000 + WATCH_INACTIVITY_MARGIN_MS);
  }

  get synced(): boolean {
    return this.syncedOnce;
  }

  /** Runs until stop(); resolves the returned promise only when stopped. */
  async run(): Promise<void> {
    let delay = this.options.backoffMs.initial;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
          if (this.stopped) break;
        }
        const started = Date.now();
        const ended = await this.watchOnce(() => {
          delay = this.options.backoffMs.initial; // the API server is back: the next blip starts from the first step
        });
        if (this.stopped) break;
        // Not a failure: the server's timeoutSeconds elapsed (or we dropped it); resume from
        // the last version seen.
        this.logger.debug({ reason: ended, afterMs: Date.now() - started, resourceVersion: this.resourceVersion }, 'watch ended; restarting');
        this.onRestart(ended);
        delay = this.options.backoffMs.initial; // a watch that ran and ended normally
      } catch (e) {
        if (this.stopped) break;
        if (e instanceof Gone) {
          this.logger.info('watch expired (410 Gone): relisting');
          this.onRestart('expired');
          needList = true;
          continue;
        }
        this.logger.warn({ err: e instanceof Error ? e.message : String(e), retryInMs: delay }, 'list/watch failed; retrying');
        this.onRestart('error');
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.options.backoffMs.max);
        // After an error the version may be stale; a relist is the only safe resumption
        // point when the watch itself could not be established.
        needList = needList || this.resourceVersion === '';
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.endCurrent();
    this.wake?.();
  }

  /** Drops the current watch (tests use this to simulate a disconnect); a new one follows. */
  disconnect(): void {
    this.endCurrent();
  }

  /** Ends the watch in progress on purpose: not a failure. One still connecting ends once established. */
  private endCurrent(): void {
    const w = this.current;
    if (!w) return;
    w.endedByUs = true;
    w.abort?.abort();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async relist(): Promise<void> {
    const known = new Map<string, T>();
    let token: string | undefined;
    let rv = '';
    do {
      const page = await this.source.list(token);
      for (const raw of page.items) {
        const meta = metaOf(raw);
        const item = meta && this.decode(raw);
        if (meta && item !== undefined) known.set(`${meta.namespace}/${meta.name}`, item);
      }
      rv = page.resourceVersion;
      token = page.continueToken;
    } while (token);
    const items = [...known.values()];
    this.known = known;
    this.resourceVersion = rv;
    this.sink.replace(items);
    this.syncedOnce = true;
    this.logger.debug({ count: items.length, resourceVersion: rv }, 'listed');
  }

  private decode(raw: unknown): T | undefined {
    if (!isObject(raw)) return undefined;
    try {
      return this.source.decode(raw);
    } catch (e) {
      this.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'skipping an object that does not decode');
      return undefined;
    }
  }

  /** One watch, until it ends: resolves with why when it ended normally, rejects on a failure. */
  private watchOnce(onEstablished: () => void): Promise<'timeout' | 'disconnect'> {
    const w: CurrentWatch = { abort: undefined, endedByUs: this.stopped };
    this.current = w;
    return new Promise<'timeout' | 'disconnect'>((resolve, reject) => {
      let gone = false;
      let failed: Error | undefined;
      const onEvent = (type: string, obj: unknown): void => {
        const meta = metaOf(obj);
        if (type === 'ERROR') {
          // A Status; the server closes the watch after it. 410: relist; anything else is a
          // failure of this watch, not a normal end.
          const code = isObject(obj) ? obj.code : undefined;
          if (code === 410) gone = true;
          else failed ??= new Error(`watch error event: ${isObject(obj) && typeof obj.message === 'string' ? obj.message : JSON.stringify(obj)}${typeof code === 'number' ? ` (${code})` : ''}`);
          return;
        }
        if (type === 'BOOKMARK') {
          // A bookmark carries only metadata.resourceVersion (no name): resume from it, so a
          // quiet watch restarted after timeoutSeconds does not ask for a compacted version.
          const md = isObject(obj) && isObject(obj.metadata) ? obj.metadata : undefined;
          if (typeof md?.resourceVersion === 'string' && md.resourceVersion) this.resourceVersion = md.resourceVersion;
          return;
        }
        if (meta?.resourceVersion) this.resourceVersion = meta.resourceVersion;
        if (!meta) return;
        const k = `${meta.namespace}/${meta.name}`;
        if (type === 'DELETED') {
          this.known.delete(k);
          this.sink.remove(meta.namespace, meta.name);
          return;
        }
        const item = this.decode(obj);
        if (item === undefined) return;
        const previous = this.known.get(k);
        this.known.set(k, item);
        this.sink.upsert(item, previous);
      };
      let finished = false;
      const onDone = (err: unknown): void => {
        finished = true;
        if (this.current === w) this.current = undefined;
        // Ended by stop() or disconnect(): whatever the library reports (an AbortError), not a failure.
        if (w.endedByUs) resolve('disconnect');
        else if (gone) reject(new Gone());
        else if (failed) reject(failed);
        else if (err) {
          // Includes the library's own inactivity TimeoutError: silent past the server's
          // deadline plus a margin means a hung connection.
          const status = (err as { statusCode?: number }).statusCode;
          if (status === 410) reject(new Gone());
          else reject(err instanceof Error ? err : new Error(String(err)));
        } else resolve('timeout'); // the server ended the watch (its timeoutSeconds)
      };
      this.watch
        .watch(this.source.watchPath, { ...this.source.watchQuery, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: this.options.watchTimeoutSeconds }, onEvent, onDone)
        .then((abort) => {
          w.abort = abort;
          if (w.endedByUs) abort.abort();
          // The library resolves here after a failed attempt too (it reports that through
          // onDone first): only a watch still running was established.
          else if (!finished) onEstablished();
        })
        .catch((err: unknown) => onDone(err ?? new Error('watch failed')));
    });
  }
}
