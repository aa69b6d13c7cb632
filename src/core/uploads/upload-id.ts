import { randomBytes } from 'node:crypto';

/** Ids whose random bytes are drawn from the system's generator in one call. */
const IDS_PER_DRAW = 256;
const ID_BYTES = 16;

let drawn = Buffer.alloc(0);
let used = 0;

/**
 * 128 random bits, base64url: unguessable, URL- and filename-safe, and free of any tenant data.
 * (Node's crypto is part of the runtime, not an adapter.) The bits come from a batch drawn for many
 * ids at once, each byte used once, as Node's randomUUID does: one `randomBytes` call per id cost
 * about 13 µs of the event loop in a profile of small uploads, more than the id is worth.
 */
export function newUploadId(): string {
  if (used === drawn.length) {
    drawn = randomBytes(ID_BYTES * IDS_PER_DRAW);
    used = 0;
  }
  used += ID_BYTES;
  return drawn.toString('base64url', used - ID_BYTES, used);
}

/** Ids that Ferry made: exactly what newUploadId produces. Anything else is rejected before storage. */
export function isUploadId(text: string): boolean {
  return /^[A-Za-z0-9_-]{22}$/.test(text);
}
