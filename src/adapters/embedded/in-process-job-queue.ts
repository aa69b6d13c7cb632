import type { Logger } from 'pino';
import type { Job, JobHandler, JobName, JobQueue, JobRetryPolicy } from '../../core/ports.js';

export interface InProcessJobQueueOptions {
  /** Failed attempts are logged at warn, a job given up on at error. */
  readonly logger?: Logger;
  /** How long `close()` waits for running handlers before it gives up on them. */
  readonly closeTimeoutMs?: number;
}

interface Entry {
  readonly job: Job;
  readonly retry: JobRetryPolicy;
  /** The attempt this entry runs next, 1-based. */
  attempt: number;
}

/** One job name: its handler, once `work()` registered one, and the jobs waiting for it. */
interface Lane {
  handler: JobHandler | undefined;
  concurrency: number;
  running: number;
  readonly waiting: Entry[];
}

/**
 * Background jobs for the embedded mode: one FIFO per job name, `concurrency` handlers at a time,
 * retries on timers with exponential backoff. A job's (name, key) is taken from enqueue until it
 * finishes or is given up on, so enqueueing it again meanwhile is a no-op.
 *
 * Nothing here is durable, on purpose: after a crash the file registry re-queues the processing that
 * did not finish (its records say which), so a queue that forgets its jobs loses nothing. The same
 * goes for jobs that are waiting or delayed when `close()` is called.
 */
export class InProcessJobQueue implements JobQueue {
  readonly closeTimeoutMs: number;
  private readonly lanes = new Map<JobName, Lane>();
  /** `name\0key` of every job waiting, delayed or running: dedupe, and drain's "idle". */
  private readonly pending = new Set<string>();
  /** Delayed retries, by their timer. */
  private readonly retryTimers = new Map<NodeJS.Timeout, Entry>();
  private readonly running = new Set<Promise<void>>();
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(private readonly options: InProcessJobQueueOptions = {}) {
    this.closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
  }

  async enqueue(job: Job, retry: JobRetryPolicy): Promise<void> {
    if (this.closed) throw new Error('the job queue is closed');
    const id = pendingId(job);
    if (this.pending.has(id)) return;
    this.pending.add(id);
    const lane = this.lane(job.name);
    lane.waiting.push({ job, retry, attempt: 1 });
    this.pump(lane);
  }

  work(name: JobName, handler: JobHandler, concurrency: number): void {
    if (this.closed) throw new Error('the job queue is closed');
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    }
    const lane = this.lane(name);
    if (lane.handler) throw new Error(`jobs of ${name} already have a handler`);
    lane.handler = handler;
    lane.concurrency = concurrency;
    this.pump(lane);
  }

  drain(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops starting jobs and forgets the waiting and delayed ones, then waits for running handlers,
   * at most `closeTimeoutMs`: a handler that does not finish by then is left behind (its file is
   * re-queued by recovery on the next start, like after a crash).
   */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const [timer, entry] of this.retryTimers) {
        clearTimeout(timer);
        this.pending.delete(pendingId(entry.job));
      }
      this.retryTimers.clear();
      for (const lane of this.lanes.values()) {
        for (const entry of lane.waiting.splice(0)) this.pending.delete(pendingId(entry.job));
      }
      this.checkIdle();
    }
    if (this.running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.closeTimeoutMs);
    });
    const finished = Promise.all(this.running).then(() => false);
    if (await Promise.race([finished, timedOut])) {
      this.options.logger?.warn(
        { running: this.running.size },
        'job handlers still running after the close timeout; leaving them behind',
      );
    }
    clearTimeout(timer);
  }

  private lane(name: JobName): Lane {
    let lane = this.lanes.get(name);
    if (!lane) this.lanes.set(name, (lane = { handler: undefined, concurrency: 0, running: 0, waiting: [] }));
    return lane;
  }

  private pump(lane: Lane): void {
    while (!this.closed && lane.handler && lane.running < lane.concurrency && lane.waiting.length > 0) {
      const entry = lane.waiting.shift()!;
      lane.running++;
      const run = this.run(lane.handler, entry).finally(() => {
        lane.running--;
        this.running.delete(run);
        this.pump(lane);
        this.checkIdle();
      });
      this.running.add(run);
    }
  }

  /** Runs one attempt; never rejects. */
  private async run(handler: JobHandler, entry: Entry): Promise<void> {
    const { job, retry, attempt } = entry;
    try {
      await handler(job, attempt);
    } catch (error) {
      const attempts = Math.max(1, retry.attempts);
      const fields = { err: error, job: job.name, job_key: job.key, attempt, attempts };
      if (this.closed) {
        this.options.logger?.warn(fields, 'job attempt failed while the queue was closing; not retrying it');
      } else if (attempt >= attempts) {
        this.options.logger?.error(fields, 'job failed on its last attempt; dropping it');
      } else {
        const delayMs = retry.backoffMs * 2 ** (attempt - 1);
        this.options.logger?.warn({ ...fields, retry_in_ms: delayMs }, 'job attempt failed; retrying');
        this.scheduleRetry(entry, delayMs);
        return;
      }
    }
    this.pending.delete(pendingId(job));
  }

  private scheduleRetry(entry: Entry, delayMs: number): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      entry.attempt++;
      const lane = this.lane(entry.job.name);
      lane.waiting.push(entry);
      this.pump(lane);
    }, delayMs);
    // A pending retry must not keep a process alive that has nothing else to do: it is not durable
    // anyway (see the class comment). drain() still waits for it, through `pending`.
    timer.unref();
    this.retryTimers.set(timer, entry);
  }

  private checkIdle(): void {
    if (this.pending.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function pendingId(job: Job): string {
  return `${job.name}\0${job.key}`;
}
