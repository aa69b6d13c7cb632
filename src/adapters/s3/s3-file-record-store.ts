import type { S3Client } from '@aws-sdk/client-s3';
import type { FileRecord, FileRecordStore } from '../../core/ports.js';
import { S3JsonDocuments } from './s3-json-documents.js';

/** The durable file records in S3: `files/<id>.json` under Ferry's prefix, beside the bytes. */
export class S3FileRecordStore implements FileRecordStore {
  private readonly documents: S3JsonDocuments<FileRecord>;

  constructor(client: S3Client, bucket: string, prefix: string) {
    this.documents = new S3JsonDocuments(client, bucket, `${prefix}files/`);
  }

  get(id: string): Promise<FileRecord | undefined> {
    return this.documents.get(id);
  }

  put(record: FileRecord): Promise<void> {
    return this.documents.put(record.id, record);
  }

  delete(id: string): Promise<void> {
    return this.documents.delete(id);
  }

  list(): AsyncIterable<string> {
    return this.documents.list();
  }
}
