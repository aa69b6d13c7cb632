/**
 * Expiry end to end with short lifetimes: unfinished uploads expire after FERRY_INCOMPLETE_TTL of
 * inactivity, completed files after their retention (FERRY_RETENTION, or less when the upload asked
 * for less), never before; the sweeper marks them `expired`, publishes `expired`, removes the bytes,
 * and the APIs answer 410. A real `ferry serve` sweeps by itself every FERRY_SWEEP_INTERVAL.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupFerries, startFerry } from '../helpers/ferry-process.js';
import {
  getFile,
  requestBytes,
  requestJson,
  sha256Hex,
  uploadBuffer,
  uploadMetadataHeader,
  waitForFileStatus,
  type ApiError,
} from '../helpers/files-api.js';
import { startInProcessFerry, type InProcessFerry } from '../helpers/in-process-ferry.js';
import { sleep } from '../helpers/poll.js';
import { closeSseClients, openSse } from '../helpers/sse-client.js';
import { httpRequest, patchHeaders, tusCreate, tusHead, uploadId } from '../helpers/tus.js';

let ferry: InProcessFerry;

beforeAll(async () => {
  ferry = await startInProcessFerry({ FERRY_INCOMPLETE_TTL: '1s', FERRY_RETENTION: '2s' });
});
afterEach(async () => {
  closeSseClients();
  await cleanupFerries();
});
afterAll(async () => {
  await ferry?.close();
});

/** Random bytes that start with text, so file-type detects nothing in them. */
function undetectableBytes(size: number): Buffer {
  const bytes = randomBytes(size);
  bytes.write('FERRY TEST DATA\n', 0, 'ascii');
  return bytes;
}

/** Sleeps until `isoTime` + `marginMs` has passed. */
async function sleepUntil(isoTime: string, marginMs = 100): Promise<void> {
  const wait = Date.parse(isoTime) + marginMs - Date.now();
  if (wait > 0) await sleep(wait);
}

async function expectContentError(baseUrl: string, id: string, status: number, code: string): Promise<void> {
  const res = await requestJson<ApiError>('GET', `${baseUrl}/v1/files/${id}/content`);
  expect({ status: res.status, code: res.body.error?.code }).toEqual({ status, code });
}

describe('file lifecycle (FERRY_INCOMPLETE_TTL=1s, FERRY_RETENTION=2s, manual sweeps)', () => {
  it('an unfinished upload idle past FERRY_INCOMPLETE_TTL is left alone by an early sweep and expired by a later one: status expired, an expired event, tus HEAD 410, bytes removed', async () => {
    const { url } = await tusCreate(ferry.url, 1000, {
      'Upload-Metadata': uploadMetadataHeader({ filename: 'abandoned.bin' }),
    });
    const id = uploadId(url);
    const sse = await openSse(`${ferry.url}/v1/files/${id}/events`);
    const patch = await httpRequest('PATCH', url, patchHeaders(0, 100), randomBytes(100));
    expect(patch.status).toBe(204);

    const uploading = await getFile(ferry.url, id);
    expect(uploading).toMatchObject({ status: 'uploading', size: 1000, received_bytes: 100 });
    // A sweep before the TTL is over changes nothing.
    await ferry.ferry.sweeper.sweepOnce();
    expect((await getFile(ferry.url, id)).status).toBe('uploading');
    expect((await tusHead(url)).offset).toBe(100);

    await sleepUntil(uploading.expires_at!, 150);
    const result = await ferry.ferry.sweeper.sweepOnce();
    expect(result.ran).toBe(true);
    expect(result.expired).toBeGreaterThanOrEqual(1);

    const expired = await getFile(ferry.url, id);
    expect(expired.status).toBe('expired');
    expect(expired.download_url).toBeNull();
    const event = await sse.waitFor((m) => m.json.event === 'expired', 5000);
    expect(event.json).toMatchObject({ event: 'expired', file_id: id });
    expect((await tusHead(url)).status).toBe(410);
    await expectContentError(ferry.url, id, 410, 'file_expired');
    expect(existsSync(path.join(ferry.dataDir, 'uploads', id))).toBe(false);
  });

  it('a completed file (FERRY_RETENTION=2s) survives a sweep before its expires_at (still served, byte-identical) and is expired by a sweep after it: status expired, content 410 file_expired, expires_at ≤ now, an expired event, bytes removed', async () => {
    const bytes = undetectableBytes(300_000);
    const { id, url } = await uploadBuffer(ferry.url, bytes, { filename: 'kept-2s.bin' });
    const completed = await waitForFileStatus(ferry.url, id, 'completed');
    expect(Date.parse(completed.expires_at!) - Date.parse(completed.completed_at!)).toBe(2000);
    const sse = await openSse(`${ferry.url}/v1/files/${id}/events`);

    // Before expires_at: a sweep leaves the file alone.
    const early = await ferry.ferry.sweeper.sweepOnce();
    expect(Date.now()).toBeLessThan(Date.parse(completed.expires_at!));
    expect(early.expiredFiles).toBe(0);
    const stillThere = await getFile(ferry.url, id);
    expect(stillThere.status).toBe('completed');
    expect(Date.parse(stillThere.expires_at!)).toBeGreaterThan(Date.now());
    const content = await requestBytes('GET', stillThere.download_url!);
    expect(content.status).toBe(200);
    expect(sha256Hex(content.body)).toBe(sha256Hex(bytes));

    await sleepUntil(completed.expires_at!);
    const late = await ferry.ferry.sweeper.sweepOnce();
    expect(late.expiredFiles).toBeGreaterThanOrEqual(1);
    const expired = await getFile(ferry.url, id);
    expect(expired.status).toBe('expired');
    expect(Date.parse(expired.expires_at!)).toBeLessThanOrEqual(Date.now());
    expect(expired.checksums.sha256).toBe(sha256Hex(bytes)); // the record still tells what it was
    expect(expired.download_url).toBeNull();
    await expectContentError(ferry.url, id, 410, 'file_expired');
    await sse.waitFor((m) => m.json.event === 'expired', 5000);
    expect((await requestBytes('GET', url)).status).toBe(410);
    expect(existsSync(path.join(ferry.dataDir, 'uploads', id))).toBe(false);
  });

  it('an upload with retention metadata 1s expires earlier than one without it (FERRY_RETENTION=2s): a sweep between the two expiries removes only the short one', async () => {
    const shortBytes = undetectableBytes(5000);
    const longBytes = undetectableBytes(6000);
    const [short, long] = await Promise.all([
      uploadBuffer(ferry.url, shortBytes, { filename: 'short.bin', retention: '1s' }),
      uploadBuffer(ferry.url, longBytes, { filename: 'long.bin' }),
    ]);
    const shortFile = await waitForFileStatus(ferry.url, short.id, 'completed');
    const longFile = await waitForFileStatus(ferry.url, long.id, 'completed');
    expect(Date.parse(shortFile.expires_at!) - Date.parse(shortFile.completed_at!)).toBe(1000);
    expect(Date.parse(longFile.expires_at!) - Date.parse(longFile.completed_at!)).toBe(2000);
    expect(Date.parse(shortFile.expires_at!)).toBeLessThan(Date.parse(longFile.expires_at!));

    await sleepUntil(shortFile.expires_at!);
    expect(Date.now()).toBeLessThan(Date.parse(longFile.expires_at!));
    await ferry.ferry.sweeper.sweepOnce();
    expect((await getFile(ferry.url, short.id)).status).toBe('expired');
    await expectContentError(ferry.url, short.id, 410, 'file_expired');
    const longStill = await getFile(ferry.url, long.id);
    expect(longStill.status).toBe('completed');
    expect(sha256Hex((await requestBytes('GET', longStill.download_url!)).body)).toBe(sha256Hex(longBytes));

    await sleepUntil(longFile.expires_at!);
    await ferry.ferry.sweeper.sweepOnce();
    expect((await getFile(ferry.url, long.id)).status).toBe('expired');
    await expectContentError(ferry.url, long.id, 410, 'file_expired');
  });

  it('a real `ferry serve` with FERRY_SWEEP_INTERVAL=500ms expires a completed file after its retention and an abandoned upload after its TTL by itself (no manual sweep)', async () => {
    const serve = await startFerry({
      env: { FERRY_SWEEP_INTERVAL: '500ms', FERRY_RETENTION: '2s', FERRY_INCOMPLETE_TTL: '1s' },
    });
    const bytes = undetectableBytes(100_000);
    const { id } = await uploadBuffer(serve.url, bytes, { filename: 'swept.bin' });
    const completed = await waitForFileStatus(serve.url, id, 'completed');
    const sse = await openSse(`${serve.url}/v1/files/${id}/events`);
    const content = await requestBytes('GET', completed.download_url!);
    expect(content.status).toBe(200);
    expect(sha256Hex(content.body)).toBe(sha256Hex(bytes));

    const { url: abandonedUrl } = await tusCreate(serve.url, 1000);
    const abandonedId = uploadId(abandonedUrl);

    const event = await sse.waitFor((m) => m.json.event === 'expired', 8000);
    expect(Date.parse(String(event.json.at))).toBeGreaterThanOrEqual(Date.parse(completed.expires_at!));
    const expired = await waitForFileStatus(serve.url, id, 'expired', 1000);
    expect(Date.parse(expired.expires_at!)).toBeLessThanOrEqual(Date.now());
    await expectContentError(serve.url, id, 410, 'file_expired');
    expect(existsSync(path.join(serve.dataDir, 'uploads', id))).toBe(false);

    await waitForFileStatus(serve.url, abandonedId, 'expired', 5000);
    expect((await tusHead(abandonedUrl)).status).toBe(410);
    expect(serve.isRunning()).toBe(true);
  });
});
