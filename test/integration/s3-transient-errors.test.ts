import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultyS3Proxy, type FaultyS3Proxy, type InjectedFault } from '../helpers/faulty-s3-proxy.js';
import { startInProcessFerry, type InProcessFerry } from '../helpers/in-process-ferry.js';
import { MOTO_CREDENTIALS, startMoto, stopAllMoto, type MotoServer } from '../helpers/moto-server.js';

/**
 * Ferry on S3 when S3 misbehaves now and then (503 SlowDown, connections reset mid-request) or a
 * part is damaged on the way: parts are retried from their buffers and every upload still ends
 * byte-identical, with offsets that never run ahead of what is stored. The proxy checks each
 * `x-amz-checksum-crc32` as S3 does (moto does not).
 */

process.env.AWS_ACCESS_KEY_ID = MOTO_CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = MOTO_CREDENTIALS.secretAccessKey;

const MiB = 1024 * 1024;
const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTET = { 'Content-Type': 'application/offset+octet-stream' };
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

let s3: MotoServer;
let proxy: FaultyS3Proxy;
let ferry: InProcessFerry;
let partRequests = 0;
let mode: 'slow-down' | 'reset' | 'corrupt' | 'none' = 'none';

beforeAll(async () => {
  s3 = await startMoto();
  proxy = await startFaultyS3Proxy(s3.port, (req): InjectedFault => {
    const isPart = req.method === 'PUT' && /[?&]partNumber=/.test(req.url ?? '');
    if (!isPart || mode === 'none') return undefined;
    // Every other part request fails once: its retry gets through.
    partRequests += 1;
    return partRequests % 2 === 1 ? mode : undefined;
  });
  ferry = await startInProcessFerry({
    ...s3.env,
    FERRY_S3_ENDPOINT: proxy.endpoint,
    FERRY_S3_PREFIX: 'faults',
    FERRY_S3_PART_SIZE: '5MiB',
  });
});
afterAll(async () => {
  await ferry?.close();
  await proxy?.close();
  await stopAllMoto();
});

/** Uploads in PATCHes like a tus client, resuming from HEAD; returns the URL and the PATCH answers. */
async function uploadInChunks(data: Buffer, chunk: number): Promise<{ url: string; statuses: number[] }> {
  const statuses: number[] = [];
  const created = await fetch(`${ferry.url}/files/`, {
    method: 'POST',
    headers: { ...TUS, 'Upload-Length': String(data.length) },
  });
  const url = created.headers.get('location')!;
  let offset = 0;
  while (offset < data.length) {
    const res = await fetch(url, {
      method: 'PATCH',
      headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset) },
      body: data.subarray(offset, offset + chunk),
    });
    statuses.push(res.status);
    const head = await fetch(url, { method: 'HEAD', headers: TUS });
    const stored = Number(head.headers.get('upload-offset'));
    // Whatever the PATCH answered, HEAD never claims bytes that are not stored.
    expect(stored).toBeGreaterThanOrEqual(offset);
    expect(stored).toBeLessThanOrEqual(Math.min(offset + chunk, data.length));
    if (res.status === 204) expect(Number(res.headers.get('upload-offset'))).toBe(stored);
    offset = stored;
  }
  return { url, statuses };
}

describe('S3 transient errors', () => {
  for (const fault of ['slow-down', 'reset'] as const) {
    it(`retries parts that get ${fault === 'slow-down' ? '503 SlowDown' : 'a connection reset'} and stores a 17 MiB upload byte-identical`, async () => {
      mode = fault;
      partRequests = 0;
      const before = proxy.faults.length;
      const data = randomBytes(17 * MiB + 11);
      const { url, statuses } = await uploadInChunks(data, 6 * MiB);
      mode = 'none';
      expect(proxy.faults.length - before).toBeGreaterThanOrEqual(2);
      // Ferry absorbed every fault itself: no PATCH failed, none had to be re-sent.
      expect(statuses).toEqual([204, 204, 204]);
      const stored = Buffer.from(await (await fetch(url)).arrayBuffer());
      expect(stored.length).toBe(data.length);
      expect(sha256(stored)).toBe(sha256(data));
    }, 60_000);
  }

  it('sends every part and object with a CRC-32 that matches its bytes, tails and resumed parts included', async () => {
    mode = 'none';
    const before = proxy.checksums.length;
    const completionsBefore = proxy.completions.length;
    const data = randomBytes(17 * MiB + 11);
    // 6 MiB chunks over 5 MiB parts: parts 2 and 3 start from a stored tail, the last goes at finish.
    const { url, statuses } = await uploadInChunks(data, 6 * MiB);
    expect(statuses).toEqual([204, 204, 204]);
    const puts = proxy.checksums.slice(before);
    const parts = puts.filter((check) => /[?&]partNumber=/.test(check.path));
    expect(parts.map((check) => Number(/partNumber=(\d+)/.exec(check.path)![1])).sort()).toEqual([1, 2, 3, 4]);
    const tails = puts.filter((check) => check.path.includes('.tail.'));
    // Completed with every part's CRC-32, as S3 requires of an upload started with CRC32.
    expect(
      proxy.completions.slice(completionsBefore).map(({ parts, partsWithCrc32 }) => [parts, partsWithCrc32]),
    ).toEqual([[4, 4]]);
    expect(tails.length).toBeGreaterThanOrEqual(2);
    for (const check of [...parts, ...tails]) expect(check).toMatchObject({ sent: expect.any(String), matched: true });
    const stored = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(sha256(stored)).toBe(sha256(data));

    // An upload smaller than a part becomes one object, which carries its CRC-32 as well.
    const smallBefore = proxy.checksums.length;
    const small = randomBytes(MiB + 3);
    const uploaded = await uploadInChunks(small, small.length);
    const id = uploaded.url.split('/').pop()!;
    const objects = proxy.checksums
      .slice(smallBefore)
      .filter((check) => check.path.startsWith(`/${s3.bucket}/faults/uploads/${id}?`));
    expect(objects).toHaveLength(1);
    expect(objects[0]).toMatchObject({ sent: expect.any(String), matched: true });
    expect(sha256(Buffer.from(await (await fetch(uploaded.url)).arrayBuffer()))).toBe(sha256(small));
  }, 60_000);

  it('sends a part damaged on the way again after S3 refuses it (BadDigest), and stores the upload byte-identical', async () => {
    mode = 'corrupt';
    partRequests = 0;
    const faultsBefore = proxy.faults.length;
    const checksBefore = proxy.checksums.length;
    const data = randomBytes(17 * MiB + 11);
    const { url, statuses } = await uploadInChunks(data, 6 * MiB);
    mode = 'none';
    expect(proxy.faults.length - faultsBefore).toBeGreaterThanOrEqual(2);
    const refused = proxy.checksums.slice(checksBefore).filter((check) => !check.matched);
    expect(refused.length).toBe(proxy.faults.length - faultsBefore);
    expect(statuses).toEqual([204, 204, 204]);
    const stored = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(stored.length).toBe(data.length);
    expect(sha256(stored)).toBe(sha256(data));
  }, 60_000);
});
