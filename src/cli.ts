#!/usr/bin/env node
import { ConfigError, loadConfig } from './config/config.js';
import { createLogger } from './logger.js';
import { serve } from './serve.js';

const USAGE = `Usage: ferry <command>

Commands:
  serve     run the HTTP server (tus at /files/, health at /healthz and /readyz)
  help      show this text

Configuration comes from environment variables (see README.md); for example
  PORT=1080 HOST=127.0.0.1 FERRY_DATA_DIR=./data ferry serve`;

/** Commands of the full product (API.md §1) that need components this version does not have yet. */
const LATER_COMMANDS: Record<string, string> = {
  worker: 'needs distributed mode (Redis), which this version does not have yet',
  sweep: 'the expiry sweeper is not part of this version yet',
  reindex: 'needs distributed mode (Redis), which this version does not have yet',
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
  if (command !== 'serve') {
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
  return serve(config, logger);
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
