/**
 * Helpers for end-to-end tests of the file API (`/v1/files`): raw requests on fresh connections
 * (binary-safe bodies), typed JSON, waiting for a status, listing every page, the checksums Ferry
 * should report, and a tus-js-client upload of a Buffer with metadata.
 *
 *   const { id } = await uploadBuffer(url, bytes, { filename: 'a.bin', batch: 'b1' });
 *   const file = await waitForFileStatus(url, id, 'completed');
 *   expect(file.checksums).toEqual(checksumsOf(bytes));
 */
import { expect } from 'vitest';
import { createHash } from 'node:crypto';
import { request, type IncomingHttpHeaders } from 'node:http';
import { deflateSync } from 'node:zlib';
import { crc32, crc32c } from '@node-rs/crc32';
import type { FileJson } from '../../src/core/files/file-json.js';
import { until } from './poll.js';
import { tusUpload, uploadId } from './tus.js';

type UploadOptions = Parameters<typeof tusUpload>[1];

export type { FileJson };

export interface ApiError {
  readonly error: { readonly code: string; readonly message: string; readonly status: number };
}

export interface BytesResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One request on a fresh connection (no pooling: nothing stale survives a server restart). */
export function requestBytes(
  method: string,
  url: string,
  headers: Record<string, string> = {},
  body?: Buffer | string,
): Promise<BytesResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface JsonResponse<T> {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: T;
}

/** A request whose answer must be JSON (it is parsed; a non-JSON body throws with the text). */
export async function requestJson<T>(
  method: string,
  url: string,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const res = await requestBytes(method, url, headers);
  const text = res.body.toString('utf8');
  try {
    return { status: res.status, headers: res.headers, body: JSON.parse(text) as T };
  } catch {
    throw new Error(`${method} ${url} → ${res.status}: not JSON: ${text.slice(0, 500)}`);
  }
}

/** `GET /v1/files/<id>` → the file (throws unless 200). */
export async function getFile(baseUrl: string, id: string): Promise<FileJson> {
  const res = await requestJson<{ data: FileJson } | ApiError>('GET', `${baseUrl}/v1/files/${id}`);
  if (res.status !== 200 || !('data' in res.body)) {
    throw new Error(`GET /v1/files/${id} → ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body.data;
}

/** Polls `GET /v1/files/<id>` until its status is one of `statuses`. */
export function waitForFileStatus(
  baseUrl: string,
  id: string,
  statuses: FileJson['status'] | readonly FileJson['status'][],
  timeoutMs = 10_000,
): Promise<FileJson> {
  const wanted: readonly string[] = typeof statuses === 'string' ? [statuses] : statuses;
  return until(
    `file ${id} to be ${wanted.join(' or ')}`,
    () => getFile(baseUrl, id),
    (file) => wanted.includes(file.status),
    { timeoutMs, everyMs: 25 },
  );
}

/** Every file `GET /v1/files?<query>` lists, following `next_cursor`; also each page's size. */
export async function listAllFiles(
  baseUrl: string,
  query: Record<string, string>,
): Promise<{ files: FileJson[]; pageSizes: number[] }> {
  const files: FileJson[] = [];
  const pageSizes: number[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const params: URLSearchParams = new URLSearchParams({ ...query, ...(cursor ? { cursor } : {}) });
    const res: JsonResponse<{ data: FileJson[]; next_cursor: string | null }> = await requestJson<{
      data: FileJson[];
      next_cursor: string | null;
    }>('GET', `${baseUrl}/v1/files?${params}`);
    if (res.status !== 200) throw new Error(`GET /v1/files?${params} → ${res.status} ${JSON.stringify(res.body)}`);
    files.push(...res.body.data);
    pageSizes.push(res.body.data.length);
    cursor = res.body.next_cursor;
    if (cursor === null) return { files, pageSizes };
  }
  throw new Error('listing did not end after 1000 pages');
}

/** The checksums Ferry reports: sha256 hex, crc32c as base64 of the big-endian uint32 (as GCS). */
export function checksumsOf(bytes: Buffer): { sha256: string; crc32c: string } {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32c(bytes) >>> 0);
  return { sha256: createHash('sha256').update(bytes).digest('hex'), crc32c: crc.toString('base64') };
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** An `Upload-Metadata` header value (values base64 of their UTF-8). */
export function uploadMetadataHeader(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([key, value]) => `${key} ${Buffer.from(value, 'utf8').toString('base64')}`)
    .join(',');
}

/** Uploads `bytes` with tus-js-client (no retries) and resolves with the upload URL and file id. */
export async function uploadBuffer(
  baseUrl: string,
  bytes: Buffer,
  metadata: Record<string, string>,
  options: UploadOptions = {},
): Promise<{ url: string; id: string }> {
  const { url } = await tusUpload(bytes, { endpoint: `${baseUrl}/files/`, retryDelays: null, metadata, ...options });
  return { url, id: uploadId(url) };
}

/**
 * A minimal valid PNG (1×1 RGBA pixel): signature, IHDR, one IDAT of zlib-deflated scanlines, IEND,
 * each chunk with its CRC-32.
 */
export function minimalPng(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typeAndData) >>> 0);
    return Buffer.concat([length, typeAndData, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0); // width
  ihdr.writeUInt32BE(1, 4); // height
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA
  ihdr[10] = 0; // compression
  ihdr[11] = 0; // filter
  ihdr[12] = 0; // interlace
  const scanline = Buffer.from([0, 0x12, 0x34, 0x56, 0xff]); // filter byte + one RGBA pixel
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(scanline)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A small PDF file that starts with the `%PDF-1.4` header (enough for file-type to call it a PDF). */
export function minimalPdf(): Buffer {
  return Buffer.from(
    '%PDF-1.4\n' +
      '1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n' +
      '2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n' +
      'trailer << /Root 1 0 R >>\n' +
      '%%EOF\n',
    'latin1',
  );
}

/**
 * Matches the signed download URL Ferry puts in a File (`<base>/v1/files/<id>/content?expires=…&signature=…`);
 * `base` is '' for the relative links of webhooks without FERRY_PUBLIC_URL.
 */
export function signedContentUrl(base: string, id: string) {
  const escaped = `${base}/v1/files/${id}/content`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return expect.stringMatching(new RegExp(`^${escaped}\\?expires=\\d+&signature=[0-9a-f]{64}$`));
}
