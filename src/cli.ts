#!/usr/bin/env node
import { once } from 'node:events';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { hashApiKey } from './core/auth/api-keys.js';
import { keepHeapHeadroom } from './heap-headroom.js';
import { TENANT_NAME } from './core/tenancy.js';
import { createLogger } from './logger.js';
import { createCore } from './main.js';
import { serve } from './serve.js';
import { startPeriodicSweeps } from './sweeps.js';

const USAGE = `Usage: ferry <command>

Commands:
  serve     run the HTTP server (tus at /files/, files at /v1/files, events, health); without
            FERRY_REDIS_URL it also processes completed files, delivers webhooks and removes
            expired uploads and files every FERRY_SWEEP_INTERVAL
  worker    distributed mode (FERRY_REDIS_URL): process files, deliver webhooks and sweep
  sweep     remove expired uploads and files once, then exit (for a CronJob)
  reindex   distributed mode: rebuild the file registry's Redis indexes from the durable records
  hash-key <tenant>
            read an API key on stdin, print its line for FERRY_API_KEYS_FILE
  help      show this text

Configuration comes from environment variables (see README.md); for example
  PORT=1080 HOST=127.0.0.1 FERRY_DATA_DIR=./data ferry serve`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'serve';
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (command === 'hash-key') return hashKey(argv[1]);
  if (!['serve', 'worker', 'sweep', 'reindex'].includes(command)) {
    console.error(`ferry: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }

  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.lines) console.error(`ferry: invalid configuration: ${line}`);
    return 2;
  }
  // Long-running commands stream request bodies and files: see heap-headroom.ts.
  if (command === 'serve' || command === 'worker') keepHeapHeadroom();
  const logger = createLogger(config.logLevel);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
  if (command === 'serve') return serve(config, logger);
  if (command === 'sweep') return sweepOnce(config, logger);
  if (!config.redisUrl) {
    console.error(
      command === 'worker'
        ? 'ferry worker: needs FERRY_REDIS_URL; in embedded mode `ferry serve` processes and sweeps by itself'
        : 'ferry reindex: needs FERRY_REDIS_URL; the embedded registry indexes itself at start',
    );
    return 2;
  }
  return command === 'worker' ? work(config, logger) : reindex(config, logger);
}

/** The key comes on stdin, not as an argument, so it stays out of shell history and `ps`. */
async function hashKey(tenant: string | undefined): Promise<number> {
  if (!tenant || !TENANT_NAME.test(tenant)) {
    console.error(
      'ferry hash-key: usage: printf %s "$KEY" | ferry hash-key <tenant> (lowercase letters, digits, _ or -)',
    );
    return 2;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const key = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (key.length < 16) {
    console.error('ferry hash-key: the key on stdin must have at least 16 characters');
    return 2;
  }
  console.log(`${tenant}:sha256:${hashApiKey(key).toString('hex')}`);
  return 0;
}

async function reindex(config: Config, logger: Logger): Promise<number> {
  const core = await createCore(config, logger);
  try {
    const count = await core.reindex();
    logger.info({ files: count }, 'file registry reindexed');
    return 0;
  } finally {
    await core.close();
  }
}

async function sweepOnce(config: Config, logger: Logger): Promise<number> {
  const core = await createCore(config, logger);
  try {
    // Embedded mode has no shared queue: this process delivers the webhooks its sweep causes (their
    // first attempt, within 15 s). Run it only while `ferry serve` is stopped: locks are per process.
    if (!config.redisUrl) await core.startWorkers();
    const result = await core.sweeper.sweepOnce();
    logger.info(result, result.ran ? 'sweep done' : 'another sweep is running; nothing done');
    if (!config.redisUrl) {
      await Promise.race([core.jobs.drain?.(), new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
    }
    return 0;
  } finally {
    await core.close();
  }
}

async function work(config: Config, logger: Logger): Promise<number> {
  const core = await createCore(config, logger);
  await core.startWorkers();
  // A Redis that restarted empty under running replicas gets the registry's indexes back within one
  // sweep interval (replicas find single records from the durable copy meanwhile).
  const stop = startPeriodicSweeps(core.sweeper, config.sweepIntervalMs, logger, async () => {
    const reindexed = await core.ensureIndexed();
    if (reindexed !== undefined) logger.info({ files: reindexed }, 'file registry indexes rebuilt');
  });
  logger.info({ interval_ms: config.sweepIntervalMs }, 'ferry worker running');
  const [signal] = (await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')])) as [NodeJS.Signals];
  logger.info({ signal }, 'shutting down');
  await stop();
  await core.close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error('ferry: failed to start:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);
