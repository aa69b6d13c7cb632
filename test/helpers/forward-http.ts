import { request, type IncomingMessage, type ServerResponse } from 'node:http';

/** Passes one HTTP request on to a loopback server unchanged and streams its answer back. */
export function forwardHttp(targetPort: number, req: IncomingMessage, res: ServerResponse): void {
  const upstream = request(
    { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
}
