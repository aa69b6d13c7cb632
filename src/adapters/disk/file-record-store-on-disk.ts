import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { FileRecord, FileRecordStore } from '../../core/ports.js';
import { readJsonFile, writeJsonAtomically } from './json-files.js';

// Ids are upload ids (base64url). Only such ids make `<id>.json` names that `list()` finds again, and
// they cannot climb out of the directory.
const ID = /^[A-Za-z0-9_-]+$/;
const RECORD_FILE = /^([A-Za-z0-9_-]+)\.json$/;

/**
 * The durable file records of embedded mode: one JSON file per file (`<dir>/<id>.json`, the caller
 * passes `<dataDir>/files`), written atomically (see writeJsonAtomically).
 */
export class DiskFileRecordStore implements FileRecordStore {
  constructor(private readonly directory: string) {}

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
  }

  async get(id: string): Promise<FileRecord | undefined> {
    if (!ID.test(id)) return undefined;
    return readJsonFile<FileRecord>(this.fileOf(id));
  }

  async put(record: FileRecord): Promise<void> {
    if (!ID.test(record.id)) throw new RangeError(`not a file id: ${JSON.stringify(record.id)}`);
    await writeJsonAtomically(this.fileOf(record.id), record);
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
