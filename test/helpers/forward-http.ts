import { request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Passes one HTTP request on to a loopback server and streams its answer back: unchanged, or with
 * `body` (already read from the request) in place of its own.
 */
export function forwardHttp(targetPort: number, req: IncomingMessage, res: ServerResponse, body?: Buffer): void {
  const headers = body ? { ...req.headers, 'content-length': String(body.length) } : req.headers;
  const upstream = request(
    { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  if (body) upstream.end(body);
  else req.pipe(upstream);
}

/**
 * Starts `server` on a free loopback port. Resolves with its `http://127.0.0.1:<port>` endpoint and a
 * `close` that drops every open connection and waits for the server to close.
 */
export async function listenOnLoopback(server: Server): Promise<{ endpoint: string; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
