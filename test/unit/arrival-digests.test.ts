import { createHash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ArrivalDigester,
  HEAD_BYTES,
  arrivalDigestsFromJson,
  arrivalDigestsToJson,
} from '../../src/core/uploads/arrival-digests.js';

function crc32cBase64(bytes: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32c(bytes) >>> 0);
  return out.toString('base64');
}

/** `bytes` cut at `cuts` (positions, any order, duplicates allowed). */
function chunksOf(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point > from) chunks.push(bytes.subarray(from, point));
    from = Math.max(from, point);
  }
  return chunks;
}

describe('ArrivalDigester', () => {
  it('gives the sha256, crc32c and first 4100 bytes of the whole body however it is cut into chunks', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 3 * HEAD_BYTES }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (array, cuts) => {
          const bytes = Buffer.from(array);
          const digester = new ArrivalDigester();
          for (const chunk of chunksOf(bytes, cuts)) digester.update(chunk);
          expect(digester.result(bytes.length)).toEqual({
            size: bytes.length,
            sha256: createHash('sha256').update(bytes).digest('hex'),
            crc32c: crc32cBase64(bytes),
            head: bytes.subarray(0, HEAD_BYTES),
          });
        },
      ),
    );
  });

  it('gives nothing for a size other than the bytes that passed (a body cut short)', () => {
    const digester = new ArrivalDigester();
    digester.update(Buffer.alloc(100, 1));
    expect(digester.result(101)).toBeUndefined();
    expect(digester.result(99)).toBeUndefined();
  });

  it('keeps a copy of the head, not the request chunk: a chunk overwritten afterwards leaves it as it arrived', () => {
    const chunk = Buffer.alloc(10, 7);
    const digester = new ArrivalDigester();
    digester.update(chunk);
    chunk.fill(0);
    expect(digester.result(10)?.head).toEqual(Buffer.alloc(10, 7));
  });
});

describe('arrival digests in a job', () => {
  const digests = { size: 5, sha256: 'ab', crc32c: 'AAAAAA==', head: Buffer.from('hello') };

  it('come back from JSON as they went in, for a file of the same size', () => {
    const json = JSON.parse(JSON.stringify(arrivalDigestsToJson(digests))) as unknown;
    expect(arrivalDigestsFromJson(json, 5)).toEqual(digests);
  });

  it('are ignored for a file of another size, or when missing or malformed', () => {
    const json = arrivalDigestsToJson(digests);
    expect(arrivalDigestsFromJson(json, 6)).toBeUndefined();
    expect(arrivalDigestsFromJson(undefined, 5)).toBeUndefined();
    expect(arrivalDigestsFromJson({ ...json, sha256: 1 }, 5)).toBeUndefined();
    expect(arrivalDigestsFromJson({ ...json, head: null }, 5)).toBeUndefined();
  });
});
