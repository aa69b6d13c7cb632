/**
 * An HTTP proxy in front of an S3-compatible server that injects the transient failures real S3
 * produces now and then: `503 SlowDown` answers, connections reset in the middle of a request, and
 * a byte damaged on the way (`corrupt`). `shouldFail` decides per request (method, path with query)
 * which failure, if any, it gets.
 *
 * It also does what S3 does and moto does not: a request with `x-amz-checksum-crc32` whose body
 * does not match it is answered `400 BadDigest` and never reaches the server. Every such check is
 * recorded in `checksums`, and every `CompleteMultipartUpload` in `completions` with how many of its
 * parts name their CRC-32 (S3 requires all of them for an upload started with CRC32).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { crc32 } from 'node:zlib';
import { forwardHttp, listenOnLoopback } from './forward-http.js';

export type InjectedFault = 'slow-down' | 'reset' | 'corrupt' | undefined;

export interface ChecksumCheck {
  readonly method: string;
  readonly path: string;
  /** The request's `x-amz-checksum-crc32`, undefined when it had none. */
  readonly sent: string | undefined;
  /** Whether the body that arrived matches `sent` (true when nothing was sent). */
  readonly matched: boolean;
}

export interface CompletionSeen {
  readonly path: string;
  readonly parts: number;
  readonly partsWithCrc32: number;
}

export interface FaultyS3Proxy {
  readonly endpoint: string;
  /** Requests that got a fault, as `<fault> <method> <path>`. */
  readonly faults: string[];
  /** Every PUT (objects and parts) with what it claimed and whether its body matched. */
  readonly checksums: ChecksumCheck[];
  readonly completions: CompletionSeen[];
  close(): Promise<void>;
}

export async function startFaultyS3Proxy(
  targetPort: number,
  shouldFail: (req: IncomingMessage) => InjectedFault,
): Promise<FaultyS3Proxy> {
  const faults: string[] = [];
  const checksums: ChecksumCheck[] = [];
  const completions: CompletionSeen[] = [];
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
    const completion = req.method === 'POST' && /[?&]uploadId=/.test(req.url ?? '');
    if (req.method !== 'PUT' && !completion && fault !== 'corrupt') {
      forwardHttp(targetPort, req, res);
      return;
    }
    // Bodies that are checked or damaged are taken whole first (test-sized parts only).
    const pieces: Buffer[] = [];
    req.on('data', (piece: Buffer) => pieces.push(piece));
    req.on('end', () => {
      const body = Buffer.concat(pieces);
      if (completion) {
        const xml = body.toString('utf8');
        completions.push({
          path: req.url ?? '',
          parts: xml.match(/<Part>/g)?.length ?? 0,
          partsWithCrc32: xml.match(/<ChecksumCRC32>/g)?.length ?? 0,
        });
      }
      if (fault === 'corrupt' && body.length > 0) {
        const middle = body.length >> 1;
        body[middle] = body.readUInt8(middle) ^ 0xff;
      }
      const header = req.headers['x-amz-checksum-crc32'];
      const sent = typeof header === 'string' ? header : undefined;
      const matched = sent === undefined || sent === crc32Base64(crc32(body));
      checksums.push({ method: req.method ?? '', path: req.url ?? '', sent, matched });
      if (!matched) {
        res.writeHead(400, { 'Content-Type': 'application/xml' });
        res.end(
          '<?xml version="1.0"?><Error><Code>BadDigest</Code><Message>The CRC32 you specified did not match the calculated checksum.</Message></Error>',
        );
        return;
      }
      forwardHttp(targetPort, req, res, body);
    });
  });
  return { ...(await listenOnLoopback(server)), faults, checksums, completions };
}

function crc32Base64(crc: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return bytes.toString('base64');
}
