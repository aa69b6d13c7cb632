import { createServer, type Server } from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import { DiskBlobStore } from './adapters/disk/disk-blob-store.js';
import { FileUploadStateStore } from './adapters/embedded/file-upload-state-store.js';
import { MemoryLocker } from './adapters/embedded/memory-locker.js';
import type { Config } from './config/config.js';
import { systemClock } from './core/ports.js';
import { Uploads } from './core/uploads/uploads.js';
import { createApp } from './http/app.js';
import { tenantOf } from './http/request-context.js';
import { createTusRouter } from './protocols/tus/tus-router.js';

/**
 * The composition root: the one place that picks adapters (embedded now; Redis and S3 later, from
 * config), wires them into core and core into the protocols and the HTTP app.
 */

/** A lock holder asked to release gets this long to finish before its request is stopped. */
const LOCK_DRAIN_TIMEOUT_MS = 1000;

export interface Ferry {
  readonly server: Server;
  readonly locker: MemoryLocker;
}

export async function createFerry(config: Config, logger: Logger): Promise<Ferry> {
  const uploadsDir = path.join(config.dataDir, 'uploads');
  const blobs = new DiskBlobStore(uploadsDir);
  const state = new FileUploadStateStore(uploadsDir);
  await blobs.init();
  await state.init();
  const locker = new MemoryLocker();
  const uploads = new Uploads({ blobs, state, locker, clock: systemClock, incompleteTtlMs: config.incompleteTtlMs });

  const app = createApp({
    logger,
    readinessChecks: [{ name: 'storage', check: () => blobs.checkReady() }],
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
  return { server, locker };
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
