import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import {
  cleanupTempFiles,
  randomFile,
  sha256AndSizeOfUrl,
  sha256File,
  sha256OfUrl,
  sha256Stream,
} from '../../helpers/files.js';

afterAll(cleanupTempFiles);

describe('files helpers', () => {
  it('randomFile writes the requested number of bytes and reports their sha256', async () => {
    const f = await randomFile(3 * 1024 * 1024 + 17);
    expect((await stat(f.path)).size).toBe(f.size);
    const whole = await readFile(f.path);
    expect(createHash('sha256').update(whole).digest('hex')).toBe(f.sha256);
    expect(await sha256File(f.path)).toBe(f.sha256);
    expect(await sha256Stream(createReadStream(f.path))).toBe(f.sha256);
  });

  it('sha256File hashes a byte range [start, end)', async () => {
    const f = await randomFile(100_000);
    const whole = await readFile(f.path);
    const h = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    expect(await sha256File(f.path, { end: 4096 })).toBe(h(whole.subarray(0, 4096)));
    expect(await sha256File(f.path, { start: 10, end: 99_999 })).toBe(h(whole.subarray(10, 99_999)));
    expect(await sha256File(f.path, { end: 0 })).toBe(h(Buffer.alloc(0)));
  });

  it('sha256OfUrl streams a GET body and rejects non-200 answers', async () => {
    const f = await randomFile(2 * 1024 * 1024);
    const srv = createServer((req, res) => {
      if (req.url === '/file') createReadStream(f.path).pipe(res);
      else {
        res.statusCode = 404;
        res.end('nope');
      }
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as { port: number };
    try {
      expect(await sha256OfUrl(`http://127.0.0.1:${port}/file`)).toBe(f.sha256);
      expect(await sha256AndSizeOfUrl(`http://127.0.0.1:${port}/file`)).toEqual({ sha256: f.sha256, bytes: f.size });
      await expect(sha256OfUrl(`http://127.0.0.1:${port}/missing`)).rejects.toThrow(/404: nope/);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});
