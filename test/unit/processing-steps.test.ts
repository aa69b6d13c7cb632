import { createHash, createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import type { ByteRange, FileRecord } from '../../src/core/ports.js';
import { computeChecksums, detectType, enforceAllowedTypes } from '../../src/core/processing/steps.js';
import { webhookSignature } from '../../src/core/processing/webhooks.js';

const PNG = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  Buffer.from('0000000d49484452000000010000000108060000001f15c489', 'hex'),
  Buffer.alloc(64),
]);

function file(bytes: Buffer, changes: Partial<FileRecord> = {}) {
  const record = {
    id: 'f',
    size: bytes.length,
    receivedBytes: bytes.length,
    mimeType: 'application/octet-stream',
    detectedType: null,
    ...changes,
  } as FileRecord;
  const read = (range?: ByteRange) =>
    Readable.from([range ? bytes.subarray(range.start, range.end + 1) : bytes], { objectMode: false });
  return { file: record, read };
}

describe('processing steps', () => {
  it('detects the real type and refuses bytes that contradict a specific declared type', async () => {
    expect(await detectType.run(file(PNG, { mimeType: 'image/png' }))).toEqual({
      ok: true,
      findings: { detectedType: 'image/png' },
    });
    expect(await detectType.run(file(PNG, { mimeType: 'application/pdf' }))).toMatchObject({
      ok: false,
      code: 'type_mismatch',
    });
    // Unspecific declarations and aliases never mismatch; undetectable content has no detected type.
    expect(await detectType.run(file(PNG))).toMatchObject({ ok: true });
    expect(await detectType.run(file(Buffer.from('hello, world'), { mimeType: 'text/plain' }))).toEqual({
      ok: true,
      findings: { detectedType: null },
    });
    expect(await detectType.run(file(Buffer.alloc(0), { mimeType: 'image/png' }))).toMatchObject({ ok: true });
  });

  it('enforces the allow-list on the detected type, falling back to the declared one', async () => {
    const images = enforceAllowedTypes(['image/*', 'application/pdf']);
    const png = file(PNG, { detectedType: 'image/png', mimeType: 'application/octet-stream' });
    expect(await images.run(png)).toEqual({ ok: true });
    expect(await images.run(file(PNG, { mimeType: 'application/pdf' }))).toEqual({ ok: true });
    expect(await images.run(file(PNG, { detectedType: 'application/zip' }))).toMatchObject({
      ok: false,
      code: 'type_not_allowed',
    });
    expect(await enforceAllowedTypes(['*']).run(file(PNG, { detectedType: 'application/x-msdownload' }))).toEqual({
      ok: true,
    });
  });

  it('computes sha256 (hex) and crc32c (base64, big-endian) of the whole file', async () => {
    const bytes = Buffer.from('The quick brown fox jumps over the lazy dog');
    const expectedCrc = Buffer.alloc(4);
    expectedCrc.writeUInt32BE(crc32c(bytes) >>> 0);
    expect(await computeChecksums.run(file(bytes))).toEqual({
      ok: true,
      findings: {
        checksums: {
          sha256: createHash('sha256').update(bytes).digest('hex'),
          crc32c: expectedCrc.toString('base64'),
        },
      },
    });
    // The well-known crc32c of an empty input is 0.
    expect(await computeChecksums.run(file(Buffer.alloc(0)))).toMatchObject({
      findings: { checksums: { crc32c: 'AAAAAA==' } },
    });
  });
});

describe('webhook signature', () => {
  it('is t=<seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>"> and changes with the body', () => {
    const body = '{"event":"completed"}';
    const expected = createHmac('sha256', 'secret-secret-16').update(`1700000000.${body}`).digest('hex');
    expect(webhookSignature('secret-secret-16', 1700000000, body)).toBe(`t=1700000000,v1=${expected}`);
    expect(webhookSignature('secret-secret-16', 1700000000, `${body} `)).not.toBe(`t=1700000000,v1=${expected}`);
  });

  it('takes the type and checksums from digests taken on arrival, reading nothing', async () => {
    const unreadable = () => {
      throw new Error('read');
    };
    const arrived = { size: PNG.length, sha256: 'ab', crc32c: 'AAAAAA==', head: PNG };
    const context = { ...file(PNG, { mimeType: 'application/pdf' }), arrived, read: unreadable };
    expect(await detectType.run(context)).toMatchObject({ ok: false, code: 'type_mismatch' });
    expect(await computeChecksums.run(context)).toEqual({
      ok: true,
      findings: { checksums: { sha256: 'ab', crc32c: 'AAAAAA==' } },
    });
  });
});
