/**
 * The file registry across process restarts and crashes (real `ferry serve` processes on the same
 * data directory), processing that a crash interrupted, signed webhook deliveries with retries, and
 * the configuration Ferry refuses to start with.
 */
import { execFile } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { crc32c } from '@node-rs/crc32';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cleanupFerries, FERRY_CLI, restartFerry, startFerry, type FerryProcess } from '../helpers/ferry-process.js';
import { cleanupTempFiles, randomFile, sha256AndSizeOfUrl } from '../helpers/files.js';
import {
  checksumsOf,
  listAllFiles,
  requestBytes,
  requestJson,
  uploadBuffer,
  uploadMetadataHeader,
  waitForFileStatus,
  type ApiError,
  type FileJson,
  signedContentUrl,
} from '../helpers/files-api.js';
import { durableFileRecord } from '../helpers/record-logs.js';
import { startInProcessFerry } from '../helpers/in-process-ferry.js';
import { closeSseClients, openSse } from '../helpers/sse-client.js';
import { patchHeaders, tusCreate, tusHead, tusPatchFile, uploadId } from '../helpers/tus.js';
import {
  startWebhookReceiver,
  verifyFerrySignature,
  type WebhookAttempt,
  type WebhookReceiver,
} from '../helpers/webhook-receiver.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

const receivers: WebhookReceiver[] = [];
afterEach(async () => {
  closeSseClients();
  await Promise.all(receivers.splice(0).map((r) => r.close()));
  await cleanupFerries();
});
afterAll(cleanupTempFiles);

/** Random bytes that start with text, so file-type detects nothing in them. */
function undetectableBytes(size: number): Buffer {
  const bytes = randomBytes(size);
  bytes.write('FERRY TEST DATA\n', 0, 'ascii');
  return bytes;
}

interface Uploaded {
  readonly id: string;
  readonly name: string;
  readonly size: number;
  readonly checksums: { sha256: string; crc32c: string };
}

async function uploadTwoFiles(ferry: FerryProcess): Promise<Uploaded[]> {
  const uploaded: Uploaded[] = [];
  for (const [name, size] of [
    ['first.bin', 1 * MiB + 17],
    ['second.bin', 2 * MiB + 3],
  ] as const) {
    const bytes = undetectableBytes(size);
    const { id } = await uploadBuffer(ferry.url, bytes, { filename: name, folder: 'restart' }, { chunkSize: MiB });
    uploaded.push({ id, name, size, checksums: checksumsOf(bytes) });
  }
  for (const file of uploaded) await waitForFileStatus(ferry.url, file.id, 'completed');
  return uploaded;
}

/** `GET /v1/files` on `ferry` lists exactly `uploaded`, completed, with their checksums and bytes. */
async function expectFilesIntact(ferry: FerryProcess, uploaded: readonly Uploaded[]): Promise<void> {
  const { files } = await listAllFiles(ferry.url, { folder: 'restart' });
  const byId = new Map(files.map((f) => [f.id, f]));
  expect([...byId.keys()].sort()).toEqual(uploaded.map((u) => u.id).sort());
  for (const u of uploaded) {
    const file = byId.get(u.id)!;
    expect(file).toMatchObject({
      name: u.name,
      size: u.size,
      received_bytes: u.size,
      status: 'completed',
      checksums: u.checksums,
      download_url: signedContentUrl(ferry.url, u.id),
    });
    expect(await sha256AndSizeOfUrl(file.download_url!)).toEqual({ sha256: u.checksums.sha256, bytes: u.size });
  }
}

describe('file records across restarts of `ferry serve`', () => {
  it('after a graceful restart (SIGTERM, exit 0) GET /v1/files lists both uploaded files as completed with their checksums, and their content matches the source sha256', async () => {
    const ferry = await startFerry();
    const sse = await openSse(`${ferry.url}/v1/events`);
    const uploaded = await uploadTwoFiles(ferry);
    await expectFilesIntact(ferry, uploaded);
    const lastIdBefore = (await sse.waitFor((m) => m.json.event === 'completed' && m.json.file_id === uploaded[1]!.id))
      .id!;
    const again = await restartFerry(ferry);
    // The shutdown ended the event stream (it did not hold the exit up).
    expect(sse.ended).toBe(true);
    await expectFilesIntact(again, uploaded);

    // Event ids keep increasing across the restart: a Last-Event-ID from before it hides no new event.
    const resumed = await openSse(`${again.url}/v1/events`, { lastEventId: lastIdBefore });
    const bytes = undetectableBytes(10_000);
    const { id } = await uploadBuffer(again.url, bytes, { filename: 'after-restart.bin' });
    const completed = await resumed.waitFor((m) => m.json.event === 'completed' && m.json.file_id === id, 5000);
    expect(BigInt(completed.id!)).toBeGreaterThan(BigInt(lastIdBefore));
    expect(resumed.messages.filter((m) => m.json.file_id === id).map((m) => m.json.event)[0]).toBe('created');
  }, 30_000);

  it('an upload cut by SIGKILL keeps its file record as uploading with received_bytes = the stored offset after the restart, and resuming it completes the file with the source checksums', async () => {
    const size = 3 * MiB;
    const bytes = undetectableBytes(size);
    const ferry = await startFerry();
    const { url } = await tusCreate(ferry.url, size, {
      'Upload-Metadata': uploadMetadataHeader({ filename: 'cut.bin', folder: 'cut' }),
    });
    const id = uploadId(url);
    const first = await requestBytes('PATCH', url, patchHeaders(0, MiB), bytes.subarray(0, MiB));
    expect(first.status).toBe(204);
    await ferry.kill();

    const again = await startFerry({ dataDir: ferry.dataDir, port: ferry.port });
    const head = await tusHead(url);
    expect(head.offset).toBe(MiB);
    const { files } = await listAllFiles(again.url, { folder: 'cut' });
    expect(files.map((f) => f.id)).toEqual([id]);
    expect(files[0]).toMatchObject({ status: 'uploading', size, received_bytes: MiB, name: 'cut.bin' });

    const rest = await requestBytes('PATCH', url, patchHeaders(MiB, size - MiB), bytes.subarray(MiB));
    expect(rest.status).toBe(204);
    const file = await waitForFileStatus(again.url, id, ['completed', 'failed']);
    expect(file).toMatchObject({ status: 'completed', checksums: checksumsOf(bytes) });
    expect(await sha256AndSizeOfUrl(file.download_url!)).toEqual({ sha256: checksumsOf(bytes).sha256, bytes: size });
  }, 30_000);

  it('after a crash (SIGKILL) and a start on the same data directory, GET /v1/files lists both files as completed with their checksums, and their content matches the source sha256', async () => {
    const ferry = await startFerry();
    const uploaded = await uploadTwoFiles(ferry);
    await ferry.kill();
    const again = await startFerry({ dataDir: ferry.dataDir, port: ferry.port });
    await expectFilesIntact(again, uploaded);
  }, 30_000);

  it('SIGKILL right after the last byte of a 64 MiB upload (record durable as queued) → after the restart the file is queued again and reaches completed with the right sha256 and crc32c', async () => {
    const source = await randomFile(64 * MiB);
    let crc = 0;
    for await (const chunk of createReadStream(source.path)) crc = crc32c(chunk as Buffer, crc);
    const crcBytes = Buffer.alloc(4);
    crcBytes.writeUInt32BE(crc >>> 0);

    const ferry = await startFerry();
    const { url } = await tusCreate(ferry.url, source.size, {
      'Upload-Metadata': uploadMetadataHeader({ filename: 'big.bin' }),
    });
    const id = uploadId(url);
    const patch = await tusPatchFile(url, source.path, 0);
    // The answer to the last byte: the file is queued and its processing (64 MiB to hash) under way.
    ferry.signal('SIGKILL');
    expect(patch.status).toBe(204);
    expect(patch.offset).toBe(source.size);
    await ferry.exited;

    // The durable record the crash left: processing had not finished.
    const left = (await durableFileRecord(ferry.dataDir, id)) as {
      status: string;
      checksums: { sha256: string | null };
    };
    console.log(`[files-restart] record status at SIGKILL: ${left.status}`);
    // `processing` is never durable (a restart queues the file again either way).
    expect(left.status).toBe('queued');
    expect(left.checksums.sha256).toBeNull();

    const again = await startFerry({ dataDir: ferry.dataDir, port: ferry.port });
    const file = await waitForFileStatus(again.url, id, ['completed', 'failed'], 20_000);
    expect(file).toMatchObject({
      status: 'completed',
      size: source.size,
      checksums: { sha256: source.sha256, crc32c: crcBytes.toString('base64') },
      error: null,
    });
    expect(again.logs()).toContain('files whose processing was interrupted are queued again');
    expect(await sha256AndSizeOfUrl(file.download_url!)).toEqual({ sha256: source.sha256, bytes: source.size });
  }, 60_000);
});

describe('webhooks', () => {
  const SECRET = 'a-webhook-secret-of-some-length';

  /** Asserts a delivery took three attempts (500, 500, 204) with one body and growing gaps. */
  function expectRetriedDelivery(receiver: WebhookReceiver, accepted: WebhookAttempt): WebhookAttempt[] {
    const attempts = receiver.attemptsOf(accepted.deliveryId!);
    expect(attempts.map((a) => a.status)).toEqual([500, 500, 204]);
    for (const a of attempts) {
      expect(a.method).toBe('POST');
      expect(a.path).toBe('/hooks/ferry');
      expect(a.headers['content-type']).toMatch(/^application\/json/);
      expect(a.body, 'every attempt carries the same body').toBe(accepted.body);
      expect(a.event).toBe(accepted.event);
      const check = verifyFerrySignature(SECRET, a.signature, a.body);
      expect(check, `signature of ${a.event} attempt ${a.attempt}`).toMatchObject({ ok: true });
      if (check.ok) expect(Math.abs(check.timestamp - Date.now() / 1000)).toBeLessThan(300);
    }
    const gap1 = attempts[1]!.receivedAt - attempts[0]!.receivedAt;
    const gap2 = attempts[2]!.receivedAt - attempts[1]!.receivedAt;
    // FERRY_WEBHOOK_RETRY_DELAY=200ms, doubling: about 200 ms, then about 400 ms.
    expect(gap1).toBeGreaterThanOrEqual(180);
    expect(gap2).toBeGreaterThanOrEqual(1.5 * gap1);
    return attempts;
  }

  it('queued, completed and deleted events are POSTed with a valid Ferry-Signature (HMAC-SHA256 of "<t>.<raw body>", t within 5 min), retried after 500s with the same Ferry-Delivery id and body at growing intervals; a tampered body fails verification', async () => {
    const receiver = await startWebhookReceiver({ failFirst: 2 });
    receivers.push(receiver);
    const ferry = await startFerry({
      env: {
        FERRY_WEBHOOK_URL: receiver.url,
        FERRY_WEBHOOK_SECRET: SECRET,
        FERRY_WEBHOOK_RETRY_DELAY: '200ms',
      },
    });
    const batch = `hooks-${randomBytes(4).toString('hex')}`;
    const sse = await openSse(`${ferry.url}/v1/events?batch=${batch}`);
    const bytes = undetectableBytes(500_000);
    const { id } = await uploadBuffer(ferry.url, bytes, { filename: 'hooked.bin', batch, owner: 'me' });

    const queued = await receiver.waitFor((a) => a.accepted && a.event === 'queued', 10_000);
    const completed = await receiver.waitFor((a) => a.accepted && a.event === 'completed', 10_000);
    for (const accepted of [queued, completed]) expectRetriedDelivery(receiver, accepted);
    expect(queued.deliveryId).not.toBe(completed.deliveryId);

    // The bodies: {event, file_id, at, file} with the File JSON of that moment.
    const queuedBody = JSON.parse(queued.body) as { event: string; file_id: string; at: string; file: FileJson };
    const completedBody = JSON.parse(completed.body) as typeof queuedBody;
    expect(Object.keys(completedBody).sort()).toEqual(['at', 'event', 'file', 'file_id']);
    expect(queuedBody).toMatchObject({ event: 'queued', file_id: id, file: { id, status: 'queued', size: 500_000 } });
    expect(completedBody).toMatchObject({
      event: 'completed',
      file_id: id,
      file: {
        id,
        name: 'hooked.bin',
        status: 'completed',
        batch,
        metadata: { owner: 'me' },
        checksums: checksumsOf(bytes),
        // Without FERRY_PUBLIC_URL a worker knows no address of Ferry's: the link is a path.
        download_url: signedContentUrl('', id),
      },
    });
    expect(await sha256AndSizeOfUrl(new URL(completedBody.file.download_url!, ferry.url).href)).toEqual({
      sha256: checksumsOf(bytes).sha256,
      bytes: 500_000,
    });
    // Ferry-Delivery is the id of the event the SSE stream showed.
    const sseCompleted = await sse.waitFor((m) => m.json.file_id === id && m.json.event === 'completed', 5000);
    expect(completed.deliveryId).toBe(sseCompleted.id);
    expect(completedBody.at).toBe(sseCompleted.json.at);

    // The verifier rejects a tampered body, another secret and an old timestamp.
    const tampered = completed.body.replace('"completed"', '"failed"');
    expect(tampered).not.toBe(completed.body);
    expect(verifyFerrySignature(SECRET, completed.signature, tampered)).toEqual({
      ok: false,
      reason: 'signature mismatch',
    });
    expect(verifyFerrySignature('another-secret-of-length', completed.signature, completed.body)).toMatchObject({
      ok: false,
    });
    const oldT = Math.floor(Date.now() / 1000) - 600;
    const oldMac = createHmac('sha256', SECRET).update(`${oldT}.${completed.body}`).digest('hex');
    expect(verifyFerrySignature(SECRET, `t=${oldT},v1=${oldMac}`, completed.body)).toEqual({
      ok: false,
      reason: 'timestamp too old',
    });

    // Deletion is delivered too.
    expect((await requestBytes('DELETE', `${ferry.url}/v1/files/${id}`)).status).toBe(204);
    const deleted = await receiver.waitFor((a) => a.accepted && a.event === 'deleted', 10_000);
    expectRetriedDelivery(receiver, deleted);
    expect(JSON.parse(deleted.body)).toMatchObject({ event: 'deleted', file_id: id, file: { id } });

    // Only the webhook events were delivered (no created, progress or processing).
    expect([...new Set(receiver.attempts.map((a) => a.event))].sort()).toEqual(['completed', 'deleted', 'queued']);
    for (const a of receiver.attempts) expect(JSON.parse(a.body).event).toBe(a.event);
  }, 30_000);

  it('a file that fails processing is delivered as a signed failed event with its error', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const ferry = await startFerry({
      env: { FERRY_WEBHOOK_URL: receiver.url, FERRY_WEBHOOK_SECRET: SECRET, FERRY_ALLOWED_TYPES: 'image/*' },
    });
    // Declared as nothing in particular, so creation passes; the bytes are no image.
    const { id } = await uploadBuffer(ferry.url, undetectableBytes(1000), { filename: 'not-an-image.txt' });
    const failed = await receiver.waitFor((a) => a.event === 'failed');
    expect(verifyFerrySignature(SECRET, failed.signature, failed.body)).toMatchObject({ ok: true });
    expect(JSON.parse(failed.body)).toMatchObject({
      event: 'failed',
      file_id: id,
      file: { id, status: 'failed', error: { code: 'type_not_allowed' }, download_url: null },
    });
    const content = await requestJson<ApiError>('GET', `${ferry.url}/v1/files/${id}/content`);
    expect(content.status).toBe(409);
  }, 30_000);

  it('a file removed by the periodic sweeper after its retention is delivered as a signed expired event', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const ferry = await startFerry({
      env: {
        FERRY_WEBHOOK_URL: receiver.url,
        FERRY_WEBHOOK_SECRET: SECRET,
        FERRY_RETENTION: '1s',
        FERRY_SWEEP_INTERVAL: '300ms',
      },
    });
    const bytes = undetectableBytes(2000);
    const { id } = await uploadBuffer(ferry.url, bytes, { filename: 'short-lived.bin' });
    const expired = await receiver.waitFor((a) => a.event === 'expired', 8000);
    expect(verifyFerrySignature(SECRET, expired.signature, expired.body)).toMatchObject({ ok: true });
    const body = JSON.parse(expired.body) as { event: string; file_id: string; at: string; file: FileJson };
    expect(body).toMatchObject({
      event: 'expired',
      file_id: id,
      file: { id, status: 'expired', download_url: null, checksums: checksumsOf(bytes) },
    });
    expect(Date.parse(body.at)).toBeGreaterThanOrEqual(Date.parse(body.file.expires_at!));
    // Deliveries run concurrently: their order of arrival is not fixed.
    expect(receiver.attempts.map((a) => a.event).sort()).toEqual(['completed', 'expired', 'queued']);
  }, 30_000);

  it('the download_url in a webhook is absolute under FERRY_PUBLIC_URL, and a path relative to Ferry without it; either serves the file', async () => {
    for (const publicUrl of ['https://uploads.example.com', undefined]) {
      const receiver = await startWebhookReceiver();
      receivers.push(receiver);
      const ferry = await startInProcessFerry({
        FERRY_WEBHOOK_URL: receiver.url,
        FERRY_WEBHOOK_SECRET: SECRET,
        ...(publicUrl ? { FERRY_PUBLIC_URL: publicUrl } : {}),
      });
      try {
        const bytes = undetectableBytes(3000);
        // One request (creation-with-upload): the Location under FERRY_PUBLIC_URL is never followed.
        const created = await fetch(`${ferry.url}/files/`, {
          method: 'POST',
          headers: {
            'Tus-Resumable': '1.0.0',
            'Upload-Length': String(bytes.length),
            'Content-Type': 'application/offset+octet-stream',
          },
          body: bytes,
        });
        expect(created.status).toBe(201);
        const id = created.headers.get('location')!.split('/').pop()!;
        const completed = await receiver.waitFor((a) => a.event === 'completed');
        const link = (JSON.parse(completed.body) as { file: FileJson }).file.download_url!;
        expect(link).toEqual(signedContentUrl(publicUrl ?? '', id));
        // The signed link itself serves the bytes (its path and query, against Ferry's address).
        const { pathname, search } = new URL(link, 'http://placeholder');
        const served = await fetch(new URL(`${pathname}${search}`, ferry.url));
        expect(
          createHash('sha256')
            .update(Buffer.from(await served.arrayBuffer()))
            .digest('hex'),
        ).toBe(createHash('sha256').update(bytes).digest('hex'));
      } finally {
        await ferry.close();
      }
    }
  }, 30_000);
});

describe('configuration Ferry refuses to start with', () => {
  async function startCli(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ferry-config-test-'));
    try {
      const failure = await run(process.execPath, [FERRY_CLI, 'serve'], {
        env: { PATH: process.env.PATH ?? '', FERRY_DATA_DIR: dataDir, PORT: '0', FERRY_LOG_LEVEL: 'silent', ...env },
        timeout: 20_000,
      }).catch((error: unknown) => error as { code: number; stderr: string });
      if (!('code' in failure)) throw new Error('ferry serve kept running instead of failing');
      return { code: failure.code, stderr: failure.stderr };
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }

  it('FERRY_WEBHOOK_URL without FERRY_WEBHOOK_SECRET: exit 2 with one line naming the missing secret', async () => {
    const { code, stderr } = await startCli({ FERRY_WEBHOOK_URL: 'http://127.0.0.1:9/hooks' });
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      'ferry: invalid configuration: FERRY_WEBHOOK_SECRET="": required when FERRY_WEBHOOK_URL is set (deliveries are signed)',
    ]);
  });

  it('a FERRY_WEBHOOK_SECRET shorter than 16 characters: exit 2 with one line', async () => {
    const { code, stderr } = await startCli({
      FERRY_WEBHOOK_URL: 'http://127.0.0.1:9/hooks',
      FERRY_WEBHOOK_SECRET: 'too-short',
    });
    expect(code).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ferry: invalid configuration: FERRY_WEBHOOK_SECRET=.*at least 16 characters/);
  });

  it('FERRY_RETENTION greater than FERRY_MAX_RETENTION (explicit or the 30d default): exit 2 with one line naming both', async () => {
    const explicit = await startCli({ FERRY_RETENTION: '40d', FERRY_MAX_RETENTION: '30d' });
    expect(explicit.code).toBe(2);
    expect(explicit.stderr.trim().split('\n')).toEqual([
      'ferry: invalid configuration: FERRY_RETENTION="40d": must not exceed FERRY_MAX_RETENTION (30d)',
    ]);
    const byDefault = await startCli({ FERRY_RETENTION: '31d' });
    expect(byDefault.code).toBe(2);
    expect(byDefault.stderr.trim().split('\n')).toEqual([
      'ferry: invalid configuration: FERRY_RETENTION="31d": must not exceed FERRY_MAX_RETENTION (30d)',
    ]);
    const tooSmallMax = await startCli({ FERRY_MAX_RETENTION: '1d' });
    expect(tooSmallMax.code).toBe(2);
    expect(tooSmallMax.stderr.trim().split('\n')).toEqual([
      'ferry: invalid configuration: FERRY_RETENTION="7d": must not exceed FERRY_MAX_RETENTION (1d)',
    ]);
  });
});
