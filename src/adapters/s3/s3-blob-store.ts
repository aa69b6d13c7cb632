import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, stat as statFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { crc32 } from '@node-rs/crc32';
import type { BlobStat, BlobStore, ByteRange } from '../../core/ports.js';
import { MemoryBudget, PartBuffers, type PartBuffer } from './part-buffers.js';

export interface S3BlobStoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** Every object Ferry writes lives under this prefix ('' or ending in '/'). */
  readonly prefix: string;
  /** Size of every multipart part but the last; at least 5 MiB (S3's minimum). */
  readonly partSize: number;
  /** Parts of one append uploaded at the same time. */
  readonly concurrency: number;
  /** Where parts are buffered before they are sent when memory is short: (concurrency + 1) × part size per append at most. */
  readonly tempDir: string;
  /** Bytes of parts held in memory by all appends together; parts beyond it go to `tempDir`. 0: always disk. */
  readonly memoryBuffer?: number;
  /** Attempts per part upload (each from the buffered file, so a retry re-sends the same bytes). */
  readonly partAttempts?: number;
  /**
   * Send a CRC-32 with every part and object (`x-amz-checksum-crc32`, computed as the bytes arrive),
   * so S3 refuses bytes damaged on the way; on by default. Off for S3-compatible servers that reject
   * checksum headers.
   */
  readonly checksums?: boolean;
}

/** The longest stretch of a request's parts a crash can cost on S3 (see the checkpoints in appendFrom). */
const CHECKPOINT_EVERY_MS = 1000;
const HEARTBEAT = '.alive';
const HEARTBEAT_EVERY_MS = 5_000;
/** A buffer directory whose heartbeat missed this many beats belongs to a process that is gone. */
const STALE_AFTER_MS = 4 * HEARTBEAT_EVERY_MS;

/** An uploaded part: its number, S3's ETag and, for a checksummed multipart upload, its CRC-32 (base64). */
interface StoredPart {
  readonly number: number;
  readonly etag: string;
  readonly crc32?: string;
}

/** What the store knows of one blob, kept as `<key>.blob.json` beside the bytes. */
interface BlobState {
  readonly size: number;
  readonly finished: boolean;
  readonly multipartUploadId?: string;
  /**
   * The multipart upload was started with `ChecksumAlgorithm: CRC32`: each of its parts, and the list
   * that completes it, must carry the part's CRC-32. False or absent (an upload begun by a version
   * before checksums) for one started without: its parts then go without, whatever the setting.
   */
  readonly checksummed?: boolean;
  readonly parts: readonly StoredPart[];
}

/**
 * Upload bytes in S3 (or an S3-compatible server) as one multipart upload per blob, under Ferry's
 * prefix only: `uploads/<id>` (the object, once finished), `uploads/<id>.tail.<n>` (bytes of part n
 * that is not full yet), `uploads/<id>.blob.json` (the state above).
 *
 * Every part but the last has exactly `partSize` bytes, so part n always covers the same byte range:
 * a part uploaded just before a crash, and then sent again by the resuming client, simply replaces
 * itself. The tail of part n is rewritten in place as it grows (its first bytes never change), and
 * the state object is written last, so after a crash the blob is as the last state says. Parts are
 * buffered whole (in memory within the process's budget, in files beyond it, see PartBuffers) and
 * uploaded with a known length; a failed attempt is retried from the buffer.
 */
export class S3BlobStore implements BlobStore {
  private readonly partAttempts: number;
  private readonly checksums: boolean;
  private readonly spoolDir: string;
  private readonly partBuffers: PartBuffers;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly options: S3BlobStoreOptions) {
    this.spoolDir = path.join(options.tempDir, `run-${randomUUID()}`);
    if (options.partSize < 5 * 1024 * 1024) throw new Error('S3 part size must be at least 5 MiB');
    this.partAttempts = options.partAttempts ?? 4;
    this.checksums = options.checksums ?? true;
    this.partBuffers = new PartBuffers(new MemoryBudget(options.memoryBuffer ?? 0), options.partSize, this.spoolDir);
  }

  /**
   * Buffers live in a directory of this instance's own under `tempDir`, with a heartbeat file touched
   * every few seconds. Directories whose heartbeat stopped (a process that crashed, a container that
   * restarted on the same volume) are removed at start and then every few seconds, so a crashing
   * replica cannot fill the volume; live siblings sharing the volume keep beating and are left alone.
   */
  async init(): Promise<void> {
    await mkdir(this.spoolDir, { recursive: true });
    await writeFile(path.join(this.spoolDir, HEARTBEAT), '');
    await this.removeAbandonedSpoolDirs();
    this.heartbeat = setInterval(() => {
      const now = new Date();
      void utimes(path.join(this.spoolDir, HEARTBEAT), now, now)
        .then(() => this.removeAbandonedSpoolDirs())
        .catch(() => undefined);
    }, HEARTBEAT_EVERY_MS);
    this.heartbeat.unref();
  }

  private async removeAbandonedSpoolDirs(): Promise<void> {
    for (const name of await readdir(this.options.tempDir)) {
      const dir = path.join(this.options.tempDir, name);
      if (!name.startsWith('run-') || dir === this.spoolDir) continue;
      const beat = await statFile(path.join(dir, HEARTBEAT)).catch(() => undefined);
      if (!beat || Date.now() - beat.mtimeMs > STALE_AFTER_MS) await rm(dir, { recursive: true, force: true });
    }
  }

  /** Stops the heartbeat and removes this instance's buffers. */
  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await rm(this.spoolDir, { recursive: true, force: true });
  }

  async create(id: string): Promise<void> {
    if (await this.readState(id)) throw new Error(`blob ${id} exists already`);
    await this.writeState(id, { size: 0, finished: false, parts: [] });
  }

  async append(id: string, offset: number, body: Readable): Promise<number> {
    const state = await this.requireState(id);
    if (state.finished) throw new Error(`blob ${id} is finished`);
    if (state.size !== offset) throw new Error(`append to blob ${id} at ${offset}, but it holds ${state.size} bytes`);
    return this.appendFrom(id, state, body);
  }

  async appendTentatively(id: string, offset: number, body: Readable, accept: () => boolean): Promise<number> {
    // Nothing reaches S3 until the whole body is in and accepted: a refused or cut chunk leaves no trace.
    const spool = path.join(this.spoolDir, `${randomUUID()}.chunk`);
    try {
      await pipeline(body, createWriteStream(spool));
      if (!accept()) return offset;
      return await this.append(id, offset, createReadStream(spool));
    } finally {
      await rm(spool, { force: true });
    }
  }

  async finish(id: string): Promise<void> {
    const state = await this.requireState(id);
    if (state.finished) return;
    const tailBytes = state.size - state.parts.length * this.options.partSize;
    const finalKey = this.keyOf(id);
    if (state.parts.length === 0) {
      // Small enough for one request (also the empty blob): no multipart upload needed.
      const body = tailBytes > 0 ? await this.readTail(id, state.parts.length + 1, tailBytes) : Buffer.alloc(0);
      await this.options.client.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: finalKey,
          Body: body,
          ContentLength: body.length,
          ...this.checksumOf(() => crc32(body)),
        }),
      );
      if (state.multipartUploadId) await this.abortMultipart(id, state.multipartUploadId);
    } else {
      const uploadId = state.multipartUploadId!;
      const checksummed = state.checksummed === true;
      const parts = [...state.parts];
      if (tailBytes > 0) {
        const number = parts.length + 1;
        const body = await this.readTail(id, number, tailBytes);
        const checksum = checksummed ? crc32Base64(crc32(body)) : undefined;
        const etag = await this.uploadPart(finalKey, uploadId, number, () => body, body.length, checksum);
        parts.push({ number, etag, crc32: checksum });
      }
      try {
        await this.options.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.options.bucket,
            Key: finalKey,
            UploadId: uploadId,
            MultipartUpload: {
              Parts: parts.map((part) => ({
                PartNumber: part.number,
                ETag: part.etag,
                ChecksumCRC32: part.crc32,
              })),
            },
          }),
        );
      } catch (error) {
        // Two replicas may finish the same blob at once (one after its last PATCH, one repairing on
        // a HEAD); whoever comes second finds the multipart upload gone and the object in place.
        if ((error as { name?: string }).name !== 'NoSuchUpload' || !(await this.objectExists(finalKey))) throw error;
      }
    }
    await this.writeState(id, { size: state.size, finished: true, parts: [] });
    await this.deleteKeys(await this.listKeys(id, (key) => key.includes('.tail.')));
  }

  async stat(id: string): Promise<BlobStat | undefined> {
    const found = await this.readStateWithTime(id);
    if (!found) return undefined;
    return { size: found.state.size, modifiedAt: found.modifiedAt, finished: found.state.finished };
  }

  read(id: string, range?: ByteRange): Readable {
    const out = new PassThrough();
    this.options.client
      .send(
        new GetObjectCommand({
          Bucket: this.options.bucket,
          Key: this.keyOf(id),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      )
      .then((response) => pipeline(response.Body as Readable, out))
      .catch((error: unknown) => out.destroy(error as Error));
    return out;
  }

  async remove(id: string): Promise<void> {
    const state = await this.readState(id);
    if (state?.multipartUploadId && !state.finished) await this.abortMultipart(id, state.multipartUploadId);
    // The state object goes last, so a remove cut short is found and finished by the next one.
    const keys = await this.listKeys(id, () => true);
    const stateKey = this.stateKeyOf(id);
    await this.deleteKeys(keys.filter((key) => key !== stateKey));
    await this.deleteKeys([stateKey]);
  }

  /** A one-key listing of Ferry's own prefix: works with IAM that allows listing only that prefix. */
  async checkReady(): Promise<void> {
    await this.options.client.send(
      new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: `${this.options.prefix}uploads/`, MaxKeys: 1 }),
    );
  }

  /** Streams `body` into full parts (uploaded `concurrency` at a time) and the tail of the next one. */
  private async appendFrom(id: string, state: BlobState, body: Readable): Promise<number> {
    const { partSize } = this.options;
    const finalKey = this.keyOf(id);
    let multipartUploadId = state.multipartUploadId;
    let checksummed = state.checksummed === true;
    const parts = [...state.parts];
    let partNumber = parts.length + 1;
    let filled = state.size - parts.length * partSize;
    let received = 0;
    const uploads = new Set<Promise<void>>();
    let failure: unknown;

    // The part being filled is buffered (in memory or a file), starting with the tail already stored.
    let spool = await this.openSpool(id, partNumber, filled);

    // Checkpoints: the state advances over the parts uploaded without a gap, so a crash in the middle
    // of a long request keeps the full parts that reached S3; the client re-sends the rest. At most
    // one checkpoint a second: each is a request, and on a fast link that would be one per part.
    let checkpoint: Promise<void> = Promise.resolve();
    let checkpointed = parts.length;
    let lastCheckpointAt = Date.now();
    let deferredCheckpoint: NodeJS.Timeout | undefined;
    const advanceCheckpoint = () => {
      const wait = CHECKPOINT_EVERY_MS - (Date.now() - lastCheckpointAt);
      if (wait > 0) {
        // Too soon after the last one: catch up later, also if the body stalls meanwhile.
        deferredCheckpoint ??= setTimeout(() => {
          deferredCheckpoint = undefined;
          advanceCheckpoint();
        }, wait);
        return;
      }
      lastCheckpointAt = Date.now();
      checkpoint = checkpoint.then(async () => {
        let contiguous = checkpointed;
        while (parts.some((part) => part.number === contiguous + 1)) contiguous += 1;
        if (contiguous === checkpointed) return;
        checkpointed = contiguous;
        const done = parts.filter((part) => part.number <= contiguous).sort((a, b) => a.number - b.number);
        await this.writeState(id, {
          size: contiguous * partSize,
          finished: false,
          parts: done,
          multipartUploadId,
          checksummed,
        });
      });
      // A checkpoint that fails only costs a re-send after a crash; the final state is written anyway.
      checkpoint = checkpoint.catch(() => undefined);
    };

    const flushPart = async (part: PartBuffer, number: number) => {
      if (!multipartUploadId) {
        checksummed = this.checksums;
        multipartUploadId = await this.startMultipart(finalKey, checksummed);
        // Recorded before any part is sent, so no crash can leave a multipart upload nobody knows of.
        await this.writeState(id, { ...state, multipartUploadId, checksummed });
      }
      const uploadId = multipartUploadId;
      const checksum = checksummed ? crc32Base64(part.crc32) : undefined;
      const upload = this.uploadPart(finalKey, uploadId, number, () => part.body(), part.bytes, checksum)
        .then((etag) => {
          parts.push({ number, etag, crc32: checksum });
          advanceCheckpoint();
        })
        .catch((error: unknown) => {
          failure ??= error;
        })
        .finally(() => {
          uploads.delete(upload);
          void part.discard();
        });
      uploads.add(upload);
      if (uploads.size >= this.options.concurrency) await Promise.race(uploads);
    };

    // The write in progress when the body fails must be over before the blob is settled.
    let inFlight: Promise<void> = Promise.resolve();
    const sink = new Writable({
      highWaterMark: 1024 * 1024,
      write: (chunk: Buffer, _encoding, callback) => {
        inFlight = (async () => {
          let rest = chunk;
          while (rest.length > 0) {
            const room = partSize - filled;
            const piece = rest.subarray(0, room);
            rest = rest.subarray(piece.length);
            await spool.write(piece);
            filled += piece.length;
            received += piece.length;
            if (filled === partSize) {
              await spool.close();
              await flushPart(spool, partNumber);
              if (failure) throw failure;
              partNumber += 1;
              filled = 0;
              spool = await this.openSpool(id, partNumber, 0);
            }
          }
        })();
        inFlight.then(() => callback(), callback);
      },
    });

    let bodyError: unknown;
    try {
      await pipeline(body, sink);
    } catch (error) {
      // Bytes that arrived before the body failed are kept, as on disk: store them, then report.
      bodyError = error;
    }
    await inFlight.catch((error: unknown) => (failure ??= error));
    await spool.close();
    await Promise.all(uploads);
    clearTimeout(deferredCheckpoint);
    await checkpoint;
    if (failure) {
      await spool.discard();
      throw failure;
    }
    try {
      if (filled > 0) await this.putTail(id, partNumber, spool, filled);
    } finally {
      await spool.discard();
    }
    parts.sort((a, b) => a.number - b.number);
    const size = state.size + received;
    await this.writeState(id, {
      size,
      finished: false,
      parts,
      ...(multipartUploadId ? { multipartUploadId } : {}),
      checksummed,
    });
    // The previous tail (if there was one) belonged to a part that is now uploaded in full.
    const previousTail = state.size - state.parts.length * partSize;
    if (previousTail > 0 && partNumber !== state.parts.length + 1) {
      await this.deleteKeys([this.tailKeyOf(id, state.parts.length + 1)]);
    }
    if (bodyError) throw bodyError;
    return size;
  }

  /** A buffer for the part being filled, holding the first `tailBytes` bytes of that part already stored. */
  private async openSpool(id: string, partNumber: number, tailBytes: number): Promise<PartBuffer> {
    const part = this.partBuffers.open();
    if (tailBytes > 0) {
      try {
        const tail = await this.getObjectStream(this.tailKeyOf(id, partNumber), { start: 0, end: tailBytes - 1 });
        for await (const chunk of tail) await part.write(chunk as Buffer);
      } catch (error) {
        await part.discard();
        throw error;
      }
    }
    return part;
  }

  private async putTail(id: string, partNumber: number, part: PartBuffer, bytes: number): Promise<void> {
    if (part.bytes !== bytes) throw new Error(`tail of blob ${id} has ${part.bytes} bytes, expected ${bytes}`);
    await part.close();
    await this.withAttempts(() =>
      this.options.client.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: this.tailKeyOf(id, partNumber),
          Body: part.body(),
          ContentLength: bytes,
          ...this.checksumOf(() => part.crc32),
        }),
      ),
    );
  }

  private async readTail(id: string, partNumber: number, bytes: number): Promise<Buffer> {
    const stream = await this.getObjectStream(this.tailKeyOf(id, partNumber), { start: 0, end: bytes - 1 });
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  private async objectExists(key: string): Promise<boolean> {
    try {
      await this.options.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === 'NotFound') return false;
      throw error;
    }
  }

  private async startMultipart(key: string, checksummed: boolean): Promise<string> {
    const created = await this.options.client.send(
      new CreateMultipartUploadCommand({
        Bucket: this.options.bucket,
        Key: key,
        ...(checksummed ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
      }),
    );
    if (!created.UploadId) throw new Error('S3 returned no UploadId');
    return created.UploadId;
  }

  private async abortMultipart(id: string, uploadId: string): Promise<void> {
    try {
      await this.options.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: this.keyOf(id), UploadId: uploadId }),
      );
    } catch (error) {
      if ((error as { name?: string }).name !== 'NoSuchUpload') throw error;
    }
  }

  /** The checksum header of an object's bytes, when checksums are on (`crc` is not called otherwise). */
  private checksumOf(crc: () => number): { ChecksumCRC32?: string } {
    return this.checksums ? { ChecksumCRC32: crc32Base64(crc()) } : {};
  }

  /**
   * `body` is called once per attempt, so every retry sends the same bytes from the start, with the
   * same `checksum` (the part's CRC-32 in base64, for a checksummed multipart upload).
   */
  private async uploadPart(
    key: string,
    uploadId: string,
    number: number,
    body: () => Readable | Buffer,
    length: number,
    checksum: string | undefined,
  ): Promise<string> {
    return this.withAttempts(async () => {
      const result = await this.options.client.send(
        new UploadPartCommand({
          Bucket: this.options.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: number,
          Body: body(),
          ContentLength: length,
          ChecksumCRC32: checksum,
        }),
      );
      if (!result.ETag) throw new Error('S3 returned no ETag for a part');
      return result.ETag;
    });
  }

  /** Retries an upload whose body can be produced again (the SDK cannot replay a stream itself). */
  private async withAttempts<T>(attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (error) {
        if (n >= this.partAttempts || !isRetryable(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** n));
      }
    }
  }

  private async getObjectStream(key: string, range: ByteRange): Promise<Readable> {
    const response = await this.options.client.send(
      new GetObjectCommand({ Bucket: this.options.bucket, Key: key, Range: `bytes=${range.start}-${range.end}` }),
    );
    return response.Body as Readable;
  }

  private async readState(id: string): Promise<BlobState | undefined> {
    return (await this.readStateWithTime(id))?.state;
  }

  private async readStateWithTime(id: string): Promise<{ state: BlobState; modifiedAt: Date } | undefined> {
    try {
      const response = await this.options.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.stateKeyOf(id) }),
      );
      const text = await response.Body!.transformToString();
      return { state: JSON.parse(text) as BlobState, modifiedAt: response.LastModified ?? new Date() };
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  private async requireState(id: string): Promise<BlobState> {
    const state = await this.readState(id);
    if (!state) throw new Error(`blob ${id} does not exist`);
    return state;
  }

  private async writeState(id: string, state: BlobState): Promise<void> {
    const body = JSON.stringify(state);
    await this.options.client.send(
      new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: this.stateKeyOf(id),
        Body: body,
        ContentType: 'application/json',
      }),
    );
  }

  private async listKeys(id: string, keep: (key: string) => boolean): Promise<string[]> {
    const base = this.keyOf(id);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.options.client.send(
        new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: base, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        // Only this blob's own keys: the object itself and `<key>.<suffix>`.
        if (object.Key && (object.Key === base || object.Key.startsWith(`${base}.`)) && keep(object.Key)) {
          keys.push(object.Key);
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      await this.options.client.send(
        new DeleteObjectsCommand({
          Bucket: this.options.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
    }
  }

  private keyOf(id: string): string {
    if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new Error(`invalid blob id ${JSON.stringify(id)}`);
    return `${this.options.prefix}uploads/${id}`;
  }

  private tailKeyOf(id: string, partNumber: number): string {
    return `${this.keyOf(id)}.tail.${partNumber}`;
  }

  private stateKeyOf(id: string): string {
    return `${this.keyOf(id)}.blob.json`;
  }
}

/**
 * Throttling, 5xx and connection errors are worth another attempt, and so is `BadDigest`: the bytes
 * did not arrive as sent, and the buffer still holds them as they were. Other client errors are not.
 */
function isRetryable(error: unknown): boolean {
  const meta = (error as { $metadata?: { httpStatusCode?: number }; name?: string }) ?? {};
  if (meta.name === 'BadDigest') return true;
  const status = meta.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429;
  return true;
}

/** S3's `x-amz-checksum-crc32` form: the four bytes of the CRC, big-endian, in base64. */
function crc32Base64(crc: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return bytes.toString('base64');
}
