import { DataStore, ERRORS, Upload as TusUpload } from '@tus/utils';
import type { Upload, Uploads } from '../../core/uploads/uploads.js';

/**
 * @tus/server's `DataStore` over Ferry's core, for the requests @tus/server still answers (HEAD,
 * termination, OPTIONS): it keeps their protocol semantics, core keeps the bytes and records.
 * Creation and every body take Ferry's own paths (creation-handler.ts, patch-handler.ts), so
 * `create` and `write` are never called.
 */
export class CoreDataStore extends DataStore {
  constructor(private readonly uploads: Uploads) {
    super();
    // `expiration` is advertised, but Ferry computes expiry itself (from the last received byte, not
    // the creation time, and never for completed uploads): getExpiration() stays 0 so @tus/server
    // neither adds its own Upload-Expires nor answers 410 for completed uploads.
    this.extensions = [
      'creation',
      'creation-with-upload',
      'creation-defer-length',
      'termination',
      'expiration',
      'checksum',
      'concatenation',
    ];
  }

  override create(): Promise<TusUpload> {
    return Promise.reject(new Error("uploads are created on Ferry's creation path, not @tus/server's"));
  }

  override write(): Promise<number> {
    return Promise.reject(new Error("upload bytes must take Ferry's body path, not @tus/server's"));
  }

  override async getUpload(id: string): Promise<TusUpload> {
    // The tenant was checked in the onIncomingRequest hook before any handler asks for the upload.
    const upload = await this.uploads.findInAnyTenant(id);
    if (!upload) throw ERRORS.FILE_NOT_FOUND;
    return toTusUpload(upload);
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
