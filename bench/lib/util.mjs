// Small helpers: statistics, files, disk space.
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, openSync, closeSync, fsyncSync, writeSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

export const MiB = 1024 * 1024;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Integer or float from the environment, with a default and a sanity check. */
export function envNumber(name, def, { min = 0, integer = true } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(`${name}=${raw}: expected ${integer ? 'an integer' : 'a number'} >= ${min}`);
  }
  return n;
}

/** A directory from the environment, made absolute (the servers run in other directories); null if unset. */
export function envDir(name) {
  const raw = process.env[name];
  return raw ? path.resolve(raw) : null;
}

/**
 * Write `size` bytes of crypto-random data to `file` and return its sha256.
 * Random data so that nothing on the path (disk, page cache, future compression) can
 * take a shortcut on it.
 */
export function writeRandomFile(file, size) {
  return writeRandomFileWithPrefixes(file, size, [size])[size];
}

/**
 * writeRandomFile, also returning the sha256 of the first `n` bytes for each `n` in `prefixes`
 * ({ [n]: hex }), in the same single pass: the RSS workload uploads prefixes of one file.
 */
export function writeRandomFileWithPrefixes(file, size, prefixes) {
  const cuts = [...new Set(prefixes)].filter((n) => n > 0 && n <= size).sort((a, b) => a - b);
  const digests = {};
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(4 * MiB);
  const fd = openSync(file, 'w');
  try {
    for (let done = 0; done < size;) {
      // A chunk never crosses a prefix boundary, so each prefix's digest is a copy of the hash there.
      const next = cuts.find((n) => n > done) ?? size;
      const len = Math.min(buf.length, next - done);
      const chunk = buf.subarray(0, len);
      randomFillSync(chunk);
      hash.update(chunk);
      writeSync(fd, chunk);
      done += len;
      if (done === next && cuts.includes(done)) digests[done] = hash.copy().digest('hex');
    }
    // Flush now: otherwise the kernel writes these dirty pages back ~30 s later, in the
    // middle of a timed run, and slows whichever server is being measured then.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return digests;
}

export async function sha256File(file) {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** Bytes available to us on the filesystem holding `dir`. */
export function freeBytes(dir) {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Run `fn(item, index)` over `items` with at most `concurrency` in flight. */
export async function mapConcurrent(items, concurrency, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (err) {
        next = items.length; // stop the other workers from starting more
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
