/**
 * A multi-replica Ferry rig for end-to-end tests: a real redis-server, N Ferry processes in
 * distributed mode (`FERRY_REDIS_URL`) sharing one data directory, each on its own port, and a
 * round-robin TCP proxy in front of them (a load balancer without sticky sessions).
 *
 *   import { cleanupClusters, startCluster, requestLog } from '../helpers/cluster.js';
 *   afterAll(cleanupClusters);                 // or afterEach
 *   const cluster = await startCluster({ replicas: 3, env: { FERRY_MAX_SIZE: '1GiB' } });
 *   await tusUpload(stream, { endpoint: `${cluster.url}/files/`, ... });
 *   cluster.replicasThatServed(id, 'PATCH');    // e.g. [0, 1, 2]
 *   await cluster.replicas[1]!.kill();          // a crash; the proxy skips it from now on
 *   await cluster.restartReplica(1);            // same port, same data directory, same Redis
 *   await cluster.stop();
 *
 * Later suites (S3, registry) pass their own settings through `env`; `dataDir` is still created and
 * shared (it is where disk-backed replicas keep bytes and durable records).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startFerry, type FerryProcess, type StartFerryOptions } from './ferry-process.js';
import { sha256AndSizeOfUrl, type RandomFile } from './files.js';
import { eventually } from './poll.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { startRoundRobinProxy, type RoundRobinProxy, type RoundRobinProxyOptions } from './round-robin-proxy.js';
import { tusHead, tusUpload, uploadId } from './tus.js';

/** tus-js-client `retryDelays` for uploads through a cluster (it resets its retry counter whenever an attempt made progress). */
export const CLUSTER_RETRY_DELAYS = [100, 250, 500, 1000, 1000, 1500, 2000, 2000, 3000];

export interface ClusterOptions {
  /** Number of Ferry replicas. Default 3. */
  replicas?: number;
  /** Extra environment for every replica (`FERRY_REDIS_URL` and `FERRY_DATA_DIR` are set by the rig). */
  env?: Record<string, string | undefined>;
  /** Options for the proxy (its targets are the replicas). Default: `closeAfterResponse: true`. */
  proxy?: Omit<RoundRobinProxyOptions, 'targetPorts'>;
  /** Passed to every `startFerry`. */
  healthTimeoutMs?: number;
}

/** One JSON request line of a replica's log (see src/http/middleware/request-log.ts). */
export interface RequestLogEntry {
  method: string;
  path: string;
  upload_id?: string;
  status?: number;
  completed?: boolean;
  bytes_received?: number;
  duration_ms?: number;
}

export interface Cluster {
  readonly redis: RedisServer;
  /** The replicas, in the proxy's target order. A restarted replica replaces its entry. */
  readonly replicas: FerryProcess[];
  readonly proxy: RoundRobinProxy;
  /** The proxy's base URL, e.g. `http://127.0.0.1:40001` (no trailing slash). */
  readonly url: string;
  /** The data directory every replica shares. */
  readonly dataDir: string;
  /** Stop replica `index` (if running) and start it again on the same port, data directory and Redis. */
  restartReplica(index: number, signal?: NodeJS.Signals): Promise<FerryProcess>;
  /**
   * Request lines replica `index` has logged so far (from stdout, including earlier incarnations
   * before `restartReplica`), optionally for one upload.
   */
  requestLog(index: number, uploadId?: string): RequestLogEntry[];
  /** Indices of the replicas that logged a `method` request for `uploadId` (any status unless given). */
  replicasThatServed(uploadId: string, method: string, status?: number): number[];
  /** Proxy, replicas (SIGKILL), Redis, then the shared data directory. Idempotent. */
  stop(): Promise<void>;
}

const clusters = new Set<Cluster>();

/** The request lines in a Ferry log (`ferry.logs()`), optionally only those of one upload. */
export function requestLog(logs: string, uploadId?: string): RequestLogEntry[] {
  const entries: RequestLogEntry[] = [];
  for (const line of logs.split('\n')) {
    if (!line.startsWith('{')) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    const entry = parsed as Partial<RequestLogEntry> & { msg?: string };
    if (entry.msg !== 'request' || typeof entry.method !== 'string') continue;
    if (uploadId !== undefined && entry.upload_id !== uploadId) continue;
    entries.push(entry as RequestLogEntry);
  }
  return entries;
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const count = opts.replicas ?? 3;
  if (count < 1) throw new Error('startCluster: at least one replica');
  const dataDir = await mkdtemp(join(tmpdir(), 'ferry-test-cluster-'));
  let redis: RedisServer | undefined;
  const replicas: FerryProcess[] = [];
  let proxy: RoundRobinProxy | undefined;
  let stopped = false;
  // Logs of replicas that were restarted, so `requestLog` still covers what they served.
  const earlierLogs: string[] = [];
  const logsOf = (index: number): string => {
    const replica = replicas[index];
    if (!replica) throw new Error(`no replica ${index}`);
    return (earlierLogs[index] ?? '') + replica.logs();
  };

  const replicaOptions = (): StartFerryOptions => ({
    dataDir,
    env: { ...opts.env, FERRY_REDIS_URL: redis!.url },
    ...(opts.healthTimeoutMs !== undefined ? { healthTimeoutMs: opts.healthTimeoutMs } : {}),
  });

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await proxy?.close();
    await Promise.all(replicas.map((r) => r.kill()));
    await redis?.stop();
    if (process.env.FERRY_TEST_KEEP_DATA) console.log(`[cluster] kept data dir: ${dataDir}`);
    else await rm(dataDir, { recursive: true, force: true });
  };

  try {
    redis = await startRedis();
    // One after another: the first replica may create the directory layout the others then share.
    for (let i = 0; i < count; i++) replicas.push(await startFerry(replicaOptions()));
    proxy = await startRoundRobinProxy({ ...opts.proxy, targetPorts: replicas.map((r) => r.port) });
  } catch (error) {
    await stop();
    throw error;
  }

  const cluster: Cluster = {
    redis,
    replicas,
    proxy,
    url: proxy.url,
    dataDir,
    async restartReplica(index, signal = 'SIGTERM') {
      const old = replicas[index];
      if (!old) throw new Error(`no replica ${index}`);
      if (old.isRunning()) await old.stop(signal);
      earlierLogs[index] = (earlierLogs[index] ?? '') + old.logs() + '\n';
      const fresh = await startFerry({ ...replicaOptions(), port: old.port });
      replicas[index] = fresh;
      return fresh;
    },
    requestLog: (index, uploadId) => requestLog(logsOf(index), uploadId),
    replicasThatServed(uploadId, method, status) {
      const served: number[] = [];
      replicas.forEach((_replica, index) => {
        const hit = requestLog(logsOf(index), uploadId).some(
          (e) => e.method === method && (status === undefined || e.status === status),
        );
        if (hit) served.push(index);
      });
      return served;
    },
    stop: async () => {
      clusters.delete(cluster);
      await stop();
    },
  };
  clusters.add(cluster);
  return cluster;
}

/** Stop every cluster this worker started that is still up (for afterEach/afterAll). */
export async function cleanupClusters(): Promise<void> {
  const all = [...clusters];
  clusters.clear();
  await Promise.all(all.map((c) => c.stop()));
}

/** Each replica's `method` request lines for one upload, in replica order. */
export function requestsPerReplica(cluster: Cluster, id: string, method: string): RequestLogEntry[][] {
  return cluster.replicas.map((_r, i) => cluster.requestLog(i, id).filter((e) => e.method === method));
}

/** Each replica's request lines for one upload, for failure messages. */
export function requestLogSummary(cluster: Cluster, id: string): string {
  return cluster.replicas
    .map((_r, i) => {
      const lines = cluster.requestLog(i, id).map((e) => `  ${e.method} ${e.status} bytes=${e.bytes_received ?? '-'}`);
      return `replica ${i}:\n${lines.join('\n')}`;
    })
    .join('\n');
}

/**
 * tus-js-client uploads `file` through the cluster's proxy in 512 KiB chunks, recording (and refusing)
 * every retry, checks that the upload URL is on the proxy, and waits until the replicas have logged a
 * PATCH per chunk (request log lines are written just after the response). Resolves with the upload
 * id, those PATCH lines and the retries.
 */
export async function uploadInChunksThroughCluster(
  cluster: Cluster,
  file: RandomFile,
  filename: string,
): Promise<{ id: string; patches: RequestLogEntry[]; retries: string[] }> {
  const chunkSize = 512 * 1024;
  const retries: string[] = [];
  const { url } = await tusUpload(createReadStream(file.path), {
    endpoint: `${cluster.url}/files/`,
    chunkSize,
    retryDelays: CLUSTER_RETRY_DELAYS,
    metadata: { filename },
    onShouldRetry: (err, attempt) => {
      retries.push(`attempt ${attempt}: ${err.originalResponse?.getStatus() ?? 'network'} ${err.message}`);
      return false;
    },
  });
  expect(url.startsWith(`${cluster.url}/files/`)).toBe(true);
  const id = uploadId(url);
  const chunks = Math.ceil(file.size / chunkSize);
  const patches = await eventually(
    () => requestsPerReplica(cluster, id, 'PATCH').flat(),
    (lines) => lines.length >= chunks,
  );
  return { id, patches, retries };
}

/**
 * HEAD `url` on a live replica after the replica holding the upload's lock was SIGKILLed at `killedAt`:
 * the dead replica's lock is still in Redis, so the HEAD waits for it to expire (TTL 10 s). Expects
 * 200 within 15 s of the kill; resolves with the offset reported and how long that took.
 */
export async function headAfterLockExpiry(
  url: string,
  killedAt: number,
): Promise<{ offset: number; waitedMs: number }> {
  const head = await tusHead(url);
  const waitedMs = Date.now() - killedAt;
  expect(head.status, head.response.body).toBe(200);
  expect(waitedMs, `HEAD answered ${waitedMs} ms after the kill`).toBeLessThan(15_000);
  return { offset: head.offset!, waitedMs };
}

/**
 * tus-js-client resumes upload `id` from `file` in `chunkSize` chunks through the cluster's proxy after
 * replica 0 was killed: it finishes on the same upload URL, and the proxy refused at least one
 * connection to the dead replica (the resume went through the live replicas only).
 */
export async function resumeSkippingDeadReplica0(
  cluster: Cluster,
  id: string,
  file: RandomFile,
  chunkSize: number,
): Promise<void> {
  const uploadUrl = `${cluster.url}/files/${id}`;
  const { url: resumed } = await tusUpload(createReadStream(file.path), {
    uploadUrl,
    chunkSize,
    retryDelays: CLUSTER_RETRY_DELAYS,
  });
  expect(resumed).toBe(uploadUrl);
  expect(cluster.proxy.refusalsPerTarget()[0]).toBeGreaterThanOrEqual(1);
}

/** `GET /files/<id>` on `replica` serves exactly the bytes of `file`. */
export async function expectStoredOn(replica: FerryProcess, id: string, file: RandomFile): Promise<void> {
  const got = await sha256AndSizeOfUrl(`${replica.url}/files/${id}`);
  expect(got, `GET /files/${id} on port ${replica.port}`).toEqual({ sha256: file.sha256, bytes: file.size });
}
