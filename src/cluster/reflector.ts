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

export interface ReflectorOptions {
  readonly pageSize?: number;
  readonly backoffMs?: { initial: number; max: number };
  /** Server-side watch timeout; a fresh watch is started after it, from the last version. */
  readonly watchTimeoutSeconds?: number;
}

class Gone extends Error {}

function metaOf(raw: unknown): { namespace: string; name: string; resourceVersion: string | undefined } | undefined {
  if (!isObject(raw) || !isObject(raw.metadata)) return undefined;
  const md = raw.metadata;
  if (typeof md.name !== 'string') return undefined;
  return { namespace: typeof md.namespace === 'string' ? md.namespace : '', name: md.name, resourceVersion: typeof md.resourceVersion === 'string' ? md.resourceVersion : undefined };
}

export class Reflector<T> {
  private resourceVersion = '';
  private stopped = false;
  private abort: AbortController | undefined;
  private syncedOnce = false;
  private known = new Map<string, T>();
  private readonly watch: Watch;
  private readonly source: ResourceSource<T>;
  private readonly sink: ReflectorSink<T>;
  private readonly logger: Logger;
  private readonly options: Required<ReflectorOptions>;
  private wake: (() => void) | undefined;

  constructor(kc: KubeConfig, source: ResourceSource<T>, sink: ReflectorSink<T>, logger: Logger, options: ReflectorOptions = {}) {
    this.watch = new Watch(kc);
    this.source = source;
    this.sink = sink;
    this.logger = logger.child({ resource: source.kind });
    this.options = {
      pageSize: options.pageSize ?? 500,
      backoffMs: options.backoffMs ?? { initial: 250, max: 30_000 },
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? 300,
    };
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
        }
        await this.watchOnce(() => {
          delay = this.options.backoffMs.initial; // the API server is back: the next blip starts from the first step
        });
        delay = this.options.backoffMs.initial; // a watch that ran and ended normally
      } catch (e) {
        if (this.stopped) break;
        if (e instanceof Gone) {
          this.logger.info('watch expired (410 Gone): relisting');
          needList = true;
          continue;
        }
        this.logger.warn({ err: e instanceof Error ? e.message : String(e), retryInMs: delay }, 'list/watch failed; retrying');
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
    this.abort?.abort();
    this.wake?.();
  }

  /** Drops the current watch (tests use this to simulate a disconnect). */
  disconnect(): void {
    this.abort?.abort();
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

  private watchOnce(onEstablished: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let gone = false;
      const onEvent = (type: string, obj: unknown): void => {
        const meta = metaOf(obj);
        if (type === 'ERROR') {
          const code = isObject(obj) ? obj.code : undefined;
          if (code === 410) gone = true;
          return;
        }
        if (meta?.resourceVersion) this.resourceVersion = meta.resourceVersion;
        if (type === 'BOOKMARK' || !meta) return;
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
      const onDone = (err: unknown): void => {
        this.abort = undefined;
        if (gone) reject(new Gone());
        else if (err && !this.stopped && !(err instanceof Error && err.name === 'AbortError')) {
          const status = (err as { statusCode?: number }).statusCode;
          if (status === 410) reject(new Gone());
          else reject(err instanceof Error ? err : new Error(String(err)));
        } else resolve();
      };
      this.watch
        .watch(this.source.watchPath, { ...this.source.watchQuery, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: this.options.watchTimeoutSeconds }, onEvent, onDone)
        .then((abort) => {
          this.abort = abort;
          onEstablished();
          if (this.stopped) abort.abort();
        })
        .catch((err: unknown) => onDone(err ?? new Error('watch failed')));
    });
  }
}
