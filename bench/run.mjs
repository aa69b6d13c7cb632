#!/usr/bin/env node
// Ferry benchmark: plain node:http PUT vs bare @tus/server vs Ferry vs Ferry built from the
// foundation commit (embedded and on Redis), in one run; Ferry's processing pipeline (files/s,
// MB/s of hashing); and Ferry on S3 (moto_server) vs @aws-sdk/lib-storage's own multipart upload
// to the same server.
// See bench/README.md for the method and the knobs. Progress goes to stderr, the
// result table to stdout, the full results to bench/results/latest.json.
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CHECKSUM_ALGORITHMS, bufferChecksum, fileChecksums } from './lib/checksums.mjs';
import { checkExtensions, extensionWorkloads } from './lib/extensions.mjs';
import { resetPeakRss, sample } from './lib/procstat.mjs';
import { DEFAULT_FOUNDATION_REF, ensureFoundationBuild, resolveCommit } from './lib/foundation.mjs';
import { processingWorkloads, verifyProcessed } from './lib/processing.mjs';
import { redisAvailable } from './lib/redis.mjs';
import { RSS_VARIANTS, checkRssDisk, parseRssSizes, rssLine, rssTable, runRssWorkload } from './lib/rss.mjs';
import {
  extensionsLine,
  foundationLine,
  markdownTable,
  processingLine,
  processingTable,
  summarize,
  derive,
  summaryLine,
  s3Table,
  s3Line,
} from './lib/report.mjs';
import { S3_VARIANT_NAMES, motoAvailable, s3Workloads, startMoto, startS3Variant } from './lib/s3.mjs';
import { isRunning, tail } from './lib/servers.mjs';
import { targetRows, targetsLine, targetsTable } from './lib/targets.mjs';
import { makeAgent } from './lib/tus-client.mjs';
import {
  FERRY_CLI,
  FOUNDATION_VARIANTS,
  PROCESSING_PAIR,
  REDIS_VARIANTS,
  VARIANT_NAMES,
  startVariant,
} from './lib/variants.mjs';
import { MiB, envDir, envNumber, freeBytes, mapConcurrent, sha256, sleep, writeRandomFile } from './lib/util.mjs';

const benchDir = import.meta.dirname;
const repoRoot = path.resolve(benchDir, '..');

function readConfig() {
  // The S3 variants are on by default when moto_server works; BENCH_S3=0 leaves them out,
  // BENCH_S3=1 insists on them.
  const s3Wanted = process.env.BENCH_S3 === '1' ? true : process.env.BENCH_S3 === '0' ? false : null;
  const s3On = s3Wanted ?? motoAvailable();
  const known = [...VARIANT_NAMES, ...S3_VARIANT_NAMES];
  // The foundation commit (ferry-foundation) is in the default set when this checkout has it; the
  // Redis variants are opt-in (BENCH_VARIANTS), as they add about half again to a run.
  const foundationRef = process.env.BENCH_FOUNDATION_REF || DEFAULT_FOUNDATION_REF;
  const foundationKnown = (() => {
    try {
      resolveCommit(foundationRef);
      return true;
    } catch {
      return false;
    }
  })();
  const defaults = ['plain', 'bare-tus', 'ferry', ...(foundationKnown ? ['ferry-foundation'] : [])];
  const variants = (process.env.BENCH_VARIANTS || [...defaults, ...(s3On ? S3_VARIANT_NAMES : [])].join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .filter((v) => s3On || !S3_VARIANT_NAMES.includes(v));
  for (const v of variants) {
    if (!known.includes(v)) throw new Error(`BENCH_VARIANTS: unknown variant ${v}; known: ${known.join(', ')}`);
  }
  if (variants.some((v) => REDIS_VARIANTS.includes(v)) && !redisAvailable()) {
    throw new Error('redis-server is not installed (apt-get install redis-server); the Redis variants need it');
  }
  if (!foundationKnown && variants.some((v) => FOUNDATION_VARIANTS.includes(v))) resolveCommit(foundationRef); // throws
  if (variants.length === 0) throw new Error('no variants to run (BENCH_VARIANTS, BENCH_S3)');
  const s3 = variants.some((v) => S3_VARIANT_NAMES.includes(v));
  if (s3 && s3Wanted !== false && !motoAvailable()) {
    throw new Error("moto_server is not available (pip install 'moto[server]'); BENCH_S3=0 skips the S3 workload");
  }
  const checksumAlgorithms = (process.env.BENCH_CHECKSUMS ?? 'crc32c,sha1')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const a of checksumAlgorithms) {
    if (!CHECKSUM_ALGORITHMS.includes(a)) {
      throw new Error(`BENCH_CHECKSUMS: unknown algorithm ${a}; known: ${CHECKSUM_ALGORITHMS.join(', ')}`);
    }
  }
  // The RSS workload (lib/rss.mjs): opt-in, on ferry and plain.
  const rssSizesMiB = parseRssSizes(process.env.BENCH_RSS_SIZES);
  if (rssSizesMiB.length && !variants.some((v) => RSS_VARIANTS.includes(v))) {
    throw new Error(`BENCH_RSS_SIZES runs on ${RSS_VARIANTS.join(' and ')}; neither is in BENCH_VARIANTS`);
  }
  // Ferry refuses uploads above FERRY_MAX_SIZE (5 GiB unless set): say so now, not after the rounds.
  if (variants.includes('ferry') && !process.env.FERRY_MAX_SIZE && rssSizesMiB.some((m) => m > 5120)) {
    throw new Error('BENCH_RSS_SIZES: ferry refuses uploads above 5 GiB (FERRY_MAX_SIZE); set FERRY_MAX_SIZE higher');
  }
  // BENCH_CPU_PROF: `ferry` (disk, embedded) runs with node --cpu-prof, as BENCH_S3_CPU_PROF does for ferry-s3.
  const cpuProfDir = envDir('BENCH_CPU_PROF');
  if (cpuProfDir && !variants.includes('ferry')) {
    throw new Error('BENCH_CPU_PROF profiles the ferry variant, which is not in BENCH_VARIANTS');
  }
  return {
    variants,
    rounds: envNumber('BENCH_ROUNDS', 5, { min: 1 }),
    pauseS: envNumber('BENCH_PAUSE_S', 3, { integer: false }),
    largeMiB: envNumber('BENCH_LARGE_MIB', 512, { min: 1 }),
    smallCount: envNumber('BENCH_SMALL_COUNT', 200, { min: 1 }),
    smallKiB: envNumber('BENCH_SMALL_KIB', 64, { min: 1 }),
    smallConcurrency: envNumber('BENCH_SMALL_CONCURRENCY', 16, { min: 1 }),
    smallOneRequest: process.env.BENCH_SMALL_ONE_REQUEST !== '0',
    chunked: process.env.BENCH_CHUNKED !== '0',
    chunkMiB: envNumber('BENCH_CHUNK_MIB', 8, { min: 1 }),
    // The commit the ferry-foundation variants are built from (lib/foundation.mjs), and where the build is cached.
    foundation: variants.some((v) => FOUNDATION_VARIANTS.includes(v))
      ? {
          ref: foundationRef,
          cacheDir: path.resolve(process.env.BENCH_CACHE_DIR || path.join(benchDir, '.cache')),
        }
      : null,
    // Ferry's processing pipeline (lib/processing.mjs): embedded `ferry` processes in-process; for
    // ferry-redis, a server + `ferry worker` pair on its own Redis (ferry-redis+worker).
    processing:
      process.env.BENCH_PROCESSING !== '0' && variants.some((v) => v === 'ferry' || v === 'ferry-redis')
        ? {
            pollMs: envNumber('BENCH_PROCESSING_POLL_MS', 25, { min: 1 }),
            timeoutS: envNumber('BENCH_PROCESSING_TIMEOUT_S', 300, { min: 1 }),
            // What Ferry runs with (its default unless set in the environment), for the record.
            concurrency: process.env.FERRY_PROCESSING_CONCURRENCY || '2 (Ferry default)',
          }
        : null,
    // Ferry-only workloads for the checksum and concatenation extensions (lib/extensions.mjs).
    extensions: process.env.BENCH_EXTENSIONS !== '0' && variants.includes('ferry'),
    checksumAlgorithms,
    parts: envNumber('BENCH_PARTS', 4, { min: 0 }),
    // The S3 workload (lib/s3.mjs): ferry-s3 vs lib-storage on moto_server.
    s3: s3
      ? {
          mib: envNumber('BENCH_S3_MIB', 256, { min: 1 }),
          // Off by default: one more S3 run per round (ferry-s3 in 8 MiB PATCHes, 2.5-3.5 s per
          // 256 MiB on moto with part checksums; about 8 s before them).
          chunked: process.env.BENCH_S3_CHUNKED === '1',
          // The same for Ferry (FERRY_S3_PART_SIZE, FERRY_S3_CONCURRENCY) and lib-storage (partSize, queueSize).
          partMiB: envNumber('BENCH_S3_PART_MIB', 8, { min: 5 }),
          queueSize: envNumber('BENCH_S3_CONCURRENCY', 4, { min: 1 }),
          // moto keeps every object in memory; above this RSS (checked before each S3 run, after
          // the previous run's objects are deleted) it is restarted, empty.
          motoMaxRssMB: envNumber('BENCH_S3_MOTO_MAX_RSS_MB', 4000, { min: 1 }),
          // Where ferry-s3 writes a V8 CPU profile (node --cpu-prof) when it exits; unset: none.
          cpuProfDir: envDir('BENCH_S3_CPU_PROF'),
          // Extra environment for ferry-s3 only, "K=V K=V" (experiments, e.g. AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED).
          ferryEnv: Object.fromEntries(
            (process.env.BENCH_S3_FERRY_ENV ?? '')
              .split(/\s+/)
              .filter(Boolean)
              .map((kv) => {
                const i = kv.indexOf('=');
                if (i < 1) throw new Error(`BENCH_S3_FERRY_ENV: expected K=V, got ${kv}`);
                return [kv.slice(0, i), kv.slice(i + 1)];
              }),
          ),
        }
      : null,
    // Peak RSS of one upload of each size (MiB), ferry and plain, after the rounds; [] for none.
    rssSizesMiB,
    // Where ferry writes a V8 CPU profile (node --cpu-prof) when it exits; null: none.
    cpuProfDir,
    // Time after a run before reading CPU/RSS, so work the server finishes just after
    // its response (finish hooks, log flushes) is still counted. Not part of the timing.
    settleMs: 250,
  };
}

const config = readConfig();
const log = (...args) => console.error(...args);

/** Round r starts with variant r (mod n): each variant goes first equally often. */
const rotate = (list, r) => list.map((_, i) => list[(i + r) % list.length]);

async function main() {
  const t0 = performance.now();
  if (!existsSync('/proc/self/stat')) throw new Error('the bench reads /proc and needs Linux');
  const needsBuild = config.variants.some((v) => v.startsWith('ferry') && !FOUNDATION_VARIANTS.includes(v));
  if (needsBuild && !existsSync(FERRY_CLI)) {
    throw new Error(`${FERRY_CLI} is missing: run \`npm run build\` (or set BENCH_VARIANTS=plain,bare-tus)`);
  }
  const localVariants = config.variants.filter((v) => !S3_VARIANT_NAMES.includes(v));
  // Built (or found in the cache) before anything else, so a failing build fails the bench at once.
  const foundation = config.foundation
    ? ensureFoundationBuild({ ref: config.foundation.ref, cacheRoot: config.foundation.cacheDir, log })
    : null;
  if (foundation) {
    log(
      `foundation: ${foundation.commit.slice(0, 7)} ${foundation.reused ? 'from the cache' : 'built'}, ${foundation.dir}`,
    );
  }
  // The server + worker pair for Redis mode's processing comes with ferry-redis.
  const startNames = [
    ...localVariants,
    ...(config.processing && localVariants.includes('ferry-redis') ? [PROCESSING_PAIR] : []),
  ];
  const s3VariantNames = config.variants.filter((v) => S3_VARIANT_NAMES.includes(v));

  const tmp = await mkdtemp(path.join(process.env.BENCH_TMPDIR || os.tmpdir(), 'ferry-bench-'));
  const keepTmp = process.env.BENCH_KEEP_TMP === '1';
  // Ctrl-C: exit through process.exit so the 'exit' handlers (kill servers, remove the
  // temp dir) run; they are synchronous and cover crashes too.
  process.on('exit', () => keepTmp || rmSync(tmp, { recursive: true, force: true }));
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

  const largeSize = localVariants.length ? config.largeMiB * MiB : 0;
  const s3Size = config.s3 ? config.s3.mib * MiB : 0;
  // Beyond the sources: one stored upload + slack; for S3, moto may spool objects to disk (its TMPDIR
  // is under ours) and Ferry buffers parts there too.
  const needFree = () => 2 * largeSize + 2 * s3Size + 256 * MiB;
  if (freeBytes(tmp) < largeSize + s3Size + needFree()) throw new Error(`not enough free disk in ${tmp}`);
  // The RSS workload runs after the rounds, while the sources above still exist: check its share now.
  if (config.rssSizesMiB.length) checkRssDisk(tmp, config.rssSizesMiB, { alsoHeld: largeSize + s3Size });
  if (config.cpuProfDir) {
    await mkdir(config.cpuProfDir, { recursive: true });
    log(`BENCH_CPU_PROF: ferry runs under node --cpu-prof (slower than without: compare no ratios from this run)`);
  }

  const started = [];
  try {
    log(`temp dir ${tmp}`);
    const largeFile = path.join(tmp, 'large.bin');
    let large;
    if (largeSize) {
      log(`generating ${config.largeMiB} MiB random file…`);
      large = { size: largeSize, sha256: writeRandomFile(largeFile, largeSize) };
    }
    const s3File = path.join(tmp, 's3.bin');
    let s3Source;
    if (s3Size) {
      log(`generating ${config.s3.mib} MiB random file for S3…`);
      s3Source = { size: s3Size, sha256: writeRandomFile(s3File, s3Size) };
    }
    const warmFile = path.join(tmp, 'warm.bin');
    const warm = { size: 16 * MiB, sha256: writeRandomFile(warmFile, 16 * MiB) };
    let checksums, warmChecksums;
    if (config.extensions && config.checksumAlgorithms.length) {
      log(`computing ${config.checksumAlgorithms.join(', ')} of the large file…`);
      checksums = await fileChecksums(largeFile, config.checksumAlgorithms);
      warmChecksums = await fileChecksums(warmFile, config.checksumAlgorithms);
    }
    // Each small upload gets distinct random content (one slab, sliced), made before any
    // timing so the client spends nothing on it during a run.
    const smallSize = config.smallKiB * 1024;
    const slab = randomFillSync(Buffer.allocUnsafe(config.smallCount * smallSize));
    const small = Array.from({ length: config.smallCount }, (_, i) =>
      slab.subarray(i * smallSize, (i + 1) * smallSize),
    );
    const smallExpected = small.map((b) => ({ size: b.length, sha256: sha256(b) }));

    const chunkSize = config.chunkMiB * MiB;
    // The disk workloads; the S3 variants have their own (lib/s3.mjs), and the processing pair
    // only runs the processing workloads.
    const local = (v) => !v.s3 && v.uploadPath !== false;
    const workloads = {};
    if (localVariants.length)
      Object.assign(workloads, {
        large: {
          label: `large (${config.largeMiB} MiB, 1 PATCH)`,
          applies: local,
          run: async (v, agent) => [await v.uploadFile(largeFile, largeSize, { agent })],
          verify: (v, refs) => v.verify(refs[0], large),
          bytes: largeSize,
          uploads: 1,
        },
        // Ferry-only, on the same file, right after `large`: each is reported against Ferry's
        // `large`, so the two should run close together and under the same conditions.
        ...(config.extensions ? extensionWorkloads({ config, largeFile, large, checksums }) : {}),
        small: {
          label: `small (${config.smallCount} × ${config.smallKiB} KiB, ${config.smallConcurrency} at a time)`,
          applies: local,
          run: (v, agent) => mapConcurrent(small, config.smallConcurrency, (buf) => v.uploadBuffer(buf, { agent })),
          verify: (v, refs) => mapConcurrent(refs, 8, (r, i) => v.verify(r, smallExpected[i])),
          bytes: config.smallCount * smallSize,
          uploads: config.smallCount,
        },
        // The same uploads as tus clients send them with creation-with-upload (tus-js-client's
        // uploadDataDuringCreation): one POST each, as plain's one PUT (its reference is plain's small).
        ...(config.smallOneRequest
          ? {
              'small-1req': {
                label: `small in one request (${config.smallCount} × ${config.smallKiB} KiB, creation-with-upload)`,
                applies: (v) => v.protocol === 'tus' && local(v) && Boolean(v.uploadBufferInCreation),
                run: (v, agent) =>
                  mapConcurrent(small, config.smallConcurrency, (buf) => v.uploadBufferInCreation(buf, { agent })),
                verify: (v, refs) => mapConcurrent(refs, 8, (r, i) => v.verify(r, smallExpected[i])),
                bytes: config.smallCount * smallSize,
                uploads: config.smallCount,
              },
            }
          : {}),
      });
    if (config.chunked && localVariants.length) {
      workloads.chunked = {
        label: `chunked (${config.largeMiB} MiB in ${config.chunkMiB} MiB PATCHes)`,
        // The plain reference for chunked is the large single PUT of the same round.
        applies: (v) => v.protocol === 'tus' && local(v),
        run: async (v, agent) => [await v.uploadFile(largeFile, largeSize, { agent, chunkSize })],
        verify: (v, refs) => v.verify(refs[0], large),
        bytes: largeSize,
        uploads: 1,
      };
    }
    if (config.processing) {
      // Processing's own check: Ferry's checksums of each file must be the source's.
      const crc = (buf) => bufferChecksum(buf, 'crc32c').slice('crc32c '.length);
      const smallProcessed = small.map((b, i) => ({ ...smallExpected[i], crc32c: crc(b) }));
      const largeCrc32c = (checksums?.crc32c ?? (await fileChecksums(largeFile, ['crc32c'])).crc32c).slice(
        'crc32c '.length,
      );
      Object.assign(
        workloads,
        processingWorkloads({
          config,
          small,
          smallExpected: smallProcessed,
          largeFile,
          large: { ...large, crc32c: largeCrc32c },
        }),
      );
    }
    // Last in every round, so they don't disturb the disk workloads' order or timing.
    if (config.s3)
      Object.assign(
        workloads,
        s3Workloads({ s3: config.s3, file: s3File, expected: s3Source, chunkMiB: config.chunkMiB }),
      );

    // All servers stay up for the whole bench, like real long-running servers; the idle
    // ones cost next to nothing while another one is measured.
    const variants = [];
    const ctx = { foundation, processing: config.processing, cpuProfDir: config.cpuProfDir };
    for (const name of startNames) {
      log(`starting ${name}…`);
      const v = await startVariant(name, tmp, ctx);
      started.push(v);
      variants.push(v);
      const extra = [
        v.redis ? `redis-server pid ${v.redis.pid} port ${v.redis.port}` : '',
        v.worker ? `worker pid ${v.worker.pid}` : '',
        v.processing ? `processing ${v.processing}` : '',
      ].filter(Boolean);
      log(`  ${name}: pid ${v.pid}, port ${v.port}${extra.length ? `, ${extra.join(', ')}` : ''}`);
    }
    let moto;
    if (config.s3) {
      log('starting moto_server…');
      moto = await startMoto(tmp);
      started.push(moto);
      log(`  moto: pid ${moto.pid}, port ${moto.port}, bucket ${moto.bucket}`);
      for (const name of s3VariantNames) {
        log(`starting ${name}…`);
        const v = await startS3Variant(name, tmp, moto, config.s3);
        started.push(v);
        variants.push(v);
        log(`  ${name}: pid ${v.pid}${v.port ? `, port ${v.port}` : ' (the bench process)'}`);
      }
    }

    // Untimed warm-up (JIT, first-request lazy init) that also verifies every variant
    // end-to-end before we spend minutes measuring it.
    for (const v of variants) {
      log(`warm-up + check ${v.name}…`);
      const agent = makeAgent(config.smallConcurrency);
      try {
        const refs = await mapConcurrent(small.slice(0, 32), config.smallConcurrency, (b) =>
          v.uploadBuffer(b, { agent }),
        );
        await mapConcurrent(refs, 8, (r, i) => v.verify(r, smallExpected[i]));
        const chunks = v.s3 ? config.s3.chunked : config.chunked;
        const opts = { agent, chunkSize: v.protocol === 'tus' && chunks ? chunkSize : Infinity };
        const big = await v.uploadFile(warmFile, warm.size, opts);
        await v.verify(big, warm);
        // Variants that process: everything processed, and right, before the first DELETE.
        if (v.settle) {
          await v.settle();
          await mapConcurrent(refs, 8, (r, i) => verifyProcessed(v, r, { ...smallExpected[i], crc32c: undefined }));
          await verifyProcessed(v, big, warm);
        }
        await v.cleanup([...refs, big]);
        if (config.extensions && !v.s3) await checkExtensions(v, { config, warmFile, warm, warmChecksums, agent });
      } finally {
        agent.destroy();
      }
    }

    const runs = [];
    for (let round = 0; round < config.rounds; round++) {
      for (const [wName, w] of Object.entries(workloads)) {
        const order = rotate(
          variants.filter((v) => w.applies(v)),
          round,
        );
        for (const [position, v] of order.entries()) {
          if (freeBytes(tmp) < needFree()) throw new Error(`free disk in ${tmp} below ${needFree() / MiB} MiB`);
          if (v.s3 && moto.rssBytes() > config.s3.motoMaxRssMB * 1e6) {
            log(`  moto RSS ${(moto.rssBytes() / 1e6).toFixed(0)} MB > ${config.s3.motoMaxRssMB} MB: restarting moto`);
            await moto.restart();
          }
          await sleep(config.pauseS * 1000); // let the previous run's after-effects (writeback, GC) settle
          const run = await timedRun(v, wName, w, { round, position, verify: round === 0 });
          runs.push(run);
          const d = derive(run);
          const join =
            d.joinS !== undefined
              ? `, join ${(d.joinS * 1000).toFixed(0)} ms`
              : d.processingS !== undefined
                ? `, upload ${d.uploadS.toFixed(2)} s, processing after it ${d.processingS.toFixed(2)} s`
                : d.processingDrainS !== undefined
                  ? `, processed ${d.processingDrainS.toFixed(2)} s later`
                  : '';
          const worker = d.workerCpuS === undefined ? '' : `, worker CPU ${d.workerCpuS.toFixed(2)} s`;
          const s3 =
            d.motoCpuS === undefined
              ? ''
              : `, moto CPU ${d.motoCpuSPerGB.toFixed(2)} s/GB, moto peak RSS ${(d.motoPeakRssBytes / 1e6).toFixed(0)} MB` +
                (d.tempPeakBytes === undefined ? '' : `, temp peak ${(d.tempPeakBytes / MiB).toFixed(0)} MiB`);
          log(
            `[round ${round + 1}/${config.rounds}] ${wName.padEnd(16)} ${v.name.padEnd(22)} ` +
              `${d.throughput.toFixed(1)} ${d.unit}${join}, ${v.s3 ? 'uploader' : 'server'} CPU ${d.cpuSPerGB.toFixed(2)} s/GB${worker}, ` +
              `peak RSS ${(run.peakRssBytes / 1e6).toFixed(0)} MB${s3}${run.verified ? ', verified' : ''}`,
          );
        }
      }
    }

    // Untimed, once per size, after everything else (lib/rss.mjs).
    const rss = config.rssSizesMiB.length
      ? await runRssWorkload({
          variants,
          sizesMiB: config.rssSizesMiB,
          tmp,
          pauseS: config.pauseS,
          settleMs: config.settleMs,
          log,
        })
      : null;

    const derived = runs.map(derive);
    const vsFerryLarge = Object.keys(workloads).filter((k) => workloads[k].vsFerryLarge);
    const summary = summarize(
      derived,
      Object.keys(workloads),
      variants.map((v) => v.name),
      { vsFerryLarge },
    );
    const labels = Object.fromEntries(Object.entries(workloads).map(([k, w]) => [k, w.label]));
    const durationS = (performance.now() - t0) / 1000;

    let s3Info;
    if (moto) {
      // Everything the runs stored should be gone (tus DELETE, DeleteObject).
      const leftovers = await moto.leftovers();
      if (leftovers.keys.length || leftovers.multipartUploads.length) {
        log(
          `warning: left in the bucket after cleanup: ${leftovers.keys.length} keys, ` +
            `${leftovers.multipartUploads.length} multipart uploads (${[...leftovers.keys, ...leftovers.multipartUploads].slice(0, 5).join(', ')})`,
        );
      }
      s3Info = { motoRestarts: moto.restarts, leftovers };
    }

    if (localVariants.length) {
      console.log(markdownTable(summary, labels));
      console.log();
    }
    const redisShown = localVariants.filter((v) => REDIS_VARIANTS.includes(v));
    if (redisShown.length) {
      console.log(
        `${redisShown.join(', ')}: \`ferry serve\` with FERRY_REDIS_URL (own redis-server) and no \`ferry worker\` running: ` +
          'the upload path alone, completed files stay queued. ' +
          (config.processing && redisShown.includes('ferry-redis')
            ? `Processing with a worker: ${PROCESSING_PAIR} below (its own server, worker and redis-server).`
            : 'Processing in Redis mode was not measured in this run.'),
      );
      console.log();
    }
    if (config.processing) {
      console.log(processingTable(summary, labels));
      console.log();
    }
    if (config.s3) {
      console.log(s3Table(summary, labels));
      console.log();
    }
    const line = localVariants.length ? summaryLine(summary) : '';
    if (line) console.log(line);
    const vsFoundation = foundationLine(summary, { commit: foundation?.commit });
    if (vsFoundation) console.log(vsFoundation);
    const proc = config.processing ? processingLine(summary) : '';
    if (proc) console.log(proc);
    const ext = extensionsLine(summary, { partials: config.parts });
    if (ext) console.log(ext);
    const s3 = config.s3 ? s3Line(summary, { mib: config.s3.mib }) : '';
    if (s3) console.log(s3);

    // Added after the lines above (which others parse): the RSS workload, then issue 12's targets.
    if (rss) {
      console.log();
      console.log(rssTable(rss));
      console.log();
      console.log(rssLine(rss));
    }
    const targets = targetRows(summary, { config, rss });
    console.log();
    console.log(targetsTable(targets));
    console.log();
    console.log(targetsLine(targets));

    await writeResults({
      summary,
      labels,
      runs: derived,
      durationS,
      s3: s3Info,
      rss,
      targets,
      foundation: foundation && {
        commit: foundation.commit,
        dir: path.relative(repoRoot, foundation.dir),
        reused: foundation.reused,
        buildS: foundation.buildS,
        builtAt: foundation.info.builtAt,
      },
    });
    log(`done in ${durationS.toFixed(0)} s; results in bench/results/latest.json`);
  } catch (err) {
    // Stop first so the logs are complete, then keep them: the temp dir is about to go.
    await Promise.all(started.map((v) => v.stop()));
    const saved = await saveLogs(tmp);
    for (const ferry of started.filter((v) => v.name.startsWith('ferry'))) {
      err.message += `\n--- tail of ${ferry.name} log ---\n${tail(ferry.logFile)}`;
      if (ferry.worker) err.message += `\n--- tail of ${ferry.name} worker log ---\n${tail(ferry.worker.logFile)}`;
    }
    if (saved.length) err.message += `\nserver logs saved: ${saved.join(', ')}`;
    throw err;
  } finally {
    await Promise.all(started.map((v) => v.stop()));
  }
  // Node writes the profile as ferry exits (stopped just above): say where it is and what to do with it.
  const ferry = started.find((v) => v.name === 'ferry');
  if (config.cpuProfDir && ferry) reportProfiles(config.cpuProfDir, ferry.pid);
}

/** Log the CPU profile(s) a process wrote into `dir` (node names them CPU.<date>.<time>.<pid>.<tid>.<n>.cpuprofile). */
function reportProfiles(dir, pid) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(pid));
  if (!files.length) {
    log(`warning: no CPU profile of ferry (pid ${pid}) in ${dir}`);
    return;
  }
  for (const f of files) {
    const abs = path.join(dir, f);
    const rel = path.relative(process.cwd(), abs);
    const file = rel.startsWith('..') ? abs : rel; // short when it is under the current directory
    log(`ferry CPU profile: ${file}; flame graph: node bench/flamegraph.mjs ${file}`);
  }
}

/** Copy the servers' logs to bench/results/ (git-ignored *.log) after a failure. */
async function saveLogs(tmp) {
  const saved = [];
  for (const f of await readdir(tmp).catch(() => [])) {
    if (!f.endsWith('.log')) continue;
    const dest = path.join(benchDir, 'results', f);
    await mkdir(path.dirname(dest), { recursive: true });
    await copyFile(path.join(tmp, f), dest);
    saved.push(path.relative(process.cwd(), dest));
  }
  return saved;
}

/** One measured run of workload `w` against variant `v`. */
async function timedRun(v, wName, w, { round, position, verify }) {
  if (!isRunning(v.child)) throw new Error(`${v.name} is no longer running`);
  // S3 variants: moto's CPU and peak RSS, and ferry-s3's temp dir, for the same window.
  const watch = v.watch?.();
  const peakIsPerRun = resetPeakRss(v.pid);
  const before = sample(v.pid);
  const clientBefore = process.cpuUsage();
  const agent = makeAgent(config.smallConcurrency);
  let refs, extra;
  const start = performance.now();
  try {
    // A workload returns its refs, or { refs, extra } with numbers to keep in the run record
    // (the parallel workload's join time).
    const out = await w.run(v, agent);
    ({ refs, extra } = Array.isArray(out) ? { refs: out } : out);
  } finally {
    agent.destroy();
  }
  const elapsedS = (performance.now() - start) / 1000;
  // The upload path's CPU ends with the last response; what the server does after it (embedded
  // Ferry hashes the file it just stored) shows in cpuS, read after the settle pause.
  const atResponse = sample(v.pid);
  await sleep(config.settleMs);
  const after = sample(v.pid);
  const client = process.cpuUsage(clientBefore);
  const watched = watch?.stop() ?? {};
  // Variants that process in-process (embedded Ferry): wait, untimed, until the run's files are
  // processed, so no DELETE below races a processing job and the next run starts quiet. How long
  // that took, and the server's CPU including it, go to the JSON.
  let settled = {};
  if (v.settle) {
    const processingDrainS = await v.settle();
    settled = { processingDrainS, cpuWithProcessingS: sample(v.pid).cpu - before.cpu };
  }
  if (verify) await w.verify(v, refs); // outside the measured window
  await v.cleanup(refs);
  const cleaned = v.afterCleanup?.() ?? {};
  return {
    round,
    position,
    workload: wName,
    variant: v.name,
    elapsedS,
    bytes: w.bytes,
    uploads: w.uploads,
    cpuS: after.cpu - before.cpu,
    cpuToResponseS: atResponse.cpu - before.cpu,
    clientCpuS: (client.user + client.system) / 1e6,
    rssBeforeBytes: before.rss,
    rssAfterBytes: after.rss,
    peakRssBytes: after.hwm,
    peakIsPerRun,
    verified: verify,
    ...watched,
    ...settled,
    ...cleaned,
    ...extra,
  };
}

/** Files under src/ that differ from the commit (the build measured is the working tree's). */
function gitDirtySrc() {
  try {
    return execFileSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
  } catch {
    return null;
  }
}

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null; // no commits yet, or no git
  }
}

/** A run record with its numbers rounded to 3 decimals, for the JSON. */
const round3Numbers = (r) =>
  Object.fromEntries(
    Object.entries(r).map(([k, x]) => [
      k,
      typeof x === 'number' && Number.isFinite(x) ? Math.round(x * 1000) / 1000 : x,
    ]),
  );

async function writeResults({ summary, labels, runs, durationS, s3, rss, targets, foundation }) {
  const doc = {
    date: new Date().toISOString(),
    durationS: Math.round(durationS),
    machine: {
      nproc: os.availableParallelism(),
      cpu: os.cpus()[0]?.model ?? null,
      memTotalMB: Math.round(os.totalmem() / 1e6),
      kernel: os.release(),
      node: process.version,
    },
    git: gitCommit(),
    gitDirtySrc: gitDirtySrc(),
    ...(foundation ? { foundation } : {}),
    config,
    workloads: labels,
    summary,
    ...(s3 ? { s3 } : {}),
    ...(rss ? { rss: { ...rss, runs: rss.runs.map(round3Numbers) } } : {}),
    targets,
    runs: runs.map(round3Numbers),
  };
  const dir = path.join(benchDir, 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'latest.json');
  await writeFile(`${file}.tmp`, JSON.stringify(doc, null, 2) + '\n'); // *.tmp is git-ignored
  await rename(`${file}.tmp`, file);
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (err) => {
    console.error(`bench failed: ${err.stack ?? err}`);
    process.exitCode = 1;
  },
);
