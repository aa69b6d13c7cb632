import { DataStore, ERRORS, Upload as TusUpload } from '@tus/utils';
import type { UploadLimits } from '../../core/ports.js';
import type { Upload, Uploads } from '../../core/uploads/uploads.js';

/** What Ferry's creation hook learned about a new upload from the request. */
export interface NewUploadContext {
  readonly tenant: string;
  readonly partial: boolean;
  readonly limits: UploadLimits;
  /** Told the upload once it exists, so the answer needs no second lookup. */
  readonly created: (upload: Upload) => void;
}

/**
 * @tus/server's `DataStore` over Ferry's core: tus handlers keep the protocol semantics, core keeps
 * the bytes and records. @tus/server hands the store only ids and `Upload` objects, so what the
 * request said is passed alongside: the creation hook attaches a `NewUploadContext` to the `Upload`
 * object. No body reaches @tus/server (PATCH and the body of a creation-with-upload POST take
 * Ferry's own path, patch-handler.ts), so `write` is never called.
 */
export class CoreDataStore extends DataStore {
  readonly newUploadContexts = new WeakMap<TusUpload, NewUploadContext>();

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

  override hasExtension(extension: string): boolean {
    // @tus/server 2.4.5 asks for 'concatentation' (sic) before it lets an Upload-Concat POST through.
    return extension === 'concatentation' || super.hasExtension(extension);
  }

  override async create(upload: TusUpload): Promise<TusUpload> {
    const context = this.newUploadContexts.get(upload);
    if (!context) throw new Error('tus upload created without a request context');
    const created = await this.uploads.create({
      id: upload.id,
      tenant: context.tenant,
      size: upload.size,
      metadata: upload.metadata ?? {},
      protocol: 'tus',
      limits: context.limits,
      ...(context.partial ? { concatenation: { role: 'partial' } as const } : {}),
    });
    upload.creation_date = created.createdAt;
    context.created(created);
    return upload;
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
