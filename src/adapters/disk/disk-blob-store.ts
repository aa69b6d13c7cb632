import { createReadStream, createWriteStream } from 'node:fs';
import { access, constants, mkdir, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
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
 *
 * Tentative appends (checksummed chunks) write in place and cut the file back when the chunk is
 * refused. A `<id>.pending` marker holding the old size exists while the decision is open; `init`
 * cuts back every blob whose marker survived a crash, so unverified bytes never become part of an
 * upload.
 */
export class DiskBlobStore implements BlobStore {
  constructor(private readonly directory: string) {}

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    await this.rollBackInterruptedTentativeAppends();
  }

  async create(id: string): Promise<void> {
    await writeFile(this.resolve(id), '', { flag: 'wx' });
  }

  async append(id: string, offset: number, body: Readable): Promise<number> {
    const file = createWriteStream(this.resolve(id), { flags: 'r+', start: offset, highWaterMark: 1024 * 1024 });
    await pipeline(body, file);
    return offset + file.bytesWritten;
  }

  async appendTentatively(id: string, offset: number, body: Readable, accept: () => boolean): Promise<number> {
    const marker = this.pendingMarkerOf(id);
    await writeFile(marker, String(offset));
    let size = offset;
    try {
      size = await this.append(id, offset, body);
      if (!accept()) size = offset;
    } finally {
      if (size === offset) await truncate(this.resolve(id), offset);
      await rm(marker, { force: true });
    }
    return size;
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

  private async rollBackInterruptedTentativeAppends(): Promise<void> {
    for (const name of await readdir(this.directory)) {
      if (!name.endsWith(PENDING_SUFFIX)) continue;
      const marker = path.join(this.directory, name);
      const offset = Number(await readFile(marker, 'utf8'));
      const blob = this.resolve(name.slice(0, -PENDING_SUFFIX.length));
      if (Number.isSafeInteger(offset) && offset >= 0) await truncate(blob, offset).catch(ignoreMissing);
      await rm(marker, { force: true });
    }
  }

  private pendingMarkerOf(id: string): string {
    return `${this.resolve(id)}${PENDING_SUFFIX}`;
  }

  private resolve(id: string): string {
    const file = path.join(this.directory, id);
    if (path.dirname(file) !== this.directory) throw new Error(`invalid blob id ${JSON.stringify(id)}`);
    return file;
  }
}

const PENDING_SUFFIX = '.pending';

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}
