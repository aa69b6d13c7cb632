/**
 * Distributed mode end to end: three real Ferry processes on one real redis-server, sharing a data
 * directory, behind a round-robin TCP proxy that gives every HTTP request a connection of its own,
 * so consecutive requests of one upload land on different replicas (checked in each replica's
 * request log). Every upload is verified by SHA-256 against its source.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ClientRequest } from 'node:http';
import { Upload } from 'tus-js-client';
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
import { eventually, sleep } from '../helpers/poll.js';
import { stallingSource, type StallingSource } from '../helpers/stalling-source.js';
import {
  httpRequest,
  patchHeaders,
  tusCreate,
  tusHead,
  tusPatchFile,
  tusUpload,
  uploadId,
  type RawResponse,
} from '../helpers/tus.js';

const MiB = 1024 * 1024;

let big: RandomFile; // 16 MiB, tus-js-client uploads
let medium: RandomFile; // 12 MiB, raw PATCH scenarios
let rivalX: RandomFile; // 8 MiB, two clients on one upload
let rivalY: RandomFile; // 8 MiB, different bytes
const sources: StallingSource[] = [];
const pending: SlowPatch[] = [];

beforeAll(async () => {
  [big, medium, rivalX, rivalY] = await Promise.all([
    randomFile(16 * MiB),
    randomFile(12 * MiB),
    randomFile(8 * MiB),
    randomFile(8 * MiB),
  ]);
}, 30_000);
afterEach(async () => {
  for (const s of sources.splice(0)) s.release();
  for (const p of pending.splice(0)) p.cancel();
  await cleanupClusters();
  await cleanupFerries();
});
afterAll(cleanupTempFiles);

const uploadUrlOn = (replica: FerryProcess | Cluster, id: string): string => `${replica.url}/files/${id}`;

/** tus-js-client options that retry like its default rule and record every exchange. */
function recordingTusOptions(): { options: ConstructorParameters<typeof Upload>[1]; exchanges: string[] } {
  const exchanges: string[] = [];
  return {
    exchanges,
    options: {
      retryDelays: RETRY_DELAYS,
      onAfterResponse: (req, res) => {
        const id = req.getMethod() === 'POST' ? '' : ` ${req.getURL().split('/').pop()}`;
        const sentOffset = req.getHeader('Upload-Offset');
        exchanges.push(
          `${req.getMethod()}${id}${sentOffset !== undefined ? ` @${sentOffset}` : ''} → ${res.getStatus()} ` +
            `${res.getHeader('Upload-Offset') ?? ''} ${res.getBody().trim()}`.trimEnd(),
        );
      },
    },
  };
}

/**
 * Starts a tus-js-client upload of `src` through the cluster's proxy in 512 KiB chunks with `options`;
 * `finished` resolves on success and rejects with the client's error.
 */
function startChunkedUpload(
  cluster: Cluster,
  src: StallingSource,
  options: ConstructorParameters<typeof Upload>[1],
): { upload: Upload; finished: Promise<void> } {
  let upload!: Upload;
  const finished = new Promise<void>((resolve, reject) => {
    upload = new Upload(src.file, {
      ...options,
      chunkSize: 512 * 1024,
      fileReader: src.fileReader,
      endpoint: `${cluster.url}/files/`,
      onSuccess: () => resolve(),
      onError: reject,
    });
    upload.start();
  });
  return { upload, finished };
}

type PatchOutcome = RawResponse | { status: 0; headers: Record<string, never>; body: string };

interface SlowPatch {
  /** The response (status 0 with the error text when the connection failed first). */
  readonly response: Promise<PatchOutcome>;
  /** Body bytes written to the socket so far. */
  sent(): number;
  /** Resolves once `stallAt` body bytes have been written (or the request ended first). */
  readonly reached: Promise<void>;
  /** Destroy the request (cleanup). */
  cancel(): void;
}

/**
 * A raw PATCH of `source[offset…]` (Content-Length: all of it) that writes `step` bytes every
 * `everyMs` ms, up to `stallAt` body bytes, and then stalls without ending; it stops writing as soon
 * as a response arrives.
 */
function slowPatch(
  url: string,
  source: Buffer,
  offset: number,
  opts: { stallAt?: number; step?: number; everyMs?: number } = {},
): SlowPatch {
  const total = source.length - offset;
  const stallAt = Math.min(opts.stallAt ?? total, total);
  const step = opts.step ?? 256 * 1024;
  const everyMs = opts.everyMs ?? 20;
  let sent = 0;
  let done = false;
  let request: ClientRequest | undefined;
  let reachedFn!: () => void;
  const reached = new Promise<void>((r) => (reachedFn = r));
  const response = httpRequest('PATCH', url, patchHeaders(offset, total), (req) => {
    request = req;
    const tick = (): void => {
      if (done || req.destroyed) return;
      if (sent >= stallAt) {
        reachedFn();
        if (sent >= total) req.end();
        return;
      }
      const n = Math.min(step, stallAt - sent);
      req.write(source.subarray(offset + sent, offset + sent + n));
      sent += n;
      setTimeout(tick, everyMs);
    };
    tick();
  })
    .catch((err: unknown): PatchOutcome => ({ status: 0, headers: {}, body: String(err) }))
    .finally(() => {
      done = true;
      reachedFn();
    });
  const patch: SlowPatch = {
    response,
    sent: () => sent,
    reached,
    cancel: () => {
      done = true;
      request?.destroy();
    },
  };
  pending.push(patch);
  return patch;
}

const offsetOf = (res: PatchOutcome): number | undefined => {
  const h = res.headers['upload-offset'];
  return typeof h === 'string' ? Number(h) : undefined;
};

describe('Ferry replicas sharing Redis and a data directory', () => {
  it('tus-js-client uploads a 16 MiB file in 512 KiB chunks through a round-robin proxy: consecutive PATCHes land on different replicas and the stored file is byte-identical', async () => {
    const cluster = await startCluster({ replicas: 3 });
    const { id, patches, retries } = await uploadInChunksThroughCluster(cluster, big, 'replicas.bin');

    // 32 PATCHes over fresh connections: the proxy spread them over all three replicas.
    const served = cluster.replicasThatServed(id, 'PATCH', 204);
    expect(served.length, logsFor(cluster, id)).toBeGreaterThanOrEqual(2);
    expect(patches.length, logsFor(cluster, id)).toBe(32);
    expect(
      patches.every((e) => e.status === 204),
      logsFor(cluster, id),
    ).toBe(true);
    expect(retries).toEqual([]);
    console.log(
      `[replicas] PATCHes per replica: ${requestsPerReplica(cluster, id, 'PATCH')
        .map((lines) => lines.length)
        .join('/')}, connections per target ${cluster.proxy.connectionsPerTarget().join('/')}`,
    );

    // Every replica serves the same bytes.
    for (const replica of cluster.replicas) await expectStoredOn(replica, id, big);
  }, 60_000);

  it('a HEAD on replica B while replica A holds the upload in a stalled PATCH is answered 200 within seconds with the offset A stored, A answers its PATCH 204 with that offset, and the upload finishes on B byte-identical', async () => {
    const cluster = await startCluster({ replicas: 3 });
    const [a, b, c] = cluster.replicas as [FerryProcess, FerryProcess, FerryProcess];
    const source = await readFile(medium.path);
    const { url } = await tusCreate(a.url, medium.size);
    const id = uploadId(url);

    const patch = slowPatch(uploadUrlOn(a, id), source, 0, { stallAt: 3 * MiB });
    await patch.reached;
    await sleep(300); // the 3 MiB cross loopback and reach A's disk
    const sent = patch.sent();
    expect(sent).toBe(3 * MiB);

    const started = Date.now();
    const head = await tusHead(uploadUrlOn(b, id));
    const headMs = Date.now() - started;
    expect(head.status).toBe(200);
    expect(headMs, `HEAD on B took ${headMs} ms`).toBeLessThan(5000);
    const offset = head.offset!;
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(sent);

    // A stopped its PATCH to let B in, keeping what it had, and said so.
    const res = await patch.response;
    expect(res.status, res.body).toBe(204);
    expect(offsetOf(res)).toBe(offset);
    // Stable, and the same on every replica.
    for (const replica of [a, b, c]) expect((await tusHead(uploadUrlOn(replica, id))).offset).toBe(offset);
    console.log(`[replicas] HEAD on B answered in ${headMs} ms with offset ${offset} (A had been sent ${sent})`);

    // The upload continues on B from there.
    const rest = await tusPatchFile(uploadUrlOn(b, id), medium.path, offset);
    expect(rest.status, rest.response.body).toBe(204);
    expect(rest.offset).toBe(medium.size);

    expect(
      await eventually(
        () => cluster.replicasThatServed(id, 'PATCH', 204),
        (served) => served.length >= 2,
      ),
      logsFor(cluster, id),
    ).toEqual([0, 1]);
    expect(cluster.requestLog(0, id).find((e) => e.method === 'PATCH')).toMatchObject({
      status: 204,
      bytes_received: offset,
    });
    await expectStoredOn(c, id, medium);
  }, 60_000);

  it('after SIGKILL of the replica receiving a PATCH, its lock expires within the TTL, HEAD on another replica reports the stored offset, and tus-js-client resumes through the proxy (skipping the dead replica) to a byte-identical file', async () => {
    const cluster = await startCluster({ replicas: 3 });
    const [a, b, c] = cluster.replicas as [FerryProcess, FerryProcess, FerryProcess];
    const source = await readFile(medium.path);
    const { url } = await tusCreate(a.url, medium.size);
    const id = uploadId(url);

    const patch = slowPatch(uploadUrlOn(a, id), source, 0, { stallAt: 4 * MiB + 12_345 });
    await patch.reached;
    await sleep(300);
    const sent = patch.sent();
    await a.kill();
    const killedAt = Date.now();
    const res = await patch.response;
    expect(res.status, 'the PATCH on the killed replica got no answer').toBe(0);

    // The dead replica's lock is still in Redis: B's HEAD waits for it to expire (TTL 10 s).
    const { offset, waitedMs } = await headAfterLockExpiry(uploadUrlOn(b, id), killedAt);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(sent);
    expect((await tusHead(uploadUrlOn(c, id))).offset).toBe(offset);
    console.log(`[replicas] after SIGKILL: HEAD answered after ${waitedMs} ms, offset ${offset} of ${sent} sent`);

    // The resume went through the live replicas only; the proxy skipped the dead one.
    await resumeSkippingDeadReplica0(cluster, id, medium, MiB);
    const served = await eventually(
      () => cluster.replicasThatServed(id, 'PATCH', 204),
      (replicas) => replicas.length >= 1,
    );
    expect(served, logsFor(cluster, id)).not.toContain(0);
    expect(served.length, logsFor(cluster, id)).toBeGreaterThanOrEqual(1);
    await expectStoredOn(b, id, medium);
    await expectStoredOn(c, id, medium);
  }, 60_000);

  it('a Redis restart (stop, start empty) during a tus-js-client upload in 512 KiB chunks: requests on upload URLs get 423 meanwhile (retried by tus-js-client on the same URL), /readyz says redis unavailable, the upload tus-js-client finishes is byte-identical, the interrupted upload is intact (same offset on every replica from the durable record) and resumes to a byte-identical file', async () => {
    const cluster = await startCluster({ replicas: 3 });
    const { redis, replicas } = cluster;

    // An upload that sits half-done across the restart: its record must come back from disk.
    const idle = await tusCreate(cluster.url, medium.size);
    const idleId = uploadId(idle.url);
    const idlePart = await tusPatchFile(idle.url, medium.path, 0, 5 * MiB + 7);
    expect(idlePart.status).toBe(204);

    // The active upload stalls mid-PATCH (the lock held on some replica), then Redis goes away.
    const src = stallingSource(big.path, 5 * MiB + 12_345);
    sources.push(src);
    const tus = recordingTusOptions();
    const { upload, finished: first } = startChunkedUpload(cluster, src, tus.options);
    await src.stalled;
    await sleep(200);
    expect(upload.url).toBeTruthy();
    const id = uploadId(upload.url!);

    await redis.stop();
    src.release();
    await sleep(500);
    for (const replica of replicas) {
      const ready = await httpRequest('GET', `${replica.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body)).toMatchObject({ data: { checks: { redis: 'unavailable' } } });
    }
    expect((await tusHead(idle.url)).status).toBe(423);
    await sleep(1000);
    await redis.start();

    const outcome = await first.then(
      () => 'finished' as const,
      (err: unknown) => `gave up: ${String(err).split('\n')[0]}`,
    );
    const finalId = uploadId(upload.url!);
    console.log(
      `[replicas] tus-js-client across the Redis restart: ${outcome}` +
        (finalId === id ? ' on its upload URL' : ` as a NEW upload ${finalId} (the interrupted one is ${id})`) +
        `\n${tus.exchanges.join('\n')}`,
    );
    expect(
      tus.exchanges.some((e) => / → 423 /.test(e)),
      tus.exchanges.join('\n'),
    ).toBe(true);
    if (outcome !== 'finished') {
      await tusUpload(createReadStream(big.path), { ...tus.options, chunkSize: 512 * 1024, uploadUrl: upload.url! });
    }
    // Whatever upload the client finished holds the source, on every replica.
    for (const replica of replicas) await expectStoredOn(replica, finalId, big);
    await eventually(
      () => cluster.replicasThatServed(finalId, 'PATCH', 204).length,
      (n) => n >= 2,
    );

    // Every replica reports the same offsets after the restart, for the upload the client was
    // sending and for the idle one (Redis restarted empty: both records came back from disk)…
    const offsets = await Promise.all(replicas.map((r) => tusHead(uploadUrlOn(r, id))));
    expect(
      new Set(offsets.map((h) => `${h.status} ${h.offset}`)).size,
      JSON.stringify(offsets.map((h) => h.offset)),
    ).toBe(1);
    expect(offsets[0]!.status).toBe(200);
    for (const replica of replicas) {
      const i = await tusHead(uploadUrlOn(replica, idleId));
      expect([i.status, i.offset, i.length]).toEqual([200, 5 * MiB + 7, medium.size]);
    }
    // …and nothing is corrupt: both resume (through the proxy, on other replicas) to byte-identical files.
    if (offsets[0]!.offset! < big.size) {
      await tusUpload(createReadStream(big.path), {
        ...tus.options,
        chunkSize: 2 * MiB,
        uploadUrl: uploadUrlOn(cluster, id),
      });
    }
    await expectStoredOn(replicas[1]!, id, big);
    const rest = await tusPatchFile(uploadUrlOn(cluster, idleId), medium.path, 5 * MiB + 7);
    expect(rest.status).toBe(204);
    await expectStoredOn(replicas[0]!, idleId, medium);
    expect((await httpRequest('GET', `${replicas[0]!.url}/readyz`)).status).toBe(200);
  }, 60_000);

  // tus-js-client 4.3.1 (lib/upload.js, `_resumeUpload`) treats any HEAD answer that is neither 2xx
  // nor 423 as "this upload is gone" and, having an endpoint, creates a new upload and sends the whole
  // file again (tus-js-client issues #579 and #895). With 503 on HEAD during a Redis outage a client
  // started over from byte 0; Ferry answers requests on upload URLs 423 while Redis is away instead.
  it('an in-flight tus-js-client upload interrupted by a Redis outage resumes on its own upload URL once Redis is back, instead of starting over as a new upload', async () => {
    const cluster = await startCluster({ replicas: 3 });
    const src = stallingSource(medium.path, 2 * MiB + 12_345);
    sources.push(src);
    const tus = recordingTusOptions();
    const { upload, finished: done } = startChunkedUpload(cluster, src, tus.options);
    await src.stalled;
    await sleep(200);
    const created = upload.url!;
    expect(created).toBeTruthy();

    await cluster.redis.stop();
    src.release();
    await sleep(1500);
    await cluster.redis.start();
    await done;

    const log = tus.exchanges.join('\n');
    expect(upload.url, log).toBe(created);
    expect(tus.exchanges.filter((e) => /^POST → 201/.test(e)).length, log).toBe(1);
    await expectStoredOn(cluster.replicas[2]!, uploadId(created), medium);
  }, 60_000);

  it('a DELETE on one replica makes the upload 404 at once on every other replica (HEAD, PATCH, GET)', async () => {
    const cluster = await startCluster({ replicas: 3 });
    const [a, b, c] = cluster.replicas as [FerryProcess, FerryProcess, FerryProcess];
    const { url } = await tusCreate(b.url, medium.size);
    const id = uploadId(url);
    expect((await tusPatchFile(uploadUrlOn(c, id), medium.path, 0, 2 * MiB)).status).toBe(204);
    // Every replica has looked at it (and could have cached it).
    for (const replica of [a, b, c]) expect((await tusHead(uploadUrlOn(replica, id))).offset).toBe(2 * MiB);

    const del = await httpRequest('DELETE', uploadUrlOn(a, id), { 'Tus-Resumable': '1.0.0' });
    expect(del.status, del.body).toBe(204);
    const started = Date.now();
    expect((await tusHead(uploadUrlOn(b, id))).status).toBe(404);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await tusHead(uploadUrlOn(c, id))).status).toBe(404);
    // A small body: the refusal comes before the body is read, and a big one is cut off unread.
    expect((await tusPatchFile(uploadUrlOn(c, id), medium.path, 2 * MiB, 2 * MiB + 1024)).status).toBe(404);
    expect((await httpRequest('GET', uploadUrlOn(b, id))).status).toBe(404);
  }, 60_000);

  it('two clients PATCHing the same upload at offset 0 on two replicas at once with different bytes: exactly one stores bytes, the other gets 409 (or is stopped), and after HEAD+PATCH the file is byte-identical to the winner’s source with nothing of the loser’s', async () => {
    const cluster = await startCluster({ replicas: 3 });
    const [a, b, c] = cluster.replicas as [FerryProcess, FerryProcess, FerryProcess];
    const [x, y] = await Promise.all([readFile(rivalX.path), readFile(rivalY.path)]);
    const { url } = await tusCreate(c.url, rivalX.size);
    const id = uploadId(url);

    // 128 KiB every 40 ms: 8 MiB would take about 2.5 s, longer than the 1 s a holder gets to finish.
    const pace = { step: 128 * 1024, everyMs: 40 };
    const onA = slowPatch(uploadUrlOn(a, id), x, 0, pace);
    const onB = slowPatch(uploadUrlOn(b, id), y, 0, pace);
    const [resA, resB] = await Promise.all([onA.response, onB.response]);
    const outcomes = [
      { replica: 'A', res: resA, file: rivalX },
      { replica: 'B', res: resB, file: rivalY },
    ];
    const summary = outcomes
      .map((o) => `${o.replica}: ${o.res.status} offset=${offsetOf(o.res)} ${o.res.body.trim()}`)
      .join('; ');
    console.log(`[replicas] two clients: ${summary}`);

    const stored = (await tusHead(uploadUrlOn(c, id))).offset!;
    const winners = outcomes.filter((o) => o.res.status === 204 && offsetOf(o.res)! > 0);
    expect(winners.length, summary).toBe(1);
    const winner = winners[0]!;
    expect(offsetOf(winner.res), summary).toBe(stored);
    const loser = outcomes.find((o) => o !== winner)!;
    // The loser stored nothing: refused (409 after the winner moved the offset), or stopped.
    expect([0, 204, 409, 423], summary).toContain(loser.res.status);
    if (loser.res.status === 204) expect(offsetOf(loser.res), summary).toBe(0);

    const rest = await tusPatchFile(uploadUrlOn(cluster, id), winner.file.path, stored);
    expect(rest.status, rest.response.body).toBe(204);
    expect(rest.offset).toBe(rivalX.size);
    await expectStoredOn(a, id, winner.file);
    await expectStoredOn(b, id, winner.file);
  }, 60_000);
});
