import express from 'express';
import type { Logger } from 'pino';
import { errorHandler, notFound } from './middleware/errors.js';
import { requestLog } from './middleware/request-log.js';
import { attachRequestContext } from './request-context.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';

export interface AppOptions {
  readonly logger: Logger;
  readonly readinessChecks: readonly ReadinessCheck[];
  /** Ferry's own API routes (files, events), mounted before the protocols. */
  readonly routes: readonly express.Router[];
  /** Protocol routers, mounted in order after the shared middleware. */
  readonly protocols: readonly express.Router[];
}

/**
 * The Express app: logging, request context, operations routes, protocols, JSON errors. No body
 * parser runs before the protocols: upload bodies are streamed by the protocol that owns them.
 */
export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestLog(options.logger));
  app.use(attachRequestContext());
  app.use(healthRoutes(options.readinessChecks, options.logger));
  for (const router of [...options.routes, ...options.protocols]) app.use(router);
  app.use(notFound);
  app.use(errorHandler(options.logger));
  return app;
}
