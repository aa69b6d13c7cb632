import { mkdtemp, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DiskBlobStore } from '../../src/adapters/disk/disk-blob-store.js';
import { until } from '../helpers/poll.js';

async function freshStore() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-blobs-'));
  const store = new DiskBlobStore(dir);
  await store.init();
  return { dir, store };
}

/** Descriptors of this process open on `file` (also once it is deleted). */
async function descriptorsOn(file: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === file || target === `${file} (deleted)`) count++;
  }
  return count;
}

describe('DiskBlobStore: the descriptor create opens, kept for the first append', () => {
  it('is used and closed by the first append: one descriptor on the blob after create, none after the append', async () => {
    const { dir, store } = await freshStore();
    await store.create('h');
    expect(await descriptorsOn(path.join(dir, 'h'))).toBe(1);
    expect(await store.append('h', 0, Readable.from([Buffer.from('held')]))).toBe(4);
    expect(await descriptorsOn(path.join(dir, 'h'))).toBe(0);
    expect(await readFile(path.join(dir, 'h'), 'utf8')).toBe('held');
  });

  it('is closed when the blob is removed before any append', async () => {
    const { dir, store } = await freshStore();
    await store.create('r');
    await store.remove('r');
    // The close is not awaited by remove (it cannot fail in a way that matters).
    await until(
      'no descriptor on the removed blob',
      () => descriptorsOn(path.join(dir, 'r')),
      (n) => n === 0,
      {
        timeoutMs: 1_000,
      },
    );
  });

  it('is closed after 2 s without an append; a later append opens the file itself', async () => {
    const { dir, store } = await freshStore();
    const file = path.join(dir, 'late');
    await store.create('late');
    const createdAt = Date.now();
    expect(await descriptorsOn(file)).toBe(1);
    await until(
      'the held descriptor closed',
      () => descriptorsOn(file),
      (n) => n === 0,
      { timeoutMs: 5_000 },
    );
    expect(Date.now() - createdAt).toBeGreaterThanOrEqual(1_900);
    expect(await store.append('late', 0, Readable.from([Buffer.from('late')]))).toBe(4);
    expect(await readFile(path.join(dir, 'late'), 'utf8')).toBe('late');
  });

  it('is kept for at most 64 blobs (the oldest closed first), and every blob still takes its bytes', async () => {
    const { dir, store } = await freshStore();
    const ids = Array.from({ length: 100 }, (_, i) => `b${i}`);
    for (const id of ids) await store.create(id);
    const held = await until(
      'the 36 oldest closed',
      () => Promise.all(ids.map((id) => descriptorsOn(path.join(dir, id)))),
      (counts) => counts.slice(0, 36).every((n) => n === 0),
      { timeoutMs: 1_000 },
    );
    expect(held.slice(36).every((n) => n === 1)).toBe(true);
    for (const id of ids) await store.append(id, 0, Readable.from([Buffer.from(id)]));
    for (const id of ids) expect(await readFile(path.join(dir, id), 'utf8')).toBe(id);
    expect(await descriptorsOn(path.join(dir, 'b99'))).toBe(0);
  });
});

describe('DiskBlobStore', () => {
  it('appends at the offset and reports the new size', async () => {
    const { store } = await freshStore();
    await store.create('a');
    expect(await store.append('a', 0, Readable.from([Buffer.from('abc')]))).toBe(3);
    expect(await store.append('a', 3, Readable.from([Buffer.from('def')]))).toBe(6);
    expect((await store.stat('a'))?.size).toBe(6);
  });

  it('keeps the bytes that arrived before the body failed', async () => {
    const { store } = await freshStore();
    await store.create('cut');
    const body = new Readable({ read() {} });
    body.push(Buffer.from('12345'));
    setTimeout(() => body.destroy(new Error('connection reset')), 20);
    await expect(store.append('cut', 0, body)).rejects.toThrow('connection reset');
    expect((await store.stat('cut'))?.size).toBe(5);
  });

  it('cuts a refused tentative append back to the old size and leaves no marker', async () => {
    const { dir, store } = await freshStore();
    await store.create('t');
    await store.append('t', 0, Readable.from([Buffer.from('keep')]));
    const size = await store.appendTentatively('t', 4, Readable.from([Buffer.from('refused')]), () => false);
    expect(size).toBe(4);
    expect(await readFile(path.join(dir, 't'), 'utf8')).toBe('keep');
    expect(await readdir(dir)).toEqual(['t']);
  });

  it('cuts a tentative append back when the body fails', async () => {
    const { dir, store } = await freshStore();
    await store.create('f');
    const body = new Readable({ read() {} });
    body.push(Buffer.from('partial'));
    setTimeout(() => body.destroy(new Error('cut')), 20);
    await expect(store.appendTentatively('f', 0, body, () => true)).rejects.toThrow('cut');
    expect((await stat(path.join(dir, 'f'))).size).toBe(0);
  });

  it('hides the bytes of a tentative append while it is undecided', async () => {
    const { store } = await freshStore();
    await store.create('open');
    await store.append('open', 0, Readable.from([Buffer.from('kept')]));
    const body = new Readable({ read() {} });
    const appending = store.appendTentatively('open', 4, body, () => true);
    body.push(Buffer.from('pending'));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const sizeSeenMeanwhile = (await store.stat('open'))?.size;
    body.push(null);
    expect(await appending).toBe(11);
    expect(sizeSeenMeanwhile).toBe(4);
    expect((await store.stat('open'))?.size).toBe(11);
  });

  it('after a crash mid tentative append, reports the old size and the next append replaces the unverified bytes', async () => {
    const { dir, store } = await freshStore();
    await store.create('crash');
    await store.append('crash', 0, Readable.from([Buffer.from('verified')]));
    // What a crash in the middle of a checksummed chunk leaves: unverified bytes and the marker.
    await writeFile(path.join(dir, 'crash'), 'verifiedUNVERIFIED');
    await writeFile(path.join(dir, 'crash.pending'), '8');
    const restarted = new DiskBlobStore(dir);
    await restarted.init();
    expect((await restarted.stat('crash'))?.size).toBe(8);
    expect(await restarted.append('crash', 8, Readable.from([Buffer.from('+more')]))).toBe(13);
    expect(await readFile(path.join(dir, 'crash'), 'utf8')).toBe('verified+more');
    expect(await readdir(dir)).toEqual(['crash']);
  });

  it('in a directory shared by replicas, leaves a crash-left marker at start and lets the next append replace the unverified bytes', async () => {
    const { dir, store } = await freshStore();
    await store.create('shared');
    await store.append('shared', 0, Readable.from([Buffer.from('verified')]));
    await writeFile(path.join(dir, 'shared'), 'verifiedUNVERIFIED');
    await writeFile(path.join(dir, 'shared.pending'), '8');
    // Another replica may be writing right now: start-up must not touch its marker or bytes.
    const replica = new DiskBlobStore(dir, { shared: true });
    await replica.init();
    expect(await readFile(path.join(dir, 'shared'), 'utf8')).toBe('verifiedUNVERIFIED');
    expect((await replica.stat('shared'))?.size).toBe(8);
    expect(await replica.append('shared', 8, Readable.from([Buffer.from('+more')]))).toBe(13);
    expect(await readFile(path.join(dir, 'shared'), 'utf8')).toBe('verified+more');
    expect(await readdir(dir)).toEqual(['shared']);
  });

  it('reports the bytes of an append as they arrive, not the size before it', async () => {
    const { store } = await freshStore();
    await store.create('growing');
    expect((await store.stat('growing'))?.size).toBe(0);
    const body = new Readable({ read() {} });
    const appending = store.append('growing', 0, body);
    body.push(Buffer.from('first'));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const sizeSeenMeanwhile = (await store.stat('growing'))?.size;
    body.push(null);
    expect(await appending).toBe(5);
    expect(sizeSeenMeanwhile).toBe(5);
    expect((await store.stat('growing'))?.size).toBe(5);
  });

  it('after a refused tentative append, reports the size before it', async () => {
    const { store } = await freshStore();
    await store.create('r');
    await store.append('r', 0, Readable.from([Buffer.from('keep')]));
    await store.appendTentatively('r', 4, Readable.from([Buffer.from('refused')]), () => false);
    expect((await store.stat('r'))?.size).toBe(4);
    await store.appendTentatively('r', 4, Readable.from([Buffer.from('+ok')]), () => true);
    expect((await store.stat('r'))?.size).toBe(7);
  });

  it('forgets a removed blob, and a blob created again starts empty', async () => {
    const { store } = await freshStore();
    await store.create('gone');
    await store.append('gone', 0, Readable.from([Buffer.from('bytes')]));
    await store.remove('gone');
    expect(await store.stat('gone')).toBeUndefined();
    await store.create('gone');
    expect((await store.stat('gone'))?.size).toBe(0);
  });

  it('in a directory shared by replicas, sees the bytes another replica appended', async () => {
    const { dir } = await freshStore();
    const a = new DiskBlobStore(dir, { shared: true });
    const b = new DiskBlobStore(dir, { shared: true });
    await a.create('both');
    expect((await b.stat('both'))?.size).toBe(0);
    await a.append('both', 0, Readable.from([Buffer.from('from a')]));
    expect((await b.stat('both'))?.size).toBe(6);
    await b.append('both', 6, Readable.from([Buffer.from('+b')]));
    expect((await a.stat('both'))?.size).toBe(8);
  });

  it('refuses to create a blob that exists', async () => {
    const { store } = await freshStore();
    await store.create('once');
    await expect(store.create('once')).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it('refuses ids that would leave its directory', async () => {
    const { store } = await freshStore();
    await expect(store.create('../escape')).rejects.toThrow(/invalid blob id/);
    expect(() => store.read('a/b')).toThrow(/invalid blob id/);
  });
});
