import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobStore, ByteRange } from '../../src/core/ports.js';
import { newUploadId } from '../../src/core/uploads/upload-id.js';

export interface BlobStoreUnderTest {
  readonly store: BlobStore;
  /**
   * Everything the store keeps, by name (files in its directory; object keys and open multipart
   * uploads in its bucket). When given, the contract checks that removing every blob leaves nothing.
   */
  leftovers?(): Promise<string[]>;
  close(): Promise<void>;
}

export interface BlobStoreContractOptions {
  /**
   * The store keeps every byte it had read from a body before the body failed (disk). Without it the
   * contract asks only that the size reported afterwards lies between the old size and the old size
   * plus what was sent, and that the bytes up to that size are the bytes that were sent.
   */
  readonly keepsEveryByteOfAFailedBody?: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
/** S3's smallest non-last multipart part; the sizes below cross it (and its multiples) on purpose. */
const PART = 5 * MiB;

/** The bytes uploads are made of: blob content is always a prefix of DATA, so it is easy to check. */
const DATA = randomBytes(12 * MiB);
/** Bytes that must never become part of a blob (refused or failed tentative appends). */
const OTHER = randomBytes(6 * MiB);

/**
 * The contract every BlobStore passes (disk now, S3 next), written against the doc comments of the
 * port in src/core/ports.ts. Sizes cross 5 MiB boundaries so that a store assembling S3 multipart
 * parts is exercised at and around its part size; every byte read back is checked (SHA-256).
 * `make` is called once per test and should return an empty store of its own.
 */
export function blobStoreContract(
  name: string,
  make: () => Promise<BlobStoreUnderTest>,
  options: BlobStoreContractOptions = {},
) {
  describe(`BlobStore contract: ${name}`, () => {
    let current: BlobStoreUnderTest | undefined;
    const setup = async () => (current = await make());
    afterEach(async () => {
      await current?.close();
      current = undefined;
    });

    /** Appends DATA[offset, offset + size) and checks the size returned and the size stat reports. */
    async function appendData(store: BlobStore, id: string, offset: number, size: number, chunkSize = 64 * KiB) {
      const newSize = await store.append(id, offset, bodyOf(DATA.subarray(offset, offset + size), chunkSize));
      expect(newSize).toBe(offset + size);
      expect((await store.stat(id))?.size).toBe(offset + size);
      return newSize;
    }

    /** Finishes the blob and checks that it holds DATA[0, size), as a whole and in `ranges`. */
    async function expectFinishedContent(store: BlobStore, id: string, size: number, ranges: ByteRange[] = []) {
      await store.finish(id);
      expect((await store.stat(id))?.size).toBe(size);
      expect(digest(await readAll(store.read(id)))).toEqual(digest(DATA.subarray(0, size)));
      for (const range of ranges) {
        expect({ range, ...digest(await readAll(store.read(id, range))) }).toEqual({
          range,
          ...digest(DATA.subarray(range.start, range.end + 1)),
        });
      }
    }

    async function expectNothingLeftAfterRemoving(under: BlobStoreUnderTest, ids: string[]) {
      for (const id of ids) await under.store.remove(id);
      for (const id of ids) expect(await under.store.stat(id)).toBeUndefined();
      if (under.leftovers) expect(await under.leftovers()).toEqual([]);
    }

    it('creates an empty blob; stat of an unknown id is undefined', async () => {
      const { store } = await setup();
      const id = newUploadId();
      expect(await store.stat(id)).toBeUndefined();
      const before = Date.now();
      await store.create(id);
      const stat = await store.stat(id);
      expect(stat?.size).toBe(0);
      expect(stat?.modifiedAt).toBeInstanceOf(Date);
      expectRecent(stat!.modifiedAt, before);
      expect(await store.stat(newUploadId())).toBeUndefined();
    });

    it('refuses to create a blob that exists, and leaves it as it was', async () => {
      const { store } = await setup();
      const id = newUploadId();
      await store.create(id);
      await expect(store.create(id)).rejects.toThrow();
      await appendData(store, id, 0, 1000);
      await expect(store.create(id)).rejects.toThrow();
      expect((await store.stat(id))?.size).toBe(1000);
      await expectFinishedContent(store, id, 1000);
    });

    it('appends bodies of irregular sizes across 5 MiB boundaries and reads back every byte and range', async () => {
      const { store } = await setup();
      const id = newUploadId();
      await store.create(id);
      const before = Date.now();
      // [size, chunk size of the body]: one byte, a small append, one byte past a part as one chunk,
      // odd-sized chunks, a few bytes, and the rest: 12 MiB in all, crossing 5 and 10 MiB.
      const appends: [number, number][] = [
        [1, 1],
        [100 * KiB, 16 * KiB],
        [PART + 1, PART + 1],
        [3 * MiB, 65_537],
        [7, 7],
      ];
      let offset = 0;
      for (const [size, chunkSize] of appends) offset = await appendData(store, id, offset, size, chunkSize);
      offset = await appendData(store, id, offset, DATA.length - offset);
      expect(offset).toBe(12 * MiB);
      expectRecent((await store.stat(id))!.modifiedAt, before);
      await expectFinishedContent(store, id, offset, [
        { start: 0, end: 0 },
        { start: 0, end: offset - 1 },
        { start: offset - 1, end: offset - 1 },
        { start: PART - 1, end: PART },
        { start: PART - 100, end: 2 * PART + 100 },
        { start: 1, end: PART + 1 },
        { start: 2 * PART, end: offset - 1 },
      ]);
    });

    it('takes many small appends that together pass 5 MiB', async () => {
      const { store } = await setup();
      const id = newUploadId();
      await store.create(id);
      let offset = 0;
      // 24 appends of 215 to 238 kB: 5.4 MB, no append on a part boundary.
      for (let n = 0; n < 24; n++) offset = await appendData(store, id, offset, 215_000 + n * 997);
      expect(offset).toBeGreaterThan(PART);
      await expectFinishedContent(store, id, offset, [
        { start: PART - 3, end: PART + 3 },
        { start: 214_990, end: 215_010 },
        { start: offset - 10, end: offset - 1 },
      ]);
    });

    it('stores and reads an empty blob', async () => {
      const { store } = await setup();
      const id = newUploadId();
      await store.create(id);
      await store.finish(id);
      expect((await store.stat(id))?.size).toBe(0);
      expect((await readAll(store.read(id))).length).toBe(0);
    });

    it('an append of an empty body changes nothing', async () => {
      const { store } = await setup();
      const id = newUploadId();
      await store.create(id);
      expect(await store.append(id, 0, bodyOf(Buffer.alloc(0)))).toBe(0);
      await appendData(store, id, 0, 10);
      expect(await store.append(id, 10, bodyOf(Buffer.alloc(0)))).toBe(10);
      await expectFinishedContent(store, id, 10);
    });

    it('keeps blobs apart', async () => {
      const { store } = await setup();
      const [a, b] = [newUploadId(), newUploadId()];
      await store.create(a);
      await store.create(b);
      await appendData(store, a, 0, 3 * MiB);
      await appendData(store, b, 0, 10);
      await appendData(store, a, 3 * MiB, 3 * MiB);
      await appendData(store, b, 10, 20);
      await expectFinishedContent(store, a, 6 * MiB);
      await expectFinishedContent(store, b, 30);
    });

    describe('a body that fails midway', () => {
      /**
       * The port: "Bytes that arrived before the stream failed are kept: the caller learns the new
       * size from stat". So append rejects, stat reports a size from `old` to `old + sent`, the bytes
       * up to it are the bytes sent, and appending from it goes on as if the body had been shorter.
       */
      async function failThenResume(old: number, sent: number, total: number) {
        const under = await setup();
        const { store } = under;
        const id = newUploadId();
        await store.create(id);
        if (old > 0) await appendData(store, id, 0, old);
        await expect(store.append(id, old, failingBody(DATA.subarray(old, old + sent)))).rejects.toThrow(
          'connection reset',
        );
        const kept = (await store.stat(id))?.size;
        expect(kept).toBeGreaterThanOrEqual(old);
        expect(kept).toBeLessThanOrEqual(old + sent);
        if (options.keepsEveryByteOfAFailedBody) expect(kept).toBe(old + sent);
        await appendData(store, id, kept!, total - kept!);
        await expectFinishedContent(store, id, total, [{ start: old - 1 > 0 ? old - 1 : 0, end: old + 1 }]);
        await expectNothingLeftAfterRemoving(under, [id]);
      }

      it('as the first append, small: keeps what arrived and resumes from stat', async () => {
        await failThenResume(0, 100 * KiB + 3, 200 * KiB);
      });

      it('crossing 5 MiB after 3 MiB were stored: keeps what arrived and resumes from stat', async () => {
        await failThenResume(3 * MiB, 4 * MiB, 9 * MiB);
      });

      it('just past a part of 5 MiB: keeps what arrived and resumes from stat', async () => {
        await failThenResume(PART, 1000, PART + 5000);
      });
    });

    describe('appendTentatively', () => {
      it('keeps the bytes when accepted, asking only once the body has ended', async () => {
        const under = await setup();
        const { store } = under;
        const id = newUploadId();
        await store.create(id);
        await appendData(store, id, 0, MiB);
        const body = bodyOf(DATA.subarray(MiB, 2 * MiB + PART + 1));
        const asked: boolean[] = [];
        const size = await store.appendTentatively(id, MiB, body, () => {
          asked.push(body.readableEnded);
          return true;
        });
        expect(size).toBe(2 * MiB + PART + 1);
        expect(asked.length).toBeGreaterThanOrEqual(1);
        expect(asked.every((ended) => ended)).toBe(true);
        expect((await store.stat(id))?.size).toBe(size);
        await appendData(store, id, size, 100);
        await expectFinishedContent(store, id, size + 100, [{ start: MiB - 1, end: MiB }]);
        await expectNothingLeftAfterRemoving(under, [id]);
      });

      it('cuts a refused append back to the old size, on an empty blob and across 5 MiB', async () => {
        const under = await setup();
        const { store } = under;
        const id = newUploadId();
        await store.create(id);
        expect(await store.appendTentatively(id, 0, bodyOf(OTHER.subarray(0, 1000)), () => false)).toBe(0);
        expect((await store.stat(id))?.size).toBe(0);
        await appendData(store, id, 0, 3 * MiB);
        expect(await store.appendTentatively(id, 3 * MiB, bodyOf(OTHER.subarray(0, 3 * MiB)), () => false)).toBe(
          3 * MiB,
        );
        expect((await store.stat(id))?.size).toBe(3 * MiB);
        // An accepted tentative append after a refused one.
        expect(await store.appendTentatively(id, 3 * MiB, bodyOf(DATA.subarray(3 * MiB, 4 * MiB)), () => true)).toBe(
          4 * MiB,
        );
        await appendData(store, id, 4 * MiB, 10);
        await expectFinishedContent(store, id, 4 * MiB + 10, [{ start: 3 * MiB - 2, end: 3 * MiB + 2 }]);
        await expectNothingLeftAfterRemoving(under, [id]);
      });

      it('cuts back to the old size and rejects when the body fails', async () => {
        const under = await setup();
        const { store } = under;
        const id = newUploadId();
        await store.create(id);
        await expect(store.appendTentatively(id, 0, failingBody(OTHER.subarray(0, 1000)), () => true)).rejects.toThrow(
          'connection reset',
        );
        expect((await store.stat(id))?.size).toBe(0);
        await appendData(store, id, 0, 4 * MiB);
        await expect(
          store.appendTentatively(id, 4 * MiB, failingBody(OTHER.subarray(0, 2 * MiB)), () => true),
        ).rejects.toThrow('connection reset');
        expect((await store.stat(id))?.size).toBe(4 * MiB);
        await appendData(store, id, 4 * MiB, 2 * MiB);
        await expectFinishedContent(store, id, 6 * MiB, [{ start: 4 * MiB - 1, end: 4 * MiB }]);
        await expectNothingLeftAfterRemoving(under, [id]);
      });

      it('reports the old size while undecided, also with more than 5 MiB arrived', async () => {
        const { store } = await setup();
        const id = newUploadId();
        await store.create(id);
        await appendData(store, id, 0, MiB);
        const body = new Readable({ read() {} });
        const appending = store.appendTentatively(id, MiB, body, () => true);
        for (const chunk of chunks(DATA.subarray(MiB, 7 * MiB), 64 * KiB)) body.push(chunk);
        await drained(body);
        const sizeMeanwhile = (await store.stat(id))?.size;
        body.push(null);
        expect(await appending).toBe(7 * MiB);
        expect(sizeMeanwhile).toBe(MiB);
        expect((await store.stat(id))?.size).toBe(7 * MiB);
        await expectFinishedContent(store, id, 7 * MiB);
      });
    });

    it('removes blobs, finished or not; removing a missing blob is no error', async () => {
      const under = await setup();
      const { store } = under;
      const [open, finished, empty] = [newUploadId(), newUploadId(), newUploadId()];
      for (const id of [open, finished, empty]) await store.create(id);
      await appendData(store, open, 0, PART + 1);
      await appendData(store, finished, 0, 1000);
      await store.finish(finished);
      await store.remove(open);
      expect(await store.stat(open)).toBeUndefined();
      expect(await store.stat(finished)).toBeDefined();
      await expect(store.remove(open)).resolves.toBeUndefined();
      await expect(store.remove(newUploadId())).resolves.toBeUndefined();
      await expectNothingLeftAfterRemoving(under, [finished, empty]);
    });

    it('is ready', async () => {
      const { store } = await setup();
      await expect(store.checkReady()).resolves.toBeUndefined();
    });
  });
}

function* chunks(bytes: Buffer, chunkSize: number): Generator<Buffer> {
  for (let at = 0; at < bytes.length; at += chunkSize) yield bytes.subarray(at, at + chunkSize);
}

/** A byte stream (not object mode, as an HTTP request body) delivering `bytes` in `chunkSize` pieces. */
function bodyOf(bytes: Buffer, chunkSize = 64 * KiB): Readable {
  const pieces = chunks(bytes, chunkSize);
  return new Readable({
    read() {
      const next = pieces.next();
      this.push(next.done ? null : next.value);
    },
  });
}

/**
 * Delivers `bytes`, waits until the consumer has taken all of them, then fails as a dropped
 * connection does (`connection reset`).
 */
function failingBody(bytes: Buffer): Readable {
  const pieces = chunks(bytes, 64 * KiB);
  let failing = false;
  const body = new Readable({
    read() {
      const next = pieces.next();
      if (!next.done) {
        this.push(next.value);
        return;
      }
      if (failing) return;
      failing = true;
      void drained(body).then(() => body.destroy(new Error('connection reset')));
    },
  });
  return body;
}

/** Resolves once `body` holds no unread bytes (the consumer has them), plus a moment to use them. */
async function drained(body: Readable, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (body.readableLength > 0 && Date.now() < deadline) await sleep(5);
  await sleep(30);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

function digest(bytes: Buffer): { size: number; sha256: string } {
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** `modifiedAt` is about now: S3 keeps whole seconds, so allow some slack either way. */
function expectRecent(modifiedAt: Date, notBefore: number): void {
  expect(Number.isNaN(modifiedAt.getTime())).toBe(false);
  expect(modifiedAt.getTime()).toBeGreaterThanOrEqual(notBefore - 2000);
  expect(modifiedAt.getTime()).toBeLessThanOrEqual(Date.now() + 2000);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
