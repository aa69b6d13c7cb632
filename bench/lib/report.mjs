// Turning timed runs into medians, ratios, a Markdown table and a JSON document.
import { isProcessingWorkload } from './processing.mjs';
import { median } from './util.mjs';

/** Each Ferry variant and the same kind of Ferry built from the foundation commit (lib/foundation.mjs). */
const FOUNDATION_OF = { ferry: 'ferry-foundation', 'ferry-redis': 'ferry-foundation-redis' };

/** Workloads plain does not run, and the plain run they are compared with. */
const PLAIN_REFERENCE = { chunked: 'large', 'small-1req': 'small' };

/** Each Redis variant and the same build embedded: their ratio is what distributed mode costs the upload path. */
const EMBEDDED_OF = { 'ferry-redis': 'ferry', 'ferry-foundation-redis': 'ferry-foundation' };

const MB = 1e6;
const GB = 1e9;
const MiB = 1024 * 1024;

/**
 * Per-run derived numbers. Throughput is MB/s (10^6) for byte workloads, uploads/s for the small ones;
 * for processing-small, files/s from the first POST until every file is completed; for
 * processing-large, MB/s of processing alone (from the upload's 204 until completed).
 */
export function derive(run) {
  const perUpload = isSmallWorkload(run.workload);
  const processing =
    run.workload === 'processing-small'
      ? {
          throughput: run.uploads / run.elapsedS,
          unit: 'files/s',
          uploadThroughput: run.uploads / run.uploadS,
          uploadUnit: 'uploads/s',
        }
      : run.workload === 'processing-large'
        ? {
            throughput: run.bytes / MB / run.processingS,
            unit: 'MB/s',
            uploadThroughput: run.bytes / MB / run.uploadS,
            uploadUnit: 'MB/s',
          }
        : null;
  return {
    ...run,
    throughput: perUpload ? run.uploads / run.elapsedS : run.bytes / MB / run.elapsedS,
    unit: perUpload ? 'uploads/s' : 'MB/s',
    ...processing,
    cpuSPerGB: run.cpuS / (run.bytes / GB),
    cpuMsPerUpload: (run.cpuS * 1000) / run.uploads,
    // runs recorded before this field existed have none
    ...(run.cpuToResponseS === undefined ? {} : { cpuToResponseSPerGB: run.cpuToResponseS / (run.bytes / GB) }),
    // the processing pair's `ferry worker`
    ...(run.workerCpuS === undefined
      ? {}
      : {
          workerCpuSPerGB: run.workerCpuS / (run.bytes / GB),
          workerCpuMsPerUpload: (run.workerCpuS * 1000) / run.uploads,
        }),
    // parallel workload: how fast the server joined the partials (final POST alone)
    ...(run.joinS === undefined ? {} : { joinMBps: run.bytes / MB / run.joinS }),
    // S3 workloads: the S3 server's (moto's) CPU for the same bytes
    ...(run.motoCpuS === undefined ? {} : { motoCpuSPerGB: run.motoCpuS / (run.bytes / GB) }),
  };
}

/** The S3 workloads (lib/s3.mjs) have their own table, line and reference (lib-storage). */
export const isS3Workload = (w) => w.startsWith('s3-');
/** Workloads of many small uploads: counted in uploads/s and CPU per upload. */
const isSmallWorkload = (w) => w === 'small' || w === 'small-1req';

const round2 = (x) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
const round3 = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);

/**
 * Medians per workload and variant, and the ratios we care about. Ratios are taken between
 * medians of the same bench run (never against numbers from another run or machine).
 * "chunked" has no plain run of its own: the plain reference is the single-PUT large run; nor has
 * "small-1req" (creation-with-upload): its reference is plain's small run (one PUT each).
 * Workloads in `vsFerryLarge` (the ferry-only extension workloads) also get ratioVsFerryLarge:
 * their cost relative to Ferry's own plain `large` upload of the same file.
 */
export function summarize(runs, workloads, variants, { vsFerryLarge = [] } = {}) {
  const summary = {};
  for (const w of workloads) {
    summary[w] = {};
    for (const v of variants) {
      const rs = runs.filter((r) => r.workload === w && r.variant === v);
      if (rs.length === 0) continue;
      const t = rs.map((r) => r.throughput);
      summary[w][v] = {
        rounds: rs.length,
        unit: rs[0].unit,
        throughput: { median: median(t), min: Math.min(...t), max: Math.max(...t) },
        cpuSPerGB: median(rs.map((r) => r.cpuSPerGB)),
        cpuMsPerUpload: median(rs.map((r) => r.cpuMsPerUpload)),
        cpuToResponseSPerGB: median(rs.map((r) => r.cpuToResponseSPerGB ?? NaN)),
        peakRssMB: Math.max(...rs.map((r) => r.peakRssBytes)) / MB,
      };
      if (rs.some((r) => r.motoCpuS !== undefined)) {
        summary[w][v].motoCpuSPerGB = median(rs.map((r) => r.motoCpuSPerGB));
        summary[w][v].motoPeakRssMB = Math.max(...rs.map((r) => r.motoPeakRssBytes)) / MB;
        summary[w][v].motoRssAfterCleanupMB = Math.max(...rs.map((r) => r.motoRssAfterCleanupBytes ?? NaN)) / MB;
      }
      if (rs.some((r) => r.tempPeakBytes !== undefined)) {
        summary[w][v].tempPeakMiB = Math.max(...rs.map((r) => r.tempPeakBytes)) / MiB;
        summary[w][v].tempPeakFiles = Math.max(...rs.map((r) => r.tempPeakFiles));
        // what was still in the temp dir right after each run (should be nothing)
        summary[w][v].tempAfterMiB = Math.max(...rs.map((r) => r.tempAfterBytes)) / MiB;
      }
      const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
      if (rs.some((r) => r.processingS !== undefined)) {
        // processing workloads: the upload alone, and the wait after it until all were completed
        summary[w][v].upload = { unit: rs[0].uploadUnit, ...stats(rs.map((r) => r.uploadThroughput)) };
        summary[w][v].processingMs = stats(rs.map((r) => r.processingS * 1000));
      }
      if (rs.some((r) => r.processingDrainS !== undefined)) {
        // embedded ferry's upload runs: how long after the run its files were all processed (untimed)
        summary[w][v].processingDrainMs = stats(rs.map((r) => r.processingDrainS * 1000));
        summary[w][v].cpuWithProcessingSPerGB = median(rs.map((r) => r.cpuWithProcessingS / (r.bytes / GB)));
      }
      if (rs.some((r) => r.workerCpuS !== undefined)) {
        summary[w][v].workerCpuSPerGB = median(rs.map((r) => r.workerCpuSPerGB));
        summary[w][v].workerCpuMsPerUpload = median(rs.map((r) => r.workerCpuMsPerUpload));
        summary[w][v].workerPeakRssMB = Math.max(...rs.map((r) => r.workerPeakRssBytes)) / MB;
      }
      if (rs.some((r) => r.redisCpuS !== undefined)) {
        summary[w][v].redisCpuSPerGB = median(rs.map((r) => r.redisCpuS / (r.bytes / GB)));
      }
      if (rs.some((r) => r.joinS !== undefined)) {
        summary[w][v].join = {
          ms: stats(rs.map((r) => r.joinS * 1000)),
          MBps: stats(rs.map((r) => r.joinMBps)),
        };
      }
    }
  }
  // Throughput of a variant in one round, for the paired per-round ratios below.
  const thr = (w, v, round) => runs.find((r) => r.workload === w && r.variant === v && r.round === round)?.throughput;
  const ferryLarge = summary.large?.ferry?.throughput.median;
  // S3: everything against lib-storage's upload of the same file (for s3-chunked, its s3-large).
  for (const w of workloads.filter(isS3Workload)) {
    const refW = summary[w]['lib-storage'] ? w : 's3-large';
    const ref = summary[refW]?.['lib-storage']?.throughput.median;
    for (const [v, s] of Object.entries(summary[w])) {
      const applies = v !== 'lib-storage' && ref;
      s.ratioVsLibStorage = applies ? s.throughput.median / ref : null;
      const rounds = [...new Set(runs.filter((r) => r.workload === w && r.variant === v).map((r) => r.round))];
      s.perRound = {
        ratioVsLibStorage: applies
          ? rounds.map((r) => round3(thr(w, v, r) / thr(refW, 'lib-storage', r))).filter((x) => x !== null)
          : [],
      };
    }
  }
  for (const w of workloads.filter((x) => !isS3Workload(x) && !isProcessingWorkload(x))) {
    const plainW = summary[w].plain ? w : (PLAIN_REFERENCE[w] ?? 'large');
    const plainRef = summary[plainW]?.plain?.throughput.median;
    const bare = summary[w]['bare-tus']?.throughput.median;
    const vsLarge = vsFerryLarge.includes(w) && ferryLarge;
    for (const [v, s] of Object.entries(summary[w])) {
      s.ratioVsPlain = v === 'plain' || !plainRef ? null : s.throughput.median / plainRef;
      s.ratioFerryBareTus = v === 'ferry' && bare ? s.throughput.median / bare : null;
      s.ratioVsFerryLarge = v === 'ferry' && vsLarge ? s.throughput.median / ferryLarge : null;
      // The same Ferry built from the foundation commit: what the changes since then cost.
      const foundationV = FOUNDATION_OF[v];
      const foundationRef = foundationV && summary[w][foundationV]?.throughput.median;
      s.ratioVsFoundation = foundationRef ? s.throughput.median / foundationRef : null;
      // The same build embedded (no Redis): what Redis mode costs (issue 12's targets, lib/targets.mjs).
      const embeddedV = EMBEDDED_OF[v];
      const embeddedRef = embeddedV && summary[w][embeddedV]?.throughput.median;
      s.ratioVsEmbedded = embeddedRef ? s.throughput.median / embeddedRef : null;
      // The same ratios within each round (runs a few seconds apart), in the JSON only:
      // their spread shows how far to trust the headline ratio of medians.
      const rounds = [...new Set(runs.filter((r) => r.workload === w && r.variant === v).map((r) => r.round))];
      const perRound = (other, otherW = w) =>
        rounds.map((r) => round3(thr(w, v, r) / thr(otherW, other, r))).filter((x) => x !== null);
      s.perRound = {
        ratioVsPlain: v !== 'plain' && plainRef ? perRound('plain', plainW) : [],
        ratioFerryBareTus: v === 'ferry' && bare ? perRound('bare-tus') : [],
        ratioVsFerryLarge: v === 'ferry' && vsLarge ? perRound('ferry', 'large') : [],
        ratioVsFoundation: foundationRef ? perRound(foundationV) : [],
        ratioVsEmbedded: embeddedRef ? perRound(embeddedV) : [],
      };
    }
  }
  // Round everything once here so the JSON and the table agree.
  for (const w of Object.values(summary)) {
    for (const s of Object.values(w)) {
      s.throughput = {
        median: round2(s.throughput.median),
        min: round2(s.throughput.min),
        max: round2(s.throughput.max),
      };
      s.cpuSPerGB = round2(s.cpuSPerGB);
      s.cpuToResponseSPerGB = round2(s.cpuToResponseSPerGB);
      s.cpuMsPerUpload = round3(s.cpuMsPerUpload);
      s.peakRssMB = Math.round(s.peakRssMB);
      for (const k of [
        'ratioVsPlain',
        'ratioFerryBareTus',
        'ratioVsFerryLarge',
        'ratioVsLibStorage',
        'ratioVsFoundation',
        'ratioVsEmbedded',
      ]) {
        if (k in s) s[k] = round3(s[k]);
      }
      for (const k of ['cpuWithProcessingSPerGB', 'workerCpuSPerGB', 'redisCpuSPerGB']) if (k in s) s[k] = round2(s[k]);
      if ('workerCpuMsPerUpload' in s) s.workerCpuMsPerUpload = round3(s.workerCpuMsPerUpload);
      if ('workerPeakRssMB' in s) s.workerPeakRssMB = Math.round(s.workerPeakRssMB);
      for (const k of ['upload', 'processingMs', 'processingDrainMs']) {
        if (s[k]) for (const m of ['median', 'min', 'max']) s[k][m] = round2(s[k][m]);
      }
      for (const k of ['motoCpuSPerGB', 'tempPeakMiB', 'tempAfterMiB']) if (k in s) s[k] = round2(s[k]);
      for (const k of ['motoPeakRssMB', 'motoRssAfterCleanupMB']) if (k in s) s[k] = Math.round(s[k]);
      if (s.join) {
        for (const k of ['ms', 'MBps']) {
          s.join[k] = { median: round2(s.join[k].median), min: round2(s.join[k].min), max: round2(s.join[k].max) };
        }
      }
    }
  }
  return summary;
}

export const fmt = (x, digits = 2) => (x === null || x === undefined ? '' : x.toFixed(digits));

export const ratioCell = (ratio, perRound) =>
  perRound.length > 1
    ? `${fmt(ratio)}× (${fmt(Math.min(...perRound))}–${fmt(Math.max(...perRound))})`
    : `${fmt(ratio)}×`;

/**
 * Ratio cells show the ratio of the medians, then (min–max) of the same ratio within single rounds.
 * A workload with a join time (parallel) gets one more row for the final POST alone.
 */
export function markdownTable(summary, workloadLabels) {
  const lines = [
    '| workload | variant | throughput (median, min–max) | server CPU | peak RSS MB | ratio vs plain | ratio ferry/bare-tus | ratio vs ferry large | ratio vs foundation |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [w, byVariant] of Object.entries(summary)) {
    if (isS3Workload(w) || isProcessingWorkload(w)) continue; // s3Table, processingTable
    for (const [v, s] of Object.entries(byVariant)) {
      const thr = `${fmt(s.throughput.median, 0)} ${s.unit} (${fmt(s.throughput.min, 0)}–${fmt(s.throughput.max, 0)})`;
      const cpu = isSmallWorkload(w)
        ? `${fmt(s.cpuMsPerUpload, 2)} ms/upload (${fmt(s.cpuSPerGB, 0)} s/GB)`
        : `${fmt(s.cpuSPerGB, 2)} s/GB`;
      const vsPlain =
        s.ratioVsPlain === null ? (v === 'plain' ? '1' : '') : ratioCell(s.ratioVsPlain, s.perRound.ratioVsPlain);
      const vsBare = s.ratioFerryBareTus === null ? '' : ratioCell(s.ratioFerryBareTus, s.perRound.ratioFerryBareTus);
      const vsLarge = s.ratioVsFerryLarge === null ? '' : ratioCell(s.ratioVsFerryLarge, s.perRound.ratioVsFerryLarge);
      const vsFoundation =
        s.ratioVsFoundation == null
          ? Object.values(FOUNDATION_OF).includes(v)
            ? '1'
            : ''
          : ratioCell(s.ratioVsFoundation, s.perRound.ratioVsFoundation);
      lines.push(
        `| ${workloadLabels[w] ?? w} | ${v} | ${thr} | ${cpu} | ${s.peakRssMB} | ${vsPlain} | ${vsBare} | ${vsLarge} | ${vsFoundation} |`,
      );
      if (s.join) {
        const { ms, MBps } = s.join;
        const join = `${fmt(MBps.median, 0)} MB/s (${fmt(MBps.min, 0)}–${fmt(MBps.max, 0)}), ${fmt(ms.median, 0)} ms (${fmt(ms.min, 0)}–${fmt(ms.max, 0)})`;
        lines.push(`| ↳ join alone (the final POST) | ${v} | ${join} | | | | | | |`);
      }
    }
  }
  return lines.join('\n');
}

/**
 * One line: ferry's throughput ratios per workload, the numbers to watch over time. The ferry-only
 * extension workloads have their own line (extensionsLine), so this one keeps its shape.
 */
export function summaryLine(summary) {
  const part = (key) =>
    Object.entries(summary)
      .filter(
        ([w, byVariant]) =>
          !isProcessingWorkload(w) && byVariant.ferry?.[key] != null && byVariant.ferry.ratioVsFerryLarge == null,
      )
      .map(([w, byVariant]) => `${w} ${fmt(byVariant.ferry[key])}×`)
      .join(', ');
  const plain = part('ratioVsPlain');
  const bare = part('ratioFerryBareTus');
  // Nothing to compare ferry with here (no plain, no bare-tus): the foundation line may have it.
  if (!plain && !bare) return summary.large?.ferry ? '' : 'ferry was not measured in this run.';
  return `ferry/plain: ${plain || 'n/a'}; ferry/bare-tus: ${bare || 'n/a'}`;
}

/**
 * One more line for the ferry-only extension workloads, or '' if none ran, e.g.
 * "checksum cost: crc32c 0.90×, sha1 0.70× of ferry large; parallel 4 partials: 1.10× of ferry large, join 900 MB/s (570 ms)".
 */
export function extensionsLine(summary, { partials }) {
  const items = [];
  const checksums = Object.entries(summary)
    .filter(([w, byVariant]) => w.startsWith('checksum-') && byVariant.ferry?.ratioVsFerryLarge != null)
    .map(([w, byVariant]) => `${w.slice('checksum-'.length)} ${fmt(byVariant.ferry.ratioVsFerryLarge)}×`);
  if (checksums.length) items.push(`checksum cost: ${checksums.join(', ')} of ferry large`);
  const parallel = summary.parallel?.ferry;
  if (parallel?.ratioVsFerryLarge != null) {
    const join = parallel.join
      ? `, join ${fmt(parallel.join.MBps.median, 0)} MB/s (${fmt(parallel.join.ms.median, 0)} ms)`
      : '';
    items.push(`parallel ${partials} partials: ${fmt(parallel.ratioVsFerryLarge)}× of ferry large${join}`);
  }
  return items.join('; ');
}

/**
 * The S3 workloads' table. "uploader" is the process that sends the bytes to S3: Ferry for ferry-s3,
 * the bench process itself (running lib-storage) for lib-storage. moto's CPU and peak RSS are for
 * the same run; temp disk is the peak size of Ferry's FERRY_S3_TEMP_DIR.
 */
export function s3Table(summary, workloadLabels) {
  const lines = [
    '| workload | variant | throughput (median, min–max) | uploader CPU | uploader peak RSS MB | moto CPU | moto peak RSS MB | temp disk peak | ratio vs lib-storage |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [w, byVariant] of Object.entries(summary)) {
    if (!isS3Workload(w)) continue;
    for (const [v, s] of Object.entries(byVariant)) {
      const thr = `${fmt(s.throughput.median, 0)} ${s.unit} (${fmt(s.throughput.min, 0)}–${fmt(s.throughput.max, 0)})`;
      const temp = s.tempPeakMiB === undefined ? '' : `${fmt(s.tempPeakMiB, 0)} MiB (${s.tempPeakFiles} files)`;
      const ratio =
        s.ratioVsLibStorage === null || s.ratioVsLibStorage === undefined
          ? v === 'lib-storage'
            ? '1'
            : ''
          : ratioCell(s.ratioVsLibStorage, s.perRound.ratioVsLibStorage);
      lines.push(
        `| ${workloadLabels[w] ?? w} | ${v} | ${thr} | ${fmt(s.cpuSPerGB)} s/GB | ${s.peakRssMB} | ${fmt(s.motoCpuSPerGB)} s/GB | ${s.motoPeakRssMB} | ${temp} | ${ratio} |`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * One line for the S3 workloads, or '' if they didn't run, e.g.
 * "s3 (256 MiB, moto): ferry-s3/lib-storage 0.85× (chunked 0.70×), temp disk peak 40 MiB, ferry RSS 140 MB; moto CPU 7.9 vs 7.5 s/GB".
 */
export function s3Line(summary, { mib }) {
  const ferry = summary['s3-large']?.['ferry-s3'];
  const lib = summary['s3-large']?.['lib-storage'];
  if (!ferry) return '';
  const chunked = summary['s3-chunked']?.['ferry-s3'];
  const ratio = ferry.ratioVsLibStorage != null ? `ferry-s3/lib-storage ${fmt(ferry.ratioVsLibStorage)}×` : 'ferry-s3';
  const chunkedPart = chunked?.ratioVsLibStorage != null ? ` (chunked ${fmt(chunked.ratioVsLibStorage)}×)` : '';
  const ferries = [ferry, chunked].filter(Boolean);
  const tempPeak = Math.max(...ferries.map((s) => s.tempPeakMiB));
  const rss = Math.max(...ferries.map((s) => s.peakRssMB));
  const moto = lib
    ? `moto CPU ${fmt(ferry.motoCpuSPerGB, 1)} (ferry-s3) vs ${fmt(lib.motoCpuSPerGB, 1)} (lib-storage) s/GB`
    : `moto CPU ${fmt(ferry.motoCpuSPerGB, 1)} s/GB`;
  return `s3 (${mib} MiB, moto): ${ratio}${chunkedPart}, temp disk peak ${fmt(tempPeak, 0)} MiB, ferry RSS ${rss} MB; ${moto}`;
}

/**
 * One line for the comparison with the foundation commit, or '' if it didn't run, e.g.
 * "vs foundation 2b9bf12: ferry/ferry-foundation large 0.98× (0.95–1.01), chunked 0.99× (…), small 0.85× (…);
 * ferry-redis/ferry-foundation-redis (server alone, no worker) large 0.97× (…), …".
 */
export function foundationLine(summary, { commit }) {
  const items = [];
  for (const [v, ref] of Object.entries(FOUNDATION_OF)) {
    const parts = ['large', 'chunked', 'small', 'small-1req']
      .filter((w) => summary[w]?.[v]?.ratioVsFoundation != null)
      .map((w) => {
        const s = summary[w][v];
        return `${w} ${ratioCell(s.ratioVsFoundation, s.perRound.ratioVsFoundation)}`;
      });
    if (parts.length) {
      items.push(`${v}/${ref}${v === 'ferry-redis' ? ' (server alone, no worker)' : ''} ${parts.join(', ')}`);
    }
  }
  return items.length ? `vs foundation ${commit ? commit.slice(0, 7) : ''}: ${items.join('; ')}` : '';
}

/**
 * The processing workloads' table: throughput through processing, the upload alone, how long after
 * the last upload's 204 the last file was completed, CPU of the server and (Redis) of the worker.
 */
export function processingTable(summary, workloadLabels) {
  const lines = [
    '| workload | variant | processing throughput (median, min–max) | upload alone (median) | last file completed after the last upload (median, min–max) | server CPU | worker CPU | peak RSS MB server / worker |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const [w, byVariant] of Object.entries(summary)) {
    if (!isProcessingWorkload(w)) continue;
    const perFile = w === 'processing-small';
    for (const [v, s] of Object.entries(byVariant)) {
      const what = perFile ? 'files/s, first POST to all completed' : 'MB/s, 204 to completed';
      const thr = `${fmt(s.throughput.median, 0)} ${what} (${fmt(s.throughput.min, 0)}–${fmt(s.throughput.max, 0)})`;
      const upload = s.upload ? `${fmt(s.upload.median, 0)} ${s.upload.unit}` : '';
      const wait = s.processingMs
        ? `${fmt(s.processingMs.median, 0)} ms (${fmt(s.processingMs.min, 0)}–${fmt(s.processingMs.max, 0)})`
        : '';
      const server = perFile ? `${fmt(s.cpuMsPerUpload, 2)} ms/file` : `${fmt(s.cpuSPerGB, 2)} s/GB`;
      const worker =
        s.workerCpuSPerGB === undefined
          ? 'none (processes in the server)'
          : perFile
            ? `${fmt(s.workerCpuMsPerUpload, 2)} ms/file`
            : `${fmt(s.workerCpuSPerGB, 2)} s/GB`;
      const rss = `${s.peakRssMB} / ${s.workerPeakRssMB ?? '–'}`;
      lines.push(
        `| ${workloadLabels[w] ?? w} | ${v} | ${thr} | ${upload} | ${wait} | ${server} | ${worker} | ${rss} |`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * One line for processing, or '' if it didn't run, e.g. "processing: ferry (embedded, in-process)
 * 200 files 150 files/s (last done 120 ms after the last upload), 256 MiB 450 MB/s; ferry-redis+worker …".
 */
export function processingLine(summary) {
  const small = summary['processing-small'] ?? {};
  const large = summary['processing-large'] ?? {};
  const items = [...new Set([...Object.keys(small), ...Object.keys(large)])].map((v) => {
    const parts = [];
    if (small[v]) {
      parts.push(
        `small ${fmt(small[v].throughput.median, 0)} files/s (last completed ${fmt(small[v].processingMs.median, 0)} ms after the last upload)`,
      );
    }
    if (large[v]) parts.push(`large ${fmt(large[v].throughput.median, 0)} MB/s of processing`);
    const who =
      v === 'ferry' ? 'ferry (embedded, in-process)' : v === 'ferry-redis+worker' ? 'ferry-redis + 1 worker' : v;
    return `${who}: ${parts.join(', ')}`;
  });
  return items.length ? `processing: ${items.join('; ')}` : '';
}
