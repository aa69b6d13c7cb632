import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupFerries, restartFerry, startFerry } from '../../helpers/ferry-process.js';
import { freePort } from '../../helpers/ports.js';

// A stand-in for dist/cli.js: serves /healthz, logs a JSON line, exits 0 on the first SIGTERM and
// 3 on a second one while "draining" when DRAIN_MS is set.
const FAKE_SERVER = `
import http from 'node:http';
const port = Number(process.env.PORT);
const srv = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.end('ok'); return; }
  if (req.url === '/env') { res.end(JSON.stringify({ dir: process.env.FERRY_DATA_DIR, host: process.env.HOST, x: process.env.FERRY_X ?? null })); return; }
  res.statusCode = 404; res.end();
});
srv.listen(port, process.env.HOST, () => console.log(JSON.stringify({ msg: 'listening', port })));
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) process.exit(3);
  stopping = true;
  srv.close();
  setTimeout(() => process.exit(0), Number(process.env.DRAIN_MS ?? 0));
});
`;
const CRASHING = `console.error('boom: FERRY_MAX_SIZE is invalid'); process.exit(2);`;

let dir: string;
let fake: string;
let crashing: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-helper-selftest-'));
  fake = join(dir, 'fake.mjs');
  crashing = join(dir, 'crash.mjs');
  await writeFile(fake, FAKE_SERVER);
  await writeFile(crashing, CRASHING);
});
afterEach(cleanupFerries);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('freePort', () => {
  it('returns a loopback port that can be listened on', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    await new Promise((r) => srv.close(r));
  });
});

describe('startFerry (against a stand-in server script)', () => {
  it('starts the script with PORT/HOST/FERRY_DATA_DIR, waits for /healthz and collects stdout', async () => {
    const f = await startFerry({ cli: fake, env: { FERRY_X: 'y' } });
    const res = await fetch(`${f.url}/env`);
    expect(await res.json()).toEqual({ dir: f.dataDir, host: '127.0.0.1', x: 'y' });
    expect(f.logs()).toContain('"listening"');
    expect(f.isRunning()).toBe(true);
    expect(await f.stop()).toBe(0);
    expect(f.isRunning()).toBe(false);
  });

  it('does not pass the runner’s own FERRY_* variables through', async () => {
    process.env.FERRY_X = 'leaked';
    try {
      const f = await startFerry({ cli: fake });
      const res = await fetch(`${f.url}/env`);
      expect(((await res.json()) as { x: unknown }).x).toBeNull();
    } finally {
      delete process.env.FERRY_X;
    }
  });

  it('restartFerry reuses the data dir and port', async () => {
    const a = await startFerry({ cli: fake });
    const b = await restartFerry(a, { cli: fake });
    expect(a.isRunning()).toBe(false);
    expect(b.port).toBe(a.port);
    expect(b.dataDir).toBe(a.dataDir);
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
  });

  it('kill() SIGKILLs the process', async () => {
    const f = await startFerry({ cli: fake });
    await f.kill();
    expect(await f.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('stop() rejects and SIGKILLs when the process outlives the timeout', async () => {
    const f = await startFerry({ cli: fake, env: { DRAIN_MS: '5000' } });
    await expect(f.stop('SIGTERM', 300)).rejects.toThrow(/did not exit within 300 ms/);
    expect(f.isRunning()).toBe(false);
  });

  it('a script that dies at start-up rejects with its stderr in the message', async () => {
    await expect(startFerry({ cli: crashing })).rejects.toThrow(/code 2[\s\S]*boom: FERRY_MAX_SIZE is invalid/);
  });

  it('cleanupFerries kills processes still running', async () => {
    const f = await startFerry({ cli: fake });
    await cleanupFerries();
    expect(f.isRunning()).toBe(false);
  });
});
