import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { remainderOf, writeToFile } from '../../src/adapters/disk/write-to-file.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function fileWith(content: Buffer): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-write-'));
  const file = path.join(dir, 'blob');
  await writeFile(file, content);
  return file;
}

/** A body that delivers `chunks` one per tick, then fails with `error` (or ends, without one). */
function slowBody(chunks: Buffer[], error?: Error): Readable {
  const body = new Readable({ read() {} });
  let i = 0;
  const step = () => {
    if (i < chunks.length) {
      body.push(chunks[i++]);
      setImmediate(step);
    } else if (error) body.destroy(error);
    else body.push(null);
  };
  setImmediate(step);
  return body;
}

describe('writeToFile', () => {
  it('writes a body of many chunks at the offset, leaves the bytes before it, and resolves with the count', async () => {
    const head = Buffer.from('0123456789');
    const file = await fileWith(head);
    // 8 MiB in 64 KiB chunks, delivered as fast as the body is read: more than the 1 MiB that may wait.
    const chunks = Array.from({ length: 128 }, () => randomBytes(64 * 1024));
    const written = await writeToFile(Readable.from(chunks), file, 'r+', 4);
    expect(written).toBe(8 * 1024 * 1024);
    const content = await readFile(file);
    expect(content.length).toBe(4 + written);
    expect(content.subarray(0, 4)).toEqual(head.subarray(0, 4));
    expect(sha256(content.subarray(4))).toBe(sha256(Buffer.concat(chunks)));
  });

  it('an empty body writes nothing and resolves with 0', async () => {
    const file = await fileWith(Buffer.from('abc'));
    expect(await writeToFile(Readable.from([]), file, 'r+', 3)).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('abc');
  });

  it('a body that fails keeps what it delivered in the file and rejects with its error', async () => {
    const file = await fileWith(Buffer.alloc(0));
    const chunks = [Buffer.from('first '), Buffer.from('second')];
    const cut = new Error('connection reset');
    await expect(writeToFile(slowBody(chunks, cut), file, 'r+', 0)).rejects.toBe(cut);
    expect(await readFile(file, 'utf8')).toBe('first second');
  });

  it('a body destroyed without an error (closed before its end) is refused too, its bytes kept', async () => {
    const file = await fileWith(Buffer.alloc(0));
    const body = new Readable({ read() {} });
    body.push(Buffer.from('partial'));
    setTimeout(() => body.destroy(), 20);
    await expect(writeToFile(body, file, 'r+', 0)).rejects.toThrow('closed before it ended');
    expect(await readFile(file, 'utf8')).toBe('partial');
  });

  it('a file that cannot be opened rejects and destroys the body', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-write-'));
    const body = slowBody([Buffer.from('bytes')]);
    await expect(writeToFile(body, path.join(dir, 'missing'), 'r+', 0)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(body.destroyed).toBe(true);
  });

  it('a write the disk refuses (a full device) rejects with its error and destroys the body, without an unhandled error', async () => {
    const body = slowBody([Buffer.from('one'), Buffer.from('two'), Buffer.from('three')]);
    await expect(writeToFile(body, '/dev/full', 'r+', 0)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(body.destroyed).toBe(true);
    // The body's own 'error' from that destruction comes a tick later and must find a listener.
    await new Promise((resolve) => setImmediate(resolve));
  });

  it('remainderOf: what is left of the chunks after a short write', () => {
    const chunks = [Buffer.from('abc'), Buffer.from('de'), Buffer.from('fgh')];
    expect(Buffer.concat(remainderOf(chunks, 0)).toString()).toBe('abcdefgh');
    expect(Buffer.concat(remainderOf(chunks, 2)).toString()).toBe('cdefgh');
    expect(Buffer.concat(remainderOf(chunks, 3)).toString()).toBe('defgh');
    expect(Buffer.concat(remainderOf(chunks, 6)).toString()).toBe('gh');
    expect(remainderOf(chunks, 8)).toEqual([]);
  });
});
