import { existsSync } from 'node:fs';
import path from 'node:path';
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SWEEP_LOCK } from '../../src/core/lifecycle/expiry-sweeper.js';
import { startInProcessFerry, type InProcessFerry } from '../helpers/in-process-ferry.js';
import { MOTO_CREDENTIALS, startMoto, stopAllMoto, type MotoServer } from '../helpers/moto-server.js';
import { startRedis, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * The expiry sweeper: unfinished uploads idle past FERRY_INCOMPLETE_TTL lose their bytes and answer
 * 410; completed uploads and anything Ferry did not create are never touched. Run against every
 * storage and state mode.
 */

process.env.AWS_ACCESS_KEY_ID = MOTO_CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = MOTO_CREDENTIALS.secretAccessKey;

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTET = { 'Content-Type': 'application/offset+octet-stream' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let s3: MotoServer;
let redis: RedisServer;
beforeAll(async () => {
  [s3, redis] = await Promise.all([startMoto(), startRedis()]);
});
afterAll(async () => {
  await stopAllMoto();
  await stopAllRedis();
});

interface Mode {
  readonly name: string;
  env(): Record<string, string>;
  /** What is left of an upload's bytes in storage. */
  bytesExist(ferry: InProcessFerry, id: string): Promise<boolean>;
}

const onDisk = (ferry: InProcessFerry, id: string) =>
  Promise.resolve(existsSync(path.join(ferry.dataDir, 'uploads', id)));
const modes: Mode[] = [
  { name: 'embedded, disk', env: () => ({}), bytesExist: onDisk },
  {
    name: 'Redis, disk',
    env: () => ({ FERRY_REDIS_URL: redis.url, FERRY_REDIS_PREFIX: 'sweep:' }),
    bytesExist: onDisk,
  },
  {
    name: 'embedded, S3',
    env: () => ({ ...s3.env, FERRY_S3_PREFIX: 'sweep' }),
    // Only the record may stay (the tombstone): no object, tail, state or multipart upload.
    bytesExist: async (_ferry, id) => {
      const keys = (await s3.listKeys(`sweep/uploads/${id}`)).filter((key) => !key.endsWith(`${id}.json`));
      const open = (await s3.listMultipartUploads()).filter((upload) => upload.key.includes(id));
      return keys.length > 0 || open.length > 0;
    },
  },
];

for (const mode of modes) {
  describe(`expiry sweeper (${mode.name})`, () => {
    let ferry: InProcessFerry;
    beforeAll(async () => {
      ferry = await startInProcessFerry({ ...mode.env(), FERRY_INCOMPLETE_TTL: '1s', FERRY_MAX_SIZE: '64MiB' });
    });
    afterAll(async () => {
      await ferry.close();
    });

    const create = async (length: number, body?: Buffer) => {
      const res = await fetch(`${ferry.url}/files/`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': String(length), ...(body ? OCTET : {}) },
        body,
      });
      expect(res.status).toBe(201);
      const url = res.headers.get('location')!;
      return { url, id: url.split('/').pop()! };
    };

    it('removes the bytes of unfinished uploads idle past the TTL (then 410), keeps completed ones, and leaves foreign objects alone', async () => {
      const foreign = await s3.client.send(
        new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: 'someone-else/upload.bin' }),
      );
      // 6 MiB of 8: on S3 that is a multipart upload with one part and a tail, all of which must go.
      const unfinished = await create(8 * 1024 * 1024, Buffer.alloc(6 * 1024 * 1024, 1));
      const done = await create(5, Buffer.from('hello'));
      await sleep(1300);
      const fresh = await create(10);

      const result = await ferry.ferry.sweeper.sweepOnce();
      expect(result).toMatchObject({ ran: true, expired: 1 });
      expect(await mode.bytesExist(ferry, unfinished.id)).toBe(false);
      expect((await fetch(unfinished.url, { method: 'HEAD', headers: TUS })).status).toBe(410);
      expect((await fetch(unfinished.url)).status).toBe(410);
      const patch = await fetch(unfinished.url, {
        method: 'PATCH',
        headers: { ...TUS, ...OCTET, 'Upload-Offset': String(6 * 1024 * 1024) },
        body: Buffer.from('late'),
      });
      expect(patch.status).toBe(410);

      expect(await (await fetch(done.url)).text()).toBe('hello');
      expect((await fetch(fresh.url, { method: 'HEAD', headers: TUS })).status).toBe(200);
      expect(await s3.listMultipartUploads()).toContainEqual({
        key: 'someone-else/upload.bin',
        uploadId: foreign.UploadId,
      });

      // Nothing left to do on the next sweep; the tombstone can still be terminated.
      expect(await ferry.ferry.sweeper.sweepOnce()).toMatchObject({ ran: true, expired: 0 });
      expect((await fetch(unfinished.url, { method: 'DELETE', headers: TUS })).status).toBe(204);
      expect((await fetch(unfinished.url, { method: 'HEAD', headers: TUS })).status).toBe(404);
    }, 30_000);

    it('skips its turn while another sweep (any replica) holds the sweep lock', async () => {
      const other = ferry.ferry.locker.newLock(SWEEP_LOCK);
      await other.lock(new AbortController().signal, () => undefined);
      try {
        expect(await ferry.ferry.sweeper.sweepOnce()).toEqual({
          ran: false,
          expired: 0,
          forgotten: 0,
          expiredFiles: 0,
          forgottenFiles: 0,
        });
      } finally {
        await other.unlock();
      }
      expect(await ferry.ferry.sweeper.sweepOnce()).toMatchObject({ ran: true });
    });
  });
}
