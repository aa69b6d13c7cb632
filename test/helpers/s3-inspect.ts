/**
 * Looking into the bucket of a test's moto_server from the outside, to check what Ferry left there.
 *
 *   const ferryEnv = s3Env(moto, 'e2e-edge');            // moto.env + FERRY_S3_PREFIX (+ options)
 *   expect(await leftovers(moto, 'e2e-edge/')).toEqual([]);   // objects + open multipart uploads
 *   const before = await snapshot(moto, 'e2e-edge/');     // keys with ETags, open uploads with parts
 *   expect(await snapshot(moto, 'e2e-edge/')).toEqual(before);
 */
import { get } from 'node:http';
import { ListObjectsV2Command, ListPartsCommand } from '@aws-sdk/client-s3';
import { sha256OfResponse } from './files.js';
import type { MotoServer } from './moto-server.js';

/** `moto.env` with Ferry's key prefix (Ferry appends the `/`) and any extra settings. */
export function s3Env(moto: MotoServer, prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...moto.env, FERRY_S3_PREFIX: prefix, ...extra };
}

/** The three keys a complete upload keeps under `prefix` (ending in `/`): the object and its two records. */
/** The file registry's durable record of an upload, beside its objects. */
export function fileRecordKey(prefix: string, id: string): string {
  return `${prefix}files/${id}.json`;
}

/** Everything under the prefix for one completed upload: its file record, object and records. */
export function allKeysOfCompleted(prefix: string, id: string): string[] {
  return [fileRecordKey(prefix, id), ...completeKeys(prefix, id)];
}

export function completeKeys(prefix: string, id: string): string[] {
  return [`${prefix}uploads/${id}`, `${prefix}uploads/${id}.blob.json`, `${prefix}uploads/${id}.json`];
}

/** Every object key under `prefix` and every open multipart upload whose key starts with it (`multipart:<key>`). */
export async function leftovers(moto: MotoServer, prefix: string): Promise<string[]> {
  return [
    ...(await moto.listKeys(prefix)),
    ...(await openMultipartKeys(moto, prefix)).map((key) => `multipart:${key}`),
  ];
}

/** Keys of the open multipart uploads whose key starts with `prefix` (one entry per upload). */
export async function openMultipartKeys(moto: MotoServer, prefix: string): Promise<string[]> {
  return (await moto.listMultipartUploads()).filter((u) => u.key.startsWith(prefix)).map((u) => u.key);
}

/** Part numbers (with ETag and size) uploaded so far to one multipart upload. */
export async function partsOf(
  moto: MotoServer,
  key: string,
  uploadId: string,
): Promise<{ number: number; etag: string; size: number }[]> {
  const page = await moto.client.send(new ListPartsCommand({ Bucket: moto.bucket, Key: key, UploadId: uploadId }));
  return (page.Parts ?? []).map((p) => ({ number: p.PartNumber ?? 0, etag: p.ETag ?? '', size: p.Size ?? 0 }));
}

export interface BucketSnapshot {
  /** key → `<ETag> <size>` */
  objects: Record<string, string>;
  /** `<key> <uploadId>` → its parts as `<n>:<ETag>:<size>` */
  multipart: Record<string, string[]>;
}

/** Objects (with ETag and size) and open multipart uploads (with their parts) under `prefix` ('' = the whole bucket). */
export async function snapshot(moto: MotoServer, prefix = ''): Promise<BucketSnapshot> {
  const objects: Record<string, string> = {};
  let token: string | undefined;
  do {
    const page = await moto.client.send(
      new ListObjectsV2Command({ Bucket: moto.bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) if (o.Key !== undefined) objects[o.Key] = `${o.ETag} ${o.Size}`;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const multipart: Record<string, string[]> = {};
  for (const u of await moto.listMultipartUploads()) {
    if (!u.key.startsWith(prefix)) continue;
    multipart[`${u.key} ${u.uploadId}`] = (await partsOf(moto, u.key, u.uploadId)).map(
      (p) => `${p.number}:${p.etag}:${p.size}`,
    );
  }
  return { objects, multipart };
}

/** GET `url` with optional headers; status, headers and the SHA-256 and length of the body. */
export function getHashed(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders; sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers, agent: false }, (res) => {
      sha256OfResponse(url, res).then(
        (body) => resolve({ status: res.statusCode ?? 0, headers: res.headers, ...body }),
        reject,
      );
    });
    req.on('error', reject);
  });
}
