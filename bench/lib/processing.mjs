// Ferry's processing pipeline (type sniffing, then sha256 + crc32c over the whole file), seen from
// a client: every completed upload becomes a file that goes `queued` → `processing` → `completed`.
//
//   processing-small  N small uploads (the `small` set), timed from the first POST until every file
//                     is `completed`: files/s through upload *and* processing; the drain after the
//                     last upload's 204 is kept too (how far processing lags behind)
//   processing-large  the large file in one PATCH, then the time from its 204 until the file is
//                     `completed`: MB/s of processing (hashing, mostly)
//
// Who processes: `ferry` (embedded) itself, in-process; in Redis mode a `ferry worker` process
// beside the server (the ferry-redis+worker pair). Completion is read through the API:
// `GET /v1/files?status=queued&limit=1` and `…status=processing&limit=1` until both are empty
// (small; the server holds no other files then), `GET /v1/files/<id>` (large).
import { performance } from 'node:perf_hooks';
import * as tus from './tus-client.mjs';
import { mapConcurrent, sleep } from './util.mjs';

export const isProcessingWorkload = (w) => w.startsWith('processing-');

/** The file id of a tus upload URL (`…/files/<id>`): Ferry's file id is its upload id. */
export const fileIdOf = (url) => new URL(url).pathname.split('/').pop();

async function getJson(url, agent) {
  const res = await tus.request(url, { agent, headers: { Accept: 'application/json' } });
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
  return JSON.parse(res.text);
}

/** One file of the server still `queued` or `processing` (checked in that order), or null. */
export async function pendingFile(base, agent) {
  // queued before processing: a file that moves on between the two requests is seen in the second.
  for (const status of ['queued', 'processing']) {
    const { data } = await getJson(`${base}/v1/files?status=${status}&limit=1`, agent);
    if (data.length) return data[0];
  }
  return null;
}

/** Fails if the server holds a `failed` file: processing refused one of ours (it should not). */
async function checkNoneFailed(base, agent, what) {
  const { data } = await getJson(`${base}/v1/files?status=failed&limit=1`, agent);
  if (data.length) {
    throw new Error(`${what}: file ${data[0].id} failed processing: ${JSON.stringify(data[0].error)}`);
  }
}

/**
 * Polls until no file is pending; resolves with the seconds waited. A file still pending after
 * `timeoutS` fails the bench (processing stuck, or no worker running).
 */
export async function waitNoPending(base, { pollMs, timeoutS, agent, what }) {
  const t0 = performance.now();
  const deadline = t0 + timeoutS * 1000;
  for (;;) {
    const pending = await pendingFile(base, agent);
    if (!pending) return (performance.now() - t0) / 1000;
    if (performance.now() > deadline) {
      throw new Error(`${what}: file ${pending.id} still ${pending.status} after ${timeoutS} s`);
    }
    await sleep(pollMs);
  }
}

/** Polls one file until it is `completed` (or fails the bench if it `failed`). */
async function waitCompleted(base, id, { pollMs, timeoutS, agent, what }) {
  const deadline = performance.now() + timeoutS * 1000;
  for (;;) {
    const { data } = await getJson(`${base}/v1/files/${id}`, agent);
    if (data.status === 'completed') return;
    if (data.status === 'failed')
      throw new Error(`${what}: file ${id} failed processing: ${JSON.stringify(data.error)}`);
    if (performance.now() > deadline) throw new Error(`${what}: file ${id} still ${data.status} after ${timeoutS} s`);
    await sleep(pollMs);
  }
}

/**
 * The file record says `completed` with the checksums of the source (expected: { size, sha256,
 * crc32c (base64) }): processing read every byte, and read the right ones.
 */
export async function verifyProcessed(v, ref, expected) {
  const id = fileIdOf(ref.url);
  const { data } = await getJson(`${v.base}/v1/files/${id}`);
  const problems = [];
  if (data.status !== 'completed') problems.push(`status ${data.status}`);
  if (data.size !== expected.size) problems.push(`size ${data.size}, expected ${expected.size}`);
  if (data.checksums?.sha256 !== expected.sha256)
    problems.push(`sha256 ${data.checksums?.sha256}, expected ${expected.sha256}`);
  if (expected.crc32c && data.checksums?.crc32c !== expected.crc32c) {
    problems.push(`crc32c ${data.checksums?.crc32c}, expected ${expected.crc32c}`);
  }
  if (problems.length)
    throw new Error(`processing verification failed for ${v.name} file ${id}: ${problems.join('; ')}`);
}

/**
 * Workload definitions in run.mjs's shape, for the variants that process (`v.processing`).
 * `small` / `smallExpected`: the small uploads and their { size, sha256, crc32c };
 * `large` ({ size, sha256, crc32c }) and `largeFile`: the large file.
 */
export function processingWorkloads({ config, small, smallExpected, largeFile, large }) {
  const { pollMs, timeoutS } = config.processing;
  const applies = (v) => Boolean(v.processing);
  return {
    'processing-small': {
      label: `processing small (${config.smallCount} × ${config.smallKiB} KiB, ${config.smallConcurrency} at a time, until all completed)`,
      applies,
      processing: true,
      run: async (v, agent) => {
        const what = `${v.name} processing-small`;
        const t0 = performance.now();
        const refs = await mapConcurrent(small, config.smallConcurrency, (buf) => v.uploadBuffer(buf, { agent }));
        const t1 = performance.now();
        await waitNoPending(v.base, { pollMs, timeoutS, agent, what });
        const t2 = performance.now();
        await checkNoneFailed(v.base, agent, what);
        return { refs, extra: { uploadS: (t1 - t0) / 1000, processingS: (t2 - t1) / 1000 } };
      },
      verify: (v, refs) =>
        mapConcurrent(refs, 8, async (r, i) => {
          await verifyProcessed(v, r, smallExpected[i]);
          await v.verify(r, smallExpected[i]);
        }),
      bytes: config.smallCount * config.smallKiB * 1024,
      uploads: config.smallCount,
    },
    'processing-large': {
      label: `processing large (${config.largeMiB} MiB, 1 PATCH, then until completed)`,
      applies,
      processing: true,
      run: async (v, agent) => {
        const what = `${v.name} processing-large`;
        const t0 = performance.now();
        const ref = await v.uploadFile(largeFile, large.size, { agent });
        const t1 = performance.now();
        await waitCompleted(v.base, fileIdOf(ref.url), { pollMs, timeoutS, agent, what });
        const t2 = performance.now();
        return { refs: [ref], extra: { uploadS: (t1 - t0) / 1000, processingS: (t2 - t1) / 1000 } };
      },
      verify: async (v, refs) => {
        await verifyProcessed(v, refs[0], large);
        await v.verify(refs[0], large);
      },
      bytes: large.size,
      uploads: 1,
    },
  };
}
