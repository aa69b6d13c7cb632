/**
 * The file registry end to end, on an in-process Ferry (embedded mode, disk): every tus upload gets a
 * file record with its metadata, status, checksums and events; the file API lists, serves and
 * deletes; processing refuses contradicted or disallowed types and removes their bytes.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  checksumsOf,
  getFile,
  listAllFiles,
  minimalPdf,
  minimalPng,
  requestBytes,
  requestJson,
  sha256Hex,
  uploadBuffer,
  uploadMetadataHeader,
  waitForFileStatus,
  type ApiError,
  type FileJson,
  signedContentUrl,
} from '../helpers/files-api.js';
import { durableFileRecord, durableFileRecords } from '../helpers/record-logs.js';
import { startInProcessFerry, type InProcessFerry } from '../helpers/in-process-ferry.js';
import { sleep, until } from '../helpers/poll.js';
import { closeSseClients, openSse, type SseClient, type SseMessage } from '../helpers/sse-client.js';
import { httpRequest, patchHeaders, stalledPatch, tusCreate, tusHead, uploadId } from '../helpers/tus.js';

const MiB = 1024 * 1024;

let ferry: InProcessFerry;

beforeAll(async () => {
  ferry = await startInProcessFerry({ FERRY_RETENTION: '1h', FERRY_MAX_RETENTION: '1d' });
});
afterEach(closeSseClients);
afterAll(async () => {
  await ferry?.close();
});

/** A batch name no other test uses. */
const uniqueName = (prefix: string) => `${prefix}-${randomBytes(6).toString('hex')}`;

/** Random bytes that start with text, so file-type detects nothing in them. */
function undetectableBytes(size: number): Buffer {
  const bytes = randomBytes(size);
  bytes.write('FERRY TEST DATA\n', 0, 'ascii');
  return bytes;
}

/** The names of the events `sse` received for `fileId`, in order. */
const eventsOf = (sse: SseClient, fileId: string): SseMessage[] =>
  sse.messages.filter((m) => m.json.file_id === fileId);
const namesOf = (messages: readonly SseMessage[]): string[] => messages.map((m) => String(m.json.event));

const waitForEvent = (sse: SseClient, fileId: string, event: string, timeoutMs = 10_000) =>
  sse.waitFor((m) => m.json.file_id === fileId && m.json.event === event, timeoutMs);

/** The `filename*` of a Content-Disposition header, decoded. */
function extendedFilename(header: string | undefined): string | undefined {
  const match = /filename\*=UTF-8''([^;\s]+)/.exec(header ?? '');
  return match ? decodeURIComponent(match[1]!) : undefined;
}

async function expectApiError(
  method: string,
  url: string,
  status: number,
  code: string,
  headers: Record<string, string> = {},
): Promise<void> {
  const res = await requestJson<ApiError>(method, url, headers);
  expect({ status: res.status, code: res.body.error?.code }, `${method} ${url}`).toEqual({ status, code });
  expect(res.body.error.status).toBe(status);
  expect(typeof res.body.error.message).toBe('string');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

describe('file registry over tus uploads', () => {
  it('a tus-js-client upload (3 MiB in 1 MiB chunks, non-ASCII name, folder, tags, batch, user metadata) streams created, progress, queued, processing, completed on /v1/events?batch=, and its record, checksums (sha256, crc32c), download, Range, ETag and Content-Disposition are right', async () => {
    const size = 3 * MiB;
    const bytes = undetectableBytes(size);
    const expected = checksumsOf(bytes);
    const batch = uniqueName('batch');
    const name = 'Grüße 😀.bin';

    const sse = await openSse(`${ferry.url}/v1/events?batch=${encodeURIComponent(batch)}`);
    expect(sse.status).toBe(200);
    expect(sse.headers['content-type']).toMatch(/^text\/event-stream/);

    const { id } = await uploadBuffer(
      ferry.url,
      bytes,
      {
        filename: name,
        filetype: 'application/x-ferry-test',
        folder: 'reports/2024',
        tags: 'alpha, beta,alpha',
        batch,
        owner: 'Zoë',
      },
      { chunkSize: MiB },
    );

    await waitForEvent(sse, id, 'completed');
    const events = eventsOf(sse, id);
    expect(namesOf(events).join(',')).toMatch(/^created(,progress)+,queued,processing,completed$/);
    for (const m of events) {
      expect(m.id, 'every message has an id').toMatch(/^\d+$/);
      expect(m.json.file_id).toBe(id);
      expect(Number.isNaN(Date.parse(String(m.json.at)))).toBe(false);
    }
    // Ids increase in the order the events happened.
    const ids = events.map((m) => BigInt(m.id!));
    expect([...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(ids);
    expect(events[0]!.json).toMatchObject({ event: 'created', name, size });
    const progress = events.filter((m) => m.json.event === 'progress').map((m) => Number(m.json.received_bytes));
    for (const [i, received] of progress.entries()) {
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThanOrEqual(size);
      if (i > 0) expect(received).toBeGreaterThanOrEqual(progress[i - 1]!);
    }

    const file = await getFile(ferry.url, id);
    expect(file).toMatchObject({
      id,
      name,
      size,
      received_bytes: size,
      mime_type: 'application/x-ferry-test',
      detected_type: null,
      folder: 'reports/2024',
      tags: ['alpha', 'beta'],
      metadata: { owner: 'Zoë' },
      batch,
      status: 'completed',
      checksums: expected,
      protocol: 'tus',
      // A signed URL: it works without credentials, for this file, for an hour.
      download_url: signedContentUrl(ferry.url, id),
      error: null,
    });
    const created = Date.parse(file.created_at);
    const completed = Date.parse(file.completed_at!);
    expect(completed).toBeGreaterThanOrEqual(created);
    // FERRY_RETENTION=1h from completion.
    expect(Date.parse(file.expires_at!)).toBe(completed + 3_600_000);

    // The download is the uploaded bytes, served as an attachment under the declared type.
    const content = await requestBytes('GET', file.download_url!);
    expect(content.status).toBe(200);
    expect(sha256Hex(content.body)).toBe(expected.sha256);
    expect(content.headers['content-length']).toBe(String(size));
    expect(content.headers['content-type']).toBe('application/x-ferry-test');
    expect(content.headers['accept-ranges']).toBe('bytes');
    const disposition = content.headers['content-disposition'];
    expect(disposition).toMatch(/^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/);
    expect(extendedFilename(disposition)).toBe(name);

    // A range is served as 206 with exactly those bytes.
    const range = await requestBytes('GET', file.download_url!, { Range: 'bytes=1048570-1048600' });
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 1048570-1048600/${size}`);
    expect(sha256Hex(range.body)).toBe(sha256Hex(bytes.subarray(1048570, 1048601)));
    const suffix = await requestBytes('GET', file.download_url!, { Range: 'bytes=-1000' });
    expect(suffix.status).toBe(206);
    expect(sha256Hex(suffix.body)).toBe(sha256Hex(bytes.subarray(size - 1000)));
    const unsatisfiable = await requestBytes('GET', file.download_url!, { Range: `bytes=${size}-` });
    expect(unsatisfiable.status).toBe(416);
    expect(unsatisfiable.headers['content-range']).toBe(`bytes */${size}`);

    // The ETag makes a conditional request answer 304 without a body.
    const etag = content.headers.etag;
    expect(etag).toMatch(/^".+"$/);
    const notModified = await requestBytes('GET', file.download_url!, { 'If-None-Match': etag! });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    const otherTag = await requestBytes('GET', file.download_url!, { 'If-None-Match': '"something-else"' });
    expect(otherTag.status).toBe(200);
    expect(sha256Hex(otherTag.body)).toBe(expected.sha256);
  });

  it('progress events arrive while a slow PATCH body is still streaming, at most one per second per upload, and the last offset of a PATCH that stops short of the end is not dropped', async () => {
    const size = 1_000_000;
    const sent = 600_000;
    const source = undetectableBytes(size);
    const { url } = await tusCreate(ferry.url, size, {
      'Upload-Metadata': uploadMetadataHeader({ filename: 'slow.bin' }),
    });
    const id = uploadId(url);
    const sse = await openSse(`${ferry.url}/v1/files/${id}/events`);
    const progressOf = () => sse.messages.filter((m) => m.json.event === 'progress');

    // 600 000 bytes in six pieces 450 ms apart: the body takes about 2.7 s.
    const patch = await httpRequest('PATCH', url, patchHeaders(0, sent), (req) => {
      void (async () => {
        for (let i = 0; i < 6; i++) {
          req.write(source.subarray(i * 100_000, (i + 1) * 100_000));
          await sleep(450);
        }
        req.end();
      })();
    });
    expect(patch.status).toBe(204);
    expect(patch.headers['upload-offset']).toBe(String(sent));
    const duringBody = progressOf().length;
    expect(duringBody, 'progress events before the PATCH was answered').toBeGreaterThanOrEqual(2);

    // The newest offset is sent once the interval is over, even though no byte follows.
    await sse.waitFor((m) => m.json.event === 'progress' && m.json.received_bytes === sent, 3000);
    const progress = progressOf();
    const offsets = progress.map((m) => Number(m.json.received_bytes));
    expect(offsets.at(-1)).toBe(sent);
    for (let i = 1; i < progress.length; i++) {
      expect(offsets[i]!).toBeGreaterThan(offsets[i - 1]!);
      const gap = Date.parse(String(progress[i]!.json.at)) - Date.parse(String(progress[i - 1]!.json.at));
      expect(gap, `gap between progress events ${i - 1} and ${i}`).toBeGreaterThanOrEqual(950);
    }
    expect(progress.length).toBeLessThanOrEqual(5);

    // The rest completes the file with the source's checksums.
    const rest = await httpRequest('PATCH', url, patchHeaders(sent, size - sent), source.subarray(sent));
    expect(rest.status).toBe(204);
    const file = await waitForFileStatus(ferry.url, id, 'completed');
    expect(file.checksums).toEqual(checksumsOf(source));
    expect(sha256Hex((await requestBytes('GET', file.download_url!)).body)).toBe(sha256Hex(source));
  });

  it('an empty upload completes at creation (sha256 of nothing, crc32c AAAAAA==, content 200 with no bytes, any range 416), and a deferred-length upload has size null until its length is declared', async () => {
    const empty = await tusCreate(ferry.url, 0, { 'Upload-Metadata': uploadMetadataHeader({ filename: 'empty' }) });
    const emptyId = uploadId(empty.url);
    const emptyFile = await waitForFileStatus(ferry.url, emptyId, ['completed', 'failed']);
    expect(emptyFile).toMatchObject({ status: 'completed', size: 0, received_bytes: 0 });
    expect(emptyFile.checksums).toEqual(checksumsOf(Buffer.alloc(0)));
    expect(emptyFile.checksums.crc32c).toBe('AAAAAA==');
    const content = await requestBytes('GET', emptyFile.download_url!);
    expect({ status: content.status, length: content.body.length }).toEqual({ status: 200, length: 0 });
    expect((await requestBytes('GET', emptyFile.download_url!, { Range: 'bytes=0-0' })).status).toBe(416);

    const bytes = undetectableBytes(70_000);
    const deferred = await tusCreate(ferry.url, null, {
      'Upload-Metadata': uploadMetadataHeader({ filename: 'deferred.bin' }),
    });
    const id = uploadId(deferred.url);
    const first = await httpRequest('PATCH', deferred.url, patchHeaders(0, 30_000), bytes.subarray(0, 30_000));
    expect(first.status).toBe(204);
    expect(await getFile(ferry.url, id)).toMatchObject({ status: 'uploading', size: null, received_bytes: 30_000 });
    const last = await httpRequest(
      'PATCH',
      deferred.url,
      patchHeaders(30_000, 40_000, { 'Upload-Length': '70000' }),
      bytes.subarray(30_000),
    );
    expect(last.status).toBe(204);
    const file = await waitForFileStatus(ferry.url, id, ['completed', 'failed']);
    expect(file).toMatchObject({ status: 'completed', size: 70_000, received_bytes: 70_000 });
    expect(file.checksums).toEqual(checksumsOf(bytes));
    expect(sha256Hex((await requestBytes('GET', file.download_url!)).body)).toBe(sha256Hex(bytes));
  });

  it('GET /v1/files filters by folder, tag, batch and status, lists newest first, pages with limit=2 through every file exactly once, and answers 400 invalid_query for a bad limit, status or cursor', async () => {
    // A Ferry of its own, so the status filters see only this test's files.
    const own = await startInProcessFerry();
    try {
      const tag = uniqueName('tag');
      const batchA = uniqueName('batchA');
      const batchB = uniqueName('batchB');
      const specs = [
        { folder: 'f1', tags: `${tag},x`, batch: batchA },
        { folder: 'f1', tags: 'y', batch: batchA },
        { folder: 'f2', tags: `${tag}`, batch: batchB },
        { folder: 'f2', tags: 'x,y', batch: batchB },
        { folder: 'f3', tags: '', batch: batchB },
      ];
      const uploaded: { id: string; sha256: string }[] = [];
      for (const [i, spec] of specs.entries()) {
        const bytes = undetectableBytes(1000 + i);
        const { id } = await uploadBuffer(own.url, bytes, { filename: `file-${i}.bin`, ...spec });
        uploaded.push({ id, sha256: sha256Hex(bytes) });
        await sleep(5); // distinct created_at
      }
      for (const { id, sha256 } of uploaded) {
        const file = await waitForFileStatus(own.url, id, 'completed');
        expect(file.checksums.sha256).toBe(sha256);
      }
      // One upload still uploading, one failed.
      await sleep(5);
      const pending = await tusCreate(own.url, 5000, {
        'Upload-Metadata': uploadMetadataHeader({ filename: 'pending.bin', folder: 'f1' }),
      });
      const pendingId = uploadId(pending.url);
      await sleep(5);
      const { id: failedId } = await uploadBuffer(own.url, minimalPng(), {
        filename: 'bad.pdf',
        filetype: 'application/pdf',
      });
      await waitForFileStatus(own.url, failedId, 'failed');
      const ids = (filter: Record<string, string>) =>
        listAllFiles(own.url, filter).then(({ files }) => files.map((f) => f.id));
      const [u0, u1, u2, u3, u4] = uploaded.map((u) => u.id) as [string, string, string, string, string];

      // Filters (each list newest first).
      expect(await ids({ folder: 'f1' })).toEqual([pendingId, u1, u0]);
      expect(await ids({ folder: 'f2' })).toEqual([u3, u2]);
      expect(await ids({ tag })).toEqual([u2, u0]);
      expect(await ids({ tag: 'y' })).toEqual([u3, u1]);
      expect(await ids({ batch: batchA })).toEqual([u1, u0]);
      expect(await ids({ batch: batchB })).toEqual([u4, u3, u2]);
      expect(await ids({ batch: batchB, tag: 'x' })).toEqual([u3]);
      expect(await ids({ folder: 'nope' })).toEqual([]);
      expect(await ids({ status: 'completed' })).toEqual([u4, u3, u2, u1, u0]);
      expect(await ids({ status: 'uploading' })).toEqual([pendingId]);
      expect(await ids({ status: 'failed' })).toEqual([failedId]);
      expect(await ids({ status: 'failed', folder: 'f1' })).toEqual([]);

      // Pagination: every file once, newest first, pages of at most 2.
      const all = await listAllFiles(own.url, { limit: '2' });
      expect(all.pageSizes.slice(0, -1).every((n) => n === 2)).toBe(true);
      expect(all.pageSizes.at(-1)).toBeGreaterThanOrEqual(1);
      expect(all.files.map((f) => f.id)).toEqual([failedId, pendingId, u4, u3, u2, u1, u0]);
      const created = all.files.map((f) => Date.parse(f.created_at));
      expect([...created].sort((a, b) => b - a)).toEqual(created);
      const firstPage = await requestJson<{ data: FileJson[]; next_cursor: string | null }>(
        'GET',
        `${own.url}/v1/files?limit=2`,
      );
      expect(firstPage.body.data.map((f) => f.id)).toEqual([failedId, pendingId]);
      expect(typeof firstPage.body.next_cursor).toBe('string');
      const lastPage = await requestJson<{ data: FileJson[]; next_cursor: string | null }>(
        'GET',
        `${own.url}/v1/files?limit=10`,
      );
      expect(lastPage.body.next_cursor).toBeNull();
      // A file still uploading shows what arrived so far; one not completed has no download_url.
      const pendingFile = all.files.find((f) => f.id === pendingId)!;
      expect(pendingFile).toMatchObject({ status: 'uploading', size: 5000, received_bytes: 0, download_url: null });

      // Bad queries.
      for (const query of ['limit=0', 'limit=1001', 'limit=abc', 'limit=2.5', 'status=done', 'folder=a&folder=b']) {
        await expectApiError('GET', `${own.url}/v1/files?${query}`, 400, 'invalid_query');
      }
      for (const cursor of ['garbage', Buffer.from('not-a-date|x').toString('base64url'), '']) {
        await expectApiError('GET', `${own.url}/v1/files?cursor=${cursor}`, 400, 'invalid_query');
      }
    } finally {
      await own.close();
    }
  });

  it('a real PNG declared application/pdf fails with type_mismatch (failed event, content 409 file_not_ready, bytes gone from disk and from tus GET), while the same PNG declared image/png completes with detected_type image/png', async () => {
    const png = minimalPng();
    const batch = uniqueName('types');
    const sse = await openSse(`${ferry.url}/v1/events?batch=${batch}`);

    const { id: badId, url: badUrl } = await uploadBuffer(ferry.url, png, {
      filename: 'picture.pdf',
      filetype: 'application/pdf',
      batch,
    });
    const failedEvent = await waitForEvent(sse, badId, 'failed');
    expect(failedEvent.json.error).toMatchObject({ code: 'type_mismatch' });
    expect(namesOf(eventsOf(sse, badId)).join(',')).toMatch(/^created(,progress)*,queued,processing,failed$/);
    const failed = await waitForFileStatus(ferry.url, badId, 'failed');
    expect(failed.error?.code).toBe('type_mismatch');
    expect(failed.error?.message).toMatch(/image\/png/);
    expect(failed.download_url).toBeNull();
    expect(failed.checksums).toEqual({ sha256: null, crc32c: null });
    await expectApiError('GET', `${ferry.url}/v1/files/${badId}/content`, 409, 'file_not_ready');
    // The bytes are removed: neither API serves them, and the blob is gone from the data directory.
    const tusGet = await requestBytes('GET', badUrl);
    expect(tusGet.status).toBe(410);
    expect(tusGet.body.includes(png.subarray(0, 8))).toBe(false);
    expect(existsSync(path.join(ferry.dataDir, 'uploads', badId))).toBe(false);

    const { id: goodId } = await uploadBuffer(ferry.url, png, {
      filename: 'picture.png',
      filetype: 'image/png',
      batch,
    });
    await waitForEvent(sse, goodId, 'completed');
    const good = await getFile(ferry.url, goodId);
    expect(good).toMatchObject({
      status: 'completed',
      mime_type: 'image/png',
      detected_type: 'image/png',
      checksums: checksumsOf(png),
      error: null,
    });
    const content = await requestBytes('GET', good.download_url!);
    expect(content.status).toBe(200);
    expect(content.headers['content-type']).toBe('image/png');
    expect(sha256Hex(content.body)).toBe(sha256Hex(png));
  });

  it('a PNG declared application/octet-stream or with no type never mismatches: it completes with detected_type image/png and is served as image/png', async () => {
    const png = minimalPng();
    const { id: octetId } = await uploadBuffer(ferry.url, png, {
      filename: 'a.bin',
      filetype: 'application/octet-stream',
    });
    const { id: untypedId } = await uploadBuffer(ferry.url, png, { filename: 'b' });
    for (const id of [octetId, untypedId]) {
      const file = await waitForFileStatus(ferry.url, id, ['completed', 'failed']);
      expect(file).toMatchObject({
        status: 'completed',
        detected_type: 'image/png',
        mime_type: 'application/octet-stream',
      });
      const content = await requestBytes('GET', file.download_url!);
      expect(content.headers['content-type']).toBe('image/png');
      expect(sha256Hex(content.body)).toBe(sha256Hex(png));
    }
  });

  it('with FERRY_ALLOWED_TYPES=image/* a declared PDF is refused at creation (415), PDF bytes declared as anything unspecific fail with type_not_allowed (content 409, bytes removed), and a PNG completes', async () => {
    const strict = await startInProcessFerry({ FERRY_ALLOWED_TYPES: 'image/*' });
    try {
      const pdf = minimalPdf();
      const refused = await fetch(`${strict.url}/files/`, {
        method: 'POST',
        headers: {
          'Tus-Resumable': '1.0.0',
          'Upload-Length': String(pdf.length),
          'Upload-Metadata': `filetype ${Buffer.from('application/pdf').toString('base64')}`,
        },
      });
      expect(refused.status).toBe(415);
      expect((await listAllFiles(strict.url, {})).files).toEqual([]);
      const { id: pdfId } = await uploadBuffer(strict.url, pdf, { filename: 'doc.pdf' });
      const failed = await waitForFileStatus(strict.url, pdfId, ['failed', 'completed']);
      expect(failed.status).toBe('failed');
      expect(failed.error?.code).toBe('type_not_allowed');
      // The sniffed type is recorded: it is why the file was refused.
      expect(failed.detected_type).toBe('application/pdf');
      await expectApiError('GET', `${strict.url}/v1/files/${pdfId}/content`, 409, 'file_not_ready');
      expect(existsSync(path.join(strict.dataDir, 'uploads', pdfId))).toBe(false);

      // Undetectable text falls back to the declared type: application/octet-stream is not an image.
      const { id: textId } = await uploadBuffer(strict.url, Buffer.from('hello\n'), { filename: 'a.txt' });
      const text = await waitForFileStatus(strict.url, textId, ['failed', 'completed']);
      expect(text.error?.code).toBe('type_not_allowed');

      const png = minimalPng();
      const { id: pngId } = await uploadBuffer(strict.url, png, { filename: 'ok.png', filetype: 'image/png' });
      const ok = await waitForFileStatus(strict.url, pngId, ['failed', 'completed']);
      expect(ok).toMatchObject({ status: 'completed', detected_type: 'image/png', checksums: checksumsOf(png) });
      const content = await requestBytes('GET', ok.download_url!);
      expect(sha256Hex(content.body)).toBe(sha256Hex(png));
    } finally {
      await strict.close();
    }
  });

  it('DELETE /v1/files/<id> answers 204 and removes bytes and record: tus HEAD 404, GET /v1/files/<id> 404 file_not_found, content 404, a deleted event; tus termination of a completed upload removes the file record too', async () => {
    const bytes = undetectableBytes(200_000);
    const { id, url } = await uploadBuffer(ferry.url, bytes, { filename: 'delete-me.bin' });
    await waitForFileStatus(ferry.url, id, 'completed');
    const sse = await openSse(`${ferry.url}/v1/files/${id}/events`);
    expect(sse.status).toBe(200);

    const deleted = await requestBytes('DELETE', `${ferry.url}/v1/files/${id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.body.length).toBe(0);
    const event = await waitForEvent(sse, id, 'deleted');
    expect(event.json).toMatchObject({ event: 'deleted', file_id: id });
    expect((await tusHead(url)).status).toBe(404);
    await expectApiError('GET', `${ferry.url}/v1/files/${id}`, 404, 'file_not_found');
    await expectApiError('GET', `${ferry.url}/v1/files/${id}/content`, 404, 'file_not_found');
    await expectApiError('DELETE', `${ferry.url}/v1/files/${id}`, 404, 'file_not_found');
    await expectApiError('GET', `${ferry.url}/v1/files/${id}/events`, 404, 'file_not_found');
    expect(existsSync(path.join(ferry.dataDir, 'uploads', id))).toBe(false);
    expect(await durableFileRecord(ferry.dataDir, id)).toBeUndefined();

    // tus termination (DELETE /files/<id>) of a completed upload.
    const other = undetectableBytes(1234);
    const { id: otherId, url: otherUrl } = await uploadBuffer(ferry.url, other, { filename: 'terminate-me.bin' });
    await waitForFileStatus(ferry.url, otherId, 'completed');
    const sseOther = await openSse(`${ferry.url}/v1/files/${otherId}/events`);
    const terminated = await httpRequest('DELETE', otherUrl, { 'Tus-Resumable': '1.0.0' });
    expect(terminated.status).toBe(204);
    await waitForEvent(sseOther, otherId, 'deleted');
    expect((await tusHead(otherUrl)).status).toBe(404);
    await expectApiError('GET', `${ferry.url}/v1/files/${otherId}`, 404, 'file_not_found');
    expect(await durableFileRecord(ferry.dataDir, otherId)).toBeUndefined();
  });

  it('DELETE /v1/files/<id> while a PATCH is streaming its body ends that PATCH and removes the upload, its bytes and its record', async () => {
    const size = 4 * MiB;
    const source = undetectableBytes(size);
    const { url } = await tusCreate(ferry.url, size, {
      'Upload-Metadata': uploadMetadataHeader({ filename: 'in-flight.bin' }),
    });
    const id = uploadId(url);
    const sse = await openSse(`${ferry.url}/v1/files/${id}/events`);
    let patchRequest: import('node:http').ClientRequest | undefined;
    const patch = stalledPatch(url, source, 0, 300_000, (req) => (patchRequest = req));
    try {
      // The first bytes arrived and the PATCH is holding the upload.
      const uploading = await until(
        'the stalled PATCH to store its first bytes',
        () => getFile(ferry.url, id),
        (file) => file.received_bytes >= 300_000,
      );
      expect(uploading.status).toBe('uploading');

      const started = Date.now();
      const deleted = await requestBytes('DELETE', `${ferry.url}/v1/files/${id}`);
      expect(deleted.status).toBe(204);
      // The PATCH ended (answered or its connection closed) instead of waiting for the rest of its body.
      const patchOutcome = await Promise.race([patch, sleep(5000).then(() => 'still running' as const)]);
      expect(patchOutcome).not.toBe('still running');
      if (!(patchOutcome instanceof Error) && typeof patchOutcome !== 'string') {
        expect([204, 404]).toContain(patchOutcome.status);
      }
      expect(Date.now() - started).toBeLessThan(10_000);

      await waitForEvent(sse, id, 'deleted');
      expect((await tusHead(url)).status).toBe(404);
      await expectApiError('GET', `${ferry.url}/v1/files/${id}`, 404, 'file_not_found');
      const leftovers = (await readdir(path.join(ferry.dataDir, 'uploads'))).filter((name) => name.startsWith(id));
      expect(leftovers).toEqual([]);
      expect(await durableFileRecord(ferry.dataDir, id)).toBeUndefined();
    } finally {
      patchRequest?.destroy();
    }
  });

  it('Last-Event-ID (header, or ?last_event_id= on a first connection) on /v1/files/<id>/events replays exactly the later events (processing, completed) with their original ids, then delivers live ones', async () => {
    const batch = uniqueName('replay');
    const live = await openSse(`${ferry.url}/v1/events?batch=${batch}`);
    const bytes = undetectableBytes(100_000);
    const { id } = await uploadBuffer(ferry.url, bytes, { filename: 'replay.bin', batch });
    await waitForEvent(live, id, 'completed');
    const original = eventsOf(live, id);
    const queued = original.find((m) => m.json.event === 'queued')!;
    const later = original.slice(original.indexOf(queued) + 1);
    expect(namesOf(later)).toEqual(['processing', 'completed']);

    const byHeader = await openSse(`${ferry.url}/v1/files/${id}/events`, { lastEventId: queued.id! });
    const byQuery = await openSse(`${ferry.url}/v1/files/${id}/events?last_event_id=${queued.id}`);
    for (const replay of [byHeader, byQuery]) {
      await replay.waitFor((m) => m.json.event === 'completed', 5000);
      await sleep(200); // nothing else follows
      expect(replay.messages.map((m) => ({ id: m.id, data: m.data }))).toEqual(
        later.map((m) => ({ id: m.id, data: m.data })),
      );
    }
    // Without Last-Event-ID nothing is replayed.
    const fresh = await openSse(`${ferry.url}/v1/files/${id}/events`);
    await sleep(200);
    expect(fresh.messages).toEqual([]);
    expect(fresh.retry).toBe(2000);

    // Then live: a deletion reaches the replayed streams after their replay.
    expect((await requestBytes('DELETE', `${ferry.url}/v1/files/${id}`)).status).toBe(204);
    for (const stream of [byHeader, byQuery, fresh]) {
      const deleted = await stream.waitFor((m) => m.json.event === 'deleted', 5000);
      expect(BigInt(deleted.id!)).toBeGreaterThan(BigInt(later.at(-1)!.id!));
    }
    expect(namesOf(byHeader.messages)).toEqual(['processing', 'completed', 'deleted']);

    // Streams of a file that does not exist, and an empty batch, are JSON errors, not streams.
    await expectApiError('GET', `${ferry.url}/v1/files/${id}/events`, 404, 'file_not_found');
    await expectApiError('GET', `${ferry.url}/v1/events?batch=`, 400, 'invalid_query');
  });

  it('tus-js-client parallelUploads: 3 makes exactly one file record (the final upload, not its partials), completed with the source sha256', async () => {
    const size = 3 * MiB + 4321;
    const bytes = undetectableBytes(size);
    const batch = uniqueName('concat');
    let finalConcat: string | undefined;
    const { id } = await uploadBuffer(
      ferry.url,
      bytes,
      { filename: 'joined.bin', batch },
      {
        parallelUploads: 3,
        onBeforeRequest: (req) => {
          const concat = req.getHeader('Upload-Concat');
          if (concat?.startsWith('final;')) finalConcat = concat;
        },
      },
    );
    const file = await waitForFileStatus(ferry.url, id, ['completed', 'failed']);
    expect(file).toMatchObject({ status: 'completed', size, received_bytes: size, name: 'joined.bin', batch });
    expect(file.checksums).toEqual(checksumsOf(bytes));
    const content = await requestBytes('GET', file.download_url!);
    expect(sha256Hex(content.body)).toBe(sha256Hex(bytes));

    const { files } = await listAllFiles(ferry.url, { batch });
    expect(files.map((f) => f.id)).toEqual([id]);
    const partIds = finalConcat!.slice('final;'.length).trim().split(' ').map(uploadId);
    expect(partIds).toHaveLength(3);
    for (const partId of partIds) {
      expect((await tusHead(`${ferry.url}/files/${partId}`)).status).toBe(200); // the partial exists…
      await expectApiError('GET', `${ferry.url}/v1/files/${partId}`, 404, 'file_not_found'); // …but is no file
    }
    const everything = await listAllFiles(ferry.url, {});
    for (const partId of partIds) expect(everything.files.some((f) => f.id === partId)).toBe(false);
  });

  it('an upload asking for a retention above FERRY_MAX_RETENTION (1d) is refused at creation with 400 and nothing is registered or stored', async () => {
    const batch = uniqueName('too-long');
    const before = {
      uploads: (await readdir(path.join(ferry.dataDir, 'uploads'))).length,
      files: (await durableFileRecords(ferry.dataDir)).size,
    };
    for (const retention of ['2d', '86401', '25h']) {
      const res = await httpRequest('POST', `${ferry.url}/files/`, {
        'Tus-Resumable': '1.0.0',
        'Upload-Length': '10',
        'Upload-Metadata': uploadMetadataHeader({ filename: 'keep.bin', batch, retention }),
      });
      expect(res.status, `retention ${retention}`).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(res.body).toMatch(/retention/);
    }
    // An unreadable or zero retention is refused the same way.
    for (const retention of ['forever', '0', '-5']) {
      const garbage = await httpRequest('POST', `${ferry.url}/files/`, {
        'Tus-Resumable': '1.0.0',
        'Upload-Length': '10',
        'Upload-Metadata': uploadMetadataHeader({ filename: 'keep.bin', batch, retention }),
      });
      expect(garbage.status, `retention ${retention}`).toBe(400);
    }
    expect((await listAllFiles(ferry.url, { batch })).files).toEqual([]);
    expect({
      uploads: (await readdir(path.join(ferry.dataDir, 'uploads'))).length,
      files: (await durableFileRecords(ferry.dataDir)).size,
    }).toEqual(before);

    // Exactly the maximum is accepted, and the file expires one day after completion.
    const bytes = undetectableBytes(10);
    const { id } = await uploadBuffer(ferry.url, bytes, { filename: 'keep.bin', batch, retention: '1d' });
    const file = await waitForFileStatus(ferry.url, id, 'completed');
    expect(Date.parse(file.expires_at!) - Date.parse(file.completed_at!)).toBe(86_400_000);
    expect(file.metadata).toEqual({});
  });
});
