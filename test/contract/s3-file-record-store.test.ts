import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3FileRecordStore } from '../../src/adapters/s3/s3-file-record-store.js';
import { startMoto, stopAllMoto, type MotoServer } from '../helpers/moto-server.js';
import { fileRecord } from './file-registry.contract.js';

let s3: MotoServer;

beforeAll(async () => {
  s3 = await startMoto();
});
afterAll(async () => {
  await stopAllMoto();
});

async function listAll(store: S3FileRecordStore): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of store.list()) ids.push(id);
  return ids;
}

describe('S3FileRecordStore (moto_server)', () => {
  it('keeps a record as <prefix>files/<id>.json and returns it as it was put', async () => {
    const store = new S3FileRecordStore(s3.client, s3.bucket, 'roundtrip/');
    const record = fileRecord({ tags: ['a', 'b'], metadata: { note: 'ü', gone: null }, size: null });
    await store.put(record);
    expect(await s3.listKeys('roundtrip/')).toEqual([`roundtrip/files/${record.id}.json`]);
    expect(await store.get(record.id)).toEqual(record);
    const replaced = { ...record, status: 'completed' as const, receivedBytes: 1234 };
    await store.put(replaced);
    expect(await store.get(record.id)).toEqual(replaced);
  });

  it('answers undefined for a missing record, and deleting one twice is no error', async () => {
    const store = new S3FileRecordStore(s3.client, s3.bucket, 'missing/');
    expect(await store.get('nosuchfile')).toBeUndefined();
    const record = fileRecord();
    await store.put(record);
    await store.delete(record.id);
    expect(await store.get(record.id)).toBeUndefined();
    await expect(store.delete(record.id)).resolves.toBeUndefined();
    expect(await s3.listKeys('missing/')).toEqual([]);
  });

  it('lists the ids of its records only, across more than one page of ListObjectsV2 (1000 keys)', async () => {
    const store = new S3FileRecordStore(s3.client, s3.bucket, 'many/');
    const records = Array.from({ length: 1005 }, () => fileRecord());
    for (let i = 0; i < records.length; i += 50) {
      await Promise.all(records.slice(i, i + 50).map((record) => store.put(record)));
    }
    // Not records: deeper keys, other names under files/, other prefixes.
    for (const key of ['many/files/sub/x.json', 'many/files/readme.txt', 'many/uploads/y.json', 'other/files/z.json']) {
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: '{}' }));
    }
    const listed = await listAll(store);
    expect(listed).toHaveLength(1005);
    expect(listed.sort()).toEqual(records.map((record) => record.id).sort());
  }, 120_000);

  it('refuses an id that list() would not find again', async () => {
    const store = new S3FileRecordStore(s3.client, s3.bucket, 'refuse/');
    await expect(store.put(fileRecord({ id: 'a/b' }))).rejects.toThrow(RangeError);
    expect(await store.get('a/b')).toBeUndefined();
    expect(await s3.listKeys('refuse/')).toEqual([]);
  });
});
