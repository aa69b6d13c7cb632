import { readFileSync } from 'node:fs';
import path from 'node:path';
import { hashApiKey, type ApiKeyEntry } from '../core/auth/api-keys.js';
import { parseDuration } from '../core/durations.js';
import { TENANT_NAME, type TenantPolicy } from '../core/tenancy.js';
import { parseSize } from './units.js';

/**
 * `FERRY_API_KEYS`: `tenant:key` pairs separated by commas (keys of at least 16 characters).
 * `FERRY_API_KEYS_FILE`: one `tenant:sha256:<64 hex digits>` per line (`#` starts a comment), the
 * sha256 of each key, so the file holds no usable secret (`ferry hash-key <key>` prints a line).
 * Problems are appended to `problems`, one line each.
 */
export function readApiKeys(
  inline: string | undefined,
  file: string | undefined,
  cwd: string,
  problems: string[],
): ApiKeyEntry[] {
  const entries: ApiKeyEntry[] = [];
  if (inline) {
    for (const pair of inline
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean)) {
      const colon = pair.indexOf(':');
      const tenant = pair.slice(0, colon);
      const key = pair.slice(colon + 1);
      if (colon < 1 || !TENANT_NAME.test(tenant) || key.length < 16 || !/^[\x21-\x7e]+$/.test(key)) {
        // The value is a secret: never echo it.
        problems.push(
          'FERRY_API_KEYS=(hidden): expected tenant:key pairs separated by commas, tenant names of lowercase letters, digits, _ or -, keys of at least 16 printable characters without spaces',
        );
        return entries;
      }
      entries.push({ tenant, sha256: hashApiKey(key) });
    }
  }
  if (file) {
    const resolved = path.resolve(cwd, file);
    let text: string;
    try {
      text = readFileSync(resolved, 'utf8');
    } catch {
      problems.push(`FERRY_API_KEYS_FILE=${JSON.stringify(resolved)}: cannot be read`);
      return entries;
    }
    text.split('\n').forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const match = /^([a-z0-9][a-z0-9_-]{0,62}):sha256:([0-9a-f]{64})$/.exec(line);
      if (!match) {
        problems.push(
          `FERRY_API_KEYS_FILE=${JSON.stringify(resolved)}: line ${index + 1} is not tenant:sha256:<64 lowercase hex digits>`,
        );
        return;
      }
      entries.push({ tenant: match[1]!, sha256: Buffer.from(match[2]!, 'hex') });
    });
  }
  const seen = new Set<string>();
  for (const entry of entries) {
    const hex = entry.sha256.toString('hex');
    if (seen.has(hex)) {
      problems.push(
        'FERRY_API_KEYS / FERRY_API_KEYS_FILE: the same key is configured twice; a key belongs to one tenant',
      );
      break;
    }
    seen.add(hex);
  }
  return entries;
}

/**
 * `FERRY_TENANTS`: a JSON object of per-tenant settings overriding the global ones, e.g.
 * `{"acme": {"max_size": "1GiB", "retention": "3d", "max_retention": "10d",
 * "allowed_types": "image/*,application/pdf", "max_concurrent_uploads": 10}}`.
 */
export function readTenantOverrides(
  text: string | undefined,
  problems: string[],
): Record<string, Partial<TenantPolicy>> {
  if (!text) return {};
  const fail = (why: string) => {
    problems.push(`FERRY_TENANTS=${JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text)}: ${why}`);
    return {};
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail('expected a JSON object such as {"acme": {"max_size": "1GiB"}}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('expected a JSON object');
  const overrides: Record<string, Partial<TenantPolicy>> = Object.create(null) as Record<string, Partial<TenantPolicy>>;
  for (const [tenant, settings] of Object.entries(parsed)) {
    if (!TENANT_NAME.test(tenant))
      return fail(`tenant name ${JSON.stringify(tenant)} is not lowercase letters, digits, _ or -`);
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      return fail(`settings of ${tenant} must be an object`);
    }
    const policy: { -readonly [K in keyof TenantPolicy]?: TenantPolicy[K] } = {};
    for (const [name, value] of Object.entries(settings as Record<string, unknown>)) {
      const textValue = typeof value === 'number' ? String(value) : typeof value === 'string' ? value : undefined;
      const bad = () => fail(`${tenant}.${name} has an invalid value`);
      if (textValue === undefined) return bad();
      if (name === 'max_size') {
        const size = parseSize(textValue);
        if (!size) return bad();
        policy.maxSize = size;
      } else if (name === 'retention' || name === 'max_retention') {
        const ms = parseDuration(textValue);
        if (!ms) return bad();
        if (name === 'retention') policy.retentionMs = ms;
        else policy.maxRetentionMs = ms;
      } else if (name === 'allowed_types') {
        const types = textValue
          .split(',')
          .map((type) => type.trim().toLowerCase())
          .filter(Boolean);
        if (
          types.length === 0 ||
          !types.every((type) => /^(\*|[a-z0-9!#$&^_.+-]+\/(\*|[a-z0-9!#$&^_.+-]+))$/.test(type))
        ) {
          return bad();
        }
        policy.allowedTypes = types;
      } else if (name === 'max_concurrent_uploads') {
        if (!/^\d+$/.test(textValue) || Number(textValue) < 1) return bad();
        policy.maxConcurrentUploads = Number(textValue);
      } else {
        return fail(
          `${tenant}.${name} is not a tenant setting (max_size, retention, max_retention, allowed_types, max_concurrent_uploads)`,
        );
      }
    }
    overrides[tenant] = policy;
  }
  return overrides;
}
