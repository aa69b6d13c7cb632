import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type RedisClients } from '../../src/adapters/redis/redis-clients.js';
import { RedisEventBus } from '../../src/adapters/redis/redis-event-bus.js';
import type { FileEvent, FileEventInput } from '../../src/core/ports.js';
import { REPO_ROOT } from '../helpers/ferry-process.js';
import { until } from '../helpers/poll.js';
import { freePort } from '../helpers/ports.js';
import { startRedis, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';
import { eventBusContract } from './event-bus.contract.js';

const silent = pino({ level: 'silent' });
let redis: RedisServer;
let prefixCounter = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await stopAllRedis();
});

/** Orders two stream ids (`ms-seq`). */
function compareStreamIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bMs, bSeq] = b.split('-').map(BigInt) as [bigint, bigint];
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  return aSeq === bSeq ? 0 : aSeq < bSeq ? -1 : 1;
}

/** Log lines, parsed, for tests that check what the bus reported. */
function capturingLogger(): { logger: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

interface Replica {
  readonly bus: RedisEventBus;
  readonly clients: RedisClients;
}

/** A bus with its own connections, as one replica of Ferry has. */
async function replica(
  url: string,
  prefix: string,
  options: { replayLimit?: number; replayPageSize?: number; logger?: Logger } = {},
): Promise<Replica> {
  const clients = await connectRedis(url, silent);
  const bus = new RedisEventBus({ url, commands: clients.commands, prefix, logger: silent, ...options });
  await bus.start();
  return { bus, clients };
}

async function closeReplica({ bus, clients }: Replica): Promise<void> {
  await bus.close();
  await clients.close();
}

eventBusContract('RedisEventBus (real redis-server)', async ({ replayLimit }) => {
  const prefix = `contract${++prefixCounter}:`;
  const replicas: Replica[] = [];
  const newBus = async () => {
    // A small replay page, so replays that race with publishing span many XRANGE calls.
    const made = await replica(redis.url, prefix, { replayLimit, replayPageSize: 7 });
    replicas.push(made);
    return made.bus;
  };
  const bus = await newBus();
  return {
    bus,
    newBus,
    compareIds: compareStreamIds,
    close: async () => {
      await Promise.all(replicas.map(closeReplica));
    },
  };
});

const input = (tenant: string, n: number): FileEventInput => ({
  event: 'progress',
  fileId: `f${n}`,
  tenant,
  batch: null,
  at: new Date().toISOString(),
  fields: { received_bytes: n },
});

function collector(bus: RedisEventBus, tenant: string, afterId?: string) {
  const events: FileEvent[] = [];
  const subscribed = bus.subscribe({ tenant }, afterId, (event) => events.push(event));
  return { events, ids: () => events.map((event) => event.id), subscribed };
}

const arrived = (events: FileEvent[], id: string, timeoutMs = 5000) =>
  until(
    `event ${id}`,
    () => events.map((event) => event.id),
    (ids) => ids.includes(id),
    { timeoutMs, everyMs: 10 },
  );

describe('RedisEventBus across replicas and Redis failures', () => {
  const replicas: Replica[] = [];
  const open = async (url: string, prefix: string, options: { logger?: Logger } = {}) => {
    const made = await replica(url, prefix, options);
    replicas.push(made);
    return made;
  };
  afterAll(async () => {
    await Promise.all(replicas.map(closeReplica));
  });

  it('gives subscribers on two replicas the same events in the same order while both publish', async () => {
    const a = await open(redis.url, 'replicas:');
    const b = await open(redis.url, 'replicas:');
    const onA = collector(a.bus, 't');
    const onB = collector(b.bus, 't');
    await Promise.all([onA.subscribed, onB.subscribed]);
    const published = (
      await Promise.all(
        [a, b].map(async ({ bus }, replicaIndex) => {
          const mine: FileEvent[] = [];
          for (let n = 0; n < 50; n++) mine.push(await bus.publish(input('t', replicaIndex * 100 + n)));
          return mine;
        }),
      )
    ).flat();
    const sentinel = await a.bus.publish(input('t', 999));
    await arrived(onA.events, sentinel.id);
    await arrived(onB.events, sentinel.id);
    const expected = [...published, sentinel].map((event) => event.id).sort(compareStreamIds);
    expect(onA.ids()).toEqual(expected);
    expect(onB.ids()).toEqual(expected);
    // Events published on A reached B's subscriber, and the other way round.
    expect(onB.events.filter((event) => event.fileId === 'f0')).toHaveLength(1);
    expect(onA.events.filter((event) => event.fileId === 'f100')).toHaveLength(1);
  });

  it('answers 503 while Redis is down and keeps delivering once a restarted Redis is back', async () => {
    const own = await startRedis();
    const { logger, lines } = capturingLogger();
    const { bus } = await open(own.url, 'restart:', { logger });
    const live = collector(bus, 't');
    await live.subscribed;
    const before = await bus.publish(input('t', 1));
    await arrived(live.events, before.id);

    await own.stop();
    const started = Date.now();
    await expect(bus.publish(input('t', 2))).rejects.toMatchObject({ code: 'service_unavailable', status: 503 });
    await expect(bus.subscribe({ tenant: 't' }, before.id, () => undefined)).rejects.toMatchObject({
      code: 'service_unavailable',
    });
    expect(Date.now() - started).toBeLessThan(3000);

    await own.start();
    // The command connection reconnects with backoff: publish until it takes.
    const after = await until(
      'a publish after the restart',
      () => bus.publish(input('t', 3)).catch(() => undefined),
      (event) => event !== undefined,
      { timeoutMs: 10_000, everyMs: 100 },
    );
    await arrived(live.events, after!.id, 10_000);
    const more = await bus.publish(input('t', 4));
    await arrived(live.events, more.id);
    expect(live.ids()).toEqual([before.id, after!.id, more.id]);
    expect(lines.some((line) => line.level === 40 && line.msg === 'cannot read the event stream; retrying')).toBe(true);
    expect(lines.some((line) => line.msg === 'reading the event stream again')).toBe(true);
  });

  it('loses and repeats nothing when its reader connection is killed while events are published', async () => {
    const own = await startRedis();
    const { logger, lines } = capturingLogger();
    const { bus } = await open(own.url, 'kill:', { logger });
    const live = collector(bus, 't');
    await live.subscribed;
    const first = await bus.publish(input('t', 0));
    await arrived(live.events, first.id);

    const admin = new Redis(own.url);
    try {
      const readerId = async () =>
        /(?:^|\n)id=(\d+) .*name=ferry-events /.exec((await admin.client('LIST')) as string)?.[1];
      const killed = await readerId();
      expect(killed).toBeDefined();
      expect(await admin.client('KILL', 'ID', killed!)).toBe(1);
      // Published while the reader is away (it reconnects after a pause): read when it is back.
      const during: FileEvent[] = [];
      for (let n = 1; n <= 5; n++) during.push(await bus.publish(input('t', n)));
      await arrived(live.events, during[4]!.id);
      const after = await bus.publish(input('t', 6));
      await arrived(live.events, after.id);
      expect(live.ids()).toEqual([first, ...during, after].map((event) => event.id));
      const reconnected = await readerId();
      expect(reconnected).toBeDefined();
      expect(reconnected).not.toBe(killed);
      expect(lines.some((line) => line.msg === 'cannot read the event stream; retrying')).toBe(true);
    } finally {
      admin.disconnect();
    }
  });

  it('drops and reopens a reader connection whose server stops answering, then delivers again', async () => {
    const own = await startRedis();
    const { logger, lines } = capturingLogger();
    const clients = await connectRedis(own.url, silent);
    const bus = new RedisEventBus({ url: own.url, commands: clients.commands, prefix: 'stall:', logger, blockMs: 200 });
    await bus.start();
    replicas.push({ bus, clients });
    const live = collector(bus, 't');
    await live.subscribed;
    const first = await bus.publish(input('t', 0));
    await arrived(live.events, first.id);
    const pid = Number(/process_id:(\d+)/.exec(await clients.commands.info('server'))?.[1]);
    expect(pid).toBeGreaterThan(0);
    // A frozen server keeps its connections open but answers nothing, like a peer lost to the network.
    process.kill(pid, 'SIGSTOP');
    try {
      await until(
        'the stalled read to be noticed',
        () => lines.map((line) => line.msg),
        (messages) => messages.includes('the event stream read got no answer; reconnecting'),
        { timeoutMs: 3000, everyMs: 20 },
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const after = await bus.publish(input('t', 1));
    await arrived(live.events, after.id);
    expect(live.ids()).toEqual([first.id, after.id]);
  });

  it('neither repeats nor leaks older events to subscribers that join while its reader lags behind', async () => {
    const own = await startRedis();
    const { bus } = await open(own.url, 'lag:');
    const first = await bus.publish(input('t', 0));
    const admin = new Redis(own.url);
    try {
      const reader = /(?:^|\n)id=(\d+) .*name=ferry-events /.exec((await admin.client('LIST')) as string)?.[1];
      expect(await admin.client('KILL', 'ID', reader!)).toBe(1);
      // The reader is away for a while: these are in the stream, but it hands them out only later.
      const missed: FileEvent[] = [];
      for (let n = 1; n <= 3; n++) missed.push(await bus.publish(input('t', n)));
      const liveOnly = collector(bus, 't');
      const replaying = collector(bus, 't', first.id);
      await Promise.all([liveOnly.subscribed, replaying.subscribed]);
      expect(replaying.ids()).toEqual(missed.map((event) => event.id));
      const next = await bus.publish(input('t', 4));
      await arrived(liveOnly.events, next.id);
      await arrived(replaying.events, next.id);
      expect(liveOnly.ids()).toEqual([next.id]);
      expect(replaying.ids()).toEqual([...missed, next].map((event) => event.id));
    } finally {
      admin.disconnect();
    }
  });

  it('skips, with a warning, a stream entry that is not an event', async () => {
    const { logger, lines } = capturingLogger();
    const { bus, clients } = await open(redis.url, 'foreign:', { logger });
    const live = collector(bus, 't');
    await live.subscribed;
    await clients.commands.xadd(bus.key, '*', 'e', '{"not":"an event"}');
    await clients.commands.xadd(bus.key, '*', 'other', 'field');
    const good = await bus.publish(input('t', 1));
    await arrived(live.events, good.id);
    expect(live.ids()).toEqual([good.id]);
    const replayed = collector(bus, 't', 'all');
    await replayed.subscribed;
    expect(replayed.ids()).toEqual([good.id]);
    expect(lines.filter((line) => line.msg === 'skipping an event stream entry that is not an event')).toHaveLength(4);
  });

  it('fails start() at once when Redis cannot be reached, and must be started before subscribe()', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const commands = new Redis(url, { lazyConnect: true });
    const bus = new RedisEventBus({ url, commands, prefix: 'nowhere:', logger: silent });
    await expect(bus.subscribe({ tenant: 't' }, undefined, () => undefined)).rejects.toThrow(/start\(\)/);
    const started = Date.now();
    await expect(bus.start()).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(3000);
    await bus.close();
    commands.disconnect();
  });

  it('lets the process exit once closed, although its reader was blocked in XREAD', async () => {
    const src = (path: string) => JSON.stringify(new URL(`src/${path}`, `file://${REPO_ROOT}`).href);
    const script = `
      const { connectRedis } = await import(${src('adapters/redis/redis-clients.ts')});
      const { RedisEventBus } = await import(${src('adapters/redis/redis-event-bus.ts')});
      const { default: pino } = await import('pino');
      const url = ${JSON.stringify(redis.url)};
      const logger = pino({ level: 'silent' });
      const clients = await connectRedis(url, logger);
      const bus = new RedisEventBus({ url, commands: clients.commands, prefix: 'exit:', logger });
      await bus.start();
      const delivered = new Promise((resolve) => bus.subscribe({ tenant: 't' }, undefined, resolve));
      await bus.publish({ event: 'created', fileId: 'f', tenant: 't', batch: null, at: new Date().toISOString() });
      await delivered;
      // Let the reader block in its next XREAD (BLOCK 5000) before closing.
      await new Promise((resolve) => setTimeout(resolve, 100));
      await bus.close();
      await clients.close();
      console.log('closed');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let closedAt = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('closed') && !closedAt) closedAt = Date.now();
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(killer);
    expect(output).toContain('closed');
    expect(code).toBe(0);
    // Far less than the 5 s a blocked XREAD would hold the connection open.
    expect(Date.now() - closedAt).toBeLessThan(1500);
  });
});
