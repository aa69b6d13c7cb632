// The S3 workload: Ferry storing in S3 vs the AWS SDK's own multipart upload of the same file,
// both into the same moto_server (a Python, in-memory, S3-compatible server) started here.
//
//   ferry-s3     a second Ferry process with FERRY_STORAGE=s3 (its own data dir and temp dir);
//                the bench is its tus client, as for the other variants
//   lib-storage  the bench process itself runs @aws-sdk/lib-storage's Upload (same part size,
//                same parts in flight) straight to moto: what an S3 client can do without Ferry
//
// moto is the bottleneck here (one Python process, its own CPU per byte), so each run also
// reads moto's CPU time and peak RSS from /proc, and, for ferry-s3, samples the size of
// FERRY_S3_TEMP_DIR (where Ferry buffers parts before sending them) to find its peak.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { memory, resetPeakRss, sample } from './procstat.mjs';
import { waitNoPending } from './processing.mjs';
import { freePort, stopServer, track } from './servers.mjs';
import { MiB, sleep } from './util.mjs';
import { mismatch, startFerryVariant } from './variants.mjs';

export const S3_VARIANT_NAMES = ['ferry-s3', 'lib-storage'];

const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'bench', secretAccessKey: 'bench' }; // moto accepts any
const BUCKET = 'ferry-bench';
const FERRY_PREFIX = 'ferry/';
const LIB_STORAGE_PREFIX = 'lib-storage/';

/** Does `moto_server --help` work? (A pyenv shim exists even when the active Python lacks moto.) */
export function motoAvailable() {
  const probe = spawnSync('moto_server', ['--help'], { stdio: 'ignore', timeout: 30000 });
  return !probe.error && probe.status === 0;
}

/** An S3 client for moto, path-style, as a user of an S3-compatible server would make it. */
const makeClient = (endpoint) =>
  new S3Client({ endpoint, region: REGION, forcePathStyle: true, credentials: CREDENTIALS });

/**
 * Start moto_server on a free 127.0.0.1 port and create the bucket. Its log (werkzeug, one line
 * per request) goes to <tmp>/moto.log; its TMPDIR (where it may spool large objects) is under
 * <tmp>. `restart()` starts a fresh moto (empty: moto keeps everything in memory) on the same
 * port, so Ferry's endpoint stays valid, and creates the bucket again.
 */
export async function startMoto(tmp, { timeoutMs = 30000 } = {}) {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const logFile = path.join(tmp, 'moto.log');
  const motoTmp = path.join(tmp, 'moto-tmp');
  mkdirSync(motoTmp, { recursive: true });
  const client = makeClient(endpoint);
  let child;

  const launch = async () => {
    const fd = openSync(logFile, 'a');
    try {
      // Spawned directly (the pyenv shim execs), so child.pid is the Python process itself.
      child = track(
        spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
          env: { ...process.env, TMPDIR: motoTmp },
          stdio: ['ignore', fd, fd],
        }),
      );
    } finally {
      closeSync(fd);
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`moto_server exited early (${child.signalCode ?? child.exitCode}); see ${logFile}`);
      }
      if ((await getStatus(`${endpoint}/`)) === 200) break;
      if (Date.now() > deadline) throw new Error(`moto_server: GET / not 200 after ${timeoutMs} ms`);
      await sleep(50);
    }
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  };

  try {
    await launch();
  } catch (err) {
    await stopServer(child);
    throw err;
  }

  const moto = {
    name: 'moto',
    port,
    endpoint,
    bucket: BUCKET,
    client,
    logFile,
    restarts: 0,
    get child() {
      return child;
    },
    get pid() {
      return child.pid;
    },
    rssBytes: () => memory(child.pid).rss,
    /** What a Ferry process needs to store in the bucket. */
    env: {
      FERRY_STORAGE: 's3',
      FERRY_S3_BUCKET: BUCKET,
      FERRY_S3_ENDPOINT: endpoint,
      FERRY_S3_REGION: REGION,
      FERRY_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    },
    restart: async () => {
      await stopServer(child);
      moto.restarts += 1;
      await launch();
    },
    /** Keys and unfinished multipart uploads left in the bucket (both should be none after cleanup). */
    leftovers: async () => {
      const keys = [];
      let token;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token }));
        for (const o of page.Contents ?? []) keys.push(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      const mp = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
      return { keys, multipartUploads: (mp.Uploads ?? []).map((u) => u.Key) };
    },
    stop: async () => {
      client.destroy();
      await stopServer(child);
    },
  };
  return moto;
}

function getStatus(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0)); // not listening yet
    req.setTimeout(2000, () => req.destroy());
  });
}

/** Total size and number of the regular files under `dir` (recursively; Ferry keeps its buffers in
 * a subdirectory of its own, `run-<uuid>/`, in newer versions). Entries that vanish are skipped. */
function dirUsage(dir) {
  let bytes = 0;
  let files = 0;
  let entries = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return { bytes, files }; // not there (any more)
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const sub = dirUsage(p);
      bytes += sub.bytes;
      files += sub.files;
    } else if (e.isFile()) {
      try {
        bytes += statSync(p).size;
        files += 1;
      } catch {
        // removed between readdir and stat
      }
    }
  }
  return { bytes, files };
}

/**
 * Sample the total size of the files under `dir` every `intervalMs` on the bench's event loop,
 * which is idle most of the time while a body streams. stop() -> { peakBytes, peakFiles,
 * lastBytes, samples }; lastBytes is taken at stop (should be about 0: Ferry removes a part's file
 * once the part is uploaded; an empty heartbeat file may stay).
 */
export function watchDirSize(dir, intervalMs = 50) {
  let peakBytes = 0;
  let peakFiles = 0;
  let lastBytes = 0;
  let samples = 0;
  const tick = () => {
    const { bytes, files } = dirUsage(dir);
    samples += 1;
    lastBytes = bytes;
    peakBytes = Math.max(peakBytes, bytes);
    peakFiles = Math.max(peakFiles, files);
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return { peakBytes, peakFiles, lastBytes, samples };
    },
  };
}

/**
 * Per-run probes for both S3 variants: moto's CPU time and peak RSS (reset at the start), and
 * the temp dir's peak for ferry-s3. stop() is called after the settle pause, like the /proc
 * sample of the uploader; afterCleanup() reads moto's RSS once the run's objects are deleted.
 */
function s3Watch(moto, tempDir) {
  const motoPeakIsPerRun = resetPeakRss(moto.pid);
  const before = sample(moto.pid);
  const dir = tempDir ? watchDirSize(tempDir) : null;
  return {
    stop() {
      const after = sample(moto.pid);
      const d = dir?.stop();
      return {
        motoCpuS: after.cpu - before.cpu,
        motoRssBeforeBytes: before.rss,
        motoPeakRssBytes: after.hwm,
        motoPeakIsPerRun,
        ...(d
          ? {
              tempPeakBytes: d.peakBytes,
              tempPeakFiles: d.peakFiles,
              tempAfterBytes: d.lastBytes,
              tempSamples: d.samples,
            }
          : {}),
      };
    },
  };
}

/**
 * The two S3 variants, in the same shape as lib/variants.mjs (uploadFile, uploadBuffer, verify,
 * cleanup, stop) plus `s3: true`, `watch()` and `afterCleanup()`.
 */
export async function startS3Variant(name, tmp, moto, s3) {
  const afterCleanup = () => ({ motoRssAfterCleanupBytes: moto.rssBytes() });
  if (name === 'ferry-s3') {
    const tempDir = path.join(tmp, 'ferry-s3-temp');
    mkdirSync(tempDir, { recursive: true });
    const v = await startFerryVariant(tmp, {
      name,
      extensions: [],
      env: {
        ...moto.env,
        FERRY_S3_PREFIX: FERRY_PREFIX,
        FERRY_S3_TEMP_DIR: tempDir,
        FERRY_S3_PART_SIZE: `${s3.partMiB}MiB`,
        FERRY_S3_CONCURRENCY: String(s3.queueSize),
        ...s3.ferryEnv,
      },
      cpuProfDir: s3.cpuProfDir,
    });
    return {
      ...v,
      s3: true,
      tempDir,
      watch: () => s3Watch(moto, tempDir),
      afterCleanup,
      // ferry-s3 is embedded Ferry: after an upload it processes the file, reading the object back
      // from moto (a ranged GET to sniff the type, a whole GET to hash it). Waited for after each run,
      // untimed, as for ferry: otherwise those reads, which moto serves from the whole object in
      // memory, ran into the next run (the other variant's as often as not) and its DELETE.
      settle: () => waitNoPending(v.base, { pollMs: 25, timeoutS: 300, what: `${name}: processing after the run` }),
    };
  }
  if (name === 'lib-storage') {
    // Its own client with the SDK's defaults, as an application would have.
    const client = makeClient(moto.endpoint);
    let n = 0;
    const upload = async (body) => {
      const key = `${LIB_STORAGE_PREFIX}${++n}`;
      await new Upload({
        client,
        params: { Bucket: moto.bucket, Key: key, Body: body },
        partSize: s3.partMiB * MiB,
        queueSize: s3.queueSize,
      }).done();
      return { key };
    };
    return {
      name,
      protocol: 's3',
      s3: true,
      // The uploader is the bench process itself: its CPU and peak RSS are what is measured.
      pid: process.pid,
      // It is "running" as long as the server it uploads to is.
      get child() {
        return moto.child;
      },
      // chunkSize has no meaning here: lib-storage always sends the file as parts.
      uploadFile: (file) => upload(createReadStream(file)),
      uploadBuffer: (buf) => upload(buf),
      verify: async (ref, expected) => {
        const res = await moto.client.send(new GetObjectCommand({ Bucket: moto.bucket, Key: ref.key }));
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of res.Body) {
          size += chunk.length;
          hash.update(chunk);
        }
        const got = { size, sha256: hash.digest('hex') };
        if (got.size !== expected.size || got.sha256 !== expected.sha256) throw mismatch(ref.key, expected, got);
      },
      cleanup: (refs) =>
        Promise.all(refs.map((r) => moto.client.send(new DeleteObjectCommand({ Bucket: moto.bucket, Key: r.key })))),
      stop: async () => client.destroy(),
      watch: () => s3Watch(moto, null),
      afterCleanup,
    };
  }
  throw new Error(`unknown S3 variant ${name}; known: ${S3_VARIANT_NAMES.join(', ')}`);
}

/**
 * Workload definitions in the shape run.mjs uses. `s3-large`: ferry-s3 gets POST + one PATCH of the
 * whole file, lib-storage one Upload of it. `s3-chunked` (ferry-s3 only): POST + sequential PATCHes
 * of `chunkMiB`, compared with lib-storage's s3-large of the same round.
 */
export function s3Workloads({ s3, file, expected, chunkMiB }) {
  const workloads = {
    's3-large': {
      label: `s3 large (${s3.mib} MiB; ferry-s3: POST + 1 PATCH)`,
      applies: (v) => v.s3,
      run: async (v, agent) => [await v.uploadFile(file, expected.size, { agent })],
      verify: (v, refs) => v.verify(refs[0], expected),
      bytes: expected.size,
      uploads: 1,
    },
  };
  if (s3.chunked) {
    workloads['s3-chunked'] = {
      label: `s3 chunked (${s3.mib} MiB in ${chunkMiB} MiB PATCHes)`,
      applies: (v) => v.name === 'ferry-s3',
      run: async (v, agent) => [await v.uploadFile(file, expected.size, { agent, chunkSize: chunkMiB * MiB })],
      verify: (v, refs) => v.verify(refs[0], expected),
      bytes: expected.size,
      uploads: 1,
    };
  }
  return workloads;
}
