import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BullmqJobQueue, type BullmqJobQueueOptions } from '../../src/adapters/redis/bullmq-job-queue.js';
import type { Job } from '../../src/core/ports.js';
import { sleep, until } from '../helpers/poll.js';
import { startRedis, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';
import { capturingLogger, jobQueueContract } from './job-queue.contract.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ADAPTER_URL = new URL('../../src/adapters/redis/bullmq-job-queue.ts', import.meta.url).href;

let redis: RedisServer;
let prefixCounter = 0;
const nextPrefix = () => `jobs${++prefixCounter}:`;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await stopAllRedis();
});

jobQueueContract('BullmqJobQueue (real redis-server)', async ({ logger, closeTimeoutMs }) => {
  return new BullmqJobQueue({ url: redis.url, prefix: nextPrefix(), logger, closeTimeoutMs });
});

describe('BullmqJobQueue across processes', () => {
  const opened: BullmqJobQueue[] = [];
  const children: ChildProcess[] = [];
  let scratch: string | undefined;
  const open = (options: Partial<BullmqJobQueueOptions> & { prefix: string }) => {
    const queue = new BullmqJobQueue({ url: redis.url, ...options });
    opened.push(queue);
    return queue;
  };
  afterEach(async () => {
    for (const child of children.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(opened.splice(0).map((queue) => queue.close()));
    if (scratch) await rm(scratch, { recursive: true, force: true });
    scratch = undefined;
  });

  /**
   * A worker in a process of its own (the adapter's TypeScript source, run by tsx): it prints
   * `started <key> <attempt>` when its handler starts, and the handler never finishes. With
   * `closeAfterStart` it then closes its queue and prints `closed`, and must exit by itself.
   */
  async function spawnWorker(prefix: string, lockDurationMs: number, closeAfterStart = false) {
    scratch ??= await mkdtemp(join(tmpdir(), 'ferry-jobs-'));
    const script = join(scratch, 'worker.mjs');
    await writeFile(
      script,
      `const { BullmqJobQueue } = await import(${JSON.stringify(ADAPTER_URL)});
const queue = new BullmqJobQueue(${JSON.stringify({ url: redis.url, prefix, lockDurationMs, closeTimeoutMs: 300 })});
queue.work('process-file', async (job, attempt) => {
  console.log('started', job.key, attempt);
  if (${closeAfterStart}) setTimeout(() => void queue.close().then(() => console.log('closed')), 20);
  await new Promise(() => {});
}, 1);
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const lines: string[] = [];
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const waitFor = (line: string, timeoutMs = 10_000) =>
      until(
        `the worker to print "${line}" (stderr: ${stderr})`,
        () => lines,
        (seen) => seen.includes(line),
        {
          timeoutMs,
          everyMs: 20,
        },
      );
    return { child, exited, waitFor };
  }

  it('keeps every key of its own under `${prefix}bull:`', async () => {
    const prefix = nextPrefix();
    const queue = open({ prefix });
    await queue.enqueue({ name: 'process-file', key: 'k', data: {} }, { attempts: 1, backoffMs: 10 });
    await queue.enqueue({ name: 'deliver-webhook', key: 'k', data: {} }, { attempts: 1, backoffMs: 10 });
    const client = new Redis(redis.url);
    try {
      const keys = await client.keys(`*`);
      const ours = keys.filter((key) => key.startsWith(prefix));
      expect(ours.length).toBeGreaterThan(0);
      expect(ours.every((key) => key.startsWith(`${prefix}bull:`))).toBe(true);
      expect(ours).toEqual(
        expect.arrayContaining([`${prefix}bull:process-file:wait`, `${prefix}bull:deliver-webhook:wait`]),
      );
    } finally {
      client.disconnect();
    }
  });

  it('dedupes by key across replicas, and a worker on another replica runs the job', async () => {
    const prefix = nextPrefix();
    const producer = open({ prefix });
    const consumer = open({ prefix });
    await producer.enqueue(
      { name: 'process-file', key: 'shared', data: { from: 'producer' } },
      { attempts: 1, backoffMs: 10 },
    );
    await consumer.enqueue(
      { name: 'process-file', key: 'shared', data: { from: 'consumer' } },
      { attempts: 1, backoffMs: 10 },
    );
    const ran: Job[] = [];
    consumer.work('process-file', async (job) => void ran.push(job), 2);
    await producer.drain();
    expect(ran).toEqual([{ name: 'process-file', key: 'shared', data: { from: 'producer' } }]);
  });

  it('runs a job again on another worker when the process running it is killed mid-job', async () => {
    const prefix = nextPrefix();
    const lockDurationMs = 600;
    const { logger, lines } = capturingLogger();
    const survivor = open({ prefix, lockDurationMs, logger });
    const data = { fileId: 'f-crash', size: 3 };
    await survivor.enqueue({ name: 'process-file', key: 'crash', data }, { attempts: 2, backoffMs: 10 });
    const worker = await spawnWorker(prefix, lockDurationMs);
    await worker.waitFor('started crash 1');
    worker.child.kill('SIGKILL');
    await worker.exited;

    const killedAt = Date.now();
    const ran: [Job, number][] = [];
    survivor.work('process-file', async (job, attempt) => void ran.push([job, attempt]), 1);
    await until(
      'the job to run again',
      () => ran,
      (done) => done.length > 0,
      { timeoutMs: 6000 },
    );
    // The lock lapses after lockDurationMs; stalled checks run as often; so about two of them.
    expect(Date.now() - killedAt).toBeLessThan(4 * lockDurationMs + 1500);
    // A run cut short by a crash is not a failed attempt: the retry budget is untouched.
    expect(ran).toEqual([[{ name: 'process-file', key: 'crash', data }, 1]]);
    await survivor.drain();
    await sleep(2 * lockDurationMs);
    expect(ran).toHaveLength(1);
    expect(lines.some((line) => line.msg.includes('stopped without finishing') && line.job_id)).toBe(true);
  });

  it('a process whose handler hangs can still close and exit; its job then runs elsewhere', async () => {
    const prefix = nextPrefix();
    const lockDurationMs = 600;
    const survivor = open({ prefix, lockDurationMs });
    await survivor.enqueue({ name: 'process-file', key: 'hung', data: {} }, { attempts: 1, backoffMs: 10 });
    const worker = await spawnWorker(prefix, lockDurationMs, true);
    await worker.waitFor('started hung 1');
    await worker.waitFor('closed', 3000);
    // Nothing may keep the event loop alive after close(): the process ends on its own.
    const [code, signal] = await Promise.race([
      worker.exited,
      sleep(3000).then(() => ['still running after close()', null] as const),
    ]);
    expect({ code, signal }).toEqual({ code: 0, signal: null });

    const ran: string[] = [];
    survivor.work('process-file', async (job) => void ran.push(job.key), 1);
    await until(
      'the abandoned job to run here',
      () => ran,
      (done) => done.length > 0,
      { timeoutMs: 6000 },
    );
    expect(ran).toEqual(['hung']);
  });
});

describe('BullmqJobQueue while Redis is down', () => {
  it('enqueue answers 503 at once instead of hanging, and works again once Redis is back', async () => {
    const own = await startRedis();
    const queue = new BullmqJobQueue({ url: own.url, prefix: 'down:' });
    try {
      await queue.enqueue({ name: 'process-file', key: 'before', data: {} }, { attempts: 1, backoffMs: 10 });
      await own.stop();
      const started = Date.now();
      await expect(
        queue.enqueue({ name: 'process-file', key: 'during', data: {} }, { attempts: 1, backoffMs: 10 }),
      ).rejects.toMatchObject({ code: 'service_unavailable', status: 503 });
      expect(Date.now() - started).toBeLessThan(1000);
      await own.start();
      await expect
        .poll(
          () =>
            queue
              .enqueue({ name: 'process-file', key: 'after', data: {} }, { attempts: 1, backoffMs: 10 })
              .then(() => 'ok')
              .catch((error: { code?: string }) => error.code),
          { timeout: 10_000, interval: 200 },
        )
        .toBe('ok');
    } finally {
      await queue.close();
      await own.stop();
    }
  });
});
