#!/usr/bin/env node
import { once } from 'node:events';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { createLogger } from './logger.js';
import { createCore } from './main.js';
import { serve } from './serve.js';
import { startPeriodicSweeps } from './sweeps.js';

const USAGE = `Usage: ferry <command>

Commands:
  serve     run the HTTP server (tus at /files/, health at /healthz and /readyz); without
            FERRY_REDIS_URL it also removes expired uploads every FERRY_SWEEP_INTERVAL
  worker    distributed mode (FERRY_REDIS_URL): remove expired uploads every FERRY_SWEEP_INTERVAL
  sweep     remove expired uploads once, then exit (for a CronJob)
  help      show this text

Configuration comes from environment variables (see README.md); for example
  PORT=1080 HOST=127.0.0.1 FERRY_DATA_DIR=./data ferry serve`;

/** Commands of the full product (API.md §1) that need components this version does not have yet. */
const LATER_COMMANDS: Record<string, string> = {
  reindex: 'the file registry it rebuilds is not part of this version yet',
};

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'serve';
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (LATER_COMMANDS[command]) {
    console.error(`ferry ${command}: ${LATER_COMMANDS[command]}`);
    return 2;
  }
  if (!['serve', 'worker', 'sweep'].includes(command)) {
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
  const logger = createLogger(config.logLevel);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
  if (command === 'serve') return serve(config, logger);
  if (command === 'sweep') return sweepOnce(config, logger);
  if (!config.redisUrl) {
    console.error('ferry worker: needs FERRY_REDIS_URL; in embedded mode `ferry serve` sweeps by itself');
    return 2;
  }
  return work(config, logger);
}

async function sweepOnce(config: Config, logger: Logger): Promise<number> {
  const core = await createCore(config, logger);
  try {
    const result = await core.sweeper.sweepOnce();
    logger.info(result, result.ran ? 'sweep done' : 'another sweep is running; nothing done');
    return 0;
  } finally {
    await core.close();
  }
}

async function work(config: Config, logger: Logger): Promise<number> {
  const core = await createCore(config, logger);
  const stop = startPeriodicSweeps(core.sweeper, config.sweepIntervalMs, logger);
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
