import type { UploadRecord, UploadStateStore } from '../../core/ports.js';
import { setRecentlyUsed } from '../recently-used.js';

/**
 * An in-memory copy of the most recently used records in front of a durable store, so the hot path
 * never reads a record twice. One process only: the copy assumes nobody else changes the records
 * (in distributed mode Redis is the shared cache instead). Bounded, so memory stays flat however
 * many uploads exist.
 */
export class CachedUploadStateStore implements UploadStateStore {
  private readonly cache = new Map<string, UploadRecord>();

  constructor(
    private readonly durable: UploadStateStore,
    private readonly capacity = 10_000,
  ) {}

  async get(id: string): Promise<UploadRecord | undefined> {
    const cached = this.cache.get(id);
    if (cached) return cached;
    const record = await this.durable.get(id);
    if (record) this.remember(record);
    return record;
  }

  async put(record: UploadRecord): Promise<void> {
    await this.durable.put(record);
    this.remember(record);
  }

  async delete(id: string): Promise<void> {
    this.cache.delete(id);
    await this.durable.delete(id);
  }

  list(): AsyncIterable<string> {
    return this.durable.list();
  }

  private remember(record: UploadRecord): void {
    setRecentlyUsed(this.cache, record.id, record, this.capacity);
  }
}
