/**
 * Start and stop real Ferry processes (`node dist/cli.js serve`) for end-to-end tests.
 *
 * Usage:
 *   import { startFerry, cleanupFerries } from '../helpers/ferry-process.js';
 *   afterEach(cleanupFerries);              // SIGKILLs leftovers, removes temp data dirs
 *   const ferry = await startFerry({ env: { FERRY_MAX_SIZE: '10MiB' } });
 *   await fetch(`${ferry.url}/healthz`);
 *   expect(await ferry.stop()).toBe(0);     // SIGTERM, wait for exit, return the exit code
 *   const again = await startFerry({ dataDir: ferry.dataDir, port: ferry.port }); // "restart"
 *   // or: const again = await restartFerry(ferry);
 *
 * Each process gets PORT, HOST=127.0.0.1 and FERRY_DATA_DIR (a fresh temp dir unless `dataDir` is
 * given). FERRY_* variables of the test runner's own environment are NOT inherited, so a developer's
 * shell cannot change what the tests see. dist/ must have been built (`npm run build`).
 */
import { TEST_SECRETS } from './secrets.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

/** Repository root (the directory holding package.json). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI that tests run. */
export const FERRY_CLI = join(REPO_ROOT, 'dist', 'cli.js');

export interface StartFerryOptions {
  /** Extra environment for the process; a value of `undefined` removes the variable. */
  env?: Record<string, string | undefined>;
  /** Data directory to use (e.g. to restart on the same data). Default: a fresh temp dir. */
  dataDir?: string;
  /** Port to listen on. Default: a free loopback port. */
  port?: number;
  /** CLI arguments. Default: `['serve']`. */
  args?: string[];
  /** How long to wait for `GET /healthz` → 200. Default 15 000 ms. */
  healthTimeoutMs?: number;
  /**
   * Script to run instead of dist/cli.js (for the helper's own self-tests). The environment
   * variable FERRY_TEST_CLI does the same for a whole test run (e.g. a build from another checkout).
   */
  cli?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface FerryProcess {
  /** Base URL, e.g. `http://127.0.0.1:43123` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  /** True until the process has exited. */
  isRunning(): boolean;
  /** Send a signal without waiting (no-op if already exited). */
  signal(signal: NodeJS.Signals): void;
  /**
   * Send `signal` (default SIGTERM) and wait for the exit; resolves with the exit code
   * (`null` if the process died from a signal). If it has not exited after `timeoutMs`
   * (default 15 000), it is SIGKILLed and the promise rejects with the logs.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL (a crash) and wait for the exit. */
  kill(): Promise<void>;
  /** Everything the process wrote to stdout and stderr so far, in arrival order. */
  logs(): string;
  /** What the process wrote to stderr so far. */
  stderr(): string;
}

const MAX_LOG_CHARS = 4 * 1024 * 1024;

interface Tracked {
  child: ChildProcess;
  exited: Promise<ExitInfo>;
  running: boolean;
}
const tracked = new Set<Tracked>();
const ownedDataDirs = new Set<string>();

// Last resort: never leave a Ferry behind when the test worker exits.
process.once('exit', () => {
  for (const t of tracked) if (t.running) t.child.kill('SIGKILL');
});

function tail(s: string, n = 4000): string {
  return s.length > n ? '…' + s.slice(-n) : s;
}

function probeHealth(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/healthz', method: 'GET', timeout: 1000, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Start Ferry and wait until `GET /healthz` answers 200. */
export async function startFerry(opts: StartFerryOptions = {}): Promise<FerryProcess> {
  const cli = opts.cli ?? process.env.FERRY_TEST_CLI ?? FERRY_CLI;
  if (!existsSync(cli)) {
    throw new Error(`${cli} does not exist: run \`npm run build\` first`);
  }
  const port = opts.port ?? (await freePort());
  let dataDir = opts.dataDir;
  if (dataDir === undefined) {
    dataDir = await mkdtemp(join(tmpdir(), 'ferry-test-data-'));
    ownedDataDirs.add(dataDir);
  }

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('FERRY_') || k === 'PORT' || k === 'HOST') continue;
    env[k] = v;
  }
  Object.assign(env, { PORT: String(port), HOST: '127.0.0.1', FERRY_DATA_DIR: dataDir, ...TEST_SECRETS });
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }

  const child = spawn(process.execPath, [cli, ...(opts.args ?? ['serve'])], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let all = '';
  let errText = '';
  const append = (which: 'out' | 'err', chunk: Buffer): void => {
    const s = chunk.toString('utf8');
    all = all.length + s.length > MAX_LOG_CHARS ? (all + s).slice(-MAX_LOG_CHARS) : all + s;
    if (which === 'err') errText = (errText + s).slice(-MAX_LOG_CHARS);
  };
  child.stdout!.on('data', (c: Buffer) => append('out', c));
  child.stderr!.on('data', (c: Buffer) => append('err', c));

  const t: Tracked = { child, running: true, exited: undefined as unknown as Promise<ExitInfo> };
  t.exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      t.running = false;
      resolve({ code, signal });
    });
    child.once('error', () => {
      // spawn failure: 'exit' may not follow
      t.running = false;
      resolve({ code: null, signal: null });
    });
  });
  tracked.add(t);

  const logs = (): string => all;
  const killAndWait = async (): Promise<void> => {
    if (t.running) child.kill('SIGKILL');
    await t.exited;
  };

  // Wait for health, the process's death, or the timeout.
  const deadline = Date.now() + (opts.healthTimeoutMs ?? 15_000);
  for (;;) {
    if (!t.running) {
      const { code, signal } = await t.exited;
      throw new Error(
        `ferry exited (code ${code}, signal ${signal}) before /healthz answered 200 on port ${port}\n` +
          `--- stderr ---\n${tail(errText)}\n--- stdout+stderr ---\n${tail(all)}`,
      );
    }
    if ((await probeHealth(port)) === 200) break;
    if (Date.now() > deadline) {
      await killAndWait();
      throw new Error(
        `ferry did not answer GET /healthz with 200 within ${opts.healthTimeoutMs ?? 15_000} ms on port ${port}\n` +
          `--- stderr ---\n${tail(errText)}\n--- stdout+stderr ---\n${tail(all)}`,
      );
    }
    await Promise.race([new Promise((r) => setTimeout(r, 50)), t.exited]);
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    pid: child.pid!,
    exited: t.exited,
    isRunning: () => t.running,
    signal: (sig) => {
      if (t.running) child.kill(sig);
    },
    async stop(sig: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
      if (t.running) child.kill(sig);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), timeoutMs);
      });
      const res = await Promise.race([t.exited, timedOut]);
      clearTimeout(timer);
      if (res === 'timeout') {
        await killAndWait();
        throw new Error(
          `ferry (pid ${child.pid}) did not exit within ${timeoutMs} ms of ${sig}; SIGKILLed\n${tail(all)}`,
        );
      }
      return res.code;
    },
    kill: killAndWait,
    logs,
    stderr: () => errText,
  };
}

/** Stop `ferry` with `signal` (default SIGTERM; must exit 0) and start a new one on the same data dir and port. */
export async function restartFerry(
  ferry: FerryProcess,
  opts: Omit<StartFerryOptions, 'dataDir' | 'port'> & { signal?: NodeJS.Signals } = {},
): Promise<FerryProcess> {
  const { signal = 'SIGTERM', ...rest } = opts;
  if (ferry.isRunning()) {
    const code = await ferry.stop(signal);
    if (signal === 'SIGTERM' && code !== 0) {
      throw new Error(`ferry exited with code ${code} on SIGTERM\n${tail(ferry.logs())}`);
    }
  }
  return startFerry({ ...rest, dataDir: ferry.dataDir, port: ferry.port });
}

/**
 * SIGKILL every Ferry started by this worker that is still running and delete the temp data dirs
 * that `startFerry` created (kept, and printed, when FERRY_TEST_KEEP_DATA is set).
 * Use in `afterEach` (or `afterAll`).
 */
export async function cleanupFerries(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const t of tracked) {
    if (t.running) t.child.kill('SIGKILL');
    waits.push(t.exited);
  }
  await Promise.all(waits);
  tracked.clear();
  const dirs = [...ownedDataDirs];
  ownedDataDirs.clear();
  if (process.env.FERRY_TEST_KEEP_DATA) {
    if (dirs.length > 0) console.log(`[ferry-process] kept data dirs: ${dirs.join(' ')}`);
    return;
  }
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}
