import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { Upload } from 'tus-js-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cleanupTempFiles, randomFile, sha256File } from '../../helpers/files.js';
import { stallingSource, type StallingSource } from '../../helpers/stalling-source.js';

const KiB = 1024;

/** A minimal single-upload tus 1.0 server keeping bytes in memory, enough for tus-js-client. */
async function fakeTus(): Promise<{ url: string; server: Server; received: () => Buffer; patches: () => number }> {
  let data = Buffer.alloc(0);
  let length = 0;
  let patches = 0;
  const server = createServer((req, res) => {
    res.setHeader('Tus-Resumable', '1.0.0');
    if (req.method === 'POST') {
      length = Number(req.headers['upload-length']);
      data = Buffer.alloc(0);
      req.resume();
      req.on('end', () => {
        res.writeHead(201, { Location: `http://${req.headers.host}/files/x` }).end();
      });
    } else if (req.method === 'HEAD') {
      res
        .writeHead(200, {
          'Upload-Offset': String(data.length),
          'Upload-Length': String(length),
          'Cache-Control': 'no-store',
        })
        .end();
    } else if (req.method === 'PATCH') {
      patches++;
      if (Number(req.headers['upload-offset']) !== data.length) {
        res.writeHead(409).end();
        req.resume();
        return;
      }
      // store bytes as they arrive, so a cut request keeps what reached us
      req.on('data', (c: Buffer) => (data = Buffer.concat([data, c])));
      req.on('end', () => res.writeHead(204, { 'Upload-Offset': String(data.length) }).end());
    } else {
      res.writeHead(405).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/files/`, server, received: () => data, patches: () => patches };
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const servers: Server[] = [];
const sources: StallingSource[] = [];
afterEach(async () => {
  for (const s of sources.splice(0)) s.release();
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      return new Promise((r) => s.close(r));
    }),
  );
});
afterAll(cleanupTempFiles);

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('stallingSource with tus-js-client 4.3.1', () => {
  it('single PATCH: the server receives exactly stallAt bytes, the request stays open, and a resume completes the file', async () => {
    const file = await randomFile(1024 * KiB);
    const tus = await fakeTus();
    servers.push(tus.server);
    const stallAt = 300 * KiB + 5;
    const src = stallingSource(file.path, stallAt);
    sources.push(src);
    let error: unknown;
    const upload = new Upload(src.file, {
      endpoint: tus.url,
      fileReader: src.fileReader,
      retryDelays: null,
      onError: (e) => (error = e),
    });
    upload.start();
    await src.stalled;
    await waitFor(() => tus.received().length === stallAt);
    await new Promise((r) => setTimeout(r, 100));
    expect(tus.received().length).toBe(stallAt); // nothing beyond the stall point
    expect(src.bytesHandedOut()).toBe(stallAt);
    expect(tus.patches()).toBe(1);
    await upload.abort();
    expect(error).toBeUndefined();
    expect(sha(tus.received())).toBe(await sha256File(file.path, { end: stallAt }));

    // resume with a plain file stream from the server's offset
    await new Promise<void>((resolve, reject) => {
      const again = new Upload(createReadStream(file.path), {
        endpoint: tus.url,
        uploadUrl: upload.url,
        retryDelays: null,
        onSuccess: () => resolve(),
        onError: reject,
      });
      again.start();
    });
    expect(sha(tus.received())).toBe(file.sha256);
  });

  it('with chunkSize: chunks before the stall are acknowledged, the chunk holding the stall point is in flight', async () => {
    const file = await randomFile(1024 * KiB);
    const tus = await fakeTus();
    servers.push(tus.server);
    const src = stallingSource(file.path, 250 * KiB);
    sources.push(src);
    let acked = 0;
    const upload = new Upload(src.file, {
      endpoint: tus.url,
      fileReader: src.fileReader,
      chunkSize: 100 * KiB,
      retryDelays: null,
      onChunkComplete: (_c, accepted) => (acked = accepted),
    });
    upload.start();
    await src.stalled;
    await waitFor(() => tus.received().length === 250 * KiB);
    expect(acked).toBe(200 * KiB);
    expect(tus.patches()).toBe(3);
    await upload.abort();
  });

  it('release() lets the stalled upload finish with the same Upload object', async () => {
    const file = await randomFile(512 * KiB);
    const tus = await fakeTus();
    servers.push(tus.server);
    const src = stallingSource(file.path, 100 * KiB);
    sources.push(src);
    const done = new Promise<void>((resolve, reject) => {
      const upload = new Upload(src.file, {
        endpoint: tus.url,
        fileReader: src.fileReader,
        chunkSize: 64 * KiB,
        retryDelays: null,
        onSuccess: () => resolve(),
        onError: reject,
      });
      upload.start();
    });
    await src.stalled;
    src.release();
    await done;
    expect(sha(tus.received())).toBe(file.sha256);
  });
});
