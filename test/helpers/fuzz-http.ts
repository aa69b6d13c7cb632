/**
 * HTTP for the fuzz suites: requests whose exact header bytes and request target the test controls.
 *
 * - `fuzzSend` uses node:http (`http.request`, no pooling). Header values and paths are put on the
 *   wire as the UTF-8 bytes of the generated text (`wire`), so unicode reaches Ferry byte for byte
 *   instead of being refused by the client. What Node still refuses to send (control characters,
 *   spaces in the path, bad method tokens) resolves `undefined`: the property skips that case.
 * - `fuzzSendRaw` writes the request itself on a TCP socket (absolute-form targets, `%00`, a
 *   Content-Length that does not match the body) and reads the status line and headers.
 *
 * Both reject when no answer comes within `FUZZ_REQUEST_TIMEOUT_MS`: a hang is a failure.
 *
 *   const res = await fuzzSend(url, { method: 'POST', path: '/files/', headers: { 'Tus-Resumable': '1.0.0' } });
 *   fc.pre(res !== undefined);
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';

export const FUZZ_REQUEST_TIMEOUT_MS = 5000;

/** A header sent once (a string) or repeated (an array: one header line per value). */
export type FuzzHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface FuzzRequest {
  readonly method: string;
  /** The request target as written on the request line (origin-form or absolute-form). */
  readonly path: string;
  readonly headers?: FuzzHeaders;
  readonly body?: Buffer;
  /** Resolve as soon as the status and headers are in, then close (always so for event streams). */
  readonly headersOnly?: boolean;
}

export interface FuzzResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Errors node:http raises for requests it will not put on the wire. */
const REFUSED_BY_CLIENT = new Set([
  'ERR_INVALID_CHAR',
  'ERR_UNESCAPED_CHARACTERS',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_HTTP_INVALID_HEADER_VALUE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_ARG_TYPE',
]);

/** The UTF-8 bytes of `text` as a latin1 string: node:http writes those bytes unchanged. */
export function wire(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** A short description of a request for failure messages. */
export function describeFuzzRequest(req: FuzzRequest): string {
  const headers = Object.entries(req.headers ?? {})
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name}: ${clip(JSON.stringify(value))}`)
    .join('; ');
  return `${req.method} ${clip(JSON.stringify(req.path))} [${headers}]${req.body ? ` body ${req.body.length} B` : ''}`;
}

function clip(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text;
}

/**
 * A body goes with its Content-Length unless the request names its framing itself. node:http frames
 * a body on its own only for methods it expects one on: the body of a DELETE or HEAD would follow the
 * headers unframed, and the server would read it as the start of a second, garbage request.
 */
function withBodyLength(
  headers: Record<string, string | string[]>,
  body: Buffer | undefined,
): Record<string, string | string[]> {
  if (body === undefined) return headers;
  const named = Object.keys(headers).some((name) => /^(?:content-length|transfer-encoding)$/i.test(name));
  return named ? headers : { ...headers, 'Content-Length': String(body.length) };
}

function wireHeaders(headers: FuzzHeaders | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = typeof value === 'string' ? wire(value) : value.map(wire);
  }
  return out;
}

/**
 * One request through node:http on a fresh connection. Resolves with the answer, or `undefined` when
 * node:http refuses to send it; rejects on a timeout or a connection that fails before an answer.
 */
export function fuzzSend(baseUrl: string, req: FuzzRequest): Promise<FuzzResponse | undefined> {
  const base = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    let client: ReturnType<typeof request>;
    try {
      client = request({
        host: base.hostname,
        port: base.port,
        method: req.method,
        path: wire(req.path),
        headers: withBodyLength(wireHeaders(req.headers), req.body),
        agent: false,
        // Our own header blocks may be large (metadata up to ~12 KB); let answers be as large.
        maxHeaderSize: 64 * 1024,
      });
    } catch (error) {
      if (REFUSED_BY_CLIENT.has((error as NodeJS.ErrnoException).code ?? '')) return resolve(undefined);
      return reject(error as Error);
    }
    const timer = setTimeout(() => {
      finish(() => reject(new Error(`no answer within ${FUZZ_REQUEST_TIMEOUT_MS} ms: ${describeFuzzRequest(req)}`)));
      client.destroy();
    }, FUZZ_REQUEST_TIMEOUT_MS);
    client.on('response', (res) => {
      const status = res.statusCode ?? 0;
      // An event stream never ends: whatever the request, its status and headers are the answer.
      if (req.headersOnly || String(res.headers['content-type']).startsWith('text/event-stream')) {
        finish(() => resolve({ status, headers: res.headers, body: Buffer.alloc(0) }));
        res.destroy();
        client.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => finish(() => resolve({ status, headers: res.headers, body: Buffer.concat(chunks) })));
      res.on('error', (error) => {
        const received = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
        const declared = res.headers['content-length'] ?? 'none';
        const why = `answer ${status} cut short (${error.message}): Content-Length ${declared}, ${received} bytes of body`;
        finish(() => reject(new Error(`${why}: ${describeFuzzRequest(req)}`)));
      });
      res.on('close', () => {
        // The answer was cut after its headers (a download stopped mid-stream): the status stands.
        finish(() => resolve({ status, headers: res.headers, body: Buffer.concat(chunks) }));
      });
    });
    client.on('error', (error) => {
      if (REFUSED_BY_CLIENT.has((error as NodeJS.ErrnoException).code ?? '')) return finish(() => resolve(undefined));
      finish(() => reject(new Error(`${error.message}: ${describeFuzzRequest(req)}`)));
    });
    try {
      client.end(req.body);
    } catch (error) {
      client.destroy();
      if (REFUSED_BY_CLIENT.has((error as NodeJS.ErrnoException).code ?? '')) return finish(() => resolve(undefined));
      finish(() => reject(error as Error));
    }
  });
}

export interface RawRequest {
  readonly method: string;
  readonly target: string;
  /** Header lines in order; names and values are written as the UTF-8 bytes of the text. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body?: Buffer;
  /** Written as `Content-Length` whatever the body's real length (omitted when undefined). */
  readonly contentLength?: string;
  /** End our side of the connection after the body (a client that stops short of its Content-Length). */
  readonly halfClose?: boolean;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Writes the request bytes on a new TCP connection and resolves with the status and headers of the
 * first answer, or `undefined` when the server closed the connection without answering. Rejects on a
 * timeout. The connection is closed as soon as the head of the answer is in.
 */
export function fuzzSendRaw(baseUrl: string, req: RawRequest): Promise<RawResponse | undefined> {
  const base = new URL(baseUrl);
  const lines = [`${req.method} ${req.target} HTTP/1.1`];
  for (const [name, value] of req.headers) lines.push(`${name}: ${value}`);
  if (req.contentLength !== undefined) lines.push(`Content-Length: ${req.contentLength}`);
  lines.push('Connection: close');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
  const bytes = req.body ? Buffer.concat([head, req.body]) : head;
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(base.port), base.hostname);
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(
            new Error(`no answer within ${FUZZ_REQUEST_TIMEOUT_MS} ms: ${req.method} ${JSON.stringify(req.target)}`),
          ),
        ),
      FUZZ_REQUEST_TIMEOUT_MS,
    );
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine = '', ...headerLines] = received.subarray(0, end).toString('latin1').split('\r\n');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
      if (!match) return finish(() => reject(new Error(`not an HTTP answer: ${JSON.stringify(statusLine)}`)));
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      finish(() => resolve({ status: Number(match[1]), headers }));
    });
    // A reset or close before any answer: the server hung up without answering.
    socket.on('error', () => finish(() => resolve(undefined)));
    socket.on('close', () => finish(() => resolve(undefined)));
    socket.on('connect', () => {
      socket.write(bytes);
      if (req.halfClose) socket.end();
    });
  });
}
