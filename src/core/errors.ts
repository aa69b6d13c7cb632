/**
 * Errors are values with a stable code and an HTTP status (the idea of tusd's `ERR_UPLOAD_LOCKED`):
 * protocols map them to their wire format, and nothing internal ever reaches a client.
 */
export type FerryErrorCode =
  | 'upload_not_found'
  | 'upload_expired'
  | 'upload_locked'
  | 'upload_incomplete'
  | 'upload_too_large'
  | 'checksum_mismatch'
  | 'chunk_interrupted'
  | 'invalid_concatenation'
  | 'request_aborted'
  | 'invalid_metadata'
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'type_not_allowed'
  | 'too_many_uploads'
  | 'invalid_query'
  | 'file_not_found'
  | 'file_not_ready'
  | 'file_expired'
  | 'not_found'
  | 'internal_error'
  | 'service_unavailable';

const STATUS: Record<FerryErrorCode, number> = {
  upload_not_found: 404,
  upload_expired: 410,
  upload_locked: 423,
  upload_incomplete: 409,
  upload_too_large: 413,
  // 460 is the tus checksum extension's "Checksum Mismatch".
  checksum_mismatch: 460,
  // A checksummed chunk cut short (another request took the upload over): retryable, like a lock.
  chunk_interrupted: 423,
  invalid_concatenation: 400,
  // The client went away or the request was asked to stop; the status is rarely seen by anyone.
  request_aborted: 400,
  // A well-known metadata value that cannot be used (a retention that is not a duration, or too long).
  invalid_metadata: 400,
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  // A declared type the tenant or the upload token does not allow.
  type_not_allowed: 415,
  // More uploads of one tenant in flight than its limit (per process).
  too_many_uploads: 429,
  invalid_query: 400,
  file_not_found: 404,
  file_not_ready: 409,
  file_expired: 410,
  not_found: 404,
  internal_error: 500,
  service_unavailable: 503,
};

export class FerryError extends Error {
  readonly status: number;
  constructor(
    readonly code: FerryErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'FerryError';
    this.status = STATUS[code];
  }
}

export const isFerryError = (error: unknown): error is FerryError => error instanceof FerryError;
