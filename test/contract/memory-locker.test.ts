import { describe, expect, it } from 'vitest';
import { MemoryLocker } from '../../src/adapters/embedded/memory-locker.js';
import { lockerContract } from './locker.contract.js';

lockerContract('embedded MemoryLocker', async ({ acquireTimeoutMs }) => {
  const locker = new MemoryLocker({ acquireTimeoutMs });
  return { locker, heldCount: () => locker.heldCount, close: async () => undefined };
});

describe('embedded MemoryLocker', () => {
  it('serves waiters in arrival order', async () => {
    const locker = new MemoryLocker();
    const holder = locker.newLock('u5');
    await holder.lock(new AbortController().signal, () => undefined);
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) => {
      const lock = locker.newLock('u5');
      return lock
        .lock(new AbortController().signal, () => undefined)
        .then(async () => {
          order.push(n);
          await lock.unlock();
        });
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await holder.unlock();
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3]);
  });

  it('waits without spinning: a 600 ms wait costs far less than 600 ms of CPU', async () => {
    const locker = new MemoryLocker();
    const holder = locker.newLock('busy');
    await holder.lock(new AbortController().signal, () => undefined);
    const before = process.cpuUsage();
    const waiting = locker.newLock('busy').lock(new AbortController().signal, () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 600));
    await holder.unlock();
    await waiting;
    const used = process.cpuUsage(before);
    // @tus/server's MemoryLocker burns close to the full wait; promise-based waiting burns almost none.
    expect((used.user + used.system) / 1000).toBeLessThan(200);
  });
});
