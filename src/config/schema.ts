import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';

/**
 * The configuration keys Ferry understands (API.md §2), as raw strings from the environment or a
 * config file, validated and turned into typed values. Every key has a default that suits `npm start`.
 */

const size = (example: string) =>
  z.string().transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined || bytes <= 0) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a positive size such as ${example} (units B, KiB, MiB, GiB, TiB, or plain bytes)`,
      });
      return z.NEVER;
    }
    return bytes;
  });

/** A size that may also be 0 (something turned off). */
const sizeOrZero = (example: string) =>
  z.string().transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined || bytes < 0) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a size such as ${example} or 0 (units B, KiB, MiB, GiB, TiB, or plain bytes)`,
      });
      return z.NEVER;
    }
    return bytes;
  });

const duration = (example: string) =>
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a positive duration such as ${example} (units ms, s, m, h, d)`,
      });
      return z.NEVER;
    }
    return ms;
  });

const port = z.string().transform((text, ctx) => {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 0 || value > 65535) {
    ctx.addIssue({ code: 'custom', message: 'expected a port number from 0 to 65535' });
    return z.NEVER;
  }
  return value;
});

const count = (example: string) =>
  z.string().transform((text, ctx) => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < 1 || value > 64) {
      ctx.addIssue({ code: 'custom', message: `expected a whole number from 1 to 64 such as ${example}` });
      return z.NEVER;
    }
    return value;
  });

const absoluteHttpUrl = z.string().transform((text, ctx) => {
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
    // Stored without a trailing slash so `${publicUrl}/files/<id>` is always well formed.
    return url.href.replace(/\/+$/, '');
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected an absolute http(s) URL such as https://uploads.example.com' });
    return z.NEVER;
  }
});

const redisUrl = z.string().transform((text, ctx) => {
  try {
    const url = new URL(text);
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error('protocol');
    return text;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected a redis:// or rediss:// URL such as redis://127.0.0.1:6379' });
    return z.NEVER;
  }
});

const mediaTypeList = z.string().transform((text, ctx) => {
  const types = text
    .split(',')
    .map((type) => type.trim().toLowerCase())
    .filter(Boolean);
  const valid = /^(\*|\*\/\*|[a-z0-9!#$&^_.+-]+\/(\*|[a-z0-9!#$&^_.+-]+))$/;
  if (types.length === 0 || !types.every((type) => valid.test(type))) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected media types separated by commas, such as image/*,application/pdf, or *',
    });
    return z.NEVER;
  }
  return types;
});

export const configSchema = z.object({
  PORT: port.prefault('1080'),
  HOST: z.string().min(1, 'expected a listen address such as 127.0.0.1 or 0.0.0.0').default('127.0.0.1'),
  FERRY_PUBLIC_URL: absoluteHttpUrl.optional(),
  FERRY_DATA_DIR: z.string().min(1, 'expected a directory path').default('./data'),
  FERRY_STORAGE: z.enum(['disk', 's3'], { error: 'expected "disk" or "s3"' }).default('disk'),
  FERRY_S3_BUCKET: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'expected an S3 bucket name (3 to 63 lowercase letters, digits, . or -)',
    )
    .optional(),
  FERRY_S3_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9!_.*'()/-]{0,512}$/, "expected a key prefix of letters, digits and ! _ . * ' ( ) / -")
    .default(''),
  FERRY_S3_ENDPOINT: absoluteHttpUrl.optional(),
  FERRY_S3_REGION: z.string().min(1, 'expected a region such as eu-west-1').default('us-east-1'),
  FERRY_S3_FORCE_PATH_STYLE: z.enum(['true', 'false'], { error: 'expected true or false' }).default('false'),
  FERRY_S3_PART_SIZE: size('8MiB').prefault('8MiB'),
  FERRY_S3_CONCURRENCY: count('4').prefault('4'),
  FERRY_S3_TEMP_DIR: z.string().min(1, 'expected a directory path').optional(),
  FERRY_S3_MEMORY_BUFFER: sizeOrZero('64MiB').prefault('64MiB'),
  FERRY_S3_CHECKSUMS: z.enum(['true', 'false'], { error: 'expected true or false' }).default('true'),
  FERRY_REDIS_URL: redisUrl.optional(),
  FERRY_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'expected 1 to 64 letters, digits or : _ . -')
    .default('ferry:'),
  FERRY_MAX_SIZE: size('5GiB').prefault('5GiB'),
  FERRY_INCOMPLETE_TTL: duration('24h').prefault('24h'),
  FERRY_RETENTION: duration('7d').prefault('7d'),
  FERRY_MAX_RETENTION: duration('30d').prefault('30d'),
  FERRY_SWEEP_INTERVAL: duration('60s').prefault('60s'),
  FERRY_ALLOWED_TYPES: mediaTypeList.prefault('*'),
  FERRY_WEBHOOK_URL: absoluteHttpUrl.optional(),
  FERRY_WEBHOOK_SECRET: z.string().min(16, 'expected a secret of at least 16 characters').optional(),
  FERRY_WEBHOOK_RETRY_DELAY: duration('10s').prefault('10s'),
  FERRY_PROCESSING_CONCURRENCY: count('2').prefault('2'),
  FERRY_API_KEYS: z.string().optional(),
  FERRY_API_KEYS_FILE: z.string().min(1, 'expected a file path').optional(),
  FERRY_ALLOW_ANONYMOUS: z.enum(['true', 'false'], { error: 'expected true or false' }).optional(),
  FERRY_TOKEN_SECRET: z.string().min(32, 'expected a secret of at least 32 characters').optional(),
  FERRY_SIGNING_SECRET: z.string().min(32, 'expected a secret of at least 32 characters').optional(),
  FERRY_CORS_ORIGINS: z
    .string()
    .transform((text, ctx) => {
      const origins = text
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean);
      for (const origin of origins) {
        if (origin === '*') continue;
        try {
          const url = new URL(origin);
          if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== origin) throw new Error();
        } catch {
          ctx.addIssue({ code: 'custom', message: 'expected * or origins such as https://app.example.com' });
          return z.NEVER;
        }
      }
      return origins;
    })
    .prefault('*'),
  FERRY_MAX_CONCURRENT_UPLOADS: z
    .string()
    .transform((text, ctx) => {
      const value = Number(text);
      if (!/^\d+$/.test(text) || value < 1 || value > 100_000) {
        ctx.addIssue({ code: 'custom', message: 'expected a whole number from 1 to 100000 such as 100' });
        return z.NEVER;
      }
      return value;
    })
    .prefault('100'),
  FERRY_TENANTS: z.string().optional(),
  FERRY_SHUTDOWN_TIMEOUT: duration('25s').prefault('25s'),
  FERRY_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'expected one of fatal, error, warn, info, debug, trace, silent',
    })
    .default('info'),
});

export type ConfigInput = z.input<typeof configSchema>;
export type ConfigKey = keyof ConfigInput;
export const CONFIG_KEYS = Object.keys(configSchema.shape) as ConfigKey[];
