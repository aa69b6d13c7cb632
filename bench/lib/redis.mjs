// A redis-server for the Redis variants (ferry-redis, ferry-foundation-redis, the processing pair):
// one per variant, on a free loopback port, without persistence, its log in the bench's temp dir.
// The same way test/helpers/redis-server.ts starts one for the tests (that file is TypeScript for
// vitest; the bench is plain .mjs, so this is its own small copy). Stopped by the bench at the end,
// and SIGKILLed by servers.mjs's exit handler on any other way out.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { cpuSeconds } from './procstat.mjs';
import { freePort, stopServer, track } from './servers.mjs';
import { sleep } from './util.mjs';

/** Is there a redis-server to start? */
export function redisAvailable() {
  const r = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** Start redis-server; resolves with { name, pid, port, url, child, logFile, cpuSeconds(), stop() } once it answers PING. */
export async function startRedis(tmp, name, { timeoutMs = 10_000 } = {}) {
  const port = await freePort();
  const dir = path.join(tmp, `${name}-redis`);
  await mkdir(dir, { recursive: true });
  const logFile = path.join(tmp, `${name}-redis.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = track(
    spawn(
      'redis-server',
      // --dir: nothing is written with these settings, but if it were, it goes to our temp dir.
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        '--dir',
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `redis-server for ${name} exited early (${child.signalCode ?? child.exitCode}); log ${logFile}`,
        );
      }
      if (await ping(port)) break;
      if (Date.now() > deadline)
        throw new Error(`redis-server for ${name}: no PONG on port ${port} within ${timeoutMs} ms`);
      await sleep(50);
    }
  } catch (err) {
    await stopServer(child);
    throw err;
  }
  return {
    name: `${name}-redis`,
    pid: child.pid,
    port,
    url: `redis://127.0.0.1:${port}`,
    child,
    logFile,
    cpuSeconds: () => cpuSeconds(child.pid),
    stop: () => stopServer(child),
  };
}

/** One PING over a fresh connection: true on +PONG. */
function ping(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}
