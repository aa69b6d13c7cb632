/**
 * Ferry on S3 (a real moto_server, FERRY_S3_PART_SIZE=5MiB), one real Ferry process at a time:
 * sizes at and around S3's part boundaries, downloads with Range, checksummed chunks that fail,
 * crashes (SIGKILL) between and in the middle of PATCHes, and what stays in the bucket: after a
 * DELETE nothing of the upload, after completion only `uploads/<id>`, `uploads/<id>.blob.json` and
 * `uploads/<id>.json` under Ferry's prefix, and never anything outside it. Every stored file is
 * checked by sha256 (`GET /files/<id>`) against its source.
 *
 * The objects and the open multipart uploads of "another app" are created first and checked last:
 * nothing Ferry does in this file (uploads, DELETEs, refused chunks, crashes, restarts) touches them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupFerries, restartFerry, startFerry, type FerryProcess } from '../helpers/ferry-process.js';
import { cleanupTempFiles, randomFile, sha256AndSizeOfUrl, sha256File, type RandomFile } from '../helpers/files.js';
import { startGatedS3Proxy, type GatedS3Proxy } from '../helpers/gated-s3-proxy.js';
import { spoolFiles } from '../helpers/spool-files.js';
import { startMoto, stopAllMoto, type MotoServer } from '../helpers/moto-server.js';
import {
  allKeysOfCompleted,
  completeKeys,
  fileRecordKey,
  getHashed,
  leftovers,
  openMultipartKeys,
  partsOf,
  s3Env,
  snapshot,
  type BucketSnapshot,
} from '../helpers/s3-inspect.js';
import { sleep, until } from '../helpers/poll.js';
import {
  httpRequest,
  patchHeaders,
  stalledPatch,
  tusCreate,
  tusHead,
  tusPatchFile,
  tusUpload,
  uploadChecksum,
  uploadId,
  type RawResponse,
} from '../helpers/tus.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const BASE = `e2e-s3-${process.pid}`;
const EMPTY_SHA256 = createHash('sha256').digest('hex');

let moto: MotoServer;
let ferry: S3Ferry; // the shared one, prefix `${BASE}-edge`
let tempDirs: string[] = [];
const openRequests: ClientRequest[] = [];
const gates: GatedS3Proxy[] = [];
/** What "another app" keeps in the bucket, as it was before any Ferry started. */
let foreignBefore: BucketSnapshot;
const FOREIGN_OBJECTS = [
  'other-app/report.bin',
  // Ferry's own layout, but not under Ferry's prefix.
  'uploads/not-ferrys',
  'uploads/not-ferrys.json',
  // Keys that begin with the characters of Ferry's prefix without being under `<prefix>/`.
  `${BASE}-edge-sibling/uploads/keep.bin`,
  `${BASE}-edgeuploads/keep.bin`,
];
const FOREIGN_MULTIPART = ['other-app/big.bin', `${BASE}-edge-sibling/uploads/in-progress`];

let small: RandomFile; // 3 MiB + 5: less than one part
let onePartPlusOne: RandomFile; // 5 MiB + 1: the last part is 1 byte
let twoParts: RandomFile; // exactly 10 MiB: two full parts, no tail
let medium: RandomFile; // 12 MiB + 777: two parts and a final part of 2 MiB + 777

beforeAll(async () => {
  moto = await startMoto();
  [small, onePartPlusOne, twoParts, medium] = await Promise.all([
    randomFile(3 * MiB + 5),
    randomFile(PART + 1),
    randomFile(2 * PART),
    randomFile(12 * MiB + 777),
  ]);
  await createForeignData();
  foreignBefore = await foreignSnapshot();
  ferry = await startS3Ferry('edge');
}, 60_000);
afterEach(async () => {
  for (const req of openRequests.splice(0)) req.destroy();
  for (const gate of gates.splice(0)) await gate.close();
});
afterAll(async () => {
  await cleanupFerries();
  await stopAllMoto();
  await cleanupTempFiles();
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
  tempDirs = [];
});

async function createForeignData(): Promise<void> {
  for (const key of FOREIGN_OBJECTS) {
    await moto.client.send(new PutObjectCommand({ Bucket: moto.bucket, Key: key, Body: randomBytes(1024) }));
  }
  for (const key of FOREIGN_MULTIPART) {
    const { UploadId } = await moto.client.send(new CreateMultipartUploadCommand({ Bucket: moto.bucket, Key: key }));
    await moto.client.send(
      new UploadPartCommand({ Bucket: moto.bucket, Key: key, UploadId, PartNumber: 1, Body: randomBytes(PART) }),
    );
  }
}

async function foreignSnapshot(): Promise<BucketSnapshot> {
  const all = await snapshot(moto);
  return {
    objects: Object.fromEntries(Object.entries(all.objects).filter(([key]) => FOREIGN_OBJECTS.includes(key))),
    multipart: Object.fromEntries(
      Object.entries(all.multipart).filter(([keyAndId]) => FOREIGN_MULTIPART.includes(keyAndId.split(' ')[0]!)),
    ),
  };
}

interface S3Ferry extends FerryProcess {
  readonly prefix: string;
  readonly env: Record<string, string>;
  readonly tempDir: string;
}

/** A Ferry on S3 with the prefix `${BASE}-<name>`, 5 MiB parts and a temp directory of its own. */
async function startS3Ferry(name: string, extra: Record<string, string> = {}): Promise<S3Ferry> {
  const tempDir = await mkdtemp(join(tmpdir(), 'ferry-test-s3-temp-'));
  tempDirs.push(tempDir);
  const prefix = `${BASE}-${name}`;
  const env = s3Env(moto, prefix, { FERRY_S3_PART_SIZE: '5MiB', FERRY_S3_TEMP_DIR: tempDir });
  const process = await startFerry({ env: { ...env, ...extra } });
  return Object.assign(process, { prefix: `${prefix}/`, env, tempDir });
}

const uploadUrl = (f: FerryProcess, id: string): string => `${f.url}/files/${id}`;

async function expectStored(f: FerryProcess, id: string, file: RandomFile): Promise<void> {
  expect(await sha256AndSizeOfUrl(uploadUrl(f, id)), `GET /files/${id}`).toEqual({
    sha256: file.sha256,
    bytes: file.size,
  });
}

/** The upload is complete in S3: one object of `size` bytes, its records, nothing else, no open multipart upload. */
async function expectAssembled(prefix: string, id: string, size: number): Promise<{ etag: string }> {
  expect(await moto.listKeys(`${prefix}uploads/${id}`)).toEqual(completeKeys(prefix, id));
  expect(await openMultipartKeys(moto, `${prefix}uploads/${id}`)).toEqual([]);
  const head = await moto.client.send(new HeadObjectCommand({ Bucket: moto.bucket, Key: `${prefix}uploads/${id}` }));
  expect(head.ContentLength).toBe(size);
  return { etag: head.ETag ?? '' };
}

function patchBuffer(
  url: string,
  offset: number,
  data: Buffer,
  extra: Record<string, string> = {},
): Promise<RawResponse> {
  return httpRequest('PATCH', url, patchHeaders(offset, data.length, extra), data);
}

/** Whether `req` (path style) goes to an upload's final key; with `uploadId` in the query or without. */
function isFinalKey(req: IncomingMessage, key: RegExp, withUploadId: boolean): boolean {
  const [path = '', query = ''] = (req.url ?? '').split('?');
  return key.test(path) && /(^|&)uploadId=/.test(query) === withUploadId && !/(^|&)partNumber=/.test(query);
}

/**
 * Creates an upload of `file`, sends its first 7 MiB in a PATCH that stalls, waits until part 1
 * (bytes 0–5 MiB) is in S3 in a multipart upload, and SIGKILLs Ferry before the PATCH ends. Restarts
 * Ferry on the same prefix and temp directory, resumes from the offset HEAD reports, finishes, and
 * checks the bytes. Resolves with the restarted Ferry, the upload id and the multipart upload the
 * killed process had open.
 */
async function crashMidPatchAfterAPart(
  f: S3Ferry,
  file: RandomFile,
): Promise<{ again: FerryProcess; id: string; killedMultipart: string; offsetAfterRestart: number }> {
  const source = await readFile(file.path);
  const { url } = await tusCreate(f.url, file.size);
  const id = uploadId(url);
  const key = `${f.prefix}uploads/${id}`;
  const patch = stalledPatch(url, source, 0, 7 * MiB, (req) => openRequests.push(req));
  const open = await until(
    'part 1 of the stalled PATCH in S3',
    async () => {
      const upload = (await moto.listMultipartUploads()).find((u) => u.key === key);
      return upload ? { upload, parts: await partsOf(moto, key, upload.uploadId) } : undefined;
    },
    (v) => v !== undefined && v.parts.some((p) => p.number === 1),
  );
  // Ferry checkpoints its state once a part is in S3: wait for that before the crash.
  await until(
    'the checkpoint after part 1',
    async () => {
      const state = await moto.client.send(new GetObjectCommand({ Bucket: moto.bucket, Key: `${key}.blob.json` }));
      return JSON.parse(await state.Body!.transformToString()) as { size: number };
    },
    (state) => state.size >= 5 * MiB,
  );
  await f.kill();
  expect(await patch).toBeInstanceOf(Error);

  const again = await restartFerry(f, { env: f.env });
  const head = await tusHead(uploadUrl(again, id));
  expect(head.status).toBe(200);
  const offset = head.offset!;
  // The killed PATCH had checkpointed part 1: those 5 MiB survive, the 2 MiB after them are re-sent.
  expect(offset).toBe(5 * MiB);
  const rest = await tusPatchFile(uploadUrl(again, id), file.path, offset);
  expect(rest.status, rest.response.body).toBe(204);
  expect(rest.offset).toBe(file.size);
  await expectStored(again, id, file);
  return { again, id, killedMultipart: open!.upload.uploadId, offsetAfterRestart: offset };
}

describe('Ferry on S3: sizes around the 5 MiB part boundary', () => {
  it('an empty (0-byte) upload is complete at creation (HEAD offset 0 = length 0), downloads as 0 bytes, and is stored as one empty object with no multipart upload left open', async () => {
    const { url } = await tusCreate(ferry.url, 0);
    const id = uploadId(url);
    const head = await tusHead(url);
    expect({ status: head.status, offset: head.offset, length: head.length }).toEqual({
      status: 200,
      offset: 0,
      length: 0,
    });
    expect(await sha256AndSizeOfUrl(uploadUrl(ferry, id))).toEqual({ sha256: EMPTY_SHA256, bytes: 0 });
    await expectAssembled(ferry.prefix, id, 0);

    // The same through tus-js-client.
    const viaClient = await tusUpload(Buffer.alloc(0), { endpoint: `${ferry.url}/files/`, retryDelays: null });
    const clientId = uploadId(viaClient.url);
    expect(await sha256AndSizeOfUrl(uploadUrl(ferry, clientId))).toEqual({ sha256: EMPTY_SHA256, bytes: 0 });
    await expectAssembled(ferry.prefix, clientId, 0);
  }, 30_000);

  const cases: { name: string; file: () => RandomFile; chunkSize?: number; parts: number }[] = [
    { name: 'exactly 2 × part size (10 MiB) in one PATCH: two full parts, no tail', file: () => twoParts, parts: 2 },
    {
      name: 'exactly 2 × part size (10 MiB) in two 5 MiB PATCHes, each ending on a part boundary',
      file: () => twoParts,
      chunkSize: PART,
      parts: 2,
    },
    {
      name: '12 MiB + 777 in 5 MiB chunks: a final chunk (and last part) of 2 MiB + 777, smaller than the minimum part',
      file: () => medium,
      chunkSize: PART,
      parts: 3,
    },
    {
      name: '12 MiB + 777 in 1 MiB chunks: the last part is filled by three PATCHes',
      file: () => medium,
      chunkSize: MiB,
      parts: 3,
    },
    { name: '5 MiB + 1 in one PATCH: the last part is 1 byte', file: () => onePartPlusOne, parts: 2 },
    {
      name: '3 MiB + 5 in 1 MiB chunks: less than one part, stored as a single object',
      file: () => small,
      chunkSize: MiB,
      parts: 0,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: tus-js-client completes, the download matches the source sha256, and S3 holds one object assembled from ${c.parts || 'no'} part(s)`, async () => {
      const file = c.file();
      const { url } = await tusUpload(createReadStream(file.path), {
        endpoint: `${ferry.url}/files/`,
        retryDelays: null,
        ...(c.chunkSize !== undefined ? { chunkSize: c.chunkSize } : {}),
      });
      const id = uploadId(url);
      await expectStored(ferry, id, file);
      const { etag } = await expectAssembled(ferry.prefix, id, file.size);
      // S3's ETag of an object assembled from N parts ends in `-N`; a plain PUT has no suffix.
      if (c.parts === 0) expect(etag).not.toMatch(/-\d+"?$/);
      else expect(etag).toMatch(new RegExp(`-${c.parts}"?$`));
    }, 30_000);
  }

  it('GET with Range: bytes=100-5242979 (across the first part boundary) answers 206 with exactly that slice, and an open-ended range across the last part boundary too', async () => {
    const { url } = await tusUpload(createReadStream(medium.path), {
      endpoint: `${ferry.url}/files/`,
      retryDelays: null,
    });
    const id = uploadId(url);
    const slice = await getHashed(uploadUrl(ferry, id), { Range: 'bytes=100-5242979' });
    expect({
      status: slice.status,
      contentLength: slice.headers['content-length'],
      contentRange: slice.headers['content-range'],
      bytes: slice.bytes,
    }).toEqual({
      status: 206,
      contentLength: '5242880',
      contentRange: `bytes 100-5242979/${medium.size}`,
      bytes: 5_242_880,
    });
    expect(slice.sha256).toBe(await sha256File(medium.path, { start: 100, end: 5_242_980 }));

    const from = 2 * PART - 10;
    const tail = await getHashed(uploadUrl(ferry, id), { Range: `bytes=${from}-` });
    expect({ status: tail.status, contentRange: tail.headers['content-range'], bytes: tail.bytes }).toEqual({
      status: 206,
      contentRange: `bytes ${from}-${medium.size - 1}/${medium.size}`,
      bytes: medium.size - from,
    });
    expect(tail.sha256).toBe(await sha256File(medium.path, { start: from }));
  }, 30_000);

  it('a checksummed PATCH (sha1) whose bytes do not match is answered 460, the offset stays, and nothing of it reaches S3 (objects, open multipart uploads and their parts unchanged, no temp file left); the correct chunk is then accepted and the file matches its sha256', async () => {
    const source = await readFile(medium.path);
    const { url } = await tusCreate(ferry.url, medium.size);
    const id = uploadId(url);
    // 6 MiB stored: part 1 in a multipart upload, 1 MiB in a tail object.
    expect((await patchBuffer(url, 0, source.subarray(0, 6 * MiB))).status).toBe(204);
    const before = await snapshot(moto, `${ferry.prefix}uploads/${id}`);
    expect(Object.keys(before.multipart)).toHaveLength(1);
    expect(Object.keys(before.objects).some((k) => k.includes('.tail.'))).toBe(true);

    // 5 MiB that would complete part 2 and start part 3, with the checksum of other bytes.
    const chunk = source.subarray(6 * MiB, 11 * MiB);
    const corrupted = Buffer.from(chunk);
    corrupted[1234] = corrupted[1234]! ^ 0xff;
    const refused = await patchBuffer(url, 6 * MiB, corrupted, { 'Upload-Checksum': uploadChecksum('sha1', chunk) });
    expect(refused.status, refused.body).toBe(460);
    expect((await tusHead(url)).offset).toBe(6 * MiB);
    expect(await snapshot(moto, `${ferry.prefix}uploads/${id}`)).toEqual(before);
    expect(await spoolFiles(ferry.tempDir)).toEqual([]);

    const accepted = await patchBuffer(url, 6 * MiB, chunk, { 'Upload-Checksum': uploadChecksum('sha1', chunk) });
    expect(accepted.status, accepted.body).toBe(204);
    expect(accepted.headers['upload-offset']).toBe(String(11 * MiB));
    const rest = source.subarray(11 * MiB);
    expect((await patchBuffer(url, 11 * MiB, rest, { 'Upload-Checksum': uploadChecksum('sha1', rest) })).status).toBe(
      204,
    );
    await expectStored(ferry, id, medium);
    await expectAssembled(ferry.prefix, id, medium.size);
  }, 30_000);
});

describe('Ferry on S3: crashes', () => {
  it('an upload whose last stored part is partial (7 MiB: part 1 + a 2 MiB tail) survives a SIGKILL of Ferry: after the restart HEAD says 7 MiB, tus-js-client resumes in 3 MiB chunks, and the file matches its sha256 with no tail or open multipart upload left', async () => {
    const f = await startS3Ferry('restart');
    const { url } = await tusCreate(f.url, medium.size);
    const id = uploadId(url);
    const first = await tusPatchFile(url, medium.path, 0, 7 * MiB);
    expect(first.status).toBe(204);
    expect(first.offset).toBe(7 * MiB);
    // Part 1 went to a multipart upload; the 2 MiB of part 2 wait in a tail object.
    expect(await moto.listKeys(`${f.prefix}uploads/${id}`)).toContain(`${f.prefix}uploads/${id}.tail.2`);
    expect(await openMultipartKeys(moto, f.prefix)).toEqual([`${f.prefix}uploads/${id}`]);

    const again = await restartFerry(f, { env: f.env, signal: 'SIGKILL' });
    const head = await tusHead(uploadUrl(again, id));
    expect({ status: head.status, offset: head.offset, length: head.length }).toEqual({
      status: 200,
      offset: 7 * MiB,
      length: medium.size,
    });
    await tusUpload(createReadStream(medium.path), {
      uploadUrl: uploadUrl(again, id),
      chunkSize: 3 * MiB,
      retryDelays: null,
    });
    await expectStored(again, id, medium);
    await expectAssembled(f.prefix, id, medium.size);
    expect(await leftovers(moto, f.prefix)).toEqual(allKeysOfCompleted(f.prefix, id));
  }, 45_000);

  // S3BlobStore records a multipart upload's id in its state object before sending any part, so a
  // process killed mid-PATCH leaves no multipart upload nobody knows of: the restarted Ferry goes on
  // with the same one (an earlier version recorded the id only when the append ended, and the
  // killed process's multipart upload stayed open, and billed, forever).
  it('SIGKILL of Ferry in the middle of a PATCH after part 1 went to S3: the client resumes and the file matches its sha256, and once complete no multipart upload is left open under the prefix (the killed one is aborted or reused)', async () => {
    const f = await startS3Ferry('crash-multipart');
    const { again, id, killedMultipart, offsetAfterRestart } = await crashMidPatchAfterAPart(f, medium);
    console.log(
      `[s3] after SIGKILL mid-PATCH: offset ${offsetAfterRestart}; open multipart uploads now: ` +
        JSON.stringify(await moto.listMultipartUploads()),
    );
    expect(again.isRunning()).toBe(true);
    expect(
      (await moto.listMultipartUploads()).filter((u) => u.uploadId === killedMultipart),
      'the multipart upload of the killed process',
    ).toEqual([]);
    expect(await leftovers(moto, f.prefix)).toEqual(allKeysOfCompleted(f.prefix, id));
  }, 45_000);

  // Part buffers of a killed process would fill the volume of a crash-looping replica: each instance
  // keeps its buffers in a directory of its own with a heartbeat, and a restarted Ferry removes
  // directories whose heartbeat stopped (within about 20 s).
  it('SIGKILL of Ferry in the middle of a PATCH leaves no part buffer behind in FERRY_S3_TEMP_DIR: the restarted Ferry removes the dead instance’s buffers', async () => {
    const f = await startS3Ferry('crash-temp');
    await crashMidPatchAfterAPart(f, medium);
    await expect.poll(() => spoolFiles(f.tempDir), { timeout: 40_000, interval: 1000 }).toEqual([]);
  }, 90_000);
});

describe('Ferry on S3: a crash while a finished upload is assembled', () => {
  // The last append writes the state with all bytes counted and only then is the object assembled
  // (PutObject of the tail, or CompleteMultipartUpload). A crash in between left an upload that HEAD
  // called complete but whose object did not exist; now the first look at such an upload (the
  // client's HEAD after the restart) finishes it, and finishing is idempotent.
  const variants = [
    {
      name: 'an upload smaller than a part (assembled by one PutObject of the tail)',
      file: () => small,
      assembling: (req: IncomingMessage, key: RegExp) => req.method === 'PUT' && isFinalKey(req, key, false),
    },
    {
      name: 'a 12 MiB upload (assembled by CompleteMultipartUpload)',
      file: () => medium,
      assembling: (req: IncomingMessage, key: RegExp) => req.method === 'POST' && isFinalKey(req, key, true),
    },
  ];
  for (const v of variants) {
    it(`${v.name}: SIGKILL of Ferry while it assembles the object after the last PATCH; after the restart tus-js-client resumes on the upload URL and the download matches the source sha256`, async () => {
      const file = v.file();
      const name = `assemble-${file.size}`;
      const key = new RegExp(`^/${moto.bucket}/${BASE}-${name}/uploads/[A-Za-z0-9_-]+$`);
      const gate = await startGatedS3Proxy(moto.port, (req) => v.assembling(req, key));
      gates.push(gate);
      const f = await startS3Ferry(name, { FERRY_S3_ENDPOINT: gate.endpoint });
      const { url } = await tusCreate(f.url, file.size);
      const id = uploadId(url);
      const last = tusPatchFile(url, file.path, 0).catch((error: unknown) => error as Error);
      const held = await gate.held;
      await f.kill();
      gate.dropHeld();
      expect(await last).toBeInstanceOf(Error);

      const again = await restartFerry(f, { env: f.env });
      const head = await tusHead(uploadUrl(again, id));
      console.log(
        `[s3] killed while ${held} was held; after the restart HEAD says ${head.status} offset ${head.offset} of ${head.length}; ` +
          `keys: ${JSON.stringify(await leftovers(moto, f.prefix))}`,
      );
      await tusUpload(createReadStream(file.path), {
        uploadUrl: uploadUrl(again, id),
        chunkSize: 4 * MiB,
        retryDelays: null,
      });
      // tus-js-client is done (it trusts HEAD); the file must now be there.
      const got = await getHashed(uploadUrl(again, id)).catch((error: unknown) => ({ error: String(error) }));
      if ('error' in got) {
        await sleep(200);
        console.log(`[s3] GET failed; Ferry running: ${again.isRunning()}; log:\n${again.logs().slice(-1500)}`);
      }
      expect(got, `GET /files/${id} after tus-js-client finished`).toMatchObject({
        status: 200,
        sha256: file.sha256,
        bytes: file.size,
      });
      await expectAssembled(f.prefix, id, file.size);
    }, 45_000);
  }
});

describe('Ferry on S3: nothing stays behind after DELETE', () => {
  let f: S3Ferry;
  beforeAll(async () => {
    f = await startS3Ferry('delete');
  });

  const unfinished: { name: string; bytes: number; multipart: boolean; tail?: number }[] = [
    { name: 'created, no bytes', bytes: 0, multipart: false },
    {
      name: '3 MiB + 5 stored (a tail object only, below the minimum part size)',
      bytes: 3 * MiB + 5,
      multipart: false,
      tail: 1,
    },
    {
      name: '7 MiB stored (part 1 in an open multipart upload, a 2 MiB tail object)',
      bytes: 7 * MiB,
      multipart: true,
      tail: 2,
    },
  ];
  for (const c of unfinished) {
    it(`DELETE of an unfinished upload (${c.name}) answers 204 and leaves nothing under the prefix: no object, no open multipart upload`, async () => {
      const { url } = await tusCreate(f.url, medium.size);
      const id = uploadId(url);
      if (c.bytes > 0) expect((await tusPatchFile(url, medium.path, 0, c.bytes)).offset).toBe(c.bytes);
      expect(await openMultipartKeys(moto, f.prefix)).toHaveLength(c.multipart ? 1 : 0);
      const base = `${f.prefix}uploads/${id}`;
      expect(await moto.listKeys(f.prefix)).toEqual([
        fileRecordKey(f.prefix, id),
        `${base}.blob.json`,
        `${base}.json`,
        ...(c.tail !== undefined ? [`${base}.tail.${c.tail}`] : []),
      ]);

      const del = await httpRequest('DELETE', url, { 'Tus-Resumable': '1.0.0' });
      expect(del.status, del.body).toBe(204);
      expect((await tusHead(url)).status).toBe(404);
      expect(await leftovers(moto, f.prefix)).toEqual([]);
    }, 30_000);
  }

  it('a completed upload keeps exactly files/<id>.json, uploads/<id>, uploads/<id>.blob.json and uploads/<id>.json under the prefix; its DELETE answers 204, GET is 404 and nothing is left', async () => {
    const { url } = await tusUpload(createReadStream(medium.path), {
      endpoint: `${f.url}/files/`,
      chunkSize: 4 * MiB,
      retryDelays: null,
    });
    const id = uploadId(url);
    await expectStored(f, id, medium);
    expect(await leftovers(moto, f.prefix)).toEqual(allKeysOfCompleted(f.prefix, id));

    const del = await httpRequest('DELETE', uploadUrl(f, id), { 'Tus-Resumable': '1.0.0' });
    expect(del.status, del.body).toBe(204);
    expect((await httpRequest('GET', uploadUrl(f, id))).status).toBe(404);
    expect((await tusHead(uploadUrl(f, id))).status).toBe(404);
    expect(await leftovers(moto, f.prefix)).toEqual([]);
  }, 30_000);
});

describe('Ferry on S3: another app in the same bucket', () => {
  it('the objects and the open multipart uploads (with their parts) of another app, outside Ferry’s prefix — including Ferry-like keys at the bucket root and keys that merely start with the prefix’s characters — are untouched by every upload, refusal, crash, restart and DELETE above', async () => {
    const now = await foreignSnapshot();
    expect(Object.keys(now.objects).sort()).toEqual([...FOREIGN_OBJECTS].sort());
    expect(
      Object.keys(now.multipart)
        .map((k) => k.split(' ')[0])
        .sort(),
    ).toEqual([...FOREIGN_MULTIPART].sort());
    expect(now).toEqual(foreignBefore);
  });
});
