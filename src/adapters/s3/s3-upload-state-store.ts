import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { UploadRecord, UploadStateStore } from '../../core/ports.js';

/** Upload records as `uploads/<id>.json` under Ferry's prefix, beside the bytes in the bucket. */
export class S3UploadStateStore implements UploadStateStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  async get(id: string): Promise<UploadRecord | undefined> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(id) }));
      return JSON.parse(await response.Body!.transformToString()) as UploadRecord;
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async put(record: UploadRecord): Promise<void> {
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
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(id) }));
  }

  async *list(): AsyncIterable<string> {
    const prefix = `${this.prefix}uploads/`;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        // `uploads/<id>.json` only: not the blob state (`<id>.blob.json`), tails or the objects.
        const match = /^([A-Za-z0-9_-]+)\.json$/.exec(object.Key?.slice(prefix.length) ?? '');
        if (match) yield match[1]!;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private keyOf(id: string): string {
    return `${this.prefix}uploads/${id}.json`;
  }
}
