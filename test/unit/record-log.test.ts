import { appendFile, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordLog } from '../../src/adapters/disk/record-log.js';
import type { FileRecord } from '../../src/core/ports.js';
import { fileRecord } from '../contract/file-registry.contract.js';

const directories: string[] = [];
const open: RecordLog<FileRecord>[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((log) => log.close()));
  await Promise.all(directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })));
});

async function tempDirectory(): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'ferry-record-log-'));
  directories.push(directory);
  return directory;
}

async function openLog(directory: string): Promise<RecordLog<FileRecord>> {
  const log = new RecordLog<FileRecord>(directory, 'file');
  await log.init();
  open.push(log);
  return log;
}

async function reopen(directory: string, log: RecordLog<FileRecord>): Promise<RecordLog<FileRecord>> {
  await log.close();
  open.splice(open.indexOf(log), 1);
  return openLog(directory);
}

async function all(log: RecordLog<FileRecord>): Promise<FileRecord[]> {
  const records: FileRecord[] = [];
  for await (const id of log.list()) records.push((await log.get(id))!);
  return records.sort((a, b) => (a.id < b.id ? -1 : 1));
}

describe('RecordLog (file records; upload records use the same class)', () => {
  it('keeps puts and deletes across a restart, from one log file', async () => {
    const directory = await tempDirectory();
    const log = await openLog(directory);
    const [a, b, c] = [fileRecord(), fileRecord(), fileRecord()];
    await Promise.all([log.put(a), log.put(b), log.put(c)]);
    await log.put({ ...b, status: 'completed' });
    await log.delete(c.id);
    const again = await reopen(directory, log);
    expect(await all(again)).toEqual([a, { ...b, status: 'completed' }]);
    expect((await readdir(directory)).sort()).toEqual(['records.lock', 'records.log']);
  });

  it('takes 500 puts of one record at once: one line each, the last wins in memory and after a restart', async () => {
    const directory = await tempDirectory();
    const log = await openLog(directory);
    const base = fileRecord();
    const puts = Array.from({ length: 500 }, (_, i) => ({ ...base, receivedBytes: i }));
    await Promise.all(puts.map((record) => log.put(record)));
    expect(await log.get(base.id)).toEqual(puts.at(-1));
    const lines = (await readFile(path.join(directory, 'records.log'), 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(500);
    expect(await (await reopen(directory, log)).get(base.id)).toEqual(puts.at(-1));
  });

  it('ignores a last line cut short by a power loss and removes it at start', async () => {
    const directory = await tempDirectory();
    const log = await openLog(directory);
    const kept = fileRecord();
    await log.put(kept);
    await log.put({ ...kept, status: 'completed' });
    await log.close();
    open.splice(0);
    const file = path.join(directory, 'records.log');
    const { size } = await import('node:fs/promises').then((fs) => fs.stat(file));
    await truncate(file, size - 10); // the second put, cut in the middle
    const again = await openLog(directory);
    expect(await all(again)).toEqual([kept]);
    expect((await readFile(file, 'utf8')).endsWith('}\n')).toBe(true);
    // Appends after the repair are read back whole.
    const next = fileRecord();
    await again.put(next);
    expect(await all(await reopen(directory, again))).toEqual([kept, next].sort((a, b) => (a.id < b.id ? -1 : 1)));
  });

  it('rewrites the log when it has grown to twice what it holds, losing nothing', async () => {
    const directory = await tempDirectory();
    const log = await openLog(directory);
    const records = Array.from({ length: 20 }, () => fileRecord({ metadata: { padding: 'x'.repeat(2000) } }));
    // About 20 × 2.5 KB live; 2000 rewrites of them is 5 MB of log, past the 4 MiB floor.
    for (let round = 0; round < 100; round++) {
      await Promise.all(records.map((record) => log.put({ ...record, receivedBytes: round })));
    }
    const { size } = await import('node:fs/promises').then((fs) => fs.stat(path.join(directory, 'records.log')));
    expect(size).toBeLessThan(4 * 1024 * 1024);
    const expected = records.map((record) => ({ ...record, receivedBytes: 99 })).sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(await all(log)).toEqual(expected);
    expect(await all(await reopen(directory, log))).toEqual(expected);
  });

  it('takes in the one-file-per-record layout of earlier versions and removes it', async () => {
    const directory = await tempDirectory();
    const legacy = fileRecord();
    await writeFile(path.join(directory, `${legacy.id}.json`), JSON.stringify(legacy));
    await writeFile(path.join(directory, `${legacy.id}.json.77.1.tmp`), '{"half');
    const log = await openLog(directory);
    expect(await log.get(legacy.id)).toEqual(legacy);
    expect((await readdir(directory)).sort()).toEqual(['records.lock', 'records.log']);
    expect(await (await reopen(directory, log)).get(legacy.id)).toEqual(legacy);
  });

  it('refuses to open a log that a live process owns, and takes over one whose owner is gone', async () => {
    const directory = await tempDirectory();
    // pid 1 is always alive (and is not this process).
    await writeFile(path.join(directory, 'records.lock'), '1');
    await expect(new RecordLog<FileRecord>(directory, 'file').init()).rejects.toThrow(/in use by process 1/);
    // A pid far above pid_max belongs to no process: a lock left by a killed one.
    await writeFile(path.join(directory, 'records.lock'), '999999999');
    const log = await openLog(directory);
    await log.put(fileRecord());
    expect(await readFile(path.join(directory, 'records.lock'), 'utf8')).toBe(String(process.pid));
  });

  it('leaves the lock of the live process that owns the log when a refused opener closes', async () => {
    const directory = await tempDirectory();
    await writeFile(path.join(directory, 'records.lock'), '1');
    const refused = new RecordLog<FileRecord>(directory, 'file');
    await expect(refused.init()).rejects.toThrow(/in use by process 1/);
    await refused.close();
    expect(await readFile(path.join(directory, 'records.lock'), 'utf8')).toBe('1');
  });

  it('refuses an id that could not be listed again', async () => {
    const log = await openLog(await tempDirectory());
    for (const id of ['../escape', 'a.b', '', 'x/y']) {
      await expect(log.put(fileRecord({ id }))).rejects.toThrow(RangeError);
    }
    expect(await all(log)).toEqual([]);
  });

  it('skips a line in the middle of the log that does not parse and keeps the records around it', async () => {
    const directory = await tempDirectory();
    const log = await openLog(directory);
    const a = fileRecord();
    await log.put(a);
    await appendFile(path.join(directory, 'records.log'), '{"not json\n');
    const b = fileRecord();
    await log.put(b);
    expect(await all(await reopen(directory, log))).toEqual([a, b]);
  });
});
