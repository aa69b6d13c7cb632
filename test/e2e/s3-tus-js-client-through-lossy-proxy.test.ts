/**
 * Ferry on S3 (a real moto_server, FERRY_S3_PART_SIZE=5MiB): tus-js-client uploads through a proxy
 * that keeps cutting TCP connections mid-upload, with every client option that changes how bytes
 * arrive (one request, chunks smaller than S3's minimum part, concatenation, deferred length,
 * creation-with-upload). The client resumes after every cut, the bytes Ferry serves back (fetched
 * directly, not through the proxy) hash to the source's sha256, and once an upload is complete its
 * prefix holds no tail object and no open multipart upload.
 */
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { Upload } from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256AndSizeOfUrl } from '../helpers/files.js';
import { spareCreationPost, type LossyProxyOptions } from '../helpers/lossy-proxy.js';
import { cutsReport, tusUploadWithRetries, useLossyRig, withoutFunctions } from '../helpers/lossy-rig.js';
import { startMoto, stopAllMoto, type MotoServer } from '../helpers/moto-server.js';
import { completeKeys, openMultipartKeys, s3Env } from '../helpers/s3-inspect.js';
import { tusHead, uploadId } from '../helpers/tus.js';

type UploadInput = ConstructorParameters<typeof Upload>[0];
type UploadOptions = ConstructorParameters<typeof Upload>[1];

const MiB = 1024 * 1024;
// About 24 MiB, not a multiple of the part size, of any chunk size, or of 4.
const SIZE = 24 * MiB + 12_345;
const PREFIX = `e2e-lossy-${process.pid}`;

let moto: MotoServer;
// Registered before the rig's hooks: moto starts before the rig's Ferry and stops after it.
beforeAll(async () => {
  moto = await startMoto();
}, 60_000);
afterAll(stopAllMoto);
const rig = useLossyRig(SIZE, {
  ferry: () => ({ env: s3Env(moto, PREFIX, { FERRY_S3_PART_SIZE: '5MiB' }) }),
  readBytes: true,
  timeoutMs: 60_000,
});

interface Sent {
  method: string;
  concat: string | undefined;
  deferLength: string | undefined;
  uploadLength: string | undefined;
}

/**
 * Uploads `input` with tus-js-client through a fresh cutting proxy, then checks the cuts, the bytes
 * Ferry serves and what is left in the bucket. Resolves with the upload id and what was sent.
 */
async function uploadThroughCuttingProxy(
  input: UploadInput,
  options: UploadOptions,
  cutAfterBytes?: LossyProxyOptions['cutAfterBytes'],
): Promise<{ id: string; sent: Sent[]; created: { status: number; offset: string | undefined }[] }> {
  const { ferry, file } = rig;
  const p = await rig.startProxy({
    maxCuts: 20,
    ...(cutAfterBytes ? { cutAfterBytes } : {}),
  });
  const sent: Sent[] = [];
  const created: { status: number; offset: string | undefined }[] = [];
  const { url, retries } = await tusUploadWithRetries(
    input,
    {
      endpoint: `${p.url}/files/`,
      metadata: { filename: 's3-lossy.bin', filetype: 'application/octet-stream' },
      ...options,
      onBeforeRequest: (req) => {
        sent.push({
          method: req.getMethod(),
          concat: req.getHeader('Upload-Concat'),
          deferLength: req.getHeader('Upload-Defer-Length'),
          uploadLength: req.getHeader('Upload-Length'),
        });
      },
      onAfterResponse: (req, res) => {
        if (req.getMethod() === 'POST')
          created.push({ status: res.getStatus(), offset: res.getHeader('Upload-Offset') });
      },
    },
    ferry,
    p,
  );
  const seed = `proxy seed ${p.seed}`;
  console.log(`[s3-lossy] ${JSON.stringify(withoutFunctions(options))}: ${cutsReport(p, SIZE, retries)}`);
  expect(p.cuts(), seed).toBeGreaterThanOrEqual(1);
  expect(url.startsWith(`${p.url}/files/`), seed).toBe(true);

  const id = uploadId(url);
  // Directly from Ferry, not through the proxy.
  expect(await sha256AndSizeOfUrl(`${ferry.url}/files/${id}`), seed).toEqual({ sha256: file.sha256, bytes: SIZE });
  const head = await tusHead(`${ferry.url}/files/${id}`);
  expect({ offset: head.offset, length: head.length }, seed).toEqual({ offset: SIZE, length: SIZE });

  // Complete means assembled: the object and its two records; no tail left, no multipart upload open.
  const keys = await moto.listKeys(`${PREFIX}/uploads/${id}`);
  expect(keys, seed).toEqual(completeKeys(`${PREFIX}/`, id));
  expect(
    (await moto.listKeys(`${PREFIX}/`)).filter((k) => k.includes('.tail.')),
    seed,
  ).toEqual([]);
  expect(await openMultipartKeys(moto, `${PREFIX}/`), seed).toEqual([]);
  return { id, sent, created };
}

describe('tus-js-client → connection-cutting proxy (256 KiB–4 MiB) → Ferry on S3 (5 MiB parts)', () => {
  it('a 24 MiB upload in one request (no chunkSize) resumes after every cut, the stored object matches the source sha256, and no tail object or open multipart upload is left', async () => {
    await uploadThroughCuttingProxy(createReadStream(rig.file.path), {});
  }, 60_000);

  it('a 24 MiB upload in 3 MiB chunks (smaller than S3’s 5 MiB minimum part, so parts are filled across PATCHes) resumes after every cut and the stored object matches the source sha256', async () => {
    const { sent } = await uploadThroughCuttingProxy(createReadStream(rig.file.path), { chunkSize: 3 * MiB });
    expect(sent.filter((r) => r.method === 'PATCH').length).toBeGreaterThanOrEqual(Math.ceil(SIZE / (3 * MiB)));
  }, 60_000);

  it('parallelUploads: 4 (four partial uploads of ~6 MiB joined by concatenation in S3) resumes after every cut and the final upload matches the source sha256', async () => {
    const { id, sent } = await uploadThroughCuttingProxy(rig.bytes, { parallelUploads: 4 });
    const finals = sent.filter((r) => r.concat?.startsWith('final;'));
    expect(finals.length).toBeGreaterThanOrEqual(1);
    const head = await tusHead(`${rig.ferry.url}/files/${id}`);
    const partIds = String(head.response.headers['upload-concat'])
      .replace(/^final;/, '')
      .split(' ')
      .map((path) => path.split('/').pop()!);
    expect(partIds).toHaveLength(4);
    for (const partId of partIds) {
      const part = await tusHead(`${rig.ferry.url}/files/${partId}`);
      expect(part.status).toBe(200);
      expect(part.offset).toBe(part.length);
      expect(await moto.listKeys(`${PREFIX}/uploads/${partId}`)).toHaveLength(3);
    }
  }, 60_000);

  it('uploadLengthDeferred from a plain stream in 4 MiB chunks creates with Upload-Defer-Length: 1, declares the length on a later PATCH, resumes after every cut, and the stored object matches the source sha256', async () => {
    // tus-js-client needs a non-file Readable for uploadLengthDeferred: with an fs.ReadStream it
    // sends a full chunkSize Content-Length for the short last chunk and hangs.
    const { sent } = await uploadThroughCuttingProxy(createReadStream(rig.file.path).pipe(new PassThrough()), {
      uploadLengthDeferred: true,
      chunkSize: 4 * MiB,
    });
    const creation = sent.find((r) => r.method === 'POST');
    expect(creation?.deferLength).toBe('1');
    expect(creation?.uploadLength).toBeUndefined();
    expect(sent.some((r) => r.method === 'PATCH' && r.uploadLength === String(SIZE))).toBe(true);
  }, 60_000);

  it('uploadDataDuringCreation stores the first 4 MiB chunk with the creation POST (201, Upload-Offset 4 MiB), resumes after every later cut, and the stored object matches the source sha256', async () => {
    const { created } = await uploadThroughCuttingProxy(
      createReadStream(rig.file.path),
      { uploadDataDuringCreation: true, chunkSize: 4 * MiB },
      spareCreationPost(4 * MiB),
    );
    expect(created).toEqual([{ status: 201, offset: String(4 * MiB) }]);
  }, 60_000);
});
