import type { Files } from '../files/files.js';
import type { Job } from '../ports.js';
import type { Uploads } from '../uploads/uploads.js';
import { PROCESSING_RETRY } from '../files/files.js';
import type { ProcessingStep } from './steps.js';

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
      for (const step of this.options.steps) {
        const result = await step.run({ file, read: (range) => uploads.read(fileId, range) });
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
    // Another request may have deleted the file meanwhile: only a file still there completes.
    const current = await files.record(fileId);
    if (current?.status !== 'processing') return;
    await files.transition(
      current,
      { status: 'completed', detectedType: file.detectedType, checksums: file.checksums },
      'completed',
    );
  };
}
