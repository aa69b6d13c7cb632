import { randomBytes } from 'node:crypto';

/**
 * 128 random bits, base64url: unguessable, URL- and filename-safe, and free of any tenant data.
 * (Node's crypto is part of the runtime, not an adapter.)
 */
export function newUploadId(): string {
  return randomBytes(16).toString('base64url');
}

/** Ids that Ferry made: exactly what newUploadId produces. Anything else is rejected before storage. */
export function isUploadId(text: string): boolean {
  return /^[A-Za-z0-9_-]{22}$/.test(text);
}
