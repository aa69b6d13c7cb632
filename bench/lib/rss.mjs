// The RSS workload (BENCH_RSS_SIZES, opt-in): does the server's peak memory stay flat as the
// upload grows? Issue 12 asks for ferry's peak RSS to stay within 10% from 256 MiB to 5 GiB.
//
// For each size, once, untimed (no rounds, not in the ratio tables): `ferry` gets POST + one PATCH
// of that many bytes, `plain` (for reference) one PUT; the server's peak RSS (VmHWM, reset before
// the upload like every timed run's) is read after the upload and, for ferry, again after it has
// processed the file (embedded Ferry hashes every completed upload in-process, so that is part
// of what one upload costs it in memory). The spread is max/min − 1 of the peaks over the sizes.
//
// One random file of the largest size is generated, and every size is a prefix of it (the tus
// client and plain's PUT stream a byte range), so the disk needs that file plus one stored copy:
// each upload is deleted right after it is read and checked.
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { verifyProcessed } from './processing.mjs';
import { resetPeakRss, sample } from './procstat.mjs';
import { isRunning } from './servers.mjs';
import { makeAgent } from './tus-client.mjs';
import { MiB, freeBytes, sleep, writeRandomFileWithPrefixes } from './util.mjs';

/** The variants the RSS workload runs on, in this order for each size. */
export const RSS_VARIANTS = ['plain', 'ferry'];

/** Room left on the disk beyond the source and one stored copy (logs, metadata, other files). */
const SLACK = 256 * MiB;

const MB = 1e6;

/** "256,5120" -> [256, 5120] (MiB, ascending, no duplicates); '' or unset -> []. */
export function parseRssSizes(raw) {
  const sizes = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_RSS_SIZES: ${s} is not a whole number of MiB >= 1`);
      return n;
    });
  return [...new Set(sizes)].sort((a, b) => a - b);
}

/** Free disk the RSS workload needs when it starts: the source file, one stored copy, slack. */
export const rssDiskNeed = (sizesMiB) => 2 * Math.max(0, ...sizesMiB) * MiB + SLACK;

/** Sizes for messages: GiB from 1 GiB up, MiB below. */
const gib = (bytes) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.ceil(bytes / MiB)} MiB`);

/** Fail with a message that says what to do, rather than with ENOSPC half-way through. */
export function checkRssDisk(dir, sizesMiB, { alsoHeld = 0 } = {}) {
  const need = rssDiskNeed(sizesMiB) + alsoHeld;
  const free = freeBytes(dir);
  if (free < need) {
    throw new Error(
      `BENCH_RSS_SIZES=${sizesMiB.join(',')}: needs ${gib(need)} free in ${dir} ` +
        `(a ${Math.max(...sizesMiB)} MiB source file, one stored copy, 256 MiB slack` +
        `${alsoHeld ? `, and ${gib(alsoHeld)} for the bench's other source files` : ''}), ` +
        `but only ${gib(free)} is free. Free some space, set BENCH_TMPDIR to a larger disk, or lower BENCH_RSS_SIZES.`,
    );
  }
}

/**
 * Check what a variant stored. The smallest size: the bytes themselves (v.verify: plain hashes its
 * file, ferry streams it back with GET). Every size on ferry: the sha256 in its file record, which
 * its processing computed from the stored bytes (free: the bench waits for processing anyway).
 * Larger sizes on plain: the file's size only (hashing GBs again would add minutes).
 */
async function verifyRss(v, ref, expected, { smallest }) {
  const checks = [];
  if (smallest) {
    await v.verify(ref, expected);
    checks.push('sha256 of the stored bytes');
  }
  if (v.processing) {
    await verifyProcessed(v, ref, expected);
    checks.push('sha256 in the file record');
  } else if (!smallest) {
    const { size } = await stat(ref.path);
    if (size !== expected.size) throw new Error(`${v.name} stored ${size} B of ${expected.size}`);
    checks.push('size');
  }
  return checks.join(', ');
}

/** One upload of `size` bytes (a prefix of `file`) to `v`, with the server's peak RSS. */
async function rssRun(v, file, expected, { sizeMiB, settleMs, smallest, tmp }) {
  if (!isRunning(v.child)) throw new Error(`${v.name} is no longer running`);
  // Before every upload too: a previous one that could not be deleted would still hold its space.
  if (freeBytes(tmp) < expected.size + SLACK) {
    throw new Error(
      `RSS workload: less than ${gib(expected.size + SLACK)} free in ${tmp} for ${v.name} ${sizeMiB} MiB`,
    );
  }
  const peakIsPerRun = resetPeakRss(v.pid);
  const before = sample(v.pid);
  const agent = makeAgent(1);
  let ref;
  const start = performance.now();
  try {
    ref = await v.uploadFile(file, expected.size, { agent });
  } finally {
    agent.destroy();
  }
  const elapsedS = (performance.now() - start) / 1000;
  await sleep(settleMs);
  const afterUpload = sample(v.pid);
  // Embedded Ferry processes the file now; its peak RSS includes that (VmHWM was not reset).
  const processingDrainS = v.settle ? await v.settle() : undefined;
  const after = v.settle ? sample(v.pid) : afterUpload;
  const verified = await verifyRss(v, ref, expected, { smallest });
  await v.cleanup([ref]);
  return {
    variant: v.name,
    sizeMiB,
    bytes: expected.size,
    elapsedS,
    throughputMBps: expected.size / MB / elapsedS,
    rssBeforeBytes: before.rss,
    peakRssUploadBytes: afterUpload.hwm,
    peakRssBytes: after.hwm,
    peakIsPerRun,
    ...(processingDrainS === undefined ? {} : { processingDrainS }),
    verified,
  };
}

/** Peak RSS per size, and the spread (max/min − 1), per variant. */
export function summarizeRss(runs) {
  const out = {};
  for (const name of [...new Set(runs.map((r) => r.variant))]) {
    const rs = runs.filter((r) => r.variant === name);
    const peaks = rs.map((r) => r.peakRssBytes / MB);
    const minMB = Math.min(...peaks);
    const maxMB = Math.max(...peaks);
    out[name] = {
      peakRssMB: Object.fromEntries(rs.map((r) => [r.sizeMiB, Math.round(r.peakRssBytes / MB)])),
      peakRssUploadMB: Object.fromEntries(rs.map((r) => [r.sizeMiB, Math.round(r.peakRssUploadBytes / MB)])),
      minMB: Math.round(minMB),
      maxMB: Math.round(maxMB),
      // Only meaningful with two sizes or more; null otherwise.
      spread: rs.length > 1 ? Math.round((maxMB / minMB - 1) * 1000) / 1000 : null,
    };
  }
  return out;
}

/**
 * Run the workload on `variants` (the started ones named in RSS_VARIANTS). Returns
 * { sizesMiB, runs, summary }; the source file is removed at the end.
 */
export async function runRssWorkload({ variants, sizesMiB, tmp, pauseS, settleMs, log }) {
  const targets = RSS_VARIANTS.map((name) => variants.find((v) => v.name === name)).filter(Boolean);
  checkRssDisk(tmp, sizesMiB);
  const file = path.join(tmp, 'rss.bin');
  const maxMiB = Math.max(...sizesMiB);
  log(`generating ${maxMiB} MiB random file for the RSS workload…`);
  const digests = writeRandomFileWithPrefixes(
    file,
    maxMiB * MiB,
    sizesMiB.map((m) => m * MiB),
  );
  const runs = [];
  try {
    for (const sizeMiB of sizesMiB) {
      const expected = { size: sizeMiB * MiB, sha256: digests[sizeMiB * MiB] };
      for (const v of targets) {
        await sleep(pauseS * 1000); // as before every timed run: the previous one's writeback settles
        const run = await rssRun(v, file, expected, { sizeMiB, settleMs, smallest: sizeMiB === sizesMiB[0], tmp });
        runs.push(run);
        const processed =
          run.processingDrainS === undefined
            ? ''
            : ` (${(run.peakRssUploadBytes / MB).toFixed(0)} MB ${settleMs} ms after the 204; processed ${run.processingDrainS.toFixed(2)} s after that)`;
        log(
          `[rss] ${v.name.padEnd(6)} ${String(sizeMiB).padStart(5)} MiB: peak RSS ${(run.peakRssBytes / MB).toFixed(0)} MB` +
            `${processed}, ${run.throughputMBps.toFixed(0)} MB/s, verified: ${run.verified}`,
        );
      }
    }
  } finally {
    await rm(file, { force: true });
  }
  return { sizesMiB, settleMs, runs, summary: summarizeRss(runs) };
}

const fmtPct = (x) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

/**
 * One row per upload: peak RSS until the file was processed (ferry) and as the timed runs read it
 * (settleMs after the last response: small files are processed by then), RSS before, throughput.
 */
export function rssTable(rss) {
  const lines = [
    `| rss: one upload each | variant | peak RSS MB (until processed) | peak MB ${rss.settleMs} ms after the 204 | RSS before MB | MB/s (1 run) | verified |`,
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rss.runs) {
    const alone = r.processingDrainS === undefined ? '' : `${(r.peakRssUploadBytes / MB).toFixed(0)} MB`;
    lines.push(
      `| ${r.sizeMiB} MiB | ${r.variant} | ${(r.peakRssBytes / MB).toFixed(0)} | ${alone} | ${(r.rssBeforeBytes / MB).toFixed(0)} | ${r.throughputMBps.toFixed(0)} | ${r.verified} |`,
    );
  }
  return lines.join('\n');
}

/** e.g. "rss (one upload each of 256, 5120 MiB): ferry peak 120–125 MB, spread +4.2%; plain 60–61 MB, +1.6%". */
export function rssLine(rss) {
  const items = Object.entries(rss.summary).map(
    ([v, s]) => `${v} peak ${s.minMB}–${s.maxMB} MB, spread ${s.spread === null ? 'n/a (one size)' : fmtPct(s.spread)}`,
  );
  return `rss (one upload each of ${rss.sizesMiB.join(', ')} MiB): ${items.join('; ')}`;
}
