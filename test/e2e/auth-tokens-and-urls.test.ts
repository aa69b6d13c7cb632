/**
 * Upload tokens, signed download URLs, per-tenant limits, concurrent uploads per tenant, CORS and
 * the start-up refusals of the auth configuration, end to end (README "Security"). In-process Ferry
 * for the HTTP behaviour; the built CLI (`npm run build` first) for start-up and `ferry hash-key`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UrlSigner } from '../../src/core/auth/signed-urls.js';
import {
  bearer,
  chunkedPatch,
  errorCodeOf,
  getBytes,
  getFileAs,
  holdPatch,
  issueToken,
  jsonOf,
  postToken,
  randomUploadId,
  runCli,
  send,
  tusPatchHeaders,
  waitForFileAs,
  type Headers,
} from '../helpers/auth-http.js';
import { cleanupFerries, startFerry } from '../helpers/ferry-process.js';
import { minimalPdf, minimalPng, sha256Hex, uploadBuffer, uploadMetadataHeader } from '../helpers/files-api.js';
import { startInProcessFerry, type InProcessFerry } from '../helpers/in-process-ferry.js';
import { sleep, until } from '../helpers/poll.js';
import { TEST_SECRETS } from '../helpers/secrets.js';
import type { RawResponse } from '../helpers/tus.js';

const ACME_KEY = 'acme-test-key-0123456789abcdef';
const GLOBEX_KEY = 'globex-test-key-0123456789abcdef';
const API_KEYS = `acme:${ACME_KEY},globex:${GLOBEX_KEY}`;
const acme = bearer(ACME_KEY);
const globex = bearer(GLOBEX_KEY);
const TUS = { 'Tus-Resumable': '1.0.0' };

/** POST /files/ as `headers`; `length` null means a deferred length. */
function tusPost(baseUrl: string, headers: Headers, length: number | null, metadata?: Record<string, string>) {
  return send('POST', `${baseUrl}/files/`, {
    ...TUS,
    ...headers,
    ...(length === null ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }),
    ...(metadata ? { 'Upload-Metadata': uploadMetadataHeader(metadata) } : {}),
  });
}

/** The upload id of a 201 creation answer (throws on anything else). */
function createdId(res: RawResponse): string {
  if (res.status !== 201 || !res.headers.location) throw new Error(`expected 201, got ${res.status} ${res.body}`);
  return new URL(res.headers.location, 'http://x').pathname.split('/').pop()!;
}

async function head(baseUrl: string, id: string, headers: Headers) {
  const res = await send('HEAD', `${baseUrl}/files/${id}`, { ...TUS, ...headers });
  return { status: res.status, offset: res.headers['upload-offset'], length: res.headers['upload-length'] };
}

/** A JWT with Ferry's claims for `tenant`, signed with `secret` (HS256). */
function forgeToken(
  secret: string,
  claims: Record<string, unknown>,
  { tenant = 'acme', lifetime = 600, issuer = 'ferry', audience = 'ferry-upload' } = {},
) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(tenant)
    .setIssuedAt(now)
    .setExpirationTime(now + lifetime)
    .sign(new TextEncoder().encode(secret));
}

/** The token with its payload replaced by `change(payload)`, header and signature kept. */
function tamper(token: string, change: (payload: Record<string, unknown>) => Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  return `${header}.${Buffer.from(JSON.stringify(change(decoded))).toString('base64url')}.${signature}`;
}

describe('upload tokens and signed download URLs', () => {
  let ferry: InProcessFerry;
  let url: string;

  beforeAll(async () => {
    ferry = await startInProcessFerry({ FERRY_API_KEYS: API_KEYS });
    url = ferry.url;
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('POST /v1/tokens with an API key: 201 {data: {token, expires_at}}, an HS256 JWT (iss ferry, aud ferry-upload, sub acme) carrying its limits', async () => {
    const before = Date.now();
    const res = await postToken(url, acme, {
      max_size: 5000,
      allowed_types: 'image/*, application/PDF',
      folder: 'inbox',
      expires_in: 600,
    });
    expect(res.status, res.body).toBe(201);
    const { data } = jsonOf<{ data: { token: string; expires_at: string } }>(res);
    expect(Object.keys(data).sort()).toEqual(['expires_at', 'token']);
    expect(decodeProtectedHeader(data.token)).toMatchObject({ alg: 'HS256' });
    const claims = decodeJwt(data.token);
    expect(claims).toMatchObject({
      iss: 'ferry',
      aud: 'ferry-upload',
      sub: 'acme',
      max_size: 5000,
      allowed_types: ['image/*', 'application/pdf'],
      folder: 'inbox',
    });
    const expiresAt = Date.parse(data.expires_at);
    expect(expiresAt).toBe(claims.exp! * 1000);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 600_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 600_000);
  });

  it("tus-js-client with headers {Authorization: 'Bearer <token>'} uploads a file that belongs to acme (acme's key sees it, globex's key gets 404)", async () => {
    const { token } = await issueToken(url, acme);
    const bytes = randomBytes(300 * 1024);
    const { id } = await uploadBuffer(
      url,
      bytes,
      { filename: 'by-token.bin', filetype: 'application/octet-stream' },
      { headers: bearer(token), chunkSize: 100 * 1024 },
    );
    const file = await waitForFileAs(url, id, acme, ['completed']);
    expect([file.name, file.size, file.checksums.sha256]).toEqual(['by-token.bin', bytes.length, sha256Hex(bytes)]);
    expect(sha256Hex((await getBytes(`${url}/v1/files/${id}/content`, acme)).body)).toBe(sha256Hex(bytes));
    const other = await send('GET', `${url}/v1/files/${id}`, globex);
    expect([other.status, errorCodeOf(other)]).toEqual([404, 'file_not_found']);
    expect((await head(url, id, globex)).status).toBe(404);
    expect((await head(url, id, bearer(token))).status).toBe(200);
  });

  it('token max_size at creation: Upload-Length above it → 413, exactly it → 201', async () => {
    const { token } = await issueToken(url, acme, { max_size: 1000 });
    const over = await tusPost(url, bearer(token), 1001);
    expect(over.status, over.body).toBe(413);
    expect(createdId(await tusPost(url, bearer(token), 1000))).toBeTruthy();
  });

  it('token max_size with a deferred length: declaring more than max_size on a PATCH → 413 and nothing stored; declaring max_size works', async () => {
    const { token } = await issueToken(url, acme, { max_size: 1000 });
    const auth = bearer(token);
    const id = createdId(await tusPost(url, auth, null));
    const declareMore = await send(
      'PATCH',
      `${url}/files/${id}`,
      { ...auth, ...tusPatchHeaders(0, 10, { 'Upload-Length': '1001' }) },
      Buffer.alloc(10),
    );
    expect(declareMore.status, declareMore.body).toBe(413);
    expect(await head(url, id, auth)).toEqual({ status: 200, offset: '0', length: undefined });
    const declareMax = await send(
      'PATCH',
      `${url}/files/${id}`,
      { ...auth, ...tusPatchHeaders(0, 1000, { 'Upload-Length': '1000' }) },
      randomBytes(1000),
    );
    expect([declareMax.status, declareMax.headers['upload-offset']]).toEqual([204, '1000']);
  });

  it('token max_size with a deferred length: a chunked body (no Content-Length) running past max_size → 413 and nothing beyond max_size is stored', async () => {
    const { token } = await issueToken(url, acme, { max_size: 1000 });
    const auth = bearer(token);
    const id = createdId(await tusPost(url, auth, null));
    const res = await chunkedPatch(
      `${url}/files/${id}`,
      { ...auth, ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      randomBytes(1500),
    );
    if (res instanceof Error) throw res;
    expect(res.status, res.body).toBe(413);
    const after = await head(url, id, auth);
    expect(after.status).toBe(200);
    expect(Number(after.offset)).toBeLessThanOrEqual(1000);
    // A body with a Content-Length larger than the room left is refused before a byte is stored.
    const room = 1000 - Number(after.offset);
    const tooLong = await send(
      'PATCH',
      `${url}/files/${id}`,
      { ...auth, ...tusPatchHeaders(Number(after.offset), room + 1) },
      Buffer.alloc(room + 1),
    );
    expect(tooLong.status, tooLong.body).toBe(413);
    expect((await head(url, id, auth)).offset).toBe(after.offset);
  });

  it('token allowed_types at creation: a declared type outside the list → 415, a listed one → 201', async () => {
    const { token } = await issueToken(url, acme, { allowed_types: ['application/pdf'] });
    const png = await tusPost(url, bearer(token), 100, { filename: 'a.png', filetype: 'image/png' });
    expect(png.status, png.body).toBe(415);
    const pdf = await tusPost(url, bearer(token), 100, { filename: 'a.pdf', filetype: 'application/pdf' });
    expect(pdf.status, pdf.body).toBe(201);
  });

  it('token allowed_types after processing: PNG bytes declared application/octet-stream under a token allowing only application/pdf → the file fails with type_not_allowed', async () => {
    const { token } = await issueToken(url, acme, { allowed_types: ['application/pdf'] });
    const png = minimalPng();
    const created = await tusPost(url, bearer(token), png.length, {
      filename: 'x.bin',
      filetype: 'application/octet-stream',
    });
    expect(created.status, created.body).toBe(201);
    const id = createdId(created);
    const patched = await send(
      'PATCH',
      `${url}/files/${id}`,
      { ...bearer(token), ...tusPatchHeaders(0, png.length) },
      png,
    );
    expect(patched.status).toBe(204);
    const file = await waitForFileAs(url, id, acme, ['failed', 'completed']);
    expect([file.status, file.error?.code]).toEqual(['failed', 'type_not_allowed']);
  });

  it('token allowed_types after processing: PNG bytes with no declared type under a token allowing only application/pdf → the file fails with type_not_allowed and is not served', async () => {
    const { token } = await issueToken(url, acme, { allowed_types: ['application/pdf'] });
    const png = minimalPng();
    const id = createdId(await tusPost(url, bearer(token), png.length, { filename: 'x' }));
    const patched = await send(
      'PATCH',
      `${url}/files/${id}`,
      { ...bearer(token), ...tusPatchHeaders(0, png.length) },
      png,
    );
    expect(patched.status).toBe(204);
    const file = await waitForFileAs(url, id, acme, ['failed', 'completed']);
    expect([file.status, file.error?.code, file.download_url]).toEqual(['failed', 'type_not_allowed', null]);
    const content = await send('GET', `${url}/v1/files/${id}/content`, acme);
    expect(content.status).not.toBe(200);
  });

  it("token folder: an upload without a folder goes into the token's folder, the same folder spelled differently is accepted, another folder → 403", async () => {
    const { token } = await issueToken(url, acme, { folder: 'inbox/acme' });
    const auth = bearer(token);
    const plain = createdId(await tusPost(url, auth, 10, { filename: 'a.txt' }));
    expect((await getFileAs(url, plain, acme)).folder).toBe('inbox/acme');
    const same = createdId(await tusPost(url, auth, 10, { filename: 'b.txt', folder: './inbox//acme/' }));
    expect((await getFileAs(url, same, acme)).folder).toBe('inbox/acme');
    const other = await tusPost(url, auth, 10, { filename: 'c.txt', folder: 'elsewhere' });
    expect(other.status, other.body).toBe(403);
    const escape = await tusPost(url, auth, 10, { filename: 'd.txt', folder: 'inbox/acme/../../globex' });
    expect(escape.status, escape.body).toBe(403);
    // Concatenation obeys it too.
    const partial = createdId(
      await send('POST', `${url}/files/`, { ...TUS, ...auth, 'Upload-Length': '3', 'Upload-Concat': 'partial' }),
    );
    await send('PATCH', `${url}/files/${partial}`, { ...auth, ...tusPatchHeaders(0, 3) }, Buffer.from('abc'));
    const final = await send('POST', `${url}/files/`, {
      ...TUS,
      ...auth,
      'Upload-Concat': `final;/files/${partial}`,
      'Upload-Metadata': uploadMetadataHeader({ folder: 'elsewhere' }),
    });
    expect(final.status, final.body).toBe(403);
    const joined = createdId(
      await send('POST', `${url}/files/`, { ...TUS, ...auth, 'Upload-Concat': `final;/files/${partial}` }),
    );
    expect((await getFileAs(url, joined, acme)).folder).toBe('inbox/acme');
  });

  it("a token request whose folder names nothing once sanitized ('../..', '/', ' . ') → 400, never a token free to upload into any folder", async () => {
    for (const folder of ['../..', '/', ' . ']) {
      const res = await postToken(url, acme, { folder });
      const claims = res.status === 201 ? decodeJwt(jsonOf<{ data: { token: string } }>(res).data.token) : undefined;
      expect([folder, res.status, errorCodeOf(res), claims?.folder], res.body).toEqual([
        folder,
        400,
        'invalid_request',
        undefined,
      ]);
    }
  });

  it('an expired token (expires_in 1, used 2 s later) → 401 unauthorized; it worked before', async () => {
    const { token } = await issueToken(url, acme, { expires_in: 1 });
    expect(createdId(await tusPost(url, bearer(token), 10))).toBeTruthy();
    await sleep(2100);
    const res = await tusPost(url, bearer(token), 10);
    expect([res.status, errorCodeOf(res), res.headers['www-authenticate']]).toEqual([
      401,
      'unauthorized',
      'Bearer realm="ferry"',
    ]);
  });

  it("a token signed with another secret → 401 (control: the same claims signed with Ferry's secret are accepted)", async () => {
    const genuine = await forgeToken(TEST_SECRETS.FERRY_TOKEN_SECRET!, { max_size: 1000 });
    expect(createdId(await tusPost(url, bearer(genuine), 10))).toBeTruthy();
    const forged = await forgeToken('another-secret-of-at-least-32-characters', { max_size: 1000 });
    const res = await tusPost(url, bearer(forged), 10);
    expect([res.status, errorCodeOf(res)]).toEqual([401, 'unauthorized']);
  });

  it('a tampered token (payload changed: sub, max_size, exp; header and signature kept), alg none, another audience or issuer → 401', async () => {
    const { token } = await issueToken(url, acme, { max_size: 1000 });
    expect(createdId(await tusPost(url, bearer(token), 10))).toBeTruthy();
    const tampered = [
      tamper(token, (payload) => ({ ...payload, sub: 'globex' })),
      tamper(token, (payload) => ({ ...payload, max_size: 10 ** 9 })),
      tamper(token, (payload) => ({ ...payload, exp: (payload.exp as number) + 3600 })),
      tamper(token, (payload) => {
        const { max_size: _dropped, ...rest } = payload;
        return rest;
      }),
    ];
    for (const bad of tampered) {
      const res = await tusPost(url, bearer(bad), 10);
      expect([res.status, errorCodeOf(res)]).toEqual([401, 'unauthorized']);
    }
    // alg none, and tokens with Ferry's secret for another audience or issuer, are refused too.
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${token.split('.')[1]}.`;
    expect((await tusPost(url, bearer(unsigned), 10)).status).toBe(401);
    const secret = TEST_SECRETS.FERRY_TOKEN_SECRET!;
    for (const options of [{ audience: 'ferry-admin' }, { issuer: 'someone-else' }]) {
      const res = await tusPost(url, bearer(await forgeToken(secret, {}, options)), 10);
      expect([JSON.stringify(options), res.status]).toEqual([JSON.stringify(options), 401]);
    }
  });

  it('a token on the file API and event routes → 403 token_not_allowed (JSON)', async () => {
    const { token } = await issueToken(url, acme);
    const id = randomUploadId();
    for (const [method, path] of [
      ['GET', '/v1/files'],
      ['GET', `/v1/files/${id}`],
      ['GET', `/v1/files/${id}/content`],
      ['DELETE', `/v1/files/${id}`],
      ['GET', `/v1/files/${id}/events`],
      ['GET', '/v1/events'],
    ] as const) {
      const res = await send(method, `${url}${path}`, bearer(token));
      expect([method, path, res.status, errorCodeOf(res)]).toEqual([method, path, 403, 'token_not_allowed']);
    }
  });

  it('a token cannot issue tokens: POST /v1/tokens with a token → 403 token_not_allowed, no token in the answer', async () => {
    const { token } = await issueToken(url, acme);
    const res = await postToken(url, bearer(token), {});
    expect([res.status, errorCodeOf(res)]).toEqual([403, 'token_not_allowed']);
    expect(res.body).not.toContain('"token"');
  });

  it('bad token requests (unknown key, wrong types, expires_in 0 or > 86400, max_size above the tenant maximum, invalid JSON, __proto__, a body over 16 KiB) → 400/413 JSON errors, never 5xx', async () => {
    const cases: [string, unknown, number][] = [
      ['unknown key', { colour: 'blue' }, 400],
      ['max_size as text', { max_size: '1000' }, 400],
      ['max_size fractional', { max_size: 1.5 }, 400],
      ['max_size zero', { max_size: 0 }, 400],
      ['max_size negative', { max_size: -1 }, 400],
      ['max_size above the tenant maximum (5 GiB)', { max_size: 6 * 1024 ** 3 }, 400],
      ['allowed_types a number', { allowed_types: 5 }, 400],
      ['allowed_types empty', { allowed_types: [] }, 400],
      ['allowed_types not media types', { allowed_types: ['not a type'] }, 400],
      ['allowed_types of objects', { allowed_types: [{}] }, 400],
      ['folder a number', { folder: 3 }, 400],
      ['folder empty', { folder: '' }, 400],
      ['expires_in as text', { expires_in: '60' }, 400],
      ['expires_in 0', { expires_in: 0 }, 400],
      ['expires_in 86401', { expires_in: 86_401 }, 400],
      ['expires_in fractional', { expires_in: 1.5 }, 400],
      ['invalid JSON', '{"max_size": ', 400],
      ['JSON null', 'null', 400],
      ['JSON array', '[]', 400],
      ['JSON string', '"token please"', 400],
      ['__proto__ key', '{"__proto__": {"max_size": 1}}', 400],
      ['constructor key', '{"constructor": {"prototype": {}}}', 400],
      ['body over 16 KiB', `{"folder": "${'a'.repeat(17 * 1024)}"}`, 413],
      ['whitespace over 16 KiB', `{}${' '.repeat(17 * 1024)}`, 413],
    ];
    for (const [what, body, status] of cases) {
      const res = await postToken(url, acme, body);
      expect([what, res.status], res.body).toEqual([what, status]);
      expect(res.headers['content-type'], what).toMatch(/^application\/json/);
      expect(jsonOf(res), what).toEqual({
        error: { code: expect.any(String), message: expect.any(String), status },
      });
    }
    // The boundaries themselves are fine.
    expect((await postToken(url, acme, { expires_in: 86_400 })).status).toBe(201);
    expect((await postToken(url, acme, { expires_in: 1, max_size: 5 * 1024 ** 3 })).status).toBe(201);
    // Ferry is still well.
    expect((await send('GET', `${url}/healthz`)).status).toBe(200);
  });

  describe('signed download URLs', () => {
    let fileId: string;
    let otherFileId: string;
    let downloadUrl: string;
    const bytes = randomBytes(20_000);

    beforeAll(async () => {
      ({ id: fileId } = await uploadBuffer(url, bytes, { filename: 'signed.bin' }, { headers: acme }));
      ({ id: otherFileId } = await uploadBuffer(url, randomBytes(100), { filename: 'other.bin' }, { headers: acme }));
      const file = await waitForFileAs(url, fileId, acme, ['completed']);
      await waitForFileAs(url, otherFileId, acme, ['completed']);
      downloadUrl = file.download_url!;
    });

    const parts = (signed: string) => {
      const parsed = new URL(signed);
      return { expires: parsed.searchParams.get('expires')!, signature: parsed.searchParams.get('signature')! };
    };
    const contentUrl = (id: string, expires: string, signature: string) =>
      `${url}/v1/files/${id}/content?expires=${expires}&signature=${signature}`;

    it("a completed file's download_url works without credentials", async () => {
      expect(downloadUrl).toMatch(new RegExp(`/v1/files/${fileId}/content\\?expires=\\d+&signature=[0-9a-f]{64}$`));
      const res = await getBytes(downloadUrl);
      expect(res.status).toBe(200);
      expect(sha256Hex(res.body)).toBe(sha256Hex(bytes));
    });

    it('changing the id, the expires or one hex digit of the signature → 404 file_not_found, all alike', async () => {
      const { expires, signature } = parts(downloadUrl);
      const flipped = signature.slice(0, -1) + (signature.endsWith('0') ? '1' : '0');
      const altered = [
        contentUrl(otherFileId, expires, signature),
        contentUrl(randomUploadId(), expires, signature),
        contentUrl(fileId, String(Number(expires) + 1), signature),
        contentUrl(fileId, String(Number(expires) - 1), signature),
        contentUrl(fileId, expires, flipped),
        contentUrl(fileId, expires, signature.toUpperCase()),
        contentUrl(fileId, expires, signature.slice(0, -1)),
        contentUrl(fileId, `${expires}0`, signature),
      ];
      const answers = await Promise.all(altered.map((altered) => send('GET', altered)));
      for (const res of answers) expect([res.status, errorCodeOf(res)], res.body).toEqual([404, 'file_not_found']);
      expect(new Set(answers.map((res) => res.body)).size).toBe(1);
    });

    it("a URL correctly signed for acme's file but with an expires in the past → 404 (control: the same signing with a future expires works); a signature for another tenant → 404", async () => {
      const secret = TEST_SECRETS.FERRY_SIGNING_SECRET!;
      const now = Date.now();
      const fresh = new UrlSigner(secret, { now: () => new Date(now) }).sign('acme', fileId);
      expect((await getBytes(contentUrl(fileId, String(fresh.expires), fresh.signature))).status).toBe(200);
      // Signed two hours ago: expired an hour ago.
      const past = new UrlSigner(secret, { now: () => new Date(now - 2 * 3_600_000) }).sign('acme', fileId);
      expect(past.expires * 1000).toBeLessThan(now);
      const expired = await send('GET', contentUrl(fileId, String(past.expires), past.signature));
      expect([expired.status, errorCodeOf(expired)]).toEqual([404, 'file_not_found']);
      const forGlobex = new UrlSigner(secret, { now: () => new Date(now) }).sign('globex', fileId);
      const wrongTenant = await send('GET', contentUrl(fileId, String(forGlobex.expires), forGlobex.signature));
      expect([wrongTenant.status, errorCodeOf(wrongTenant)]).toEqual([404, 'file_not_found']);
    });

    it('a signature opens the content route only: the same query on the file, its events, a DELETE of the content or the tus download is 401', async () => {
      const query = new URL(downloadUrl).search;
      for (const [method, path] of [
        ['GET', `/v1/files/${fileId}${query}`],
        ['GET', `/v1/files/${fileId}/events${query}`],
        ['DELETE', `/v1/files/${fileId}/content${query}`],
        ['GET', `/files/${fileId}${query}`],
      ] as const) {
        const res = await send(method, `${url}${path}`);
        expect([method, path, res.status]).toEqual([method, path, 401]);
      }
      expect((await getFileAs(url, fileId, acme)).status).toBe('completed');
    });
  });
});

describe('API keys that look like upload tokens', () => {
  it('an API key shaped like a JWT (acme.live.key-…, three dot-separated parts) is never silently unusable: Ferry refuses it at start, or it authenticates acme', async () => {
    const key = 'acme.live.key-0123456789abcdef';
    let ferry: InProcessFerry | undefined;
    try {
      ferry = await startInProcessFerry({ FERRY_API_KEYS: `acme:${key},globex:${GLOBEX_KEY}` });
    } catch (error) {
      // Refusing the key at start is an acceptable answer too.
      expect(String(error)).toContain('FERRY_API_KEYS');
      return;
    }
    try {
      const viaBearer = await send('GET', `${ferry.url}/v1/files`, bearer(key));
      const viaHeader = await send('GET', `${ferry.url}/v1/files`, { 'X-API-Key': key });
      expect([viaBearer.status, viaHeader.status], viaBearer.body).toEqual([200, 200]);
      expect((await issueToken(ferry.url, bearer(key))).token).toBeTruthy();
    } finally {
      await ferry.close();
    }
  });
});

describe('per-tenant settings (FERRY_TENANTS: acme max_size 1000, allowed_types image/*)', () => {
  let ferry: InProcessFerry;
  let url: string;

  beforeAll(async () => {
    ferry = await startInProcessFerry({
      FERRY_API_KEYS: API_KEYS,
      FERRY_TENANTS: JSON.stringify({ acme: { max_size: 1000, allowed_types: 'image/*' } }),
    });
    url = ferry.url;
  });
  afterAll(async () => {
    await ferry?.close();
  });

  it('acme: Upload-Length 1001 → 413 and 1000 → 201, while globex may create 5000', async () => {
    expect((await tusPost(url, acme, 1001)).status).toBe(413);
    expect(createdId(await tusPost(url, acme, 1000))).toBeTruthy();
    expect(createdId(await tusPost(url, globex, 5000))).toBeTruthy();
  });

  it("acme: a deferred length cannot grow past acme's 1000 → 413", async () => {
    const id = createdId(await tusPost(url, acme, null));
    const res = await send(
      'PATCH',
      `${url}/files/${id}`,
      { ...acme, ...tusPatchHeaders(0, 0, { 'Upload-Length': '1001' }) },
      Buffer.alloc(0),
    );
    expect(res.status, res.body).toBe(413);
  });

  it('acme: a declared application/pdf → 415 and image/png → 201, while globex may declare application/pdf', async () => {
    const pdf = await tusPost(url, acme, 100, { filename: 'a.pdf', filetype: 'application/pdf' });
    expect(pdf.status, pdf.body).toBe(415);
    expect(createdId(await tusPost(url, acme, 100, { filename: 'a.png', filetype: 'image/png' }))).toBeTruthy();
    expect(createdId(await tusPost(url, globex, 100, { filename: 'a.pdf', filetype: 'application/pdf' }))).toBeTruthy();
  });

  it("acme: PDF bytes with no declared type fail processing with type_not_allowed (the tenant's list is checked on the sniffed type)", async () => {
    const pdf = minimalPdf();
    const id = createdId(await tusPost(url, acme, pdf.length, { filename: 'doc' }));
    expect(
      (await send('PATCH', `${url}/files/${id}`, { ...acme, ...tusPatchHeaders(0, pdf.length) }, pdf)).status,
    ).toBe(204);
    const file = await waitForFileAs(url, id, acme, ['failed', 'completed']);
    expect([file.status, file.error?.code]).toEqual(['failed', 'type_not_allowed']);
  });

  it("a token cannot widen acme's limits: max_size 1001 → 400, allowed_types application/pdf → 400; image/png narrows", async () => {
    const bigger = await postToken(url, acme, { max_size: 1001 });
    expect([bigger.status, errorCodeOf(bigger)]).toEqual([400, 'invalid_request']);
    const pdf = await postToken(url, acme, { allowed_types: ['application/pdf'] });
    expect([pdf.status, errorCodeOf(pdf)]).toEqual([400, 'invalid_request']);
    const { token } = await issueToken(url, acme, { allowed_types: ['image/png', 'application/pdf'] });
    expect(decodeJwt(token).allowed_types).toEqual(['image/png']);
    expect(decodeJwt(token).max_size).toBe(1000);
    expect((await tusPost(url, bearer(token), 100, { filetype: 'image/jpeg' })).status).toBe(415);
  });
});

describe('FERRY_MAX_CONCURRENT_UPLOADS=1', () => {
  let ferry: InProcessFerry;
  let url: string;

  beforeAll(async () => {
    ferry = await startInProcessFerry({ FERRY_API_KEYS: API_KEYS, FERRY_MAX_CONCURRENT_UPLOADS: '1' });
    url = ferry.url;
  });
  afterAll(async () => {
    await ferry?.close();
  });

  /** Starts a PATCH of 64 KiB into a new acme upload that stops after 16 KiB, and waits until Ferry stored them. */
  async function stalledAcmePatch() {
    const size = 64 * 1024;
    const id = createdId(await tusPost(url, acme, size));
    const held = holdPatch(
      `${url}/files/${id}`,
      { ...acme, ...tusPatchHeaders(0, size) },
      randomBytes(size),
      16 * 1024,
    );
    await held.started;
    // The PATCH holds its slot once bytes are being stored (the file API reads the offset without a lock).
    await until(
      'the stalled PATCH to store its first bytes',
      async () => (await getFileAs(url, id, acme)).received_bytes,
      (received) => received >= 16 * 1024,
    );
    return { id, held, size };
  }

  it("a second PATCH of acme while one stalls mid-body → 429 with Retry-After; globex's PATCH is unaffected; once the first ends, acme's PATCHes work again", async () => {
    const second = createdId(await tusPost(url, acme, 10));
    const globexUpload = createdId(await tusPost(url, globex, 10));
    const { held, size } = await stalledAcmePatch();

    const refused = await send(
      'PATCH',
      `${url}/files/${second}`,
      { ...acme, ...tusPatchHeaders(0, 10) },
      Buffer.alloc(10),
    );
    expect([refused.status, refused.headers['retry-after']], refused.body).toEqual([429, '1']);
    expect((await head(url, second, acme)).offset).toBe('0');

    const other = await send(
      'PATCH',
      `${url}/files/${globexUpload}`,
      { ...globex, ...tusPatchHeaders(0, 10) },
      Buffer.alloc(10),
    );
    expect([other.status, other.headers['upload-offset']]).toEqual([204, '10']);

    const first = await held.finish();
    expect([first.status, first.headers['upload-offset']]).toEqual([204, String(size)]);
    const again = await send(
      'PATCH',
      `${url}/files/${second}`,
      { ...acme, ...tusPatchHeaders(0, 10) },
      Buffer.alloc(10),
    );
    expect([again.status, again.headers['upload-offset']]).toEqual([204, '10']);
  });

  it("a creation-with-upload of acme while a PATCH stalls → 429 with Retry-After and no upload made (acme's file list is unchanged); after the stall it is created with its bytes", async () => {
    const { held } = await stalledAcmePatch();
    const listed = async () =>
      (jsonOf(await send('GET', `${url}/v1/files?limit=100`, acme)) as { data: unknown[] }).data;
    const before = (await listed()).length;
    const body = randomBytes(10);
    const withBody = { ...TUS, ...acme, 'Upload-Length': '10', 'Content-Type': 'application/offset+octet-stream' };
    const refused = await send('POST', `${url}/files/`, withBody, body);
    expect([refused.status, refused.headers['retry-after'], refused.headers.location]).toEqual([429, '1', undefined]);
    expect((await listed()).length).toBe(before);

    await held.finish();
    const created = await send('POST', `${url}/files/`, withBody, body);
    expect([created.status, created.headers['upload-offset']]).toEqual([201, '10']);
    const id = createdId(created);
    const file = await waitForFileAs(url, id, acme, ['completed']);
    expect(file.checksums.sha256).toBe(sha256Hex(body));
    expect(sha256Hex((await getBytes(`${url}/v1/files/${id}/content`, acme)).body)).toBe(sha256Hex(body));
  });

  it('a stalled PATCH whose client goes away gives its slot back: acme PATCHes work again', async () => {
    const next = createdId(await tusPost(url, acme, 10));
    const { held } = await stalledAcmePatch();
    const refused = await send(
      'PATCH',
      `${url}/files/${next}`,
      { ...acme, ...tusPatchHeaders(0, 10) },
      Buffer.alloc(10),
    );
    expect(refused.status).toBe(429);
    held.abort();
    const answers: number[] = [];
    const res = await until(
      'a PATCH of acme to be accepted after the stalled one was cut',
      async () => {
        const r = await send('PATCH', `${url}/files/${next}`, { ...acme, ...tusPatchHeaders(0, 10) }, Buffer.alloc(10));
        answers.push(r.status);
        return r;
      },
      (r) => r.status !== 429,
      { timeoutMs: 5000, everyMs: 50 },
    );
    expect([res.status, res.headers['upload-offset']], JSON.stringify(answers)).toEqual([204, '10']);
  });
});

describe('CORS', () => {
  const APP = 'https://app.example.com';
  const EVIL = 'https://evil.example.com';
  const preflight = (baseUrl: string, path: string, origin: string, method = 'PATCH') =>
    send('OPTIONS', `${baseUrl}${path}`, {
      Origin: origin,
      'Access-Control-Request-Method': method,
      'Access-Control-Request-Headers': 'authorization, tus-resumable, upload-offset, content-type',
    });

  describe('FERRY_CORS_ORIGINS=https://app.example.com', () => {
    let ferry: InProcessFerry;
    let url: string;
    beforeAll(async () => {
      ferry = await startInProcessFerry({ FERRY_API_KEYS: API_KEYS, FERRY_CORS_ORIGINS: APP });
      url = ferry.url;
    });
    afterAll(async () => {
      await ferry?.close();
    });

    it('a preflight from that origin (tus and file API): 204 with Allow-Origin echoed, Allow-Credentials true and Authorization allowed, without credentials', async () => {
      for (const [path, method] of [
        [`/files/${randomUploadId()}`, 'PATCH'],
        ['/files/', 'POST'],
        ['/v1/files', 'GET'],
        ['/v1/tokens', 'POST'],
      ] as const) {
        const res = await preflight(url, path, APP, method);
        expect([path, res.status]).toEqual([path, 204]);
        expect(res.headers['access-control-allow-origin']).toBe(APP);
        expect(res.headers['access-control-allow-credentials']).toBe('true');
        expect(res.headers['access-control-allow-headers']).toMatch(/\bAuthorization\b/);
        expect(res.headers['access-control-allow-methods']).toContain(method);
        expect(res.headers.vary).toMatch(/Origin/);
      }
    });

    it('a preflight from another origin: no Allow-Origin and no Allow-Credentials', async () => {
      for (const path of [`/files/${randomUploadId()}`, '/v1/files']) {
        const res = await preflight(url, path, EVIL);
        expect(res.headers['access-control-allow-origin'], path).toBeUndefined();
        expect(res.headers['access-control-allow-credentials'], path).toBeUndefined();
        expect(res.headers['access-control-allow-headers'], path).toBeUndefined();
      }
    });

    it('actual requests: the listed origin gets Allow-Origin echoed with credentials (file API and tus), another origin no Allow-Origin', async () => {
      const api = await send('GET', `${url}/v1/files`, { ...acme, Origin: APP });
      expect([
        api.status,
        api.headers['access-control-allow-origin'],
        api.headers['access-control-allow-credentials'],
      ]).toEqual([200, APP, 'true']);
      const tus = await send('POST', `${url}/files/`, { ...TUS, ...acme, 'Upload-Length': '1', Origin: APP });
      expect([
        tus.status,
        tus.headers['access-control-allow-origin'],
        tus.headers['access-control-allow-credentials'],
      ]).toEqual([201, APP, 'true']);
      const unauthorized = await send('GET', `${url}/v1/files`, { Origin: APP });
      expect([unauthorized.status, unauthorized.headers['access-control-allow-origin']]).toEqual([401, APP]);
      for (const res of [
        await send('GET', `${url}/v1/files`, { ...acme, Origin: EVIL }),
        await send('POST', `${url}/files/`, { ...TUS, ...acme, 'Upload-Length': '1', Origin: EVIL }),
      ]) {
        expect(res.headers['access-control-allow-origin']).toBeUndefined();
      }
    });
  });

  describe('FERRY_CORS_ORIGINS=*', () => {
    let ferry: InProcessFerry;
    let url: string;
    beforeAll(async () => {
      ferry = await startInProcessFerry({ FERRY_API_KEYS: API_KEYS, FERRY_CORS_ORIGINS: '*' });
      url = ferry.url;
    });
    afterAll(async () => {
      await ferry?.close();
    });

    it('preflights and responses carry Allow-Origin * and never Allow-Credentials', async () => {
      for (const path of [`/files/${randomUploadId()}`, '/v1/files']) {
        const res = await preflight(url, path, APP);
        expect([path, res.status, res.headers['access-control-allow-origin']]).toEqual([path, 204, '*']);
        expect(res.headers['access-control-allow-credentials'], path).toBeUndefined();
      }
      for (const res of [
        await send('GET', `${url}/v1/files`, { ...acme, Origin: EVIL }),
        await send('POST', `${url}/files/`, { ...TUS, ...acme, 'Upload-Length': '1', Origin: EVIL }),
        await send('HEAD', `${url}/files/${randomUploadId()}`, { ...TUS, ...acme, Origin: APP }),
      ]) {
        expect(res.headers['access-control-allow-origin']).toBe('*');
        expect(res.headers['access-control-allow-credentials']).toBeUndefined();
      }
    });
  });
});

describe('start-up refusals and ferry hash-key (the built CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-auth-cli-'));
  });
  afterEach(cleanupFerries);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const serveEnv = (extra: Record<string, string>) => ({
    PORT: '0',
    FERRY_DATA_DIR: join(dir, 'data'),
    FERRY_LOG_LEVEL: 'silent',
    ...extra,
  });

  it('HOST=0.0.0.0 without keys: exit 2 with one line naming HOST and what to set', async () => {
    const { code, stderr } = await runCli(['serve'], serveEnv({ HOST: '0.0.0.0' }));
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      'ferry: invalid configuration: HOST="0.0.0.0": listening beyond loopback needs API keys (FERRY_API_KEYS or FERRY_API_KEYS_FILE), or FERRY_ALLOW_ANONYMOUS=true to accept anyone as tenant default',
    ]);
  });

  it('HOST=0.0.0.0 with FERRY_ALLOW_ANONYMOUS=true starts and serves requests without credentials (stopped by pid)', async () => {
    const ferry = await startFerry({
      env: { HOST: '0.0.0.0', FERRY_ALLOW_ANONYMOUS: 'true', FERRY_LOG_LEVEL: 'silent' },
    });
    const res = await send('GET', `${ferry.url}/v1/files`);
    expect([res.status, jsonOf(res)]).toEqual([200, { data: [], next_cursor: null }]);
    process.kill(ferry.pid, 'SIGTERM');
    expect((await ferry.exited).code).toBe(0);
  });

  it('FERRY_REDIS_URL without FERRY_TOKEN_SECRET and FERRY_SIGNING_SECRET: exit 2 naming both', async () => {
    const { code, stderr } = await runCli(['serve'], serveEnv({ FERRY_REDIS_URL: 'redis://127.0.0.1:1' }));
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      'ferry: invalid configuration: FERRY_TOKEN_SECRET="": required with FERRY_REDIS_URL (every replica must share it)',
      'ferry: invalid configuration: FERRY_SIGNING_SECRET="": required with FERRY_REDIS_URL (every replica must share it)',
    ]);
  });

  it('a keys file with a malformed line: exit 2 naming the file and the line number, without echoing the line', async () => {
    const file = join(dir, 'bad-keys');
    const good = `acme:sha256:${createHash('sha256').update(ACME_KEY).digest('hex')}`;
    await writeFile(file, `# keys\n${good}\n\nglobex:a-plain-secret-key-pasted-by-mistake\n`);
    const { code, stderr } = await runCli(['serve'], serveEnv({ FERRY_API_KEYS_FILE: file }));
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      `ferry: invalid configuration: FERRY_API_KEYS_FILE=${JSON.stringify(file)}: line 4 is not tenant:sha256:<64 lowercase hex digits>`,
    ]);
    expect(stderr).not.toContain('a-plain-secret-key');
  });

  it('`ferry hash-key acme` with a key on stdin prints acme:sha256:<hex>, and that line in FERRY_API_KEYS_FILE authenticates the key', async () => {
    const key = `k-${randomBytes(24).toString('hex')}`;
    const printed = await runCli(['hash-key', 'acme'], {}, { stdin: key });
    expect([printed.code, printed.stderr]).toEqual([0, '']);
    const line = printed.stdout.trim();
    expect(line).toBe(`acme:sha256:${createHash('sha256').update(key).digest('hex')}`);
    expect(printed.stdout).not.toContain(key);
    // `echo "$KEY" |` adds a newline: the same line.
    expect((await runCli(['hash-key', 'acme'], {}, { stdin: `${key}\n` })).stdout.trim()).toBe(line);
    // Too short a key, or a bad tenant name: exit 2.
    expect((await runCli(['hash-key', 'acme'], {}, { stdin: 'short' })).code).toBe(2);
    expect((await runCli(['hash-key', 'Acme!'], {}, { stdin: key })).code).toBe(2);

    const file = join(dir, 'keys');
    await writeFile(file, `# made by ferry hash-key\n${line}\n`);
    const ferry = await startFerry({ env: { FERRY_API_KEYS_FILE: file, FERRY_LOG_LEVEL: 'silent' } });
    expect((await send('GET', `${ferry.url}/v1/files`, bearer(key))).status).toBe(200);
    expect((await send('GET', `${ferry.url}/v1/files`, { 'X-API-Key': key })).status).toBe(200);
    expect((await send('GET', `${ferry.url}/v1/files`, bearer(`${key}x`))).status).toBe(401);
    expect((await send('GET', `${ferry.url}/v1/files`)).status).toBe(401);
    // The token a hashed key issues is acme's.
    const { token } = await issueToken(ferry.url, bearer(key));
    expect(decodeJwt(token).sub).toBe('acme');
  });
});
