import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type RedisClients } from '../../src/adapters/redis/redis-clients.js';
import { RedisLocker } from '../../src/adapters/redis/redis-locker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';
import { lockerContract } from './locker.contract.js';

const silent = pino({ level: 'silent' });
let redis: RedisServer;
let prefixCounter = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await stopAllRedis();
});

/** A locker with its own connections, as one replica has; `close` drops them without unlocking. */
async function replica(prefix: string, options: { ttlMs?: number; acquireTimeoutMs?: number } = {}) {
  const clients = await connectRedis(redis.url, silent);
  const locker = new RedisLocker({
    commands: clients.commands,
    subscriber: clients.subscriber,
    logger: silent,
    prefix,
    ...options,
  });
  await locker.start();
  return { locker, clients };
}

lockerContract('RedisLocker (real redis-server)', async ({ acquireTimeoutMs }) => {
  const { locker, clients } = await replica(`contract${++prefixCounter}:`, { acquireTimeoutMs });
  return { locker, heldCount: () => locker.heldCount, close: () => clients.close() };
});

describe('RedisLocker across replicas', () => {
  const opened: RedisClients[] = [];
  const open = async (prefix: string, options: { ttlMs?: number; acquireTimeoutMs?: number } = {}) => {
    const made = await replica(prefix, options);
    opened.push(made.clients);
    return made.locker;
  };
  afterAll(async () => {
    await Promise.all(opened.map((clients) => clients.close()));
  });
  const never = () => new AbortController().signal;

  it('delivers a release request to the holder on another replica, which then lets go', async () => {
    const a = await open('xr1:');
    const b = await open('xr1:');
    const held = a.newLock('upload');
    let asked = 0;
    await held.lock(never(), () => {
      asked++;
      void held.unlock();
    });
    const started = Date.now();
    const other = b.newLock('upload');
    await other.lock(never(), () => undefined);
    expect(asked).toBeGreaterThanOrEqual(1);
    expect(Date.now() - started).toBeLessThan(2000);
    await other.unlock();
  });

  it('notifies waiters on unlock only when somebody asked for the lock: an uncontended unlock publishes nothing, a contended one wakes the waiter at once', async () => {
    const a = await open('xr5:');
    const b = await open('xr5:');
    // A third connection counts what is published on the locks' free channels.
    const watcher = await connectRedis(redis.url, silent);
    opened.push(watcher);
    const notifications: string[] = [];
    watcher.subscriber.on('pmessage', (_pattern: string, channel: string) => notifications.push(channel));
    await watcher.subscriber.psubscribe('xr5:lock-free:*');

    const alone = a.newLock('quiet');
    await alone.lock(never(), () => undefined);
    await alone.unlock();

    const held = a.newLock('busy');
    let releaseAsked!: () => void;
    const asked = new Promise<void>((resolve) => (releaseAsked = resolve));
    await held.lock(never(), () => releaseAsked());
    const waiter = b.newLock('busy');
    const waiting = waiter.lock(never(), () => undefined);
    await asked;
    // By now the waiter polls every 500 ms: only the notification can wake it sooner.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const releasedAt = Date.now();
    await held.unlock();
    await waiting;
    const wokenAfter = Date.now() - releasedAt;
    await waiter.unlock();
    await new Promise((resolve) => setTimeout(resolve, 100));

    expect(notifications).toEqual(['xr5:lock-free:busy']);
    expect(wokenAfter).toBeLessThan(100);
  });

  it('frees the lock of a holder that died (no unlock, connections gone) within its TTL', async () => {
    const dying = await replica('xr2:', { ttlMs: 600 });
    await dying.locker.newLock('orphan').lock(never(), () => undefined);
    // The replica is gone: its connections drop and its renewal can no longer reach Redis.
    await dying.clients.close();
    const survivor = await open('xr2:', { acquireTimeoutMs: 5000 });
    const started = Date.now();
    const lock = survivor.newLock('orphan');
    await lock.lock(never(), () => undefined);
    const waited = Date.now() - started;
    expect(waited).toBeLessThan(600 + 1500);
    await lock.unlock();
  });

  it('keeps a slow holder’s lock alive past its TTL by renewing it', async () => {
    const slow = await open('xr3:', { ttlMs: 300 });
    const impatient = await open('xr3:', { acquireTimeoutMs: 900 });
    const held = slow.newLock('long');
    await held.lock(never(), () => undefined);
    // Three TTLs later the holder still holds it: the waiter times out with 423.
    await expect(impatient.newLock('long').lock(never(), () => undefined)).rejects.toMatchObject({
      code: 'upload_locked',
      status: 423,
    });
    await held.unlock();
  });

  it('answers 503 (service_unavailable), not a hang, while Redis is down, and works again after it is back', async () => {
    const own = await startRedis();
    const clients = await connectRedis(own.url, silent);
    opened.push(clients);
    const locker = new RedisLocker({
      commands: clients.commands,
      subscriber: clients.subscriber,
      logger: silent,
      prefix: 'down:',
    });
    await locker.start();
    await own.stop();
    const started = Date.now();
    await expect(locker.newLock('x').lock(never(), () => undefined)).rejects.toMatchObject({
      code: 'service_unavailable',
      status: 503,
    });
    expect(Date.now() - started).toBeLessThan(3000);
    await own.start();
    await expect
      .poll(
        async () => {
          const lock = locker.newLock('x');
          try {
            await lock.lock(never(), () => undefined);
            await lock.unlock();
            return 'ok';
          } catch (error) {
            return (error as { code?: string }).code;
          }
        },
        { timeout: 10_000, interval: 200 },
      )
      .toBe('ok');
  });
});
