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
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFerry, type FerryProcess, type StartFerryOptions } from './ferry-process.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { startRoundRobinProxy, type RoundRobinProxy, type RoundRobinProxyOptions } from './round-robin-proxy.js';

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
