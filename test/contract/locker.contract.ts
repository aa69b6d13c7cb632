import { afterEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import type { Locker } from '../../src/core/ports.js';

export interface LockerUnderTest {
  readonly locker: Locker;
  /** Locks currently held, to prove nothing leaks. */
  heldCount(): number;
  close(): Promise<void>;
}

const never = () => new AbortController().signal;
const noop = () => undefined;

/**
 * The contract every Locker implementation passes (embedded now, Redis later): exclusion, release
 * requests delivered to the holder, abort and timeout while waiting, hand-over, no leaks.
 */
export function lockerContract(
  name: string,
  make: (options: { acquireTimeoutMs: number }) => Promise<LockerUnderTest>,
) {
  describe(`Locker contract: ${name}`, () => {
    let current: LockerUnderTest | undefined;
    const setup = async (acquireTimeoutMs = 2000) => (current = await make({ acquireTimeoutMs }));
    afterEach(async () => {
      await current?.close();
      current = undefined;
    });

    it('gives a lock to one holder at a time', async () => {
      const { locker } = await setup();
      const first = locker.newLock('u1');
      await first.lock(never(), noop);
      let secondHeld = false;
      const second = locker.newLock('u1');
      const acquired = second.lock(never(), noop).then(() => (secondHeld = true));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(secondHeld).toBe(false);
      await first.unlock();
      await acquired;
      expect(secondHeld).toBe(true);
      await second.unlock();
    });

    it('keeps locks on different uploads independent', async () => {
      const { locker } = await setup();
      const a = locker.newLock('a');
      const b = locker.newLock('b');
      await a.lock(never(), noop);
      await b.lock(never(), noop);
      await a.unlock();
      await b.unlock();
    });

    it('asks the holder to release when someone else waits', async () => {
      const { locker } = await setup();
      const holder = locker.newLock('u2');
      let releaseRequested = 0;
      await holder.lock(never(), () => {
        releaseRequested++;
        void holder.unlock();
      });
      await locker.newLock('u2').lock(never(), noop);
      expect(releaseRequested).toBeGreaterThanOrEqual(1);
    });

    it('stops waiting with request_aborted when the waiter is aborted, and the lock stays usable', async () => {
      const { locker } = await setup();
      const holder = locker.newLock('u3');
      await holder.lock(never(), noop);
      const controller = new AbortController();
      const waiting = locker.newLock('u3').lock(controller.signal, noop);
      setTimeout(() => controller.abort(), 20);
      await expect(waiting).rejects.toMatchObject({ code: 'request_aborted' });
      await holder.unlock();
      const next = locker.newLock('u3');
      await next.lock(never(), noop);
      await next.unlock();
    });

    it('gives up with upload_locked (423) when the holder never lets go', async () => {
      const { locker } = await setup(200);
      await locker.newLock('u4').lock(never(), noop);
      const started = Date.now();
      const error = await locker
        .newLock('u4')
        .lock(never(), noop)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FerryError);
      expect(error).toMatchObject({ code: 'upload_locked', status: 423 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    });

    it('unlock never throws, also when not held or called twice', async () => {
      const { locker } = await setup();
      const lock = locker.newLock('u6');
      await expect(lock.unlock()).resolves.toBeUndefined();
      await lock.lock(never(), noop);
      await lock.unlock();
      await expect(lock.unlock()).resolves.toBeUndefined();
    });

    it('a stale unlock from a former holder does not free the new holder’s lock', async () => {
      const { locker } = await setup();
      const first = locker.newLock('u7');
      await first.lock(never(), noop);
      await first.unlock();
      const second = locker.newLock('u7');
      await second.lock(never(), noop);
      await first.unlock();
      let thirdHeld = false;
      const third = locker.newLock('u7');
      const acquired = third.lock(never(), noop).then(() => (thirdHeld = true));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(thirdHeld).toBe(false);
      await second.unlock();
      await acquired;
      await third.unlock();
    });

    it('requestReleaseOfAll asks every holder to release', async () => {
      const { locker } = await setup();
      const released: string[] = [];
      for (const id of ['x', 'y']) {
        const lock = locker.newLock(id);
        await lock.lock(never(), () => {
          released.push(id);
        });
      }
      locker.requestReleaseOfAll();
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(released.sort()).toEqual(['x', 'y']);
    });

    it('leaks no lock and never lets two holders in after thousands of contended operations', async () => {
      const under = await setup(30_000);
      const ids = Array.from({ length: 20 }, (_, i) => `many-${i}`);
      const inside = new Map<string, number>();
      let violations = 0;
      let operations = 0;
      // 40 workers, 50 lock/unlock each, on 20 uploads: two contenders per upload on average.
      await Promise.all(
        Array.from({ length: 40 }, async (_, worker) => {
          for (let n = 0; n < 50; n++) {
            const id = ids[(worker * 7 + n) % ids.length]!;
            const lock = under.locker.newLock(id);
            await lock.lock(never(), noop);
            inside.set(id, (inside.get(id) ?? 0) + 1);
            if (inside.get(id)! > 1) violations++;
            await new Promise((resolve) => setImmediate(resolve));
            inside.set(id, inside.get(id)! - 1);
            await lock.unlock();
            operations++;
          }
        }),
      );
      expect(operations).toBe(2000);
      expect(violations).toBe(0);
      expect(under.heldCount()).toBe(0);
    }, 60_000);
  });
}
