import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
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

  private keyOf(id: string): string {
    return `${this.prefix}uploads/${id}.json`;
  }
}
