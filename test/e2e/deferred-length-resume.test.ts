/**
 * creation-defer-length across a cut connection: the PATCH that declares Upload-Length is cut, the
 * client asks HEAD (which now reports the length) and resumes. tus-js-client resends the same
 * Upload-Length on that PATCH (its `uploadLengthDeferred` option stays on); tusd ignores a repeated
 * length, so Ferry must accept it when it equals the declared one (and still refuse a different one).
 */
import { request } from 'node:http';
import { open } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupFerries, startFerry } from '../helpers/ferry-process.js';
import { cleanupTempFiles, randomFile, sha256AndSizeOfUrl, type RandomFile } from '../helpers/files.js';
import { stallingSource } from '../helpers/stalling-source.js';
import { sleep } from '../helpers/poll.js';
import { httpRequest, tusCreate, tusHead, tusUpload, uploadId } from '../helpers/tus.js';
import { Upload } from 'tus-js-client';

const MiB = 1024 * 1024;
let file: RandomFile;
beforeAll(async () => {
  file = await randomFile(2 * MiB);
}, 30_000);
afterEach(cleanupFerries);
afterAll(cleanupTempFiles);

async function bytes(start: number, end: number): Promise<Buffer> {
  const fh = await open(file.path, 'r');
  try {
    const buf = Buffer.alloc(end - start);
    await fh.read(buf, 0, buf.length, start);
    return buf;
  } finally {
    await fh.close();
  }
}

describe('creation-defer-length: resuming after the length-declaring PATCH was cut', () => {
  it('HEAD reports the declared length and the stored offset after the cut', async () => {
    const ferry = await startFerry();
    const { url } = await tusCreate(ferry.url, null);
    await cutPatch(url, 1 * MiB);
    const head = await tusHead(url);
    expect(head.status).toBe(200);
    expect(head.length).toBe(file.size);
    expect(head.offset).toBeGreaterThan(0);
    expect(head.offset).toBeLessThanOrEqual(1 * MiB);
  });

  it('a resuming PATCH that repeats the same Upload-Length (as tus-js-client does) is accepted and completes a byte-identical file', async () => {
    const ferry = await startFerry();
    const { url } = await tusCreate(ferry.url, null);
    await cutPatch(url, 1 * MiB);
    const { offset } = await tusHead(url);
    const rest = await httpRequest(
      'PATCH',
      url,
      {
        'Tus-Resumable': '1.0.0',
        'Upload-Offset': String(offset),
        'Upload-Length': String(file.size),
        'Content-Type': 'application/offset+octet-stream',
      },
      await bytes(offset!, file.size),
    );
    expect(rest.status, rest.body).toBe(204);
    expect(rest.headers['upload-offset']).toBe(String(file.size));
    expect(await sha256AndSizeOfUrl(`${ferry.url}/files/${uploadId(url)}`)).toEqual({
      sha256: file.sha256,
      bytes: file.size,
    });
  });

  it('tus-js-client (uploadLengthDeferred) finishes a byte-identical file after its length-declaring PATCH was cut mid-body', async () => {
    const ferry = await startFerry();
    // One 4 MiB chunk covers the 2 MiB file, so the first PATCH declares the length; stall it at 1 MiB.
    const src = stallingSource(file.path, 1 * MiB);
    let failed: unknown;
    const patchLengths: (string | undefined)[] = [];
    const first = new Upload(src.file, {
      endpoint: `${ferry.url}/files/`,
      fileReader: src.fileReader,
      chunkSize: 4 * MiB,
      uploadLengthDeferred: true,
      retryDelays: null,
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'PATCH') patchLengths.push(req.getHeader('Upload-Length'));
      },
      onError: (e) => (failed = e),
    });
    try {
      first.start();
      await src.stalled;
      await sleep(300);
      expect(patchLengths).toEqual([String(file.size)]); // the stalled PATCH is the one declaring the length
      await first.abort();
      expect(failed).toBeUndefined();
      await sleep(200);

      const again = stallingSource(file.path, file.size); // never stalls: a plain random-access source
      const { url } = await tusUpload(again.file, {
        endpoint: `${ferry.url}/files/`,
        uploadUrl: first.url,
        fileReader: again.fileReader,
        chunkSize: 4 * MiB,
        uploadLengthDeferred: true,
        retryDelays: null,
      });
      expect(url).toBe(first.url);
      expect(await sha256AndSizeOfUrl(`${ferry.url}/files/${uploadId(url)}`)).toEqual({
        sha256: file.sha256,
        bytes: file.size,
      });
    } finally {
      src.release();
    }
  });

  it('a resuming PATCH with a different Upload-Length is refused with 400 and changes nothing', async () => {
    const ferry = await startFerry();
    const { url } = await tusCreate(ferry.url, null);
    await cutPatch(url, 1 * MiB);
    const before = await tusHead(url);
    const res = await httpRequest(
      'PATCH',
      url,
      {
        'Tus-Resumable': '1.0.0',
        'Upload-Offset': String(before.offset),
        'Upload-Length': String(file.size + 1),
        'Content-Type': 'application/offset+octet-stream',
      },
      await bytes(before.offset!, before.offset! + 1000),
    );
    expect(res.status).toBe(400);
    const after = await tusHead(url);
    expect({ offset: after.offset, length: after.length }).toEqual({ offset: before.offset, length: file.size });
  });
});

/** PATCH at offset 0 declaring the length, send `sendBytes` of the body, then cut the connection. */
async function cutPatch(url: string, sendBytes: number): Promise<void> {
  const body = await bytes(0, sendBytes);
  const req = request(url, {
    method: 'PATCH',
    agent: false,
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': '0',
      'Upload-Length': String(file.size),
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(file.size),
    },
  });
  let answered: number | undefined;
  req.on('response', (res) => (answered = res.statusCode));
  req.on('error', () => {});
  await new Promise<void>((r) => req.write(body, () => r()));
  await sleep(300); // let the bytes reach Ferry
  req.destroy();
  await sleep(200); // let Ferry see the cut and release the upload
  expect(answered, 'the cut PATCH must not have been answered').toBeUndefined();
}
