// Issue 12 ("The fastest upload path in Node"): its targets, each judged against this run's
// numbers. Every value comes from the summary (lib/report.mjs) or the RSS workload (lib/rss.mjs);
// nothing is measured here. A target whose variant or workload was not in the run is
// "not measured", with what it needs.
import { fmt, ratioCell } from './report.mjs';

/** A row's status: the target is judged on the median ratio (the range is there to show the noise). */
export const MET = 'met';
export const NOT_MET = 'not met';
export const NOT_MEASURED = 'not measured';

/** What the issue asks for, when the run used something else (labels say what this run used). */
const ISSUE_LARGE_MIB = 1024;
const ISSUE_RSS_MIB = [256, 5120];

const judge = (value, { op, bound }) => ((op === '>=' ? value >= bound : value <= bound) ? MET : NOT_MET);

/**
 * Show a ratio with two decimals, or three when two would round it onto the bound and hide which
 * side of it the value is on (0.846 is "not met" for ≥ 0.85).
 */
function ratioText(value, perRound, bound) {
  if (Math.abs(value - bound) >= 0.005) return ratioCell(value, perRound);
  const three = (x) => x.toFixed(3);
  return perRound.length > 1
    ? `${three(value)}× (${three(Math.min(...perRound))}–${three(Math.max(...perRound))})`
    : `${three(value)}×`;
}

const boundText = ({ op, bound }) => `${op === '>=' ? '≥' : '≤'} ${fmt(bound)}×`;

/**
 * A ratio target read from summary[workload][variant][key] (with perRound[key] for the range).
 * `needs` says what the run must include, for the "not measured" text.
 */
function ratioRow(summary, { id, label, workload, variant, key, target, needs }) {
  const s = summary[workload]?.[variant];
  const value = s?.[key];
  if (value === null || value === undefined) {
    return { id, label, target: boundText(target), ...target, status: NOT_MEASURED, measured: `needs ${needs}` };
  }
  const perRound = s.perRound?.[key] ?? [];
  return {
    id,
    label,
    target: boundText(target),
    ...target,
    value,
    ...(perRound.length > 1 ? { min: Math.min(...perRound), max: Math.max(...perRound) } : {}),
    rounds: perRound.length,
    status: judge(value, target),
    measured: ratioText(value, perRound, target.bound),
  };
}

/**
 * Server CPU per GB of the large upload to its last response, ferry over plain (medians; the summary
 * has no per-round CPU ratio). The upload path ends with the response: what embedded Ferry does next
 * (processing: sniffing and hashing the stored file) is a job plain has no counterpart of, so it is
 * shown beside the ratio (the table's server CPU, read 250 ms later) but not judged.
 */
function cpuRow(summary) {
  const target = { op: '<=', bound: 1.3 };
  const base = {
    id: 'cpu-large',
    label: 'server CPU s/GB to the response, large: ferry/plain',
    target: boundText(target),
    ...target,
  };
  const ferry = summary.large?.ferry;
  const plain = summary.large?.plain;
  if (!ferry?.cpuToResponseSPerGB || !plain?.cpuToResponseSPerGB) {
    return { ...base, status: NOT_MEASURED, measured: 'needs ferry and plain, large' };
  }
  const value = Math.round((ferry.cpuToResponseSPerGB / plain.cpuToResponseSPerGB) * 1000) / 1000;
  const withAfter = (ferry.cpuSPerGB / plain.cpuSPerGB).toFixed(2);
  return {
    ...base,
    value,
    status: judge(value, target),
    measured:
      `${ratioText(value, [], target.bound)} (${fmt(ferry.cpuToResponseSPerGB)} vs ${fmt(plain.cpuToResponseSPerGB)} s/GB; ` +
      `${withAfter}× with the 250 ms after the response, where embedded Ferry starts processing)`,
  };
}

/** Peak RSS of ferry over the RSS workload's sizes: max/min − 1 within 10%. */
function rssRow(rss) {
  const target = { op: '<=', bound: 0.1 };
  const sizes = rss?.sizesMiB ?? [];
  const sizeText = sizes.length ? `${sizes[0]} → ${sizes.at(-1)} MiB` : 'BENCH_RSS_SIZES';
  const issue = ISSUE_RSS_MIB.every((m) => sizes.includes(m)) ? '' : `; issue: ${ISSUE_RSS_MIB.join(' → ')} MiB`;
  const base = {
    id: 'rss-flat',
    label: `ferry peak RSS flat, ${sizeText}${sizes.length ? issue : ''}`,
    target: 'within +10%',
    ...target,
  };
  const s = rss?.summary?.ferry;
  if (!s || s.spread === null) {
    return { ...base, status: NOT_MEASURED, measured: 'needs BENCH_RSS_SIZES (2+ sizes) and ferry' };
  }
  return {
    ...base,
    value: s.spread,
    status: judge(s.spread, target),
    measured: `+${(s.spread * 100).toFixed(1)}% (${s.minMB}–${s.maxMB} MB)`,
  };
}

/**
 * The rows, in the issue's order. `config` is run.mjs's (sizes for the labels), `rss` the RSS
 * workload's result or null. Each row: { id, label, target, op, bound, status, measured (text),
 * value, min, max (per-round range, when there is one) }.
 */
export function targetRows(summary, { config, rss = null }) {
  const large = config.largeMiB === ISSUE_LARGE_MIB ? '1 GiB' : `${config.largeMiB} MiB; issue: 1 GiB`;
  const small = `${config.smallCount} × ${config.smallKiB} KiB, ${config.smallConcurrency} at a time`;
  const s3Size = config.s3 ? `${config.s3.mib} MiB` : 'BENCH_S3_MIB';
  return [
    ratioRow(summary, {
      id: 'large',
      label: `large (${large}), one request: ferry/plain`,
      workload: 'large',
      variant: 'ferry',
      key: 'ratioVsPlain',
      target: { op: '>=', bound: 0.85 },
      needs: 'ferry and plain',
    }),
    ratioRow(summary, {
      id: 'chunked',
      label: `large in ${config.chunkMiB} MiB chunks: ferry chunked/plain large PUT`,
      workload: 'chunked',
      variant: 'ferry',
      key: 'ratioVsPlain',
      target: { op: '>=', bound: 0.75 },
      needs: 'ferry, plain and BENCH_CHUNKED=1',
    }),
    ratioRow(summary, {
      id: 'small',
      label: `small (${small}): ferry/plain`,
      workload: 'small',
      variant: 'ferry',
      key: 'ratioVsPlain',
      target: { op: '>=', bound: 0.5 },
      needs: 'ferry and plain',
    }),
    ratioRow(summary, {
      id: 'small-1req',
      label: `small in one request (${small}, creation-with-upload): ferry/plain`,
      workload: 'small-1req',
      variant: 'ferry',
      key: 'ratioVsPlain',
      target: { op: '>=', bound: 0.5 },
      needs: 'ferry, plain and BENCH_SMALL_ONE_REQUEST=1',
    }),
    cpuRow(summary),
    rssRow(rss),
    ratioRow(summary, {
      id: 'redis-large',
      label: 'Redis vs embedded, large: ferry-redis/ferry',
      workload: 'large',
      variant: 'ferry-redis',
      key: 'ratioVsEmbedded',
      target: { op: '>=', bound: 0.9 },
      needs: 'ferry and ferry-redis',
    }),
    ratioRow(summary, {
      id: 'redis-small',
      label: 'Redis vs embedded, small: ferry-redis/ferry',
      workload: 'small',
      variant: 'ferry-redis',
      key: 'ratioVsEmbedded',
      target: { op: '>=', bound: 0.7 },
      needs: 'ferry and ferry-redis',
    }),
    ratioRow(summary, {
      id: 's3-large',
      label: `S3 large (${s3Size}, moto): ferry-s3/lib-storage`,
      workload: 's3-large',
      variant: 'ferry-s3',
      key: 'ratioVsLibStorage',
      target: { op: '>=', bound: 0.8 },
      needs: 'ferry-s3 and lib-storage (moto_server)',
    }),
  ];
}

/** The rows as a Markdown table, narrow enough for a terminal. */
export function targetsTable(rows) {
  const lines = ['| issue 12 target | measured (median, per-round min–max) | target | status |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.label} | ${r.measured} | ${r.target} | ${r.status} |`);
  return lines.join('\n');
}

/** e.g. "targets (issue 12): 3 met, 2 not met, 3 not measured (not met: large, cpu-large)". */
export function targetsLine(rows) {
  const count = (status) => rows.filter((r) => r.status === status).length;
  const missed = rows.filter((r) => r.status === NOT_MET).map((r) => r.id);
  return (
    `targets (issue 12): ${count(MET)} met, ${count(NOT_MET)} not met, ${count(NOT_MEASURED)} not measured` +
    (missed.length ? ` (not met: ${missed.join(', ')})` : '')
  );
}
