// A deliberately thin HTTP/tus client: raw node:http requests, no tus-js-client, so the
// client burns as little of the (shared, 2-core) CPU as possible and every variant pays
// the same client cost.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';

const TUS = { 'Tus-Resumable': '1.0.0' };

/** A keep-alive agent, as real clients reuse connections between POST and PATCH. */
export function makeAgent(maxSockets = 16) {
  return new http.Agent({ keepAlive: true, maxSockets });
}

/**
 * One HTTP request. `body` is a Buffer, a readable stream, or undefined.
 * Resolves with status, headers and the (small) response body as a string.
 */
export function request(url, { method = 'GET', headers = {}, body, agent } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    // pipeline() propagates a read error to the request (and vice versa); the response
    // promise above still settles via 'error'.
    else pipeline(body, req).catch(reject);
  });
}

function expectStatus(res, expected, what) {
  if (!expected.includes(res.status)) {
    throw new Error(`${what}: HTTP ${res.status} (expected ${expected.join('/')}): ${res.text.slice(0, 300)}`);
  }
}

/**
 * tus creation: POST to the creation URL; returns the absolute upload URL.
 * `partial: true` creates a partial upload for a later concatenation (Upload-Concat: partial).
 */
export async function tusCreate(endpoint, length, { agent, filename = 'bench.bin', partial = false } = {}) {
  const res = await request(endpoint, {
    method: 'POST',
    agent,
    headers: {
      ...TUS,
      'Upload-Length': String(length),
      // Real clients send a filename; some servers may require metadata.
      'Upload-Metadata': `filename ${Buffer.from(filename).toString('base64')}`,
      ...(partial ? { 'Upload-Concat': 'partial' } : {}),
      'Content-Length': '0',
    },
  });
  expectStatus(res, [201], `POST ${endpoint}`);
  if (!res.headers.location) throw new Error(`POST ${endpoint}: no Location header`);
  // Location may be absolute (Ferry) or relative; resolve it either way.
  return new URL(res.headers.location, endpoint).href;
}

/**
 * One tus PATCH of `length` bytes at `offset`; checks the new Upload-Offset.
 * `checksum` is an Upload-Checksum value ("<algorithm> <base64>") covering exactly this body.
 */
export async function tusPatch(uploadUrl, offset, length, body, { agent, checksum } = {}) {
  const res = await request(uploadUrl, {
    method: 'PATCH',
    agent,
    headers: {
      ...TUS,
      'Content-Type': 'application/offset+octet-stream',
      'Upload-Offset': String(offset),
      'Content-Length': String(length),
      ...(checksum ? { 'Upload-Checksum': checksum } : {}),
    },
    body,
  });
  expectStatus(res, [204], `PATCH ${uploadUrl} @${offset}`);
  const newOffset = Number(res.headers['upload-offset']);
  if (newOffset !== offset + length) {
    throw new Error(`PATCH ${uploadUrl}: Upload-Offset ${newOffset}, expected ${offset + length}`);
  }
}

/**
 * Upload a file with tus: POST, then the whole file in one PATCH (chunkSize = Infinity)
 * or in sequential PATCHes of chunkSize bytes, each streamed from disk.
 * `checksum` (an Upload-Checksum value for the whole file) needs the single PATCH: a tus
 * checksum covers one request's body, and we only have the digest of the whole file.
 */
export async function tusUploadFile(endpoint, file, size, { agent, chunkSize = Infinity, checksum } = {}) {
  if (checksum && chunkSize < size) throw new Error('tusUploadFile: a whole-file checksum needs a single PATCH');
  const url = await tusCreate(endpoint, size, { agent });
  for (let offset = 0; offset < size;) {
    const len = Math.min(chunkSize, size - offset);
    const body = createReadStream(file, { start: offset, end: offset + len - 1 });
    await tusPatch(url, offset, len, body, { agent, checksum });
    offset += len;
  }
  return url;
}

/**
 * tus concatenation, the way tus-js-client's parallelUploads does it: the file is split into
 * `parts` byte ranges, each uploaded as a partial upload (POST Upload-Concat: partial, then
 * one PATCH), all at once; then one POST Upload-Concat: final;<paths> joins them.
 * Returns the final upload's URL, the partials' URLs (to delete them afterwards) and how
 * long the final POST took, which is the server joining the bytes.
 */
export async function tusUploadParallel(endpoint, file, size, { agent, parts = 4 } = {}) {
  const partSize = Math.ceil(size / parts);
  const ranges = [];
  for (let start = 0; start < size; start += partSize) ranges.push({ start, length: Math.min(partSize, size - start) });
  // If one part fails the bench fails, and the temp dir (with the other parts) goes with it.
  const partUrls = await Promise.all(
    ranges.map(async ({ start, length }) => {
      const url = await tusCreate(endpoint, length, { agent, partial: true });
      await tusPatch(url, 0, length, createReadStream(file, { start, end: start + length - 1 }), { agent });
      return url;
    }),
  );
  const joinStart = performance.now();
  const url = await tusConcatenate(endpoint, partUrls, { agent });
  const joinS = (performance.now() - joinStart) / 1000;
  return { url, partUrls, joinS };
}

/** tus concatenation: POST Upload-Concat: final;<paths> (no Upload-Length); returns the final upload's URL. */
export async function tusConcatenate(endpoint, partUrls, { agent } = {}) {
  const paths = partUrls.map((u) => new URL(u).pathname).join(' ');
  const res = await request(endpoint, {
    method: 'POST',
    agent,
    headers: { ...TUS, 'Upload-Concat': `final;${paths}`, 'Content-Length': '0' },
  });
  expectStatus(res, [201], `POST ${endpoint} (Upload-Concat: final, ${partUrls.length} parts)`);
  if (!res.headers.location) throw new Error(`POST ${endpoint} (final): no Location header`);
  return new URL(res.headers.location, endpoint).href;
}

/** tus creation + one PATCH of an in-memory buffer (two requests, as tus-js-client does). */
export async function tusUploadBuffer(endpoint, buf, { agent } = {}) {
  const url = await tusCreate(endpoint, buf.length, { agent });
  await tusPatch(url, 0, buf.length, buf, { agent });
  return url;
}

/**
 * tus creation-with-upload: one POST carrying the whole buffer (tus-js-client's
 * `uploadDataDuringCreation`), which must answer 201 with the upload complete.
 */
export async function tusCreateWithUpload(endpoint, buf, { agent, filename = 'bench.bin' } = {}) {
  const res = await request(endpoint, {
    method: 'POST',
    agent,
    body: buf,
    headers: {
      ...TUS,
      'Upload-Length': String(buf.length),
      'Upload-Metadata': `filename ${Buffer.from(filename).toString('base64')}`,
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(buf.length),
    },
  });
  expectStatus(res, [201], `POST ${endpoint} (creation-with-upload)`);
  if (res.headers['upload-offset'] !== String(buf.length)) {
    throw new Error(
      `POST ${endpoint} (creation-with-upload): Upload-Offset ${res.headers['upload-offset']}, not ${buf.length}`,
    );
  }
  if (!res.headers.location) throw new Error(`POST ${endpoint}: no Location header`);
  return new URL(res.headers.location, endpoint).href;
}

/** tus termination. Returns true on 204, false otherwise (caller decides what to do). */
export async function tusDelete(uploadUrl, { agent } = {}) {
  const res = await request(uploadUrl, { method: 'DELETE', agent, headers: { ...TUS } });
  return res.status === 204;
}

/** Plain reference upload: one PUT of a stream or buffer. */
export async function plainPut(url, body, length, { agent } = {}) {
  const res = await request(url, {
    method: 'PUT',
    agent,
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(length) },
    body,
  });
  expectStatus(res, [204], `PUT ${url}`);
}

/** GET a URL and hash the response body as it streams (never buffered): { status, size, sha256 }. */
export function hashDownload(url, { agent } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      const hash = createHash('sha256');
      let size = 0;
      res.on('data', (c) => {
        size += c.length;
        hash.update(c);
      });
      res.on('end', () => resolve({ status: res.statusCode, size, sha256: hash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
