/**
 * A checksummed PATCH that Ferry itself interrupts, because another request for the same upload (here
 * a plain HEAD) asked for the upload's lock, keeps none of its bytes, as a checksummed chunk must be
 * stored whole or not at all. But every byte the client sent was correct, so the answer is not 460
 * "checksum mismatch" (a client would conclude its data were corrupted) but 423, which tus clients
 * retry from the offset HEAD reports.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { cleanupFerries, startFerry } from '../helpers/ferry-process.js';
import { httpRequest, tusCreate, tusHead, uploadChecksum } from '../helpers/tus.js';

const MiB = 1024 * 1024;

afterAll(cleanupFerries);

it('a correct checksummed PATCH interrupted by a HEAD to the same upload keeps nothing and is answered 423 (retryable), not 460', async () => {
  const ferry = await startFerry();
  const chunk = randomBytes(8 * MiB);
  const { url } = await tusCreate(ferry.url, chunk.length);

  // 256 KiB every 50 ms: the 8 MiB body would take ~1.6 s.
  let stop = false;
  const patch = httpRequest(
    'PATCH',
    url,
    {
      'Tus-Resumable': '1.0.0',
      'Content-Type': 'application/offset+octet-stream',
      'Upload-Offset': '0',
      'Content-Length': chunk.length,
      'Upload-Checksum': uploadChecksum('sha1', chunk),
    },
    (req) => {
      let sent = 0;
      const step = (): void => {
        if (stop || req.destroyed || sent >= chunk.length) return;
        req.write(chunk.subarray(sent, sent + 256 * 1024));
        sent += 256 * 1024;
        setTimeout(step, 50);
      };
      step();
    },
  ).finally(() => {
    stop = true;
  });

  await new Promise((r) => setTimeout(r, 300));
  // The HEAD takes the lock: Ferry asks the PATCH to release it and stops it after the drain timeout.
  const head = await tusHead(url);
  expect(head.status).toBe(200);
  const res = await patch.catch((err: unknown) => ({ status: 0, body: String(err) }));

  // Nothing of the interrupted chunk is kept…
  expect((await tusHead(url)).offset).toBe(0);
  // …and the client is told to retry, not that its bytes did not match their checksum.
  expect(res.status, `answered ${res.status} ${res.body.trim()}`).toBe(423);
  expect(res.body).not.toMatch(/checksum mismatch/i);
}, 30_000);
