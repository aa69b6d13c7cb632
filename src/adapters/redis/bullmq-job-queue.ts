import { Queue, Worker, type Job as BullJob } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { FerryError } from '../../core/errors.js';
import type { Job, JobHandler, JobName, JobQueue, JobRetryPolicy } from '../../core/ports.js';

export interface BullmqJobQueueOptions {
  /** Redis URL. The queue opens its own connections: BullMQ's needs differ from Ferry's commands. */
  readonly url: string;
  /** Ferry's key prefix, e.g. `ferry:`; BullMQ's keys live under `${prefix}bull:`. */
  readonly prefix: string;
  /** Failed attempts are logged at warn, a job given up on at error. */
  readonly logger?: Logger;
  /**
   * How long a worker's claim on a running job lasts without renewal (renewed at half of it): a job
   * whose worker died is run again by another worker one to two of these later.
   */
  readonly lockDurationMs?: number;
  /** How long `close()` waits for running handlers before it abandons them to other workers. */
  readonly closeTimeoutMs?: number;
}

/** What a BullMQ job carries: Ferry's job minus its name, which is the BullMQ job's name. */
interface Payload {
  readonly key: string;
  readonly data: Readonly<Record<string, unknown>>;
}

const JOB_NAMES: readonly JobName[] = ['process-file', 'deliver-webhook'];
const DRAIN_POLL_MS = 50;
/** How long enqueue waits for the connection on first use before answering 503. */
const CONNECT_WAIT_MS = 2000;

/**
 * Background jobs on Redis with BullMQ, one BullMQ queue per job name. Each running job holds a lock
 * its worker renews; when a worker dies the lock lapses and another worker's stalled-job check puts
 * the job back in line, so a crash costs a delay, not the job.
 *
 * The job id is derived from the job's key, so adding a job whose key is waiting, delayed or running
 * is a no-op in BullMQ itself, across replicas. BullMQ also refuses ids it still keeps as completed
 * or failed, so finished jobs are removed at once (`removeOnComplete`/`removeOnFail: true`): the file
 * registry records outcomes, failures are logged, and the same key can be queued again right away.
 */
export class BullmqJobQueue implements JobQueue {
  readonly lockDurationMs: number;
  readonly closeTimeoutMs: number;
  /**
   * Queue.add and counts. No offline queue: while Redis is unreachable, enqueue fails at once (503)
   * instead of hanging the request that called it (BullMQ's "failing fast when Redis is down").
   */
  private readonly producer: Redis;
  /** Workers' main connection; BullMQ duplicates it for each worker's blocking fetch and owns those. */
  private readonly consumer: Redis;
  private readonly queues = new Map<JobName, Queue<Payload>>();
  private readonly workers = new Map<JobName, Worker<Payload>>();
  private readonly bullPrefix: string;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: BullmqJobQueueOptions) {
    // A worker that dies loses its jobs within ~15 s, like a replica its upload locks.
    this.lockDurationMs = options.lockDurationMs ?? 15_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    this.bullPrefix = `${options.prefix}bull`;
    // BullMQ requires maxRetriesPerRequest: null: its blocking fetch must outlive a reconnect.
    this.producer = this.connect('ferry-jobs', { enableOfflineQueue: false });
    this.consumer = this.connect('ferry-workers', {});
  }

  async enqueue(job: Job, retry: JobRetryPolicy): Promise<void> {
    if (this.closing) throw new Error('the job queue is closed');
    await this.producerReady();
    try {
      await this.queue(job.name).add(
        job.name,
        { key: job.key, data: job.data },
        {
          jobId: jobIdOf(job.name, job.key),
          attempts: Math.max(1, retry.attempts),
          backoff: { type: 'exponential', delay: retry.backoffMs },
          removeOnComplete: true,
          removeOnFail: true,
        },
      );
    } catch (error) {
      this.options.logger?.warn({ err: error, job: job.name, job_key: job.key }, 'could not enqueue a job');
      throw unavailable();
    }
  }

  work(name: JobName, handler: JobHandler, concurrency: number): void {
    if (this.closing) throw new Error('the job queue is closed');
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    }
    if (this.workers.has(name)) throw new Error(`jobs of ${name} already have a handler`);
    const logger = this.options.logger;
    const worker = new Worker<Payload>(
      name,
      async (bullJob) => {
        // attemptsMade counts failed attempts only: a run cut short by a dead worker is not one, so
        // the number matches the retry budget (the last attempt is `attempt === attempts`).
        const attempt = bullJob.attemptsMade + 1;
        try {
          await handler({ name, key: bullJob.data.key, data: bullJob.data.data }, attempt);
        } catch (error) {
          // BullMQ records `message` and `stack`; a thrown non-Error would leave it nothing to record.
          throw error instanceof Error ? error : new Error(String(error));
        }
      },
      {
        connection: this.consumer,
        prefix: this.bullPrefix,
        concurrency,
        lockDuration: this.lockDurationMs,
        // A job is moved back only on the second check that finds it unlocked, so checking twice per
        // lock duration hands an orphaned job on within about one and a half lock durations.
        stalledInterval: Math.max(1, Math.floor(this.lockDurationMs / 2)),
      },
    );
    worker.on('failed', (bullJob: BullJob<Payload> | undefined, error: Error) => {
      const fields = {
        err: error,
        job: name,
        job_key: bullJob?.data.key,
        attempt: bullJob?.attemptsMade,
        attempts: bullJob?.opts.attempts,
      };
      // BullMQ sets finishedOn only when it moves the job to failed rather than back in line.
      if (bullJob && bullJob.finishedOn === undefined) logger?.warn(fields, 'job attempt failed; retrying');
      else logger?.error(fields, 'job failed on its last attempt; dropping it');
    });
    worker.on('stalled', (jobId: string) => {
      logger?.warn({ job: name, job_id: jobId }, 'a worker stopped without finishing a job; it runs again');
    });
    // Without a listener an 'error' event would throw; connection trouble is logged by connect().
    worker.on('error', (error: Error) => logger?.debug({ err: error, job: name }, 'job worker error'));
    this.workers.set(name, worker);
  }

  /** Resolves once no queue of any job name has a job waiting, delayed or running, on any replica. */
  async drain(): Promise<void> {
    for (;;) {
      const counts = await Promise.all(
        JOB_NAMES.map((name) =>
          this.queue(name).getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'waiting-children'),
        ),
      );
      if (counts.every((byType) => Object.values(byType).every((count) => count === 0))) return;
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  }

  /**
   * Stops fetching jobs and waits for running handlers (and BullMQ's record of their outcome), at
   * most `closeTimeoutMs`. A handler still running then is abandoned: its lock is no longer renewed,
   * so another worker runs the job again once the lock lapses, exactly as after a crash.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    const workers = [...this.workers.values()];
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.closeTimeoutMs);
    });
    // pause() (not close()) waits for the running jobs: a close that is waiting cannot be forced later.
    const finished = Promise.all(workers.map((worker) => worker.pause())).then(() => false);
    if (await Promise.race([finished, timedOut])) {
      this.options.logger?.warn('job handlers still running after the close timeout; leaving them to other workers');
    }
    clearTimeout(timer);
    // Forced: stops lock renewal and the blocking connections without waiting for anything else.
    await Promise.allSettled(workers.map((worker) => worker.close(true)));
    await Promise.allSettled([...this.queues.values()].map((queue) => queue.close()));
    this.producer.disconnect();
    this.consumer.disconnect();
  }

  private queue(name: JobName): Queue<Payload> {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue<Payload>(name, { connection: this.producer, prefix: this.bullPrefix });
      queue.on('error', (error: Error) => this.options.logger?.debug({ err: error, job: name }, 'job queue error'));
      this.queues.set(name, queue);
    }
    return queue;
  }

  private connect(connectionName: string, extra: { enableOfflineQueue?: boolean }): Redis {
    const client = new Redis(this.options.url, {
      maxRetriesPerRequest: null,
      connectionName,
      connectTimeout: 2000,
      retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000),
      ...extra,
    });
    let down = false;
    client.on('error', (error: Error) => {
      if (!down) this.options.logger?.warn({ err: error, connection: connectionName }, 'redis connection error');
      down = true;
    });
    client.on('ready', () => {
      if (down) this.options.logger?.info({ connection: connectionName }, 'redis connection restored');
      down = false;
    });
    return client;
  }

  /** Waits briefly for the producer connection on first use; while Redis is down, answers 503 at once. */
  private async producerReady(): Promise<void> {
    const { producer } = this;
    if (producer.status === 'ready') return;
    if (producer.status !== 'connecting' && producer.status !== 'connect' && producer.status !== 'wait') {
      throw unavailable();
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        producer.off('ready', onReady);
        reject(unavailable());
      }, CONNECT_WAIT_MS);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      producer.once('ready', onReady);
    });
  }
}

/**
 * BullMQ job ids may not contain `:` nor look like integers: the key is URI-encoded (which keeps
 * distinct keys distinct and removes `:`) behind the job name.
 */
function jobIdOf(name: JobName, key: string): string {
  return `${name}.${encodeURIComponent(key)}`;
}

function unavailable(): FerryError {
  return new FerryError('service_unavailable', 'the job queue is unavailable; retry shortly');
}
