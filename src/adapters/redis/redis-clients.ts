import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { FerryError } from '../../core/errors.js';

export interface RedisClients {
  /** Commands: locks, upload state. */
  readonly commands: Redis;
  /** A connection in subscriber mode only (pub/sub cannot share a connection with commands). */
  readonly subscriber: Redis;
  /** Resolves when Redis answers a PING (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Connection settings chosen so a Redis outage never hangs a request: commands fail at once while
 * disconnected (no offline queue) and are answered 503, which tus clients retry; ioredis reconnects
 * in the background with capped backoff, so recovery needs no restart.
 */
const OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000),
  // Subscriptions come back after a reconnect on their own.
  autoResubscribe: true,
};

export async function connectRedis(url: string, logger: Logger): Promise<RedisClients> {
  // Auto-pipelining: commands issued in one turn of the event loop (16 uploads' lock, record and event
  // calls) go out in one write and come back in one read, instead of a system call each way per
  // command. Each command still succeeds or fails on its own, and fails at once while disconnected.
  const commands = new Redis(url, { ...OPTIONS, connectionName: 'ferry', enableAutoPipelining: true });
  // The subscriber may queue its (p)subscribe calls until connected: they are replayed on connect.
  const subscriber = new Redis(url, { ...OPTIONS, enableOfflineQueue: true, connectionName: 'ferry-sub' });
  for (const [name, client] of [
    ['commands', commands],
    ['subscriber', subscriber],
  ] as const) {
    let down = false;
    client.on('error', (error: Error) => {
      if (!down) logger.warn({ err: error, connection: name }, 'redis connection error');
      down = true;
    });
    client.on('ready', () => {
      if (down) logger.info({ connection: name }, 'redis connection restored');
      down = false;
    });
  }
  try {
    await Promise.all([commands, subscriber].map((client) => waitUntilReady(client)));
  } catch (error) {
    // Stop reconnecting, or the process could not exit.
    commands.disconnect();
    subscriber.disconnect();
    throw error;
  }
  return {
    commands,
    subscriber,
    async ping() {
      await redisCall(() => commands.ping());
    },
    async close() {
      commands.disconnect();
      subscriber.disconnect();
    },
  };
}

function waitUntilReady(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error('could not connect to Redis within 10 s (FERRY_REDIS_URL)'));
    }, 10_000);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

/** Runs a Redis call; any failure of Redis itself becomes a 503 that clients retry. */
export async function redisCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch {
    throw new FerryError('service_unavailable', 'shared state is unavailable; retry shortly');
  }
}

/**
 * A Lua script sent to Redis once: EVALSHA by its hash, and EVAL (which makes Redis cache it) when
 * Redis answers NOSCRIPT (it restarted, or never ran it). Errors are Redis's, for `redisCall`.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(commands: Redis, numberOfKeys: number, ...keysAndArgs: string[]): Promise<unknown> {
    try {
      return await commands.evalsha(this.sha, numberOfKeys, ...keysAndArgs);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return commands.eval(this.source, numberOfKeys, ...keysAndArgs);
    }
  }
}
