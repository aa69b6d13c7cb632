/**
 * Upload records of an embedded data directory live in an append-only log, `uploads/records.log`
 * (RecordLog). What a user sees of that: unfinished uploads survive restarts (a crash too), and a
 * data directory written by an earlier version, which kept one `uploads/<id>.json` per upload, is taken
 * in at start, so uploads begun before an upgrade resume after it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupFerries, restartFerry, startFerry } from '../helpers/ferry-process.js';
import { durableRecords } from '../helpers/record-logs.js';
import { httpRequest, patchHeaders, tusCreate, tusHead, uploadId } from '../helpers/tus.js';

afterEach(cleanupFerries);

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function patch(url: string, offset: number, bytes: Buffer): Promise<number> {
  const res = await httpRequest('PATCH', url, patchHeaders(offset, bytes.length), bytes);
  expect(res.status).toBe(204);
  return Number(res.headers['upload-offset']);
}

/** The stored bytes of a completed upload, as `GET /files/<id>` streams them. */
function download(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    get(url, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => resolve(Buffer.concat(chunks)));
      answer.on('error', reject);
    }).on('error', reject);
  });
}

describe('upload records in the record log', () => {
  it('an unfinished upload survives SIGKILL and resumes to a byte-identical file; its record is a line in uploads/records.log, not a file of its own', async () => {
    const source = randomBytes(300_000);
    const ferry = await startFerry();
    const { url } = await tusCreate(ferry.url, source.length, { 'Upload-Metadata': `filename ${btoa('a.bin')}` });
    const id = uploadId(url);
    expect(await patch(url, 0, source.subarray(0, 100_000))).toBe(100_000);
    expect(await readdir(path.join(ferry.dataDir, 'uploads'))).not.toContain(`${id}.json`);
    expect((await durableRecords(ferry.dataDir, 'uploads')).get(id)).toMatchObject({ id, size: source.length });

    await ferry.kill();
    const again = await restartFerry(ferry);
    const resumed = `${again.url}/files/${id}`;
    expect(await tusHead(resumed)).toMatchObject({ status: 200, offset: 100_000, length: source.length });
    expect(await patch(resumed, 100_000, source.subarray(100_000))).toBe(source.length);
    expect(sha256(await download(resumed))).toBe(sha256(source));
  });

  it('an upload begun by an earlier version (its record in uploads/<id>.json) resumes after the upgrade, and the file is taken into the log', async () => {
    const source = randomBytes(200_000);
    const ferry = await startFerry();
    const { url } = await tusCreate(ferry.url, source.length);
    const id = uploadId(url);
    expect(await patch(url, 0, source.subarray(0, 50_000))).toBe(50_000);
    expect(await ferry.stop()).toBe(0);

    // What the earlier version left: the bytes, and the record as a JSON file beside them.
    const uploadsDir = path.join(ferry.dataDir, 'uploads');
    const record = (await durableRecords(ferry.dataDir, 'uploads')).get(id);
    expect(record).toBeDefined();
    await rm(path.join(uploadsDir, 'records.log'));
    await writeFile(path.join(uploadsDir, `${id}.json`), JSON.stringify(record));

    const upgraded = await restartFerry(ferry);
    const resumed = `${upgraded.url}/files/${id}`;
    expect(await tusHead(resumed)).toMatchObject({ status: 200, offset: 50_000, length: source.length });
    expect((await readdir(uploadsDir)).sort()).toEqual([id, 'records.lock', 'records.log'].sort());
    expect(await patch(resumed, 50_000, source.subarray(50_000))).toBe(source.length);
    expect(sha256(await download(resumed))).toBe(sha256(source));
  });
});
