/**
 * A real S3-compatible server for tests: moto's `moto_server` (Python) on a free loopback port,
 * started and stopped by the test, with a bucket created and an S3Client pointed at it.
 *
 *   const s3 = await startMoto();               // { endpoint, bucket, client, env, ... }
 *   const ferry = await startFerry({ env: s3.env });
 *   expect(await s3.listMultipartUploads()).toEqual([]);
 *   afterAll(stopAllMoto);
 *
 * There is no silent skip: a machine without moto_server fails with a message saying how to get it
 * (`pip install 'moto[server]'`). moto keeps everything in memory: a stopped server forgets its
 * buckets. It answers within about half a second of being spawned on a 2-core machine; the wait
 * allows 30 s so a loaded CI machine does not make tests flaky.
 */
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { freePort } from './ports.js';

export interface MultipartUploadInfo {
  readonly key: string;
  readonly uploadId: string;
}

export interface MotoServer {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** The bucket created at start. */
  readonly bucket: string;
  /** Path-style client for the server (region us-east-1, credentials test/test). */
  readonly client: S3Client;
  /** What a Ferry process needs to store its bytes in `bucket` (merge into its environment). */
  readonly env: Readonly<Record<string, string>>;
  /** Every object key in `bucket` (or in `bucketName`) under `prefix`, in S3's (lexicographic) order. */
  listKeys(prefix?: string, bucketName?: string): Promise<string[]>;
  /** Multipart uploads started and neither completed nor aborted, in `bucket` (or in `bucketName`). */
  listMultipartUploads(bucketName?: string): Promise<MultipartUploadInfo[]>;
  /** Creates another bucket on the same server. */
  createBucket(name: string): Promise<void>;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and destroys the client. Idempotent. */
  stop(): Promise<void>;
}

export interface StartMotoOptions {
  /** Bucket to create; a fresh `ferry-test-<n>` by default. */
  readonly bucket?: string;
  /** How long to wait for the server to answer; 30 s by default. */
  readonly startTimeoutMs?: number;
}

const running = new Set<ChildProcess>();
let bucketCounter = 0;

export const MOTO_REGION = 'us-east-1';
export const MOTO_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

/** Starts moto_server on a free 127.0.0.1 port, waits until it answers and creates a bucket. */
export async function startMoto(options: StartMotoOptions = {}): Promise<MotoServer> {
  assertMotoInstalled();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const bucket = options.bucket ?? `ferry-test-${process.pid}-${++bucketCounter}`;

  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  // Werkzeug logs every request to stderr; keep only the tail, for the start-up error message.
  let stderrTail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderrTail = (stderrTail + text).slice(-4000);
  });

  const client = new S3Client({
    endpoint,
    region: MOTO_REGION,
    forcePathStyle: true,
    credentials: MOTO_CREDENTIALS,
  });

  const stop = async (): Promise<void> => {
    client.destroy();
    await stopChild(child);
  };

  try {
    await waitForMoto(port, child, options.startTimeoutMs ?? 30_000, () => stderrTail);
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    port,
    endpoint,
    bucket,
    client,
    env: {
      FERRY_STORAGE: 's3',
      FERRY_S3_BUCKET: bucket,
      FERRY_S3_ENDPOINT: endpoint,
      FERRY_S3_REGION: MOTO_REGION,
      FERRY_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
    },
    async listKeys(prefix, bucketName = bucket) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucketName, Prefix: prefix, ContinuationToken: token }),
        );
        for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys;
    },
    async listMultipartUploads(bucketName = bucket) {
      const uploads: MultipartUploadInfo[] = [];
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (;;) {
        const page = await client.send(
          new ListMultipartUploadsCommand({
            Bucket: bucketName,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
        for (const upload of page.Uploads ?? []) {
          if (upload.Key !== undefined && upload.UploadId !== undefined) {
            uploads.push({ key: upload.Key, uploadId: upload.UploadId });
          }
        }
        if (!page.IsTruncated) return uploads;
        keyMarker = page.NextKeyMarker;
        uploadIdMarker = page.NextUploadIdMarker;
      }
    },
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    stop,
  };
}

/** Kills every moto_server started by this module (for afterAll). */
export async function stopAllMoto(): Promise<void> {
  await Promise.all(
    [...running].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await once(child, 'exit');
    }),
  );
}

function assertMotoInstalled(): void {
  // A pyenv shim exists even when the active Python lacks moto: it then exits non-zero.
  const probe = spawnSync('moto_server', ['--help'], { stdio: 'ignore', timeout: 30_000 });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      "moto_server is not installed (or not on PATH): install it with `pip install 'moto[server]'` " +
        '(Python 3); the S3 tests need a real S3-compatible server and do not skip',
    );
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Polls `GET /` (moto answers it with the bucket list) until it answers 200. */
async function waitForMoto(port: number, child: ChildProcess, timeoutMs: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`moto_server exited (${child.exitCode ?? child.signalCode}) before answering:\n${stderr()}`);
    }
    if ((await probe(port)) === 200) return;
    if (Date.now() > deadline) {
      throw new Error(`moto_server did not answer on 127.0.0.1:${port} within ${timeoutMs} ms:\n${stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function probe(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode));
      res.once('error', () => resolve(undefined));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(undefined));
    req.end();
  });
}
