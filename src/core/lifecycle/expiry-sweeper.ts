import type { Clock, Locker } from '../ports.js';
import type { Uploads } from '../uploads/uploads.js';

export interface SweepResult {
  /** Unfinished uploads whose bytes were removed. */
  readonly expired: number;
  /** Tombstones of expired uploads dropped for good. */
  readonly forgotten: number;
  /** False when another process was sweeping already (one sweep at a time across replicas). */
  readonly ran: boolean;
}

export interface ExpirySweeperOptions {
  readonly uploads: Uploads;
  readonly locker: Locker;
  readonly clock: Clock;
  /** How long the record of an expired upload stays to answer 410 before it is dropped. */
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
 * Completed uploads are never removed here: their retention belongs to the file registry.
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
      return { expired: 0, forgotten: 0, ran: false };
    }
    let expired = 0;
    let forgotten = 0;
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
        } else if (!upload.complete && upload.expiresAt && upload.expiresAt.getTime() <= now) {
          const signal = AbortSignal.timeout(this.options.lockWaitMs ?? 5000);
          // An upload in use now is left for the next sweep.
          if (await uploads.expire(id, signal).catch(() => false)) expired += 1;
        }
      }
    } finally {
      await sweepLock.unlock();
    }
    return { expired, forgotten, ran: true };
  }
}
