import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { UploadRecord, UploadStateStore } from '../../core/ports.js';
import { readJsonFile, writeJsonAtomically } from './json-files.js';

/**
 * Upload records as one JSON file per upload (`<dir>/<id>.json`), beside the bytes, written
 * atomically (see writeJsonAtomically): for replicas that share a data directory, where no one
 * process can own a log (an embedded data directory keeps them in a RecordLog).
 */
export class FileUploadStateStore implements UploadStateStore {
  constructor(private readonly directory: string) {}

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    return readJsonFile<UploadRecord>(this.fileOf(id));
  }

  async put(record: UploadRecord): Promise<void> {
    await writeJsonAtomically(this.fileOf(record.id), record);
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
