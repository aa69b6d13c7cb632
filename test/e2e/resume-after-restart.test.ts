/**
 * An upload stopped part-way survives a Ferry restart (graceful or crash): after the restart HEAD
 * reports at least the acknowledged bytes, tus-js-client resumes on the same upload URL, and the
 * finished file is byte-identical.
 */
import { createReadStream } from 'node:fs';
import { Upload } from 'tus-js-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupFerries, startFerry, type FerryProcess } from '../helpers/ferry-process.js';
import { cleanupTempFiles, randomFile, sha256AndSizeOfUrl, type RandomFile } from '../helpers/files.js';
import { mulberry32 } from '../helpers/lossy-proxy.js';
import { sleep } from '../helpers/poll.js';
import { stallingSource, type StallingSource } from '../helpers/stalling-source.js';
import { memoryUrlStorage, tusHead, tusUpload, uploadId } from '../helpers/tus.js';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const CHUNK = 2 * MiB;
// Two chunks are acknowledged (4 MiB); the third is in flight and stalls 1 MiB + 12345 bytes in.
const STALL_AT = 5 * MiB + 12_345;
const ACKED = 4 * MiB;

let file: RandomFile;
const sources: StallingSource[] = [];

beforeAll(async () => {
  file = await randomFile(SIZE);
}, 30_000);
afterEach(async () => {
  for (const s of sources.splice(0)) s.release();
  await cleanupFerries();
});
afterAll(cleanupTempFiles);

/** Start an upload that stalls at STALL_AT; resolves once the stall point is reached on the wire. */
async function startStalledUpload(
  ferry: FerryProcess,
  extra: ConstructorParameters<typeof Upload>[1] = {},
): Promise<{ upload: Upload; acked: () => number }> {
  const src = stallingSource(file.path, STALL_AT);
  sources.push(src);
  let acked = 0;
  let error: unknown;
  const upload = new Upload(src.file, {
    endpoint: `${ferry.url}/files/`,
    fileReader: src.fileReader,
    chunkSize: CHUNK,
    retryDelays: null,
    metadata: { filename: 'restart.bin' },
    onChunkComplete: (_chunk, accepted) => (acked = accepted),
    onError: (e) => (error = e),
    ...extra,
  });
  upload.start();
  await src.stalled;
  await sleep(300); // let the bytes before the stall point cross loopback and reach Ferry
  expect(error).toBeUndefined();
  expect(acked).toBe(ACKED);
  expect(upload.url).toMatch(new RegExp(`^${ferry.url}/files/[^/]+$`));
  return { upload, acked: () => acked };
}

/**
 * After the restart that followed a stall at STALL_AT, HEAD reports the upload with its length and a
 * stored offset between what was acknowledged and what was sent.
 */
async function expectStoredOffsetAfterStall(uploadUrl: string, how: string): Promise<{ offset: number | undefined }> {
  const head = await tusHead(uploadUrl);
  expect(head.status).toBe(200);
  expect(head.length).toBe(SIZE);
  expect(head.offset).toBeGreaterThanOrEqual(ACKED);
  expect(head.offset).toBeLessThanOrEqual(STALL_AT);
  console.log(
    `[resume-after-restart] ${how}: stored offset ${head.offset} of ${STALL_AT} sent (${ACKED} acknowledged)`,
  );
  return head;
}

/** The upload at `url` on `ferry` holds exactly the source file. */
async function expectStoredFile(ferry: FerryProcess, url: string): Promise<void> {
  expect(await sha256AndSizeOfUrl(`${ferry.url}/files/${uploadId(url)}`)).toEqual({
    sha256: file.sha256,
    bytes: SIZE,
  });
}

describe('resume after a Ferry restart on the same data dir and port', () => {
  it('after an aborted upload and SIGTERM (exit 0), HEAD reports the stored offset (acknowledged ≤ offset ≤ sent) and findPreviousUploads/resumeFromPreviousUpload finishes a byte-identical file', async () => {
    const ferry = await startFerry();
    const urlStorage = memoryUrlStorage();
    const fingerprint = (): Promise<string> => Promise.resolve(`e2e-${file.sha256}`);
    const { upload } = await startStalledUpload(ferry, { urlStorage, fingerprint });
    const uploadUrl = upload.url!;
    await upload.abort();
    await sleep(200); // Ferry notices the aborted PATCH and saves what it received

    expect(await ferry.stop('SIGTERM')).toBe(0);
    const again = await startFerry({ dataDir: ferry.dataDir, port: ferry.port });

    const head = await expectStoredOffsetAfterStall(uploadUrl, 'SIGTERM');

    // Resume the way a browser app would: look the upload up by fingerprint.
    let resumedFrom: number | undefined;
    const { url } = await new Promise<{ url: string }>((resolve, reject) => {
      const next = new Upload(createReadStream(file.path), {
        endpoint: `${again.url}/files/`,
        chunkSize: CHUNK,
        retryDelays: [0, 200, 500],
        urlStorage,
        fingerprint,
        onProgress: (sent) => (resumedFrom ??= sent),
        onSuccess: () => resolve({ url: next.url! }),
        onError: reject,
      });
      void next.findPreviousUploads().then((prev) => {
        expect(prev).toHaveLength(1);
        expect(prev[0]!.uploadUrl).toBe(uploadUrl);
        next.resumeFromPreviousUpload(prev[0]!);
        next.start();
      }, reject);
    });
    expect(url).toBe(uploadUrl); // same upload, not a new one
    expect(resumedFrom).toBeGreaterThanOrEqual(head.offset!);
    await expectStoredFile(again, url);
  }, 60_000);

  it('after SIGKILL with a PATCH in flight, HEAD reports at least the acknowledged bytes and resuming with uploadUrl finishes a byte-identical file', async () => {
    const ferry = await startFerry();
    const { upload } = await startStalledUpload(ferry);
    const uploadUrl = upload.url!;
    await ferry.kill(); // crash while the third chunk's PATCH is open
    await upload.abort();
    const again = await startFerry({ dataDir: ferry.dataDir, port: ferry.port });

    await expectStoredOffsetAfterStall(uploadUrl, 'SIGKILL');

    const { url } = await tusUpload(createReadStream(file.path), {
      endpoint: `${again.url}/files/`,
      uploadUrl,
      chunkSize: CHUNK,
      retryDelays: [0, 200, 500],
    });
    expect(url).toBe(uploadUrl);
    await expectStoredFile(again, url);
  }, 60_000);

  it('an upload whose bytes were all acknowledged before SIGKILL reports exactly that offset after the restart', async () => {
    // Stall exactly on a chunk boundary: no PATCH is in flight, so the stored offset is exact.
    const ferry = await startFerry();
    const src = stallingSource(file.path, 3 * CHUNK);
    sources.push(src);
    let acked = 0;
    const upload = new Upload(src.file, {
      endpoint: `${ferry.url}/files/`,
      fileReader: src.fileReader,
      chunkSize: CHUNK,
      retryDelays: null,
      onChunkComplete: (_c, accepted) => (acked = accepted),
      onError: () => {}, // the crash may fail the open PATCH before abort() runs
    });
    upload.start();
    await src.stalled;
    await sleep(100);
    expect(acked).toBe(3 * CHUNK);
    const uploadUrl = upload.url!;
    await ferry.kill();
    await upload.abort();
    const again = await startFerry({ dataDir: ferry.dataDir, port: ferry.port });
    const head = await tusHead(uploadUrl);
    expect(head.status).toBe(200);
    expect(head.offset).toBe(3 * CHUNK);
    const { url } = await tusUpload(createReadStream(file.path), {
      endpoint: `${again.url}/files/`,
      uploadUrl,
      retryDelays: null,
    });
    await expectStoredFile(again, url);
  }, 60_000);

  it('a 48 MiB chunked upload survives up to five SIGKILLs at random moments: after each restart HEAD reports at least the acknowledged bytes, and the finished file is byte-identical', async () => {
    const big = await randomFile(48 * MiB);
    const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const rng = mulberry32(seed);
    const ctx = `(CRASH_SEED=${seed})`;
    let ferry = await startFerry();
    let uploadUrl: string | undefined;
    const offsets: number[] = [];
    let finished = false;
    for (let round = 0; round < 6 && !finished; round++) {
      let acked = -1;
      let succeeded = false;
      const upload = new Upload(createReadStream(big.path), {
        endpoint: `${ferry.url}/files/`,
        ...(uploadUrl ? { uploadUrl } : {}),
        chunkSize: 1 * MiB,
        retryDelays: null,
        onChunkComplete: (_c, accepted) => (acked = accepted),
        onSuccess: () => (succeeded = true),
        onError: () => {}, // the crash fails the request in flight
      });
      upload.start();
      if (round < 5) {
        // crash once the upload is under way: 10–100 ms after its first acknowledged chunk
        const t0 = Date.now();
        while (acked < 0 && !succeeded && Date.now() - t0 < 10_000) await sleep(5);
        await sleep(10 + Math.floor(rng() * 90));
        await ferry.kill();
        await upload.abort();
        uploadUrl ??= upload.url ?? undefined;
        expect(uploadUrl, ctx).toBeDefined();
        ferry = await startFerry({ dataDir: ferry.dataDir, port: ferry.port });
        const head = await tusHead(uploadUrl!);
        expect(head.status, ctx).toBe(200);
        expect(head.offset!, `${ctx} round ${round}`).toBeGreaterThanOrEqual(Math.max(acked, 0));
        offsets.push(head.offset!);
        finished = succeeded || head.offset === big.size;
      } else {
        const t0 = Date.now();
        while (!succeeded && Date.now() - t0 < 30_000) await sleep(10);
        expect(succeeded, ctx).toBe(true);
        finished = true;
      }
    }
    console.log(`[resume-after-restart] crash loop ${ctx}: offsets after each crash ${offsets.join(', ')}`);
    expect(offsets.length, `${ctx} at least two crashes happened mid-upload`).toBeGreaterThanOrEqual(2);
    expect(offsets[0]!, ctx).toBeLessThan(big.size);
    expect(await sha256AndSizeOfUrl(`${ferry.url}/files/${uploadId(uploadUrl!)}`), ctx).toEqual({
      sha256: big.sha256,
      bytes: big.size,
    });
  }, 90_000);

  it('a tus-js-client upload rides through a graceful restart on its own: the stalled PATCH is answered with its stored offset, the client retries until Ferry is back on the same port, and the file is byte-identical', async () => {
    const ferry = await startFerry();
    const src = stallingSource(file.path, 3 * MiB + 7);
    sources.push(src);
    const statuses: string[] = [];
    const done = tusUpload(src.file, {
      endpoint: `${ferry.url}/files/`,
      fileReader: src.fileReader,
      // no progress while Ferry is down, so these must add up to more than the downtime
      retryDelays: [200, 400, 800, 1000, 1500, 2000, 3000],
      onAfterResponse: (req, res) => {
        statuses.push(`${req.getMethod()} ${res.getStatus()} ${res.getHeader('Upload-Offset') ?? ''}`);
      },
    });
    await src.stalled;
    await sleep(300);
    expect(await ferry.stop('SIGTERM', 10_000)).toBe(0);
    // the PATCH in flight was ended by the shutdown with the offset of what it stored
    expect(statuses).toContain(`PATCH 204 ${3 * MiB + 7}`);
    src.release();
    const again = await startFerry({ dataDir: ferry.dataDir, port: ferry.port });
    const { url } = await done;
    await expectStoredFile(again, url);
  }, 60_000);
});
