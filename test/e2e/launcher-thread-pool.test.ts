/**
 * The command-line entry (dist/launcher.cjs: `ferry`, `npm start`, the image) sizes libuv's thread
 * pool before Node starts it. Every process here runs pinned to one CPU (`taskset -c 0`), where the
 * launcher's size (2) differs from libuv's default (4) on any machine, and the pool's size is read
 * from the process itself: its thread count after `ferry serve` is listening.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { FERRY_CLI, REPO_ROOT } from '../helpers/ferry-process.js';
import { freePort } from '../helpers/ports.js';

const LAUNCHER = join(REPO_ROOT, 'dist', 'launcher.cjs');

interface Started {
  readonly child: ChildProcess;
  /** The `ferry listening` log line. */
  readonly listening: Record<string, unknown>;
  readonly threads: number;
}

const children = new Set<ChildProcess>();
const dataDirs: string[] = [];

afterEach(async () => {
  await Promise.all(
    [...children].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    }),
  );
  children.clear();
  await Promise.all(dataDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** `taskset -c 0 node <script> serve` with only `env` (and PATH) set; resolves once it listens. */
async function startPinned(script: string, env: Record<string, string> = {}): Promise<Started> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ferry-pool-'));
  dataDirs.push(dataDir);
  const port = await freePort();
  const child = spawn('taskset', ['-c', '0', process.execPath, script, 'serve'], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', FERRY_DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not listen within 15 s\n${stderr}`)), 15_000);
    child.once('exit', (code) => reject(new Error(`${script} exited (${code})\n${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (String(entry.msg).startsWith('ferry listening')) {
        clearTimeout(timer);
        resolve(entry);
      }
    });
  });
  // taskset execs node: the pid is the server's.
  return { child, listening, threads: readdirSync(`/proc/${child.pid}/task`).length };
}

describe('the launcher sizes the thread pool', () => {
  it("on one CPU, dist/launcher.cjs starts 2 pool threads where dist/cli.js (an ES module entry) starts libuv's 4, logs the size, and exits 0 on SIGTERM", async () => {
    const launched = await startPinned(LAUNCHER);
    const esmDefault = await startPinned(FERRY_CLI);
    const esmWithTwo = await startPinned(FERRY_CLI, { UV_THREADPOOL_SIZE: '2' });

    expect(launched.listening.thread_pool_size).toBe(2);
    expect(esmDefault.listening.thread_pool_size).toBe(4);
    // Same binary, same CPU: the processes differ only in their pool threads.
    expect(esmDefault.threads - esmWithTwo.threads).toBe(2);
    expect(launched.threads).toBe(esmWithTwo.threads);

    // The CLI behind the launcher still shuts down gracefully and exits 0 on SIGTERM.
    const exited = new Promise<number | null>((resolve) => launched.child.once('exit', (code) => resolve(code)));
    launched.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('leaves a UV_THREADPOOL_SIZE set in the environment as it is', async () => {
    const launched = await startPinned(LAUNCHER, { UV_THREADPOOL_SIZE: '3' });
    const esm = await startPinned(FERRY_CLI, { UV_THREADPOOL_SIZE: '3' });
    expect(launched.listening.thread_pool_size).toBe(3);
    expect(launched.threads).toBe(esm.threads);
  });
});
