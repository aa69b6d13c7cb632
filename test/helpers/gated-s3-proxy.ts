/**
 * An HTTP proxy in front of an S3-compatible server that holds back the first request matching a
 * predicate (it is never forwarded), so a test can crash Ferry at that exact step: e.g. hold the
 * request that assembles a finished upload, SIGKILL Ferry, restart it, and look at what is left.
 *
 *   const gate = await startGatedS3Proxy(moto.port, (req) => req.method === 'PUT' && ...);
 *   const ferry = await startFerry({ env: { ...moto.env, FERRY_S3_ENDPOINT: gate.endpoint } });
 *   await gate.held;            // the matching request arrived and waits
 *   await ferry.kill();
 *   gate.dropHeld();            // its connection is closed; later requests all pass
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { forwardHttp, listenOnLoopback } from './forward-http.js';

export interface GatedS3Proxy {
  readonly endpoint: string;
  /** Resolves with `<method> <url>` of the request held back. */
  readonly held: Promise<string>;
  /** Closes the held request's connection without an answer. */
  dropHeld(): void;
  close(): Promise<void>;
}

export async function startGatedS3Proxy(
  targetPort: number,
  hold: (req: IncomingMessage) => boolean,
): Promise<GatedS3Proxy> {
  let heldFn!: (what: string) => void;
  const held = new Promise<string>((resolve) => (heldFn = resolve));
  let holding: { req: IncomingMessage; res: ServerResponse } | undefined;
  let used = false;
  const server = createServer((req, res) => {
    if (!used && hold(req)) {
      used = true;
      holding = { req, res };
      req.resume();
      heldFn(`${req.method} ${req.url}`);
      return;
    }
    forwardHttp(targetPort, req, res);
  });
  return { ...(await listenOnLoopback(server)), held, dropHeld: () => holding?.req.socket.destroy() };
}
