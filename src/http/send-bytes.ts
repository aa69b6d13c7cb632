import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import type { ByteRange } from '../core/ports.js';
import { parseRange } from './byte-range.js';
import { contentDisposition } from './content-disposition.js';

export interface StoredBytes {
  readonly id: string;
  readonly size: number;
  readonly mediaType: string;
  readonly name: string | undefined;
  read(range?: ByteRange): Readable;
}

/**
 * Streams stored bytes with single byte ranges (206, 416), so large downloads resume. Always an
 * attachment with `nosniff`, so an uploaded HTML file can never run as a page of Ferry's origin.
 * Stored bytes never change once complete, so id and size make a strong ETag (and If-None-Match
 * answers 304).
 */
export async function sendBytes(req: Request, res: Response, bytes: StoredBytes): Promise<void> {
  const { size } = bytes;
  const etag = `"${bytes.id}-${size}"`;
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('ETag', etag);
  res.setHeader('Content-Type', bytes.mediaType);
  res.setHeader('Content-Disposition', contentDisposition(bytes.name));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'private, no-cache');
  if (
    req
      .get('if-none-match')
      ?.split(',')
      .some((tag) => tag.trim() === etag)
  ) {
    res.status(304).end();
    return;
  }

  const range = parseRange(req.get('range'), size);
  if (range.kind === 'unsatisfiable') {
    res.status(416).setHeader('Content-Range', `bytes */${size}`);
    res.end();
    return;
  }
  if (range.kind === 'partial') {
    const { start, end } = range.range;
    res.status(206);
    res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    res.setHeader('Content-Length', String(end - start + 1));
    await pipeline(bytes.read(range.range), res);
    return;
  }
  res.status(200);
  res.setHeader('Content-Length', String(size));
  // An empty object has nothing to stream (and some stores reject a read of zero bytes).
  if (size === 0 || req.method === 'HEAD') res.end();
  else await pipeline(bytes.read(), res);
}
