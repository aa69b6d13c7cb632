import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DiskFileRecordStore } from '../../src/adapters/disk/file-record-store-on-disk.js';
import { connectRedis, type RedisClients } from '../../src/adapters/redis/redis-clients.js';
import { RedisFileRegistry } from '../../src/adapters/redis/redis-file-registry.js';
import type { FileRecord } from '../../src/core/ports.js';
import { startRedis, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';
import { fileRecord, fileRegistryContract } from './file-registry.contract.js';

const silent = pino({ level: 'silent' });
let redis: RedisServer;
let prefixCounter = 0;
const opened: RedisClients[] = [];
const directories: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await stopAllRedis();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((clients) => clients.close()));
  await Promise.all(directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })));
});

async function durableStore(): Promise<DiskFileRecordStore> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'ferry-redis-files-'));
  directories.push(directory);
  const store = new DiskFileRecordStore(path.join(directory, 'files'));
  await store.init();
  return store;
}

/** A registry with its own connection, as one replica has. */
async function replica(prefix: string, durable: DiskFileRecordStore, url = redis.url) {
  const clients = await connectRedis(url, silent);
  opened.push(clients);
  const registry = new RedisFileRegistry({ commands: clients.commands, prefix, durable });
  await registry.ensureIndexed();
  return { registry, commands: clients.commands };
}

fileRegistryContract('RedisFileRegistry (real redis-server) over DiskFileRecordStore', async () => {
  const prefix = `contract${++prefixCounter}:`;
  const durable = await durableStore();
  const { registry } = await replica(prefix, durable);
  return {
    registry,
    // Every process restarts, Redis too (it comes back empty), then start-up reindexes.
    restart: async () => {
      const { registry: fresh, commands } = await replica(prefix, durable);
      await commands.flushdb();
      expect(await fresh.ensureIndexed()).toBeGreaterThan(0);
      return fresh;
    },
    close: async () => undefined,
  };
});

describe('RedisFileRegistry specifics', () => {
  const t = { tenant: 'acme' };

  it('keeps the record at <prefix>file:<id> and its index members at <prefix>files:t:<tenant>…, none stale', async () => {
    const prefix = `layout${++prefixCounter}:`;
    const { registry, commands } = await replica(prefix, await durableStore());
    const record = fileRecord({ createdAt: '2025-03-01T12:00:00.007Z', folder: 'in box', tags: ['a:b'], batch: 'b1' });
    await registry.put(record);
    const member = `${String(Date.parse(record.createdAt)).padStart(16, '0')}:${record.id}`;
    const base = `${prefix}files:t:acme`;
    expect(JSON.parse((await commands.get(`${prefix}file:${record.id}`))!)).toEqual(record);
    expect((await commands.keys(`${prefix}*`)).sort()).toEqual(
      [
        `${prefix}file:${record.id}`,
        `${prefix}file-indexes:${record.id}`,
        `${prefix}files:indexed`,
        base,
        `${base}:batch:b1`,
        `${base}:folder:in%20box`,
        `${base}:status:uploading`,
        `${base}:tag:a%3Ab`,
      ].sort(),
    );
    expect(await commands.zrange(`${base}:status:uploading`, 0, -1, 'WITHSCORES')).toEqual([member, '0']);
    expect(await commands.ttl(`${prefix}file:${record.id}`)).toBe(-1);

    await registry.put({ ...record, status: 'completed', folder: null, tags: ['c'] });
    expect(await commands.exists(`${base}:status:uploading`, `${base}:folder:in%20box`, `${base}:tag:a%3Ab`)).toBe(0);
    expect(await commands.zrange(`${base}:status:completed`, 0, -1)).toEqual([member]);
    expect(await commands.zrange(`${base}:tag:c`, 0, -1)).toEqual([member]);

    await registry.delete(record.id);
    expect(await commands.keys(`${prefix}*`)).toEqual([`${prefix}files:indexed`]);
  });

  it('leaves every index consistent when two replicas write one file at the same time', async () => {
    const prefix = `race${++prefixCounter}:`;
    const durable = await durableStore();
    const a = await replica(prefix, durable);
    const b = await replica(prefix, durable);
    const base = fileRecord();
    const statuses = ['uploading', 'queued', 'processing', 'completed', 'failed'] as const;
    const writes = Array.from({ length: 60 }, (_, i) => ({
      ...base,
      status: statuses[i % statuses.length]!,
      folder: `f${i % 4}`,
      tags: [`t${i % 3}`],
    }));
    await Promise.all(writes.map((record, i) => (i % 2 ? a : b).registry.put(record)));
    const stored = (await a.registry.get(base.id))!;
    const indexes = (await a.commands.keys(`${prefix}files:t:*`)).sort();
    expect(indexes).toEqual(
      [
        `${prefix}files:t:acme`,
        `${prefix}files:t:acme:status:${stored.status}`,
        `${prefix}files:t:acme:folder:${stored.folder}`,
        `${prefix}files:t:acme:tag:${stored.tags[0]}`,
      ].sort(),
    );
    for (const status of statuses) {
      expect(await b.registry.list({ ...t, status, limit: 10 })).toEqual({
        items: status === stored.status ? [stored] : [],
        nextCursor: undefined,
      });
    }
  });

  it('finds a record through the durable store after Redis lost it, and puts it back into the indexes', async () => {
    const prefix = `fallback${++prefixCounter}:`;
    const { registry, commands } = await replica(prefix, await durableStore());
    const record = fileRecord({ status: 'completed', folder: 'docs' });
    await registry.put(record);
    await commands.flushdb();
    expect((await registry.list({ ...t, limit: 10 })).items).toEqual([]);
    expect(await registry.get(record.id)).toEqual(record);
    expect((await registry.list({ ...t, status: 'completed', folder: 'docs', limit: 10 })).items).toEqual([record]);
  });

  it('reindexes once: ensureIndexed does nothing while the marker is there and runs again after Redis lost it', async () => {
    const prefix = `marker${++prefixCounter}:`;
    const durable = await durableStore();
    const { registry, commands } = await replica(prefix, durable);
    const records = Array.from({ length: 5 }, () => fileRecord());
    for (const record of records) await registry.put(record);
    expect(await registry.ensureIndexed()).toBeUndefined();
    await commands.flushdb();
    expect(await registry.ensureIndexed()).toBe(5);
    expect(await registry.ensureIndexed()).toBeUndefined();
    expect((await registry.list({ ...t, limit: 10 })).items).toEqual([...records].reverse());
    expect(await registry.reindex()).toBe(5);
    expect((await registry.list({ ...t, limit: 10 })).items).toEqual([...records].reverse());
  });

  it('keeps a copy in Redis written after the durable one a reindex read, and fixes an older one', async () => {
    const prefix = `reindex${++prefixCounter}:`;
    const durable = await durableStore();
    const { registry } = await replica(prefix, durable);
    const newer = fileRecord({ status: 'completed', updatedAt: '2025-03-02T00:00:00.000Z' });
    const fixed = fileRecord({ status: 'completed', updatedAt: '2025-03-02T00:00:00.000Z' });
    await registry.put(newer);
    await registry.put(fixed);
    // As if the durable copies were read before the latest writes landed / a Redis write was lost.
    const older: FileRecord = { ...newer, status: 'processing', updatedAt: '2025-03-01T23:00:00.000Z' };
    const fresher: FileRecord = { ...fixed, status: 'failed', updatedAt: '2025-03-03T00:00:00.000Z' };
    await durable.put(older);
    await durable.put(fresher);
    expect(await registry.reindex()).toBe(2);
    expect(await registry.get(newer.id)).toEqual(newer);
    expect(await registry.get(fixed.id)).toEqual(fresher);
    expect((await registry.list({ ...t, status: 'completed', limit: 10 })).items).toEqual([newer]);
    expect((await registry.list({ ...t, status: 'failed', limit: 10 })).items).toEqual([fresher]);
  });

  it('answers 503 (service_unavailable), not a hang, while Redis is down, and works again after it is back', async () => {
    const own = await startRedis();
    const { registry } = await replica('down:', await durableStore(), own.url);
    const record = fileRecord();
    await registry.put(record);
    await own.stop();
    const started = Date.now();
    for (const call of [
      () => registry.get(record.id),
      () => registry.list({ ...t, limit: 10 }),
      () => registry.delete(record.id),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: 'service_unavailable', status: 503 });
    }
    expect(Date.now() - started).toBeLessThan(3000);
    await own.start();
    // The restarted Redis is empty: get finds the record through the durable store.
    await expect
      .poll(
        () =>
          registry.get(record.id).then(
            (found) => found?.id,
            (error: { code?: string }) => error.code,
          ),
        { timeout: 10_000, interval: 200 },
      )
      .toBe(record.id);
  });
});
