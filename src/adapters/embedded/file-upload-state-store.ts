import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { UploadRecord, UploadStateStore } from '../../core/ports.js';

/**
 * Upload records as one JSON file per upload (`<dir>/<id>.json`), with an in-memory copy so the hot
 * path never reads a file twice. Single process only: the cache assumes nobody else writes the files.
 * Writes go to a temporary file that is then renamed, so a crash never leaves half a record.
 * The cache keeps the most recently used records only, so memory stays flat however many uploads
 * the directory holds.
 */
export class FileUploadStateStore implements UploadStateStore {
  private readonly cache = new Map<string, UploadRecord>();

  constructor(
    private readonly directory: string,
    private readonly cacheCapacity = 10_000,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    const cached = this.cache.get(id);
    if (cached) return cached;
    let text: string;
    try {
      text = await readFile(this.fileOf(id), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const record = JSON.parse(text) as UploadRecord;
    this.remember(record);
    return record;
  }

  async put(record: UploadRecord): Promise<void> {
    const file = this.fileOf(record.id);
    const temporary = `${file}.tmp`;
    await writeFile(temporary, JSON.stringify(record));
    await rename(temporary, file);
    this.remember(record);
  }

  async delete(id: string): Promise<void> {
    this.cache.delete(id);
    await rm(this.fileOf(id), { force: true });
  }

  /** Map iteration follows insertion order: re-inserting marks a record as recently used. */
  private remember(record: UploadRecord): void {
    this.cache.delete(record.id);
    this.cache.set(record.id, record);
    if (this.cache.size > this.cacheCapacity) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }

  private fileOf(id: string): string {
    return path.join(this.directory, `${id}.json`);
  }
}
