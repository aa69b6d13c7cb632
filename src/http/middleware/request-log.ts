import type { RequestHandler } from 'express';
import type { Logger } from 'pino';

/**
 * One JSON line per request: method, path, upload id, status, upload bytes stored by the request
 * (set by the protocol in `res.locals.bytesReceived`), bytes sent and duration. Logged on `close`
 * so requests cut by the client are logged too; a protocol whose work goes on after a cut (saving
 * what arrived) sets `res.locals.settled` and the line waits for it.
 */
export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const socket = req.socket;
    const writtenBefore = socket.bytesWritten;
    const log = () =>
      logger.info(
        {
          method: req.method,
          path: req.path,
          upload_id: res.locals.uploadId,
          status: res.headersSent ? res.statusCode : undefined,
          completed: res.writableFinished,
          bytes_received: res.locals.bytesReceived,
          bytes_out: socket.bytesWritten - writtenBefore,
          duration_ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        },
        'request',
      );
    res.once('close', () => {
      const settled = res.locals.settled as Promise<unknown> | undefined;
      if (settled) void settled.finally(log);
      else log();
    });
    next();
  };
}
