/**
 * The file registry, its events and its processing in distributed mode, end to end: real `ferry
 * serve` replicas and `ferry worker` processes on one real redis-server, sharing a data directory.
 * Uploads go to one replica with raw tus requests; what the other replica (and the worker) make of
 * them is checked through `/v1/files`, `/v1/events` and the bytes, by SHA-256 against the source.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupClusters, startCluster, type Cluster } from '../helpers/cluster.js';
import {
  cleanupDistributedFiles,
  compareStreamIds,
  crc32cOfFile,
  createUpload,
  eventTypesOf,
  getFile,
  getJson,
  listFiles,
  logLines,
  openEventStream,
  patchTo,
  placeEnv,
  runCli,
  startWorker,
  uploadTo,
  waitForStatus,
  type FileJson,
  type ListQuery,
  type SseEvent,
} from '../helpers/distributed-files-rig.js';
import { signedContentUrl } from '../helpers/files-api.js';
import { cleanupFerries, type FerryProcess } from '../helpers/ferry-process.js';
import { cleanupTempFiles, randomFile, sha256AndSizeOfUrl, type RandomFile } from '../helpers/files.js';
import { sleep, until } from '../helpers/poll.js';
import { uploadId } from '../helpers/tus.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let medium: RandomFile; // 16 MiB, sent in 4 MiB PATCHes
let smallA: RandomFile; // 2 MiB
let smallB: RandomFile; // 2 MiB, other bytes
let tiny: RandomFile; // 64 KiB, for listings
let huge: RandomFile; // 200 MiB: hashing it takes long enough to kill the worker mid-way

beforeAll(async () => {
  [medium, smallA, smallB, tiny, huge] = await Promise.all([
    randomFile(16 * MiB),
    randomFile(2 * MiB),
    randomFile(2 * MiB),
    randomFile(64 * KiB),
    randomFile(200 * MiB),
  ]);
}, 60_000);
afterEach(async () => {
  await cleanupDistributedFiles();
  await cleanupClusters();
  await cleanupFerries();
});
afterAll(cleanupTempFiles);

/** Two `ferry serve` replicas on one redis-server and one data directory (no worker yet). */
async function twoReplicas(): Promise<{ cluster: Cluster; a: FerryProcess; b: FerryProcess }> {
  const cluster = await startCluster({ replicas: 2 });
  const [a, b] = cluster.replicas as [FerryProcess, FerryProcess];
  return { cluster, a, b };
}

/**
 * The server subscribes to the event bus just after it sent the stream's first block; give it a
 * moment so that live events published right after are not from before the subscription.
 */
const SUBSCRIBE_GRACE_MS = 300;

/** `completed` with the checksums of `file`, and its bytes served by `replica`. */
async function expectCompletedOn(replica: FerryProcess, id: string, file: RandomFile): Promise<FileJson> {
  const got = await getFile(replica.url, id);
  expect(got.status, JSON.stringify(got)).toBe('completed');
  expect(got.checksums.sha256).toBe(file.sha256);
  expect(got.size).toBe(file.size);
  expect(got.download_url).toEqual(signedContentUrl(replica.url, id));
  // Signed by whichever replica: every replica shares FERRY_SIGNING_SECRET.
  expect(await sha256AndSizeOfUrl(got.download_url!)).toEqual({
    sha256: file.sha256,
    bytes: file.size,
  });
  return got;
}

function expectIncreasingIds(events: SseEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    expect(
      compareStreamIds(events[i - 1]!.id, events[i]!.id),
      `event ${events[i]!.id} comes after ${events[i - 1]!.id}`,
    ).toBeLessThan(0);
  }
}

describe('the file registry across replicas (Redis, shared data directory)', () => {
  it('an SSE client on replica B sees created…completed, in order with increasing ids, for an upload sent entirely to replica A and processed by `ferry worker`; B then shows it completed with the right checksums and serves its bytes', async () => {
    const { cluster, a, b } = await twoReplicas();
    await startWorker(cluster);
    const onB = await openEventStream(`${b.url}/v1/events?batch=batch-x`);
    const otherBatchOnB = await openEventStream(`${b.url}/v1/events?batch=batch-y`);
    await sleep(SUBSCRIBE_GRACE_MS);

    const id = await uploadTo(a.url, medium, { filename: 'report.bin', batch: 'batch-x' }, { chunk: 4 * MiB });
    // Every tus request of the upload went to A.
    expect(cluster.replicasThatServed(id, 'PATCH')).toEqual([0]);
    expect(cluster.requestLog(1, id)).toEqual([]);

    const events = await onB.waitFor(
      (all) => eventTypesOf(all, id).includes('completed'),
      20_000,
      `the completed event of ${id}`,
    );
    const types = eventTypesOf(events, id);
    expect(types.join(','), JSON.stringify(events)).toMatch(/^created(,progress)*,queued,processing,completed$/);
    expect(events.every((e) => e.data.file_id === id)).toBe(true);
    expectIncreasingIds(events);
    const created = events[0]!.data;
    expect(created).toMatchObject({ event: 'created', file_id: id, name: 'report.bin', size: medium.size });
    const ats = events.map((e) => Date.parse(e.data.at));
    expect([...ats].sort((x, y) => x - y)).toEqual(ats);
    // The batch filter holds across replicas too.
    expect(otherBatchOnB.events).toEqual([]);

    const file = await expectCompletedOn(b, id, medium);
    expect(file).toMatchObject({ name: 'report.bin', batch: 'batch-x', received_bytes: medium.size, error: null });
    expect(file.checksums.crc32c).toBe(await crc32cOfFile(medium.path));
  });

  it('without a worker running, completed uploads stay queued with their jobs waiting in Redis; a `ferry worker` started later processes them to completed', async () => {
    const { cluster, a, b } = await twoReplicas();
    const viaA = await uploadTo(a.url, smallA, { filename: 'a.bin' });
    const viaB = await uploadTo(b.url, smallB, { filename: 'b.bin' });
    for (const [id, other] of [
      [viaA, b],
      [viaB, a],
    ] as const) {
      await waitForStatus(other.url, id, 'queued', 5_000);
    }
    await sleep(1500);
    for (const replica of [a, b]) {
      for (const id of [viaA, viaB]) {
        const file = await getFile(replica.url, id);
        expect(file.status).toBe('queued');
        expect(file.checksums).toEqual({ sha256: null, crc32c: null });
        const content = await getJson(`${replica.url}/v1/files/${id}/content`);
        expect(content.status).toBe(409);
      }
    }
    // The processing jobs wait in Redis (BullMQ, prefix `ferry:bull`), not in a replica's memory.
    const connection = new Redis(cluster.redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue('process-file', { connection, prefix: 'ferry:bull' });
    try {
      for (const id of [viaA, viaB]) {
        const job = await queue.getJob(`process-file.${id}`);
        expect(job, `job of ${id}`).toBeDefined();
        expect(await job!.getState()).toBe('waiting');
      }
    } finally {
      await queue.close();
      connection.disconnect();
    }

    await startWorker(cluster);
    for (const [id, file, replica] of [
      [viaA, smallA, b],
      [viaB, smallB, a],
    ] as const) {
      await waitForStatus(replica.url, id, 'completed', 15_000);
      await expectCompletedOn(replica, id, file);
    }
  });

  it('a `ferry worker` SIGKILLed while it hashes a 200 MiB file leaves the job to a second worker started right away: the file reaches completed with the right sha256 (BullMQ stalled-job recovery)', async () => {
    const { cluster, a, b } = await twoReplicas();
    const first = await startWorker(cluster);
    const { url } = await createUpload(a.url, huge.size, { filename: 'huge.bin' });
    const id = uploadId(url);
    const onB = await openEventStream(`${b.url}/v1/files/${id}/events`);
    await sleep(SUBSCRIBE_GRACE_MS);
    await patchTo(url, huge, 0);

    await onB.waitFor((all) => eventTypesOf(all, id).includes('processing'), 15_000, 'processing');
    await first.kill();
    const killedAt = Date.now();
    // It died before it finished: otherwise this test would prove nothing.
    expect((await getFile(b.url, id)).status).toBe('processing');
    expect(eventTypesOf(onB.events, id)).not.toContain('completed');

    const second = await startWorker(cluster);
    await waitForStatus(b.url, id, 'completed', 80_000, 250);
    const recoveredAfterMs = Date.now() - killedAt;
    console.log(`[files-distributed] stalled processing job recovered ${recoveredAfterMs} ms after the SIGKILL`);
    // BullMQ's lock (30 s) must lapse and two stalled checks (every 30 s) must see the job.
    expect(recoveredAfterMs).toBeLessThan(75_000);
    expect(logLines(second.logs(), 'a worker stopped without finishing a job; it runs again')).toHaveLength(1);
    await expectCompletedOn(b, id, huge);
    const types = eventTypesOf(onB.events, id);
    expect(types.filter((t) => t === 'completed')).toHaveLength(1);
    expect(types).not.toContain('failed');
  }, 120_000);

  it('after Redis restarts empty, GET /v1/files/<id> still answers from the durable record, and the list comes back after `ferry reindex` (exit 0) and after a replica restart (start-up reindex)', async () => {
    const { cluster, a, b } = await twoReplicas();
    const worker = await startWorker(cluster);
    const ids = [
      await uploadTo(a.url, smallA, { filename: 'a.bin', folder: 'docs' }),
      await uploadTo(b.url, smallB, { filename: 'b.bin', folder: 'docs' }),
      await uploadTo(b.url, tiny, { filename: 't.bin', folder: 'docs' }),
    ];
    for (const id of ids) await waitForStatus(a.url, id, 'completed');
    expect(await worker.stop()).toBe(0);
    const listed = async (replica: FerryProcess, query: ListQuery = {}) =>
      (await listFiles(replica.url, query)).data.map((f) => f.id).sort();
    const all = [...ids].sort();
    expect(await listed(a)).toEqual(all);

    const restartRedisEmpty = async () => {
      await cluster.redis.stop();
      await cluster.redis.start();
      // Replicas reconnect within a couple of seconds (503 until then); Redis has nothing of the files.
      for (const replica of [a, b]) {
        await until(
          `GET /v1/files on port ${replica.port} after the Redis restart`,
          () => getJson(`${replica.url}/v1/files`),
          (r) => r.status === 200,
          { timeoutMs: 10_000, everyMs: 100 },
        );
      }
    };

    await restartRedisEmpty();
    expect(await listed(a)).toEqual([]);
    expect(await listed(b, { folder: 'docs' })).toEqual([]);
    // One file by id, through the durable record, bytes included.
    await expectCompletedOn(b, ids[0]!, smallA);

    const reindexed = await runCli(['reindex'], placeEnv(cluster));
    expect(reindexed.code, reindexed.logs).toBe(0);
    expect(logLines(reindexed.logs, 'file registry reindexed')).toMatchObject([{ files: 3 }]);
    for (const replica of [a, b]) {
      expect(await listed(replica)).toEqual(all);
      expect(await listed(replica, { folder: 'docs', status: 'completed' })).toEqual(all);
    }
    await expectCompletedOn(a, ids[1]!, smallB);

    await restartRedisEmpty();
    expect(await listed(a)).toEqual([]);
    const restarted = await cluster.restartReplica(0);
    for (const replica of [restarted, b]) {
      expect(await listed(replica)).toEqual(all);
      expect(await listed(replica, { folder: 'docs' })).toEqual(all);
    }
    await expectCompletedOn(restarted, ids[2]!, tiny);
  });

  it('an SSE client connecting to replica A with the Last-Event-ID of an event published via replica B gets every later event exactly once, in order, then the live ones', async () => {
    const { a, b } = await twoReplicas();
    const onB = await openEventStream(`${b.url}/v1/events?batch=replay`);
    await sleep(SUBSCRIBE_GRACE_MS);
    const first = await uploadTo(b.url, smallA, { filename: 'one.bin', batch: 'replay' }, { chunk: 1 * MiB });
    const second = await uploadTo(b.url, smallB, { filename: 'two.bin', batch: 'replay' });
    await onB.waitFor((all) => eventTypesOf(all, second).includes('queued'), 10_000, 'queued of the second');
    const pivot = onB.events[0]!;
    expect(pivot.data).toMatchObject({ event: 'created', file_id: first });
    const laterOnB = () => onB.events.slice(1);
    expect(laterOnB().length).toBeGreaterThanOrEqual(3);

    const onA = await openEventStream(`${a.url}/v1/events?batch=replay`, { lastEventId: pivot.id });
    const firstOnA = await openEventStream(`${a.url}/v1/files/${first}/events`, { lastEventId: pivot.id });
    await onA.waitFor((all) => all.length >= laterOnB().length, 10_000, 'the replay');
    await sleep(SUBSCRIBE_GRACE_MS);
    expect(onA.events).toEqual(laterOnB());

    // Live from here: a third upload through B reaches A's stream once, after the replayed events.
    const third = await uploadTo(b.url, tiny, { filename: 'three.bin', batch: 'replay' });
    await onB.waitFor((all) => eventTypesOf(all, third).includes('queued'), 10_000, 'queued of the third on B');
    await onA.waitFor((all) => eventTypesOf(all, third).includes('queued'), 10_000, 'queued of the third on A');
    await sleep(SUBSCRIBE_GRACE_MS);
    expect(onA.events).toEqual(laterOnB());
    expect(new Set(onA.events.map((e) => e.id)).size).toBe(onA.events.length);
    expectIncreasingIds(onA.events);
    expect(eventTypesOf(onA.events, third)).toEqual(eventTypesOf(onB.events, third));
    expect(eventTypesOf(onA.events, third)[0]).toBe('created');

    // The per-file stream replays only that file's later events.
    expect(firstOnA.events).toEqual(laterOnB().filter((e) => e.data.file_id === first));
    expect(firstOnA.events.at(-1)!.data.event).toBe('queued');
  });

  it('list filters and cursor pagination give the same pages on either replica for files created through both, newest first', async () => {
    const { a, b } = await twoReplicas();
    // Through A and B in turn; an incomplete upload stays `uploading`, a complete one `queued` (no worker).
    const specs = [
      { via: a, folder: 'photos', tags: 'red,blue', batch: 'b1', complete: true },
      { via: b, folder: 'photos', tags: 'red', batch: 'b1', complete: true },
      { via: a, folder: 'docs', tags: 'blue', batch: 'b1', complete: true },
      { via: b, folder: 'docs', tags: 'red,green', batch: 'b1', complete: false },
      { via: a, folder: 'photos', tags: 'green', batch: 'b2', complete: false },
      { via: b, folder: undefined, tags: 'red', batch: 'b2', complete: true },
      { via: a, folder: 'photos', tags: 'red', batch: 'b2', complete: true },
    ];
    const created: { id: string; folder: string | null; tags: string[]; batch: string; status: string }[] = [];
    for (const [i, spec] of specs.entries()) {
      const metadata: Record<string, string> = { filename: `f${i}.bin`, tags: spec.tags, batch: spec.batch };
      if (spec.folder) metadata.folder = spec.folder;
      const id = await uploadTo(spec.via.url, tiny, metadata, spec.complete ? {} : { upTo: 1000 });
      created.push({
        id,
        folder: spec.folder ?? null,
        tags: spec.tags.split(','),
        batch: spec.batch,
        status: spec.complete ? 'queued' : 'uploading',
      });
    }
    // Created one after another: creation times increase (the list's order is newest first).
    const createdAt = await Promise.all(created.map(async (f) => Date.parse((await getFile(b.url, f.id)).created_at)));
    for (let i = 1; i < createdAt.length; i++) expect(createdAt[i]!).toBeGreaterThan(createdAt[i - 1]!);
    for (const f of created) await waitForStatus(a.url, f.id, f.status, 5_000);

    const queries: ListQuery[] = [
      {},
      { folder: 'photos' },
      { tag: 'red' },
      { batch: 'b1' },
      { status: 'queued' },
      { status: 'uploading' },
      { folder: 'photos', tag: 'red' },
      { folder: 'docs', status: 'uploading' },
      { tag: 'red', batch: 'b2' },
      { folder: 'nothing-here' },
    ];
    const expectedFor = (q: ListQuery) =>
      created
        .filter(
          (f) =>
            (q.folder === undefined || f.folder === q.folder) &&
            (q.tag === undefined || f.tags.includes(q.tag)) &&
            (q.batch === undefined || f.batch === q.batch) &&
            (q.status === undefined || f.status === q.status),
        )
        .map((f) => f.id)
        .reverse();
    /** Pages of `limit` through `replicas` in turn (page 1 from the first, page 2 from the next…). */
    const paginate = async (q: ListQuery, limit: number, replicas: FerryProcess[]) => {
      const ids: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; ; page++) {
        expect(page, `pages of ${JSON.stringify(q)}`).toBeLessThan(10);
        const replica = replicas[page % replicas.length]!;
        const got = await listFiles(replica.url, {
          ...q,
          limit: String(limit),
          ...(cursor !== undefined ? { cursor } : {}),
        });
        expect(got.data.length).toBeLessThanOrEqual(limit);
        ids.push(...got.data.map((f) => f.id));
        if (got.next_cursor === null) break;
        expect(got.data.length).toBe(limit);
        cursor = got.next_cursor;
      }
      return ids;
    };
    for (const q of queries) {
      const expected = expectedFor(q);
      for (const limit of [2, 3, 1000]) {
        for (const order of [[a], [b], [a, b], [b, a]]) {
          expect(await paginate(q, limit, order), `${JSON.stringify(q)} limit ${limit}`).toEqual(expected);
        }
      }
    }
    // An incomplete upload listed through the other replica shows the bytes received so far.
    const partial = (await listFiles(a.url, { status: 'uploading', folder: 'docs' })).data[0]!;
    expect(partial).toMatchObject({ id: created[3]!.id, received_bytes: 1000, size: tiny.size });
  });

  it('`ferry worker` and `ferry reindex` without FERRY_REDIS_URL exit 2 with a line saying it is needed', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ferry-test-no-redis-'));
    try {
      for (const command of ['worker', 'reindex']) {
        const run = await runCli([command], { FERRY_DATA_DIR: dataDir }, 10_000);
        expect(run.code, run.logs).toBe(2);
        expect(run.stderr).toContain(`ferry ${command}: needs FERRY_REDIS_URL`);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
