import { eventMatchesFilter } from '../../core/files/matching.js';
import type { Logger } from 'pino';
import type { EventBus, EventFilter, EventSubscription, FileEvent, FileEventInput } from '../../core/ports.js';

export interface MemoryEventBusOptions {
  /** How many of the latest events are kept for replay. */
  readonly replayLimit?: number;
  /** Where listener exceptions are reported; without one they are dropped. */
  readonly logger?: Logger;
}

interface Subscriber {
  readonly filter: EventFilter;
  readonly listener: (event: FileEvent) => void;
  /** Number of the last event this subscriber was given or has no use for: live delivery skips up to it. */
  after: number;
  closed: boolean;
}

/**
 * The embedded event bus: one process, synchronous delivery in publish order, and a ring buffer of
 * the latest `replayLimit` events for replay.
 *
 * Ids are decimal strings of a counter that starts at `Date.now() * 1000` when the bus is made, so
 * they keep increasing across restarts (unless more than 1000 events a millisecond were published
 * for the whole life of the previous process, or the clock went back) and a client's `Last-Event-ID`
 * from before a restart never hides new events. They stay below 2^53, so plain numbers compare them.
 *
 * An `afterId` that is not a number (garbage, another bus's id) replays every event still retained,
 * as does one older than the oldest retained event: replay reaches as far back as the buffer does.
 */
export class MemoryEventBus implements EventBus {
  readonly replayLimit: number;
  private readonly ring: FileEvent[] = [];
  /** Index in `ring` of the oldest event once the ring is full. */
  private oldest = 0;
  private lastNumber: number;
  private readonly subscribers = new Set<Subscriber>();
  /** Events published while a delivery is under way (a listener published): delivered after it, in order. */
  private readonly outbox: FileEvent[] = [];
  private delivering = false;
  private closed = false;

  constructor(private readonly options: MemoryEventBusOptions = {}) {
    this.replayLimit = options.replayLimit ?? 10_000;
    if (!Number.isSafeInteger(this.replayLimit) || this.replayLimit < 1) {
      throw new RangeError(`replayLimit must be a positive integer, not ${this.replayLimit}`);
    }
    this.lastNumber = Date.now() * 1000;
  }

  async publish(input: FileEventInput): Promise<FileEvent> {
    const event = toFileEvent(String(++this.lastNumber), input);
    this.retain(event);
    this.outbox.push(event);
    this.flush();
    return event;
  }

  async subscribe(
    filter: EventFilter,
    afterId: string | undefined,
    listener: (event: FileEvent) => void,
  ): Promise<EventSubscription> {
    // Everything published so far is either replayed below or not wanted: live delivery starts after it.
    const subscriber: Subscriber = { filter, listener, after: this.lastNumber, closed: this.closed };
    const subscription = {
      close: () => {
        subscriber.closed = true;
        this.subscribers.delete(subscriber);
      },
    };
    if (subscriber.closed) return subscription;
    this.subscribers.add(subscriber);
    if (afterId !== undefined) {
      // A listener that publishes during the replay must not get ahead of it: hold deliveries back
      // until the replay is done (when this runs inside a listener, the delivery under way does).
      const nested = this.delivering;
      this.delivering = true;
      try {
        for (const event of this.retainedAfter(afterNumber(afterId))) this.give(subscriber, event);
      } finally {
        this.delivering = nested;
      }
      this.flush();
    }
    return subscription;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const subscriber of this.subscribers) subscriber.closed = true;
    this.subscribers.clear();
  }

  private retain(event: FileEvent): void {
    if (this.ring.length < this.replayLimit) {
      this.ring.push(event);
      return;
    }
    this.ring[this.oldest] = event;
    this.oldest = (this.oldest + 1) % this.replayLimit;
  }

  /** Retained events after `after`, oldest first (a copy: a listener may publish while it is read). */
  private retainedAfter(after: number): FileEvent[] {
    const events: FileEvent[] = [];
    for (let n = 0; n < this.ring.length; n++) {
      const event = this.ring[(this.oldest + n) % this.ring.length]!;
      if (Number(event.id) > after) events.push(event);
    }
    return events;
  }

  /**
   * Delivers the outbox unless a delivery is already under way: a listener that publishes then
   * gets its event delivered after the current one has reached every subscriber, so every
   * subscriber sees events in id order.
   */
  private flush(): void {
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (let event = this.outbox.shift(); event; event = this.outbox.shift()) {
        const number = Number(event.id);
        // A subscriber added by a listener during this loop is visited too; `after` keeps it from
        // getting an event twice or one from before it subscribed.
        for (const subscriber of this.subscribers) {
          if (number <= subscriber.after) continue;
          subscriber.after = number;
          this.give(subscriber, event);
        }
      }
    } finally {
      this.delivering = false;
    }
  }

  private give(subscriber: Subscriber, event: FileEvent): void {
    if (subscriber.closed || !eventMatchesFilter(subscriber.filter, event)) return;
    try {
      subscriber.listener(event);
    } catch (error) {
      // One broken listener must not keep the event from the others, nor break the publisher.
      this.options.logger?.error({ err: error, event_id: event.id }, 'event listener threw');
    }
  }
}

/** The number after which to replay; anything that is not one of our ids replays everything retained. */
function afterNumber(afterId: string): number {
  if (!/^\d{1,16}$/.test(afterId)) return -1;
  const number = Number(afterId);
  return Number.isSafeInteger(number) ? number : -1;
}

/** A fresh object with only the event's own fields: what callers pass in may carry more. */
function toFileEvent(id: string, input: FileEventInput): FileEvent {
  const { event, fileId, tenant, batch, at, fields } = input;
  return fields === undefined
    ? { id, event, fileId, tenant, batch, at }
    : { id, event, fileId, tenant, batch, at, fields };
}
