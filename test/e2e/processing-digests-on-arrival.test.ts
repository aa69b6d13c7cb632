/**
 * A small upload sent whole in one body is digested as its bytes arrive (sha256, crc32c and the head
 * type sniffing reads), so processing does not read it back; anything else (several PATCHes, bigger
 * than 1 MiB) is read back as before. Either way the file record's checksums and type are the bytes'.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checksumsOf, minimalPng, uploadBuffer, waitForFileStatus } from '../helpers/files-api.js';
import { startInProcessFerry, type InProcessFerry } from '../helpers/in-process-ferry.js';

let ferry: InProcessFerry;
let readsOf: (id: string) => number;

beforeAll(async () => {
  ferry = await startInProcessFerry();
  const read = vi.spyOn(ferry.ferry.uploads, 'read');
  readsOf = (id) => read.mock.calls.filter(([readId]) => readId === id).length;
});
afterAll(async () => {
  vi.restoreAllMocks();
  await ferry?.close();
});

/** A PNG followed by random bytes up to `size`: file-type calls it image/png. */
function pngOfSize(size: number): Buffer {
  const png = minimalPng();
  return Buffer.concat([png, randomBytes(size - png.length)]);
}

describe('digests taken on arrival', () => {
  it('a 200 KiB PNG sent in one PATCH completes with the checksums and type of its bytes without being read back', async () => {
    const bytes = pngOfSize(200 * 1024);
    const { id } = await uploadBuffer(ferry.url, bytes, { filetype: 'image/png' });
    const file = await waitForFileStatus(ferry.url, id, ['completed', 'failed']);
    expect([file.status, file.detected_type, file.checksums]).toEqual(['completed', 'image/png', checksumsOf(bytes)]);
    expect(readsOf(id)).toBe(0);
  });

  it('a PNG declared as application/pdf in one request (creation-with-upload) fails type_mismatch from the head taken on arrival', async () => {
    const bytes = pngOfSize(10 * 1024);
    const { id } = await uploadBuffer(
      ferry.url,
      bytes,
      { filetype: 'application/pdf' },
      { uploadDataDuringCreation: true },
    );
    const file = await waitForFileStatus(ferry.url, id, ['completed', 'failed']);
    expect([file.status, file.error?.code]).toEqual(['failed', 'type_mismatch']);
    expect(readsOf(id)).toBe(0);
  });

  it('the same PNG sent in 64 KiB PATCHes is read back, and completes with the same checksums and type', async () => {
    const bytes = pngOfSize(200 * 1024);
    const { id } = await uploadBuffer(ferry.url, bytes, { filetype: 'image/png' }, { chunkSize: 64 * 1024 });
    const file = await waitForFileStatus(ferry.url, id, ['completed', 'failed']);
    expect([file.status, file.detected_type, file.checksums]).toEqual(['completed', 'image/png', checksumsOf(bytes)]);
    expect(readsOf(id)).toBeGreaterThan(0);
  });

  it('a file of 1 MiB + 1 byte in one PATCH is left to processing to read, with checksums of its bytes', async () => {
    const bytes = randomBytes(1024 * 1024 + 1);
    const { id } = await uploadBuffer(ferry.url, bytes, {});
    const file = await waitForFileStatus(ferry.url, id, ['completed', 'failed']);
    expect([file.status, file.checksums]).toEqual(['completed', checksumsOf(bytes)]);
    expect(readsOf(id)).toBeGreaterThan(0);
  });
});
