import type { Logger } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { MemoryEventBus } from '../../src/adapters/embedded/memory-event-bus.js';
import type { FileEvent, FileEventInput } from '../../src/core/ports.js';
import { eventBusContract } from './event-bus.contract.js';

eventBusContract('embedded MemoryEventBus', async ({ replayLimit }) => {
  const bus = new MemoryEventBus({ replayLimit });
  return {
    bus,
    newBus: async () => bus,
    compareIds: (a, b) => Number(a) - Number(b),
    close: () => bus.close(),
  };
});

const input = (n: number): FileEventInput => ({
  event: 'progress',
  fileId: `f${n}`,
  tenant: 't',
  batch: null,
  at: new Date().toISOString(),
});

describe('embedded MemoryEventBus', () => {
  it('uses decimal ids from a counter started at the clock in microseconds, so a later bus continues above', async () => {
    const before = Date.now() * 1000;
    const first = new MemoryEventBus();
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push((await first.publish(input(n))).id);
    for (const id of ids) expect(id).toMatch(/^\d+$/);
    expect(Number(ids[0])).toBeGreaterThan(before);
    expect(Number(ids[0])).toBeLessThanOrEqual(Date.now() * 1000 + 1);
    await first.close();
    // A restart: the new process's bus starts from the clock again.
    await new Promise((resolve) => setTimeout(resolve, 2));
    const restarted = new MemoryEventBus();
    const next = await restarted.publish(input(5));
    expect(Number(next.id)).toBeGreaterThan(Number(ids[4]));
    // An id from before the restart is older than everything the new bus has: it replays all.
    const received: FileEvent[] = [];
    await restarted.subscribe({ tenant: 't' }, ids[4], (event) => received.push(event));
    expect(received).toEqual([next]);
  });

  it('delivers synchronously, before publish returns', async () => {
    const bus = new MemoryEventBus();
    const received: FileEvent[] = [];
    await bus.subscribe({ tenant: 't' }, undefined, (event) => received.push(event));
    void bus.publish(input(1));
    expect(received).toHaveLength(1);
  });

  it('replays before subscribe resolves', async () => {
    const bus = new MemoryEventBus();
    const first = await bus.publish(input(1));
    const second = await bus.publish(input(2));
    const received: FileEvent[] = [];
    await bus.subscribe({ tenant: 't' }, first.id, (event) => received.push(event));
    expect(received).toEqual([second]);
  });

  it('keeps exactly the last replayLimit events, 10 000 by default', async () => {
    const small = new MemoryEventBus({ replayLimit: 10 });
    const published: FileEvent[] = [];
    for (let n = 0; n < 25; n++) published.push(await small.publish(input(n)));
    const received: FileEvent[] = [];
    await small.subscribe({ tenant: 't' }, 'everything', (event) => received.push(event));
    expect(received).toEqual(published.slice(15));

    const bus = new MemoryEventBus();
    expect(bus.replayLimit).toBe(10_000);
    let firstId = '';
    for (let n = 0; n < 10_005; n++) {
      const event = await bus.publish(input(n));
      if (n === 5) firstId = event.id;
    }
    let count = 0;
    let oldest: string | undefined;
    await bus.subscribe({ tenant: 't' }, '', (event) => {
      oldest ??= event.id;
      count++;
    });
    expect(count).toBe(10_000);
    expect(oldest).toBe(firstId);
  });

  it('refuses a replayLimit that is not a positive integer', () => {
    for (const replayLimit of [0, -1, 1.5, Number.NaN]) {
      expect(() => new MemoryEventBus({ replayLimit })).toThrow(RangeError);
    }
  });

  it('reports a throwing listener to the logger', async () => {
    const error = vi.fn();
    const bus = new MemoryEventBus({ logger: { error } as unknown as Logger });
    await bus.subscribe({ tenant: 't' }, undefined, () => {
      throw new Error('listener bug');
    });
    const event = await bus.publish(input(1));
    expect(error).toHaveBeenCalledTimes(1);
    expect(error.mock.calls[0]![0]).toMatchObject({ event_id: event.id, err: { message: 'listener bug' } });
  });
});
