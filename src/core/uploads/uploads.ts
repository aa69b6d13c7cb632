import { Transform, type Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import type {
  BlobStore,
  ByteRange,
  Clock,
  Concatenation,
  Lock,
  Locker,
  UploadLimits,
  UploadRecord,
  UploadStateStore,
} from '../ports.js';
import { ArrivalDigester, DIGEST_ON_ARRIVAL_MAX_BYTES, type ArrivalDigests } from './arrival-digests.js';
import { createDigester, type ExpectedChecksum } from './checksums.js';
import { isUploadId, newUploadId } from './upload-id.js';

/** An upload as the protocols see it: its record plus what is stored of its bytes right now. */
export interface Upload extends UploadRecord {
  /** Bytes stored so far. */
  readonly offset: number;
  readonly complete: boolean;
  /** When an unfinished (or partial) upload expires; undefined once a file's upload is complete. */
  readonly expiresAt: Date | undefined;
  /** The sweeper removed its bytes: only the record is left, to answer 410. */
  readonly expired: boolean;
}

export interface CreateUploadInput {
  readonly tenant: string;
  readonly size: number | undefined;
  readonly metadata?: Readonly<Record<string, string | null>>;
  /** Protocols that must name the upload before creating it (tus hooks run first) pass the id. */
  readonly id?: string;
  /** Marks an upload as a part of a later concatenation. */
  readonly concatenation?: { readonly role: 'partial' };
  /** The way in, as a label for users (`tus`); core stores it and never branches on it. */
  readonly protocol: string;
  readonly limits?: UploadLimits;
}

export interface ConcatenateInput {
  readonly tenant: string;
  /** Partial uploads of the same tenant, complete, in the order their bytes are joined. */
  readonly partIds: readonly string[];
  readonly metadata?: Readonly<Record<string, string | null>>;
  /** Largest size the joined upload may have. */
  readonly maxSize: number;
  readonly protocol: string;
  readonly limits?: UploadLimits;
}

/**
 * What the rest of core (the file registry) learns from the upload lifecycle. Calls happen after the
 * fact they report is durable; an observer that fails makes the caller's request fail, never the
 * bytes disappear.
 */
export interface UploadObserver {
  /** Before anything is stored: throws to refuse an upload whose metadata cannot be used. */
  validate(tenant: string, metadata: Readonly<Record<string, string | null>>): void;
  created(upload: Upload, protocol: string): Promise<void>;
  /** Bytes arrived; called for every chunk, so it must be cheap (the observer throttles). */
  received(id: string, offset: number): void;
  /**
   * Every byte of `upload` is stored and the blob is finished (`upload` is as it is now, complete).
   * May be called more than once for an upload. `justCompleted` says the caller holds the upload's
   * lock and has just stored its last bytes: the upload was not complete before this call.
   * `digests` come with a small upload whose bytes all arrived in the body that completed it.
   */
  completed(upload: Upload, justCompleted?: boolean, digests?: ArrivalDigests): Promise<void>;
  /** The sweeper removed the bytes of an upload that expired unfinished. */
  expired(upload: Upload): Promise<void>;
  /** The upload and its bytes are gone (termination, deletion). */
  removed(id: string): Promise<void>;
}

const NO_OBSERVER: UploadObserver = {
  validate: () => undefined,
  created: async () => undefined,
  received: () => undefined,
  completed: async () => undefined,
  expired: async () => undefined,
  removed: async () => undefined,
};

export interface UploadsOptions {
  readonly state: UploadStateStore;
  readonly blobs: BlobStore;
  readonly locker: Locker;
  readonly clock: Clock;
  /** An unfinished upload expires this long after its creation or its last received byte. */
  readonly incompleteTtlMs: number;
  /**
   * Digest small uploads sent whole in one body as they arrive (see arrival-digests.ts), for
   * processing that runs in this process. Where workers elsewhere process, hashing here would move
   * their work onto the upload path.
   */
  readonly digestOnArrival?: boolean;
}

/**
 * The upload lifecycle every protocol goes through: create, append bytes, look up, declare the
 * length, remove. It knows nothing of wire formats; callers hold the upload's lock around writes.
 */
export class Uploads {
  private observer: UploadObserver = NO_OBSERVER;

  constructor(private readonly options: UploadsOptions) {}

  /** Set once by the composition root (the observer needs `Uploads` itself, so it comes after). */
  observe(observer: UploadObserver): void {
    this.observer = observer;
  }

  newId(): string {
    return newUploadId();
  }

  async create(input: CreateUploadInput): Promise<Upload> {
    const id = input.id ?? newUploadId();
    this.observer.validate(input.tenant, input.metadata ?? {});
    const record: UploadRecord = {
      id,
      tenant: input.tenant,
      size: input.size,
      metadata: { ...input.metadata },
      createdAt: this.options.clock.now().toISOString(),
      ...(input.concatenation ? { concatenation: input.concatenation } : {}),
      ...(input.limits ? { limits: input.limits } : {}),
    };
    // Bytes first, then the record: a record always has a blob, so a crash in between leaves at
    // worst an orphan empty blob, never an upload that cannot take bytes.
    await this.options.blobs.create(id);
    await this.options.state.put(record);
    const upload = this.view(record, 0, new Date(record.createdAt));
    await this.observer.created(upload, input.protocol);
    // A zero-length upload is complete the moment it exists.
    if (record.size === 0) {
      await this.options.blobs.finish(id);
      await this.observer.completed(upload);
    }
    return upload;
  }

  /**
   * The upload with this id if it exists and belongs to `tenant`. Another tenant's upload is
   * indistinguishable from a missing one.
   */
  async find(id: string, tenant: string): Promise<Upload | undefined> {
    const upload = await this.findInAnyTenant(id);
    return upload?.tenant === tenant ? upload : undefined;
  }

  /**
   * The upload with this id whoever owns it. Only for protocol code that has already checked the
   * tenant with `find` earlier in the same request (tus checks in a hook before its handlers run).
   */
  async findInAnyTenant(id: string): Promise<Upload | undefined> {
    if (!isUploadId(id)) return undefined;
    const record = await this.options.state.get(id);
    if (!record) return undefined;
    if (record.expiredAt) {
      return { ...record, offset: 0, complete: false, expiresAt: new Date(record.expiredAt), expired: true };
    }
    const stat = await this.options.blobs.stat(id);
    // A record without bytes is an upload that was being removed: treat it as gone.
    if (!stat) return undefined;
    const upload = this.view(record, stat.size, stat.modifiedAt);
    // All bytes stored but never assembled: a crash came between the last append and `finish`.
    // Finishing is idempotent, so the first look at such an upload completes it.
    if (upload.complete && stat.finished === false) {
      await this.options.blobs.finish(id);
      await this.observer.completed(upload);
    }
    return upload;
  }

  async get(id: string, tenant: string): Promise<Upload> {
    const upload = await this.find(id, tenant);
    if (!upload) throw new FerryError('upload_not_found', 'upload not found');
    return upload;
  }

  /** Like `get`, but an expired unfinished upload is an error too. */
  async getLive(id: string, tenant: string): Promise<Upload> {
    const upload = await this.get(id, tenant);
    if (upload.expiresAt && upload.expiresAt.getTime() <= this.options.clock.now().getTime()) {
      throw new FerryError('upload_expired', 'upload expired');
    }
    return upload;
  }

  /**
   * Appends a request body at `offset` of `upload` and resolves with the upload as it is then (its
   * `offset` the new one). The caller holds the upload's lock, looked `upload` up under it (with any
   * length it declared since: nobody else changes the record while the lock is held) and has checked
   * `offset` against the stored offset and the body against the size.
   *
   * With `expected`, the bytes become part of the upload only if the whole body matches the
   * checksum; otherwise none of them is kept. A body shorter than the length the checksum covers was
   * interrupted (`chunk_interrupted`, retryable); a whole body that does not match is
   * `checksum_mismatch`. Either way a checksummed chunk is stored whole or not at all.
   */
  async append(upload: UploadRecord, offset: number, body: Readable, expected?: ExpectedChecksum): Promise<Upload> {
    const { id } = upload;
    let newOffset: number;
    let digests: ArrivalDigests | undefined;
    if (expected) {
      newOffset = await this.appendVerified(id, offset, body, expected);
    } else {
      // Progress while the body streams: a second 'data' listener beside the store's pipe costs a
      // call per chunk, no copy. The stream is paused first so adding the listener does not start
      // the flow before the store is attached (those bytes would reach only this listener); the
      // store's pipe or reads resume it. Checksummed chunks report at the end: they may be refused.
      let received = offset;
      const digester =
        this.options.digestOnArrival && digestsWorthTaking(upload, offset) ? new ArrivalDigester() : undefined;
      body.pause();
      body.on('data', (chunk: Buffer) => {
        digester?.update(chunk);
        this.observer.received(id, (received += chunk.length));
      });
      newOffset = await this.options.blobs.append(id, offset, body);
      digests = digester?.result(newOffset);
    }
    return this.afterAppend(upload, offset, newOffset, digests);
  }

  private async appendVerified(
    id: string,
    offset: number,
    body: Readable,
    expected: ExpectedChecksum,
  ): Promise<number> {
    const digester = createDigester(expected.algorithm);
    let received = 0;
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        digester.update(chunk);
        callback(null, chunk);
      },
    });
    body.once('error', (error) => hashing.destroy(error));
    let matched = false;
    const size = await this.options.blobs.appendTentatively(id, offset, body.pipe(hashing), () => {
      matched = digester.digest().equals(expected.digest);
      return matched;
    });
    if (matched) return size;
    if (expected.length !== undefined && received < expected.length) {
      throw new FerryError(
        'chunk_interrupted',
        'the chunk ended before all its bytes arrived (another request took over the upload); none of it was kept',
      );
    }
    throw new FerryError('checksum_mismatch', `${expected.algorithm} checksum mismatch`);
  }

  /**
   * Joins complete partial uploads of one tenant into a new, complete upload, streaming their bytes
   * in order. The partials stay (the lifecycle removes them like any upload). The partials are
   * locked while they are read so nobody removes one halfway.
   */
  async concatenate(input: ConcatenateInput): Promise<Upload> {
    this.observer.validate(input.tenant, input.metadata ?? {});
    if (input.partIds.length === 0) {
      throw new FerryError('invalid_concatenation', 'a final upload needs at least one partial upload');
    }
    return this.withLocks(input.partIds, async () => {
      const parts: Upload[] = [];
      for (const partId of input.partIds) {
        const part = await this.find(partId, input.tenant);
        if (!part) throw new FerryError('upload_not_found', `partial upload ${partId} not found`);
        if (part.concatenation?.role !== 'partial') {
          throw new FerryError('invalid_concatenation', `upload ${partId} is not a partial upload`);
        }
        if (!part.complete) throw new FerryError('invalid_concatenation', `partial upload ${partId} is not complete`);
        parts.push(part);
      }
      const size = parts.reduce((sum, part) => sum + part.offset, 0);
      if (size > input.maxSize) throw new FerryError('upload_too_large', 'the joined upload exceeds the maximum size');

      const id = newUploadId();
      const concatenation: Concatenation = { role: 'final', partIds: [...input.partIds] };
      // Bytes first, record last: until the record exists the new upload is invisible, so nobody
      // sees a final upload that is still being joined.
      await this.options.blobs.create(id);
      try {
        let offset = 0;
        for (const part of parts) {
          offset = await this.options.blobs.append(id, offset, this.options.blobs.read(part.id));
        }
        await this.options.blobs.finish(id);
      } catch (error) {
        await this.options.blobs.remove(id);
        throw error;
      }
      const record: UploadRecord = {
        id,
        tenant: input.tenant,
        size,
        metadata: { ...input.metadata },
        createdAt: this.options.clock.now().toISOString(),
        concatenation,
        ...(input.limits ? { limits: input.limits } : {}),
      };
      await this.options.state.put(record);
      const upload = this.view(record, size, new Date(record.createdAt));
      await this.observer.created(upload, input.protocol);
      await this.observer.completed(upload);
      return upload;
    });
  }

  /** Sets the length of an upload created with a deferred length. The caller holds the lock. */
  async declareSize(id: string, size: number): Promise<void> {
    const record = await this.options.state.get(id);
    if (!record) throw new FerryError('upload_not_found', 'upload not found');
    const sized: UploadRecord = { ...record, size };
    await this.options.state.put(sized);
    const stat = await this.options.blobs.stat(id);
    if (stat && stat.size >= size) {
      await this.options.blobs.finish(id);
      await this.observer.completed(this.view(sized, stat.size, stat.modifiedAt));
    }
  }

  /**
   * The upload after an append from `from` to `offset`. Once the last byte is stored the blob is
   * finished (assembled, for stores that need it) and the observer told.
   */
  private async afterAppend(
    record: UploadRecord,
    from: number,
    offset: number,
    digests?: ArrivalDigests,
  ): Promise<Upload> {
    const { id } = record;
    const upload = this.view(record, offset, this.options.clock.now());
    if (!upload.complete) {
      this.observer.received(id, offset);
      return upload;
    }
    await this.options.blobs.finish(id);
    // Whether this append is what completed it: the caller holds the lock.
    await this.observer.completed(upload, record.size !== undefined && from < record.size, digests);
    return upload;
  }

  /** Ids of every upload record, expired ones included (for the sweeper). */
  ids(): AsyncIterable<string> {
    return this.options.state.list();
  }

  /**
   * Removes the bytes of an unfinished upload that has expired and leaves its record as a tombstone
   * (410 for clients). Under the upload's lock, and only if it is still expired then: a request that
   * was writing when the sweeper came keeps the upload alive. Resolves with whether it expired it.
   */
  async expire(id: string, signal: AbortSignal): Promise<boolean> {
    const expired = await this.discardIf(id, signal, (upload, now) =>
      Boolean(upload.expiresAt && upload.expiresAt <= now),
    );
    if (expired) await this.observer.expired(expired);
    return expired !== undefined;
  }

  /**
   * Removes the bytes of a completed upload whose file reached the end of its retention and leaves a
   * tombstone (410), under the lock. The file registry decides when; `isStillDue` re-checks under
   * the lock. Resolves with whether it removed them.
   */
  async discardCompleted(id: string, signal: AbortSignal, isStillDue: () => Promise<boolean>): Promise<boolean> {
    return (await this.discardIf(id, signal, async (upload) => upload.complete && (await isStillDue()))) !== undefined;
  }

  /** Under the lock: if `due` says so, removes the bytes and turns the record into a tombstone. */
  private async discardIf(
    id: string,
    signal: AbortSignal,
    due: (upload: Upload, now: Date) => boolean | Promise<boolean>,
  ): Promise<Upload | undefined> {
    const lock = this.options.locker.newLock(id);
    // The sweeper is in no hurry: a request holding the upload finishes undisturbed.
    await lock.lock(signal, () => undefined);
    try {
      const upload = await this.findInAnyTenant(id);
      const now = this.options.clock.now();
      if (!upload || upload.expired || !(await due(upload, now))) return undefined;
      await this.options.blobs.remove(id);
      const { offset: _o, complete: _c, expiresAt: _e, expired: _x, ...record } = upload;
      await this.options.state.put({ ...record, expiredAt: now.toISOString() });
      return upload;
    } finally {
      await lock.unlock();
    }
  }

  /** Drops the record of an expired upload for good (after the tombstone served its time). */
  async forget(id: string): Promise<void> {
    await this.options.state.delete(id);
  }

  /** Removes the upload's bytes and record. The record goes last so a crash leaves it findable. */
  async remove(id: string): Promise<void> {
    await this.options.blobs.remove(id);
    await this.options.state.delete(id);
    await this.observer.removed(id);
  }

  /**
   * Removes an upload under its lock (deletion through the file API); a request holding the lock is
   * asked to let go. Resolves with whether there was anything to remove.
   */
  async removeLocked(id: string, signal: AbortSignal): Promise<boolean> {
    const lock = this.options.locker.newLock(id);
    // Waiting asks the holder (a PATCH in flight) to let go; this short job needs no such callback.
    await lock.lock(signal, () => undefined);
    try {
      if (!(await this.options.state.get(id))) return false;
      await this.remove(id);
      return true;
    } finally {
      await lock.unlock();
    }
  }

  read(id: string, range?: ByteRange): Readable {
    return this.options.blobs.read(id, range);
  }

  /** Holds the locks of `ids` (taken in sorted order, so two callers never deadlock) around `work`. */
  private async withLocks<T>(ids: readonly string[], work: () => Promise<T>): Promise<T> {
    const held: Lock[] = [];
    const signal = new AbortController().signal;
    try {
      for (const id of [...new Set(ids)].sort()) {
        const lock = this.options.locker.newLock(id);
        await lock.lock(signal, () => undefined);
        held.push(lock);
      }
      return await work();
    } finally {
      for (const lock of held) await lock.unlock();
    }
  }

  private view(record: UploadRecord, offset: number, lastWrite: Date): Upload {
    const complete = record.size !== undefined && offset >= record.size;
    const lastActivity = Math.max(lastWrite.getTime(), new Date(record.createdAt).getTime());
    // A partial upload is a piece of a later file, not a file: complete or not, it expires after the
    // same inactivity as an unfinished upload (the final upload has its bytes by then).
    const expires = !complete || record.concatenation?.role === 'partial';
    return {
      ...record,
      offset,
      complete,
      expiresAt: expires ? new Date(lastActivity + this.options.incompleteTtlMs) : undefined,
      expired: false,
    };
  }
}

/** A small upload whose every byte is in this body: its digests cost less now than a read-back later. */
function digestsWorthTaking(upload: UploadRecord, offset: number): boolean {
  return offset === 0 && upload.size !== undefined && upload.size > 0 && upload.size <= DIGEST_ON_ARRIVAL_MAX_BYTES;
}
