import { describe, expect, it } from 'vitest';
import { InProcessJobQueue } from '../../src/adapters/embedded/in-process-job-queue.js';
import { sleep } from '../helpers/poll.js';
import { jobQueueContract } from './job-queue.contract.js';

jobQueueContract('embedded InProcessJobQueue', async ({ logger, closeTimeoutMs }) => {
  return new InProcessJobQueue({ logger, closeTimeoutMs });
});

describe('embedded InProcessJobQueue', () => {
  it('forgets waiting jobs and pending retries on close (the registry re-queues them on the next start)', async () => {
    const queue = new InProcessJobQueue();
    const runs: string[] = [];
    await queue.enqueue({ name: 'process-file', key: 'waiting', data: {} }, { attempts: 1, backoffMs: 10 });
    queue.work(
      'deliver-webhook',
      async (job, attempt) => {
        runs.push(`${job.key}#${attempt}`);
        throw new Error('retry later');
      },
      1,
    );
    await queue.enqueue({ name: 'deliver-webhook', key: 'delayed', data: {} }, { attempts: 2, backoffMs: 100 });
    await sleep(20);
    await queue.close();
    // The retry timer is gone, and drain has nothing left to wait for.
    await sleep(200);
    expect(runs).toEqual(['delayed#1']);
    await queue.drain();
  });
});
