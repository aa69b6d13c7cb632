import { readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The durable records of one kind in an embedded data directory as a restart would find them: the
 * log `<dataDir>/<kind>/records.log` replayed line by line (read here on its own, not through Ferry's
 * code). `files` holds the file records, `uploads` the upload records.
 */
export async function durableRecords(
  dataDir: string,
  kind: 'files' | 'uploads',
): Promise<Map<string, Record<string, unknown>>> {
  const records = new Map<string, Record<string, unknown>>();
  let text = '';
  try {
    text = await readFile(path.join(dataDir, kind, 'records.log'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const entry = JSON.parse(line) as { put?: Record<string, unknown> & { id: string }; delete?: string };
    if (entry.put) records.set(entry.put.id, entry.put);
    else if (entry.delete !== undefined) records.delete(entry.delete);
  }
  return records;
}

export function durableFileRecords(dataDir: string): Promise<Map<string, Record<string, unknown>>> {
  return durableRecords(dataDir, 'files');
}

export async function durableFileRecord(dataDir: string, id: string): Promise<Record<string, unknown> | undefined> {
  return (await durableFileRecords(dataDir)).get(id);
}
