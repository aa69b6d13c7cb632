import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBudget, PartBuffers } from '../../src/adapters/s3/part-buffers.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function spoolDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-part-buffers-'));
  dirs.push(dir);
  return dir;
}

async function sha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const pieces = [Buffer.from('first piece '), Buffer.alloc(70_000, 7), Buffer.from(' last')];
const expected = createHash('sha256').update(Buffer.concat(pieces)).digest('hex');

describe('PartBuffers', () => {
  it('keeps parts in memory while the budget has room for a whole part, then spools them to files', async () => {
    const dir = await spoolDir();
    const budget = new MemoryBudget(200);
    const buffers = new PartBuffers(budget, 100, dir);
    const a = buffers.open();
    const b = buffers.open();
    const c = buffers.open();
    expect(budget.inUse).toBe(200);
    await c.write(Buffer.from('x'));
    await c.close();
    expect(await readdir(dir)).toHaveLength(1);
    await a.discard();
    expect(budget.inUse).toBe(100);
    const d = buffers.open();
    expect(budget.inUse).toBe(200);
    await Promise.all([b.discard(), c.discard(), d.discard()]);
    expect(budget.inUse).toBe(0);
    expect(await readdir(dir)).toEqual([]);
  });

  it('returns the memory of a part to the budget once, however often it is discarded', async () => {
    const budget = new MemoryBudget(100);
    const part = new PartBuffers(budget, 100, await spoolDir()).open();
    await part.discard();
    await part.discard();
    expect(budget.inUse).toBe(0);
    expect(budget.tryReserve(100)).toBe(true);
    expect(budget.tryReserve(1)).toBe(false);
  });

  for (const [where, limit] of [
    ['memory', 1_000_000],
    ['a file', 0],
  ] as const) {
    it(`gives every attempt the same bytes from the start (part in ${where})`, async () => {
      const part = new PartBuffers(new MemoryBudget(limit), 1_000_000, await spoolDir()).open();
      for (const piece of pieces) await part.write(piece);
      await part.close();
      expect(part.bytes).toBe(Buffer.concat(pieces).length);
      expect(await sha256(part.body())).toBe(expected);
      expect(await sha256(part.body())).toBe(expected);
      await part.discard();
    });

    it(`keeps the CRC-32 of the bytes written, piece by piece, as zlib computes it over them all (part in ${where})`, async () => {
      const part = new PartBuffers(new MemoryBudget(limit), 1_000_000, await spoolDir()).open();
      expect(part.crc32).toBe(0);
      for (const piece of pieces) await part.write(piece);
      expect(part.crc32).toBe(crc32(Buffer.concat(pieces)));
      await part.discard();
    });
  }
});
