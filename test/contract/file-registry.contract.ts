import { afterEach, describe, expect, it } from 'vitest';
import type { FileQuery, FileRecord, FileRegistry, FileStatus } from '../../src/core/ports.js';

export interface FileRegistryUnderTest {
  readonly registry: FileRegistry;
  /**
   * A new registry over the same durable store, as after a restart of every process (for Redis: of
   * Redis too, which comes back empty), made ready the way start-up does it.
   */
  restart(): Promise<FileRegistry>;
  close(): Promise<void>;
}

const BASE_MS = Date.parse('2025-03-01T12:00:00.000Z');
let made = 0;

/** A complete record; ids and creation times follow the order of the calls unless overridden. */
export function fileRecord(overrides: Partial<FileRecord> = {}): FileRecord {
  made++;
  const createdAt = new Date(BASE_MS + made * 1000).toISOString();
  return {
    id: `file${String(made).padStart(6, '0')}`,
    tenant: 'acme',
    name: `report-${made}.pdf`,
    size: 1234,
    receivedBytes: 0,
    mimeType: 'application/pdf',
    detectedType: null,
    folder: null,
    tags: [],
    batch: null,
    metadata: { origin: 'contract' },
    status: 'uploading',
    checksums: { sha256: null, crc32c: null },
    protocol: 'tus',
    retentionMs: 86_400_000,
    createdAt,
    completedAt: null,
    expiresAt: null,
    error: null,
    updatedAt: createdAt,
    ...overrides,
  };
}

const at = (offsetMs: number) => new Date(BASE_MS + offsetMs).toISOString();

/** What the registry must answer: matching records, newest first, equal creation times by id (greater first). */
function expected(records: readonly FileRecord[], query: Omit<FileQuery, 'limit' | 'cursor'>): string[] {
  return records
    .filter(
      (r) =>
        r.tenant === query.tenant &&
        (query.folder === undefined || r.folder === query.folder) &&
        (query.tag === undefined || r.tags.includes(query.tag)) &&
        (query.batch === undefined || r.batch === query.batch) &&
        (query.status === undefined || r.status === query.status),
    )
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .map((r) => r.id);
}

/** Every page of a query, following the cursors to the end. */
async function pages(
  registry: FileRegistry,
  query: Omit<FileQuery, 'limit' | 'cursor'>,
  limit: number,
): Promise<FileRecord[][]> {
  const result: FileRecord[][] = [];
  let cursor: string | undefined;
  do {
    const page = await registry.list({ ...query, limit, cursor });
    result.push([...page.items]);
    cursor = page.nextCursor;
    if (result.length > 10_000) throw new Error('the cursor never ends');
  } while (cursor !== undefined);
  return result;
}

const ids = (records: readonly FileRecord[]) => records.map((r) => r.id);
const listIds = async (registry: FileRegistry, query: Omit<FileQuery, 'limit' | 'cursor'>) =>
  ids((await registry.list({ ...query, limit: 1000 })).items);

async function putAll(registry: FileRegistry, records: readonly FileRecord[]): Promise<void> {
  for (const record of records) await registry.put(record);
}

/**
 * The contract every FileRegistry passes (embedded Map over durable records, Redis with indexes):
 * records round-trip, indexes follow replacements and deletes, tenants are isolated, every filter
 * and combination answers exactly the matching records newest first, cursors page through
 * everything once even while records are added, and a restart loses nothing.
 */
export function fileRegistryContract(name: string, make: () => Promise<FileRegistryUnderTest>) {
  describe(`FileRegistry contract: ${name}`, () => {
    let current: FileRegistryUnderTest | undefined;
    const setup = async () => (current = await make());
    afterEach(async () => {
      await current?.close();
      current = undefined;
    });

    it('returns a stored record as it was put, and undefined for an unknown id', async () => {
      const { registry } = await setup();
      const record = fileRecord({
        name: 'Straße & “quotes”.txt',
        size: null,
        folder: 'in/box',
        tags: ['a', 'b'],
        batch: 'b-1',
        metadata: { note: 'x', empty: null },
        checksums: { sha256: 'ab'.repeat(32), crc32c: 'AAAAAA==' },
        error: { code: 'too_big', message: 'no' },
      });
      await registry.put(record);
      expect(await registry.get(record.id)).toEqual(record);
      expect(await registry.get('nosuchfile')).toBeUndefined();
    });

    it('replaces a record on put, and every index follows (old status, folder, tags, batch no longer list it)', async () => {
      const { registry } = await setup();
      const before = fileRecord({ status: 'uploading', folder: 'old', tags: ['keep', 'drop'], batch: 'b-old' });
      const bystander = fileRecord({ status: 'uploading', folder: 'old', tags: ['keep', 'drop'], batch: 'b-old' });
      await putAll(registry, [before, bystander]);
      const after: FileRecord = {
        ...before,
        status: 'completed',
        folder: 'new',
        tags: ['keep', 'added'],
        batch: 'b-new',
        receivedBytes: 1234,
        updatedAt: at(999_000),
      };
      await registry.put(after);
      expect(await registry.get(before.id)).toEqual(after);
      const t = { tenant: 'acme' };
      expect(await listIds(registry, { ...t, status: 'uploading' })).toEqual([bystander.id]);
      expect(await listIds(registry, { ...t, status: 'completed' })).toEqual([before.id]);
      expect(await listIds(registry, { ...t, folder: 'old' })).toEqual([bystander.id]);
      expect(await listIds(registry, { ...t, folder: 'new' })).toEqual([before.id]);
      expect(await listIds(registry, { ...t, tag: 'drop' })).toEqual([bystander.id]);
      expect(await listIds(registry, { ...t, tag: 'added' })).toEqual([before.id]);
      expect(await listIds(registry, { ...t, tag: 'keep' })).toEqual([bystander.id, before.id]);
      expect(await listIds(registry, { ...t, batch: 'b-old' })).toEqual([bystander.id]);
      expect(await listIds(registry, { ...t, batch: 'b-new' })).toEqual([before.id]);
      expect((await registry.list({ ...t, limit: 1000 })).items).toEqual([bystander, after]);

      // Folder and batch can be taken away again.
      await registry.put({ ...after, folder: null, batch: null, tags: [] });
      expect(await listIds(registry, { ...t, folder: 'new' })).toEqual([]);
      expect(await listIds(registry, { ...t, batch: 'b-new' })).toEqual([]);
      expect(await listIds(registry, { ...t, tag: 'keep' })).toEqual([bystander.id]);
      expect(await listIds(registry, t)).toEqual([bystander.id, before.id]);
    });

    it('forgets a deleted record in get and in every list; deleting a missing record is no error', async () => {
      const { registry } = await setup();
      const gone = fileRecord({ folder: 'f', tags: ['t'], batch: 'b', status: 'completed' });
      const stays = fileRecord({ folder: 'f', tags: ['t'], batch: 'b', status: 'completed' });
      await putAll(registry, [gone, stays]);
      await registry.delete(gone.id);
      expect(await registry.get(gone.id)).toBeUndefined();
      for (const filter of [{}, { folder: 'f' }, { tag: 't' }, { batch: 'b' }, { status: 'completed' as const }]) {
        expect(await listIds(registry, { tenant: 'acme', ...filter })).toEqual([stays.id]);
      }
      const scanned: string[] = [];
      for await (const record of registry.scan()) scanned.push(record.id);
      expect(scanned).toEqual([stays.id]);
      await expect(registry.delete(gone.id)).resolves.toBeUndefined();
      await expect(registry.delete('neverexisted')).resolves.toBeUndefined();
    });

    it('lists only the records of the tenant asked for', async () => {
      const { registry } = await setup();
      const acme = [fileRecord({ tenant: 'acme', folder: 'shared' }), fileRecord({ tenant: 'acme', tags: ['x'] })];
      const globex = [
        fileRecord({ tenant: 'globex', folder: 'shared' }),
        fileRecord({ tenant: 'globex', tags: ['x'] }),
      ];
      // A tenant name that could be mistaken for a key separator must not see the others either.
      const tricky = [fileRecord({ tenant: 'acme:folder:shared', folder: 'shared' })];
      await putAll(registry, [...acme, ...globex, ...tricky]);
      expect(await listIds(registry, { tenant: 'acme' })).toEqual(ids(acme).reverse());
      expect(await listIds(registry, { tenant: 'globex' })).toEqual(ids(globex).reverse());
      expect(await listIds(registry, { tenant: 'acme', folder: 'shared' })).toEqual([acme[0]!.id]);
      expect(await listIds(registry, { tenant: 'globex', tag: 'x' })).toEqual([globex[1]!.id]);
      expect(await listIds(registry, { tenant: 'acme:folder:shared' })).toEqual(ids(tricky));
      expect(await listIds(registry, { tenant: 'initech' })).toEqual([]);
    });

    it('answers every filter and every combination of them with exactly the matching records, newest first', async () => {
      const { registry } = await setup();
      const folders = [null, 'inbox', 'a/b c:d'];
      const tagSets = [[], ['red'], ['blue'], ['red', 'blue'], ['grün:1']];
      const batches = [null, 'b1', 'b2'];
      const statuses: FileStatus[] = ['uploading', 'completed', 'failed'];
      const records: FileRecord[] = [];
      for (let i = 0; i < 60; i++) {
        records.push(
          fileRecord({
            tenant: i % 7 === 0 ? 'other' : 'acme',
            folder: folders[i % 3]!,
            tags: tagSets[i % 5]!,
            batch: batches[Math.floor(i / 3) % 3]!,
            status: statuses[Math.floor(i / 9) % 3]!,
            // Some share a creation time, so ties are part of every answer.
            createdAt: at(((i * 37) % 20) * 1000),
          }),
        );
      }
      await putAll(registry, records);
      const values = {
        folder: ['inbox', 'a/b c:d', 'nowhere'],
        tag: ['red', 'blue', 'grün:1'],
        batch: ['b1', 'b2'],
        status: ['uploading', 'completed', 'failed', 'expired'] as FileStatus[],
      };
      let checked = 0;
      let nonEmpty = 0;
      for (const folder of [undefined, ...values.folder]) {
        for (const tag of [undefined, ...values.tag]) {
          for (const batch of [undefined, ...values.batch]) {
            for (const status of [undefined, ...values.status]) {
              const query = { tenant: 'acme', folder, tag, batch, status };
              const want = expected(records, query);
              expect(await listIds(registry, query), JSON.stringify(query)).toEqual(want);
              checked++;
              if (want.length > 0) nonEmpty++;
            }
          }
        }
      }
      expect(checked).toBe(4 * 4 * 3 * 5);
      // The data set is varied enough that most combinations match something.
      expect(nonEmpty).toBeGreaterThan(60);
    });

    it('orders newest first, and records created at the same time by id, greatest first', async () => {
      const { registry } = await setup();
      const same = at(5000);
      await putAll(registry, [
        fileRecord({ id: 'mmm', createdAt: same }),
        fileRecord({ id: 'old', createdAt: at(1000) }),
        fileRecord({ id: 'zzz', createdAt: same }),
        fileRecord({ id: 'new', createdAt: at(9000) }),
        fileRecord({ id: 'aaa', createdAt: same }),
        // Same instant written differently: still the same creation time.
        fileRecord({ id: 'ccc', createdAt: '2025-03-01T13:00:05+01:00' }),
      ]);
      expect(await listIds(registry, { tenant: 'acme' })).toEqual(['new', 'zzz', 'mmm', 'ccc', 'aaa', 'old']);
      expect(ids((await registry.list({ tenant: 'acme', limit: 2 })).items)).toEqual(['new', 'zzz']);
    });

    it('pages through 25 records 7 at a time: every record exactly once, no cursor after the last page', async () => {
      const { registry } = await setup();
      const records = Array.from({ length: 25 }, (_, i) => fileRecord({ createdAt: at(Math.floor(i / 3) * 1000) }));
      await putAll(registry, records);
      const all = await pages(registry, { tenant: 'acme' }, 7);
      expect(all.map((page) => page.length)).toEqual([7, 7, 7, 4]);
      expect(all.flat().map((r) => r.id)).toEqual(expected(records, { tenant: 'acme' }));
      expect(new Set(all.flat().map((r) => r.id)).size).toBe(25);
    });

    it('gives no cursor when the last page is exactly full, and none for a page with everything', async () => {
      const { registry } = await setup();
      await putAll(
        registry,
        Array.from({ length: 14 }, () => fileRecord()),
      );
      const all = await pages(registry, { tenant: 'acme' }, 7);
      expect(all.map((page) => page.length)).toEqual([7, 7]);
      const whole = await registry.list({ tenant: 'acme', limit: 14 });
      expect(whole.items).toHaveLength(14);
      expect(whole.nextCursor).toBeUndefined();
      const empty = await registry.list({ tenant: 'nobody', limit: 7 });
      expect(empty).toEqual({ items: [], nextCursor: undefined });
    });

    it('pages through filters that few records match, among many that do not', async () => {
      const { registry } = await setup();
      // Each filter alone matches about half of the records; together only every 30th.
      const records = Array.from({ length: 300 }, (_, i) =>
        fileRecord({
          tags: i % 2 === 0 ? ['even'] : ['odd'],
          batch: i % 2 === 1 || i % 30 === 0 ? 'mixed' : 'other',
          status: i % 60 === 0 ? 'failed' : 'completed',
        }),
      );
      await putAll(registry, records);
      const sparse = { tenant: 'acme', tag: 'even', batch: 'mixed' };
      expect(expected(records, sparse)).toHaveLength(10);
      const all = await pages(registry, sparse, 4);
      expect(all.map((page) => page.length)).toEqual([4, 4, 2]);
      expect(all.flat().map((r) => r.id)).toEqual(expected(records, sparse));
      const sparser = { ...sparse, status: 'completed' as const };
      expect((await pages(registry, sparser, 3)).flat().map((r) => r.id)).toEqual(expected(records, sparser));
      const dense = { tenant: 'acme', status: 'completed' as const, batch: 'mixed' };
      expect((await pages(registry, dense, 100)).flat().map((r) => r.id)).toEqual(expected(records, dense));
    });

    it('does not repeat or skip items when records are added and changed while a client pages', async () => {
      const { registry } = await setup();
      const records = Array.from({ length: 20 }, (_, i) => fileRecord({ createdAt: at(100_000 + i * 1000) }));
      await putAll(registry, records);
      const seen: string[] = [];
      let page = await registry.list({ tenant: 'acme', limit: 6 });
      let round = 0;
      for (;;) {
        seen.push(...ids(page.items));
        if (page.nextCursor === undefined) break;
        round++;
        // A newer upload arrives (before the cursor: not in this listing), one lands among what is
        // left (after it: listed once), and the oldest record, not listed yet, changes.
        await registry.put(fileRecord({ id: `new${round}`, createdAt: at(900_000 + round * 1000) }));
        await registry.put(fileRecord({ id: `mid${round}`, createdAt: at(100_500) }));
        await registry.put({ ...records[0]!, status: 'completed', updatedAt: at(950_000 + round) });
        page = await registry.list({ tenant: 'acme', limit: 6, cursor: page.nextCursor });
      }
      expect(round).toBe(3);
      expect(seen).toEqual([...ids(records.slice(1)).reverse(), 'mid3', 'mid2', 'mid1', records[0]!.id]);
    });

    it('refuses a cursor it did not make (invalid_query, 400) and a limit outside 1…1000', async () => {
      const { registry } = await setup();
      await registry.put(fileRecord());
      // A client's mangled cursor is its mistake (400); a limit out of range is the caller's bug.
      for (const cursor of ['not-a-cursor', Buffer.from('x|y').toString('base64url'), '']) {
        await expect(registry.list({ tenant: 'acme', limit: 5, cursor })).rejects.toMatchObject({
          code: 'invalid_query',
          status: 400,
        });
      }
      await expect(registry.list({ tenant: 'acme', limit: 0 })).rejects.toThrow(RangeError);
      await expect(registry.list({ tenant: 'acme', limit: 1001 })).rejects.toThrow(RangeError);
      expect((await registry.list({ tenant: 'acme', limit: 1000 })).items).toHaveLength(1);
    });

    it('scans every record of every tenant', async () => {
      const { registry } = await setup();
      const records = Array.from({ length: 40 }, (_, i) =>
        fileRecord({ tenant: i % 2 ? 'acme' : 'globex', status: i % 3 ? 'completed' : 'uploading' }),
      );
      await putAll(registry, records);
      const scanned: FileRecord[] = [];
      for await (const record of registry.scan()) scanned.push(record);
      expect(scanned.sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(records);
    });

    it('keeps every record across a restart: get, list with filters and scan', async () => {
      const under = await setup();
      const records = Array.from({ length: 30 }, (_, i) =>
        fileRecord({
          tenant: i % 3 ? 'acme' : 'globex',
          folder: i % 2 ? 'docs' : null,
          tags: i % 4 ? ['x'] : [],
          batch: i % 5 ? null : 'nightly',
          status: i % 2 ? 'completed' : 'queued',
        }),
      );
      await putAll(under.registry, records);
      const deleted = records[4]!;
      await under.registry.delete(deleted.id);
      const kept = records.filter((r) => r !== deleted);

      const registry = await under.restart();
      for (const record of kept) expect(await registry.get(record.id)).toEqual(record);
      expect(await registry.get(deleted.id)).toBeUndefined();
      for (const query of [
        { tenant: 'acme' },
        { tenant: 'globex' },
        { tenant: 'acme', folder: 'docs', status: 'completed' as const },
        { tenant: 'acme', tag: 'x' },
        { tenant: 'globex', batch: 'nightly' },
      ]) {
        const all = await pages(registry, query, 4);
        expect(all.flat().map((r) => r.id)).toEqual(expected(kept, query));
      }
      const scanned: string[] = [];
      for await (const record of registry.scan()) scanned.push(record.id);
      expect(scanned.sort()).toEqual(ids(kept).sort());
    });

    it('shows a write marked not durable at once (get, list) and forgets it on restart, back at the last durable write', async () => {
      const under = await setup();
      const queued = fileRecord({ status: 'queued' });
      await under.registry.put(queued);
      const processing = { ...queued, status: 'processing' as const, updatedAt: '2025-03-02T00:00:00.000Z' };
      await under.registry.put(processing, { durable: false });
      expect(await under.registry.get(queued.id)).toEqual(processing);
      const listed = await under.registry.list({ tenant: queued.tenant, status: 'processing', limit: 10 });
      expect(listed.items).toEqual([processing]);

      const registry = await under.restart();
      expect(await registry.get(queued.id)).toEqual(queued);
      expect((await registry.list({ tenant: queued.tenant, status: 'queued', limit: 10 })).items).toEqual([queued]);
      expect((await registry.list({ tenant: queued.tenant, status: 'processing', limit: 10 })).items).toEqual([]);
    });
  });
}
