import type { S3Client } from '@aws-sdk/client-s3';
import type { UploadRecord, UploadStateStore } from '../../core/ports.js';
import { S3JsonDocuments } from './s3-json-documents.js';

/** Upload records as `uploads/<id>.json` under Ferry's prefix, beside the bytes in the bucket. */
export class S3UploadStateStore implements UploadStateStore {
  private readonly documents: S3JsonDocuments<UploadRecord>;

  constructor(client: S3Client, bucket: string, prefix: string) {
    this.documents = new S3JsonDocuments(client, bucket, `${prefix}uploads/`);
  }

  get(id: string): Promise<UploadRecord | undefined> {
    return this.documents.get(id);
  }

  put(record: UploadRecord): Promise<void> {
    return this.documents.put(record.id, record);
  }

  delete(id: string): Promise<void> {
    return this.documents.delete(id);
  }

  list(): AsyncIterable<string> {
    return this.documents.list();
  }
}
