import pino, { type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job, JobQueue, JobRetryPolicy } from '../../src/core/ports.js';
import { sleep, until } from '../helpers/poll.js';

export interface JobQueueContractOptions {
  /** Where the queue logs; the contract reads failed attempts and dropped jobs from it. */
  readonly logger: Logger;
  readonly closeTimeoutMs: number;
}

/** A queue that can drain (both implementations can; the port leaves it optional). */
export type DrainableJobQueue = JobQueue & { drain(): Promise<void> };

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A pino logger that keeps its lines, parsed. */
export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

const WARN = 40;
const ERROR = 50;
const once: JobRetryPolicy = { attempts: 1, backoffMs: 10 };

/** A promise with its resolve function, to hold a handler until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const fileJob = (key: string, data: Record<string, unknown> = {}): Job => ({ name: 'process-file', key, data });

/**
 * The contract every JobQueue implementation passes (in-process and BullMQ), written against the
 * port in src/core/ports.ts: data delivered, concurrency, retries with attempt numbers and growing
 * backoff, dedupe by key while a job is waiting, delayed or running, drain, close. `make` is called
 * once per test and returns an empty queue of its own.
 */
export function jobQueueContract(name: string, make: (options: JobQueueContractOptions) => Promise<DrainableJobQueue>) {
  describe(`JobQueue contract: ${name}`, () => {
    let current: DrainableJobQueue | undefined;
    let lines: LogLine[] = [];
    const setup = async (closeTimeoutMs = 5000) => {
      const captured = capturingLogger();
      lines = captured.lines;
      current = await make({ logger: captured.logger, closeTimeoutMs });
      return current;
    };
    afterEach(async () => {
      await current?.close();
      current = undefined;
    });

    it('runs a job with its name, key and data, as attempt 1', async () => {
      const queue = await setup();
      const seen: [Job, number][] = [];
      queue.work(
        'process-file',
        async (job, attempt) => {
          seen.push([job, attempt]);
        },
        1,
      );
      const data = { fileId: 'f1', size: 12, nested: { tags: ['a', 'b'], none: null } };
      await queue.enqueue(fileJob('f1', data), once);
      await queue.drain();
      expect(seen).toEqual([[{ name: 'process-file', key: 'f1', data }, 1]]);
    });

    it('drain resolves at once when there is nothing to do', async () => {
      const queue = await setup();
      const started = Date.now();
      await queue.drain();
      expect(Date.now() - started).toBeLessThan(1000);
    });

    it('runs jobs queued before work() once work() is called, in the order they were queued', async () => {
      const queue = await setup();
      for (const key of ['k1', 'k2', 'k3', 'k4']) await queue.enqueue(fileJob(key), once);
      await sleep(100);
      const order: string[] = [];
      queue.work(
        'process-file',
        async (job) => {
          order.push(job.key);
        },
        1,
      );
      await queue.drain();
      expect(order).toEqual(['k1', 'k2', 'k3', 'k4']);
    });

    it('runs at most `concurrency` handlers at a time, and uses that many', async () => {
      const queue = await setup();
      let inside = 0;
      let most = 0;
      const done: string[] = [];
      queue.work(
        'process-file',
        async (job) => {
          inside++;
          most = Math.max(most, inside);
          await sleep(80);
          inside--;
          done.push(job.key);
        },
        2,
      );
      for (let n = 0; n < 6; n++) await queue.enqueue(fileJob(`c${n}`), once);
      await queue.drain();
      expect(done.sort()).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5']);
      expect(most).toBe(2);
    });

    it('retries a throwing handler up to `attempts` in all with attempt numbers 1, 2, 3, then drops it and logs an error', async () => {
      const queue = await setup();
      const attempts: number[] = [];
      queue.work(
        'deliver-webhook',
        async (_job, attempt) => {
          attempts.push(attempt);
          throw new Error(`refused on attempt ${attempt}`);
        },
        1,
      );
      await queue.enqueue({ name: 'deliver-webhook', key: 'w1', data: {} }, { attempts: 3, backoffMs: 20 });
      await queue.drain();
      const errors = await until(
        'the dropped job to be logged',
        () => lines.filter((line) => line.level === ERROR),
        (found) => found.length > 0,
        { timeoutMs: 3000 },
      );
      await sleep(200);
      expect(attempts).toEqual([1, 2, 3]);
      expect(lines.filter((line) => line.level === ERROR)).toHaveLength(1);
      expect(errors[0]).toMatchObject({ job: 'deliver-webhook', job_key: 'w1', attempt: 3, attempts: 3 });
      expect(errors[0]!.err).toMatchObject({ message: 'refused on attempt 3' });
      const retries = lines.filter((line) => line.level === WARN && line.job_key === 'w1');
      expect(retries.map((line) => line.attempt)).toEqual([1, 2]);
    });

    it('stops retrying once an attempt succeeds', async () => {
      const queue = await setup();
      const attempts: number[] = [];
      queue.work(
        'process-file',
        async (_job, attempt) => {
          attempts.push(attempt);
          if (attempt < 2) throw new Error('not yet');
        },
        1,
      );
      await queue.enqueue(fileJob('r1'), { attempts: 5, backoffMs: 20 });
      await queue.drain();
      await sleep(150);
      expect(attempts).toEqual([1, 2]);
      expect(lines.filter((line) => line.level === ERROR)).toEqual([]);
    });

    it('backs off exponentially: the second retry waits at least twice the base delay, the first at least the base', async () => {
      const queue = await setup();
      const at: number[] = [];
      queue.work(
        'process-file',
        async () => {
          at.push(performance.now());
          throw new Error('again');
        },
        1,
      );
      await queue.enqueue(fileJob('b1'), { attempts: 3, backoffMs: 200 });
      await queue.drain();
      expect(at).toHaveLength(3);
      // Each wait is its delay plus however late the queue picks the job up (tens of ms on a loaded
      // machine), so bound each by its own delay rather than comparing the two: a constant backoff
      // would retry after about 200 ms both times.
      const first = at[1]! - at[0]!;
      const second = at[2]! - at[1]!;
      expect(first).toBeGreaterThanOrEqual(190);
      expect(second).toBeGreaterThanOrEqual(390);
    });

    it('does not queue a key twice while it is waiting (other keys and other job names are separate)', async () => {
      const queue = await setup();
      for (const v of [1, 2, 3]) await queue.enqueue(fileJob('same', { v }), once);
      await queue.enqueue(fileJob('other', { v: 4 }), once);
      await queue.enqueue({ name: 'deliver-webhook', key: 'same', data: { v: 5 } }, once);
      const files: Job[] = [];
      const hooks: Job[] = [];
      queue.work('process-file', async (job) => void files.push(job), 1);
      queue.work('deliver-webhook', async (job) => void hooks.push(job), 1);
      await queue.drain();
      expect(files).toEqual([fileJob('same', { v: 1 }), fileJob('other', { v: 4 })]);
      expect(hooks).toEqual([{ name: 'deliver-webhook', key: 'same', data: { v: 5 } }]);
    });

    it('does not queue a key again while its job runs, and does once it has finished', async () => {
      const queue = await setup();
      const hold = gate();
      const runs: unknown[] = [];
      queue.work(
        'process-file',
        async (job) => {
          runs.push(job.data.v);
          if (job.data.v === 1) await hold.promise;
        },
        2,
      );
      await queue.enqueue(fileJob('busy', { v: 1 }), once);
      await until(
        'the job to start',
        () => runs.length,
        (n) => n === 1,
      );
      await queue.enqueue(fileJob('busy', { v: 2 }), once);
      await sleep(100);
      hold.open();
      await queue.drain();
      expect(runs).toEqual([1]);
      await queue.enqueue(fileJob('busy', { v: 3 }), once);
      await queue.drain();
      expect(runs).toEqual([1, 3]);
    });

    it('does not queue a key again while its retry is delayed', async () => {
      const queue = await setup();
      const runs: [unknown, number][] = [];
      queue.work(
        'process-file',
        async (job, attempt) => {
          runs.push([job.data.v, attempt]);
          if (attempt === 1) throw new Error('first try fails');
        },
        1,
      );
      await queue.enqueue(fileJob('later', { v: 1 }), { attempts: 2, backoffMs: 300 });
      await until(
        'the first attempt',
        () => runs.length,
        (n) => n === 1,
      );
      await sleep(50);
      await queue.enqueue(fileJob('later', { v: 2 }), { attempts: 2, backoffMs: 300 });
      await queue.drain();
      expect(runs).toEqual([
        [1, 1],
        [1, 2],
      ]);
    });

    it('queues a key again after its job was dropped for good', async () => {
      const queue = await setup();
      const runs: number[] = [];
      queue.work(
        'process-file',
        async (job) => {
          runs.push(job.data.v as number);
          if (job.data.v === 1) throw new Error('gives up');
        },
        1,
      );
      await queue.enqueue(fileJob('again', { v: 1 }), { attempts: 2, backoffMs: 10 });
      await queue.drain();
      await queue.enqueue(fileJob('again', { v: 2 }), { attempts: 2, backoffMs: 10 });
      await queue.drain();
      expect(runs).toEqual([1, 1, 2]);
    });

    it('treats keys as opaque strings (colons, digits, escapes, unicode)', async () => {
      const queue = await setup();
      const keys = ['42', '0', 'a:b', 'a%3Ab', 'a:b:c', 'über/ß ?'];
      const ran: string[] = [];
      queue.work('process-file', async (job) => void ran.push(job.key), 1);
      for (const key of keys) await queue.enqueue(fileJob(key), once);
      await queue.drain();
      expect(ran).toEqual(keys);
    });

    it('drain waits for delayed retries, not only for running jobs', async () => {
      const queue = await setup();
      const attempts: number[] = [];
      let succeeded = false;
      queue.work(
        'process-file',
        async (_job, attempt) => {
          attempts.push(attempt);
          if (attempt === 1) throw new Error('retry me');
          succeeded = true;
        },
        1,
      );
      await queue.enqueue(fileJob('d1'), { attempts: 2, backoffMs: 250 });
      await until(
        'the first attempt',
        () => attempts.length,
        (n) => n === 1,
      );
      const started = Date.now();
      await queue.drain();
      expect(succeeded).toBe(true);
      expect(attempts).toEqual([1, 2]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    });

    it('refuses a second handler for the same job name and a concurrency below 1', async () => {
      const queue = await setup();
      expect(() => queue.work('process-file', async () => undefined, 0)).toThrow();
      queue.work('process-file', async () => undefined, 1);
      expect(() => queue.work('process-file', async () => undefined, 1)).toThrow();
    });

    it('close() lets the running handler finish, starts nothing after, and refuses new jobs', async () => {
      const queue = await setup();
      const hold = gate();
      const started: string[] = [];
      const finished: string[] = [];
      queue.work(
        'process-file',
        async (job) => {
          started.push(job.key);
          await hold.promise;
          finished.push(job.key);
        },
        1,
      );
      await queue.enqueue(fileJob('first'), once);
      await queue.enqueue(fileJob('second'), once);
      await until(
        'the first job to start',
        () => started.length,
        (n) => n === 1,
      );
      let closed = false;
      const closing = queue.close().then(() => (closed = true));
      await sleep(100);
      expect(closed).toBe(false);
      hold.open();
      await closing;
      expect(finished).toEqual(['first']);
      await sleep(300);
      expect(started).toEqual(['first']);
      await expect(queue.enqueue(fileJob('third'), once)).rejects.toThrow();
      await expect(queue.close()).resolves.toBeUndefined();
    });

    it('close() gives up on a handler that never finishes after its timeout', async () => {
      const queue = await setup(300);
      let started = false;
      queue.work(
        'process-file',
        async () => {
          started = true;
          await new Promise(() => undefined);
        },
        1,
      );
      await queue.enqueue(fileJob('stuck'), once);
      await until('the job to start', () => started, Boolean);
      const before = Date.now();
      await queue.close();
      const waited = Date.now() - before;
      expect(waited).toBeGreaterThanOrEqual(250);
      expect(waited).toBeLessThan(2000);
      expect(lines.some((line) => line.level === WARN && /close timeout/.test(line.msg))).toBe(true);
    });
  });
}
