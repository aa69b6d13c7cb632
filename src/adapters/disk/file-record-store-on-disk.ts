import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FileRecord, FileRecordStore } from '../../core/ports.js';

// Ids are upload ids (base64url). Only such ids make `<id>.json` names that `list()` finds again, and
// they cannot climb out of the directory.
const ID = /^[A-Za-z0-9_-]+$/;
const RECORD_FILE = /^([A-Za-z0-9_-]+)\.json$/;

let temporaryCounter = 0;

/**
 * The durable file records of embedded mode: one JSON file per file (`<dir>/<id>.json`, the caller
 * passes `<dataDir>/files`). Writes go to a temporary file that is then renamed, so a crash never
 * leaves half a record.
 */
export class DiskFileRecordStore implements FileRecordStore {
  constructor(private readonly directory: string) {}

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
  }

  async get(id: string): Promise<FileRecord | undefined> {
    if (!ID.test(id)) return undefined;
    try {
      return JSON.parse(await readFile(this.fileOf(id), 'utf8')) as FileRecord;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async put(record: FileRecord): Promise<void> {
    if (!ID.test(record.id)) throw new RangeError(`not a file id: ${JSON.stringify(record.id)}`);
    const file = this.fileOf(record.id);
    // A name of its own per write: two writes of one record at once must not share (and rename away)
    // each other's half-written temporary file. The dots keep it out of `list()`.
    const temporary = `${file}.${process.pid}.${++temporaryCounter}.tmp`;
    try {
      await writeFile(temporary, JSON.stringify(record));
      await rename(temporary, file);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  async delete(id: string): Promise<void> {
    if (!ID.test(id)) return;
    await rm(this.fileOf(id), { force: true });
  }

  async *list(): AsyncIterable<string> {
    for (const name of await readdir(this.directory)) {
      const match = RECORD_FILE.exec(name);
      if (match) yield match[1]!;
    }
  }

  private fileOf(id: string): string {
    return path.join(this.directory, `${id}.json`);
  }
}
