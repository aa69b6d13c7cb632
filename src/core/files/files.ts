import { FerryError } from '../errors.js';
import type {
  Clock,
  EventBus,
  FileEvent,
  FileEventType,
  FilePage,
  FileQuery,
  FileRecord,
  FileRegistry,
  JobQueue,
  JobRetryPolicy,
} from '../ports.js';
import { arrivalDigestsToJson, type ArrivalDigests } from '../uploads/arrival-digests.js';
import type { Upload, UploadObserver, Uploads } from '../uploads/uploads.js';
import { describeFile, type Metadata } from './well-known-metadata.js';

/** The events a webhook receives (API.md §3.8). */
const WEBHOOK_EVENTS: ReadonlySet<FileEventType> = new Set(['queued', 'completed', 'failed', 'expired', 'deleted']);

/** Processing of a file: retried on crash or error, then the file fails with `processing_error`. */
export const PROCESSING_RETRY: JobRetryPolicy = { attempts: 5, backoffMs: 2000 };

/** Progress trackers kept for uploads that went quiet without completing; oldest dropped beyond. */
const MAX_PROGRESS_TRACKERS = 10_000;

export interface FilesOptions {
  readonly registry: FileRegistry;
  readonly events: EventBus;
  readonly jobs: JobQueue;
  readonly uploads: Uploads;
  readonly clock: Clock;
  /** Retention (default and bound) of each tenant's files. */
  readonly retentionOf: (tenant: string) => { readonly retentionMs: number; readonly maxRetentionMs: number };
  /** At most one progress event per upload per this interval (the last one is never dropped). */
  readonly progressIntervalMs: number;
  /** Set when webhooks are configured: events that concern them are queued for delivery. */
  readonly webhookRetry: JobRetryPolicy | undefined;
  /** Where errors of background work (throttled progress) go; they never reach a request. */
  readonly onBackgroundError: (error: unknown) => void;
}

/** A file record with the live state of its upload folded in (bytes received, expiry). */
export type FileView = FileRecord;

interface ProgressTracker {
  lastAt: number;
  pendingOffset: number | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The record as this process created it, if it did (`uploading` until the upload completes). */
  created: FileRecord | undefined;
}

type FileOwner = Pick<FileRecord, 'id' | 'tenant' | 'batch'>;

/**
 * The file registry's side of every upload: one record per upload whatever way it came in, kept in
 * step with the upload lifecycle (it observes `Uploads`), its state changes published as events and,
 * once the last byte is stored, a processing job. Partial uploads of a tus concatenation are pieces
 * of a later file, not files: they get no record.
 */
export class Files implements UploadObserver {
  private readonly progress = new Map<string, ProgressTracker>();

  constructor(private readonly options: FilesOptions) {}

  // --- UploadObserver -------------------------------------------------------------------------

  validate(tenant: string, metadata: Metadata): void {
    const { retentionMs } = describeFile(metadata);
    const { maxRetentionMs } = this.options.retentionOf(tenant);
    if (retentionMs !== undefined && retentionMs > maxRetentionMs) {
      throw new FerryError(
        'invalid_metadata',
        `retention may be at most ${Math.floor(maxRetentionMs / 1000)} seconds (FERRY_MAX_RETENTION)`,
      );
    }
  }

  async created(upload: Upload, protocol: string): Promise<void> {
    if (upload.concatenation?.role === 'partial') return;
    const described = describeFile(upload.metadata);
    const now = this.now();
    const record: FileRecord = {
      id: upload.id,
      tenant: upload.tenant,
      name: described.name ?? upload.id,
      size: upload.size ?? null,
      receivedBytes: upload.offset,
      mimeType: described.mimeType ?? 'application/octet-stream',
      detectedType: null,
      folder: described.folder,
      tags: described.tags,
      batch: described.batch,
      metadata: described.userMetadata,
      status: 'uploading',
      checksums: { sha256: null, crc32c: null },
      protocol,
      retentionMs: described.retentionMs ?? this.options.retentionOf(upload.tenant).retentionMs,
      createdAt: upload.createdAt,
      completedAt: null,
      expiresAt: upload.expiresAt?.toISOString() ?? null,
      error: null,
      ...(upload.limits?.allowedTypes ? { allowedTypes: upload.limits.allowedTypes } : {}),
      updatedAt: now,
    };
    await this.options.registry.put(record);
    await this.publish(record, 'created', { name: record.name, size: record.size });
    // Progress and completion of this upload need not read the record back (see there).
    this.tracker(record.id).created = record;
  }

  received(id: string, offset: number): void {
    const now = this.options.clock.now().getTime();
    const tracker = this.tracker(id);
    const wait = tracker.lastAt + this.options.progressIntervalMs - now;
    if (wait <= 0) {
      tracker.lastAt = now;
      tracker.pendingOffset = undefined;
      // Bytes are arriving, so the caller holds the upload's lock and the upload is not complete:
      // nobody can have moved the file past `uploading`, and a record created here needs no lookup.
      this.emitProgress(id, offset, tracker.created);
      return;
    }
    // Too soon: remember the newest offset and send it when the interval is over.
    tracker.pendingOffset = offset;
    tracker.timer ??= setTimeout(() => {
      const current = this.progress.get(id);
      if (!current) return;
      current.timer = undefined;
      current.lastAt = this.options.clock.now().getTime();
      if (current.pendingOffset !== undefined) this.emitProgress(id, current.pendingOffset);
      current.pendingOffset = undefined;
    }, wait).unref();
  }

  async completed(upload: Upload, justCompleted = false, digests?: ArrivalDigests): Promise<void> {
    const { id } = upload;
    const created = this.progress.get(id)?.created;
    this.dropTracker(id);
    if (!upload.complete) return;
    // Until its upload completes, only the lock holder that completes it changes a record (expiry and
    // deletion need the lock, with a live upload): if this call is that one, the record this process
    // created is still the record.
    const record = (justCompleted ? created : undefined) ?? (await this.options.registry.get(id));
    if (!record || record.status !== 'uploading') return;
    const completedAt = this.options.clock.now();
    const queued = this.update(record, {
      status: 'queued',
      size: upload.offset,
      receivedBytes: upload.offset,
      completedAt: completedAt.toISOString(),
      expiresAt: new Date(completedAt.getTime() + record.retentionMs).toISOString(),
    });
    await this.options.registry.put(queued);
    await this.publish(queued, 'queued');
    // Digests taken as the bytes arrived ride along, so processing need not read a small file back.
    const data = digests ? { fileId: id, arrived: arrivalDigestsToJson(digests) } : { fileId: id };
    await this.options.jobs.enqueue({ name: 'process-file', key: id, data }, PROCESSING_RETRY);
  }

  async expired(upload: Upload): Promise<void> {
    this.dropTracker(upload.id);
    const record = await this.options.registry.get(upload.id);
    if (!record || record.status === 'expired') return;
    await this.markExpired(record);
  }

  async removed(id: string): Promise<void> {
    this.dropTracker(id);
    const record = await this.options.registry.get(id);
    if (!record) return;
    await this.options.registry.delete(id);
    await this.publish(record, 'deleted');
  }

  // --- The file API ---------------------------------------------------------------------------

  /** The tenant's file; another tenant's file is as missing as a file that never existed. */
  async get(tenant: string, id: string): Promise<FileView> {
    const record = await this.options.registry.get(id);
    if (!record || record.tenant !== tenant) throw new FerryError('file_not_found', 'file not found');
    return this.live(record);
  }

  /**
   * The file a signed URL points at, when `verify` accepts the signature for the file's tenant;
   * otherwise as missing as any other file (404), so a bad signature reveals nothing.
   */
  async getBySignature(id: string, verify: (tenant: string) => boolean): Promise<FileView> {
    const record = await this.options.registry.get(id);
    if (!record || !verify(record.tenant)) throw new FerryError('file_not_found', 'file not found');
    return this.live(record);
  }

  async list(query: FileQuery): Promise<{ items: FileView[]; nextCursor: string | undefined }> {
    const page: FilePage = await this.options.registry.list(query);
    return { items: await Promise.all(page.items.map((record) => this.live(record))), nextCursor: page.nextCursor };
  }

  /** Deletes the file's bytes and record (an upload in flight is asked to stop first). */
  async delete(tenant: string, id: string): Promise<void> {
    const record = await this.get(tenant, id);
    const removed = await this.options.uploads.removeLocked(id, AbortSignal.timeout(30_000));
    // The upload record may be long gone (an expired file whose tombstone was dropped).
    if (!removed) await this.removed(record.id);
  }

  /** Re-queues files whose processing never finished (after a crash, or a Redis that lost its queue). */
  async requeueUnprocessed(): Promise<number> {
    let count = 0;
    for await (const record of this.options.registry.scan()) {
      if (record.status !== 'queued' && record.status !== 'processing') continue;
      await this.options.jobs.enqueue(
        { name: 'process-file', key: record.id, data: { fileId: record.id } },
        PROCESSING_RETRY,
      );
      count += 1;
    }
    return count;
  }

  // --- For the processing pipeline and the sweeper --------------------------------------------

  record(id: string): Promise<FileRecord | undefined> {
    return this.options.registry.get(id);
  }

  /** Writes a changed record and publishes `event` about it. */
  async transition(
    record: FileRecord,
    changes: Partial<FileRecord>,
    event: FileEventType,
    fields?: Record<string, unknown>,
  ): Promise<FileRecord> {
    const next = this.update(record, changes);
    // `processing` lasts as long as the job and a restart treats it exactly as `queued` (both are
    // queued again), so only the live copy records it: one durable write fewer per file, which for
    // small uploads on disk is a measurable share of the work (a temporary file and a rename).
    await this.options.registry.put(next, { durable: next.status !== 'processing' });
    await this.publish(next, event, fields);
    return next;
  }

  /** Removes the bytes of a file past its retention and marks it `expired`. */
  async expireFile(record: FileRecord, signal: AbortSignal): Promise<boolean> {
    const isDue = (current: FileRecord | undefined) =>
      current !== undefined &&
      current.status !== 'uploading' &&
      current.status !== 'expired' &&
      this.isPastExpiry(current);
    if (!isDue(record)) return false;
    await this.options.uploads.discardCompleted(record.id, signal, async () => isDue(await this.record(record.id)));
    // Also when the bytes were gone already (a failed file): the record tells clients why.
    const current = await this.record(record.id);
    if (!isDue(current)) return false;
    await this.markExpired(current!);
    return true;
  }

  /** Drops an expired record for good once it has told clients why for long enough. */
  async forgetExpired(record: FileRecord, tombstoneTtlMs: number): Promise<boolean> {
    if (record.status !== 'expired') return false;
    if (this.options.clock.now().getTime() - Date.parse(record.updatedAt) < tombstoneTtlMs) return false;
    await this.options.registry.delete(record.id);
    return true;
  }

  /**
   * For the sweeper: a file still `uploading` whose upload is complete missed its completion (the
   * registry or queue failed right after the last byte); this completes it. Resolves with whether
   * it did.
   */
  async catchUpCompletion(record: FileRecord): Promise<boolean> {
    if (record.status !== 'uploading') return false;
    const upload = await this.options.uploads.findInAnyTenant(record.id);
    if (!upload?.complete) return false;
    await this.completed(upload);
    return true;
  }

  scan(): AsyncIterable<FileRecord> {
    return this.options.registry.scan();
  }

  isPastExpiry(record: FileRecord): boolean {
    return record.expiresAt !== null && Date.parse(record.expiresAt) <= this.options.clock.now().getTime();
  }

  // --- Internals ------------------------------------------------------------------------------

  private async markExpired(record: FileRecord): Promise<void> {
    await this.transition(record, { status: 'expired' }, 'expired');
  }

  /** While uploading, the bytes received and the expiry come from the upload itself. */
  private async live(record: FileRecord): Promise<FileView> {
    if (record.status !== 'uploading') return record;
    const upload = await this.options.uploads.findInAnyTenant(record.id);
    if (!upload) return record;
    // Every byte is stored but the registry missed it (Redis failed right after the last PATCH):
    // catch up now, in the background.
    if (upload.complete) void this.completed(upload).catch(this.options.onBackgroundError);
    return {
      ...record,
      receivedBytes: upload.offset,
      size: upload.size ?? null,
      expiresAt: upload.expiresAt?.toISOString() ?? record.expiresAt,
    };
  }

  /**
   * Publishes progress of a file that is `uploading`. Without `owner` (a throttled event sent later,
   * when the upload may have moved on, or an upload another replica created) the record says whether
   * it still is, and whose it is.
   */
  private emitProgress(id: string, offset: number, owner?: FileOwner): void {
    void (async () => {
      let file = owner;
      if (!file) {
        const record = await this.options.registry.get(id);
        if (!record || record.status !== 'uploading') return;
        file = record;
      }
      // Never a webhook event: nothing to queue beside the event.
      await this.announce(file, 'progress', { received_bytes: offset });
    })().catch(this.options.onBackgroundError);
  }

  private tracker(id: string): ProgressTracker {
    let tracker = this.progress.get(id);
    if (!tracker) {
      if (this.progress.size >= MAX_PROGRESS_TRACKERS) this.dropTracker(this.progress.keys().next().value!);
      tracker = { lastAt: Number.NEGATIVE_INFINITY, pendingOffset: undefined, timer: undefined, created: undefined };
      this.progress.set(id, tracker);
    }
    return tracker;
  }

  private dropTracker(id: string): void {
    const tracker = this.progress.get(id);
    if (tracker?.timer) clearTimeout(tracker.timer);
    this.progress.delete(id);
  }

  private async publish(record: FileRecord, event: FileEventType, fields?: Record<string, unknown>): Promise<void> {
    const published = await this.announce(record, event, fields);
    if (this.options.webhookRetry && WEBHOOK_EVENTS.has(event)) {
      await this.options.jobs.enqueue(
        {
          name: 'deliver-webhook',
          key: published.id,
          data: { deliveryId: published.id, event, fileId: record.id, at: published.at, file: record },
        },
        this.options.webhookRetry,
      );
    }
  }

  /** Publishes the event only (webhooks are `publish`'s business). */
  private announce(file: FileOwner, event: FileEventType, fields?: Record<string, unknown>): Promise<FileEvent> {
    return this.options.events.publish({
      event,
      fileId: file.id,
      tenant: file.tenant,
      batch: file.batch,
      at: this.now(),
      ...(fields ? { fields } : {}),
    });
  }

  private update(record: FileRecord, changes: Partial<FileRecord>): FileRecord {
    return { ...record, ...changes, updatedAt: this.now() };
  }

  private now(): string {
    return this.options.clock.now().toISOString();
  }
}
