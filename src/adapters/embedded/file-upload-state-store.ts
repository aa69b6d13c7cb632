import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { UploadRecord, UploadStateStore } from '../../core/ports.js';

/**
 * Upload records as one JSON file per upload (`<dir>/<id>.json`), beside the bytes. Writes go to a
 * temporary file that is then renamed, so a crash never leaves half a record.
 */
export class FileUploadStateStore implements UploadStateStore {
  constructor(private readonly directory: string) {}

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.fileOf(id), 'utf8')) as UploadRecord;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async put(record: UploadRecord): Promise<void> {
    const file = this.fileOf(record.id);
    const temporary = `${file}.tmp`;
    await writeFile(temporary, JSON.stringify(record));
    await rename(temporary, file);
  }

  async delete(id: string): Promise<void> {
    await rm(this.fileOf(id), { force: true });
  }

  async *list(): AsyncIterable<string> {
    for (const name of await readdir(this.directory)) {
      // Record files are `<id>.json`; ids have no dots, so temporary and other files never match.
      const match = /^([A-Za-z0-9_-]+)\.json$/.exec(name);
      if (match) yield match[1]!;
    }
  }

  private fileOf(id: string): string {
    return path.join(this.directory, `${id}.json`);
  }
}
