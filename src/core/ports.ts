import type { Readable } from 'node:stream';

/**
 * The ports core needs from the outside world. Each has an embedded implementation (one process,
 * no services) and, in later versions, a distributed one (Redis, S3). Core imports only these.
 */

/** Asks the current holder of a lock to finish up and let go. */
export type RequestRelease = () => void | Promise<void>;

/**
 * Per-upload exclusive lock. Structurally the same as @tus/utils' `Lock`, so a Ferry locker can be
 * handed to @tus/server as is.
 */
export interface Lock {
  /**
   * Resolves once the lock is held. While another request holds it, that holder's `requestRelease`
   * is called. Rejects with `upload_locked` when the wait times out and `request_aborted` when
   * `signal` aborts.
   */
  lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void>;
  /** Releases the lock if this instance holds it. Never throws. */
  unlock(): Promise<void>;
}

export interface Locker {
  newLock(id: string): Lock;
  /** Asks every holder of a lock in this process to release it (graceful shutdown). */
  requestReleaseOfAll(): void;
}

/**
 * An upload's part in a concatenation: a `partial` upload is meant to be joined; a `final` upload
 * is made of the listed partial uploads, in order.
 */
export type Concatenation =
  { readonly role: 'partial' } | { readonly role: 'final'; readonly partIds: readonly string[] };

/** The durable description of an upload: everything but its bytes and offset. */
export interface UploadRecord {
  readonly id: string;
  /** Every upload belongs to a tenant from the start (`default` until auth exists). */
  readonly tenant: string;
  /** Total length in bytes; undefined while the client defers it (tus creation-defer-length). */
  readonly size: number | undefined;
  /** Client metadata as received, keys and values as the client sent them. */
  readonly metadata: Readonly<Record<string, string | null>>;
  /** ISO 8601 creation time. */
  readonly createdAt: string;
  readonly concatenation?: Concatenation;
  /**
   * Set when the sweeper removed the bytes of this unfinished upload because it expired. The record
   * stays a while (a tombstone) so clients are told 410 Gone rather than 404.
   */
  readonly expiredAt?: string;
}

/** Keeps upload records. Embedded: a JSON file per upload beside the bytes, cached in memory. */
export interface UploadStateStore {
  get(id: string): Promise<UploadRecord | undefined>;
  put(record: UploadRecord): Promise<void>;
  delete(id: string): Promise<void>;
  /** Ids of every stored record, from the durable store (for the sweeper). */
  list(): AsyncIterable<string>;
}

export interface BlobStat {
  /** Bytes stored so far. */
  readonly size: number;
  /** When the last byte was stored. */
  readonly modifiedAt: Date;
  /** False while a store that assembles blobs (S3) has not done so yet; stores that don't omit it. */
  readonly finished?: boolean;
}

export interface ByteRange {
  /** First byte, inclusive. */
  readonly start: number;
  /** Last byte, inclusive. */
  readonly end: number;
}

/** Stores the bytes of uploads, addressed by upload id. */
export interface BlobStore {
  /** Creates an empty blob; fails if one exists already. */
  create(id: string): Promise<void>;
  /**
   * Appends `body` at `offset` (which must equal the stored size) and resolves with the new size once
   * the stream has ended. Bytes that arrived before the stream failed are kept: the caller learns the
   * new size from `stat`.
   */
  append(id: string, offset: number, body: Readable): Promise<number>;
  /**
   * Appends like `append`, then keeps the bytes only if `accept()` says so once the body has ended;
   * otherwise (and when the body fails) the blob is cut back to `offset`. Resolves with the size the
   * blob has afterwards. A crash before the decision leaves the blob as it was before the call.
   */
  appendTentatively(id: string, offset: number, body: Readable, accept: () => boolean): Promise<number>;
  /**
   * Called once the blob has all its bytes. Stores that assemble uploads (S3 multipart) make the
   * object whole here; before it, `read` is not guaranteed to work.
   */
  finish(id: string): Promise<void>;
  stat(id: string): Promise<BlobStat | undefined>;
  /** Streams a finished blob, or a range of it. */
  read(id: string, range?: ByteRange): Readable;
  /** Removes the blob; removing a missing blob is not an error. */
  remove(id: string): Promise<void>;
  /** Resolves when the store can take writes (readiness probe). */
  checkReady(): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
