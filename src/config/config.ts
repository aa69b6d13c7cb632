import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readApiKeys, readTenantOverrides } from './auth-config.js';
import { CONFIG_KEYS, configSchema, type ConfigInput } from './schema.js';
import type { ApiKeyEntry } from '../core/auth/api-keys.js';
import type { TenantPolicy } from '../core/tenancy.js';

/** Ferry's typed, validated configuration. Built once at start and handed to the composition root. */
export interface Config {
  readonly port: number;
  readonly host: string;
  /** Absolute base URL for Location headers and links; undefined means "derive from the request". */
  readonly publicUrl: string | undefined;
  readonly dataDir: string;
  readonly storage: 'disk' | 's3';
  /** S3 settings; present exactly when `storage` is `s3`. */
  readonly s3: S3Config | undefined;
  /** Set: distributed mode (locks and upload state in Redis); unset: embedded single-node mode. */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key and channel Ferry uses. */
  readonly redisPrefix: string;
  readonly maxSize: number;
  /** An unfinished upload expires this long after its creation or last received byte. */
  readonly incompleteTtlMs: number;
  /** How long a completed file is kept unless its upload asks for less. */
  readonly retentionMs: number;
  /** The longest retention an upload may ask for. */
  readonly maxRetentionMs: number;
  /** How often expired uploads are removed (in `ferry serve` embedded, `ferry worker` distributed). */
  readonly sweepIntervalMs: number;
  /** Media types (`image/*`, `application/pdf`, `*`) a file may have, checked against the sniffed type. */
  readonly allowedTypes: readonly string[];
  /** Set: file events are POSTed there, signed with `secret`. */
  readonly webhook: { readonly url: string; readonly secret: string; readonly retryDelayMs: number } | undefined;
  /** Files processed at a time by each worker process. */
  readonly processingConcurrency: number;
  readonly auth: AuthConfig;
  /** `['*']` or exact origins; credentials are allowed only with exact origins. */
  readonly corsOrigins: readonly string[];
  /** PATCHes of one tenant in flight at once in one process. */
  readonly maxConcurrentUploads: number;
  /** Per-tenant settings overriding the global ones. */
  readonly tenants: Readonly<Record<string, Partial<TenantPolicy>>>;
  /** How long a graceful shutdown waits for in-flight requests before closing them. */
  readonly shutdownTimeoutMs: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export interface AuthConfig {
  /** From FERRY_API_KEYS and FERRY_API_KEYS_FILE. */
  readonly apiKeys: readonly ApiKeyEntry[];
  /** Requests without credentials belong to tenant `default`. */
  readonly allowAnonymous: boolean;
  /** HMAC secret of upload tokens; generated per process when unset (embedded mode only). */
  readonly tokenSecret: string;
  /** HMAC secret of signed download URLs; generated per process when unset (embedded mode only). */
  readonly signingSecret: string;
}

export interface S3Config {
  readonly bucket: string;
  /** '' or ending in '/': every object Ferry writes lives under it. */
  readonly prefix: string;
  /** An S3-compatible server (MinIO, R2, Ceph…); undefined means AWS. */
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly forcePathStyle: boolean;
  readonly partSize: number;
  readonly concurrency: number;
  /** Where parts are buffered before upload when the memory buffer is full (a sized volume in Kubernetes). */
  readonly tempDir: string;
  /** Bytes of parts held in memory by the whole process; 0 buffers every part on disk. */
  readonly memoryBuffer: number;
  /** A CRC-32 with every part and object, so S3 refuses bytes damaged on the way. */
  readonly checksums: boolean;
}

/** S3's smallest part (all but the last). */
const MIN_S3_PART_SIZE = 5 * 1024 * 1024;

/** Thrown when configuration is invalid; `lines` holds one human-readable line per bad value. */
export class ConfigError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
    this.name = 'ConfigError';
  }
}

export const DEFAULT_CONFIG_FILE = 'config/ferry.json';

/**
 * Reads configuration from an optional JSON file (`FERRY_CONFIG_FILE`, else `config/ferry.json` when
 * present; keys are the environment variable names) and the environment. The environment wins.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const fileValues = readConfigFile(env, cwd);
  const raw: Record<string, string> = {};
  for (const key of CONFIG_KEYS) {
    const value = env[key] ?? fileValues[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const key = String(issue.path[0]);
        return `${key}=${JSON.stringify(raw[key] ?? '')}: ${issue.message}`;
      }),
    );
  }

  const values = parsed.data;
  const problems: string[] = [];
  if (values.FERRY_STORAGE === 's3' && !values.FERRY_S3_BUCKET) {
    problems.push('FERRY_S3_BUCKET="": required when FERRY_STORAGE=s3');
  }
  if (values.FERRY_S3_PART_SIZE < MIN_S3_PART_SIZE) {
    problems.push(
      `FERRY_S3_PART_SIZE=${JSON.stringify(raw.FERRY_S3_PART_SIZE)}: expected at least 5MiB (S3's minimum part size)`,
    );
  }
  if (values.FERRY_RETENTION > values.FERRY_MAX_RETENTION) {
    problems.push(
      `FERRY_RETENTION=${JSON.stringify(raw.FERRY_RETENTION ?? '7d')}: must not exceed FERRY_MAX_RETENTION (${raw.FERRY_MAX_RETENTION ?? '30d'})`,
    );
  }
  if (values.FERRY_WEBHOOK_URL && !values.FERRY_WEBHOOK_SECRET) {
    problems.push('FERRY_WEBHOOK_SECRET="": required when FERRY_WEBHOOK_URL is set (deliveries are signed)');
  }
  const apiKeys = readApiKeys(values.FERRY_API_KEYS, values.FERRY_API_KEYS_FILE, cwd, problems);
  const tenants = readTenantOverrides(values.FERRY_TENANTS, problems);
  const loopback = isLoopbackHost(values.HOST);
  const allowAnonymous =
    values.FERRY_ALLOW_ANONYMOUS === undefined
      ? apiKeys.length === 0 && loopback
      : values.FERRY_ALLOW_ANONYMOUS === 'true';
  if (!loopback && apiKeys.length === 0 && values.FERRY_ALLOW_ANONYMOUS !== 'true') {
    problems.push(
      `HOST=${JSON.stringify(values.HOST)}: listening beyond loopback needs API keys (FERRY_API_KEYS or FERRY_API_KEYS_FILE), or FERRY_ALLOW_ANONYMOUS=true to accept anyone as tenant default`,
    );
  }
  if (values.FERRY_REDIS_URL) {
    for (const key of ['FERRY_TOKEN_SECRET', 'FERRY_SIGNING_SECRET'] as const) {
      if (!values[key]) problems.push(`${key}="": required with FERRY_REDIS_URL (every replica must share it)`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const s3: S3Config | undefined =
    values.FERRY_STORAGE === 's3'
      ? Object.freeze({
          bucket: values.FERRY_S3_BUCKET!,
          prefix:
            values.FERRY_S3_PREFIX === '' || values.FERRY_S3_PREFIX.endsWith('/')
              ? values.FERRY_S3_PREFIX
              : `${values.FERRY_S3_PREFIX}/`,
          endpoint: values.FERRY_S3_ENDPOINT,
          region: values.FERRY_S3_REGION,
          forcePathStyle: values.FERRY_S3_FORCE_PATH_STYLE === 'true',
          partSize: values.FERRY_S3_PART_SIZE,
          concurrency: values.FERRY_S3_CONCURRENCY,
          tempDir: path.resolve(cwd, values.FERRY_S3_TEMP_DIR ?? path.join(os.tmpdir(), 'ferry-s3')),
          memoryBuffer: values.FERRY_S3_MEMORY_BUFFER,
          checksums: values.FERRY_S3_CHECKSUMS === 'true',
        })
      : undefined;
  return Object.freeze({
    port: values.PORT,
    host: values.HOST,
    publicUrl: values.FERRY_PUBLIC_URL,
    dataDir: path.resolve(cwd, values.FERRY_DATA_DIR),
    storage: values.FERRY_STORAGE,
    s3,
    redisUrl: values.FERRY_REDIS_URL,
    redisPrefix: values.FERRY_REDIS_PREFIX,
    maxSize: values.FERRY_MAX_SIZE,
    incompleteTtlMs: values.FERRY_INCOMPLETE_TTL,
    retentionMs: values.FERRY_RETENTION,
    maxRetentionMs: values.FERRY_MAX_RETENTION,
    sweepIntervalMs: values.FERRY_SWEEP_INTERVAL,
    allowedTypes: Object.freeze(values.FERRY_ALLOWED_TYPES),
    webhook: values.FERRY_WEBHOOK_URL
      ? Object.freeze({
          url: values.FERRY_WEBHOOK_URL,
          secret: values.FERRY_WEBHOOK_SECRET!,
          retryDelayMs: values.FERRY_WEBHOOK_RETRY_DELAY,
        })
      : undefined,
    processingConcurrency: values.FERRY_PROCESSING_CONCURRENCY,
    auth: Object.freeze({
      apiKeys,
      allowAnonymous,
      // Embedded mode may generate them: tokens and signed URLs then last as long as the process.
      tokenSecret: values.FERRY_TOKEN_SECRET ?? randomBytes(32).toString('base64url'),
      signingSecret: values.FERRY_SIGNING_SECRET ?? randomBytes(32).toString('base64url'),
    }),
    corsOrigins: Object.freeze(values.FERRY_CORS_ORIGINS),
    maxConcurrentUploads: values.FERRY_MAX_CONCURRENT_UPLOADS,
    tenants,
    shutdownTimeoutMs: values.FERRY_SHUTDOWN_TIMEOUT,
    logLevel: values.FERRY_LOG_LEVEL,
  });
}

function readConfigFile(env: NodeJS.ProcessEnv, cwd: string): Partial<Record<keyof ConfigInput | string, string>> {
  const explicit = env.FERRY_CONFIG_FILE;
  const file = path.resolve(cwd, explicit ?? DEFAULT_CONFIG_FILE);
  if (!explicit && !existsSync(file)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'not valid JSON';
    throw new ConfigError([`FERRY_CONFIG_FILE=${JSON.stringify(file)}: ${reason}`]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError([`FERRY_CONFIG_FILE=${JSON.stringify(file)}: expected a JSON object of KEY: "value" pairs`]);
  }
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    // Numbers and booleans are accepted for convenience and read like their environment spelling.
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      values[key] = String(value);
    // FERRY_TENANTS reads best as an object in a file; the environment carries the same as JSON text.
    else if (key === 'FERRY_TENANTS' && typeof value === 'object' && value !== null)
      values[key] = JSON.stringify(value);
  }
  return values;
}

/** `127.0.0.1`, `::1`, `localhost` and the rest of 127.0.0.0/8: reachable from this machine only. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}
