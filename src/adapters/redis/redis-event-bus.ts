import { eventMatchesFilter } from '../../core/files/matching.js';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { EventBus, EventFilter, EventSubscription, FileEvent, FileEventInput } from '../../core/ports.js';
import { redisCall } from './redis-clients.js';

export interface RedisEventBusOptions {
  /** Redis URL: the bus opens its own connection for blocking reads (they would stall shared commands). */
  readonly url: string;
  /** The shared command connection (XADD, XRANGE). */
  readonly commands: Redis;
  /** Key prefix, e.g. `ferry:`; the stream is `${prefix}events`. */
  readonly prefix: string;
  readonly logger: Logger;
  /** About how many of the latest events the stream keeps for replay (`XADD MAXLEN ~`). */
  readonly replayLimit?: number;
  /**
   * How long one read waits for new entries before it asks again; a read unanswered for twice as
   * long plus a second is taken for a dead connection.
   */
  readonly blockMs?: number;
  /** Pause before the reader tries again after Redis failed a read. */
  readonly retryDelayMs?: number;
  /** Entries per XRANGE while replaying, so a long replay never comes back as one huge reply. */
  readonly replayPageSize?: number;
}

interface Subscriber {
  readonly filter: EventFilter;
  readonly listener: (event: FileEvent) => void;
  closed: boolean;
  /** Live events collected while the subscriber's replay runs; undefined once it is live. */
  pending: FileEvent[] | undefined;
  /**
   * Live events up to this id were replayed or are not wanted; undefined once a later one was
   * delivered (the reader goes in stream order, so every event after it is later too).
   */
  skipUpTo: string | undefined;
}

/** Entries one read takes at most, so a reader that fell behind catches up in bounded steps. */
const READ_COUNT = 1000;
const MAX_ID_PART = 2n ** 64n - 1n;

/**
 * The event bus shared by every replica: one Redis stream, `${prefix}events`. Publishing is an XADD
 * whose stream id is the event id, so ids are ordered across replicas. Each bus runs one reader loop
 * (`XREAD BLOCK` on its own connection, from the last id it delivered) and hands entries to its local
 * subscribers in stream order. When Redis fails a read the loop waits and reads again from where it
 * stopped, so nothing still in the stream is lost; after a restart of a Redis without persistence the
 * new stream's ids, taken from the clock, are above the old ones and reading carries on.
 *
 * Replay is an XRANGE after `afterId`; an `afterId` that is not a stream id (garbage, another bus's
 * id) replays every entry the stream retains, as does one older than the oldest retained entry. A
 * new subscriber notes the newest id in the stream, replays up to it, and collects live events
 * meanwhile; it is then handed only live events after that id, whether collected or still to come
 * from a lagging reader: no gap, no duplicate, nothing from before it subscribed.
 */
export class RedisEventBus implements EventBus {
  readonly key: string;
  readonly replayLimit: number;
  private readonly blockMs: number;
  private readonly retryDelayMs: number;
  private readonly replayPageSize: number;
  private readonly reader: Redis;
  private readonly subscribers = new Set<Subscriber>();
  /** Id of the last entry the reader handed out; the next read starts after it. */
  private lastId = '0-0';
  private state: 'new' | 'running' | 'closed' = 'new';
  private loop: Promise<void> | undefined;
  private cutPause: (() => void) | undefined;

  constructor(private readonly options: RedisEventBusOptions) {
    this.key = `${options.prefix}events`;
    this.replayLimit = options.replayLimit ?? 100_000;
    this.blockMs = options.blockMs ?? 5000;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.replayPageSize = options.replayPageSize ?? 1000;
    this.reader = new Redis(options.url, READER_OPTIONS);
    // The loop reports failed reads; without a listener ioredis would print every error itself.
    this.reader.on('error', (error: Error) => options.logger.debug({ err: error }, 'event reader connection error'));
  }

  /** Connects the reader and starts reading after the newest entry; call once before use. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('RedisEventBus.start() may be called once, before close()');
    try {
      await this.reader.connect();
      this.lastId = (await this.newestId()) ?? '0-0';
    } catch (error) {
      // Stop reconnecting, or the process could not exit.
      this.reader.disconnect();
      this.state = 'closed';
      throw error;
    }
    this.state = 'running';
    this.loop = this.run();
  }

  async publish(input: FileEventInput): Promise<FileEvent> {
    const stored = JSON.stringify(ownFields(input));
    const id = await redisCall(() =>
      this.options.commands.xadd(this.key, 'MAXLEN', '~', this.replayLimit, '*', 'e', stored),
    );
    // XADD answers null only with NOMKSTREAM, which is not used.
    return toFileEvent(id!, input);
  }

  async subscribe(
    filter: EventFilter,
    afterId: string | undefined,
    listener: (event: FileEvent) => void,
  ): Promise<EventSubscription> {
    if (this.state === 'new') throw new Error('RedisEventBus.start() must be called before subscribe()');
    const subscriber: Subscriber = {
      filter,
      listener,
      closed: this.state === 'closed',
      pending: [],
      skipUpTo: undefined,
    };
    const subscription = {
      close: () => {
        subscriber.closed = true;
        subscriber.pending = undefined;
        this.subscribers.delete(subscriber);
      },
    };
    if (subscriber.closed) return subscription;
    // From here on the reader puts every event into `pending`. Every event it handed out before is in
    // the stream already, so at or below `newest`, read next; so is every event published before this
    // call, though the reader, when it lags, may hand it out only later.
    this.subscribers.add(subscriber);
    let newest: string;
    try {
      newest = (await this.newestId()) ?? '0-0';
      if (afterId !== undefined) await this.replay(subscriber, afterId, newest);
    } catch (error) {
      subscription.close();
      throw error;
    }
    // Events up to `newest` were replayed or are not wanted (they came before the subscription, or
    // before `afterId`), whether they are pending now or the reader hands them out later. Those after
    // it go out now, then the reader delivers directly. No await from here on, so the reader cannot
    // slip an event in between.
    const pending = subscriber.pending ?? [];
    subscriber.pending = undefined;
    subscriber.skipUpTo = newest;
    for (const event of pending) this.offer(subscriber, event);
    return subscription;
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const subscriber of this.subscribers) {
      subscriber.closed = true;
      subscriber.pending = undefined;
    }
    this.subscribers.clear();
    this.cutPause?.();
    // Rejects the read under way, which ends the loop; no reconnection keeps the process alive.
    this.reader.disconnect();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failing = false;
    while (this.state === 'running') {
      let reply: [key: string, items: [id: string, fields: string[]][]][] | null;
      // Redis answers a blocked read within `blockMs`. Silence well past that means a peer that went
      // away without closing the connection: drop it and let ioredis reconnect (ioredis's own
      // `socketTimeout` would do this too, but its timer outlives `disconnect()` and holds the process).
      const watchdog = setTimeout(
        () => {
          this.options.logger.warn({ key: this.key }, 'the event stream read got no answer; reconnecting');
          this.reader.disconnect(true);
        },
        2 * this.blockMs + 1000,
      );
      try {
        reply = await this.reader.xread('COUNT', READ_COUNT, 'BLOCK', this.blockMs, 'STREAMS', this.key, this.lastId);
      } catch (error) {
        if (this.state !== 'running') return;
        if (!failing) {
          this.options.logger.warn({ err: error }, 'cannot read the event stream; retrying');
          failing = true;
        }
        await this.pause(this.retryDelayMs);
        continue;
      } finally {
        clearTimeout(watchdog);
      }
      if (failing) {
        this.options.logger.info('reading the event stream again');
        failing = false;
      }
      for (const [, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          this.lastId = id;
          const event = this.parse(id, fields);
          if (event) this.dispatch(event);
        }
      }
    }
  }

  private dispatch(event: FileEvent): void {
    for (const subscriber of this.subscribers) {
      if (subscriber.closed || !eventMatchesFilter(subscriber.filter, event)) continue;
      if (subscriber.pending) subscriber.pending.push(event);
      else this.offer(subscriber, event);
    }
  }

  /** Delivers a live event unless the subscriber's replay covered it. */
  private offer(subscriber: Subscriber, event: FileEvent): void {
    if (subscriber.skipUpTo !== undefined) {
      if (compareIds(event.id, subscriber.skipUpTo) <= 0) return;
      subscriber.skipUpTo = undefined;
    }
    this.give(subscriber, event);
  }

  /** Hands the retained entries after `afterId`, up to `newest`, to the subscriber, page by page. */
  private async replay(subscriber: Subscriber, afterId: string, newest: string): Promise<void> {
    const after = parseId(afterId);
    let start = after ? nextId(after) : '-';
    while (start !== undefined && !subscriber.closed) {
      const from = start;
      const entries = await redisCall(() =>
        this.options.commands.xrange(this.key, from, newest, 'COUNT', this.replayPageSize),
      );
      for (const [id, fields] of entries) {
        const event = this.parse(id, fields);
        if (event) this.give(subscriber, event);
      }
      const last = entries.at(-1);
      start = entries.length < this.replayPageSize || !last ? undefined : nextId(parseId(last[0])!);
    }
  }

  private give(subscriber: Subscriber, event: FileEvent): void {
    if (subscriber.closed || !eventMatchesFilter(subscriber.filter, event)) return;
    try {
      subscriber.listener(event);
    } catch (error) {
      // One broken listener must not keep the event from the others, nor stop the reader.
      this.options.logger.error({ err: error, event_id: event.id }, 'event listener threw');
    }
  }

  private async newestId(): Promise<string | undefined> {
    const newest = await redisCall(() => this.options.commands.xrevrange(this.key, '+', '-', 'COUNT', 1));
    return newest[0]?.[0];
  }

  /** The event an entry holds, or undefined (logged) when something else wrote to the stream. */
  private parse(id: string, fields: string[]): FileEvent | undefined {
    const index = fields.indexOf('e');
    try {
      const value: unknown = index >= 0 && index % 2 === 0 ? JSON.parse(fields[index + 1] ?? '') : undefined;
      if (isEventInput(value)) return toFileEvent(id, value);
    } catch {
      // Reported below.
    }
    this.options.logger.warn({ event_id: id, key: this.key }, 'skipping an event stream entry that is not an event');
    return undefined;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.cutPause = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.cutPause = done;
    });
  }
}

/**
 * The reader fails fast and leaves retrying to the loop: no offline queue, and a read under way is
 * rejected as soon as the connection drops (not resent on reconnect).
 */
const READER_OPTIONS: RedisOptions = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  connectTimeout: 2000,
  retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000),
  connectionName: 'ferry-events',
};

/** A stream id as [milliseconds, sequence], or undefined when it is not one. */
function parseId(id: string): [bigint, bigint] | undefined {
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(id);
  if (!match) return undefined;
  const ms = BigInt(match[1]!);
  const seq = BigInt(match[2]!);
  return ms <= MAX_ID_PART && seq <= MAX_ID_PART ? [ms, seq] : undefined;
}

/** The smallest id after `id` (an inclusive XRANGE start), or undefined when none can follow it. */
function nextId([ms, seq]: [bigint, bigint]): string | undefined {
  if (seq < MAX_ID_PART) return `${ms}-${seq + 1n}`;
  return ms < MAX_ID_PART ? `${ms + 1n}-0` : undefined;
}

/** Orders two stream ids; both come from Redis, so they parse. */
function compareIds(a: string, b: string): number {
  const [aMs, aSeq] = parseId(a)!;
  const [bMs, bSeq] = parseId(b)!;
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  return aSeq === bSeq ? 0 : aSeq < bSeq ? -1 : 1;
}

function isEventInput(value: unknown): value is FileEventInput {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record.event === 'string' &&
    typeof record.fileId === 'string' &&
    typeof record.tenant === 'string' &&
    typeof record.at === 'string' &&
    (record.batch === null || typeof record.batch === 'string') &&
    (record.fields === undefined || (typeof record.fields === 'object' && record.fields !== null))
  );
}

/** A fresh object with only the event's own fields: what callers pass in may carry more. */
function ownFields(input: FileEventInput): FileEventInput {
  const { event, fileId, tenant, batch, at, fields } = input;
  return fields === undefined ? { event, fileId, tenant, batch, at } : { event, fileId, tenant, batch, at, fields };
}

function toFileEvent(id: string, input: FileEventInput): FileEvent {
  return { id, ...ownFields(input) };
}
