import { readdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * Part and chunk buffers an S3 Ferry keeps under FERRY_S3_TEMP_DIR: every file below it except the
 * per-instance heartbeat files (`run-*\/.alive`), which exist as long as an instance runs.
 */
export async function spoolFiles(tempDir: string): Promise<string[]> {
  const entries = await readdir(tempDir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name !== '.alive')
    .map((entry) => path.relative(tempDir, path.join(entry.parentPath, entry.name)))
    .sort();
}
