import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { FileRecord, FileRecordStore } from '../../core/ports.js';

// Ids are upload ids (base64url). Only such ids make keys that `list()` finds again.
const ID = /^[A-Za-z0-9_-]+$/;
const RECORD_NAME = /^([A-Za-z0-9_-]+)\.json$/;

/** The durable file records in S3: `files/<id>.json` under Ferry's prefix, beside the bytes. */
export class S3FileRecordStore implements FileRecordStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  async get(id: string): Promise<FileRecord | undefined> {
    if (!ID.test(id)) return undefined;
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(id) }));
      return JSON.parse(await response.Body!.transformToString()) as FileRecord;
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async put(record: FileRecord): Promise<void> {
    if (!ID.test(record.id)) throw new RangeError(`not a file id: ${JSON.stringify(record.id)}`);
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.keyOf(record.id),
        Body: JSON.stringify(record),
        ContentType: 'application/json',
      }),
    );
  }

  async delete(id: string): Promise<void> {
    if (!ID.test(id)) return;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(id) }));
  }

  async *list(): AsyncIterable<string> {
    const prefix = `${this.prefix}files/`;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        // `files/<id>.json` only: nothing deeper and nothing else someone left under `files/`.
        const match = RECORD_NAME.exec(object.Key?.slice(prefix.length) ?? '');
        if (match) yield match[1]!;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private keyOf(id: string): string {
    return `${this.prefix}files/${id}.json`;
  }
}
