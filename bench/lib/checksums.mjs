// Digests for the tus checksum extension (Upload-Checksum: <algorithm> <base64 digest>),
// computed by the bench before any timing so the client spends nothing on them during a run.
import { createReadStream } from 'node:fs';
import { createDigester } from '../../dist/core/uploads/checksums.js';

/** What Ferry accepts in Upload-Checksum (Tus-Checksum-Algorithm). */
export const CHECKSUM_ALGORITHMS = ['crc32c', 'sha1', 'md5'];

// The same digests Ferry computes (the bench runs after `npm run build`).
const digester = createDigester;

/**
 * Upload-Checksum header values for `file`, one per algorithm, in one streaming pass
 * (the large file is never held in memory): { crc32c: 'crc32c <b64>', sha1: 'sha1 <b64>' }.
 */
export async function fileChecksums(file, algorithms) {
  const ds = algorithms.map((a) => [a, digester(a)]);
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) {
    for (const [, d] of ds) d.update(chunk);
  }
  return Object.fromEntries(ds.map(([a, d]) => [a, `${a} ${d.digest().toString('base64')}`]));
}

/** Upload-Checksum header value for an in-memory buffer. */
export function bufferChecksum(buf, algorithm) {
  const d = digester(algorithm);
  d.update(buf);
  return `${algorithm} ${d.digest().toString('base64')}`;
}
