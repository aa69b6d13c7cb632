import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

// Ids are upload ids (base64url). Only such ids make keys that `list()` finds again, and none can
// climb out of the folder.
const ID = /^[A-Za-z0-9_-]+$/;
const DOCUMENT_NAME = /^([A-Za-z0-9_-]+)\.json$/;

/**
 * JSON documents `<folder><id>.json` in a bucket (`folder` is Ferry's prefix plus e.g. `files/`):
 * the durable upload and file records beside the bytes.
 */
export class S3JsonDocuments<T> {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly folder: string,
  ) {}

  async get(id: string): Promise<T | undefined> {
    if (!ID.test(id)) return undefined;
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(id) }));
      return JSON.parse(await response.Body!.transformToString()) as T;
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async put(id: string, document: T): Promise<void> {
    if (!ID.test(id)) throw new RangeError(`not an id: ${JSON.stringify(id)}`);
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.keyOf(id),
        Body: JSON.stringify(document),
        ContentType: 'application/json',
      }),
    );
  }

  async delete(id: string): Promise<void> {
    if (!ID.test(id)) return;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(id) }));
  }

  async *list(): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.folder, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        // `<id>.json` only: not the blob state (`<id>.blob.json`), tails, objects or anything deeper.
        const match = DOCUMENT_NAME.exec(object.Key?.slice(this.folder.length) ?? '');
        if (match) yield match[1]!;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private keyOf(id: string): string {
    return `${this.folder}${id}.json`;
  }
}
