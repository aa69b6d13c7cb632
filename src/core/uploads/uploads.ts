import type { Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import type { BlobStore, ByteRange, Clock, UploadRecord, UploadStateStore } from '../ports.js';
import { isUploadId, newUploadId } from './upload-id.js';

/** An upload as the protocols see it: its record plus what is stored of its bytes right now. */
export interface Upload extends UploadRecord {
  /** Bytes stored so far. */
  readonly offset: number;
  readonly complete: boolean;
  /** When an unfinished upload expires; undefined once it is complete. */
  readonly expiresAt: Date | undefined;
}

export interface CreateUploadInput {
  readonly tenant: string;
  readonly size: number | undefined;
  readonly metadata?: Readonly<Record<string, string | null>>;
  /** Protocols that must name the upload before creating it (tus hooks run first) pass the id. */
  readonly id?: string;
}

export interface UploadsOptions {
  readonly state: UploadStateStore;
  readonly blobs: BlobStore;
  readonly clock: Clock;
  /** An unfinished upload expires this long after its creation or its last received byte. */
  readonly incompleteTtlMs: number;
}

/**
 * The upload lifecycle every protocol goes through: create, append bytes, look up, declare the
 * length, remove. It knows nothing of wire formats; callers hold the upload's lock around writes.
 */
export class Uploads {
  constructor(private readonly options: UploadsOptions) {}

  newId(): string {
    return newUploadId();
  }

  async create(input: CreateUploadInput): Promise<Upload> {
    const id = input.id ?? newUploadId();
    const record: UploadRecord = {
      id,
      tenant: input.tenant,
      size: input.size,
      metadata: { ...input.metadata },
      createdAt: this.options.clock.now().toISOString(),
    };
    // Bytes first, then the record: a record always has a blob, so a crash in between leaves at
    // worst an orphan empty blob, never an upload that cannot take bytes.
    await this.options.blobs.create(id);
    await this.options.state.put(record);
    return this.view(record, 0, new Date(record.createdAt));
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
    const stat = await this.options.blobs.stat(id);
    // A record without bytes is an upload that was being removed: treat it as gone.
    if (!stat) return undefined;
    return this.view(record, stat.size, stat.modifiedAt);
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
   * Appends a request body at `offset` and resolves with the new offset. The caller holds the
   * upload's lock and has checked `offset` against the stored offset and the body against the size.
   */
  async append(id: string, offset: number, body: Readable): Promise<number> {
    return this.options.blobs.append(id, offset, body);
  }

  /** Sets the length of an upload created with a deferred length. The caller holds the lock. */
  async declareSize(id: string, size: number): Promise<void> {
    const record = await this.options.state.get(id);
    if (!record) throw new FerryError('upload_not_found', 'upload not found');
    await this.options.state.put({ ...record, size });
  }

  /** Removes the upload's bytes and record. The record goes last so a crash leaves it findable. */
  async remove(id: string): Promise<void> {
    await this.options.blobs.remove(id);
    await this.options.state.delete(id);
  }

  read(id: string, range?: ByteRange): Readable {
    return this.options.blobs.read(id, range);
  }

  private view(record: UploadRecord, offset: number, lastWrite: Date): Upload {
    const complete = record.size !== undefined && offset >= record.size;
    const lastActivity = Math.max(lastWrite.getTime(), new Date(record.createdAt).getTime());
    return {
      ...record,
      offset,
      complete,
      expiresAt: complete ? undefined : new Date(lastActivity + this.options.incompleteTtlMs),
    };
  }
}
