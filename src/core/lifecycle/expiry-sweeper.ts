import type { Clock, Locker } from '../ports.js';
import type { Files } from '../files/files.js';
import type { Uploads } from '../uploads/uploads.js';

export interface SweepResult {
  /** Unfinished uploads whose bytes were removed. */
  readonly expired: number;
  /** Tombstones of expired uploads dropped for good. */
  readonly forgotten: number;
  /** Files past their retention whose bytes were removed. */
  readonly expiredFiles: number;
  /** Records of expired files dropped for good. */
  readonly forgottenFiles: number;
  /** False when another process was sweeping already (one sweep at a time across replicas). */
  readonly ran: boolean;
}

export interface ExpirySweeperOptions {
  readonly uploads: Uploads;
  readonly files: Files;
  readonly locker: Locker;
  readonly clock: Clock;
  /** How long the record of an expired upload or file stays to tell clients why, before it is dropped. */
  readonly tombstoneTtlMs: number;
  /** How long the sweeper waits for an upload's lock before leaving it for the next sweep. */
  readonly lockWaitMs?: number;
}

/** The lock that keeps sweeps apart; upload ids never contain ':'. */
export const SWEEP_LOCK = 'lifecycle:expiry-sweep';

/**
 * Removes the bytes of unfinished uploads that expired (FERRY_INCOMPLETE_TTL after their last byte)
 * and, later, their tombstones. It walks the durable records, so it touches only what Ferry itself
 * created (everything under its data directory or S3 prefix), never anything else in a bucket.
 * Then it does the same for files past their retention, from the file registry: a completed file is
 * never removed before its `expires_at`.
 */
export class ExpirySweeper {
  constructor(private readonly options: ExpirySweeperOptions) {}

  async sweepOnce(): Promise<SweepResult> {
    const { uploads, locker, clock } = this.options;
    const sweepLock = locker.newLock(SWEEP_LOCK);
    try {
      // No waiting: if a sweep is under way anywhere, this one is not needed.
      await sweepLock.lock(AbortSignal.timeout(1), () => undefined);
    } catch {
      return { expired: 0, forgotten: 0, expiredFiles: 0, forgottenFiles: 0, ran: false };
    }
    let expired = 0;
    let forgotten = 0;
    let expiredFiles = 0;
    let forgottenFiles = 0;
    try {
      for await (const id of uploads.ids()) {
        const upload = await uploads.findInAnyTenant(id);
        if (!upload) continue;
        const now = clock.now().getTime();
        if (upload.expired) {
          if (now - upload.expiresAt!.getTime() > this.options.tombstoneTtlMs) {
            await uploads.forget(id);
            forgotten += 1;
          }
        } else if (upload.expiresAt && upload.expiresAt.getTime() <= now) {
          const signal = AbortSignal.timeout(this.options.lockWaitMs ?? 5000);
          // An upload in use now is left for the next sweep.
          if (await uploads.expire(id, signal).catch(() => false)) expired += 1;
        }
      }
      const { files } = this.options;
      for await (const file of files.scan()) {
        if (file.status === 'expired') {
          if (await files.forgetExpired(file, this.options.tombstoneTtlMs)) forgottenFiles += 1;
        } else if (file.status === 'uploading') {
          await files.catchUpCompletion(file).catch(() => false);
        } else if (files.isPastExpiry(file)) {
          const signal = AbortSignal.timeout(this.options.lockWaitMs ?? 5000);
          if (await files.expireFile(file, signal).catch(() => false)) expiredFiles += 1;
        }
      }
    } finally {
      await sweepLock.unlock();
    }
    return { expired, forgotten, expiredFiles, forgottenFiles, ran: true };
  }
}
