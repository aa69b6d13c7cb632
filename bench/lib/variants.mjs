// The servers under comparison, behind one interface so the workloads and the
// measurement code don't care which one they talk to:
//
//   upload(file|buffer) -> ref     store one upload (the timed part)
//   uploadParallel(file) -> refs   ferry only, with `extensions` (see lib/extensions.mjs)
//   verify(ref, expected)          sha256 of what the server stored == the source
//   cleanup(refs)                  remove stored uploads so the disk doesn't fill
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { waitNoPending } from './processing.mjs';
import { resetPeakRss, sample } from './procstat.mjs';
import { startRedis } from './redis.mjs';
import { startFerry, startFerryWorker, startReferenceServer, stopServer } from './servers.mjs';
import * as tus from './tus-client.mjs';
import { mapConcurrent, sha256File } from './util.mjs';

const benchDir = path.resolve(import.meta.dirname, '..');
const repoRoot = path.resolve(benchDir, '..');
// Ferry's entry as users run it (`npm start`, `ferry`, the image): it sizes libuv's thread pool first.
export const FERRY_CLI = path.join(repoRoot, 'dist', 'launcher.cjs');

export const VARIANT_NAMES = [
  'plain',
  'bare-tus',
  'ferry',
  'ferry-foundation',
  'ferry-redis',
  'ferry-foundation-redis',
];

/** Built from an earlier commit (lib/foundation.mjs). */
export const FOUNDATION_VARIANTS = ['ferry-foundation', 'ferry-foundation-redis'];

/** On their own redis-server (lib/redis.mjs). */
export const REDIS_VARIANTS = ['ferry-redis', 'ferry-foundation-redis'];

/** Ferry pairs each variant with the one built from the foundation: their ratio is what the change costs. */
export const FOUNDATION_OF = { ferry: 'ferry-foundation', 'ferry-redis': 'ferry-foundation-redis' };

/**
 * Redis mode's processing happens in `ferry worker` only: this pair (server + one worker, its own
 * redis-server) runs the processing workloads, started when ferry-redis is, so that ferry-redis
 * itself measures the upload path with no worker.
 */
export const PROCESSING_PAIR = 'ferry-redis+worker';

export function mismatch(what, expected, got) {
  return new Error(
    `verification failed for ${what}: expected ${expected.size} B sha256 ${expected.sha256}, got ${got.size} B sha256 ${got.sha256}`,
  );
}

async function verifyDiskFile(file, expected) {
  const { size } = await stat(file);
  const got = { size, sha256: await sha256File(file) };
  if (got.size !== expected.size || got.sha256 !== expected.sha256) throw mismatch(file, expected, got);
}

/** Plain node:http PUT-to-file; files are named by the bench, so we know where they are. */
async function plain(tmp) {
  const dataDir = path.join(tmp, 'plain-data');
  await mkdir(dataDir);
  const srv = await startReferenceServer({
    script: path.join(benchDir, 'servers', 'plain.mjs'),
    dataDir,
    logFile: path.join(tmp, 'plain.log'),
  });
  let n = 0;
  const put = async (body, length, agent) => {
    const name = `u${++n}`;
    await tus.plainPut(`http://127.0.0.1:${srv.port}/upload/${name}`, body, length, { agent });
    return { path: path.join(dataDir, name) };
  };
  return {
    name: 'plain',
    protocol: 'plain',
    ...srv,
    // The plain server has no chunked mode: one PUT, whatever chunkSize says. The first `size`
    // bytes of the file, as the tus client sends them (the RSS workload uploads prefixes).
    uploadFile: (file, size, { agent }) => put(createReadStream(file, { start: 0, end: size - 1 }), size, agent),
    uploadBuffer: (buf, { agent }) => put(buf, buf.length, agent),
    verify: (ref, expected) => verifyDiskFile(ref.path, expected),
    cleanup: (refs) => Promise.all(refs.map((r) => rm(r.path, { force: true }))),
    stop: () => stopServer(srv.child),
  };
}

/** Stock @tus/server + FileStore: the FileStore keeps <dir>/<id> and <dir>/<id>.json. */
async function bareTus(tmp) {
  const dataDir = path.join(tmp, 'bare-tus-data');
  await mkdir(dataDir);
  const srv = await startReferenceServer({
    script: path.join(benchDir, 'servers', 'bare-tus.mjs'),
    dataDir,
    logFile: path.join(tmp, 'bare-tus.log'),
  });
  const endpoint = `http://127.0.0.1:${srv.port}/files`;
  const ref = (url) => ({ url, path: path.join(dataDir, path.posix.basename(new URL(url).pathname)) });
  return {
    name: 'bare-tus',
    protocol: 'tus',
    ...srv,
    uploadFile: async (file, size, opts) => ref(await tus.tusUploadFile(endpoint, file, size, opts)),
    uploadBuffer: async (buf, opts) => ref(await tus.tusUploadBuffer(endpoint, buf, opts)),
    uploadBufferInCreation: async (buf, opts) => ref(await tus.tusCreateWithUpload(endpoint, buf, opts)),
    verify: (r, expected) => verifyDiskFile(r.path, expected),
    // Removing the files directly is cheaper than DELETE and the FileStore keeps no
    // state about an upload in memory once its requests are done.
    cleanup: (refs) =>
      Promise.all(refs.flatMap((r) => [rm(r.path, { force: true }), rm(`${r.path}.json`, { force: true })])),
    stop: () => stopServer(srv.child),
  };
}

/**
 * Ferry: `node <cli> serve`, by default the working tree's dist/launcher.cjs. We don't know (or want to
 * depend on) its storage layout, so verification downloads through GET and cleanup uses tus DELETE.
 * `startFerryVariant` makes every Ferry variant, here and in lib/s3.mjs (ferry-s3), each with its
 * own name, data dir and log:
 *
 *   cli, cwd     which build runs (the foundation's lives in bench/.cache/, lib/foundation.mjs)
 *   env          added to the environment (the S3 settings of ferry-s3)
 *   redis        a started lib/redis.mjs server: distributed mode (FERRY_REDIS_URL); without it the
 *                variant is embedded, whatever FERRY_REDIS_URL says in the bench's environment
 *   worker       also start `node <cli> worker` with the server's environment (Redis mode)
 *   processing   who processes completed files, for lib/processing.mjs: 'in-process' (embedded
 *                Ferry since the file registry), 'worker', or null (the foundation has no
 *                processing; ferry-redis without a worker leaves its files queued)
 *   uploadPath   false: the variant takes part in the processing workloads only
 *   cpuProfDir   a directory: run with `node --cpu-prof` and write the V8 CPU profile there on exit
 *   pollMs, timeoutS  how settle() polls for pending processing
 */
export async function startFerryVariant(
  tmp,
  {
    name = 'ferry',
    cli = FERRY_CLI,
    cwd = repoRoot,
    env = {},
    nodeArgs = [],
    cpuProfDir = null,
    extensions = ['checksum', 'concatenation'],
    redis = null,
    worker = false,
    processing = null,
    uploadPath = true,
    pollMs = 25,
    timeoutS = 300,
  } = {},
) {
  const dataDir = path.join(tmp, `${name}-data`);
  await mkdir(dataDir);
  const mode = redis
    ? {
        FERRY_REDIS_URL: redis.url,
        FERRY_REDIS_PREFIX: 'bench:',
        // Distributed mode requires the shared secrets (bench-only values; ignored by older builds).
        FERRY_TOKEN_SECRET: 'bench-token-secret-0123456789abcdef',
        FERRY_SIGNING_SECRET: 'bench-signing-secret-0123456789abcdef',
      }
    : { FERRY_REDIS_URL: undefined, FERRY_REDIS_PREFIX: undefined };
  const srv = await startFerry({
    cli,
    cwd,
    dataDir,
    logFile: path.join(tmp, `${name}.log`),
    env: { ...mode, ...env },
    nodeArgs: [...nodeArgs, ...cpuProfArgs(cpuProfDir)],
  });
  let workerProc = null;
  if (worker) {
    try {
      workerProc = await startFerryWorker({ cli, cwd, env: srv.env, logFile: path.join(tmp, `${name}-worker.log`) });
    } catch (err) {
      await stopServer(srv.child);
      throw err;
    }
  }
  const base = `http://127.0.0.1:${srv.port}`;
  const endpoint = `${base}/files/`;
  let deleteWorks = true;
  return {
    name,
    protocol: 'tus',
    ...srv,
    dataDir,
    base,
    endpoint,
    // tus extensions the ferry-only workloads (lib/extensions.mjs) need; stock @tus/server +
    // FileStore has neither, so bare-tus declares none.
    extensions,
    processing,
    uploadPath,
    redis,
    worker: workerProc,
    // opts.checksum (Upload-Checksum of the whole file) passes through to the single PATCH.
    uploadFile: async (file, size, opts) => ({ url: await tus.tusUploadFile(endpoint, file, size, opts) }),
    uploadBuffer: async (buf, opts) => ({ url: await tus.tusUploadBuffer(endpoint, buf, opts) }),
    uploadBufferInCreation: async (buf, opts) => ({ url: await tus.tusCreateWithUpload(endpoint, buf, opts) }),
    // -> { url (final upload), partUrls, joinS }
    uploadParallel: (file, size, opts) => tus.tusUploadParallel(endpoint, file, size, opts),
    verify: async (ref, expected) => {
      const got = await tus.hashDownload(ref.url); // streamed and hashed, never buffered
      if (got.status !== 200) throw new Error(`verification failed: GET ${ref.url} answered ${got.status}`);
      if (got.size !== expected.size || got.sha256 !== expected.sha256) throw mismatch(ref.url, expected, got);
    },
    // After a run, before cleanup (untimed): wait until the files it made are processed, so the
    // next run starts quiet and no DELETE races a processing job. Resolves with the seconds waited.
    settle: processing
      ? () => waitNoPending(base, { pollMs, timeoutS, what: `${name}: processing after the run` })
      : undefined,
    // Redis variants: Redis's CPU for the run; with a worker, the worker's CPU and peak RSS too.
    watch: redis || workerProc ? () => watchHelpers(redis, workerProc) : undefined,
    cleanup: async (refs) => {
      if (!deleteWorks) return; // everything goes with the temp dir at the end
      const agent = tus.makeAgent(8);
      try {
        const ok = await mapConcurrent(refs, 8, (r) => tus.tusDelete(r.url, { agent }));
        if (ok.includes(false)) {
          deleteWorks = false;
          console.error(`warning: ${name} did not answer DELETE with 204; uploads stay stored until the end`);
        }
      } finally {
        agent.destroy();
      }
    },
    stop: async () => {
      await Promise.all([stopServer(srv.child), workerProc && stopServer(workerProc.child)]);
      await redis?.stop();
    },
  };
}

/**
 * Node flags for a V8 CPU profile written into `dir` when the process exits (BENCH_CPU_PROF for
 * ferry, BENCH_S3_CPU_PROF for ferry-s3); none without a dir. Ferry exits on the bench's SIGTERM
 * through its graceful shutdown, which is what makes node write the profile (a SIGKILL would not).
 * bench/flamegraph.mjs turns the profile into an SVG.
 */
export const cpuProfArgs = (dir) => (dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : []);

function watchHelpers(redis, worker) {
  const redisBefore = redis ? redis.cpuSeconds() : 0;
  const workerPeakIsPerRun = worker ? resetPeakRss(worker.pid) : undefined;
  const workerBefore = worker ? sample(worker.pid) : null;
  return {
    stop: () => ({
      ...(redis ? { redisCpuS: redis.cpuSeconds() - redisBefore } : {}),
      ...(worker
        ? (() => {
            const after = sample(worker.pid);
            return { workerCpuS: after.cpu - workerBefore.cpu, workerPeakRssBytes: after.hwm, workerPeakIsPerRun };
          })()
        : {}),
    }),
  };
}

/**
 * Ferry variants: the working tree's build and the foundation's (ctx.foundation: { cli, dir } from
 * lib/foundation.mjs), embedded or on their own redis-server. The Redis variants run the server
 * alone, no worker: the upload path only. `ferry-redis+worker` is the pair (server + one
 * `ferry worker`, its own Redis) for the processing workloads, started along with ferry-redis.
 */
const ferryVariants = {
  ferry: (tmp, ctx) =>
    startFerryVariant(tmp, { ...ctx.processing, processing: 'in-process', cpuProfDir: ctx.cpuProfDir }),
  'ferry-foundation': (tmp, ctx) =>
    startFerryVariant(tmp, {
      name: 'ferry-foundation',
      cli: ctx.foundation.cli,
      cwd: ctx.foundation.dir,
      extensions: [],
    }),
  'ferry-redis': (tmp) =>
    withRedis(tmp, 'ferry-redis', (redis) => startFerryVariant(tmp, { name: 'ferry-redis', redis, extensions: [] })),
  'ferry-foundation-redis': (tmp, ctx) =>
    withRedis(tmp, 'ferry-foundation-redis', (redis) =>
      startFerryVariant(tmp, {
        name: 'ferry-foundation-redis',
        cli: ctx.foundation.cli,
        cwd: ctx.foundation.dir,
        redis,
        extensions: [],
      }),
    ),
  [PROCESSING_PAIR]: (tmp, ctx) =>
    withRedis(tmp, PROCESSING_PAIR, (redis) =>
      startFerryVariant(tmp, {
        ...ctx.processing,
        name: PROCESSING_PAIR,
        redis,
        worker: true,
        processing: 'worker',
        uploadPath: false,
        extensions: [],
      }),
    ),
};

/** Start a redis-server, then `start(redis)`; the redis-server is stopped if that fails. */
async function withRedis(tmp, name, start) {
  const redis = await startRedis(tmp, name);
  try {
    return await start(redis);
  } catch (err) {
    await redis.stop();
    throw err;
  }
}

const factories = { plain, 'bare-tus': bareTus, ...ferryVariants };

/**
 * ctx: { foundation: { cli, dir } (foundation variants), processing: { pollMs, timeoutS },
 * cpuProfDir (ferry only: BENCH_CPU_PROF) }.
 */
export function startVariant(name, tmp, ctx = {}) {
  const f = factories[name];
  if (!f) throw new Error(`unknown variant ${name}; known: ${[...VARIANT_NAMES, PROCESSING_PAIR].join(', ')}`);
  return f(tmp, ctx);
}
