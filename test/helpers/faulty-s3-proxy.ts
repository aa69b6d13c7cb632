/**
 * An HTTP proxy in front of an S3-compatible server that injects the transient failures real S3
 * produces now and then: `503 SlowDown` answers and connections reset in the middle of a request.
 * `shouldFail` decides per request (method, path with query) which failure, if any, it gets.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { forwardHttp, listenOnLoopback } from './forward-http.js';

export type InjectedFault = 'slow-down' | 'reset' | undefined;

export interface FaultyS3Proxy {
  readonly endpoint: string;
  /** Requests that got a fault, as `<fault> <method> <path>`. */
  readonly faults: string[];
  close(): Promise<void>;
}

export async function startFaultyS3Proxy(
  targetPort: number,
  shouldFail: (req: IncomingMessage) => InjectedFault,
): Promise<FaultyS3Proxy> {
  const faults: string[] = [];
  const server: Server = createServer((req, res) => {
    const fault = shouldFail(req);
    if (fault) faults.push(`${fault} ${req.method} ${req.url}`);
    if (fault === 'slow-down') {
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'Content-Type': 'application/xml' });
        res.end(
          '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
        );
      });
      return;
    }
    if (fault === 'reset') {
      // Take part of the body, then drop the connection without an answer.
      req.once('data', () => req.socket.destroy());
      req.once('end', () => req.socket.destroy());
      return;
    }
    forwardHttp(targetPort, req, res);
  });
  return { ...(await listenOnLoopback(server)), faults };
}
