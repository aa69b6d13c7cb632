/**
 * SIGTERM while a PATCH body is still streaming in: Ferry stops accepting connections, keeps what
 * the in-flight PATCH delivered, exits 0 within a bounded time; a second signal exits at once.
 */
import { open } from 'node:fs/promises';
import { request, type ClientRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupFerries, startFerry, type FerryProcess } from '../helpers/ferry-process.js';
import { cleanupTempFiles, randomFile, sha256AndSizeOfUrl, type RandomFile } from '../helpers/files.js';
import { sleep } from '../helpers/poll.js';
import { tusCreate, tusHead, tusPatchFile, uploadId } from '../helpers/tus.js';

const MiB = 1024 * 1024;
const KiB = 1024;
let file: RandomFile;
beforeAll(async () => {
  file = await randomFile(8 * MiB);
}, 30_000);
afterEach(cleanupFerries);
afterAll(cleanupTempFiles);

/**
 * A PATCH whose body the test writes piece by piece (Content-Length = whole rest of the file).
 * `outcome` settles with the response (status, Upload-Offset) or the connection error.
 */
interface SlowPatch {
  req: ClientRequest;
  /** Write the next `n` bytes of the file; resolves when handed to the kernel. false if the request is gone. */
  write(n: number): Promise<boolean>;
  sent(): number;
  done(): boolean;
  outcome: Promise<{ status: number; offset: number | undefined } | { error: string }>;
}

async function slowPatch(
  uploadUrl: string,
  total: number,
  as: { method: 'PATCH' | 'POST'; headers?: Record<string, string> } = { method: 'PATCH' },
): Promise<SlowPatch & { location: () => string | undefined }> {
  let location: string | undefined;
  const fh = await open(file.path, 'r');
  let sent = 0;
  let settled = false;
  const req = request(uploadUrl, {
    method: as.method,
    agent: false,
    headers: {
      'Tus-Resumable': '1.0.0',
      ...(as.method === 'PATCH' ? { 'Upload-Offset': '0' } : {}),
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(total),
      ...as.headers,
    },
  });
  const outcome = new Promise<{ status: number; offset: number | undefined } | { error: string }>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        settled = true;
        location = res.headers.location;
        const h = res.headers['upload-offset'];
        resolve({ status: res.statusCode ?? 0, offset: typeof h === 'string' ? Number(h) : undefined });
      });
      res.on('error', (e) => {
        settled = true;
        resolve({ error: e.message });
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      settled = true;
      resolve({ error: e.code ?? e.message });
    });
  });
  void outcome.finally(() => fh.close());
  return {
    req,
    location: () => location,
    sent: () => sent,
    done: () => settled,
    outcome,
    async write(n: number): Promise<boolean> {
      if (settled || req.destroyed) return false;
      const len = Math.min(n, total - sent);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, sent);
      if (settled || req.destroyed) return false;
      await new Promise<void>((resolve) => {
        const last = sent + len >= total;
        if (last) req.end(buf, () => resolve());
        else req.write(buf, () => resolve());
      });
      sent += len;
      return true;
    },
  };
}

/** Resolve with the time at which a fresh TCP connection to `port` is first refused (polls every 25 ms). */
async function refusedWithin(port: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
    });
    if (refused) return true;
    await sleep(25);
  }
  return false;
}

async function waitForExit(
  ferry: FerryProcess,
  ms: number,
): Promise<{ code: number | null; signal: string | null } | 'timeout'> {
  return Promise.race([ferry.exited, sleep(ms).then(() => 'timeout' as const)]);
}

describe('graceful shutdown', () => {
  it('SIGTERM during a slowly streamed PATCH: new connections are refused, the process exits 0 within 10 s, and after a restart the upload keeps every byte sent before SIGTERM (prefix verified by finishing the upload and comparing sha256)', async () => {
    const ferry = await startFerry();
    const { url } = await tusCreate(ferry.url, file.size);
    const patch = await slowPatch(url, file.size);
    const before = 2 * MiB;
    for (let i = 0; i < before / (256 * KiB); i++) await patch.write(256 * KiB);
    await sleep(500); // the first 2 MiB reach Ferry and are written
    expect(patch.done()).toBe(false);

    const t0 = Date.now();
    ferry.signal('SIGTERM');
    // keep streaming slowly (256 KiB / 100 ms) while Ferry shuts down
    const trickle = (async () => {
      while (patch.sent() < file.size && (await patch.write(256 * KiB))) await sleep(100);
    })();
    const refused = await refusedWithin(ferry.port, 3000);
    const exit = await waitForExit(ferry, 10_000);
    const exitMs = Date.now() - t0;
    await trickle;
    const outcome = await patch.outcome;
    console.log(
      `[graceful-shutdown] exit after ${exitMs} ms: ${JSON.stringify(exit)}; PATCH outcome ${JSON.stringify(outcome)}; client sent ${patch.sent()} bytes`,
    );
    expect(refused, 'a new connection was refused within 3 s of SIGTERM').toBe(true);
    expect(exit, ferry.logs().slice(-4000)).toEqual({ code: 0, signal: null });

    const again = await startFerry({ dataDir: ferry.dataDir, port: ferry.port });
    const head = await tusHead(url);
    expect(head.status).toBe(200);
    const offset = head.offset!;
    expect(offset).toBeGreaterThanOrEqual(before); // bytes that reached Ferry before SIGTERM were kept
    expect(offset).toBeLessThanOrEqual(patch.sent());
    if ('status' in outcome && outcome.status === 204) {
      // an acknowledged offset must be exactly what is stored
      expect(outcome.offset).toBe(offset);
    }

    // Finish from the stored offset: the file matches only if bytes [0, offset) are the source's.
    if (offset < file.size) {
      const rest = await tusPatchFile(url, file.path, offset);
      expect(rest.status).toBe(204);
      expect(rest.offset).toBe(file.size);
    }
    expect(await sha256AndSizeOfUrl(`${again.url}/files/${uploadId(url)}`)).toEqual({
      sha256: file.sha256,
      bytes: file.size,
    });
  }, 60_000);

  it('SIGTERM during a slowly streamed creation-with-upload POST: the POST is answered 201 with Location and its stored offset, the process exits 0, and the bytes survive the restart', async () => {
    const ferry = await startFerry();
    const post = await slowPatch(`${ferry.url}/files/`, file.size, {
      method: 'POST',
      headers: { 'Upload-Length': String(file.size) },
    });
    for (let i = 0; i < 8; i++) await post.write(256 * KiB);
    await sleep(500);
    ferry.signal('SIGTERM');
    const trickle = (async () => {
      while (post.sent() < file.size && (await post.write(256 * KiB))) await sleep(100);
    })();
    const exit = await waitForExit(ferry, 10_000);
    await trickle;
    const outcome = await post.outcome;
    console.log(`[graceful-shutdown] POST outcome ${JSON.stringify(outcome)}, location ${post.location()}`);
    expect(exit, ferry.logs().slice(-4000)).toEqual({ code: 0, signal: null });
    expect(outcome).toMatchObject({ status: 201 });
    const location = post.location();
    expect(location).toMatch(new RegExp(`^${ferry.url}/files/[^/]+$`));
    const acknowledged = (outcome as { offset: number }).offset;
    expect(acknowledged).toBeGreaterThanOrEqual(2 * MiB);

    const again = await startFerry({ dataDir: ferry.dataDir, port: ferry.port });
    const head = await tusHead(location!);
    expect(head.offset).toBe(acknowledged);
    const rest = await tusPatchFile(location!, file.path, acknowledged);
    expect(rest.status).toBe(204);
    expect(await sha256AndSizeOfUrl(`${again.url}/files/${uploadId(location!)}`)).toEqual({
      sha256: file.sha256,
      bytes: file.size,
    });
  }, 60_000);

  for (const second of ['SIGTERM', 'SIGINT'] as const) {
    it(`a second signal (${second}) while the graceful shutdown still waits for an unfinished request makes the process exit within 1 s`, async () => {
      const ferry = await startFerry();
      // A request whose headers never finish keeps the graceful shutdown waiting (until its timeout).
      const hanging = connect(ferry.port, '127.0.0.1');
      hanging.on('error', () => {});
      await new Promise<void>((r) => hanging.once('connect', () => r()));
      hanging.write(`PATCH /files/whatever HTTP/1.1\r\nHost: 127.0.0.1:${ferry.port}\r\nTus-Resu`);
      await sleep(100);

      ferry.signal('SIGTERM');
      await sleep(500);
      expect(ferry.isRunning(), 'graceful shutdown should still be waiting 500 ms after SIGTERM').toBe(true);
      const t1 = Date.now();
      ferry.signal(second);
      const exit = await waitForExit(ferry, 1000);
      hanging.destroy();
      console.log(`[graceful-shutdown] second ${second}: exit ${JSON.stringify(exit)} after ${Date.now() - t1} ms`);
      expect(exit).not.toBe('timeout');
    }, 30_000);
  }
});
