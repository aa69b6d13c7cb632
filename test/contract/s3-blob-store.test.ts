import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { CreateMultipartUploadCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../src/adapters/s3/s3-blob-store.js';
import { startFaultyS3Proxy } from '../helpers/faulty-s3-proxy.js';
import { MOTO_CREDENTIALS, MOTO_REGION, startMoto, stopAllMoto, type MotoServer } from '../helpers/moto-server.js';
import { spoolFiles } from '../helpers/spool-files.js';
import { blobStoreContract } from './blob-store.contract.js';

const MiB = 1024 * 1024;
let s3: MotoServer;
let stores = 0;

beforeAll(async () => {
  s3 = await startMoto();
});
afterAll(async () => {
  await stopAllMoto();
});

async function makeStore(prefix: string, memoryBuffer = 0, { client = s3.client, checksums = true } = {}) {
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'ferry-s3-spool-'));
  const store = new S3BlobStore({
    client,
    checksums,
    bucket: s3.bucket,
    prefix,
    partSize: 5 * MiB,
    concurrency: 2,
    tempDir,
    memoryBuffer,
  });
  await store.init();
  return { store, tempDir };
}

// Parts are buffered in memory within the budget and in files beyond it: the contract holds for
// all memory, all disk, and a budget of one part (so an append mixes both).
const BUFFERING = [
  { name: 'parts on disk', memoryBuffer: 0 },
  { name: 'parts in memory', memoryBuffer: 256 * MiB },
  { name: 'one part in memory, the rest on disk', memoryBuffer: 5 * MiB },
];

for (const { name, memoryBuffer } of BUFFERING) {
  blobStoreContract(
    `S3BlobStore (moto_server, ${name})`,
    async () => {
      const prefix = `contract${++stores}/`;
      const { store, tempDir } = await makeStore(prefix, memoryBuffer);
      return {
        store,
        // Nothing may stay behind: no object under the prefix, no open multipart upload, no temp file.
        leftovers: async () => [
          ...(await s3.listKeys(prefix)),
          ...(await s3.listMultipartUploads()).filter((u) => u.key.startsWith(prefix)).map((u) => `multipart:${u.key}`),
          ...(await spoolFiles(tempDir)).map((name) => `temp:${name}`),
        ],
        close: async () => {
          await store.close();
          await rm(tempDir, { recursive: true, force: true });
        },
      };
    },
    { keepsEveryByteOfAFailedBody: true },
  );
}

describe('S3BlobStore specifics', () => {
  it('writes only under its prefix and never touches a multipart upload it did not start', async () => {
    const foreign = await s3.client.send(
      new CreateMultipartUploadCommand({
        Bucket: s3.bucket,
        Key: 'other-app/big.bin',
      }),
    );
    const { store } = await makeStore('owned/');
    await store.create('AAAAAAAAAAAAAAAAAAAAAA');
    await store.append('AAAAAAAAAAAAAAAAAAAAAA', 0, Readable.from([Buffer.alloc(6 * MiB, 1)]));
    await store.remove('AAAAAAAAAAAAAAAAAAAAAA');
    const keys = await s3.listKeys();
    expect(keys.filter((key) => !key.startsWith('owned/') && !key.startsWith('contract'))).toEqual([]);
    const uploads = await s3.listMultipartUploads();
    expect(uploads).toContainEqual({ key: 'other-app/big.bin', uploadId: foreign.UploadId });
  });

  it('keeps every part but the last at exactly the part size, so a re-sent part replaces itself', async () => {
    const { store } = await makeStore('parts/');
    const id = 'BBBBBBBBBBBBBBBBBBBBBB';
    const data = Buffer.alloc(11 * MiB + 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 251;
    await store.create(id);
    let offset = 0;
    // Chunk sizes that never line up with the 5 MiB parts.
    for (const size of [3 * MiB + 1, 4 * MiB - 7, 2 * MiB + 9]) {
      offset = await store.append(id, offset, Readable.from([data.subarray(offset, offset + size)]));
    }
    offset = await store.append(id, offset, Readable.from([data.subarray(offset)]));
    await store.finish(id);
    const chunks: Buffer[] = [];
    for await (const chunk of store.read(id)) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(await s3.listKeys('parts/')).toEqual([`parts/uploads/${id}`, `parts/uploads/${id}.blob.json`]);
  });

  it('finishes a multipart upload begun without checksums without them, after checksums are turned on', async () => {
    // S3 takes part checksums only for a multipart upload started with a checksum algorithm: an upload
    // begun by a version (or a setting) without them goes on without, part after part.
    const proxy = await startFaultyS3Proxy(s3.port, () => undefined);
    const client = new S3Client({
      endpoint: proxy.endpoint,
      region: MOTO_REGION,
      forcePathStyle: true,
      credentials: MOTO_CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    try {
      const id = 'CCCCCCCCCCCCCCCCCCCCCC';
      const data = Buffer.alloc(13 * MiB + 5);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 253;
      const { store: before } = await makeStore('upgrade/', 0, { checksums: false });
      await before.create(id);
      let offset = await before.append(id, 0, Readable.from([data.subarray(0, 6 * MiB)]));
      const { store: after } = await makeStore('upgrade/', 0, { client, checksums: true });
      offset = await after.append(id, offset, Readable.from([data.subarray(offset)]));
      expect(offset).toBe(data.length);
      await after.finish(id);
      const parts = proxy.checksums.filter((check) => /[?&]partNumber=/.test(check.path));
      expect(parts.length).toBeGreaterThanOrEqual(2);
      for (const part of parts) expect(part.sent).toBeUndefined();
      // ...and completed without part checksums, which S3 would refuse for such an upload.
      expect(proxy.completions.map(({ parts: n, partsWithCrc32 }) => [n, partsWithCrc32])).toEqual([[3, 0]]);
      const chunks: Buffer[] = [];
      for await (const chunk of after.read(id)) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
    } finally {
      client.destroy();
      await proxy.close();
    }
  });
});
