import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { DiskBlobStore } from './adapters/disk/disk-blob-store.js';
import { CachedUploadStateStore } from './adapters/embedded/cached-upload-state-store.js';
import { FileUploadStateStore } from './adapters/embedded/file-upload-state-store.js';
import { MemoryLocker } from './adapters/embedded/memory-locker.js';
import { connectRedis } from './adapters/redis/redis-clients.js';
import { RedisLocker } from './adapters/redis/redis-locker.js';
import { RedisUploadStateStore } from './adapters/redis/redis-upload-state-store.js';
import { S3BlobStore } from './adapters/s3/s3-blob-store.js';
import { S3UploadStateStore } from './adapters/s3/s3-upload-state-store.js';
import type { Config, S3Config } from './config/config.js';
import { systemClock, type BlobStore, type Locker, type UploadStateStore } from './core/ports.js';
import { ExpirySweeper } from './core/lifecycle/expiry-sweeper.js';
import { Uploads } from './core/uploads/uploads.js';
import { createApp } from './http/app.js';
import type { ReadinessCheck } from './http/routes/health.js';
import { tenantOf } from './http/request-context.js';
import { createTusRouter } from './protocols/tus/tus-router.js';

/**
 * The composition root: the one place that picks adapters from config (disk or S3 for bytes and
 * records; in-process or Redis for locks and shared state), wires them into core and core into the
 * protocols and the app.
 */

/** A lock holder asked to release gets this long to finish before its request is stopped. */
const LOCK_DRAIN_TIMEOUT_MS = 1000;

/** How long the record of an expired upload stays to tell clients 410 Gone, before it is dropped. */
const EXPIRED_RECORD_TTL_MS = 7 * 24 * 3_600_000;

/** Core with its adapters: what `ferry serve`, `ferry worker` and `ferry sweep` all run on. */
export interface FerryCore {
  readonly uploads: Uploads;
  readonly locker: Locker;
  readonly sweeper: ExpirySweeper;
  readonly readinessChecks: readonly ReadinessCheck[];
  /** Releases connections and buffers. */
  close(): Promise<void>;
}

export interface Ferry extends FerryCore {
  readonly server: Server;
}

interface SharedState {
  readonly locker: Locker;
  readonly state: UploadStateStore;
  readonly readinessChecks: ReadinessCheck[];
  close(): Promise<void>;
}

export async function createCore(config: Config, logger: Logger): Promise<FerryCore> {
  // With Redis, replicas share the data directory (or use S3).
  const storage = config.s3 ? await s3Storage(config.s3) : await diskStorage(config.dataDir, !!config.redisUrl);
  const shared = config.redisUrl
    ? await distributedState(config.redisUrl, config, storage.records, logger)
    : embeddedState(storage.records);
  const { locker, state } = shared;
  const { blobs } = storage;
  const uploads = new Uploads({ blobs, state, locker, clock: systemClock, incompleteTtlMs: config.incompleteTtlMs });
  const sweeper = new ExpirySweeper({ uploads, locker, clock: systemClock, tombstoneTtlMs: EXPIRED_RECORD_TTL_MS });
  return {
    uploads,
    locker,
    sweeper,
    readinessChecks: [{ name: 'storage', check: () => blobs.checkReady() }, ...shared.readinessChecks],
    async close() {
      await shared.close();
      await storage.close();
    },
  };
}

export async function createFerry(config: Config, logger: Logger): Promise<Ferry> {
  const core = await createCore(config, logger);
  const { uploads, locker } = core;
  const app = createApp({
    logger,
    readinessChecks: core.readinessChecks,
    protocols: [
      createTusRouter({
        uploads,
        locker,
        maxSize: config.maxSize,
        publicUrl: config.publicUrl,
        lockDrainTimeoutMs: LOCK_DRAIN_TIMEOUT_MS,
        tenantOf,
        logger,
      }),
    ],
  });

  const server = createServer(app);
  configureTimeouts(server);
  return { ...core, server };
}

/** Where bytes live, and the durable upload records beside them. */
interface Storage {
  readonly blobs: BlobStore;
  readonly records: UploadStateStore;
  close(): Promise<void>;
}

async function diskStorage(dataDir: string, shared: boolean): Promise<Storage> {
  const uploadsDir = path.join(dataDir, 'uploads');
  const blobs = new DiskBlobStore(uploadsDir, { shared });
  const records = new FileUploadStateStore(uploadsDir);
  await blobs.init();
  await records.init();
  return { blobs, records, close: async () => undefined };
}

async function s3Storage(s3: S3Config): Promise<Storage> {
  // Credentials come from the SDK's standard chain (environment, profile, IRSA on EKS).
  const client = new S3Client({
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    // The SDK's default checksums turn a stream body of known length into `aws-chunked` encoding
    // with a trailer, which cost an S3-compatible server about twice the CPU per GB in the bench.
    // Ferry sends every part from a file with its length; checksums are added only where required.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
  });
  const blobs = new S3BlobStore({
    client,
    bucket: s3.bucket,
    prefix: s3.prefix,
    partSize: s3.partSize,
    concurrency: s3.concurrency,
    tempDir: s3.tempDir,
  });
  await blobs.init();
  return {
    blobs,
    records: new S3UploadStateStore(client, s3.bucket, s3.prefix),
    async close() {
      await blobs.close();
      client.destroy();
    },
  };
}

/** One process: locks in memory, the most recently used records cached in memory. */
function embeddedState(records: UploadStateStore): SharedState {
  return {
    locker: new MemoryLocker(),
    state: new CachedUploadStateStore(records),
    readinessChecks: [],
    close: async () => undefined,
  };
}

/**
 * Many replicas: locks and the shared copy of upload records in Redis. The durable record stays
 * beside the bytes (not cached in memory, since another replica may change it), so a Redis that
 * restarts empty loses nothing.
 */
async function distributedState(
  redisUrl: string,
  config: Config,
  records: UploadStateStore,
  logger: Logger,
): Promise<SharedState> {
  const redis = await connectRedis(redisUrl, logger);
  const locker = new RedisLocker({
    commands: redis.commands,
    subscriber: redis.subscriber,
    logger,
    prefix: config.redisPrefix,
  });
  await locker.start();
  const state = new RedisUploadStateStore({
    commands: redis.commands,
    prefix: config.redisPrefix,
    durable: records,
    ttlMs: config.incompleteTtlMs,
  });
  return { locker, state, readinessChecks: [{ name: 'redis', check: () => redis.ping() }], close: () => redis.close() };
}

/**
 * Timeouts chosen for long uploads from slow clients:
 * - requestTimeout 0: Node's default (300 s) would cut a long PATCH mid-body.
 * - headersTimeout 60 s: a client must finish sending headers within a minute (slow-loris guard).
 * - timeout 5 min: a socket with no traffic at all for 5 minutes is closed; a stalled PATCH ends,
 *   its bytes are kept and the client resumes from the stored offset.
 * - keepAliveTimeout 65 s: longer than the usual 60 s idle timeout of load balancers, so the proxy
 *   closes idle connections first and never sends a request into a socket Ferry is closing.
 */
function configureTimeouts(server: Server): void {
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.timeout = 5 * 60_000;
  server.keepAliveTimeout = 65_000;
}
