import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordLog } from '../../src/adapters/disk/record-log.js';
import { DiskFileRecordStore } from '../../src/adapters/disk/file-record-store-on-disk.js';
import { MemoryFileRegistry } from '../../src/adapters/embedded/memory-file-registry.js';
import { fileRecord, fileRegistryContract } from './file-registry.contract.js';
import type { FileRecord } from '../../src/core/ports.js';

const directories: string[] = [];
async function tempDirectory(): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'ferry-files-'));
  directories.push(directory);
  return directory;
}
afterEach(async () => {
  await Promise.all(directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })));
});

async function diskStore(directory: string): Promise<DiskFileRecordStore> {
  // Like start-up: `<dataDir>/files`, which does not exist yet on a fresh data directory.
  const store = new DiskFileRecordStore(path.join(directory, 'files'));
  await store.init();
  return store;
}

async function registryOn(directory: string): Promise<MemoryFileRegistry> {
  const registry = new MemoryFileRegistry(await diskStore(directory));
  await registry.init();
  return registry;
}

const logs: RecordLog<FileRecord>[] = [];
afterEach(async () => {
  await Promise.all(logs.splice(0).map((log) => log.close()));
});

/** A process's log over `<directory>/files`: the previous process's log is closed first, as on a restart. */
async function logRegistryOn(directory: string): Promise<MemoryFileRegistry> {
  await Promise.all(logs.splice(0).map((log) => log.close()));
  const log = new RecordLog<FileRecord>(path.join(directory, 'files'), 'file');
  await log.init();
  logs.push(log);
  const registry = new MemoryFileRegistry(log);
  await registry.init();
  return registry;
}

fileRegistryContract('embedded MemoryFileRegistry over the file record log (RecordLog)', async () => {
  const directory = await tempDirectory();
  return {
    registry: await logRegistryOn(directory),
    restart: () => logRegistryOn(directory),
    close: async () => undefined,
  };
});

fileRegistryContract('embedded MemoryFileRegistry over DiskFileRecordStore', async () => {
  const directory = await tempDirectory();
  return {
    registry: await registryOn(directory),
    // A new process: nothing in memory, everything from the data directory.
    restart: () => registryOn(directory),
    close: async () => undefined,
  };
});

describe('embedded MemoryFileRegistry', () => {
  it('stores each record as <dataDir>/files/<id>.json, written before the registry shows it', async () => {
    const directory = await tempDirectory();
    const registry = await registryOn(directory);
    const record = fileRecord();
    await registry.put(record);
    expect(await readdir(path.join(directory, 'files'))).toEqual([`${record.id}.json`]);
    await registry.delete(record.id);
    expect(await readdir(path.join(directory, 'files'))).toEqual([]);
  });

  it('does not show a record whose durable write failed', async () => {
    const directory = await tempDirectory();
    const registry = await registryOn(directory);
    await rm(path.join(directory, 'files'), { recursive: true });
    const record = fileRecord();
    await expect(registry.put(record)).rejects.toThrow();
    expect(await registry.get(record.id)).toBeUndefined();
    expect((await registry.list({ tenant: 'acme', limit: 10 })).items).toEqual([]);
  });

  it('ends racing writes of one file with memory and disk agreeing on the last one', async () => {
    const directory = await tempDirectory();
    const registry = await registryOn(directory);
    const base = fileRecord();
    const writes = Array.from({ length: 50 }, (_, i) => ({ ...base, receivedBytes: i }));
    await Promise.all(writes.map((record) => registry.put(record)));
    expect(await registry.get(base.id)).toEqual(writes.at(-1));
    const reloaded = await registryOn(directory);
    expect(await reloaded.get(base.id)).toEqual(writes.at(-1));
  });
});

describe('DiskFileRecordStore', () => {
  it('lists only <id>.json record files, not temporary or foreign files', async () => {
    const directory = await tempDirectory();
    const store = await diskStore(directory);
    const record = fileRecord();
    await store.put(record);
    for (const name of [`${record.id}.json.123.4.tmp`, 'notes.txt', 'a.b.json', '.json']) {
      await writeFile(path.join(directory, 'files', name), '{}');
    }
    const listed: string[] = [];
    for await (const id of store.list()) listed.push(id);
    expect(listed).toEqual([record.id]);
  });

  it('takes many writes of one record at once, leaving the last complete and no temporary file', async () => {
    const directory = await tempDirectory();
    const store = await diskStore(directory);
    const base = fileRecord({ metadata: { padding: 'x'.repeat(100_000) } });
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => store.put({ ...base, receivedBytes: i })),
    );
    expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
    const stored = await store.get(base.id);
    expect(stored?.metadata).toEqual(base.metadata);
    expect(await readdir(path.join(directory, 'files'))).toEqual([`${base.id}.json`]);
  });

  it('refuses an id that would not be listed again or would leave the directory', async () => {
    const directory = await tempDirectory();
    const store = await diskStore(directory);
    for (const id of ['../escape', 'a.b', '', 'x/y']) {
      await expect(store.put(fileRecord({ id }))).rejects.toThrow(RangeError);
      expect(await store.get(id)).toBeUndefined();
      await expect(store.delete(id)).resolves.toBeUndefined();
    }
    expect(await readdir(directory)).toEqual(['files']);
  });
});
