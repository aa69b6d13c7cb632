import { EXPOSED_HEADERS } from '@tus/utils';
import type { Response } from 'express';
import type { FerryError } from '../../core/errors.js';
import type { Upload } from '../../core/uploads/uploads.js';

/** What every response Ferry writes itself on the tus endpoint shares with @tus/server's. */

export const TUS_PATH = '/files';
export const TUS_VERSION = '1.0.0';
/** Headers Ferry adds to tus responses that browser clients must be able to read. */
export const EXTRA_EXPOSED_HEADERS = ['Upload-Expires', 'Upload-Checksum', 'Tus-Checksum-Algorithm', 'Retry-After'];
const EXPOSED = [EXPOSED_HEADERS, ...EXTRA_EXPOSED_HEADERS].join(', ');

/** A refusal with the status tus prescribes; answered as plain text. */
export class TusRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Headers that describe an upload's state beyond offset and length. */
export function stateHeaders(upload: Upload): Record<string, string> {
  const headers: Record<string, string> = {};
  if (upload.expiresAt) headers['Upload-Expires'] = upload.expiresAt.toUTCString();
  if (upload.concatenation?.role === 'partial') headers['Upload-Concat'] = 'partial';
  if (upload.concatenation?.role === 'final') {
    headers['Upload-Concat'] = `final;${upload.concatenation.partIds.map((id) => `${TUS_PATH}/${id}`).join(' ')}`;
  }
  return headers;
}

/** A response written by Ferry itself on the tus endpoint, with the headers tus clients rely on. */
export function sendTus(res: Response, status: number, body: string, headers: Record<string, string> = {}): void {
  res.status(status);
  res.set({
    'Tus-Resumable': TUS_VERSION,
    // The allowed origin itself comes from the CORS middleware (the deployment's origins).
    'Access-Control-Expose-Headers': EXPOSED,
    'Cache-Control': 'no-store',
    ...retryAfter(status),
    ...headers,
  });
  // Node's own end(), not Express's send(): a POST overridden to HEAD (X-HTTP-Method-Override) is
  // still a POST on the wire, and send() would declare the body's length without sending it.
  if (body) {
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(body);
  } else res.end();
}

/**
 * The status a core error gets on the tus endpoint. One deviation: on an upload URL (HEAD, PATCH,
 * DELETE), shared state being unavailable is answered 423 instead of 503. tus-js-client 4 treats any
 * HEAD answer but 2xx and 423 as "this upload is gone" and starts the whole file over as a new upload
 * (tus-js-client issues #579 and #895); 423 makes it retry the same URL, so a Redis outage costs
 * time, not bytes. Creation keeps 503.
 */
export function tusStatusOf(error: FerryError, onUploadUrl: boolean): number {
  return error.code === 'service_unavailable' && onUploadUrl ? 423 : error.status;
}

/** Statuses that mean "try again shortly" (a lock, a busy tenant, shared state away) tell clients when. */
export function retryAfter(status: number): Record<string, string> {
  return status === 423 || status === 429 || status === 503 ? { 'Retry-After': '1' } : {};
}
