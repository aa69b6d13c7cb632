import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMoto, stopAllMoto, type MotoServer } from '../../helpers/moto-server.js';

const MiB = 1024 * 1024;
let s3: MotoServer;

beforeAll(async () => {
  s3 = await startMoto();
});
afterAll(async () => {
  await stopAllMoto();
});

/** Uploads `parts` as one multipart upload; returns what ListParts says and how completing went. */
async function multipart(key: string, parts: Buffer[]) {
  const { client, bucket } = s3;
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const etags: { PartNumber: number; ETag: string | undefined }[] = [];
  for (const [index, body] of parts.entries()) {
    const sent = await client.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: index + 1, Body: body }),
    );
    etags.push({ PartNumber: index + 1, ETag: sent.ETag });
  }
  const listed = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }));
  const open = await s3.listMultipartUploads();
  const completion = await client
    .send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: etags } }))
    .then(
      () => ({ ok: true as const }),
      (error: { name: string; $metadata?: { httpStatusCode?: number } }) => ({
        ok: false as const,
        name: error.name,
        status: error.$metadata?.httpStatusCode,
      }),
    );
  if (!completion.ok) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }));
  return {
    uploadId: UploadId,
    open,
    partSizes: (listed.Parts ?? []).map((part) => [part.PartNumber, part.Size]),
    completion,
  };
}

async function getBytes(key: string, range?: string): Promise<Buffer> {
  const got = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key, Range: range }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

describe('moto-server helper', () => {
  it('serves S3 on loopback with a bucket, and gives a Ferry process its S3 environment', () => {
    expect(s3.endpoint).toBe(`http://127.0.0.1:${s3.port}`);
    expect(s3.env).toEqual({
      FERRY_STORAGE: 's3',
      FERRY_S3_BUCKET: s3.bucket,
      FERRY_S3_ENDPOINT: s3.endpoint,
      FERRY_S3_REGION: 'us-east-1',
      FERRY_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });
  });

  it('puts, gets (whole and ranged) and lists objects', async () => {
    const body = randomBytes(1000);
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'smoke/one', Body: body }));
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'smoke/two', Body: 'x' }));
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'other', Body: 'y' }));
    expect((await getBytes('smoke/one')).equals(body)).toBe(true);
    expect((await getBytes('smoke/one', 'bytes=10-19')).equals(body.subarray(10, 20))).toBe(true);
    expect(await s3.listKeys('smoke/')).toEqual(['smoke/one', 'smoke/two']);
    expect(await s3.listKeys()).toEqual(['other', 'smoke/one', 'smoke/two']);
  });

  it('completes a multipart upload of 5 MiB + 1 byte, lists exact part sizes and the open upload', async () => {
    const first = randomBytes(5 * MiB);
    const last = randomBytes(1);
    const result = await multipart('mp/ok', [first, last]);
    expect(result.partSizes).toEqual([
      [1, 5 * MiB],
      [2, 1],
    ]);
    expect(result.open).toEqual([{ key: 'mp/ok', uploadId: result.uploadId }]);
    expect(result.completion).toEqual({ ok: true });
    expect((await getBytes('mp/ok')).equals(Buffer.concat([first, last]))).toBe(true);
    expect(await s3.listMultipartUploads()).toEqual([]);
  });

  it('like S3, accepts a small non-last part but refuses to complete with it (EntityTooSmall, 400)', async () => {
    const result = await multipart('mp/small', [randomBytes(MiB), randomBytes(1)]);
    // The part itself is stored and listed; the minimum is enforced by CompleteMultipartUpload.
    expect(result.partSizes).toEqual([
      [1, MiB],
      [2, 1],
    ]);
    expect(result.completion).toEqual({ ok: false, name: 'EntityTooSmall', status: 400 });
    expect(await s3.listKeys('mp/small')).toEqual([]);
  });

  it('completes a multipart upload of one small part, and of one empty part', async () => {
    expect((await multipart('mp/tiny', [Buffer.from('abc')])).completion).toEqual({ ok: true });
    expect((await multipart('mp/empty', [Buffer.alloc(0)])).completion).toEqual({ ok: true });
    expect((await getBytes('mp/tiny')).toString()).toBe('abc');
    expect((await getBytes('mp/empty')).length).toBe(0);
  });

  it('creates more buckets, and stops', async () => {
    await s3.createBucket('second-bucket');
    await s3.client.send(new PutObjectCommand({ Bucket: 'second-bucket', Key: 'k', Body: 'v' }));
    expect(await s3.listKeys(undefined, 'second-bucket')).toEqual(['k']);

    const own = await startMoto({ bucket: 'own' });
    expect(own.port).not.toBe(s3.port);
    expect(own.bucket).toBe('own');
    await own.stop();
    await own.stop();
    await expect(fetch(`${own.endpoint}/`)).rejects.toThrow();
  });
});
