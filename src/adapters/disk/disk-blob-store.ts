import { close, createReadStream, open, stat, type Stats } from 'node:fs';
import { access, constants, mkdir, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobStat, BlobStore, ByteRange } from '../../core/ports.js';
import { setRecentlyUsed } from '../recently-used.js';
import { readTextFile } from './json-files.js';
import { writeToFile } from './write-to-file.js';

/** How many blobs' sizes a store that owns its directory keeps in memory (the most recently written). */
const KNOWN_SIZES = 10_000;
/**
 * How long the descriptor `create` opened is kept for the blob's first append, and for how many blobs
 * at most: enough for the uploads a client keeps in flight, few beside a process's descriptor limit
 * (often 1024).
 */
const HELD_OPEN_MS = 2_000;
const HELD_OPEN_MAX = 64;

/**
 * Bytes of each upload in one file, `<dir>/<id>`. Ids are validated by core before they get here;
 * `resolve` still refuses anything that would leave the directory.
 *
 * Durability: bytes are handed to the kernel as they arrive (no fsync per request). A killed
 * process loses nothing the kernel has accepted; a power loss can lose the last seconds, which the
 * client re-sends after asking for the offset.
 *
 * Tentative appends (checksummed chunks) write in place and cut the file back when the chunk is
 * refused. A `<id>.pending` marker holding the old size exists while the decision is open, and
 * `stat` reports that size meanwhile: bytes not yet verified are never part of the upload, for any
 * reader. A directory owned by one process knows its open decisions in memory and rolls back the
 * markers a crash left at start. A directory `shared` by replicas cannot: there `stat` reads the
 * marker, and the next append (under the upload's lock, so it cannot race a live writer elsewhere)
 * cleans up a marker a crash left.
 *
 * A directory owned by one process also knows the size of every blob it created or wrote lately, so
 * `stat` on the upload path (several per request) asks the file system only for blobs it has not
 * touched since it started. A blob being written is not known until the write ends: meanwhile `stat`
 * reads the file, which shows the bytes as they arrive, as before. The hot calls (create, stat) use
 * callback `fs`: `fs/promises` builds a FileHandle or a promise chain per call, which showed in a
 * profile of small uploads.
 *
 * The descriptor `create` opens is kept open for up to 2 s and handed to the blob's first append, which
 * usually comes right after (tus clients PATCH as soon as the POST is answered): one open and one close
 * fewer per small upload, each a round trip through the thread pool.
 */
export class DiskBlobStore implements BlobStore {
  /** Tentative appends under way in this process, with the size before each. */
  private readonly pendingHere = new Map<string, number>();
  /** Owned directory only: size and last write of blobs this process created or wrote, oldest first. */
  private readonly known = new Map<string, BlobStat>();
  /** Descriptors `create` opened, kept for the first append until their timer closes them; oldest first. */
  private readonly heldOpen = new Map<string, { readonly fd: number; readonly timer: NodeJS.Timeout }>();

  constructor(
    private readonly directory: string,
    private readonly options: { readonly shared?: boolean } = {},
  ) {}

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    if (this.options.shared) return;
    for (const name of await readdir(this.directory)) {
      if (name.endsWith(PENDING_SUFFIX))
        await this.rollBackInterruptedTentativeAppend(name.slice(0, -PENDING_SUFFIX.length));
    }
  }

  async create(id: string): Promise<void> {
    const file = this.resolve(id);
    await new Promise<void>((resolve, reject) => {
      open(file, 'wx', (openError, fd) => {
        if (openError) return reject(openError);
        this.remember(id, 0);
        this.holdOpen(id, fd);
        resolve();
      });
    });
  }

  async append(id: string, offset: number, body: Readable): Promise<number> {
    if (this.options.shared) await this.rollBackInterruptedTentativeAppend(id);
    const size = await this.write(id, offset, body);
    this.remember(id, size);
    return size;
  }

  private async write(id: string, offset: number, body: Readable): Promise<number> {
    // Unknown while the bytes arrive (and after a failed write, whatever reached the file).
    this.known.delete(id);
    return offset + (await writeToFile(body, this.resolve(id), 'r+', offset, this.takeHeldOpen(id)));
  }

  async appendTentatively(id: string, offset: number, body: Readable, accept: () => boolean): Promise<number> {
    if (this.options.shared) await this.rollBackInterruptedTentativeAppend(id);
    const marker = this.pendingMarkerOf(id);
    await writeFile(marker, String(offset));
    this.pendingHere.set(id, offset);
    let size = offset;
    try {
      size = await this.write(id, offset, body);
      if (!accept()) size = offset;
    } finally {
      if (size === offset) await truncate(this.resolve(id), offset);
      await rm(marker, { force: true });
      this.pendingHere.delete(id);
      this.remember(id, size);
    }
    return size;
  }

  /** A file is readable as it grows: nothing to assemble. */
  async finish(): Promise<void> {}

  async stat(id: string): Promise<BlobStat | undefined> {
    const file = this.resolve(id);
    const known = this.known.get(id);
    if (known) return known;
    const info = await new Promise<Stats | undefined>((resolve, reject) => {
      stat(file, (error, stats) => {
        if (error) return error.code === 'ENOENT' ? resolve(undefined) : reject(error);
        resolve(stats);
      });
    });
    if (!info?.isFile()) return undefined;
    const pending = this.options.shared ? await this.pendingOffsetOf(id) : this.pendingHere.get(id);
    return { size: pending === undefined ? info.size : Math.min(pending, info.size), modifiedAt: info.mtime };
  }

  read(id: string, range?: ByteRange): Readable {
    return createReadStream(this.resolve(id), range ? { start: range.start, end: range.end } : {});
  }

  async remove(id: string): Promise<void> {
    const file = this.resolve(id);
    this.known.delete(id);
    this.closeHeldOpen(id);
    await rm(file, { force: true });
  }

  async checkReady(): Promise<void> {
    await access(this.directory, constants.W_OK);
  }

  /** Notes a blob's size after this process changed it (owned directory only; replicas may change it too). */
  private remember(id: string, size: number): void {
    if (this.options.shared) return;
    setRecentlyUsed(this.known, id, { size, modifiedAt: new Date() }, KNOWN_SIZES);
  }

  private holdOpen(id: string, fd: number): void {
    if (this.heldOpen.size >= HELD_OPEN_MAX) this.closeHeldOpen(this.heldOpen.keys().next().value!);
    const timer = setTimeout(() => this.closeHeldOpen(id), HELD_OPEN_MS).unref();
    this.heldOpen.set(id, { fd, timer });
  }

  /** The descriptor held for `id`, now the caller's to close. */
  private takeHeldOpen(id: string): number | undefined {
    const held = this.heldOpen.get(id);
    if (!held) return undefined;
    clearTimeout(held.timer);
    this.heldOpen.delete(id);
    return held.fd;
  }

  private closeHeldOpen(id: string): void {
    const fd = this.takeHeldOpen(id);
    // Nothing was written through it: a failed close loses nothing.
    if (fd !== undefined) close(fd, () => undefined);
  }

  /** The size before a tentative append that is under way or was cut short by a crash. */
  private async pendingOffsetOf(id: string): Promise<number | undefined> {
    // Read on every `stat` of a shared directory, where the marker is almost never there.
    const text = await readTextFile(this.pendingMarkerOf(id));
    if (text === undefined) return undefined;
    const offset = Number(text);
    return Number.isSafeInteger(offset) && offset >= 0 ? offset : 0;
  }

  /** Called under the upload's lock (or at start, alone): a marker found then was left by a writer that is gone. */
  private async rollBackInterruptedTentativeAppend(id: string): Promise<void> {
    const offset = await this.pendingOffsetOf(id);
    if (offset === undefined) return;
    await truncate(this.resolve(id), offset);
    await rm(this.pendingMarkerOf(id), { force: true });
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
