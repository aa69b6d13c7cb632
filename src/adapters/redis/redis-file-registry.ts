import { checkPageLimit, fileMatchesQuery } from '../../core/files/matching.js';
import type { Redis } from 'ioredis';
import { FerryError } from '../../core/errors.js';
import type { FilePage, FileQuery, FileRecord, FileRecordStore, FileRegistry } from '../../core/ports.js';
import { LuaScript, redisCall } from './redis-clients.js';

export interface RedisFileRegistryOptions {
  readonly commands: Redis;
  /** Key prefix, e.g. `ferry:`. */
  readonly prefix: string;
  /** Where the durable record lives, beside the bytes; Redis holds the shared copy and the indexes. */
  readonly durable: FileRecordStore;
}

/**
 * Replaces (or deletes) a record and moves its index entries, in one atomic step: two replicas
 * writing one file at once must not leave it in an index it has left (say `status:uploading` after
 * the status moved on). Beside each record, a list (`<prefix>file-indexes:<id>`) keeps its member,
 * its `updatedAt` in ms and the indexes it is in, so the script knows what to leave without decoding
 * the old record and without a read-then-write race.
 *
 * KEYS: the record, its index list, then the indexes to join.
 * ARGV: mode, the new record ('' deletes), its member, its `updatedAt` in ms. Modes: `always`;
 * `absent` (only into an empty slot); `unless-newer` (not over a copy written later than this one).
 *
 * The old indexes are not in KEYS: fine on a single Redis, which is what Ferry supports.
 */
// Sent by its SHA1 (EVALSHA) once Redis has it, not as ~700 bytes of text every time.
const REPLACE = new LuaScript(`local mode, json, member, updated = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if mode == 'absent' and redis.call('exists', KEYS[1]) == 1 then return 0 end
local old = redis.call('lrange', KEYS[2], 0, -1)
if mode == 'unless-newer' and old[2] and tonumber(old[2]) > tonumber(updated) then return 0 end
for i = 3, #old do redis.call('zrem', old[i], old[1]) end
redis.call('del', KEYS[2])
if json == '' then
  redis.call('del', KEYS[1])
  return 1
end
for i = 3, #KEYS do redis.call('zadd', KEYS[i], 0, member) end
redis.call('set', KEYS[1], json)
redis.call('rpush', KEYS[2], member, updated, unpack(KEYS, 3))
return 1`);

type ReplaceMode = 'always' | 'absent' | 'unless-newer';

/** Records read from the durable store at once while reindexing. */
const REINDEX_CONCURRENCY = 32;
const SCAN_COUNT = 500;
// Ids are upload ids (base64url), as the durable stores require.
const ID = /^[A-Za-z0-9_-]+$/;
// `<creation time in ms, 16 digits>:<id>`.
const MEMBER = /^\d{16}:[A-Za-z0-9_-]+$/;

/**
 * The distributed file registry. Redis holds every record (`<prefix>file:<id>`, JSON) and, per
 * tenant, sorted-set indexes: all of the tenant's files, and those per folder, tag, batch and status.
 * Every member has score 0 and is `<creation ms, zero-padded>:<id>`, so the lexicographic order is
 * the creation order and a member is a unique, stable cursor: records created while a client pages
 * sort before its cursor and never repeat an item. Beside each record, `<prefix>file-indexes:<id>` lists
 * the indexes it is in (see REPLACE). No key has a TTL: files leave through `delete` (sweeper, API).
 *
 * Writes go to the durable record first, so Redis never shows a record that was not stored (but for
 * writes marked `durable: false`, see FileRegistry.put). A Redis
 * that restarted empty has lost the indexes: `ensureIndexed()` (at start-up) or `reindex()` rebuilds
 * them from the durable records; until then `get` still finds every record through the durable store.
 */
export class RedisFileRegistry implements FileRegistry {
  constructor(private readonly options: RedisFileRegistryOptions) {}

  async get(id: string): Promise<FileRecord | undefined> {
    const cached = await redisCall(() => this.options.commands.get(this.recordKey(id)));
    if (cached !== null) return JSON.parse(cached) as FileRecord;
    const record = await this.options.durable.get(id);
    // Only into an empty slot: a write that landed meanwhile is newer than what was just read.
    if (record) await this.replace(id, record, 'absent');
    return record;
  }

  async put(record: FileRecord, options?: { readonly durable?: boolean }): Promise<void> {
    memberOf(record); // Refuse a record without a valid creation time before storing anything.
    if (options?.durable !== false) await this.options.durable.put(record);
    await this.replace(record.id, record);
  }

  async delete(id: string): Promise<void> {
    // Redis first: once the shared copy is gone no replica lists the file, even if the durable delete
    // then fails. A `get` that fell back to the durable copy in between may have put it back, hence
    // the second removal.
    await this.replace(id, undefined);
    await this.options.durable.delete(id);
    await this.replace(id, undefined);
  }

  async list(query: FileQuery): Promise<FilePage> {
    const { limit } = query;
    checkPageLimit(limit);
    const index = await this.chooseIndex(query);
    // Filters the index does not answer are applied here, so read ahead more than the page needs.
    const filteredHere = [query.folder, query.tag, query.batch, query.status].filter((v) => v !== undefined).length > 1;
    const found: { readonly record: FileRecord; readonly member: string }[] = [];
    let start = query.cursor === undefined ? '+' : `(${decodeCursor(query.cursor)}`;
    // One item more than the page: tells whether there is a next page.
    while (found.length <= limit) {
      const wanted = limit + 1 - found.length;
      const count = filteredHere ? Math.min(1000, Math.max(wanted, 100)) : wanted;
      const members = await redisCall(() =>
        this.options.commands.zrange(index, start, '-', 'BYLEX', 'REV', 'LIMIT', 0, count),
      );
      if (members.length === 0) break;
      const values = await redisCall(() =>
        this.options.commands.mget(members.map((member) => this.recordKey(member.slice(17)))),
      );
      for (let i = 0; i < members.length && found.length <= limit; i++) {
        const json = values[i];
        // Deleted since the index was read.
        if (json === null || json === undefined) continue;
        const record = JSON.parse(json) as FileRecord;
        // Every filter is checked, the index's own too: the record read may be newer than the index.
        if (memberOf(record) === members[i] && fileMatchesQuery(record, query))
          found.push({ record, member: members[i]! });
      }
      if (members.length < count) break;
      start = `(${members.at(-1)!}`;
    }
    const page = found.slice(0, limit);
    return {
      items: page.map((entry) => entry.record),
      nextCursor: found.length > limit ? encodeCursor(page.at(-1)!.member) : undefined,
    };
  }

  /**
   * Every record Redis holds (SCAN, which may return a key twice: those are dropped). A Redis that
   * restarted empty holds none until `reindex()` ran.
   */
  async *scan(): AsyncIterable<FileRecord> {
    const { commands } = this.options;
    const keyPrefix = this.recordKey('');
    const pattern = `${keyPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await redisCall(() => commands.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT));
      cursor = next;
      const fresh = keys.filter((key) => ID.test(key.slice(keyPrefix.length)) && !seen.has(key));
      if (fresh.length === 0) continue;
      for (const key of fresh) seen.add(key);
      const values = await redisCall(() => commands.mget(fresh));
      for (const json of values) if (json !== null) yield JSON.parse(json) as FileRecord;
    } while (cursor !== '0');
  }

  /**
   * Puts every durable record and its index entries into Redis; returns how many there are. A copy in
   * Redis that was written later than the durable one read here (a write racing the reindex) stays.
   */
  async reindex(): Promise<number> {
    let count = 0;
    let ids: string[] = [];
    const flush = async () => {
      const records = await Promise.all(ids.map((id) => this.options.durable.get(id)));
      ids = [];
      await Promise.all(
        records.map(async (record) => {
          if (!record) return;
          count++;
          await this.replace(record.id, record, 'unless-newer');
        }),
      );
    };
    for await (const id of this.options.durable.list()) {
      ids.push(id);
      if (ids.length >= REINDEX_CONCURRENCY) await flush();
    }
    await flush();
    return count;
  }

  /**
   * Reindexes unless Redis says it has been done (`<prefix>files:indexed`); call at start-up.
   * Resolves with the number of records reindexed, or undefined when there was nothing to do. The
   * marker is set only once the reindex has finished, so one that was cut short runs again; a Redis
   * that loses its data loses the marker with it.
   */
  async ensureIndexed(): Promise<number | undefined> {
    const marker = `${this.options.prefix}files:indexed`;
    if ((await redisCall(() => this.options.commands.exists(marker))) === 1) return undefined;
    const count = await this.reindex();
    await redisCall(() => this.options.commands.set(marker, new Date().toISOString()));
    return count;
  }

  /** Makes Redis hold `next` for `id` (undefined: nothing), with the index entries following. */
  private async replace(id: string, next: FileRecord | undefined, mode: ReplaceMode = 'always'): Promise<void> {
    const joining = next ? this.indexKeysOf(next) : [];
    const keysAndArgs = [
      this.recordKey(id),
      this.indexListKey(id),
      ...joining,
      mode,
      next ? JSON.stringify(next) : '',
      next ? memberOf(next) : '',
      next ? String(Date.parse(next.updatedAt) || 0) : '0',
    ];
    await redisCall(() => REPLACE.run(this.options.commands, 2 + joining.length, ...keysAndArgs));
  }

  /** The most selective index among the query's filters (the smallest), else all of the tenant. */
  private async chooseIndex(query: FileQuery): Promise<string> {
    const tenantIndex = this.tenantIndex(query.tenant);
    const candidates = [
      ['status', query.status],
      ['batch', query.batch],
      ['folder', query.folder],
      ['tag', query.tag],
    ]
      .filter((pair): pair is [string, string] => pair[1] !== undefined)
      .map(([kind, value]) => `${tenantIndex}:${kind}:${encodeURIComponent(value)}`);
    if (candidates.length <= 1) return candidates[0] ?? tenantIndex;
    const sizes = await Promise.all(candidates.map((index) => redisCall(() => this.options.commands.zcard(index))));
    let best = 0;
    for (let i = 1; i < sizes.length; i++) if (sizes[i]! < sizes[best]!) best = i;
    return candidates[best]!;
  }

  private indexKeysOf(record: FileRecord): string[] {
    const tenantIndex = this.tenantIndex(record.tenant);
    const keys = [tenantIndex, `${tenantIndex}:status:${encodeURIComponent(record.status)}`];
    if (record.folder !== null) keys.push(`${tenantIndex}:folder:${encodeURIComponent(record.folder)}`);
    if (record.batch !== null) keys.push(`${tenantIndex}:batch:${encodeURIComponent(record.batch)}`);
    for (const tag of new Set(record.tags)) keys.push(`${tenantIndex}:tag:${encodeURIComponent(tag)}`);
    return keys;
  }

  private tenantIndex(tenant: string): string {
    return `${this.options.prefix}files:t:${encodeURIComponent(tenant)}`;
  }

  private recordKey(id: string): string {
    return `${this.options.prefix}file:${id}`;
  }

  private indexListKey(id: string): string {
    return `${this.options.prefix}file-indexes:${id}`;
  }
}

/** The record's index member: creation time in ms, zero-padded to 16 digits, then the id. */
function memberOf(record: FileRecord): string {
  const createdMs = Date.parse(record.createdAt);
  if (!Number.isSafeInteger(createdMs) || createdMs < 0) {
    throw new RangeError(`file ${record.id} has an invalid createdAt: ${JSON.stringify(record.createdAt)}`);
  }
  return `${String(createdMs).padStart(16, '0')}:${record.id}`;
}

function encodeCursor(member: string): string {
  return Buffer.from(member).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const member = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!MEMBER.test(member)) throw new FerryError('invalid_query', 'cursor is not one this listing returned');
  return member;
}
