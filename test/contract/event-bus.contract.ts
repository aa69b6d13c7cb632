import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus, EventFilter, EventSubscription, FileEvent, FileEventInput } from '../../src/core/ports.js';

export interface EventBusUnderTest {
  /** The bus the tests mostly use. */
  readonly bus: EventBus;
  /**
   * Another bus over the same backend: a second replica where the implementation has them (Redis),
   * the same instance where it does not (embedded). Closed by `close`.
   */
  newBus(): Promise<EventBus>;
  /** Orders two ids of this backend: negative when `a` came first. */
  compareIds(a: string, b: string): number;
  close(): Promise<void>;
}

let counter = 0;
/** A tenant no other test uses, so what one test published never shows up in another. */
const uniqueTenant = () => `tenant-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

function input(tenant: string, n: number, extra: Partial<FileEventInput> = {}): FileEventInput {
  return {
    event: 'progress',
    fileId: `file-${n}`,
    tenant,
    batch: null,
    at: new Date(1_700_000_000_000 + n).toISOString(),
    fields: { received_bytes: n, note: `event ${n}` },
    ...extra,
  };
}

interface Collector {
  readonly events: FileEvent[];
  readonly ids: () => string[];
  subscription: EventSubscription;
}

async function collect(bus: EventBus, filter: EventFilter, afterId?: string): Promise<Collector> {
  const events: FileEvent[] = [];
  const subscription = await bus.subscribe(filter, afterId, (event) => events.push(event));
  return { events, ids: () => events.map((event) => event.id), subscription };
}

async function waitForCount(events: readonly unknown[], count: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (events.length < count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} events, got ${events.length} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Waits until `collector` has received the event with `id`. Delivery is in order, so an event that
 * was going to arrive before it has arrived by then: a later, matching "sentinel" event proves that
 * something did NOT arrive without sleeping.
 */
async function waitForId(collector: Collector, id: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!collector.ids().includes(id)) {
    if (Date.now() > deadline) throw new Error(`event ${id} did not arrive within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * The contract every EventBus implementation passes (embedded and Redis): live delivery in order,
 * filters, replay after an id, replay joined to live without gap or duplicate while events keep
 * coming, closing, listener failures, increasing ids, a bounded replay buffer, and (where a backend
 * has several buses) delivery across buses.
 */
export function eventBusContract(
  name: string,
  make: (options: { replayLimit?: number }) => Promise<EventBusUnderTest>,
) {
  describe(`EventBus contract: ${name}`, () => {
    let current: EventBusUnderTest | undefined;
    const setup = async (options: { replayLimit?: number } = {}) => (current = await make(options));
    afterEach(async () => {
      await current?.close();
      current = undefined;
    });

    const expectIncreasing = (under: EventBusUnderTest, ids: readonly string[]) => {
      for (let i = 1; i < ids.length; i++) {
        expect(under.compareIds(ids[i - 1]!, ids[i]!), `${ids[i - 1]} before ${ids[i]}`).toBeLessThan(0);
      }
    };

    it('delivers live events in publish order, as published, with the ids publish returned', async () => {
      const under = await setup();
      const tenant = uniqueTenant();
      const received = await collect(under.bus, { tenant });
      const published: FileEvent[] = [];
      for (let n = 0; n < 5; n++) published.push(await under.bus.publish(input(tenant, n)));
      await waitForCount(received.events, 5);
      expect(received.events).toEqual(published);
      expect(received.events.map((event) => event.fields)).toEqual(
        [0, 1, 2, 3, 4].map((n) => ({ received_bytes: n, note: `event ${n}` })),
      );
      expect(received.events[0]).toMatchObject({ event: 'progress', fileId: 'file-0', tenant, batch: null });
      expectIncreasing(under, received.ids());
    });

    it('without afterId delivers only events published after subscribing', async () => {
      const under = await setup();
      const tenant = uniqueTenant();
      await under.bus.publish(input(tenant, 1));
      await under.bus.publish(input(tenant, 2));
      const received = await collect(under.bus, { tenant });
      const later = await under.bus.publish(input(tenant, 3));
      await waitForId(received, later.id);
      expect(received.ids()).toEqual([later.id]);
    });

    it('delivers to each subscriber only its tenant’s events, narrowed by file and batch when given', async () => {
      const under = await setup();
      const tenant = uniqueTenant();
      const other = uniqueTenant();
      const all = await collect(under.bus, { tenant });
      const byFile = await collect(under.bus, { tenant, fileId: 'f1' });
      const byBatch = await collect(under.bus, { tenant, batch: 'b1' });
      const byBoth = await collect(under.bus, { tenant, fileId: 'f1', batch: 'b1' });
      const otherTenant = await collect(under.bus, { tenant: other });
      const publish = (t: string, fileId: string, batch: string | null) =>
        under.bus.publish(input(t, 0, { fileId, batch }));
      const a = await publish(tenant, 'f1', null);
      const b = await publish(tenant, 'f2', 'b1');
      const c = await publish(tenant, 'f1', 'b1');
      const d = await publish(other, 'f1', 'b1');
      const e = await publish(tenant, 'f2', null);
      const f = await publish(tenant, 'f1', 'b2');
      // Sentinels that match every filter of their tenant: after them, nothing else is coming.
      const last = await publish(tenant, 'f1', 'b1');
      const lastOther = await publish(other, 'f9', null);
      for (const collector of [all, byFile, byBatch, byBoth]) await waitForId(collector, last.id);
      await waitForId(otherTenant, lastOther.id);
      expect(all.ids()).toEqual([a, b, c, e, f, last].map((event) => event.id));
      expect(byFile.ids()).toEqual([a, c, f, last].map((event) => event.id));
      expect(byBatch.ids()).toEqual([b, c, last].map((event) => event.id));
      expect(byBoth.ids()).toEqual([c, last].map((event) => event.id));
      expect(otherTenant.ids()).toEqual([d, lastOther].map((event) => event.id));
    });

    it('replays exactly the matching events after afterId, in order, then continues with live ones', async () => {
      const under = await setup();
      const tenant = uniqueTenant();
      const other = uniqueTenant();
      const published: FileEvent[] = [];
      for (let n = 0; n < 12; n++) published.push(await under.bus.publish(input(n % 3 === 0 ? other : tenant, n)));
      const afterId = published[4]!.id;
      const received = await collect(under.bus, { tenant }, afterId);
      const expectedReplay = [5, 7, 8, 10, 11].map((n) => published[n]!.id);
      await waitForCount(received.events, expectedReplay.length);
      const live = await under.bus.publish(input(tenant, 99));
      await waitForId(received, live.id);
      expect(received.ids()).toEqual([...expectedReplay, live.id]);
      expect(received.events[0]).toEqual(published[5]);

      const byFile = await collect(under.bus, { tenant, fileId: 'file-8' }, published[0]!.id);
      const sentinel = await under.bus.publish(input(tenant, 8));
      await waitForId(byFile, sentinel.id);
      expect(byFile.ids()).toEqual([published[8]!.id, sentinel.id]);

      // A client that missed nothing (its afterId is the newest event) gets only what comes next.
      const upToDate = await collect(under.bus, { tenant }, sentinel.id);
      const next = await under.bus.publish(input(tenant, 100));
      await waitForId(upToDate, next.id);
      expect(upToDate.ids()).toEqual([next.id]);
    });

    it('replays every retained event for an afterId that is not one of its ids', async () => {
      const under = await setup();
      const tenant = uniqueTenant();
      const published: FileEvent[] = [];
      for (let n = 0; n < 4; n++) published.push(await under.bus.publish(input(tenant, n)));
      for (const afterId of ['garbage', '', '-1', '0', '12-ab', '1-2-3']) {
        const received = await collect(under.bus, { tenant }, afterId);
        await waitForCount(received.events, 4);
        received.subscription.close();
        expect(received.ids(), `afterId ${JSON.stringify(afterId)}`).toEqual(published.map((event) => event.id));
      }
    });

    it('joins replay and live without a gap or a duplicate while events are published all along', async () => {
      const under = await setup();
      const otherBus = await under.newBus();
      const tenant = uniqueTenant();
      const published: FileEvent[] = [];
      for (let n = 0; n < 100; n++) published.push(await under.bus.publish(input(tenant, n)));
      // Four writers keep several publishes in flight while subscriptions start, on both buses where
      // there are two, each replaying from a different point or live only.
      const starts: { afterId: string | undefined; seenBefore: string[]; collector: Promise<Collector> }[] = [];
      const writer = async (w: number) => {
        for (let i = 0; i < 50; i++) {
          if (i === 5 + w * 9 || i === 30 + w * 4) {
            const afterId = i < 30 ? published[published.length - 1 - 20 * w]!.id : undefined;
            const bus = (w + i) % 2 ? otherBus : under.bus;
            const seenBefore = published.map((event) => event.id);
            starts.push({ afterId, seenBefore, collector: collect(bus, { tenant }, afterId) });
          }
          published.push(await under.bus.publish(input(tenant, 100 + w * 50 + i)));
        }
      };
      await Promise.all([0, 1, 2, 3].map(writer));
      const sentinel = await under.bus.publish(input(tenant, 300));
      published.push(sentinel);
      const ordered = published.map((event) => event.id).sort(under.compareIds);
      const position = new Map(ordered.map((id, index) => [id, index]));
      expect(starts).toHaveLength(8);
      for (const start of starts) {
        const collector = await start.collector;
        await waitForId(collector, sentinel.id);
        const positions = collector.ids().map((id) => position.get(id)!);
        const first = start.afterId === undefined ? positions[0]! : position.get(start.afterId)! + 1;
        if (start.afterId === undefined) {
          // Live only: nothing published before subscribing, then everything.
          expect(first).toBeGreaterThan(Math.max(...start.seenBefore.map((id) => position.get(id)!)));
        }
        // Exactly every event from the first one on, each once, in order.
        expect(positions).toEqual(Array.from({ length: ordered.length - first }, (_, i) => first + i));
      }
    });

    it('stops delivering to a subscription once it is closed, and only to it', async () => {
      const under = await setup();
      const tenant = uniqueTenant();
      const closing = await collect(under.bus, { tenant });
      const staying = await collect(under.bus, { tenant });
      const first = await under.bus.publish(input(tenant, 1));
      await waitForId(closing, first.id);
      closing.subscription.close();
      closing.subscription.close();
      const second = await under.bus.publish(input(tenant, 2));
      await waitForId(staying, second.id);
      expect(closing.ids()).toEqual([first.id]);
      expect(staying.ids()).toEqual([first.id, second.id]);
    });

    it('never calls a listener again once the bus is closed, not even during a replay', async () => {
      const under = await setup();
      const tenant = uniqueTenant();
      for (let n = 0; n < 20; n++) await under.bus.publish(input(tenant, n));
      const bus = await under.newBus();
      const live = await collect(bus, { tenant });
      let replayed = 0;
      let closing: Promise<void> | undefined;
      const subscription = await bus.subscribe({ tenant }, 'replay everything', () => {
        replayed++;
        closing ??= bus.close();
      });
      await closing;
      expect(replayed).toBe(1);
      expect(live.events).toEqual([]);
      subscription.close();
      // Another bus on the same backend (or the closed one itself) keeps publishing: nothing arrives.
      const publisher = bus === under.bus ? bus : under.bus;
      await publisher.publish(input(tenant, 21));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(replayed).toBe(1);
      expect(live.events).toEqual([]);
      const late = await collect(bus, { tenant }, 'replay everything');
      expect(late.events).toEqual([]);
    });

    it('keeps delivering to the other listeners, and later events, when a listener throws', async () => {
      const under = await setup();
      const tenant = uniqueTenant();
      let thrown = 0;
      await under.bus.subscribe({ tenant }, undefined, () => {
        thrown++;
        throw new Error('listener bug');
      });
      const healthy = await collect(under.bus, { tenant });
      const published: FileEvent[] = [];
      for (let n = 0; n < 3; n++) published.push(await under.bus.publish(input(tenant, n)));
      await waitForCount(healthy.events, 3);
      expect(healthy.ids()).toEqual(published.map((event) => event.id));
      expect(thrown).toBe(3);
      const replaying = await collect(under.bus, { tenant }, published[0]!.id);
      await waitForCount(replaying.events, 2);
      expect(replaying.ids()).toEqual([published[1]!.id, published[2]!.id]);
    });

    it('keeps every subscriber’s events in id order when a listener publishes', async () => {
      const under = await setup();
      const tenant = uniqueTenant();
      const chained: Promise<FileEvent>[] = [];
      await under.bus.subscribe({ tenant }, undefined, (event) => {
        if (event.event === 'created') chained.push(under.bus.publish(input(tenant, 2, { event: 'queued' })));
      });
      const watcher = await collect(under.bus, { tenant });
      const created = await under.bus.publish(input(tenant, 1, { event: 'created' }));
      const next = await under.bus.publish(input(tenant, 3, { event: 'processing' }));
      await waitForCount(chained, 1);
      const queued = await chained[0]!;
      await waitForCount(watcher.events, 3);
      expect(new Set(watcher.ids())).toEqual(new Set([created.id, queued.id, next.id]));
      expectIncreasing(under, watcher.ids());
    });

    it('gives every event a new id, greater than the one before, on either bus of a backend', async () => {
      const under = await setup();
      const other = await under.newBus();
      const tenant = uniqueTenant();
      const ids: string[] = [];
      for (let n = 0; n < 20; n++) ids.push((await (n % 2 ? other : under.bus).publish(input(tenant, n))).id);
      expect(new Set(ids).size).toBe(20);
      expectIncreasing(under, ids);
    });

    it('retains only about replayLimit events: the newest, for replay', async () => {
      const replayLimit = 10;
      const under = await setup({ replayLimit });
      const tenant = uniqueTenant();
      const published: FileEvent[] = [];
      for (let n = 0; n < 250; n++) published.push(await under.bus.publish(input(tenant, n)));
      // An afterId that is no longer retained replays what is: a run of the newest events.
      const received = await collect(under.bus, { tenant }, published[0]!.id);
      const sentinel = await under.bus.publish(input(tenant, 250));
      published.push(sentinel);
      await waitForId(received, sentinel.id);
      const ids = received.ids();
      expect(ids.length).toBeGreaterThan(replayLimit);
      expect(ids.length).toBeLessThan(200);
      expect(ids).toEqual(published.slice(published.length - ids.length).map((event) => event.id));
    });

    it('delivers to a subscriber on one bus what another bus over the same backend published', async () => {
      const under = await setup();
      const other = await under.newBus();
      const tenant = uniqueTenant();
      const early = await under.bus.publish(input(tenant, 0));
      const replayed = await collect(other, { tenant }, 'replay everything');
      const live = await collect(other, { tenant });
      const later = await under.bus.publish(input(tenant, 1));
      await waitForId(replayed, later.id);
      await waitForId(live, later.id);
      expect(replayed.events).toEqual([early, later]);
      expect(live.events).toEqual([later]);
    });
  });
}
