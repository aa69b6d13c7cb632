/**
 * What an operator sees when Ferry cannot start: one clear line on stderr and a non-zero exit, never a
 * process that hangs or serves without what it was told to use.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FERRY_CLI } from '../helpers/ferry-process.js';
import { freePort } from '../helpers/ports.js';
import { TEST_SECRETS } from '../helpers/secrets.js';

const run = promisify(execFile);

async function start(env: Record<string, string>): Promise<{ code: number; stderr: string; ms: number }> {
  const started = Date.now();
  const failure = await run(process.execPath, [FERRY_CLI, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      FERRY_DATA_DIR: '/tmp/ferry-startup-test',
      FERRY_LOG_LEVEL: 'silent',
      ...TEST_SECRETS,
      ...env,
    },
    timeout: 30_000,
  }).catch((error: unknown) => error as { code: number; stderr: string });
  if (!('code' in failure)) throw new Error('ferry serve kept running instead of failing');
  return { code: failure.code, stderr: failure.stderr, ms: Date.now() - started };
}

describe('start-up failures', () => {
  it('invalid configuration: exit 2 with one line per bad value, naming variable, value and what is allowed', async () => {
    const { code, stderr } = await start({ PORT: 'eighty', FERRY_MAX_SIZE: 'huge' });
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      'ferry: invalid configuration: PORT="eighty": expected a port number from 0 to 65535',
      expect.stringMatching(/^ferry: invalid configuration: FERRY_MAX_SIZE="huge": expected a positive size/),
    ]);
  });

  it('Redis unreachable: gives up after about 10 s and exits 1 (no hang, no serving without shared state)', async () => {
    const closedPort = await freePort();
    const { code, stderr, ms } = await start({ FERRY_REDIS_URL: `redis://127.0.0.1:${closedPort}`, PORT: '0' });
    expect(code).toBe(1);
    expect(stderr).toContain('ferry: failed to start: could not connect to Redis within 10 s (FERRY_REDIS_URL)');
    expect(ms).toBeLessThan(20_000);
  }, 30_000);
});
