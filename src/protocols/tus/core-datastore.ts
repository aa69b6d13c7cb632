import type { Readable } from 'node:stream';
import { DataStore, ERRORS, Upload as TusUpload } from '@tus/utils';
import type { Upload, Uploads } from '../../core/uploads/uploads.js';

/**
 * @tus/server's `DataStore` over Ferry's core: tus handlers keep the protocol semantics, core keeps
 * the bytes and records. The tenant of a new upload is attached by the creation hook (see
 * `tenantOfNewUpload`), because @tus/server hands the store only the `Upload` object.
 */
export class CoreDataStore extends DataStore {
  /** Set by the creation hook for the `Upload` object it was given, read here in `create`. */
  readonly tenantOfNewUpload = new WeakMap<TusUpload, string>();

  constructor(private readonly uploads: Uploads) {
    super();
    // `expiration` is advertised, but Ferry computes expiry itself (from the last received byte, not
    // the creation time, and never for completed uploads): getExpiration() stays 0 so @tus/server
    // neither adds its own Upload-Expires nor answers 410 for completed uploads.
    this.extensions = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration'];
  }

  override async create(upload: TusUpload): Promise<TusUpload> {
    const tenant = this.tenantOfNewUpload.get(upload);
    if (tenant === undefined) throw new Error('tus upload created without a tenant');
    const created = await this.uploads.create({
      id: upload.id,
      tenant,
      size: upload.size,
      metadata: upload.metadata ?? {},
    });
    upload.creation_date = created.createdAt;
    return upload;
  }

  override async write(body: Readable, id: string, offset: number): Promise<number> {
    return this.uploads.append(id, offset, body);
  }

  override async getUpload(id: string): Promise<TusUpload> {
    // The tenant was checked in the onIncomingRequest hook before any handler asks for the upload.
    const upload = await this.uploads.findInAnyTenant(id);
    if (!upload) throw ERRORS.FILE_NOT_FOUND;
    return toTusUpload(upload);
  }

  override async declareUploadLength(id: string, size: number): Promise<void> {
    await this.uploads.declareSize(id, size);
  }

  override async remove(id: string): Promise<void> {
    await this.uploads.remove(id);
  }

  override getExpiration(): number {
    return 0;
  }
}

function toTusUpload(upload: Upload): TusUpload {
  return new TusUpload({
    id: upload.id,
    size: upload.size,
    offset: upload.offset,
    // An empty metadata object would make HEAD send an empty Upload-Metadata header.
    metadata: Object.keys(upload.metadata).length > 0 ? { ...upload.metadata } : undefined,
    creation_date: upload.createdAt,
  });
}
