/**
 * Small tus 1.0 helpers for end-to-end tests: raw requests (node:http, no connection pooling, so
 * nothing stale survives a server restart) and a promise wrapper around tus-js-client.
 *
 *   const { url } = await tusCreate(ferry.url, size);       // POST /files/ → absolute upload URL
 *   const { offset } = await tusHead(url);                   // HEAD → Upload-Offset
 *   await tusPatchFile(url, file.path, offset);              // PATCH the rest of a file
 *   const { url } = await tusUpload(createReadStream(p), { endpoint: `${ferry.url}/files/` });
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { crc32c } from '@node-rs/crc32';
import { Upload } from 'tus-js-client';

type UploadInput = ConstructorParameters<typeof Upload>[0];
type UploadOptions = ConstructorParameters<typeof Upload>[1];
type UrlStorage = NonNullable<UploadOptions['urlStorage']>;
type PreviousUpload = Awaited<ReturnType<UrlStorage['findAllUploads']>>[number];

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One HTTP request on a fresh connection. `body` may be a Buffer/string or a function that writes
 * the body itself (e.g. streaming a file) and ends the request.
 */
export function httpRequest(
  method: string,
  url: string,
  headers: Record<string, string | number> = {},
  body?: Buffer | string | ((req: import('node:http').ClientRequest) => void),
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (text.length < 64 * 1024) text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (typeof body === 'function') body(req);
    else req.end(body);
  });
}

/** POST `<baseUrl>/files/` with `Upload-Length` (or `Upload-Defer-Length: 1` when length is null). */
export async function tusCreate(
  baseUrl: string,
  length: number | null,
  headers: Record<string, string> = {},
): Promise<{ url: string; location: string; response: RawResponse }> {
  const res = await httpRequest('POST', `${baseUrl}/files/`, {
    'Tus-Resumable': '1.0.0',
    ...(length === null ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }),
    ...headers,
  });
  const location = res.headers.location;
  if (res.status !== 201 || location === undefined) {
    throw new Error(
      `tus create: expected 201 with Location, got ${res.status} ${JSON.stringify(res.headers)} ${res.body}`,
    );
  }
  return { url: new URL(location, `${baseUrl}/files/`).toString(), location, response: res };
}

/** HEAD an upload URL; `offset`/`length` are the parsed Upload-Offset/Upload-Length headers if present. */
export async function tusHead(
  uploadUrl: string,
): Promise<{ status: number; offset: number | undefined; length: number | undefined; response: RawResponse }> {
  const res = await httpRequest('HEAD', uploadUrl, { 'Tus-Resumable': '1.0.0' });
  const num = (h: string | string[] | undefined): number | undefined =>
    typeof h === 'string' && h !== '' ? Number(h) : undefined;
  return {
    status: res.status,
    offset: num(res.headers['upload-offset']),
    length: num(res.headers['upload-length']),
    response: res,
  };
}

/** `Upload-Checksum` value of `data`, e.g. `sha1 <base64>`; crc32c is the base64 of the big-endian 32-bit value. */
export function uploadChecksum(algorithm: 'sha1' | 'md5' | 'crc32c', data: Buffer): string {
  if (algorithm !== 'crc32c') return `${algorithm} ${createHash(algorithm).update(data).digest('base64')}`;
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32c(data) >>> 0);
  return `crc32c ${out.toString('base64')}`;
}

/** The headers of a tus PATCH that sends `length` bytes at `offset`, plus `extra`. */
export function patchHeaders(
  offset: number,
  length: number,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    'Tus-Resumable': '1.0.0',
    'Content-Type': 'application/offset+octet-stream',
    'Upload-Offset': String(offset),
    'Content-Length': String(length),
    ...extra,
  };
}

/**
 * A PATCH that announces all of `source` from `offset` (Content-Length), writes `sendBytes` of it
 * and then stalls, holding the upload's lock, until the server dies or the request is destroyed
 * (`onRequest` gets the request, e.g. to destroy it after the test). Resolves with the response, or
 * with the error when the connection failed first.
 */
export function stalledPatch(
  url: string,
  source: Buffer,
  offset: number,
  sendBytes: number,
  onRequest: (req: import('node:http').ClientRequest) => void,
): Promise<RawResponse | Error> {
  return httpRequest('PATCH', url, patchHeaders(offset, source.length - offset), (req) => {
    onRequest(req);
    req.write(source.subarray(offset, offset + sendBytes));
  }).catch((error: unknown) => error as Error);
}

/** PATCH bytes [offset, end) of a file (default: to the end of the file) in one request. */
export async function tusPatchFile(
  uploadUrl: string,
  path: string,
  offset: number,
  end?: number,
): Promise<{ status: number; offset: number | undefined; response: RawResponse }> {
  const { size } = await import('node:fs/promises').then((fs) => fs.stat(path));
  const stop = end ?? size;
  const res = await httpRequest('PATCH', uploadUrl, patchHeaders(offset, stop - offset), (req) => {
    if (stop <= offset) req.end();
    else createReadStream(path, { start: offset, end: stop - 1 }).pipe(req);
  });
  const h = res.headers['upload-offset'];
  return { status: res.status, offset: typeof h === 'string' ? Number(h) : undefined, response: res };
}

/**
 * Run a tus-js-client upload to completion. Resolves with the upload URL once `onSuccess` fires;
 * rejects with tus-js-client's error. `onSuccess`/`onError` in `options` are still called.
 */
export function tusUpload(input: UploadInput, options: UploadOptions): Promise<{ url: string; upload: Upload }> {
  return new Promise((resolve, reject) => {
    const upload = new Upload(input, {
      ...options,
      onSuccess: (payload) => {
        options.onSuccess?.(payload);
        resolve({ url: upload.url!, upload });
      },
      onError: (err) => {
        options.onError?.(err);
        reject(err);
      },
    });
    upload.start();
  });
}

/** Upload id = last path segment of an upload URL. */
export function uploadId(uploadUrl: string): string {
  const id = new URL(uploadUrl).pathname.split('/').filter(Boolean).pop();
  if (id === undefined) throw new Error(`no id in ${uploadUrl}`);
  return id;
}

/**
 * In-memory `urlStorage` for tus-js-client, so tests can use `findPreviousUploads()` /
 * `resumeFromPreviousUpload()` in Node (the default Node storage stores nothing). Pair it with a
 * `fingerprint` option that returns the same string for the same file.
 */
export function memoryUrlStorage(): UrlStorage & { entries(): Map<string, PreviousUpload & { fingerprint: string }> } {
  const map = new Map<string, PreviousUpload & { fingerprint: string }>();
  let n = 0;
  return {
    entries: () => map,
    findAllUploads: () => Promise.resolve([...map.values()]),
    findUploadsByFingerprint: (fp) => Promise.resolve([...map.values()].filter((u) => u.fingerprint === fp)),
    removeUpload: (key) => {
      map.delete(key);
      return Promise.resolve();
    },
    addUpload: (fp, upload) => {
      const key = `tus::${fp}::${++n}`;
      map.set(key, { ...upload, urlStorageKey: key, fingerprint: fp });
      return Promise.resolve(key);
    },
  };
}
