import { createHash, type Hash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';

/** Algorithms a client may use to protect a chunk (tus checksum extension; GCS uses crc32c). */
export const CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'crc32c'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export const isChecksumAlgorithm = (name: string): name is ChecksumAlgorithm =>
  (CHECKSUM_ALGORITHMS as readonly string[]).includes(name);

/** What a client says the digest of the bytes it sends will be. */
export interface ExpectedChecksum {
  readonly algorithm: ChecksumAlgorithm;
  readonly digest: Buffer;
  /**
   * How many bytes the digest covers, when the client said (Content-Length). A body that ends
   * before that was interrupted, which is not the client's data being wrong.
   */
  readonly length?: number;
}

export interface Digester {
  update(chunk: Buffer): void;
  /** The digest of everything seen: md5/sha1 raw bytes, crc32c as 4 big-endian bytes (as GCS encodes it). */
  digest(): Buffer;
}

export function createDigester(algorithm: ChecksumAlgorithm): Digester {
  if (algorithm === 'crc32c') {
    let state = 0;
    return {
      update: (chunk) => {
        state = crc32c(chunk, state);
      },
      digest: () => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(state >>> 0);
        return out;
      },
    };
  }
  const hash: Hash = createHash(algorithm);
  return { update: (chunk) => hash.update(chunk), digest: () => hash.digest() };
}

/**
 * A file's checksums as its record keeps them, in one pass: sha256 (hex) and crc32c (base64 of the
 * big-endian value, as GCS writes it). Processing computes them from the stored bytes, or uploads
 * take them as small bodies arrive (arrival-digests.ts).
 */
export class FileChecksummer {
  private readonly sha256: Hash = createHash('sha256');
  private readonly crc32c: Digester = createDigester('crc32c');

  update(chunk: Buffer): void {
    this.sha256.update(chunk);
    this.crc32c.update(chunk);
  }

  digest(): { sha256: string; crc32c: string } {
    return { sha256: this.sha256.digest('hex'), crc32c: this.crc32c.digest().toString('base64') };
  }
}
