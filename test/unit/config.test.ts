import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { parseDuration, parseSize } from '../../src/config/units.js';

const SECRETS = { FERRY_TOKEN_SECRET: 'x'.repeat(32), FERRY_SIGNING_SECRET: 'y'.repeat(32) };

const problemsOf = (env: Record<string, string>, cwd = os.tmpdir()): string[] => {
  try {
    loadConfig(env, cwd);
  } catch (error) {
    if (error instanceof ConfigError) return error.lines;
    throw error;
  }
  return [];
};

describe('size and duration parsing', () => {
  it('reads sizes in binary units and plain bytes', () => {
    expect(parseSize('5GiB')).toBe(5 * 1024 ** 3);
    expect(parseSize('10 MiB')).toBe(10 * 1024 ** 2);
    expect(parseSize('1.5KiB')).toBe(1536);
    expect(parseSize('1048576')).toBe(1048576);
    expect(parseSize('12B')).toBe(12);
  });

  it('rejects what is not a size', () => {
    for (const text of ['', 'GiB', '5GB', '-1', '5 gib', '1e9', 'abc']) expect(parseSize(text), text).toBeUndefined();
  });

  it('reads durations and rejects what is not one', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(parseDuration('250ms')).toBe(250);
    for (const text of ['', '24', 'h', '1w', '-5s']) expect(parseDuration(text), text).toBeUndefined();
  });
});

describe('loadConfig', () => {
  it('has defaults that suit npm start on a laptop', () => {
    const config = loadConfig({}, '/srv/ferry');
    expect(config).toMatchObject({
      port: 1080,
      host: '127.0.0.1',
      publicUrl: undefined,
      dataDir: '/srv/ferry/data',
      storage: 'disk',
      maxSize: 5 * 1024 ** 3,
      incompleteTtlMs: 86_400_000,
      logLevel: 'info',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads every variable from the environment', () => {
    const config = loadConfig(
      {
        PORT: '8080',
        HOST: '0.0.0.0',
        FERRY_ALLOW_ANONYMOUS: 'true',
        FERRY_PUBLIC_URL: 'https://uploads.example.com/',
        FERRY_DATA_DIR: '/var/lib/ferry',
        FERRY_MAX_SIZE: '100MiB',
        FERRY_INCOMPLETE_TTL: '2h',
        FERRY_SHUTDOWN_TIMEOUT: '5s',
        FERRY_LOG_LEVEL: 'debug',
      },
      '/',
    );
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      publicUrl: 'https://uploads.example.com',
      dataDir: '/var/lib/ferry',
      maxSize: 100 * 1024 ** 2,
      incompleteTtlMs: 7_200_000,
      shutdownTimeoutMs: 5000,
      logLevel: 'debug',
    });
  });

  it('names the variable, the value and what is allowed, one line per bad value', () => {
    const lines = problemsOf({ PORT: '99999', FERRY_MAX_SIZE: '5 gigs', FERRY_LOG_LEVEL: 'loud' });
    expect(lines).toHaveLength(3);
    expect(lines).toContainEqual(expect.stringMatching(/^PORT="99999": expected a port number/));
    expect(lines).toContainEqual(
      expect.stringMatching(/^FERRY_MAX_SIZE="5 gigs": expected a positive size such as 5GiB/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^FERRY_LOG_LEVEL="loud": expected one of fatal, error/));
  });

  it('refuses an unknown storage, and S3 without a bucket or with parts below 5 MiB', () => {
    expect(problemsOf({ FERRY_STORAGE: 'gcs' })).toEqual([
      expect.stringMatching(/^FERRY_STORAGE="gcs": expected "disk" or "s3"/),
    ]);
    expect(problemsOf({ FERRY_STORAGE: 's3' })).toEqual(['FERRY_S3_BUCKET="": required when FERRY_STORAGE=s3']);
    expect(problemsOf({ FERRY_STORAGE: 's3', FERRY_S3_BUCKET: 'uploads', FERRY_S3_PART_SIZE: '1MiB' })).toEqual([
      expect.stringMatching(/^FERRY_S3_PART_SIZE="1MiB": expected at least 5MiB/),
    ]);
    expect(problemsOf({ FERRY_S3_BUCKET: 'No_Such!' })).toEqual([
      expect.stringMatching(/^FERRY_S3_BUCKET="No_Such!": expected an S3 bucket name/),
    ]);
  });

  it('reads the S3 settings, with the prefix ending in a slash', () => {
    const config = loadConfig(
      {
        FERRY_STORAGE: 's3',
        FERRY_S3_BUCKET: 'uploads',
        FERRY_S3_PREFIX: 'tenants/ferry',
        FERRY_S3_ENDPOINT: 'http://127.0.0.1:9000',
        FERRY_S3_FORCE_PATH_STYLE: 'true',
        FERRY_S3_PART_SIZE: '16MiB',
        FERRY_S3_CONCURRENCY: '8',
        FERRY_S3_TEMP_DIR: '/scratch',
      },
      '/',
    );
    expect(config.storage).toBe('s3');
    expect(config.s3).toEqual({
      bucket: 'uploads',
      prefix: 'tenants/ferry/',
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      forcePathStyle: true,
      partSize: 16 * 1024 * 1024,
      concurrency: 8,
      tempDir: '/scratch',
      memoryBuffer: 64 * 1024 * 1024,
      checksums: true,
    });
    expect(loadConfig({}, '/').s3).toBeUndefined();
  });

  it('takes 0 for the S3 memory buffer (every part on disk) and refuses what is not a size', () => {
    const s3 = { FERRY_STORAGE: 's3', FERRY_S3_BUCKET: 'uploads' };
    expect(loadConfig({ ...s3, FERRY_S3_MEMORY_BUFFER: '0' }, '/').s3?.memoryBuffer).toBe(0);
    expect(loadConfig({ ...s3, FERRY_S3_MEMORY_BUFFER: '256MiB' }, '/').s3?.memoryBuffer).toBe(256 * 1024 * 1024);
    expect(() => loadConfig({ ...s3, FERRY_S3_MEMORY_BUFFER: '-1' }, '/')).toThrow(ConfigError);
  });

  it('sends S3 checksums unless FERRY_S3_CHECKSUMS is false, and refuses any other value', () => {
    const s3 = { FERRY_STORAGE: 's3', FERRY_S3_BUCKET: 'uploads' };
    expect(loadConfig(s3, '/').s3?.checksums).toBe(true);
    expect(loadConfig({ ...s3, FERRY_S3_CHECKSUMS: 'false' }, '/').s3?.checksums).toBe(false);
    expect(() => loadConfig({ ...s3, FERRY_S3_CHECKSUMS: 'no' }, '/')).toThrow(ConfigError);
  });

  it('switches to distributed mode with a redis:// URL and refuses anything else', () => {
    const config = loadConfig({ FERRY_REDIS_URL: 'redis://127.0.0.1:6379/2', ...SECRETS }, '/');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379/2');
    expect(config.redisPrefix).toBe('ferry:');
    expect(loadConfig({}, '/').redisUrl).toBeUndefined();
    expect(problemsOf({ FERRY_REDIS_URL: 'http://127.0.0.1:6379', ...SECRETS })).toEqual([
      expect.stringMatching(/^FERRY_REDIS_URL="http:\/\/127.0.0.1:6379": expected a redis:\/\/ or rediss:\/\/ URL/),
    ]);
    expect(problemsOf({ FERRY_REDIS_PREFIX: 'has space' })).toEqual([
      expect.stringMatching(/^FERRY_REDIS_PREFIX="has space": expected 1 to 64 letters/),
    ]);
  });

  it('rejects a public URL that is not absolute http(s)', () => {
    expect(problemsOf({ FERRY_PUBLIC_URL: 'uploads.example.com' })).toEqual([
      expect.stringMatching(/^FERRY_PUBLIC_URL="uploads.example.com": expected an absolute http\(s\) URL/),
    ]);
  });

  it('reads config/ferry.json when present, and the environment wins over it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-config-'));
    await import('node:fs/promises').then((fs) => fs.mkdir(path.join(dir, 'config')));
    await writeFile(path.join(dir, 'config', 'ferry.json'), JSON.stringify({ PORT: 2000, FERRY_MAX_SIZE: '1MiB' }));
    const config = loadConfig({ PORT: '3000' }, dir);
    expect(config.port).toBe(3000);
    expect(config.maxSize).toBe(1024 * 1024);
  });

  it('reports a FERRY_CONFIG_FILE that is missing or not JSON', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-config-'));
    expect(problemsOf({ FERRY_CONFIG_FILE: 'nope.json' }, dir)).toEqual([expect.stringMatching(/file not found$/)]);
    await writeFile(path.join(dir, 'bad.json'), '{nope');
    expect(problemsOf({ FERRY_CONFIG_FILE: 'bad.json' }, dir)).toEqual([expect.stringMatching(/not valid JSON$/)]);
  });
});

describe('files configuration', () => {
  it('has the documented defaults for retention, allowed types, webhooks and processing', () => {
    const config = loadConfig({}, os.tmpdir());
    expect(config).toMatchObject({
      retentionMs: 7 * 86_400_000,
      maxRetentionMs: 30 * 86_400_000,
      allowedTypes: ['*'],
      webhook: undefined,
      processingConcurrency: 2,
    });
  });

  it('reads an allow-list of media types and a webhook with its secret and retry delay', () => {
    const config = loadConfig(
      {
        FERRY_ALLOWED_TYPES: 'Image/*, application/pdf',
        FERRY_WEBHOOK_URL: 'https://backend.example.com/hook',
        FERRY_WEBHOOK_SECRET: 'sixteen-chars-ok',
        FERRY_WEBHOOK_RETRY_DELAY: '250ms',
      },
      os.tmpdir(),
    );
    expect(config.allowedTypes).toEqual(['image/*', 'application/pdf']);
    expect(config.webhook).toEqual({
      url: 'https://backend.example.com/hook',
      secret: 'sixteen-chars-ok',
      retryDelayMs: 250,
    });
  });

  it('refuses a retention above the maximum, a webhook without a secret and a malformed allow-list', () => {
    expect(problemsOf({ FERRY_RETENTION: '40d' })).toEqual([
      expect.stringMatching(/^FERRY_RETENTION="40d": must not exceed FERRY_MAX_RETENTION/),
    ]);
    expect(problemsOf({ FERRY_WEBHOOK_URL: 'https://backend.example.com/hook' })).toEqual([
      expect.stringMatching(/^FERRY_WEBHOOK_SECRET="": required when FERRY_WEBHOOK_URL is set/),
    ]);
    expect(problemsOf({ FERRY_WEBHOOK_URL: 'https://b.example.com', FERRY_WEBHOOK_SECRET: 'short' })).toEqual([
      expect.stringMatching(/^FERRY_WEBHOOK_SECRET="short": expected a secret of at least 16 characters/),
    ]);
    expect(problemsOf({ FERRY_ALLOWED_TYPES: 'images, pdf' })).toEqual([
      expect.stringMatching(/^FERRY_ALLOWED_TYPES="images, pdf": expected media types/),
    ]);
  });

  it('loads the example configuration files as they are', async () => {
    const repo = path.resolve(import.meta.dirname, '../..');
    const json = loadConfig({ FERRY_CONFIG_FILE: path.join(repo, 'config/ferry.example.json') }, os.tmpdir());
    expect(json.retentionMs).toBe(7 * 86_400_000);
    for (const name of ['production.env.example', 's3.env.example']) {
      const env: Record<string, string> = {};
      for (const line of (await readFile(path.join(repo, 'config', name), 'utf8')).split('\n')) {
        const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
        if (match) env[match[1]!] = match[2]!;
      }
      // The examples name the operator's key file; the repository's example stands in for it.
      if (env.FERRY_API_KEYS_FILE) env.FERRY_API_KEYS_FILE = path.join(repo, 'config/api-keys.example');
      expect(problemsOf(env), name).toEqual([]);
    }
  });
});
