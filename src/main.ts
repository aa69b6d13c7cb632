import { createServer, type IncomingMessage, type Server } from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import { DiskBlobStore } from './adapters/disk/disk-blob-store.js';
import { CachedUploadStateStore } from './adapters/embedded/cached-upload-state-store.js';
import { FileUploadStateStore } from './adapters/disk/file-upload-state-store.js';
import { MemoryLocker } from './adapters/embedded/memory-locker.js';
import { DiskFileRecordStore } from './adapters/disk/file-record-store-on-disk.js';
import { RecordLog } from './adapters/disk/record-log.js';
import { InProcessJobQueue } from './adapters/embedded/in-process-job-queue.js';
import { MemoryEventBus } from './adapters/embedded/memory-event-bus.js';
import { MemoryFileRegistry } from './adapters/embedded/memory-file-registry.js';
import { FetchWebhookTransport } from './adapters/http/fetch-webhook-transport.js';
import type { Config, S3Config } from './config/config.js';
import {
  systemClock,
  type BlobStore,
  type EventBus,
  type FileRecordStore,
  type FileRegistry,
  type JobQueue,
  type Locker,
  type UploadStateStore,
} from './core/ports.js';
import { fileJson } from './core/files/file-json.js';
import { Files } from './core/files/files.js';
import { FileProcessor } from './core/processing/file-processor.js';
import { defaultSteps } from './core/processing/steps.js';
import { WebhookDeliverer } from './core/processing/webhooks.js';
import type { FileRecord, UploadRecord } from './core/ports.js';
import { ExpirySweeper } from './core/lifecycle/expiry-sweeper.js';
import { Uploads } from './core/uploads/uploads.js';
import { createApp } from './http/app.js';
import type { ReadinessCheck } from './http/routes/health.js';
import { contextOf, tenantOf } from './http/request-context.js';
import { corsPolicy } from './http/middleware/cors.js';
import { tokenRoutes } from './http/routes/tokens.js';
import { ApiKeyring } from './core/auth/api-keys.js';
import { UrlSigner } from './core/auth/signed-urls.js';
import { uploadPolicy } from './core/auth/upload-policy.js';
import { UploadTokens } from './core/auth/upload-tokens.js';
import { TenantPolicies } from './core/tenancy.js';
import { UploadSlots } from './core/uploads/upload-slots.js';
import type { FileJson } from './core/files/file-json.js';
import { TUS_PATH } from './protocols/tus/tus-responses.js';
import { eventRoutes, type EventRoutes } from './http/routes/events.js';
import { fileRoutes } from './http/routes/files.js';
import { createTusRouter } from './protocols/tus/tus-router.js';

/**
 * The composition root: the one place that picks adapters from config (disk or S3 for bytes and
 * records; in-process or Redis for locks and shared state), wires them into core and core into the
 * protocols and the app.
 */

/** A lock holder asked to release gets this long to finish before its request is stopped. */
const LOCK_DRAIN_TIMEOUT_MS = 1000;

/** How long the record of an expired upload or file stays to tell clients why, before it is dropped. */
const EXPIRED_RECORD_TTL_MS = 7 * 24 * 3_600_000;

/** At most one progress event per upload per second. */
const PROGRESS_INTERVAL_MS = 1000;

/** SSE heartbeat: well inside proxies' usual 60 s idle timeout. */
const SSE_HEARTBEAT_MS = 15_000;

/** Webhook deliveries are retried this many times in all: with a 10 s first delay, for about 11 h. */
const WEBHOOK_ATTEMPTS = 13;

/** Deliveries sent at a time by each worker process. */
const WEBHOOK_CONCURRENCY = 4;

/** Core with its adapters: what `ferry serve`, `ferry worker` and `ferry sweep` all run on. */
export interface FerryCore {
  readonly uploads: Uploads;
  readonly policies: TenantPolicies;
  readonly signer: UrlSigner;
  /** A file as the API and webhooks show it, with a signed download URL under `baseUrl`. */
  readonly present: (file: FileRecord, baseUrl: string, signedAt?: Date) => FileJson;
  readonly files: Files;
  readonly events: EventBus;
  readonly jobs: JobQueue;
  readonly locker: Locker;
  readonly sweeper: ExpirySweeper;
  readonly readinessChecks: readonly ReadinessCheck[];
  /**
   * Starts processing and webhook workers in this process (`ferry serve` embedded, `ferry worker`)
   * and re-queues files whose processing a crash interrupted.
   */
  startWorkers(): Promise<void>;
  /** Rebuilds the file registry's Redis indexes from the durable records (`ferry reindex`). */
  reindex(): Promise<number>;
  /** Rebuilds them only if Redis lost them; resolves with the count rebuilt, or undefined. */
  ensureIndexed(): Promise<number | undefined>;
  /** Releases connections and buffers. */
  close(): Promise<void>;
}

export interface Ferry extends FerryCore {
  readonly server: Server;
  readonly eventStreams: EventRoutes;
}

interface SharedState {
  readonly locker: Locker;
  readonly state: UploadStateStore;
  readonly registry: FileRegistry;
  readonly events: EventBus;
  readonly jobs: JobQueue;
  readonly readinessChecks: ReadinessCheck[];
  reindex(): Promise<number>;
  ensureIndexed(): Promise<number | undefined>;
  close(): Promise<void>;
}

export async function createCore(config: Config, logger: Logger): Promise<FerryCore> {
  // With Redis, replicas share the data directory (or use S3).
  const storage = config.s3 ? await s3Storage(config.s3) : await diskStorage(config.dataDir, !!config.redisUrl);
  const shared = config.redisUrl
    ? await distributedState(config.redisUrl, config, storage, logger)
    : await embeddedState(storage);
  const { locker, state, registry, events, jobs } = shared;
  const { blobs } = storage;
  const clock = systemClock;
  const uploads = new Uploads({
    blobs,
    state,
    locker,
    clock,
    incompleteTtlMs: config.incompleteTtlMs,
    // Embedded mode processes in this process; with Redis, `ferry worker`s do, and read the bytes back.
    digestOnArrival: !config.redisUrl,
  });
  const policies = tenantPolicies(config);
  const signer = new UrlSigner(config.auth.signingSecret, clock);
  const present = (file: FileRecord, baseUrl: string, signedAt?: Date) => {
    const { expires, signature } = signer.sign(file.tenant, file.id, signedAt);
    return fileJson(file, `${baseUrl}/v1/files/${file.id}/content?expires=${expires}&signature=${signature}`);
  };
  const files = new Files({
    registry,
    events,
    jobs,
    uploads,
    clock,
    retentionOf: (tenant) => policies.for(tenant),
    progressIntervalMs: PROGRESS_INTERVAL_MS,
    webhookRetry: config.webhook ? { attempts: WEBHOOK_ATTEMPTS, backoffMs: config.webhook.retryDelayMs } : undefined,
    onBackgroundError: (error) => logger.warn({ err: error }, 'progress event not published'),
  });
  uploads.observe(files);
  const sweeper = new ExpirySweeper({ uploads, files, locker, clock, tombstoneTtlMs: EXPIRED_RECORD_TTL_MS });
  return {
    uploads,
    files,
    events,
    jobs,
    policies,
    signer,
    present,
    locker,
    sweeper,
    readinessChecks: [{ name: 'storage', check: () => blobs.checkReady() }, ...shared.readinessChecks],
    async startWorkers() {
      const processor = new FileProcessor({ files, uploads, steps: defaultSteps(config.allowedTypes) });
      jobs.work('process-file', processor.handle, config.processingConcurrency);
      if (config.webhook) {
        // A worker has no request to learn Ferry's address from (nor a bound port): links in webhooks
        // are absolute under FERRY_PUBLIC_URL, and paths relative to Ferry's address without it.
        const publicUrl = config.publicUrl ?? '';
        const deliverer = new WebhookDeliverer({
          url: config.webhook.url,
          secret: config.webhook.secret,
          transport: new FetchWebhookTransport(),
          clock,
          present: (file, at) => present(file as unknown as FileRecord, publicUrl, new Date(at)),
        });
        jobs.work('deliver-webhook', deliverer.handle, WEBHOOK_CONCURRENCY);
      }
      const requeued = await files.requeueUnprocessed();
      if (requeued > 0) logger.info({ files: requeued }, 'files whose processing was interrupted are queued again');
    },
    reindex: () => shared.reindex(),
    ensureIndexed: () => shared.ensureIndexed(),
    async close() {
      await shared.close();
      await storage.close();
    },
  };
}

export async function createFerry(config: Config, logger: Logger): Promise<Ferry> {
  const core = await createCore(config, logger);
  const { uploads, locker, files, events, policies, present, signer } = core;
  const cors = corsPolicy(config.corsOrigins);
  const tokens = new UploadTokens(config.auth.tokenSecret, systemClock);
  const policyOf = (req: IncomingMessage) => {
    const context = contextOf(req);
    return uploadPolicy(context.tenant, policies.for(context.tenant), context.scope);
  };
  const eventStreams = eventRoutes({ files, events, tenantOf, heartbeatMs: SSE_HEARTBEAT_MS });
  const baseUrlOf = (req: IncomingMessage) => config.publicUrl ?? `http://${req.headers.host ?? 'localhost'}`;
  const app = createApp({
    logger,
    readinessChecks: core.readinessChecks,
    cors,
    auth: {
      keyring: new ApiKeyring(config.auth.apiKeys),
      tokens,
      allowAnonymous: config.auth.allowAnonymous,
      tokenPaths: [TUS_PATH],
    },
    routes: [
      tokenRoutes({ tokens, policies }),
      fileRoutes({
        files,
        uploads,
        tenantOf,
        baseUrlOf,
        present,
        verifySignature: (tenant, id, expires, signature) => signer.verify(tenant, id, expires, signature),
      }),
      eventStreams.router,
    ],
    protocols: [
      createTusRouter({
        uploads,
        locker,
        maxSize: config.maxSize,
        publicUrl: config.publicUrl,
        lockDrainTimeoutMs: LOCK_DRAIN_TIMEOUT_MS,
        tenantOf,
        policyOf,
        slots: new UploadSlots(),
        corsAllows: cors.allows,
        logger,
      }),
    ],
  });

  // Node's default, stated: larger header blocks are refused with 431 (tus metadata lives in a header).
  const server = createServer({ maxHeaderSize: 16 * 1024 }, app);
  configureTimeouts(server);
  return { ...core, server, eventStreams };
}

/** Where bytes live, and the durable upload and file records beside them. */
interface Storage {
  readonly blobs: BlobStore;
  readonly records: UploadStateStore;
  /** Whether `records` answers from memory already (a record log): no cache in front of it then. */
  readonly recordsInMemory?: boolean;
  readonly fileRecords: FileRecordStore;
  close(): Promise<void>;
}

async function diskStorage(dataDir: string, shared: boolean): Promise<Storage> {
  const uploadsDir = path.join(dataDir, 'uploads');
  const blobs = new DiskBlobStore(uploadsDir, { shared });
  const filesDir = path.join(dataDir, 'files');
  // One process owns an embedded data directory: its records are logs. Replicas that share a
  // directory (distributed mode on a shared volume) each write records of their own as files.
  if (shared) {
    const records = new FileUploadStateStore(uploadsDir);
    const fileRecords = new DiskFileRecordStore(filesDir);
    await Promise.all([blobs.init(), records.init(), fileRecords.init()]);
    return { blobs, records, fileRecords, close: async () => undefined };
  }
  const records = new RecordLog<UploadRecord>(uploadsDir, 'upload');
  const fileRecords = new RecordLog<FileRecord>(filesDir, 'file');
  const opened = await Promise.allSettled([blobs.init(), records.init(), fileRecords.init()]);
  const close = async () => {
    await Promise.all([records.close(), fileRecords.close()]);
  };
  const failed = opened.find((result) => result.status === 'rejected');
  if (failed) {
    // Let go of whichever log this process did take (its lock), then say why it cannot start.
    await close().catch(() => undefined);
    throw failed.reason;
  }
  return { blobs, records, recordsInMemory: true, fileRecords, close };
}

/**
 * The S3 and Redis adapters (and the AWS SDK, ioredis and BullMQ under them) are loaded only when the
 * configuration asks for them: together they are about 10 MB of heap, and V8 runs a major GC every
 * few dozen MB of request bodies (external memory), each marking the whole heap. Measured on one
 * 1 GiB upload on disk: see README, Performance.
 */
async function s3Storage(s3: S3Config): Promise<Storage> {
  const [{ S3Client }, { S3BlobStore }, { S3UploadStateStore }, { S3FileRecordStore }] = await Promise.all([
    import('@aws-sdk/client-s3'),
    import('./adapters/s3/s3-blob-store.js'),
    import('./adapters/s3/s3-upload-state-store.js'),
    import('./adapters/s3/s3-file-record-store.js'),
  ]);
  // Credentials come from the SDK's standard chain (environment, profile, IRSA on EKS).
  const client = new S3Client({
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    // The SDK's default checksums turn a stream body of known length into `aws-chunked` encoding
    // with a trailer, which cost an S3-compatible server about twice the CPU per GB in the bench.
    // Ferry sends every part with its length and its CRC-32 in a header (S3BlobStore, computed as
    // the bytes arrive); the SDK adds checksums only where S3 requires them.
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
    memoryBuffer: s3.memoryBuffer,
    checksums: s3.checksums,
  });
  await blobs.init();
  return {
    blobs,
    records: new S3UploadStateStore(client, s3.bucket, s3.prefix),
    fileRecords: new S3FileRecordStore(client, s3.bucket, s3.prefix),
    async close() {
      await blobs.close();
      client.destroy();
    },
  };
}

/**
 * One process: locks, events and jobs in memory, upload records in memory (a record log on disk holds
 * them all; on S3 the most recently used are cached), the file registry's index in memory over the
 * durable file records.
 */
async function embeddedState(storage: Storage): Promise<SharedState> {
  const registry = new MemoryFileRegistry(storage.fileRecords);
  await registry.init();
  const jobs = new InProcessJobQueue();
  const events = new MemoryEventBus();
  return {
    locker: new MemoryLocker(),
    state: storage.recordsInMemory ? storage.records : new CachedUploadStateStore(storage.records),
    registry,
    events,
    jobs,
    readinessChecks: [],
    // The embedded index is built from the durable records at every start.
    reindex: async () => registry.init().then(async () => count(registry.scan())),
    ensureIndexed: async () => undefined,
    async close() {
      await jobs.close();
      await events.close();
    },
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
  storage: Storage,
  logger: Logger,
): Promise<SharedState> {
  const [
    { connectRedis },
    { RedisLocker },
    { RedisUploadStateStore },
    { RedisFileRegistry },
    { RedisEventBus },
    { BullmqJobQueue },
  ] = await Promise.all([
    import('./adapters/redis/redis-clients.js'),
    import('./adapters/redis/redis-locker.js'),
    import('./adapters/redis/redis-upload-state-store.js'),
    import('./adapters/redis/redis-file-registry.js'),
    import('./adapters/redis/redis-event-bus.js'),
    import('./adapters/redis/bullmq-job-queue.js'),
  ]);
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
    durable: storage.records,
    ttlMs: config.incompleteTtlMs,
  });
  const registry = new RedisFileRegistry({
    commands: redis.commands,
    prefix: config.redisPrefix,
    durable: storage.fileRecords,
  });
  // A Redis that restarted empty gets its indexes back from the durable records.
  await registry.ensureIndexed();
  const events = new RedisEventBus({ url: redisUrl, commands: redis.commands, prefix: config.redisPrefix, logger });
  await events.start();
  const jobs = new BullmqJobQueue({ url: redisUrl, prefix: config.redisPrefix, logger });
  return {
    locker,
    state,
    registry,
    events,
    jobs,
    readinessChecks: [{ name: 'redis', check: () => redis.ping() }],
    reindex: () => registry.reindex(),
    ensureIndexed: () => registry.ensureIndexed(),
    async close() {
      await jobs.close();
      await events.close();
      await redis.close();
    },
  };
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

async function count(items: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of items) n += 1;
  return n;
}

/** Global limits, overridden per tenant by FERRY_TENANTS. */
function tenantPolicies(config: Config): TenantPolicies {
  return new TenantPolicies(
    {
      maxSize: config.maxSize,
      retentionMs: config.retentionMs,
      maxRetentionMs: config.maxRetentionMs,
      allowedTypes: config.allowedTypes,
      maxConcurrentUploads: config.maxConcurrentUploads,
    },
    config.tenants,
  );
}
