import type { Request, Response } from 'express';
import type { Uploads } from '../../core/uploads/uploads.js';
import { declaredMediaType, declaredName } from '../../core/files/well-known-metadata.js';
import { sendBytes } from '../../http/send-bytes.js';

/**
 * `GET /files/<id>`: the bytes of a completed upload, streamed (as tusd does); see `sendBytes`.
 */
export async function sendUploadBytes(
  uploads: Uploads,
  id: string,
  tenant: string,
  req: Request,
  res: Response,
): Promise<void> {
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
  await sendBytes(req, res, {
    id,
    size: upload.offset,
    mediaType: declaredMediaType(upload.metadata) ?? 'application/octet-stream',
    name: declaredName(upload.metadata),
    read: (range) => uploads.read(id, range),
  });
}
