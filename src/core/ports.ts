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
  /** Limits the upload was created under (its tenant's, narrowed by an upload token). */
  readonly limits?: UploadLimits;
  /**
   * Set when the sweeper removed the bytes of this unfinished upload because it expired. The record
   * stays a while (a tombstone) so clients are told 410 Gone rather than 404.
   */
  readonly expiredAt?: string;
}

export interface UploadLimits {
  /** The most bytes the upload may have (matters while its length is deferred). */
  readonly maxSize?: number;
  /** Media type patterns processing accepts for this upload's file. */
  readonly allowedTypes?: readonly string[];
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

// ---------------------------------------------------------------------------------------------
// Files: the registry, events and jobs every way in ends in.

export type FileStatus = 'uploading' | 'queued' | 'processing' | 'completed' | 'failed' | 'expired';

export const FILE_STATUSES: readonly FileStatus[] = [
  'uploading',
  'queued',
  'processing',
  'completed',
  'failed',
  'expired',
];

/**
 * The registry's record of one upload, whatever protocol it came in by. The file id is the upload id.
 * Times are ISO 8601 strings.
 */
export interface FileRecord {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  /** Declared total size; null while the client defers it. */
  readonly size: number | null;
  /** Bytes stored; while `uploading` the live value comes from the upload itself. */
  readonly receivedBytes: number;
  /** The media type the client declared (`application/octet-stream` when it declared none). */
  readonly mimeType: string;
  /** The media type sniffed from the bytes by processing; null until then or when unknown. */
  readonly detectedType: string | null;
  readonly folder: string | null;
  readonly tags: readonly string[];
  readonly batch: string | null;
  /** Client metadata other than the well-known keys. */
  readonly metadata: Readonly<Record<string, string | null>>;
  readonly status: FileStatus;
  readonly checksums: { readonly sha256: string | null; readonly crc32c: string | null };
  /** The way in the upload came by, as a label for users (`tus`); core never branches on it. */
  readonly protocol: string;
  /** How long the completed file is kept, in milliseconds. */
  readonly retentionMs: number;
  readonly createdAt: string;
  readonly completedAt: string | null;
  /** When the bytes go: for unfinished uploads from inactivity, for completed files from retention. */
  readonly expiresAt: string | null;
  /** Media type patterns this file may have (its upload's limits); unset: the global list. */
  readonly allowedTypes?: readonly string[];
  /** Why processing failed, as `{code, message}`. */
  readonly error: { readonly code: string; readonly message: string } | null;
  /** Bumped on every write; lets the registry keep the newest of two racing writes. */
  readonly updatedAt: string;
}

export interface FileQuery {
  readonly tenant: string;
  readonly folder?: string;
  readonly tag?: string;
  readonly batch?: string;
  readonly status?: FileStatus;
  /** 1…1000. */
  readonly limit: number;
  /** Opaque, from the previous page's `nextCursor`. */
  readonly cursor?: string;
}

export interface FilePage {
  /** Newest first (by creation time, then id). */
  readonly items: readonly FileRecord[];
  /** Set when more records match. */
  readonly nextCursor: string | undefined;
}

/**
 * The file registry. Embedded: an in-memory index over JSON records in the data directory (or the
 * bucket). Distributed: Redis with indexes for the filters, over the same durable records.
 */
export interface FileRegistry {
  get(id: string): Promise<FileRecord | undefined>;
  /**
   * Creates or replaces the record (indexes follow). With `durable: false` only the live copy
   * (memory, Redis) changes and the durable record keeps its previous state: for states that a restart
   * re-derives from the durable one anyway (see Files.transition).
   */
  put(record: FileRecord, options?: { readonly durable?: boolean }): Promise<void>;
  /** Removes the record; removing a missing one is not an error. */
  delete(id: string): Promise<void>;
  list(query: FileQuery): Promise<FilePage>;
  /** Every record, in no particular order (sweeper, recovery). */
  scan(): AsyncIterable<FileRecord>;
}

/** The durable copy of file records, beside the bytes (a JSON document per file). */
export interface FileRecordStore {
  get(id: string): Promise<FileRecord | undefined>;
  put(record: FileRecord): Promise<void>;
  delete(id: string): Promise<void>;
  list(): AsyncIterable<string>;
}

export type FileEventType =
  'created' | 'progress' | 'part_uploaded' | 'queued' | 'processing' | 'completed' | 'failed' | 'expired' | 'deleted';

/** What happened to a file, as published (without an id yet). */
export interface FileEventInput {
  readonly event: FileEventType;
  readonly fileId: string;
  readonly tenant: string;
  readonly batch: string | null;
  /** ISO 8601. */
  readonly at: string;
  /** Event fields (`received_bytes`, `error`, …), serialised as they are. */
  readonly fields?: Readonly<Record<string, unknown>>;
}

export interface FileEvent extends FileEventInput {
  /** Ordered within a bus; what SSE sends as `id:` and gets back as `Last-Event-ID`. */
  readonly id: string;
}

export interface EventFilter {
  readonly tenant: string;
  readonly fileId?: string;
  readonly batch?: string;
}

export interface EventSubscription {
  close(): void;
}

/**
 * Every state change of every file, in order, with a bounded replay buffer. In distributed mode a
 * subscriber on any replica sees what every replica published.
 */
export interface EventBus {
  publish(event: FileEventInput): Promise<FileEvent>;
  /**
   * Calls `listener` with every matching event published after `afterId` (from the replay buffer,
   * as far back as it reaches) and then live ones, in order, each once. Without `afterId`, live ones
   * only. The subscription is in place when the promise resolves.
   */
  subscribe(
    filter: EventFilter,
    afterId: string | undefined,
    listener: (event: FileEvent) => void,
  ): Promise<EventSubscription>;
  close(): Promise<void>;
}

export type JobName = 'process-file' | 'deliver-webhook';

export interface Job {
  readonly name: JobName;
  /** Jobs with the same key are not queued twice while one is waiting (idempotent enqueue). */
  readonly key: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export interface JobRetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** Delay before the second attempt; doubles for each attempt after it. */
  readonly backoffMs: number;
}

export type JobHandler = (job: Job, attempt: number) => Promise<void>;

/**
 * Background jobs with retries. Embedded: in-process. Distributed: BullMQ on Redis, where a worker
 * that dies mid-job leaves it to another worker.
 */
export interface JobQueue {
  enqueue(job: Job, retry: JobRetryPolicy): Promise<void>;
  /** Starts running jobs of `name` with `handler`; `concurrency` at a time in this process. */
  work(name: JobName, handler: JobHandler, concurrency: number): void;
  /** Resolves when no job is waiting, delayed or running (tests, graceful shutdown). */
  drain?(): Promise<void>;
  close(): Promise<void>;
}
