/**
 * Test files and streamed SHA-256 helpers. Nothing here holds a whole large file in memory.
 *
 *   const src = await randomFile(48 * 1024 * 1024);   // { path, size, sha256 }
 *   expect(await sha256OfUrl(`${ferry.url}/files/${id}`)).toBe(src.sha256);
 *   afterAll(cleanupTempFiles);
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export interface RandomFile {
  path: string;
  size: number;
  /** Lower-case hex SHA-256 of the whole file. */
  sha256: string;
}

let tempDir: Promise<string> | undefined;
let counter = 0;

function dir(): Promise<string> {
  tempDir ??= mkdtemp(join(tmpdir(), 'ferry-test-files-'));
  return tempDir;
}

/** Write `bytes` random bytes to a new temp file (1 MiB at a time) and return its path and SHA-256. */
export async function randomFile(bytes: number): Promise<RandomFile> {
  const path = join(await dir(), `random-${process.pid}-${++counter}-${bytes}.bin`);
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const done = new Promise<void>((resolve, reject) => {
    out.once('finish', resolve);
    out.once('error', reject);
  });
  let left = bytes;
  while (left > 0) {
    const chunk = randomBytes(Math.min(left, 1024 * 1024));
    hash.update(chunk);
    left -= chunk.length;
    if (!out.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          out.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          out.off('drain', onDrain);
          reject(err);
        };
        out.once('drain', onDrain);
        out.once('error', onError);
      });
    }
  }
  out.end();
  await done;
  return { path, size: bytes, sha256: hash.digest('hex') };
}

/** Delete every file `randomFile` created in this worker. */
export async function cleanupTempFiles(): Promise<void> {
  if (tempDir === undefined) return;
  const d = await tempDir;
  tempDir = undefined;
  await rm(d, { recursive: true, force: true });
}

/** SHA-256 (hex) of everything `readable` yields until it ends. */
export async function sha256Stream(readable: Readable | AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of readable) hash.update(chunk as Uint8Array);
  return hash.digest('hex');
}

/**
 * SHA-256 (hex) of a file, or of the byte range [start, end) of it (end exclusive, like
 * `Buffer#subarray`) — e.g. `sha256File(src.path, { end: offset })` hashes a prefix.
 */
export function sha256File(path: string, range: { start?: number; end?: number } = {}): Promise<string> {
  const start = range.start ?? 0;
  if (range.end !== undefined && range.end <= start) return Promise.resolve(sha256Empty());
  return sha256Stream(createReadStream(path, { start, ...(range.end !== undefined ? { end: range.end - 1 } : {}) }));
}

function sha256Empty(): string {
  return createHash('sha256').digest('hex');
}

/**
 * GET `url` (http only) and hash the body as it streams in. Rejects unless the status is 200.
 * Returns the hex SHA-256; `bytes` is the body length, for better assertion messages.
 */
export function sha256OfUrl(url: string, headers: Record<string, string> = {}): Promise<string> {
  return sha256AndSizeOfUrl(url, headers).then((r) => r.sha256);
}

/** Like `sha256OfUrl`, also returning the body length. */
export function sha256AndSizeOfUrl(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (body.length < 2000) body += c;
        });
        res.on('end', () => reject(new Error(`GET ${url} → ${res.statusCode}: ${body.slice(0, 2000)}`)));
        res.on('error', reject);
        return;
      }
      sha256OfResponse(url, res).then(resolve, reject);
    });
    req.on('error', reject);
  });
}

/**
 * SHA-256 (hex) and length of a response body as it streams in (whatever the status); rejects if the
 * response ends before its body is complete. `url` is for the error message.
 */
export function sha256OfResponse(url: string, res: IncomingMessage): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    res.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    res.on('end', () => {
      if (!res.complete) reject(new Error(`GET ${url}: response ended early after ${bytes} bytes`));
      else resolve({ sha256: hash.digest('hex'), bytes });
    });
    res.on('error', reject);
  });
}
