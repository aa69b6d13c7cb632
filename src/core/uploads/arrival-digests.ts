import { FileChecksummer } from './checksums.js';

/**
 * The leading bytes type sniffing looks at: file-type needs at most this many to recognise any
 * format it knows.
 */
export const HEAD_BYTES = 4100;

/**
 * Uploads up to this size that arrive whole in one body are digested as the bytes arrive, so that
 * processing need not read them back. Hashing on the request's way costs the event loop what
 * processing would have spent anyway; for a small file, reading it back (an open, a read and a
 * close in the thread pool, and a read stream) costs more than the hashing. Bigger files are left
 * to processing, after the response, as before.
 */
export const DIGEST_ON_ARRIVAL_MAX_BYTES = 1024 * 1024;

/**
 * What processing needs of a file's bytes, taken from the very buffers that were written while they
 * arrived: its sha256 and crc32c (as `FileRecord.checksums` spells them) and its first bytes. Valid
 * only for a file of exactly `size` bytes, written from its first byte in one body.
 */
export interface ArrivalDigests {
  readonly size: number;
  /** Hex. */
  readonly sha256: string;
  /** Base64 of the big-endian value, as GCS writes it. */
  readonly crc32c: string;
  /** The first `HEAD_BYTES` bytes (all of them for a smaller file). */
  readonly head: Buffer;
}

/** Feeds on a body's chunks as they pass; `result` once the body has ended. */
export class ArrivalDigester {
  private readonly checksums = new FileChecksummer();
  private readonly headChunks: Buffer[] = [];
  private headLength = 0;
  private seen = 0;

  update(chunk: Buffer): void {
    this.checksums.update(chunk);
    this.seen += chunk.length;
    if (this.headLength < HEAD_BYTES) {
      // A copy: the head outlives the request, the chunk's memory is the request's.
      const part = Buffer.from(chunk.subarray(0, HEAD_BYTES - this.headLength));
      this.headChunks.push(part);
      this.headLength += part.length;
    }
  }

  /** The digests if exactly `size` bytes passed (a body cut short or overlong gets none). */
  result(size: number): ArrivalDigests | undefined {
    if (this.seen !== size) return undefined;
    return {
      size,
      ...this.checksums.digest(),
      head: this.headChunks.length === 1 ? this.headChunks[0]! : Buffer.concat(this.headChunks),
    };
  }
}

/** For a job's data, which a distributed queue stores as JSON. */
export function arrivalDigestsToJson(digests: ArrivalDigests): Record<string, unknown> {
  return { size: digests.size, sha256: digests.sha256, crc32c: digests.crc32c, head: digests.head.toString('base64') };
}

/** Back from a job's data; anything malformed, or digests of another size than `size`, is none. */
export function arrivalDigestsFromJson(value: unknown, size: number): ArrivalDigests | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { size: digestedSize, sha256, crc32c, head } = value as Record<string, unknown>;
  if (digestedSize !== size || typeof sha256 !== 'string' || typeof crc32c !== 'string' || typeof head !== 'string') {
    return undefined;
  }
  return { size, sha256, crc32c, head: Buffer.from(head, 'base64') };
}
