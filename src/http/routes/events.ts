import type { IncomingMessage } from 'node:http';
import express, { type Request, type Response } from 'express';
import { FerryError } from '../../core/errors.js';
import type { Files } from '../../core/files/files.js';
import type { EventBus, EventFilter, FileEvent } from '../../core/ports.js';

export interface EventRoutesOptions {
  readonly files: Files;
  readonly events: EventBus;
  readonly tenantOf: (req: IncomingMessage) => string;
  /** A comment line this often keeps proxies and Ferry's own idle timeout from closing the stream. */
  readonly heartbeatMs: number;
}

export interface EventRoutes {
  readonly router: express.Router;
  /** Ends every open stream (graceful shutdown: clients reconnect elsewhere with Last-Event-ID). */
  closeAll(): void;
}

/** A client that reads slower than events come is cut off; it resumes with Last-Event-ID. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * Server-Sent Events (API.md §3.3): `/v1/files/<id>/events` for one file, `/v1/events?batch=` for the
 * tenant's files (of one batch). Each event is `id:` + unnamed `data:` JSON (`event`, `file_id`, `at`
 * and the event's fields), so `EventSource.onmessage` sees all of them. A reconnecting client sends
 * `Last-Event-ID` (or `?last_event_id=` on a first connection) and gets what it missed, as far back
 * as the replay buffer reaches.
 */
export function eventRoutes(options: EventRoutesOptions): EventRoutes {
  const open = new Set<Response>();
  const router = express.Router();

  router.get('/v1/files/:id/events', async (req, res) => {
    const tenant = options.tenantOf(req);
    // Another tenant's file answers like a missing one.
    const file = await options.files.get(tenant, req.params.id);
    await stream(req, res, { tenant, fileId: file.id });
  });

  router.get('/v1/events', async (req, res) => {
    const batch = req.query.batch;
    if (batch !== undefined && (typeof batch !== 'string' || batch.length === 0 || batch.length > 1024)) {
      throw new FerryError('invalid_query', 'batch must be given once, as text of 1 to 1024 characters');
    }
    await stream(req, res, { tenant: options.tenantOf(req), ...(batch ? { batch } : {}) });
  });

  async function stream(req: Request, res: Response, filter: EventFilter): Promise<void> {
    // An empty Last-Event-ID (some clients send one on a first connection) means "from now".
    const lastEventId = req.get('last-event-id') || queryText(req, 'last_event_id') || undefined;
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    // nginx would otherwise hold events back in its buffer.
    res.setHeader('X-Accel-Buffering', 'no');
    // HEAD learns that the stream exists; a stream of nothing but headers would never end.
    if (req.method === 'HEAD') {
      res.end();
      return;
    }

    const send = (event: FileEvent) => {
      if (res.writableEnded) return;
      const data = { event: event.event, file_id: event.fileId, at: event.at, ...event.fields };
      res.write(`id: ${event.id}\ndata: ${JSON.stringify(data)}\n\n`);
      if (res.writableLength > MAX_BUFFERED_BYTES) res.end();
    };
    const subscription = await options.events.subscribe(filter, lastEventId, send);
    // Written once the subscription is in place: a client that saw the stream open misses nothing.
    res.write('retry: 2000\n\n');
    open.add(res);
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), options.heartbeatMs);
    const finish = () => {
      clearInterval(heartbeat);
      subscription.close();
      open.delete(res);
    };
    res.once('close', finish);
    if (res.destroyed) finish();
  }

  return {
    router,
    closeAll() {
      for (const res of open) res.end();
    },
  };
}

function queryText(req: Request, name: string): string | undefined {
  const value = req.query[name];
  return typeof value === 'string' ? value : undefined;
}
