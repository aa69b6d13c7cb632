import pino, { type Logger } from 'pino';
import type { Config } from './config/config.js';

/** JSON lines on stdout (12-factor): the platform collects them. */
export function createLogger(level: Config['logLevel']): Logger {
  return pino({
    level,
    base: { service: 'ferry' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
