/**
 * The expiry sweep as operators run it: inside `ferry serve` in embedded mode, and as `ferry sweep`
 * (one sweep, then exit, for a CronJob); `ferry worker` needs Redis.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { FERRY_CLI, cleanupFerries, startFerry } from '../helpers/ferry-process.js';
import { sleep } from '../helpers/poll.js';
import { tusCreate, tusHead, uploadId } from '../helpers/tus.js';

const run = promisify(execFile);
afterEach(cleanupFerries);

describe('expiry sweeps from the command line', () => {
  it('ferry serve (embedded) removes an unfinished upload idle past FERRY_INCOMPLETE_TTL on its own, every FERRY_SWEEP_INTERVAL', async () => {
    const ferry = await startFerry({ env: { FERRY_INCOMPLETE_TTL: '1s', FERRY_SWEEP_INTERVAL: '300ms' } });
    const { url } = await tusCreate(ferry.url, 100);
    const blob = path.join(ferry.dataDir, 'uploads', uploadId(url));
    expect(existsSync(blob)).toBe(true);
    await expect.poll(async () => (await tusHead(url)).status, { timeout: 5000, interval: 200 }).toBe(410);
    await expect.poll(() => existsSync(blob), { timeout: 5000, interval: 200 }).toBe(false);
    expect(ferry.logs()).toContain('expired uploads and files swept');
  });

  it('ferry sweep removes expired uploads once and exits 0; the restarted server answers 410 for them', async () => {
    const ferry = await startFerry({ env: { FERRY_INCOMPLETE_TTL: '1s', FERRY_SWEEP_INTERVAL: '1h' } });
    const { url } = await tusCreate(ferry.url, 100);
    const id = uploadId(url);
    expect(await ferry.stop()).toBe(0);
    await sleep(1200);
    const env = { ...process.env, FERRY_DATA_DIR: ferry.dataDir, FERRY_INCOMPLETE_TTL: '1s' };
    const { stdout } = await run(process.execPath, [FERRY_CLI, 'sweep'], { env });
    expect(stdout).toContain('"expired":1');
    expect(existsSync(path.join(ferry.dataDir, 'uploads', id))).toBe(false);
    const again = await startFerry({
      dataDir: ferry.dataDir,
      env: { FERRY_INCOMPLETE_TTL: '1s', FERRY_SWEEP_INTERVAL: '1h' },
    });
    expect((await tusHead(`${again.url}/files/${id}`)).status).toBe(410);
  });

  it('ferry sweep refuses to run on the data directory of a running ferry serve (exit 1, says why) and the server goes on', async () => {
    const ferry = await startFerry({ env: { FERRY_SWEEP_INTERVAL: '1h' } });
    const env = { ...process.env, FERRY_DATA_DIR: ferry.dataDir };
    const failure = await run(process.execPath, [FERRY_CLI, 'sweep'], { env }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 1 });
    const output = `${(failure as { stdout: string }).stdout}${(failure as { stderr: string }).stderr}`;
    expect(output).toContain(`in use by process ${ferry.pid}`);
    const { url } = await tusCreate(ferry.url, 100);
    expect((await tusHead(url)).status).toBe(200);
  });

  it('ferry worker refuses to run without FERRY_REDIS_URL (exit 2, one clear line)', async () => {
    const env = { ...process.env, FERRY_REDIS_URL: '' };
    const failure = await run(process.execPath, [FERRY_CLI, 'worker'], { env }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toMatch(/ferry worker: needs FERRY_REDIS_URL/);
  });
});
