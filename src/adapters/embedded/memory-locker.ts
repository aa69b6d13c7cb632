import { FerryError } from '../../core/errors.js';
import { askToRelease } from '../../core/locks.js';
import type { Lock, Locker, RequestRelease } from '../../core/ports.js';

interface Waiter {
  readonly lock: MemoryLock;
  readonly requestRelease: RequestRelease;
  readonly grant: () => void;
}

interface Holding {
  readonly lock: MemoryLock;
  readonly requestRelease: RequestRelease;
  /** First in, first served: unlock hands the lock straight to the next waiter. */
  readonly waiters: Waiter[];
}

export interface MemoryLockerOptions {
  /** How long `lock()` waits for a holder before giving up with `upload_locked`. */
  readonly acquireTimeoutMs?: number;
}

/**
 * Single-process locker that waits on promises instead of polling (@tus/server's MemoryLocker
 * re-checks on every event-loop turn and burns a core while it waits). A waiter asks the holder to
 * release, and the holder hands the lock over on unlock, in arrival order.
 */
export class MemoryLocker implements Locker {
  readonly acquireTimeoutMs: number;
  private readonly holdings = new Map<string, Holding>();

  constructor(options: MemoryLockerOptions = {}) {
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 20_000;
  }

  newLock(id: string): Lock {
    return new MemoryLock(this, id);
  }

  requestReleaseOfAll(): void {
    for (const holding of this.holdings.values()) askToRelease(holding.requestRelease);
  }

  /** Number of locks held now; for tests that check nothing leaks. */
  get heldCount(): number {
    return this.holdings.size;
  }

  /** @internal */
  acquire(lock: MemoryLock, signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    if (signal.aborted) return Promise.reject(abortedError());
    const holding = this.holdings.get(lock.id);
    if (!holding) {
      this.holdings.set(lock.id, { lock, requestRelease, waiters: [] });
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const leaveQueue = () => {
        const index = holding.waiters.indexOf(waiter);
        if (index >= 0) holding.waiters.splice(index, 1);
      };
      const waiter: Waiter = {
        lock,
        requestRelease,
        grant: () => {
          settle();
          resolve();
        },
      };
      const onAbort = () => {
        settle();
        leaveQueue();
        reject(abortedError());
      };
      const timer = setTimeout(() => {
        settle();
        leaveQueue();
        reject(new FerryError('upload_locked', 'the upload is in use by another request; retry shortly'));
      }, this.acquireTimeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      holding.waiters.push(waiter);
      askToRelease(holding.requestRelease);
    });
  }

  /** @internal */
  release(lock: MemoryLock): void {
    const holding = this.holdings.get(lock.id);
    if (holding?.lock !== lock) return;
    const next = holding.waiters.shift();
    if (!next) {
      this.holdings.delete(lock.id);
      return;
    }
    const handedOver: Holding = { lock: next.lock, requestRelease: next.requestRelease, waiters: holding.waiters };
    this.holdings.set(lock.id, handedOver);
    next.grant();
    // Whoever still waits wants the lock too: tell the new holder at once.
    if (handedOver.waiters.length > 0) askToRelease(handedOver.requestRelease);
  }
}

class MemoryLock implements Lock {
  constructor(
    private readonly locker: MemoryLocker,
    readonly id: string,
  ) {}

  lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    return this.locker.acquire(this, signal, requestRelease);
  }

  async unlock(): Promise<void> {
    this.locker.release(this);
  }
}

function abortedError(): FerryError {
  return new FerryError('request_aborted', 'the request was aborted while waiting for the upload');
}
