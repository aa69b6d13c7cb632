/**
 * A tus-js-client (Node) file source that delivers the first `stallAt` bytes of a file and then
 * stalls — never ends, never errors — until `release()`. Use it to stop an upload at a known
 * byte position deterministically (tus-js-client throttles progress events to one per 100 ms, so
 * "abort at 40%" from `onProgress` is flaky).
 *
 *   const src = stallingSource(file.path, 3 * MiB);
 *   const upload = new Upload(src.file, { endpoint, fileReader: src.fileReader, chunkSize: MiB, ... });
 *   upload.start();
 *   await src.stalled;          // bytes [0, 3 MiB) have been handed to the HTTP request
 *   await upload.abort();       // the PATCH in flight is cut (its bytes may already be stored)
 *   src.release();              // always release in cleanup (lets stalled streams finish)
 *
 * Works by implementing tus-js-client's `fileReader` option: `slice(start, end)` returns a file
 * ReadStream-like `Readable` with a `size` property (sent with Content-Length), exactly as
 * tus-js-client's own FileSource does; a slice that crosses `stallAt` yields bytes up to `stallAt`
 * and then waits for `release()`. Random access works, so tus-js-client's retries and resumes
 * (re-slicing from the server's offset) behave as with a plain `fs.ReadStream`. The source has a
 * known size (the file's), so no `uploadSize` is needed, and `chunkSize` may be left unset (one PATCH).
 */
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { Upload } from 'tus-js-client';

type UploadInput = ConstructorParameters<typeof Upload>[0];
type UploadOptions = ConstructorParameters<typeof Upload>[1];
type TusFileReader = NonNullable<UploadOptions['fileReader']>;

export interface StallingSource {
  /** Pass as the first argument of `new Upload(file, options)`. */
  readonly file: UploadInput;
  /** Pass as the `fileReader` option. */
  readonly fileReader: TusFileReader;
  /** The file's size. */
  readonly size: number;
  /** Resolves once every byte before `stallAt` has been handed out and a slice waits at `stallAt`. */
  readonly stalled: Promise<void>;
  /** Highest file position handed out so far (≤ stallAt until released). */
  bytesHandedOut(): number;
  /** Let stalled and future slices deliver everything. Idempotent. */
  release(): void;
}

export function stallingSource(path: string, stallAt: number): StallingSource {
  const size = statSync(path).size;
  let handedOut = 0;
  let releaseFn!: () => void;
  const released = new Promise<void>((r) => (releaseFn = r));
  let isReleased = false;
  let stalledFn!: () => void;
  const stalled = new Promise<void>((r) => (stalledFn = r));
  const open = new Set<Readable>();

  async function* range(start: number, end: number): AsyncGenerator<Buffer> {
    if (end <= start) return;
    for await (const chunk of createReadStream(path, { start, end: end - 1 })) {
      const b = chunk as Buffer;
      yield b;
    }
  }

  async function* sliceGen(start: number, end: number): AsyncGenerator<Buffer> {
    const beforeStall = isReleased ? end : Math.min(end, stallAt);
    for await (const b of range(start, beforeStall)) {
      handedOut = Math.max(handedOut, start + b.length);
      start += b.length;
      yield b;
    }
    if (start < end) {
      if (!isReleased) {
        handedOut = Math.max(handedOut, start);
        stalledFn();
        await released;
      }
      for await (const b of range(start, end)) {
        handedOut = Math.max(handedOut, start + b.length);
        start += b.length;
        yield b;
      }
    }
  }

  const fileReader: TusFileReader = {
    openFile: () =>
      Promise.resolve({
        size,
        slice(start: number, end: number) {
          const e = Math.min(end, size);
          const stream = Readable.from(sliceGen(start, e), { objectMode: false }) as Readable & {
            size: number;
          };
          stream.size = Math.max(0, e - start);
          open.add(stream);
          stream.once('close', () => open.delete(stream));
          return Promise.resolve({ value: stream, done: e >= size });
        },
        close() {
          for (const s of open) s.destroy();
        },
      }),
  };

  return {
    // tus-js-client passes this to `fileReader.openFile` (ignored) and to its fingerprint
    // function (which returns null for it, so no URL storage entry is made).
    file: { stallingSource: path } as unknown as UploadInput,
    fileReader,
    size,
    stalled,
    bytesHandedOut: () => handedOut,
    release: () => {
      isReleased = true;
      releaseFn();
    },
  };
}
