/**
 * The tus checksum extension under real failures, with raw HTTP (node:http, a fresh connection per
 * request) against a real Ferry process: a checksummed chunk is stored whole or not at all, whether
 * the connection is cut mid-body (by the lossy proxy or by the client dying), the bytes are
 * corrupted, or Ferry itself is SIGKILLed mid-body (the unverified bytes are rolled back at start-up).
 */
import type { ClientRequest } from 'node:http';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFerry, type FerryProcess } from '../helpers/ferry-process.js';
import { sha256AndSizeOfUrl } from '../helpers/files.js';
import { useLossyRig } from '../helpers/lossy-rig.js';
import { until } from '../helpers/poll.js';
import {
  httpRequest,
  patchHeaders,
  tusCreate,
  tusHead,
  uploadChecksum,
  uploadId,
  type RawResponse,
} from '../helpers/tus.js';

const MiB = 1024 * 1024;
const CHUNK = 8 * MiB;
// Three chunks: two of 8 MiB and a short last one.
const SIZE = 2 * CHUNK + 777_777;

type Algorithm = Parameters<typeof uploadChecksum>[0];

const rig = useLossyRig(SIZE, { readBytes: true });

/** PATCH `body` at `offset`; resolves with the response, or with the network error if there was none. */
function patch(
  url: string,
  offset: number,
  body: Buffer | ((req: ClientRequest) => void),
  length: number,
  extra: Record<string, string> = {},
): Promise<RawResponse | { error: string }> {
  return httpRequest('PATCH', url, patchHeaders(offset, length, extra), body).catch((err: unknown) => ({
    error: String(err),
  }));
}

/** The chunks of the file: [start, end) with the bytes. */
function chunks(): { index: number; start: number; end: number; data: Buffer }[] {
  const out = [];
  for (let start = 0, index = 0; start < SIZE; start += CHUNK, index++) {
    const end = Math.min(SIZE, start + CHUNK);
    out.push({ index, start, end, data: rig.bytes.subarray(start, end) });
  }
  return out;
}

function blobPath(f: FerryProcess, url: string): string {
  return join(f.dataDir, 'uploads', uploadId(url));
}
async function blobSize(f: FerryProcess, url: string): Promise<number> {
  return (await stat(blobPath(f, url))).size;
}

async function expectStoredFile(f: FerryProcess, url: string): Promise<void> {
  const head = await tusHead(`${f.url}/files/${uploadId(url)}`);
  expect({ offset: head.offset, length: head.length }).toEqual({ offset: SIZE, length: SIZE });
  expect(await sha256AndSizeOfUrl(`${f.url}/files/${uploadId(url)}`)).toEqual({ sha256: rig.file.sha256, bytes: SIZE });
}

describe('Upload-Checksum when the connection is cut mid-body', () => {
  it('a PATCH with a correct sha1 for an 8 MiB chunk, cut mid-body by the proxy, keeps none of its bytes (HEAD offset unchanged); resending the whole chunk is 204, for every chunk, and the stored file matches the source sha256', async () => {
    // Only PATCHes go through the proxy, each on a new connection: 1, 3, 5 (each chunk's first
    // PATCH) are cut somewhere in the body; 2, 4, 6 (the resends) are not. The rest goes to Ferry.
    const cutPoints: number[] = [];
    const proxy = await rig.startProxy({
      cutAfterBytes: (rng, n) => {
        const chunk = chunks()[(n - 1) / 2];
        if (n % 2 === 0 || !chunk) return undefined;
        // Headers are < 1 KiB: cut between 64 KiB into the body and 128 KiB before its end.
        const cut = 1024 + 64 * 1024 + Math.floor(rng() * (chunk.data.length - 192 * 1024));
        cutPoints.push(cut);
        return cut;
      },
    });
    const seed = proxy.seed;
    const { url: direct } = await tusCreate(rig.ferry.url, SIZE);
    const url = `${proxy.url}/files/${uploadId(direct)}`;

    for (const { start, end, data } of chunks()) {
      const sum = uploadChecksum('sha1', data);
      const cut = await patch(url, start, data, data.length, { 'Upload-Checksum': sum });
      expect(cut, `seed ${seed}: the cut PATCH got no response`).toHaveProperty('error');
      expect((await tusHead(direct)).offset, `seed ${seed}, chunk at ${start}`).toBe(start);
      expect(await blobSize(rig.ferry, url)).toBe(start);

      const resent = await patch(url, start, data, data.length, { 'Upload-Checksum': sum });
      expect(resent).toMatchObject({ status: 204, headers: { 'upload-offset': String(end) } });
    }
    expect(proxy.cuts()).toBe(3);
    console.log(`[checksum] seed ${seed}: cut the checksummed PATCHes after ${cutPoints.join(', ')} bytes`);
    await expectStoredFile(rig.ferry, url);
  });

  it('without Upload-Checksum the same proxy cut keeps the bytes that arrived (offset moves into the chunk): the checksummed case above is not vacuous', async () => {
    // The proxy resets both sockets at the cut: bytes it forwarded that Ferry had not read yet are
    // discarded by the kernel, so under load an attempt can end with nothing read at all. Up to three
    // attempts, each on a fresh upload, until one shows the cut keeping bytes.
    const proxy = await rig.startProxy({
      cutAfterBytes: (_r, n) => (n <= 3 ? 3 * MiB : undefined),
    });
    const first = chunks()[0]!;
    let url = '';
    let direct = '';
    let offset = 0;
    for (let attempt = 0; attempt < 3 && offset === 0; attempt++) {
      direct = (await tusCreate(rig.ferry.url, SIZE)).url;
      url = `${proxy.url}/files/${uploadId(direct)}`;
      const cut = await patch(url, 0, first.data, first.data.length);
      expect(cut).toHaveProperty('error');
      offset = (await tusHead(direct)).offset!;
    }
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThan(3 * MiB);
    // The rest goes straight to Ferry: the proxy may still be set to cut.
    const rest = rig.bytes.subarray(offset);
    expect(await patch(direct, offset, rest, rest.length)).toMatchObject({ status: 204 });
    await expectStoredFile(rig.ferry, direct);
  });

  it('a checksummed (md5) PATCH whose client dies after Ferry has written 3 MiB of the chunk to disk is cut back to the chunk start: HEAD offset unchanged, blob size unchanged, no pending marker; the resend is 204', async () => {
    const { url } = await tusCreate(rig.ferry.url, SIZE);
    const [first, second] = chunks();
    expect(
      await patch(url, 0, first!.data, CHUNK, { 'Upload-Checksum': uploadChecksum('md5', first!.data) }),
    ).toMatchObject({
      status: 204,
    });

    const sum = uploadChecksum('md5', second!.data);
    let request: ClientRequest | undefined;
    const dying = patch(
      url,
      CHUNK,
      (req) => {
        request = req;
        req.write(second!.data.subarray(0, 3 * MiB));
      },
      CHUNK,
      { 'Upload-Checksum': sum },
    );
    // The unverified bytes are on disk (written in place, with the marker holding the old size).
    await until(
      'Ferry to write the 3 MiB sent',
      () => blobSize(rig.ferry, url),
      (size) => size === CHUNK + 3 * MiB,
      { everyMs: 10 },
    );
    expect(existsSync(`${blobPath(rig.ferry, url)}.pending`)).toBe(true);
    request!.destroy();
    expect(await dying).toHaveProperty('error');

    expect((await tusHead(url)).offset).toBe(CHUNK);
    expect(await blobSize(rig.ferry, url)).toBe(CHUNK);
    expect(existsSync(`${blobPath(rig.ferry, url)}.pending`)).toBe(false);

    expect(await patch(url, CHUNK, second!.data, CHUNK, { 'Upload-Checksum': sum })).toMatchObject({
      status: 204,
      headers: { 'upload-offset': String(2 * CHUNK) },
    });
    const last = chunks()[2]!;
    expect(
      await patch(url, last.start, last.data, last.data.length, {
        'Upload-Checksum': uploadChecksum('md5', last.data),
      }),
    ).toMatchObject({ status: 204 });
    await expectStoredFile(rig.ferry, url);
  });
});

describe('Upload-Checksum with corrupted bytes', () => {
  it('a chunk with one flipped byte but the checksum of the original is refused with 460 and none of it is kept (offset unchanged), for sha1, md5 and crc32c; the resend of the right bytes is 204 and the stored file matches the source sha256', async () => {
    const { url } = await tusCreate(rig.ferry.url, SIZE);
    const algorithms: Algorithm[] = ['sha1', 'md5', 'crc32c'];
    for (const { index, start, end, data } of chunks()) {
      const algorithm = algorithms[index]!;
      const corrupted = Buffer.from(data);
      const at = Math.floor(Math.random() * corrupted.length);
      corrupted[at] = corrupted[at]! ^ 0x01;
      const sum = uploadChecksum(algorithm, data);

      const refused = await patch(url, start, corrupted, corrupted.length, { 'Upload-Checksum': sum });
      expect(refused, `${algorithm}, byte ${at} flipped`).toMatchObject({ status: 460 });
      expect((await tusHead(url)).offset).toBe(start);
      expect(await blobSize(rig.ferry, url)).toBe(start);

      const accepted = await patch(url, start, data, data.length, { 'Upload-Checksum': sum });
      expect(accepted).toMatchObject({ status: 204, headers: { 'upload-offset': String(end) } });
    }
    await expectStoredFile(rig.ferry, url);
  });
});

describe('Upload-Checksum when Ferry crashes mid-chunk', () => {
  it('SIGKILL during a slow checksummed (sha1) PATCH leaves unverified bytes on disk; the restarted Ferry does not count them (HEAD offset = offset before that PATCH), the next PATCH replaces them, and the stored file matches the source sha256', async () => {
    const own = await startFerry();
    const { url } = await tusCreate(own.url, SIZE);
    const [first, second, last] = chunks();
    expect(
      await patch(url, 0, first!.data, CHUNK, { 'Upload-Checksum': uploadChecksum('sha1', first!.data) }),
    ).toMatchObject({ status: 204 });

    // Stream the second chunk slowly: 256 KiB every 20 ms, then stop at 4 MiB (of 8) and wait.
    let stopped = false;
    const sum = uploadChecksum('sha1', second!.data);
    const slow = patch(
      url,
      CHUNK,
      (req) => {
        let sent = 0;
        const step = (): void => {
          if (stopped || req.destroyed || sent >= 4 * MiB) return;
          req.write(second!.data.subarray(sent, sent + 256 * 1024));
          sent += 256 * 1024;
          setTimeout(step, 20);
        };
        step();
      },
      CHUNK,
      { 'Upload-Checksum': sum },
    );
    await until(
      'Ferry to write 4 MiB of the slow chunk',
      () => blobSize(own, url),
      (size) => size === CHUNK + 4 * MiB,
      { everyMs: 10 },
    );
    expect(existsSync(`${blobPath(own, url)}.pending`)).toBe(true);

    await own.kill();
    stopped = true;
    expect(await slow).toHaveProperty('error');
    // The crash left the unverified bytes in the blob.
    expect(await blobSize(own, url)).toBe(CHUNK + 4 * MiB);

    const again = await startFerry({ dataDir: own.dataDir, port: own.port });
    const head = await tusHead(url);
    expect({ status: head.status, offset: head.offset, length: head.length }).toEqual({
      status: 200,
      offset: CHUNK,
      length: SIZE,
    });

    // The next PATCH (under the upload's lock) cuts the unverified bytes away and removes the marker.
    expect(await patch(url, CHUNK, second!.data, CHUNK, { 'Upload-Checksum': sum })).toMatchObject({ status: 204 });
    expect(await blobSize(again, url)).toBe(2 * CHUNK);
    expect(existsSync(`${blobPath(again, url)}.pending`)).toBe(false);
    expect(
      await patch(url, last!.start, last!.data, last!.data.length, {
        'Upload-Checksum': uploadChecksum('sha1', last!.data),
      }),
    ).toMatchObject({ status: 204, headers: { 'upload-offset': String(SIZE) } });
    await expectStoredFile(again, url);
  });
});
