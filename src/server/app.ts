// The express app: admission routes, health, and nothing else. Kept thin: it reads the
// body, hands it to processReview (the same path the CLI uses), writes the answer, and
// records one log line and the metrics.

import express, { type Express, type Request, type Response } from 'express';
import { processReviewAwaitingCache, ROUTES, type AdmissionContext, type Handler, type ReviewOutcome } from '../admission/handlers.ts';
import { verdictOf } from '../admission/review.ts';
import type { AgentEvent } from '../injection/events.ts';
import { requestLogger, type Logger } from '../logging/logger.ts';
import { isJsonContentType, parseJson, readBody } from './body.ts';
import type { Metrics } from './metrics.ts';

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface AppOptions {
  readonly context: AdmissionContext;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly maxBodyBytes: number;
  /** Readiness: caches synced, TLS loaded, and whatever else the caller checks. */
  readonly readiness: () => { ready: boolean; reasons: string[] };
  /** Set during graceful shutdown: responses ask the client to close the connection. */
  readonly draining?: () => boolean;
  /** Takes a decision's Events after the response is written (enqueue only, never throws). */
  readonly events?: { record(events: readonly AgentEvent[] | undefined): void };
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The answer as express's res.json sends it (the same headers and bytes), written directly:
 * express would check the charset, weigh an ETag and copy the text into a Buffer first. A
 * string body goes out in one write with the headers.
 */
function sendJson(res: Response, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, ['Content-Type', JSON_TYPE, 'Content-Length', String(Buffer.byteLength(text))]);
  res.end(text);
}

function reject(res: Response, status: number, reason: string): void {
  res.status(status).type('text/plain').send(reason + '\n');
}

export function healthRoutes(app: Express, readiness: AppOptions['readiness']): void {
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    const r = readiness();
    res.status(r.ready ? 200 : 503).type('text/plain').send(r.ready ? 'ready\n' : `not ready: ${r.reasons.join('; ')}\n`);
  });
}

export function createApp(options: AppOptions): Express {
  const { context, logger, metrics, maxBodyBytes } = options;
  const requests = requestLogger(logger);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // hashing every response costs throughput and serves no cache

  for (const [path, handler] of ROUTES) {
    const pick = (): Handler => handler;
    // Metric children bound once per route: no label lookup on the request path.
    const counted = { patched: metrics.requests.labels(path, 'patched'), allowed: metrics.requests.labels(path, 'allowed'), denied: metrics.requests.labels(path, 'denied'), error: metrics.requests.labels(path, 'error') };
    const timed = metrics.duration.labels(path);
    const warned = metrics.warnings.labels(path);
    const bad = metrics.badRequests.labels(path);
    app.post(path, (req: Request, res: Response) => {
      if (options.draining?.()) res.setHeader('Connection', 'close');
      if (!isJsonContentType(req.headers['content-type'])) {
        req.resume();
        bad.inc();
        logger.warn({ path, contentType: req.headers['content-type'] ?? null }, 'rejected: content type must be application/json');
        reject(res, 400, 'content type must be application/json');
        return;
      }
      return readBody(req, maxBodyBytes).then((body) => {
        const start = process.hrtime.bigint();
        const parsed = body.ok ? parseJson(body.text) : body;
        if (!parsed.ok) return answer(res, parsed.reason, undefined, body.ok, start);
        const outcome = processReviewAwaitingCache(parsed.value, context, pick);
        // Almost always synchronous; a promise only while the namespace cache catches up.
        if (outcome instanceof Promise) return outcome.then((o) => answer(res, undefined, o, true, start));
        answer(res, undefined, outcome, true, start);
      });
    });

    /** Writes the answer, then (after it) hands over the Events, counts and logs the request. */
    const answer = (res: Response, unusable: string | undefined, outcome: ReviewOutcome | undefined, bodyRead: boolean, start: bigint): void => {
      if (outcome === undefined || !outcome.ok) {
        const reason = outcome === undefined ? unusable! : outcome.reason;
        bad.inc();
        logger.warn({ path, uid: outcome?.request?.uid, reason }, 'rejected: not a usable AdmissionReview');
        if (!bodyRead) res.setHeader('Connection', 'close');
        reject(res, 400, reason);
        return;
      }
      sendJson(res, outcome.body);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const r = outcome.request;
      const decision = outcome.decision;
      // After the answer, and only enqueued: an Event never delays or fails an admission.
      // Reading decision.events is what computes them (never for a dry run).
      if (!r.dryRun) {
        try {
          if (options.events) options.events.record(decision.events);
          for (const f of decision.findings) metrics.findings.inc({ kind: f.kind });
        } catch (err) {
          logger.error({ err }, 'recording events failed; the admission was answered');
        }
      }
      const response = outcome.body.response;
      const verdict = outcome.error ? 'error' : verdictOf(response);
      counted[verdict].inc();
      timed.observe(seconds);
      if (response.warnings) warned.inc(response.warnings.length);
      // One fixed shape for every request's line (pino drops the undefined fields).
      const line = {
        uid: r.uid,
        namespace: r.namespace,
        name: r.name,
        kind: r.kind.kind,
        operation: r.operation,
        subResource: r.subResource === '' ? undefined : r.subResource,
        user: r.user,
        dryRun: r.dryRun,
        verdict,
        reason: decision.reason,
        injected: decision.injected,
        warnings: response.warnings,
        ms: Math.round(seconds * 1e5) / 100,
        err: outcome.error,
      };
      if (outcome.error) logger.error(line, 'admission handler failed');
      else requests.info(line, 'admission');
    };
  }

  healthRoutes(app, options.readiness);

  app.use((req: Request, res: Response) => {
    reject(res, 404, `no route for ${req.method} ${req.path}`);
  });
  // Last resort: an exception escaping a route answers 500 without a stack trace.
  app.use((err: unknown, _req: Request, res: Response, _next: express.NextFunction) => {
    logger.error({ err }, 'unhandled error in request');
    if (!res.headersSent) reject(res, 500, 'internal error');
  });
  return app;
}
