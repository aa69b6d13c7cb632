/**
 * tus-js-client uploads through a proxy that keeps cutting TCP connections mid-upload: the client
 * resumes from the server's offset after every cut and the stored file is byte-identical.
 */
import { createReadStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import type { Upload } from 'tus-js-client';
import { describe, expect, it } from 'vitest';
import { sha256AndSizeOfUrl } from '../helpers/files.js';
import { spareCreationPost, type LossyProxyOptions } from '../helpers/lossy-proxy.js';
import { cutsReport, tusUploadWithRetries, useLossyRig } from '../helpers/lossy-rig.js';
import { uploadId } from '../helpers/tus.js';

const MiB = 1024 * 1024;
const SIZE = 40 * MiB;

const rig = useLossyRig(SIZE);

type Extra = Pick<ConstructorParameters<typeof Upload>[1], 'uploadDataDuringCreation' | 'uploadLengthDeferred'>;

async function uploadThroughCuttingProxy(
  chunkSize: number | undefined,
  extra: Extra = {},
  how: { input?: () => Readable; cutAfterBytes?: LossyProxyOptions['cutAfterBytes'] } = {},
): Promise<void> {
  const { ferry, file } = rig;
  const p = await rig.startProxy({
    maxCuts: 20,
    ...(how.cutAfterBytes ? { cutAfterBytes: how.cutAfterBytes } : {}),
  });
  const locations: string[] = [];
  const { url, retries } = await tusUploadWithRetries(
    how.input?.() ?? createReadStream(file.path),
    {
      endpoint: `${p.url}/files/`,
      ...(chunkSize !== undefined ? { chunkSize } : {}),
      ...extra,
      metadata: { filename: 'lossy.bin', filetype: 'application/octet-stream' },
      onAfterResponse: (req, res) => {
        const loc = res.getHeader('Location');
        if (req.getMethod() === 'POST' && loc) locations.push(loc);
      },
    },
    ferry,
    p,
  );

  console.log(`[lossy] chunkSize ${chunkSize ?? 'none'} ${JSON.stringify(extra)}: ${cutsReport(p, SIZE, retries)}`);
  expect(p.cuts(), `proxy seed ${p.seed}`).toBeGreaterThanOrEqual(1);
  // Ferry derived Location from the Host header the proxy forwarded, so the client stayed on the proxy.
  expect(locations.length).toBeGreaterThanOrEqual(1);
  for (const loc of locations) expect(loc).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${p.port}/files/[^/]+$`));
  expect(url.startsWith(`${p.url}/files/`)).toBe(true);

  // Verify directly against Ferry, not through the proxy.
  const got = await sha256AndSizeOfUrl(`${ferry.url}/files/${uploadId(url)}`);
  expect(got, `proxy seed ${p.seed}`).toEqual({ sha256: file.sha256, bytes: SIZE });
}

describe('tus-js-client through a proxy that cuts connections at random points (256 KiB–4 MiB)', () => {
  it(
    'a 40 MiB single-request upload (no chunkSize) resumes after every cut and the stored bytes match the source sha256',
    () => uploadThroughCuttingProxy(undefined),
    60_000,
  );

  it(
    'a 40 MiB upload in 4 MiB chunks resumes after every cut and the stored bytes match the source sha256',
    () => uploadThroughCuttingProxy(4 * MiB),
    60_000,
  );

  it(
    'a 40 MiB creation-with-upload in 4 MiB chunks (the POST carrying the first chunk is not cut; the PATCHes after it are) resumes after every cut and the stored bytes match the source sha256',
    // A creation POST cut mid-body leaves the client without an upload URL, so it can only start
    // over; tus-js-client then gives up after its retries without progress. So connection #1 (the
    // POST's) is cut only after the POST, during the PATCH that follows it on the same connection.
    () =>
      uploadThroughCuttingProxy(
        4 * MiB,
        { uploadDataDuringCreation: true },
        { cutAfterBytes: spareCreationPost(4 * MiB) },
      ),
    60_000,
  );

  it(
    'a 40 MiB deferred-length upload from a plain stream in 4 MiB chunks survives the cuts, declares its length at the end, and the stored bytes match the source sha256',
    // tus-js-client needs a non-file Readable for uploadLengthDeferred: with an fs.ReadStream it
    // sends a full chunkSize Content-Length for the short last chunk and hangs.
    () =>
      uploadThroughCuttingProxy(
        4 * MiB,
        { uploadLengthDeferred: true },
        {
          input: () => createReadStream(rig.file.path).pipe(new PassThrough()),
        },
      ),
    60_000,
  );
});
