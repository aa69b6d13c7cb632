import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { isFerryError } from '../../core/errors.js';

/** `{"error": {"code", "message", "status"}}` (API.md §3), the same shape for every JSON error. */
export function errorBody(code: string, message: string, status: number) {
  return { error: { code, message, status } };
}

export const notFound: RequestHandler = (_req, res) => {
  res.status(404).json(errorBody('not_found', 'no such route', 404));
};

/**
 * The last handler: known errors keep their code and status; anything else is logged and answered
 * as a bare 500 so no stack trace or library text reaches the client.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (res.headersSent) {
      // The response is under way (a download cut mid-stream): all that is left is to end it.
      res.destroy();
      return;
    }
    if (isFerryError(error)) {
      res.status(error.status).json(errorBody(error.code, error.message, error.status));
      return;
    }
    const status = httpStatusOf(error);
    if (status !== undefined && status < 500) {
      res.status(status).json(errorBody('bad_request', 'the request could not be read', status));
      return;
    }
    logger.error({ err: error, method: req.method, path: req.path }, 'request failed');
    res.status(500).json(errorBody('internal_error', 'internal server error', 500));
  };
}

/** Express and body parsers tag client errors with `status`. */
function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status = (error as { status?: unknown }).status;
  return typeof status === 'number' ? status : undefined;
}
