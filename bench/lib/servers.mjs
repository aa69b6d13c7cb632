// Starting and stopping the server processes under test.
//
// Every server runs in its own child process so /proc shows its CPU time and peak RSS
// alone. Children are tracked here and killed on the way out, whatever the way out is.
import { spawn } from 'node:child_process';
import { closeSync, createWriteStream, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { sleep } from './util.mjs';

const children = new Set();

// Last resort (uncaught error, process.exit): 'exit' handlers must be synchronous, so
// SIGKILL whatever is still running. The normal path stops servers gracefully first.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const exited = (child) => child.exitCode !== null || child.signalCode !== null;

/** A port that was free a moment ago (for servers that must be told their port). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Start one of bench/servers/*.mjs. It prints {"listening":true,"port":N} when ready.
 * Its stdin stays a pipe from us: if we die, it sees EOF and exits.
 */
export async function startReferenceServer({ script, dataDir, logFile, timeoutMs = 15000 }) {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = track(
    spawn(process.execPath, [script], {
      env: { ...process.env, BENCH_DATA_DIR: dataDir },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  child.stderr.pipe(log);
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script}: not listening after ${timeoutMs} ms`)), timeoutMs);
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        log.write(line + '\n');
        try {
          const msg = JSON.parse(line);
          if (msg.listening) {
            clearTimeout(timer);
            resolve(msg.port);
          }
        } catch {
          // not our line; it is in the log
        }
      });
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`${script} exited early (${sig ?? code})`));
      });
    });
    return { child, pid: child.pid, port, logFile };
  } catch (err) {
    await stopServer(child);
    throw err;
  }
}

/**
 * Start Ferry: `node <cli> serve` (dist/launcher.cjs, or an older build's dist/cli.js) with PORT/HOST/FERRY_DATA_DIR, all output to
 * `logFile` (JSON lines), ready once GET /healthz answers 200. Node is spawned directly,
 * not through npm or a shell, so child.pid is the server itself. `env` is added to the
 * environment (the S3 settings of the ferry-s3 variant), `nodeArgs` go before the script
 * (e.g. --cpu-prof). The environment it got is returned as `env` (a `ferry worker` beside it gets
 * the same).
 */
export async function startFerry({ cli, cwd, dataDir, logFile, env = {}, nodeArgs = [], timeoutMs = 30000 }) {
  const port = await freePort();
  // An `env` value of undefined removes that variable (spawn skips undefined values).
  const childEnv = { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', FERRY_DATA_DIR: dataDir };
  // Ferry's output goes straight to the log file, as with `ferry serve >> log`: piped through this
  // process, each request's log line would cost the bench's client (which shares the machine's CPUs
  // with the server) a read and a write.
  const log = openSync(logFile, 'a');
  let child;
  try {
    child = track(
      spawn(process.execPath, [...nodeArgs, cli, 'serve'], { cwd, env: childEnv, stdio: ['ignore', log, log] }),
    );
  } finally {
    closeSync(log);
  }
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (exited(child)) throw new Error(`ferry exited early (${child.signalCode ?? child.exitCode})`);
      if ((await healthStatus(port)) === 200) break;
      if (Date.now() > deadline) throw new Error(`ferry: /healthz not 200 after ${timeoutMs} ms`);
      await sleep(100);
    }
    return { child, pid: child.pid, port, logFile, env: childEnv };
  } catch (err) {
    await stopServer(child);
    err.message += `\n--- tail of ${logFile} ---\n${tail(logFile)}`;
    throw err;
  }
}

/**
 * Start `node <cli> worker` (distributed mode: it needs FERRY_REDIS_URL in `env`) with the same
 * environment a server got, all output to `logFile`; ready once it logs "ferry worker running"
 * (after it connected to Redis and started its queue consumers). Returns { child, pid, logFile }.
 */
export async function startFerryWorker({ cli, cwd, env, logFile, timeoutMs = 30000 }) {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = track(spawn(process.execPath, [cli, 'worker'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  child.stderr.pipe(log);
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ferry worker: not running after ${timeoutMs} ms`)), timeoutMs);
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        log.write(line + '\n');
        if (line.includes('"msg":"ferry worker running"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`ferry worker exited early (${sig ?? code})`));
      });
    });
    return { child, pid: child.pid, logFile };
  } catch (err) {
    await stopServer(child);
    err.message += `\n--- tail of ${logFile} ---\n${tail(logFile)}`;
    throw err;
  }
}

function healthStatus(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0)); // not listening yet
    req.setTimeout(2000, () => req.destroy());
  });
}

/** Last lines of a log file, for error messages. */
export function tail(file, lines = 20) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** SIGTERM, then SIGKILL if the process hasn't exited within `graceMs`. */
export async function stopServer(child, graceMs = 5000) {
  if (!child || exited(child)) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}

/** Is the server process still alive? (A crash mid-run must fail the bench.) */
export const isRunning = (child) => !exited(child);
