import express from 'express';
import type { Logger } from 'pino';
import { errorHandler, notFound } from './middleware/errors.js';
import { requestLog } from './middleware/request-log.js';
import { normalizeRequestTarget } from './middleware/request-target.js';
import { authenticate, type AuthenticateOptions } from './middleware/authenticate.js';
import { cors, type CorsPolicy } from './middleware/cors.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';

export interface AppOptions {
  readonly logger: Logger;
  readonly readinessChecks: readonly ReadinessCheck[];
  readonly auth: AuthenticateOptions;
  readonly cors: CorsPolicy;
  /** Ferry's own API routes (files, events), mounted before the protocols. */
  readonly routes: readonly express.Router[];
  /** Protocol routers, mounted in order after the shared middleware. */
  readonly protocols: readonly express.Router[];
}

/**
 * The Express app: logging, CORS, operations routes (no credentials needed), authentication (every
 * other request gets its tenant here), Ferry's API, protocols, JSON errors. No body parser runs
 * before the protocols: upload bodies are streamed by the protocol that owns them.
 */
export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(normalizeRequestTarget);
  app.use(requestLog(options.logger));
  app.use(cors(options.cors));
  app.use(healthRoutes(options.readinessChecks, options.logger));
  app.use(authenticate(options.auth));
  for (const router of [...options.routes, ...options.protocols]) app.use(router);
  app.use(notFound);
  app.use(errorHandler(options.logger));
  return app;
}
