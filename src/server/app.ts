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
    app.post(path, async (req: Request, res: Response) => {
      if (options.draining?.()) res.setHeader('Connection', 'close');
      if (!isJsonContentType(req.headers['content-type'])) {
        req.resume();
        metrics.badRequests.inc({ path });
        logger.warn({ path, contentType: req.headers['content-type'] ?? null }, 'rejected: content type must be application/json');
        reject(res, 400, 'content type must be application/json');
        return;
      }
      const body = await readBody(req, maxBodyBytes);
      const start = process.hrtime.bigint();
      const parsed = body.ok ? parseJson(body.text) : body;
      const outcome: ReviewOutcome = parsed.ok ? await processReviewAwaitingCache(parsed.value, context, pick) : { ok: false, reason: parsed.reason };
      if (!outcome.ok) {
        metrics.badRequests.inc({ path });
        logger.warn({ path, uid: outcome.request?.uid, reason: outcome.reason }, 'rejected: not a usable AdmissionReview');
        if (!body.ok) res.setHeader('Connection', 'close');
        reject(res, 400, outcome.reason);
        return;
      }
      res.json(outcome.body);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      // After the answer, and only enqueued: an Event never delays or fails an admission.
      try {
        if (!outcome.request.dryRun) {
          options.events?.record(outcome.decision.events);
          for (const f of outcome.decision.findings ?? []) metrics.findings.inc({ kind: f.kind });
        }
      } catch (err) {
        logger.error({ err }, 'recording events failed; the admission was answered');
      }
      const response = outcome.body.response;
      const verdict = outcome.error ? 'error' : verdictOf(response);
      metrics.requests.inc({ path, verdict });
      metrics.duration.observe({ path }, seconds);
      if (response.warnings) metrics.warnings.inc({ path }, response.warnings.length);
      const r = outcome.request;
      const line = {
        uid: r.uid,
        namespace: r.namespace,
        name: r.name,
        kind: r.kind.kind,
        operation: r.operation,
        ...(r.subResource ? { subResource: r.subResource } : {}),
        user: r.user,
        dryRun: r.dryRun,
        verdict,
        reason: outcome.decision.reason,
        injected: outcome.decision.injected,
        warnings: response.warnings,
        ms: Math.round(seconds * 1e5) / 100,
      };
      if (outcome.error) logger.error({ ...line, err: outcome.error }, 'admission handler failed');
      else requests.info(line, 'admission');
    });
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
