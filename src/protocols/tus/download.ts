import type { Response } from 'express';
import { pipeline } from 'node:stream/promises';
import type { Uploads } from '../../core/uploads/uploads.js';
import { contentDisposition, declaredMediaType, declaredName } from './upload-metadata.js';

/**
 * `GET /files/<id>`: the bytes of a completed upload, streamed (as tusd does). Always served as an
 * attachment with `nosniff`, so an uploaded HTML file can never run as a page of Ferry's origin.
 */
export async function sendUploadBytes(uploads: Uploads, id: string, tenant: string, res: Response): Promise<void> {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Tus-Resumable', '1.0.0');
  const upload = await uploads.find(id, tenant);
  if (!upload) {
    res.status(404).type('text/plain').send('The file for this url was not found\n');
    return;
  }
  if (!upload.complete) {
    res.status(409).type('text/plain').send('The upload is not complete yet\n');
    return;
  }
  res.status(200);
  res.setHeader('Content-Length', String(upload.size ?? upload.offset));
  res.setHeader('Content-Type', declaredMediaType(upload.metadata) ?? 'application/octet-stream');
  res.setHeader('Content-Disposition', contentDisposition(declaredName(upload.metadata)));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'private, no-cache');
  await pipeline(uploads.read(id), res);
}
