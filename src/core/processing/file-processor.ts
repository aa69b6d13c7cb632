import { Readable } from 'node:stream';
import type { Files } from '../files/files.js';
import type { ByteRange, Job } from '../ports.js';
import { arrivalDigestsFromJson } from '../uploads/arrival-digests.js';
import type { Uploads } from '../uploads/uploads.js';
import { PROCESSING_RETRY } from '../files/files.js';
import type { ProcessingStep } from './steps.js';

/**
 * A file up to this size is read from storage once and every step reads it from memory: each step
 * reading it again (type sniffing reads the head, checksums all of it) costs more in opening, reading
 * and closing than the bytes themselves. Bigger files are streamed from storage by each step.
 */
const READ_ONCE_MAX_BYTES = 1024 * 1024;

export interface FileProcessorOptions {
  readonly files: Files;
  readonly uploads: Uploads;
  readonly steps: readonly ProcessingStep[];
}

/**
 * Runs the processing steps on a completed file: `queued` → `processing` → `completed`, or `failed`
 * with the reason a step gave (the file's bytes are then removed so they are never served). An error
 * (storage down, a crash) is retried by the job queue; the last attempt fails the file with
 * `processing_error`. Every step is idempotent, so running a job twice is harmless.
 */
export class FileProcessor {
  constructor(private readonly options: FileProcessorOptions) {}

  readonly handle = async (job: Job, attempt: number): Promise<void> => {
    const { files, uploads } = this.options;
    const fileId = String(job.data.fileId);
    let file = await files.record(fileId);
    if (!file || (file.status !== 'queued' && file.status !== 'processing')) return;
    if (file.status === 'queued') file = await files.transition(file, { status: 'processing' }, 'processing');
    try {
      const size = file.size ?? file.receivedBytes;
      const arrived = arrivalDigestsFromJson(job.data.arrived, size);
      // The exact range: a stream that knows where the file ends needs no read to find out.
      const read =
        size <= READ_ONCE_MAX_BYTES
          ? readingOnceWhenAsked(() =>
              size === 0
                ? Promise.resolve(Buffer.alloc(0))
                : readAll(uploads.read(fileId, { start: 0, end: size - 1 })),
            )
          : (range?: ByteRange) => uploads.read(fileId, range);
      for (const step of this.options.steps) {
        const result = await step.run({ file, ...(arrived ? { arrived } : {}), read });
        if (!result.ok) {
          await uploads.discardCompleted(fileId, AbortSignal.timeout(30_000), async () => true);
          const error = { code: result.code, message: result.message };
          await files.transition(file, { status: 'failed', error }, 'failed', { error });
          return;
        }
        if (result.findings) file = { ...file, ...result.findings };
      }
    } catch (error) {
      if (attempt < PROCESSING_RETRY.attempts) throw error;
      const reason = { code: 'processing_error', message: 'processing failed repeatedly' };
      await files.transition(file, { status: 'failed', error: reason }, 'failed', { error: reason });
      return;
    }
    // Another request may have deleted (or failed) the file meanwhile: only a file still waiting for
    // this job completes. `queued` too: `processing` is not durable (see Files.transition), so a
    // registry rebuilt from the durable records meanwhile (Redis restarted empty) says `queued`.
    const current = await files.record(fileId);
    if (current?.status !== 'processing' && current?.status !== 'queued') return;
    await files.transition(
      current,
      { status: 'completed', detectedType: file.detectedType, checksums: file.checksums },
      'completed',
    );
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * `read` for steps over a small file read into memory once, by the first step that asks (with digests
 * taken on arrival, none may): a stream of the range (inclusive, as ByteRange is).
 */
function readingOnceWhenAsked(readFile: () => Promise<Buffer>): (range?: ByteRange) => Readable {
  let bytes: Promise<Buffer> | undefined;
  return (range) =>
    Readable.from(
      (async function* () {
        const all = await (bytes ??= readFile());
        yield range ? all.subarray(range.start, range.end + 1) : all;
      })(),
      { objectMode: false },
    );
}
