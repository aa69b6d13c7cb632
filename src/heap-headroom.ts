import v8 from 'node:v8';

/** Room above the live JavaScript heap before V8 starts a full garbage collection. */
export const HEADROOM_BYTES = 64 * 1024 * 1024;
/** How often the growing factor follows the live heap. */
const ADJUST_EVERY_MS = 5_000;
/** The largest factor set (5× the live heap); below 100% V8's own factor applies. */
const MAX_PERCENT = 400;

/**
 * The `--heap-growing-percent` that leaves about `HEADROOM_BYTES` above a live heap of `liveBytes`,
 * or 0 (V8 decides, as by default) once the live heap is large enough that V8's own factor leaves
 * as much room.
 */
export function growingPercentFor(liveBytes: number): number {
  const percent = Math.ceil((HEADROOM_BYTES / Math.max(liveBytes, 1)) * 100);
  return percent < 100 ? 0 : Math.min(percent, MAX_PERCENT);
}

/**
 * Why: V8 sets the old generation's limit a little above the live heap (about 15 MB in Ferry), and
 * request bodies arrive as new Buffers, tens of MB of them between two young-generation collections.
 * With that little room V8 started a full mark-compact every 15–25 MB of a large upload (10–17 per
 * 256 MiB, `--trace-gc-nvp`), where a plain `node:http` server does only young collections. With
 * about 64 MB of room Ferry does none either; in bench runs (1 GiB, 3 rounds) its server CPU per GB
 * of a large upload fell from 2.4–2.9 s to 1.4–2.4 s (README, Performance).
 * `--initial-old-space-size=64` has the same effect but only as a command-line flag; the growing
 * factor is read each time V8 sets the limit, so it can follow the live heap from here, for every
 * way Ferry is started. The cost is memory: the JavaScript heap may
 * grow by about 64 MB before it is collected. The adjustment runs as long as the process does.
 */
export function keepHeapHeadroom(): void {
  let current = -1;
  const adjust = () => {
    const percent = growingPercentFor(v8.getHeapStatistics().used_heap_size);
    if (percent === current) return;
    current = percent;
    v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
  };
  adjust();
  setInterval(adjust, ADJUST_EVERY_MS).unref();
}
