import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { FerryError } from '../../core/errors.js';
import { askToRelease } from '../../core/locks.js';
import type { Lock, Locker, RequestRelease } from '../../core/ports.js';
import { LuaScript, redisCall } from './redis-clients.js';

export interface RedisLockerOptions {
  readonly commands: Redis;
  readonly subscriber: Redis;
  readonly logger: Logger;
  /** Key and channel prefix, e.g. `ferry:`. */
  readonly prefix: string;
  /** A lock not renewed for this long is free again: a holder that died loses it within this time. */
  readonly ttlMs?: number;
  /** How often a holder renews its lock. */
  readonly renewEveryMs?: number;
  /** How long `lock()` waits before giving up with `upload_locked`. */
  readonly acquireTimeoutMs?: number;
}

// Delete or extend the lock only if this holder's token is still the one stored. A lock somebody
// waits for is released with a notification on its free channel; one nobody asked for, without.
const UNLOCK_AND_NOTIFY = new LuaScript(`if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  redis.call('publish', KEYS[2], '1')
  return 1
end
return 0`);
const UNLOCK = new LuaScript(`if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0`);
const RENEW = new LuaScript(`if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0`);

interface Holding {
  readonly token: string;
  readonly requestRelease: RequestRelease;
  readonly renewal: NodeJS.Timeout;
  /** Somebody asked for the lock (a waiter publishes a release request before it waits). */
  contended: boolean;
}

/**
 * Per-upload locks shared by every replica: `SET key token NX PX ttl`, renewed while held,
 * released with a compare-and-delete. A request that finds an upload locked publishes a release
 * request; the replica holding the lock (subscribed to release requests on its own connection) asks
 * its request to finish, exactly as the embedded locker does in one process. Waiters wake on the
 * unlock notification, and poll as a fallback so a lost message only costs time. Only a lock that
 * got a release request is released with a notification: most locks are never waited for, and a
 * notification is a message to every replica's subscriber. (A release request that arrives while the
 * holder is already letting go costs its waiter one poll interval, at first 25 ms.)
 */
export class RedisLocker implements Locker {
  readonly ttlMs: number;
  readonly renewEveryMs: number;
  readonly acquireTimeoutMs: number;
  private readonly holdings = new Map<string, Holding>();
  private readonly wakers = new Map<string, Set<() => void>>();
  private readonly releaseChannelPrefix: string;
  private readonly freeChannelPrefix: string;

  constructor(private readonly options: RedisLockerOptions) {
    this.ttlMs = options.ttlMs ?? 10_000;
    this.renewEveryMs = options.renewEveryMs ?? Math.floor(this.ttlMs / 3);
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 20_000;
    this.releaseChannelPrefix = `${options.prefix}lock-release:`;
    this.freeChannelPrefix = `${options.prefix}lock-free:`;
  }

  /** Subscribes to release requests and unlock notifications; call once before use. */
  async start(): Promise<void> {
    const { subscriber } = this.options;
    subscriber.on('pmessage', (_pattern: string, channel: string) => this.onMessage(channel));
    await subscriber.psubscribe(`${this.releaseChannelPrefix}*`, `${this.freeChannelPrefix}*`);
  }

  newLock(id: string): Lock {
    return new RedisLock(this, id);
  }

  requestReleaseOfAll(): void {
    for (const holding of this.holdings.values()) askToRelease(holding.requestRelease);
  }

  /** Locks this process holds now; for tests that check nothing leaks. */
  get heldCount(): number {
    return this.holdings.size;
  }

  private onMessage(channel: string): void {
    if (channel.startsWith(this.releaseChannelPrefix)) {
      const holding = this.holdings.get(channel.slice(this.releaseChannelPrefix.length));
      if (!holding) return;
      holding.contended = true;
      askToRelease(holding.requestRelease);
    } else if (channel.startsWith(this.freeChannelPrefix)) {
      for (const wake of this.wakers.get(channel.slice(this.freeChannelPrefix.length)) ?? []) wake();
    }
  }

  /** @internal */
  async acquire(id: string, signal: AbortSignal, requestRelease: RequestRelease): Promise<string> {
    const { commands } = this.options;
    const key = this.keyOf(id);
    const token = randomUUID();
    const deadline = Date.now() + this.acquireTimeoutMs;
    let pause = 25;
    for (;;) {
      if (signal.aborted) throw abortedError();
      const taken = await redisCall(() => commands.set(key, token, 'PX', this.ttlMs, 'NX'));
      if (taken === 'OK') {
        this.hold(id, token, requestRelease);
        return token;
      }
      if (Date.now() >= deadline) {
        throw new FerryError('upload_locked', 'the upload is in use by another request; retry shortly');
      }
      await redisCall(() => commands.publish(`${this.releaseChannelPrefix}${id}`, '1'));
      await this.waitForFree(id, Math.min(pause, deadline - Date.now()), signal);
      pause = Math.min(pause * 2, 500);
    }
  }

  /** @internal Never throws: a lock that cannot be deleted now expires with its TTL. */
  async release(id: string, token: string): Promise<void> {
    const holding = this.holdings.get(id);
    if (holding?.token !== token) return;
    clearInterval(holding.renewal);
    this.holdings.delete(id);
    try {
      const script = holding.contended ? UNLOCK_AND_NOTIFY : UNLOCK;
      await script.run(this.options.commands, 2, this.keyOf(id), `${this.freeChannelPrefix}${id}`, token);
    } catch (error) {
      this.options.logger.warn({ err: error, upload_id: id }, 'could not release a lock; it expires with its TTL');
    }
  }

  private hold(id: string, token: string, requestRelease: RequestRelease): void {
    // A holding still here lost its lock to expiry; its renewal must not outlive it.
    const stale = this.holdings.get(id);
    if (stale) clearInterval(stale.renewal);
    const renewal = setInterval(() => void this.renew(id, token), this.renewEveryMs);
    renewal.unref();
    this.holdings.set(id, { token, requestRelease, renewal, contended: false });
  }

  private async renew(id: string, token: string): Promise<void> {
    try {
      const renewed = await RENEW.run(this.options.commands, 1, this.keyOf(id), token, String(this.ttlMs));
      if (renewed === 1) return;
      // The lock expired (Redis was unreachable longer than the TTL) and may belong to someone else
      // now: the request holding it must stop writing as soon as it can.
      this.options.logger.warn({ upload_id: id }, 'lock lost before release; stopping its request');
      const holding = this.holdings.get(id);
      if (holding?.token === token) askToRelease(holding.requestRelease);
    } catch (error) {
      this.options.logger.warn({ err: error, upload_id: id }, 'could not renew a lock; retrying');
    }
  }

  private waitForFree(id: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      let wakers = this.wakers.get(id);
      if (!wakers) this.wakers.set(id, (wakers = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        wakers.delete(wake);
        if (wakers.size === 0) this.wakers.delete(id);
      };
      const wake = () => {
        done();
        resolve();
      };
      const onAbort = () => {
        done();
        reject(abortedError());
      };
      const timer = setTimeout(
        () => {
          done();
          resolve();
        },
        Math.max(ms, 1),
      );
      wakers.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private keyOf(id: string): string {
    return `${this.options.prefix}lock:${id}`;
  }
}

class RedisLock implements Lock {
  private token: string | undefined;

  constructor(
    private readonly locker: RedisLocker,
    private readonly id: string,
  ) {}

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    this.token = await this.locker.acquire(this.id, signal, requestRelease);
  }

  async unlock(): Promise<void> {
    const token = this.token;
    this.token = undefined;
    if (token) await this.locker.release(this.id, token);
  }
}

function abortedError(): FerryError {
  return new FerryError('request_aborted', 'the request was aborted while waiting for the upload');
}
