/**
 * A small Server-Sent Events client for tests, on node:http (no EventSource polyfill): it parses
 * `id:` / `data:` / `retry:` lines and `:` comments, keeps every message it received, and lets a test
 * wait for one.
 *
 *   const sse = await openSse(`${url}/v1/events?batch=b1`);            // resolves once headers arrived
 *   const done = await sse.waitFor((e) => e.json.event === 'completed', 5000);
 *   const again = await openSse(`${url}/v1/files/${id}/events`, { lastEventId: done.id });
 *   afterEach(closeSseClients);                                         // closes every client left open
 */
import { request, type IncomingHttpHeaders } from 'node:http';

export interface SseMessage {
  /** The `id:` of the message (undefined when it had none). */
  readonly id: string | undefined;
  /** The `data:` lines joined with `\n`. */
  readonly data: string;
  /** `data` parsed as JSON (`{}` when it is not a JSON object). */
  readonly json: Record<string, unknown>;
}

export interface SseClient {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Every message received so far, in arrival order. */
  readonly messages: readonly SseMessage[];
  /** Comment lines received so far (heartbeats), without the leading `:`. */
  readonly comments: readonly string[];
  /** The last `retry:` value the server sent. */
  readonly retry: number | undefined;
  /** True once the server ended the stream (or `close()` was called). */
  readonly ended: boolean;
  /**
   * Resolves with the first message (already received or still to come) that `predicate` accepts;
   * rejects after `timeoutMs` with the messages received so far.
   */
  waitFor(predicate: (message: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  close(): void;
}

export interface OpenSseOptions {
  /** Sent as the `Last-Event-ID` header. */
  readonly lastEventId?: string;
  readonly headers?: Record<string, string>;
}

const open = new Set<SseClient>();

/** Closes every client `openSse` opened that is still open (use in `afterEach`). */
export function closeSseClients(): void {
  for (const client of open) client.close();
  open.clear();
}

/**
 * GETs `url` with `Accept: text/event-stream` and resolves once the response headers are in (with
 * any status: a non-2xx body is not parsed, check `status`).
 */
export function openSse(url: string, options: OpenSseOptions = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const messages: SseMessage[] = [];
    const comments: string[] = [];
    const waiters = new Set<() => void>();
    let retry: number | undefined;
    let ended = false;
    const notify = () => {
      for (const waiter of [...waiters]) waiter();
    };

    const req = request(
      url,
      {
        method: 'GET',
        agent: false,
        headers: {
          Accept: 'text/event-stream',
          ...(options.lastEventId !== undefined ? { 'Last-Event-ID': options.lastEventId } : {}),
          ...options.headers,
        },
      },
      (res) => {
        let buffer = '';
        let id: string | undefined;
        let data: string[] = [];
        const line = (text: string) => {
          if (text === '') {
            // A blank line dispatches the message gathered so far (a block of only comments has none).
            if (data.length > 0) {
              const joined = data.join('\n');
              let json: Record<string, unknown> = {};
              try {
                const parsed: unknown = JSON.parse(joined);
                if (typeof parsed === 'object' && parsed !== null) json = parsed as Record<string, unknown>;
              } catch {
                // not JSON: `data` has the text
              }
              messages.push({ id, data: joined, json });
              notify();
            }
            id = undefined;
            data = [];
            return;
          }
          if (text.startsWith(':')) {
            comments.push(text.slice(1).trim());
            return;
          }
          const colon = text.indexOf(':');
          const field = colon < 0 ? text : text.slice(0, colon);
          let value = colon < 0 ? '' : text.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'id') id = value;
          else if (field === 'data') data.push(value);
          else if (field === 'retry' && /^\d+$/.test(value)) retry = Number(value);
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let end = buffer.search(/\r\n|\r|\n/); end >= 0; end = buffer.search(/\r\n|\r|\n/)) {
            const newline = buffer.startsWith('\r\n', end) ? 2 : 1;
            line(buffer.slice(0, end));
            buffer = buffer.slice(end + newline);
          }
        });
        const finish = () => {
          ended = true;
          notify();
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);

        const client: SseClient = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          messages,
          comments,
          get retry() {
            return retry;
          },
          get ended() {
            return ended;
          },
          waitFor(predicate, timeoutMs = 10_000) {
            return new Promise<SseMessage>((resolveWait, rejectWait) => {
              const check = () => {
                const found = messages.find(predicate);
                if (!found) return;
                waiters.delete(check);
                clearTimeout(timer);
                resolveWait(found);
              };
              const timer: NodeJS.Timeout = setTimeout(() => {
                waiters.delete(check);
                rejectWait(
                  new Error(
                    `SSE ${url}: no matching message within ${timeoutMs} ms${ended ? ' (stream ended)' : ''}; ` +
                      `received: ${JSON.stringify(messages.map((m) => ({ id: m.id, ...m.json })))}`,
                  ),
                );
              }, timeoutMs);
              waiters.add(check);
              check();
            });
          },
          close() {
            ended = true;
            open.delete(client);
            req.destroy();
            res.destroy();
          },
        };
        open.add(client);
        resolve(client);
      },
    );
    req.on('error', (error) => {
      if (!ended) reject(error);
    });
    req.end();
  });
}
