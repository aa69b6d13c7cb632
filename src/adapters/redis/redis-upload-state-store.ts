import type { Redis } from 'ioredis';
import type { UploadRecord, UploadStateStore } from '../../core/ports.js';
import { redisCall } from './redis-clients.js';

export interface RedisUploadStateStoreOptions {
  readonly commands: Redis;
  readonly prefix: string;
  /** Where the durable record lives, beside the bytes; Redis holds a shared copy for speed. */
  readonly durable: UploadStateStore;
  /** A record unused for this long leaves Redis (it stays in the durable store). */
  readonly ttlMs: number;
}

/**
 * Upload records shared by every replica. Redis is a cache in front of the durable record kept
 * beside the bytes: writes go to both (durable first), reads try Redis and fall back to the durable
 * record, putting it back into Redis. A Redis that restarts empty therefore loses no upload, and
 * keys expire with the upload lifecycle so Redis does not grow without bound.
 */
export class RedisUploadStateStore implements UploadStateStore {
  constructor(private readonly options: RedisUploadStateStoreOptions) {}

  async get(id: string): Promise<UploadRecord | undefined> {
    const { commands } = this.options;
    const cached = await redisCall(() => commands.get(this.keyOf(id)));
    if (cached !== null) return JSON.parse(cached) as UploadRecord;
    const record = await this.options.durable.get(id);
    if (record) await this.cache(record);
    return record;
  }

  async put(record: UploadRecord): Promise<void> {
    await this.options.durable.put(record);
    await this.cache(record);
  }

  async delete(id: string): Promise<void> {
    // Redis first: once the shared copy is gone no replica finds the upload, even if the durable
    // delete then fails (the blob is already gone, so what is left is unreachable).
    await redisCall(() => this.options.commands.del(this.keyOf(id)));
    await this.options.durable.delete(id);
  }

  /** The durable store holds every record; Redis only those in use. */
  list(): AsyncIterable<string> {
    return this.options.durable.list();
  }

  private async cache(record: UploadRecord): Promise<void> {
    await redisCall(() =>
      this.options.commands.set(this.keyOf(record.id), JSON.stringify(record), 'PX', this.options.ttlMs),
    );
  }

  private keyOf(id: string): string {
    return `${this.options.prefix}upload:${id}`;
  }
}
