/**
 * Tenant isolation end to end (API.md §3.7, README "Isolation"): with API keys for `acme` and
 * `globex`, every route is tried with acme's own key, globex's key, no credentials and a wrong key
 * against acme's unfinished upload, completed file and partial upload. The owner succeeds; the other
 * tenant gets exactly the answer a nonexistent id gets (status, headers and body, the id itself
 * aside) and sees nothing of acme's in lists and event streams; a missing or wrong credential is a
 * JSON 401 everywhere but tus discovery and the health routes. Afterwards acme's data is unchanged.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  bearer,
  errorCodeOf,
  expectUnauthorized,
  getBytes,
  getFileAs,
  jsonOf,
  listedIds,
  normalized,
  randomUploadId,
  send,
  sendBriefly,
  tusPatchHeaders,
  waitForFileAs,
  type Headers,
} from '../helpers/auth-http.js';
import { sha256Hex, uploadBuffer, uploadMetadataHeader } from '../helpers/files-api.js';
import { startInProcessFerry, type InProcessFerry } from '../helpers/in-process-ferry.js';
import { sleep } from '../helpers/poll.js';
import { closeSseClients, openSse } from '../helpers/sse-client.js';
import type { RawResponse } from '../helpers/tus.js';

const ACME_KEY = 'acme-test-key-0123456789abcdef';
const GLOBEX_KEY = 'globex-test-key-0123456789abcdef';
const WRONG_KEY = 'nobody-test-key-0123456789abcdef';
const API_KEYS = `acme:${ACME_KEY},globex:${GLOBEX_KEY}`;

const acme = bearer(ACME_KEY);
const globex = bearer(GLOBEX_KEY);
const TUS = { 'Tus-Resumable': '1.0.0' };

const UNFINISHED_LENGTH = 1000;
const UNFINISHED_OFFSET = 300;
const PARTIAL_LENGTH = 100;
const COMPLETED_BYTES = randomBytes(200 * 1024);

/** Creates an upload of `length` as `headers` and PATCHes `bytes` into it; resolves with its id. */
async function createUpload(
  baseUrl: string,
  headers: Headers,
  length: number,
  bytes: Buffer,
  extra: Headers = {},
): Promise<string> {
  const created = await send('POST', `${baseUrl}/files/`, {
    ...TUS,
    ...headers,
    'Upload-Length': String(length),
    ...extra,
  });
  if (created.status !== 201) throw new Error(`create → ${created.status} ${created.body}`);
  const id = new URL(created.headers.location!, baseUrl).pathname.split('/').pop()!;
  if (bytes.length > 0) {
    const patched = await send(
      'PATCH',
      `${baseUrl}/files/${id}`,
      { ...headers, ...tusPatchHeaders(0, bytes.length) },
      bytes,
    );
    if (patched.status !== 204) throw new Error(`patch → ${patched.status} ${patched.body}`);
  }
  return id;
}

/** Uploads `bytes` with tus-js-client as `headers` and waits until processing completed it. */
async function completedFile(baseUrl: string, headers: Headers, bytes: Buffer, name: string): Promise<string> {
  const { id } = await uploadBuffer(
    baseUrl,
    bytes,
    { filename: name, filetype: 'application/octet-stream' },
    { headers, chunkSize: 64 * 1024 },
  );
  await waitForFileAs(baseUrl, id, headers, ['completed']);
  return id;
}

describe('tenant isolation: every route × {own key, other tenant key, no credentials, wrong key}', () => {
  let ferry: InProcessFerry;
  let url: string;
  let unfinishedId: string;
  let partialId: string;
  let completedId: string;
  const completedSha256 = sha256Hex(COMPLETED_BYTES);

  beforeAll(async () => {
    ferry = await startInProcessFerry({ FERRY_API_KEYS: API_KEYS });
    url = ferry.url;
    unfinishedId = await createUpload(url, acme, UNFINISHED_LENGTH, randomBytes(UNFINISHED_OFFSET), {
      'Upload-Metadata': uploadMetadataHeader({ filename: 'unfinished.bin' }),
    });
    partialId = await createUpload(url, acme, PARTIAL_LENGTH, randomBytes(PARTIAL_LENGTH), {
      'Upload-Concat': 'partial',
    });
    completedId = await completedFile(url, acme, COMPLETED_BYTES, 'completed.bin');
  });
  afterAll(async () => {
    closeSseClients();
    await ferry?.close();
  });
  afterEach(closeSseClients);

  it('set-up: acme owns an unfinished upload (300 of 1000 bytes), a complete partial upload and a completed file whose bytes hash to the source sha256', async () => {
    const head = await send('HEAD', `${url}/files/${unfinishedId}`, { ...TUS, ...acme });
    expect([head.status, head.headers['upload-offset'], head.headers['upload-length']]).toEqual([200, '300', '1000']);
    const partial = await send('HEAD', `${url}/files/${partialId}`, { ...TUS, ...acme });
    expect([partial.status, partial.headers['upload-offset'], partial.headers['upload-concat']]).toEqual([
      200,
      '100',
      'partial',
    ]);
    const file = await getFileAs(url, completedId, acme);
    expect(file.checksums.sha256).toBe(completedSha256);
    expect(sha256Hex((await getBytes(`${url}/v1/files/${completedId}/content`, acme)).body)).toBe(completedSha256);
    expect(sha256Hex((await getBytes(`${url}/files/${completedId}`, acme)).body)).toBe(completedSha256);
  });

  interface RouteCase {
    /** The route as the test names it. */
    readonly name: string;
    readonly method: string;
    /** The id of acme's that the route is tried on (undefined: the route takes none). */
    readonly target: () => string | undefined;
    /** The request, for `id` (ignored by routes without one) with `headers`. */
    readonly request: (id: string, headers: Headers) => Promise<RawResponse>;
    /** What acme's own key gets (a destructive route works on a twin of the fixture). */
    readonly own: { readonly says: string; readonly check: () => Promise<void> };
    /** For routes without an id: what globex's key gets instead of a 404. */
    readonly other?: { readonly says: string; readonly check: () => Promise<void> };
  }

  const routes: RouteCase[] = [
    {
      name: 'HEAD /files/<unfinished upload>',
      method: 'HEAD',
      target: () => unfinishedId,
      request: (id, headers) => send('HEAD', `${url}/files/${id}`, { ...TUS, ...headers }),
      own: {
        says: '200 with Upload-Offset 300 and Upload-Length 1000',
        async check() {
          const res = await send('HEAD', `${url}/files/${unfinishedId}`, { ...TUS, ...acme });
          expect([res.status, res.headers['upload-offset'], res.headers['upload-length']]).toEqual([
            200,
            '300',
            '1000',
          ]);
        },
      },
    },
    {
      name: 'PATCH /files/<unfinished upload> (10 bytes at offset 300)',
      method: 'PATCH',
      target: () => unfinishedId,
      request: (id, headers) =>
        send(
          'PATCH',
          `${url}/files/${id}`,
          { ...headers, ...tusPatchHeaders(UNFINISHED_OFFSET, 10) },
          Buffer.alloc(10, 7),
        ),
      own: {
        says: '204 with Upload-Offset 310 (on a twin upload)',
        async check() {
          const twin = await createUpload(url, acme, UNFINISHED_LENGTH, randomBytes(UNFINISHED_OFFSET));
          const res = await send(
            'PATCH',
            `${url}/files/${twin}`,
            { ...acme, ...tusPatchHeaders(UNFINISHED_OFFSET, 10) },
            Buffer.alloc(10, 7),
          );
          expect([res.status, res.headers['upload-offset']], res.body).toEqual([204, '310']);
        },
      },
    },
    {
      name: 'DELETE /files/<unfinished upload> (tus termination)',
      method: 'DELETE',
      target: () => unfinishedId,
      request: (id, headers) => send('DELETE', `${url}/files/${id}`, { ...TUS, ...headers }),
      own: {
        says: '204 and the upload is gone (on a twin upload)',
        async check() {
          const twin = await createUpload(url, acme, UNFINISHED_LENGTH, randomBytes(UNFINISHED_OFFSET));
          const res = await send('DELETE', `${url}/files/${twin}`, { ...TUS, ...acme });
          expect(res.status, res.body).toBe(204);
          expect((await send('HEAD', `${url}/files/${twin}`, { ...TUS, ...acme })).status).toBe(404);
        },
      },
    },
    {
      name: 'GET /files/<completed upload> (tus download)',
      method: 'GET',
      target: () => completedId,
      request: (id, headers) => send('GET', `${url}/files/${id}`, headers),
      own: {
        says: '200 with the bytes of the source (sha256)',
        async check() {
          const res = await getBytes(`${url}/files/${completedId}`, acme);
          expect(res.status).toBe(200);
          expect(sha256Hex(res.body)).toBe(completedSha256);
        },
      },
    },
    {
      name: 'POST /files/ with Upload-Concat: final;/files/<partial upload>',
      method: 'POST',
      target: () => partialId,
      request: (id, headers) =>
        send('POST', `${url}/files/`, { ...TUS, ...headers, 'Upload-Concat': `final;/files/${id}` }),
      own: {
        says: '201: a final upload joined from the partial',
        async check() {
          const res = await send('POST', `${url}/files/`, {
            ...TUS,
            ...acme,
            'Upload-Concat': `final;/files/${partialId}`,
          });
          expect(res.status, res.body).toBe(201);
          const head = await send('HEAD', new URL(res.headers.location!, url).toString(), { ...TUS, ...acme });
          expect([head.status, head.headers['upload-concat'], head.headers['upload-offset']]).toEqual([
            200,
            `final;/files/${partialId}`,
            '100',
          ]);
        },
      },
    },
    {
      name: 'GET /v1/files',
      method: 'GET',
      target: () => undefined,
      request: (_id, headers) => send('GET', `${url}/v1/files?limit=1000`, headers),
      own: {
        says: "200 listing acme's completed file and unfinished upload",
        async check() {
          const ids = await listedIds(url, acme);
          expect(ids).toEqual(expect.arrayContaining([completedId, unfinishedId]));
        },
      },
      other: {
        says: "200 listing nothing of acme's",
        async check() {
          const res = await send('GET', `${url}/v1/files?limit=1000`, globex);
          expect(res.status).toBe(200);
          expect(jsonOf(res)).toEqual({ data: [], next_cursor: null });
          for (const id of [unfinishedId, partialId, completedId]) expect(res.body).not.toContain(id);
          const completed = await send('GET', `${url}/v1/files?status=completed&limit=1000`, globex);
          expect(jsonOf(completed)).toEqual({ data: [], next_cursor: null });
        },
      },
    },
    {
      name: 'GET /v1/files/<completed file>',
      method: 'GET',
      target: () => completedId,
      request: (id, headers) => send('GET', `${url}/v1/files/${id}`, headers),
      own: {
        says: '200 with the file',
        async check() {
          const file = await getFileAs(url, completedId, acme);
          expect([file.id, file.status, file.name]).toEqual([completedId, 'completed', 'completed.bin']);
        },
      },
    },
    {
      name: 'GET /v1/files/<completed file>/content',
      method: 'GET',
      target: () => completedId,
      request: (id, headers) => send('GET', `${url}/v1/files/${id}/content`, headers),
      own: {
        says: 'the bytes of the source (sha256)',
        async check() {
          const res = await getBytes(`${url}/v1/files/${completedId}/content`, acme);
          expect(res.status).toBe(200);
          expect(sha256Hex(res.body)).toBe(completedSha256);
        },
      },
    },
    {
      name: 'DELETE /v1/files/<completed file>',
      method: 'DELETE',
      target: () => completedId,
      request: (id, headers) => send('DELETE', `${url}/v1/files/${id}`, headers),
      own: {
        says: '204 and the file is gone (on a twin file)',
        async check() {
          const twin = await completedFile(url, acme, randomBytes(1000), 'twin.bin');
          const res = await send('DELETE', `${url}/v1/files/${twin}`, acme);
          expect(res.status, res.body).toBe(204);
          const after = await send('GET', `${url}/v1/files/${twin}`, acme);
          expect([after.status, errorCodeOf(after)]).toEqual([404, 'file_not_found']);
        },
      },
    },
    {
      name: 'GET /v1/files/<completed file>/events',
      method: 'GET',
      target: () => completedId,
      request: (id, headers) =>
        sendBriefly('GET', `${url}/v1/files/${id}/events`, { Accept: 'text/event-stream', ...headers }),
      own: {
        says: '200 text/event-stream',
        async check() {
          const sse = await openSse(`${url}/v1/files/${completedId}/events`, { headers: acme });
          expect(sse.status).toBe(200);
          expect(sse.headers['content-type']).toMatch(/^text\/event-stream/);
        },
      },
    },
    {
      name: 'GET /v1/events',
      method: 'GET',
      target: () => undefined,
      request: (_id, headers) =>
        sendBriefly('GET', `${url}/v1/events`, { Accept: 'text/event-stream', ...headers }, 300),
      own: {
        says: '200 text/event-stream',
        async check() {
          const sse = await openSse(`${url}/v1/events`, { headers: acme });
          expect(sse.status).toBe(200);
          expect(sse.headers['content-type']).toMatch(/^text\/event-stream/);
        },
      },
      other: {
        says: "200, a stream of none of acme's events (even replaying from Last-Event-ID 0)",
        async check() {
          const sse = await openSse(`${url}/v1/events`, { headers: globex, lastEventId: '0' });
          expect(sse.status).toBe(200);
          await sleep(300);
          expect(sse.messages).toEqual([]);
        },
      },
    },
  ];

  for (const route of routes) {
    describe(route.name, () => {
      it(`acme's own key: ${route.own.says}`, async () => {
        await route.own.check();
      });

      if (route.other) {
        const other = route.other;
        it(`globex's key: ${other.says}`, async () => {
          await other.check();
        });
      } else {
        it("globex's key: 404, exactly the answer a nonexistent id gets (status, headers, body)", async () => {
          const id = route.target()!;
          const missingId = randomUploadId();
          const real = await route.request(id, globex);
          const missing = await route.request(missingId, globex);
          expect(real.status).toBe(404);
          expect(normalized(real, id)).toEqual(normalized(missing, missingId));
        });
      }

      it('no credentials: 401 JSON unauthorized with WWW-Authenticate', async () => {
        expectUnauthorized(await route.request(route.target() ?? randomUploadId(), {}), route.method);
      });

      it('a wrong key: 401 JSON unauthorized with WWW-Authenticate', async () => {
        expectUnauthorized(await route.request(route.target() ?? randomUploadId(), bearer(WRONG_KEY)), route.method);
      });
    });
  }

  it("GET /v1/events: acme's new upload and its bytes reach acme's stream as created and progress events, and globex's stream gets none of them", async () => {
    const mine = await openSse(`${url}/v1/events`, { headers: acme });
    const theirs = await openSse(`${url}/v1/events`, { headers: globex });
    const theirsFrom0 = await openSse(`${url}/v1/events`, { headers: globex, lastEventId: '0' });
    expect([mine.status, theirs.status, theirsFrom0.status]).toEqual([200, 200, 200]);
    const id = await createUpload(url, acme, 5000, randomBytes(2000));
    await mine.waitFor((m) => m.json.event === 'created' && m.json.file_id === id, 5000);
    await mine.waitFor((m) => m.json.event === 'progress' && m.json.file_id === id, 5000);
    // The same bus delivered to every subscriber synchronously; give the sockets a moment all the same.
    await sleep(300);
    expect(theirs.messages).toEqual([]);
    expect(theirsFrom0.messages).toEqual([]);
    // The per-file stream of that upload answers globex like a missing file.
    const perFile = await sendBriefly('GET', `${url}/v1/files/${id}/events`, globex);
    expect([perFile.status, errorCodeOf(perFile)]).toEqual([404, 'file_not_found']);
  });

  it("GET /v1/events with Last-Event-ID 0 replays acme's earlier events to acme (control) and none to globex", async () => {
    const mine = await openSse(`${url}/v1/events`, { headers: acme, lastEventId: '0' });
    await mine.waitFor((m) => m.json.event === 'completed' && m.json.file_id === completedId, 5000);
    const theirs = await openSse(`${url}/v1/events`, { headers: globex, lastEventId: '0' });
    await sleep(300);
    expect(theirs.messages).toEqual([]);
  });

  it('tus discovery (OPTIONS /files/), a CORS preflight, /healthz and /readyz answer without credentials', async () => {
    const discovery = await send('OPTIONS', `${url}/files/`);
    expect(discovery.status).toBe(204);
    expect(discovery.headers['tus-version']).toBe('1.0.0');
    expect(discovery.headers['tus-extension']).toContain('creation');
    const preflight = await send('OPTIONS', `${url}/v1/files`, {
      Origin: 'https://app.example.com',
      'Access-Control-Request-Method': 'GET',
      'Access-Control-Request-Headers': 'authorization',
    });
    expect(preflight.status).toBe(204);
    expect((await send('GET', `${url}/healthz`)).status).toBe(200);
    expect((await send('GET', `${url}/readyz`)).status).toBe(200);
    // A wrong key changes nothing for the health routes (they come before authentication).
    expect((await send('GET', `${url}/healthz`, bearer(WRONG_KEY))).status).toBe(200);
  });

  it('every kind of wrong credential (unknown key, wrong X-API-Key, Basic scheme, empty Bearer, JWT-shaped garbage, acme key with a character more or less) gets the same 401 body', async () => {
    const wrong: Headers[] = [
      bearer(WRONG_KEY),
      { 'X-API-Key': WRONG_KEY },
      { Authorization: `Basic ${Buffer.from(`acme:${ACME_KEY}`).toString('base64')}` },
      { Authorization: 'Bearer ' },
      { Authorization: 'Bearer' },
      bearer('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY21lIn0.c2lnbmF0dXJl'),
      bearer(`${ACME_KEY}x`),
      bearer(ACME_KEY.slice(0, -1)),
      { 'X-API-Key': `${ACME_KEY} x` },
    ];
    const answers = await Promise.all(wrong.map((headers) => send('GET', `${url}/v1/files/${completedId}`, headers)));
    for (const res of answers) expectUnauthorized(res, 'GET');
    expect(new Set(answers.map((res) => res.body)).size).toBe(1);
  });

  it('X-API-Key carries a key like Authorization: Bearer (acme sees its file, globex gets 404)', async () => {
    expect((await send('GET', `${url}/v1/files/${completedId}`, { 'X-API-Key': ACME_KEY })).status).toBe(200);
    const other = await send('GET', `${url}/v1/files/${completedId}`, { 'X-API-Key': GLOBEX_KEY });
    expect([other.status, errorCodeOf(other)]).toEqual([404, 'file_not_found']);
  });

  // Declared last: it checks that nothing above changed acme's data.
  it("after the whole matrix acme's unfinished upload, partial upload and completed file are unchanged, and globex owns nothing", async () => {
    const head = await send('HEAD', `${url}/files/${unfinishedId}`, { ...TUS, ...acme });
    expect([head.status, head.headers['upload-offset'], head.headers['upload-length']]).toEqual([200, '300', '1000']);
    const partial = await send('HEAD', `${url}/files/${partialId}`, { ...TUS, ...acme });
    expect([partial.status, partial.headers['upload-offset'], partial.headers['upload-concat']]).toEqual([
      200,
      '100',
      'partial',
    ]);
    const file = await getFileAs(url, completedId, acme);
    expect([file.status, file.size, file.checksums.sha256]).toEqual([
      'completed',
      COMPLETED_BYTES.length,
      completedSha256,
    ]);
    expect(sha256Hex((await getBytes(`${url}/v1/files/${completedId}/content`, acme)).body)).toBe(completedSha256);
    expect(sha256Hex((await getBytes(`${url}/files/${completedId}`, acme)).body)).toBe(completedSha256);
    expect(await listedIds(url, globex)).toEqual([]);
  });
});

describe('keys configured and FERRY_ALLOW_ANONYMOUS=true', () => {
  let ferry: InProcessFerry;
  let url: string;

  beforeAll(async () => {
    ferry = await startInProcessFerry({ FERRY_API_KEYS: API_KEYS, FERRY_ALLOW_ANONYMOUS: 'true' });
    url = ferry.url;
  });
  afterAll(async () => {
    closeSseClients();
    await ferry?.close();
  });

  it("a request without credentials is tenant default: it sees nothing of acme's (404 like a missing id, empty list, no events) and its own upload is invisible to acme", async () => {
    const bytes = randomBytes(4096);
    const acmeFile = await completedFile(url, acme, bytes, 'acme.bin');
    const acmeUpload = await createUpload(url, acme, 1000, randomBytes(10));
    const missingId = randomUploadId();

    expect(await listedIds(url, {})).toEqual([]);
    const checks: [string, (id: string) => Promise<RawResponse>][] = [
      [acmeUpload, (id) => send('HEAD', `${url}/files/${id}`, TUS)],
      [acmeFile, (id) => send('GET', `${url}/files/${id}`)],
      [acmeFile, (id) => send('GET', `${url}/v1/files/${id}`)],
      [acmeFile, (id) => send('GET', `${url}/v1/files/${id}/content`)],
      [acmeFile, (id) => sendBriefly('GET', `${url}/v1/files/${id}/events`)],
      [acmeUpload, (id) => send('DELETE', `${url}/files/${id}`, TUS)],
      [acmeFile, (id) => send('DELETE', `${url}/v1/files/${id}`)],
    ];
    for (const [id, request] of checks) {
      const real = await request(id);
      expect(real.status).toBe(404);
      expect(normalized(real, id)).toEqual(normalized(await request(missingId), missingId));
    }

    const events = await openSse(`${url}/v1/events`, { lastEventId: '0' });
    expect(events.status).toBe(200);
    await createUpload(url, acme, 1000, randomBytes(10));
    await sleep(300);
    expect(events.messages).toEqual([]);

    // Anonymous uploads work and belong to `default`, not to acme.
    const anonymous = await createUpload(url, {}, 100, randomBytes(100));
    expect(await listedIds(url, {})).toEqual([anonymous]);
    expect(await listedIds(url, acme)).not.toContain(anonymous);
    expect((await send('HEAD', `${url}/files/${anonymous}`, { ...TUS, ...acme })).status).toBe(404);

    // acme's data is untouched.
    expect((await getFileAs(url, acmeFile, acme)).checksums.sha256).toBe(sha256Hex(bytes));
    const head = await send('HEAD', `${url}/files/${acmeUpload}`, { ...TUS, ...acme });
    expect([head.status, head.headers['upload-offset']]).toEqual([200, '10']);
  });

  it('a wrong key is still 401, not demoted to anonymous', async () => {
    expectUnauthorized(await send('GET', `${url}/v1/files`, bearer(WRONG_KEY)), 'GET');
    expectUnauthorized(
      await send('HEAD', `${url}/files/${randomUploadId()}`, { ...TUS, ...bearer(WRONG_KEY) }),
      'HEAD',
    );
  });
});
