import type { Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import type { Uploads } from '../../core/uploads/uploads.js';
import { parseRange } from './byte-range.js';
import { contentDisposition, declaredMediaType, declaredName } from './upload-metadata.js';

/**
 * `GET /files/<id>`: the bytes of a completed upload, streamed (as tusd does), with single byte
 * ranges (206) so large downloads resume. Always served as an attachment with `nosniff`, so an
 * uploaded HTML file can never run as a page of Ferry's origin. The bytes of a completed upload never
 * change, so its id and size make a strong ETag.
 */
export async function sendUploadBytes(
  uploads: Uploads,
  id: string,
  tenant: string,
  req: Request,
  res: Response,
): Promise<void> {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader(
    'Access-Control-Expose-Headers',
    'Content-Length, Content-Range, Content-Disposition, ETag, Accept-Ranges',
  );
  res.setHeader('Tus-Resumable', '1.0.0');
  const upload = await uploads.find(id, tenant);
  if (!upload) {
    res.status(404).type('text/plain').send('The file for this url was not found\n');
    return;
  }
  if (upload.expired) {
    res.status(410).type('text/plain').send('The upload expired before it was complete\n');
    return;
  }
  if (!upload.complete) {
    res.status(409).type('text/plain').send('The upload is not complete yet\n');
    return;
  }
  const size = upload.offset;
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('ETag', `"${id}-${size}"`);
  res.setHeader('Content-Type', declaredMediaType(upload.metadata) ?? 'application/octet-stream');
  res.setHeader('Content-Disposition', contentDisposition(declaredName(upload.metadata)));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'private, no-cache');

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
    await pipeline(uploads.read(id, range.range), res);
    return;
  }
  res.status(200);
  res.setHeader('Content-Length', String(size));
  // An empty object has nothing to stream (and some stores reject a read of zero bytes).
  if (size === 0) res.end();
  else await pipeline(uploads.read(id), res);
}
