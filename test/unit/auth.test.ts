/**
 * The auth building blocks without HTTP: the API keyring, upload tokens (jose, fixed clock), signed
 * download URLs, media type patterns, tenant policies and what a token narrows, and the problems the
 * auth configuration readers report.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readApiKeys, readTenantOverrides } from '../../src/config/auth-config.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { ApiKeyring, hashApiKey } from '../../src/core/auth/api-keys.js';
import { DOWNLOAD_URL_LIFETIME_S, UrlSigner } from '../../src/core/auth/signed-urls.js';
import { uploadPolicy } from '../../src/core/auth/upload-policy.js';
import { UploadTokens, looksLikeJwt, type TokenScope } from '../../src/core/auth/upload-tokens.js';
import type { Clock } from '../../src/core/ports.js';
import { TenantPolicies, narrowTypes, typeAllowed, type TenantPolicy } from '../../src/core/tenancy.js';

const SECRET = 'unit-test-token-secret-0123456789abcdef';
const T0 = new Date('2030-01-02T03:04:05.000Z');

/** A clock the test moves by hand. */
function manualClock(start: Date = T0): Clock & { set(date: Date): void; advance(ms: number): void } {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    set: (date) => (now = date.getTime()),
    advance: (ms) => (now += ms),
  };
}

const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('ApiKeyring', () => {
  const keyring = new ApiKeyring([
    { tenant: 'acme', sha256: hashApiKey('acme-first-key-0123456789') },
    { tenant: 'globex', sha256: hashApiKey('globex-only-key-0123456789') },
    { tenant: 'acme', sha256: hashApiKey('acme-second-key-0123456789') },
  ]);

  it('hashApiKey is the sha256 of the key (the example line in config/api-keys.example)', () => {
    expect(hashApiKey('change-me-to-a-long-random-key').toString('hex')).toBe(
      '41b73db93651c61d297806e4b8dd1066918e6384e55da2e5ce63aa2867d3d317',
    );
  });

  it('finds the tenant of each of several keys, two of them for the same tenant', () => {
    expect(keyring.size).toBe(3);
    expect(keyring.tenantOf('acme-first-key-0123456789')).toBe('acme');
    expect(keyring.tenantOf('acme-second-key-0123456789')).toBe('acme');
    expect(keyring.tenantOf('globex-only-key-0123456789')).toBe('globex');
  });

  it('a wrong key, a near miss, an empty key or a key with other case or whitespace has no tenant', () => {
    for (const key of [
      'nobody-key-0123456789',
      'acme-first-key-012345678',
      'acme-first-key-01234567890',
      'ACME-FIRST-KEY-0123456789',
      ' acme-first-key-0123456789',
      '',
    ]) {
      expect(keyring.tenantOf(key), key).toBeUndefined();
    }
  });

  it('an empty keyring knows no key', () => {
    expect(new ApiKeyring([]).tenantOf('acme-first-key-0123456789')).toBeUndefined();
  });
});

describe('UploadTokens', () => {
  const scope: TokenScope = {
    tenant: 'acme',
    maxSize: 1000,
    allowedTypes: ['image/*', 'application/pdf'],
    folder: 'inbox',
  };
  const key = new TextEncoder().encode(SECRET);

  /** A token with Ferry's claims, built by hand so each can be varied. */
  function handMade(
    clock: Clock,
    {
      issuer = 'ferry',
      audience = 'ferry-upload',
      subject = 'acme' as string | null,
      alg = 'HS256',
      secret = key,
      lifetime = 600 as number | null,
    } = {},
  ) {
    const now = Math.floor(clock.now().getTime() / 1000);
    let jwt = new SignJWT({ max_size: 1000 }).setProtectedHeader({ alg }).setIssuer(issuer).setAudience(audience);
    jwt = jwt.setIssuedAt(now);
    if (subject !== null) jwt = jwt.setSubject(subject);
    if (lifetime !== null) jwt = jwt.setExpirationTime(now + lifetime);
    return jwt.sign(secret);
  }

  it('issue and verify round-trip the scope; expires_at is the clock plus the lifetime', async () => {
    const clock = manualClock();
    const tokens = new UploadTokens(SECRET, clock);
    const { token, expiresAt } = await tokens.issue(scope, 600);
    expect(looksLikeJwt(token)).toBe(true);
    expect(expiresAt.getTime()).toBe(T0.getTime() + 600_000);
    expect(await tokens.verify(token)).toEqual(scope);
  });

  it('a scope with only a tenant comes back with only a tenant', async () => {
    const tokens = new UploadTokens(SECRET, manualClock());
    const { token } = await tokens.issue({ tenant: 'globex' }, 60);
    expect(await tokens.verify(token)).toEqual({ tenant: 'globex' });
  });

  it('expires when the clock reaches exp: valid a second before, refused at exp and after', async () => {
    const clock = manualClock();
    const tokens = new UploadTokens(SECRET, clock);
    const { token } = await tokens.issue(scope, 600);
    clock.advance(599_000);
    expect(await tokens.verify(token)).toEqual(scope);
    clock.advance(1000);
    expect(await tokens.verify(token)).toBeUndefined();
    clock.advance(3_600_000);
    expect(await tokens.verify(token)).toBeUndefined();
  });

  it('another secret does not verify it (a token from another deployment)', async () => {
    const clock = manualClock();
    const { token } = await new UploadTokens(SECRET, clock).issue(scope, 600);
    expect(await new UploadTokens(`${SECRET}-other`, clock).verify(token)).toBeUndefined();
  });

  it('a hand-made token with the right claims verifies (control for the refusals below)', async () => {
    const clock = manualClock();
    const tokens = new UploadTokens(SECRET, clock);
    expect(await tokens.verify(await handMade(clock))).toEqual({ tenant: 'acme', maxSize: 1000 });
  });

  it('refuses a wrong audience, a wrong issuer, no subject, no expiry, another HMAC algorithm and another secret', async () => {
    const clock = manualClock();
    const tokens = new UploadTokens(SECRET, clock);
    const variants = {
      audience: await handMade(clock, { audience: 'ferry-admin' }),
      issuer: await handMade(clock, { issuer: 'not-ferry' }),
      subject: await handMade(clock, { subject: null }),
      expiry: await handMade(clock, { lifetime: null }),
      hs512: await handMade(clock, { alg: 'HS512' }),
      secret: await handMade(clock, { secret: new TextEncoder().encode('another-secret-0123456789abcdef') }),
    };
    for (const [what, token] of Object.entries(variants)) expect(await tokens.verify(token), what).toBeUndefined();
  });

  it('refuses alg none (an unsecured JWT), with or without a signature part', async () => {
    const clock = manualClock();
    const tokens = new UploadTokens(SECRET, clock);
    const now = Math.floor(clock.now().getTime() / 1000);
    const unsecured = new UnsecuredJWT({ max_size: 10 ** 12 })
      .setIssuer('ferry')
      .setAudience('ferry-upload')
      .setSubject('acme')
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .encode();
    expect(unsecured.endsWith('.')).toBe(true);
    expect(await tokens.verify(unsecured)).toBeUndefined();
    expect(await tokens.verify(`${unsecured}AAAA`)).toBeUndefined();
  });

  it('refuses a tampered payload (another tenant, a larger max_size) and garbage, without throwing', async () => {
    const clock = manualClock();
    const tokens = new UploadTokens(SECRET, clock);
    const { token } = await tokens.issue(scope, 600);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    for (const changed of [
      { ...claims, sub: 'globex' },
      { ...claims, max_size: 10 ** 12 },
    ]) {
      const forged = `${header}.${Buffer.from(JSON.stringify(changed)).toString('base64url')}.${signature}`;
      expect(await tokens.verify(forged)).toBeUndefined();
    }
    for (const garbage of ['a.b.c', 'not-a-token', '', `${header}.${payload}`, `${header}..${signature}`]) {
      expect(await tokens.verify(garbage), garbage).toBeUndefined();
    }
  });

  it('looksLikeJwt: three base64url segments, nothing else', () => {
    expect(looksLikeJwt('aaa.bbb.ccc')).toBe(true);
    expect(looksLikeJwt('acme-key-0123456789abcdef')).toBe(false);
    expect(looksLikeJwt('a.b')).toBe(false);
    expect(looksLikeJwt('a.b.')).toBe(false);
    expect(looksLikeJwt('a.b.c.d')).toBe(false);
    expect(looksLikeJwt('a b.c.d')).toBe(false);
  });
});

describe('UrlSigner', () => {
  const SIGNING = 'unit-test-signing-secret-0123456789abcdef';

  it('signs for an hour from now: expires in whole seconds, a 64-hex HMAC-SHA256 that verifies', () => {
    const clock = manualClock(new Date(T0.getTime() + 789));
    const signer = new UrlSigner(SIGNING, clock);
    const { expires, signature } = signer.sign('acme', 'file-1');
    expect(expires).toBe(Math.floor(T0.getTime() / 1000) + DOWNLOAD_URL_LIFETIME_S);
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(signer.verify('acme', 'file-1', String(expires), signature)).toBe(true);
  });

  it('signs from a given time (a webhook signs from its event)', () => {
    const signer = new UrlSigner(SIGNING, manualClock());
    const from = new Date('2030-06-01T00:00:00Z');
    expect(signer.sign('acme', 'file-1', from).expires).toBe(from.getTime() / 1000 + 3600);
  });

  it('is valid until its expiry second and refused after', () => {
    const clock = manualClock();
    const signer = new UrlSigner(SIGNING, clock);
    const { expires, signature } = signer.sign('acme', 'file-1');
    clock.set(new Date(expires * 1000));
    expect(signer.verify('acme', 'file-1', String(expires), signature)).toBe(true);
    clock.advance(1);
    expect(signer.verify('acme', 'file-1', String(expires), signature)).toBe(false);
  });

  it('refuses anything tampered: tenant, file id, expires, a hex digit, case, length, format; and another secret', () => {
    const clock = manualClock();
    const signer = new UrlSigner(SIGNING, clock);
    const { expires, signature } = signer.sign('acme', 'file-1');
    const e = String(expires);
    const flipped = signature.slice(0, -1) + (signature.endsWith('0') ? '1' : '0');
    const refused: [string, string, string, string][] = [
      ['globex', 'file-1', e, signature],
      ['acme', 'file-2', e, signature],
      ['acme', 'file-1', String(expires + 1), signature],
      ['acme', 'file-1', String(expires - 1), signature],
      ['acme', 'file-1', e, flipped],
      ['acme', 'file-1', e, signature.toUpperCase()],
      ['acme', 'file-1', e, signature.slice(0, -2)],
      ['acme', 'file-1', e, `${signature}00`],
      ['acme', 'file-1', `${e}.0`, signature],
      ['acme', 'file-1', `-${e}`, signature],
      ['acme', 'file-1', '1234567890123', signature],
      ['acme', 'file-1', '', signature],
      ['acme', 'file-1', e, ''],
    ];
    for (const args of refused) expect(signer.verify(...args), JSON.stringify(args)).toBe(false);
    expect(new UrlSigner(`${SIGNING}-other`, clock).verify('acme', 'file-1', e, signature)).toBe(false);
  });
});

describe('media type patterns', () => {
  it('typeAllowed: exact types, type/* wildcards, * and */*', () => {
    expect(typeAllowed('image/png', ['image/*'])).toBe(true);
    expect(typeAllowed('image/png', ['image/png'])).toBe(true);
    expect(typeAllowed('image/png', ['image/jpeg'])).toBe(false);
    expect(typeAllowed('application/pdf', ['image/*'])).toBe(false);
    expect(typeAllowed('application/pdf', ['image/*', 'application/pdf'])).toBe(true);
    expect(typeAllowed('video/mp4', ['*'])).toBe(true);
    expect(typeAllowed('video/mp4', ['*/*'])).toBe(true);
    expect(typeAllowed('imagex/png', ['image/*'])).toBe(false);
    expect(typeAllowed('image/png', [])).toBe(false);
  });

  it('narrowTypes: without a token list the tenant list; under * the token list; otherwise only what the tenant allows', () => {
    expect(narrowTypes(['image/*'], undefined)).toEqual(['image/*']);
    expect(narrowTypes(['*'], ['application/pdf'])).toEqual(['application/pdf']);
    expect(narrowTypes(['*/*'], ['image/*'])).toEqual(['image/*']);
    expect(
      narrowTypes(
        ['image/*', 'application/pdf'],
        ['image/png', 'application/pdf', 'text/plain', 'image/*', 'video/*', 'application/*'],
      ),
    ).toEqual(['image/png', 'application/pdf', 'image/*']);
  });

  it('narrowTypes never widens: a wildcard, * or */* under a narrower tenant list is dropped', () => {
    expect(narrowTypes(['image/png'], ['image/*'])).toEqual([]);
    expect(narrowTypes(['image/*'], ['*'])).toEqual([]);
    expect(narrowTypes(['image/*'], ['*/*'])).toEqual([]);
    expect(narrowTypes(['application/pdf'], ['application/*', 'application/pdf'])).toEqual(['application/pdf']);
  });
});

describe('tenant policies and upload policy', () => {
  const defaults: TenantPolicy = {
    maxSize: 5000,
    retentionMs: 1000,
    maxRetentionMs: 2000,
    allowedTypes: ['*'],
    maxConcurrentUploads: 100,
  };
  const policies = new TenantPolicies(defaults, {
    acme: { maxSize: 1000, allowedTypes: ['image/*', 'application/pdf'] },
  });

  it('per-tenant settings override field by field; other tenants (and __proto__) get the defaults', () => {
    expect(policies.for('acme')).toEqual({ ...defaults, maxSize: 1000, allowedTypes: ['image/*', 'application/pdf'] });
    expect(policies.for('globex')).toEqual(defaults);
    expect(policies.for('__proto__')).toEqual(defaults);
    expect(policies.for('constructor')).toEqual(defaults);
  });

  it('without a token the upload policy is the tenant policy, with no folder', () => {
    expect(uploadPolicy('acme', policies.for('acme'), undefined)).toEqual({
      tenant: 'acme',
      maxSize: 1000,
      allowedTypes: ['image/*', 'application/pdf'],
      folder: undefined,
      maxConcurrentUploads: 100,
    });
  });

  it('a token narrows size and types and sets the folder; it never widens either', () => {
    const narrowed = uploadPolicy('acme', policies.for('acme'), {
      tenant: 'acme',
      maxSize: 300,
      allowedTypes: ['image/png', 'video/mp4'],
      folder: 'inbox',
    });
    expect(narrowed).toEqual({
      tenant: 'acme',
      maxSize: 300,
      allowedTypes: ['image/png'],
      folder: 'inbox',
      maxConcurrentUploads: 100,
    });
    const wider = uploadPolicy('acme', policies.for('acme'), { tenant: 'acme', maxSize: 10 ** 9, allowedTypes: ['*'] });
    expect([wider.maxSize, wider.allowedTypes]).toEqual([1000, []]);
  });
});

describe('readApiKeys', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-auth-unit-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads tenant:key pairs (keys may contain colons) into sha256 entries', () => {
    const problems: string[] = [];
    const entries = readApiKeys(' acme:acme-key-0123456789 , globex:glo:bex:key-0123456789,', undefined, dir, problems);
    expect(problems).toEqual([]);
    expect(entries.map((e) => [e.tenant, e.sha256.toString('hex')])).toEqual([
      ['acme', sha256Hex('acme-key-0123456789')],
      ['globex', sha256Hex('glo:bex:key-0123456789')],
    ]);
  });

  it('a short key, a bad tenant name or a pair without a colon is one problem line that does not echo the value', () => {
    for (const inline of [
      'acme:short-secret',
      'Acme:acme-key-0123456789',
      'acme-key-0123456789-without-colon',
      ':acme-key-0123456789',
    ]) {
      const problems: string[] = [];
      readApiKeys(inline, undefined, dir, problems);
      expect(problems, inline).toHaveLength(1);
      expect(problems[0]).toMatch(/^FERRY_API_KEYS=\(hidden\): /);
      expect(problems[0]).not.toContain('secret');
      expect(problems[0]).not.toContain('acme-key');
    }
  });

  it('reads a keys file with comments and blank lines; every malformed line is a problem naming its number', async () => {
    const file = path.join(dir, 'keys');
    const acmeHash = sha256Hex('acme-key-0123456789');
    await writeFile(
      file,
      [
        '# comment',
        `acme:sha256:${acmeHash}`,
        '',
        `globex:sha256:${acmeHash.toUpperCase()}`,
        'globex:plain-key-0123456789',
        `  globex:sha256:${sha256Hex('globex-key-0123456789')}  `,
        `acme:sha256:${acmeHash.slice(1)}`,
      ].join('\n'),
    );
    const problems: string[] = [];
    const entries = readApiKeys(undefined, 'keys', dir, problems);
    expect(entries.map((e) => e.tenant)).toEqual(['acme', 'globex']);
    expect(new ApiKeyring(entries).tenantOf('globex-key-0123456789')).toBe('globex');
    expect(problems).toEqual(
      [4, 5, 7].map(
        (line) =>
          `FERRY_API_KEYS_FILE=${JSON.stringify(file)}: line ${line} is not tenant:sha256:<64 lowercase hex digits>`,
      ),
    );
    expect(problems.join('\n')).not.toContain('plain-key');
  });

  it('an unreadable keys file is a problem; inline keys and a file combine', async () => {
    const problems: string[] = [];
    readApiKeys(undefined, 'missing-file', dir, problems);
    expect(problems).toEqual([`FERRY_API_KEYS_FILE=${JSON.stringify(path.join(dir, 'missing-file'))}: cannot be read`]);
    const file = path.join(dir, 'one-key');
    await writeFile(file, `globex:sha256:${sha256Hex('globex-key-0123456789')}\n`);
    const both: string[] = [];
    const entries = readApiKeys('acme:acme-key-0123456789', file, dir, both);
    expect(both).toEqual([]);
    expect(entries.map((e) => e.tenant)).toEqual(['acme', 'globex']);
  });
});

describe('readTenantOverrides', () => {
  const read = (text: string | undefined) => {
    const problems: string[] = [];
    const overrides = readTenantOverrides(text, problems);
    return { overrides, problems };
  };

  it('reads sizes, durations, type lists and counts per tenant', () => {
    const { overrides, problems } = read(
      JSON.stringify({
        acme: {
          max_size: '1GiB',
          retention: '3d',
          max_retention: '10d',
          allowed_types: 'Image/*, application/pdf',
          max_concurrent_uploads: 10,
        },
        globex: { max_size: 1000 },
      }),
    );
    expect(problems).toEqual([]);
    expect({ ...overrides }).toEqual({
      acme: {
        maxSize: 1024 ** 3,
        retentionMs: 3 * 86_400_000,
        maxRetentionMs: 10 * 86_400_000,
        allowedTypes: ['image/*', 'application/pdf'],
        maxConcurrentUploads: 10,
      },
      globex: { maxSize: 1000 },
    });
    expect(read(undefined)).toEqual({ overrides: {}, problems: [] });
  });

  it('reports invalid JSON, a non-object, a bad tenant name, non-object settings, unknown settings and bad values, one line each', () => {
    const cases: [string, RegExp][] = [
      ['{"acme": ', /expected a JSON object such as/],
      ['[1, 2]', /: expected a JSON object$/],
      ['"acme"', /: expected a JSON object$/],
      ['{"Acme": {}}', /tenant name "Acme" is not lowercase letters/],
      ['{"acme": 5}', /settings of acme must be an object/],
      ['{"acme": ["max_size"]}', /settings of acme must be an object/],
      ['{"acme": {"colour": "blue"}}', /acme\.colour is not a tenant setting/],
      ['{"acme": {"max_size": "huge"}}', /acme\.max_size has an invalid value/],
      ['{"acme": {"max_size": true}}', /acme\.max_size has an invalid value/],
      ['{"acme": {"retention": "forever"}}', /acme\.retention has an invalid value/],
      ['{"acme": {"allowed_types": "not a type"}}', /acme\.allowed_types has an invalid value/],
      ['{"acme": {"allowed_types": ""}}', /acme\.allowed_types has an invalid value/],
      ['{"acme": {"max_concurrent_uploads": 0}}', /acme\.max_concurrent_uploads has an invalid value/],
      ['{"acme": {"max_concurrent_uploads": 1.5}}', /acme\.max_concurrent_uploads has an invalid value/],
    ];
    for (const [text, message] of cases) {
      const { overrides, problems } = read(text);
      expect(problems, text).toHaveLength(1);
      expect(problems[0], text).toMatch(/^FERRY_TENANTS=/);
      expect(problems[0], text).toMatch(message);
      expect(overrides, text).toEqual({});
    }
  });

  it('a __proto__ tenant is refused and pollutes nothing', () => {
    const { overrides, problems } = read('{"__proto__": {"max_size": 1}}');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('tenant name "__proto__"');
    expect(overrides).toEqual({});
    expect(({} as Record<string, unknown>).max_size).toBeUndefined();
    expect(({} as Record<string, unknown>).maxSize).toBeUndefined();
  });

  it('quotes a long value shortened to 80 characters in the problem', () => {
    const text = JSON.stringify({ acme: { colour: 'x'.repeat(200) } });
    const { problems } = read(text);
    expect(problems[0]).toContain(JSON.stringify(`${text.slice(0, 77)}...`));
    expect(problems[0]).not.toContain('x'.repeat(100));
  });
});

describe('loadConfig: auth settings', () => {
  const SECRETS = { FERRY_TOKEN_SECRET: 'x'.repeat(32), FERRY_SIGNING_SECRET: 'y'.repeat(32) };
  const problemsOf = (env: Record<string, string>): string[] => {
    try {
      loadConfig(env, os.tmpdir());
    } catch (error) {
      if (error instanceof ConfigError) return error.lines;
      throw error;
    }
    return [];
  };

  it('anonymous by default only without keys on a loopback HOST; FERRY_ALLOW_ANONYMOUS decides otherwise', () => {
    const keys = { FERRY_API_KEYS: 'acme:acme-key-0123456789' };
    expect(loadConfig({}, os.tmpdir()).auth.allowAnonymous).toBe(true);
    expect(loadConfig({ HOST: '::1' }, os.tmpdir()).auth.allowAnonymous).toBe(true);
    expect(loadConfig(keys, os.tmpdir()).auth.allowAnonymous).toBe(false);
    expect(loadConfig({ ...keys, FERRY_ALLOW_ANONYMOUS: 'true' }, os.tmpdir()).auth.allowAnonymous).toBe(true);
    expect(loadConfig({ FERRY_ALLOW_ANONYMOUS: 'false' }, os.tmpdir()).auth.allowAnonymous).toBe(false);
    expect(loadConfig({ ...keys, HOST: '0.0.0.0' }, os.tmpdir()).auth.allowAnonymous).toBe(false);
    expect(loadConfig({ HOST: '0.0.0.0', FERRY_ALLOW_ANONYMOUS: 'true' }, os.tmpdir()).auth.allowAnonymous).toBe(true);
  });

  it('refuses a non-loopback HOST without keys (even with FERRY_ALLOW_ANONYMOUS=false), Redis without both secrets, and short secrets', () => {
    for (const host of ['0.0.0.0', '10.0.0.5', '::']) {
      expect(problemsOf({ HOST: host }), host).toEqual([
        expect.stringMatching(
          new RegExp(`^HOST=${JSON.stringify(host).replace(/\./g, '\\.')}: listening beyond loopback`),
        ),
      ]);
    }
    expect(problemsOf({ HOST: '0.0.0.0', FERRY_ALLOW_ANONYMOUS: 'false' })).toHaveLength(1);
    expect(problemsOf({ FERRY_REDIS_URL: 'redis://127.0.0.1:6379' })).toEqual([
      'FERRY_TOKEN_SECRET="": required with FERRY_REDIS_URL (every replica must share it)',
      'FERRY_SIGNING_SECRET="": required with FERRY_REDIS_URL (every replica must share it)',
    ]);
    expect(problemsOf({ FERRY_REDIS_URL: 'redis://127.0.0.1:6379', ...SECRETS })).toEqual([]);
    expect(problemsOf({ FERRY_TOKEN_SECRET: 'short' })).toEqual([
      expect.stringMatching(/^FERRY_TOKEN_SECRET="short": expected a secret of at least 32 characters/),
    ]);
  });

  it('embedded mode without secrets generates different ones per process; given secrets are used', () => {
    const a = loadConfig({}, os.tmpdir()).auth;
    const b = loadConfig({}, os.tmpdir()).auth;
    expect(a.tokenSecret.length).toBeGreaterThanOrEqual(32);
    expect(a.tokenSecret).not.toBe(b.tokenSecret);
    expect(a.tokenSecret).not.toBe(a.signingSecret);
    const given = loadConfig(SECRETS, os.tmpdir()).auth;
    expect([given.tokenSecret, given.signingSecret]).toEqual([
      SECRETS.FERRY_TOKEN_SECRET,
      SECRETS.FERRY_SIGNING_SECRET,
    ]);
  });
});
