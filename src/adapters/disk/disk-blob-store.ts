import { createReadStream, createWriteStream } from 'node:fs';
import { access, constants, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobStat, BlobStore, ByteRange } from '../../core/ports.js';

/**
 * Bytes of each upload in one file, `<dir>/<id>`. Ids are validated by core before they get here;
 * `resolve` still refuses anything that would leave the directory.
 *
 * Durability: bytes are handed to the kernel as they arrive (no fsync per request). A killed
 * process loses nothing the kernel has accepted; a power loss can lose the last seconds, which the
 * client re-sends after asking for the offset.
 */
export class DiskBlobStore implements BlobStore {
  constructor(private readonly directory: string) {}

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
  }

  async create(id: string): Promise<void> {
    await writeFile(this.resolve(id), '', { flag: 'wx' });
  }

  async append(id: string, offset: number, body: Readable): Promise<number> {
    const file = createWriteStream(this.resolve(id), { flags: 'r+', start: offset, highWaterMark: 1024 * 1024 });
    await pipeline(body, file);
    return offset + file.bytesWritten;
  }

  async stat(id: string): Promise<BlobStat | undefined> {
    try {
      const info = await stat(this.resolve(id));
      return info.isFile() ? { size: info.size, modifiedAt: info.mtime } : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  read(id: string, range?: ByteRange): Readable {
    return createReadStream(this.resolve(id), range ? { start: range.start, end: range.end } : {});
  }

  async remove(id: string): Promise<void> {
    await rm(this.resolve(id), { force: true });
  }

  async checkReady(): Promise<void> {
    await access(this.directory, constants.W_OK);
  }

  private resolve(id: string): string {
    const file = path.join(this.directory, id);
    if (path.dirname(file) !== this.directory) throw new Error(`invalid blob id ${JSON.stringify(id)}`);
    return file;
  }
}
