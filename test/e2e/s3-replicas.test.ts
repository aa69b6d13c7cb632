/**
 * Two Ferry replicas on one real redis-server sharing S3 (a real moto_server, 5 MiB parts) instead
 * of a data directory, behind a round-robin TCP proxy that gives every HTTP request a connection of
 * its own. The @tus/s3-store defects this guards against: a deleted upload still looking complete
 * on another replica, and a deferred length declared on one replica never reaching the others.
 * Every stored file is checked by sha256 on every live replica.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CLUSTER_RETRY_DELAYS as RETRY_DELAYS,
  cleanupClusters,
  expectStoredOn,
  headAfterLockExpiry,
  requestLogSummary as logsFor,
  requestsPerReplica,
  resumeSkippingDeadReplica0,
  startCluster,
  uploadInChunksThroughCluster,
  type Cluster,
} from '../helpers/cluster.js';
import { cleanupFerries, type FerryProcess } from '../helpers/ferry-process.js';
import { cleanupTempFiles, randomFile, type RandomFile } from '../helpers/files.js';
import { startMoto, stopAllMoto, type MotoServer } from '../helpers/moto-server.js';
import { eventually, until } from '../helpers/poll.js';
import { allKeysOfCompleted, leftovers, openMultipartKeys, partsOf, s3Env } from '../helpers/s3-inspect.js';
import {
  httpRequest,
  stalledPatch,
  tusCreate,
  tusHead,
  tusPatchFile,
  tusUpload,
  uploadId,
  type RawResponse,
} from '../helpers/tus.js';

const MiB = 1024 * 1024;

let moto: MotoServer;
let file: RandomFile; // 12 MiB + 777: two full parts and a short last one
let clusters = 0;
const openRequests: import('node:http').ClientRequest[] = [];

beforeAll(async () => {
  [moto, file] = await Promise.all([startMoto(), randomFile(12 * MiB + 777)]);
}, 60_000);
afterEach(async () => {
  for (const req of openRequests.splice(0)) req.destroy();
  await cleanupClusters();
  await cleanupFerries();
});
afterAll(async () => {
  await stopAllMoto();
  await cleanupTempFiles();
});

/** Two replicas on S3 under a prefix of their own. */
async function startS3Cluster(): Promise<{ cluster: Cluster; prefix: string }> {
  const prefix = `e2e-replicas-${process.pid}-${++clusters}`;
  const cluster = await startCluster({ replicas: 2, env: s3Env(moto, prefix, { FERRY_S3_PART_SIZE: '5MiB' }) });
  return { cluster, prefix: `${prefix}/` };
}

const on = (replica: FerryProcess | Cluster, id: string): string => `${replica.url}/files/${id}`;

const del = (url: string): Promise<RawResponse> => httpRequest('DELETE', url, { 'Tus-Resumable': '1.0.0' });

describe('two Ferry replicas sharing Redis and S3', () => {
  it('a completed upload deleted on replica A is gone on replica B at once (HEAD 404, GET 404, PATCH 404) although B had just served it, and nothing of it is left in S3', async () => {
    const { cluster, prefix } = await startS3Cluster();
    const [a, b] = cluster.replicas as [FerryProcess, FerryProcess];
    const { url } = await tusCreate(b.url, file.size);
    const id = uploadId(url);
    expect((await tusPatchFile(on(a, id), file.path, 0)).status).toBe(204);
    // Both replicas have seen it complete (and could have cached that).
    for (const replica of [a, b]) {
      const head = await tusHead(on(replica, id));
      expect({ offset: head.offset, length: head.length }).toEqual({ offset: file.size, length: file.size });
      await expectStoredOn(replica, id, file);
    }
    expect(await leftovers(moto, prefix)).toEqual(allKeysOfCompleted(prefix, id));

    const deleted = await del(on(a, id));
    expect(deleted.status, deleted.body).toBe(204);
    const started = Date.now();
    expect((await tusHead(on(b, id))).status).toBe(404);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await httpRequest('GET', on(b, id))).status).toBe(404);
    expect((await tusPatchFile(on(b, id), file.path, file.size)).status).toBe(404);
    expect((await tusHead(on(a, id))).status).toBe(404);
    expect(await leftovers(moto, prefix)).toEqual([]);
  }, 60_000);

  it('an unfinished upload (7 MiB of 12) deleted on replica B is gone on replica A (HEAD 404, GET 404, PATCH 404), with no object and no open multipart upload left in S3', async () => {
    const { cluster, prefix } = await startS3Cluster();
    const [a, b] = cluster.replicas as [FerryProcess, FerryProcess];
    const { url } = await tusCreate(a.url, file.size);
    const id = uploadId(url);
    expect((await tusPatchFile(on(b, id), file.path, 0, 7 * MiB)).offset).toBe(7 * MiB);
    for (const replica of [a, b]) expect((await tusHead(on(replica, id))).offset).toBe(7 * MiB);
    expect(await openMultipartKeys(moto, prefix)).toEqual([`${prefix}uploads/${id}`]);

    const deleted = await del(on(b, id));
    expect(deleted.status, deleted.body).toBe(204);
    expect((await tusHead(on(a, id))).status).toBe(404);
    expect((await httpRequest('GET', on(a, id))).status).toBe(404);
    // A small body: a 404 may come (and the connection close) before a large body is fully written.
    expect((await tusPatchFile(on(a, id), file.path, 7 * MiB, 7 * MiB + 1024)).status).toBe(404);
    expect(await leftovers(moto, prefix)).toEqual([]);
  }, 60_000);

  it('tus-js-client in 512 KiB chunks through the round-robin proxy: consecutive PATCHes are served by both replicas, each filling the same S3 part from where the other stopped, and the file is byte-identical on both', async () => {
    const { cluster, prefix } = await startS3Cluster();
    const { id, patches, retries } = await uploadInChunksThroughCluster(cluster, file, 'replicas-s3.bin');
    const chunks = Math.ceil(file.size / (512 * 1024));

    expect(patches.length, logsFor(cluster, id)).toBe(chunks);
    expect(
      patches.every((e) => e.status === 204),
      logsFor(cluster, id),
    ).toBe(true);
    expect(cluster.replicasThatServed(id, 'PATCH', 204), logsFor(cluster, id)).toEqual([0, 1]);
    expect(retries).toEqual([]);
    console.log(
      `[s3-replicas] PATCHes per replica: ${requestsPerReplica(cluster, id, 'PATCH')
        .map((lines) => lines.length)
        .join('/')}`,
    );
    for (const replica of cluster.replicas) await expectStoredOn(replica, id, file);
    expect(await leftovers(moto, prefix)).toEqual(allKeysOfCompleted(prefix, id));
  }, 60_000);

  it('a deferred-length upload (tus-js-client, 1 MiB chunks, through the round-robin proxy) whose length is declared on one replica completes: both replicas report Upload-Length = offset = size and serve the byte-identical file', async () => {
    const { cluster, prefix } = await startS3Cluster();
    const { url } = await tusUpload(createReadStream(file.path).pipe(new PassThrough()), {
      endpoint: `${cluster.url}/files/`,
      chunkSize: MiB,
      uploadLengthDeferred: true,
      retryDelays: RETRY_DELAYS,
    });
    const id = uploadId(url);
    for (const replica of cluster.replicas) {
      const head = await tusHead(on(replica, id));
      expect({ status: head.status, offset: head.offset, length: head.length }).toEqual({
        status: 200,
        offset: file.size,
        length: file.size,
      });
      await expectStoredOn(replica, id, file);
    }
    expect(
      await eventually(
        () => cluster.replicasThatServed(id, 'PATCH', 204),
        (s) => s.length >= 2,
      ),
    ).toEqual([0, 1]);
    expect(await leftovers(moto, prefix)).toEqual(allKeysOfCompleted(prefix, id));
  }, 60_000);

  it('after SIGKILL of the replica receiving a PATCH (killed once part 1 was in S3), its lock expires within ~10 s, HEAD on the other replica reports the stored offset, and tus-js-client resumes through the proxy (skipping the dead replica) to a byte-identical file', async () => {
    const { cluster, prefix } = await startS3Cluster();
    const [a, b] = cluster.replicas as [FerryProcess, FerryProcess];
    const source = await readFile(file.path);
    const { url } = await tusCreate(a.url, file.size);
    const id = uploadId(url);
    // 3 MiB acknowledged first: a tail object that the killed PATCH then completes into part 1.
    expect((await tusPatchFile(on(a, id), file.path, 0, 3 * MiB)).offset).toBe(3 * MiB);

    const key = `${prefix}uploads/${id}`;
    const patch = stalledPatch(on(a, id), source, 3 * MiB, 4 * MiB + 12_345, (req) => openRequests.push(req));
    await until(
      'part 1 of the stalled PATCH in S3',
      async () => {
        const upload = (await moto.listMultipartUploads()).find((u) => u.key === key);
        return upload !== undefined && (await partsOf(moto, key, upload.uploadId)).some((p) => p.number === 1);
      },
      (inS3) => inS3,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${a.logs().slice(-3000)}`);
    });
    await a.kill();
    const killedAt = Date.now();
    expect(await patch, 'the PATCH on the killed replica got no answer').toBeInstanceOf(Error);

    // The dead replica's lock is still in Redis: B's HEAD waits for it to expire (TTL 10 s).
    const { offset, waitedMs } = await headAfterLockExpiry(on(b, id), killedAt);
    expect(offset).toBeGreaterThanOrEqual(3 * MiB);
    expect(offset).toBeLessThanOrEqual(7 * MiB + 12_345);
    console.log(`[s3-replicas] after SIGKILL: HEAD answered after ${waitedMs} ms, offset ${offset}`);

    await resumeSkippingDeadReplica0(cluster, id, file, 2 * MiB);
    const served = await eventually(
      () => cluster.replicasThatServed(id, 'PATCH', 204),
      (replicas) => replicas.includes(1),
    );
    // Replica 0 served only the PATCH before the kill; everything after it went to replica 1.
    expect(served, logsFor(cluster, id)).toEqual([0, 1]);
    expect(cluster.requestLog(0, id).filter((e) => e.method === 'PATCH' && e.status === 204)).toHaveLength(1);
    await expectStoredOn(b, id, file);
    expect(await moto.listKeys(prefix)).toEqual(allKeysOfCompleted(prefix, id));
    // The multipart upload the killed replica had started is not recorded anywhere (see the
    // crash tests in s3-storage.test.ts); report it here without failing this test for it.
    console.log(
      `[s3-replicas] open multipart uploads under the prefix: ${(await openMultipartKeys(moto, prefix)).length}`,
    );
  }, 60_000);
});
