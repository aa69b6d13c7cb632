import { checkPageLimit, fileMatchesQuery } from '../../core/files/matching.js';
import { FerryError } from '../../core/errors.js';
import type { FilePage, FileQuery, FileRecord, FileRecordStore, FileRegistry } from '../../core/ports.js';

/** Records read from the durable store at once while loading. */
const LOAD_CONCURRENCY = 32;

/**
 * The embedded file registry: every record in a Map, in front of the durable records in the data
 * directory (or the bucket). Writes go to the durable store first and then to memory, so what a
 * list shows has been stored (but for writes marked `durable: false`, see FileRegistry.put); `init()` loads every durable record, so nothing is lost on restart.
 *
 * Writes of one file are applied one after the other, so memory and the durable store agree on which
 * of two racing writes came last.
 */
export class MemoryFileRegistry implements FileRegistry {
  private readonly records = new Map<string, FileRecord>();
  private readonly writes = new Map<string, Promise<void>>();

  constructor(private readonly durable: FileRecordStore) {}

  /** Loads every durable record; call once at start-up, before use. */
  async init(): Promise<void> {
    let ids: string[] = [];
    const load = async () => {
      const records = await Promise.all(ids.map((id) => this.durable.get(id)));
      for (const record of records) if (record) this.records.set(record.id, record);
      ids = [];
    };
    for await (const id of this.durable.list()) {
      ids.push(id);
      if (ids.length >= LOAD_CONCURRENCY) await load();
    }
    await load();
  }

  async get(id: string): Promise<FileRecord | undefined> {
    return this.records.get(id);
  }

  put(record: FileRecord, options?: { readonly durable?: boolean }): Promise<void> {
    return this.serially(record.id, async () => {
      if (options?.durable !== false) await this.durable.put(record);
      this.records.set(record.id, record);
    });
  }

  delete(id: string): Promise<void> {
    return this.serially(id, async () => {
      await this.durable.delete(id);
      this.records.delete(id);
    });
  }

  /**
   * Filters and sorts on every call: embedded mode holds at most tens of thousands of records, which
   * takes milliseconds, and saves keeping a sorted index in step with every write.
   */
  async list(query: FileQuery): Promise<FilePage> {
    checkPageLimit(query.limit);
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const matching: FileRecord[] = [];
    for (const record of this.records.values()) {
      if (fileMatchesQuery(record, query) && (!after || compareNewestFirst(after, positionOf(record)) < 0)) {
        matching.push(record);
      }
    }
    matching.sort((a, b) => compareNewestFirst(positionOf(a), positionOf(b)));
    const items = matching.slice(0, query.limit);
    const last = items.at(-1);
    return {
      items,
      nextCursor: matching.length > items.length && last ? encodeCursor(last) : undefined,
    };
  }

  async *scan(): AsyncIterable<FileRecord> {
    // A snapshot: writes while the caller iterates neither repeat nor skip records.
    yield* [...this.records.values()];
  }

  /** Runs `task` once every earlier write of `id` has settled. */
  private serially(id: string, task: () => Promise<void>): Promise<void> {
    const previous = this.writes.get(id) ?? Promise.resolve();
    const result = previous.then(task);
    const settled = result.catch(() => undefined);
    this.writes.set(id, settled);
    void settled.then(() => {
      if (this.writes.get(id) === settled) this.writes.delete(id);
    });
    return result;
  }
}

interface Position {
  readonly createdMs: number;
  readonly id: string;
}

function positionOf(record: FileRecord): Position {
  return { createdMs: Date.parse(record.createdAt), id: record.id };
}

/** Negative when `a` comes first: newer first, then the greater id first. */
function compareNewestFirst(a: Position, b: Position): number {
  if (a.createdMs !== b.createdMs) return b.createdMs - a.createdMs;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

function encodeCursor(record: FileRecord): string {
  return Buffer.from(`${record.createdAt}|${record.id}`).toString('base64url');
}

function decodeCursor(cursor: string): Position {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const bar = text.indexOf('|');
  const createdMs = Date.parse(text.slice(0, bar));
  if (bar < 0 || Number.isNaN(createdMs) || bar === text.length - 1) {
    throw new FerryError('invalid_query', 'cursor is not one this listing returned');
  }
  return { createdMs, id: text.slice(bar + 1) };
}
