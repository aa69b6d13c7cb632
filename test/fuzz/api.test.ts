/**
 * Property-based fuzzing of Ferry's own API: the file registry (`/v1/files`, downloads, events),
 * upload tokens (`POST /v1/tokens`) and credentials. Every answer is below 500 and comes within the
 * timeout; the process stays up; U, F and the listing change only through accepted requests (see
 * fuzz-rig().ts). FUZZ_RUNS sets the cases per property (150 by default; `npm run fuzz` runs 2000).
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import {
  contentEncoding,
  credential,
  etagHeader,
  jsonContentType,
  lastEventId,
  mostly,
  numberText,
  pathTail,
  queryString,
  queryValue,
  rangeHeader,
  renderTokenBody,
  signature,
  tokenBody,
} from '../helpers/fuzz-arbitraries.js';
import { describeFuzzRequest, type FuzzResponse } from '../helpers/fuzz-http.js';
import {
  FUZZ_API_KEY,
  FUZZ_MODES,
  useFuzzRig,
  FUZZ_TEST_TIMEOUT_MS,
  expectBelow500,
  fuzzParameters,
  watchProcessErrors,
  type RigRequest,
} from '../helpers/fuzz-rig.js';

const errors = watchProcessErrors();

const optional = <T>(arbitrary: fc.Arbitrary<T>, freq: number) => fc.option(arbitrary, { nil: undefined, freq });
const withQuery = (path: string, query: string | undefined) => (query === undefined ? path : `${path}?${query}`);

/** `GET /v1/files?…` */
const listCase = fc.record({
  kind: fc.constant('list' as const),
  path: fc.constantFrom('/v1/files', '/v1/files', '/v1/files/', '/V1/FILES', '/v1/files;x'),
  query: queryString,
});

/** `GET|DELETE /v1/files/<anything>` */
const fileCase = fc.record({
  kind: fc.constant('file' as const),
  method: fc.constantFrom('GET', 'GET', 'DELETE', 'HEAD'),
  tail: pathTail,
  query: optional(queryString, 4),
});

/** `GET /v1/files/<anything>/content` with ranges, ETags and (signed-URL) query parameters. */
const contentCase = fc.record({
  kind: fc.constant('content' as const),
  method: fc.constantFrom('GET', 'GET', 'HEAD'),
  tail: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('<<F>>', '<<S0>>', '<<U>>') },
    { weight: 2, arbitrary: pathTail },
  ),
  /** Without credentials the signature is the credential. */
  auth: fc.boolean(),
  signed: mostly(fc.constant('<<SIGNED_F>>'), queryString, { absent: 2, valid: 3, fuzzed: 1 }),
  expires: optional(numberText, 3),
  signature: optional(signature, 3),
  range: optional(rangeHeader, 2),
  ifNoneMatch: optional(etagHeader, 3),
});

/** `GET /v1/events?batch=…` and `GET /v1/files/<anything>/events` with Last-Event-ID. */
const eventsCase = fc.record({
  kind: fc.constant('events' as const),
  path: fc.oneof(
    fc.constant('/v1/events'),
    fc.constant('/v1/files/<<F>>/events'),
    pathTail.map((tail) => `/v1/files/${tail}/events`),
  ),
  batch: optional(fc.oneof(queryValue, fc.constantFrom('b&batch=c', 'a%00b', ''), fc.string({ maxLength: 1100 })), 2),
  query: optional(queryString, 3),
  lastEventId: optional(lastEventId, 2),
  lastEventIdQuery: optional(lastEventId, 3),
});

const registryCase = fc.oneof(listCase, fileCase, contentCase, eventsCase);
type RegistryCase = typeof registryCase extends fc.Arbitrary<infer T> ? T : never;

function registryRequest(c: RegistryCase): RigRequest {
  switch (c.kind) {
    case 'list':
      return { method: 'GET', path: withQuery(c.path, c.query) };
    case 'file':
      return { method: c.method, path: withQuery(`/v1/files/${c.tail}`, c.query) };
    case 'content': {
      const query = [
        c.signed,
        c.expires === undefined ? undefined : `expires=${c.expires}`,
        c.signature === undefined ? undefined : `signature=${c.signature}`,
      ].filter((part) => part !== undefined);
      return {
        method: c.method,
        path: withQuery(`/v1/files/${c.tail}/content`, query.length > 0 ? query.join('&') : undefined),
        auth: c.auth,
        headers: { Range: c.range, 'If-None-Match': c.ifNoneMatch },
      };
    }
    case 'events': {
      const query = [
        c.batch === undefined ? undefined : `batch=${c.batch}`,
        c.lastEventIdQuery === undefined ? undefined : `last_event_id=${c.lastEventIdQuery}`,
        c.query,
      ].filter((part) => part !== undefined);
      return {
        method: 'GET',
        path: withQuery(c.path, query.length > 0 ? query.join('&') : undefined),
        headers: { 'Last-Event-ID': c.lastEventId },
        // A 200 is a stream that never ends: its status and headers are the answer.
        headersOnly: true,
      };
    }
  }
}

/** What a successful answer of each kind must look like. */
function checkSuccess(c: RegistryCase, res: FuzzResponse, what: string): void {
  if (res.status !== 200) return;
  if (c.kind === 'list') {
    const body = JSON.parse(res.body.toString('utf8')) as { data?: unknown };
    if (!Array.isArray(body.data)) throw new Error(`200 without a data array: ${what}`);
  }
  const streamPath = c.kind === 'events' && (c.path === '/v1/events' || c.path === '/v1/files/<<F>>/events');
  if (streamPath && !String(res.headers['content-type']).startsWith('text/event-stream')) {
    throw new Error(`200 that is not an event stream: ${what}`);
  }
}

const tokenCase = fc.record({
  body: tokenBody,
  contentType: mostly(fc.constant('application/json'), jsonContentType, { absent: 1, valid: 4, fuzzed: 2 }),
  contentEncoding: optional(contentEncoding, 6),
  /** mode: the rig's own credentials; token: an upload token (may not issue tokens); none. */
  as: fc.constantFrom('mode', 'mode', 'mode', 'token', 'none'),
});

const TOKEN_CLAIMS = new Set(['iss', 'aud', 'sub', 'iat', 'exp', 'max_size', 'allowed_types', 'folder']);

/** A 201 carries a token of the caller's tenant with only Ferry's claims, valid for at most a day. */
function checkIssuedToken(res: FuzzResponse, tenant: string, what: string): void {
  const body = JSON.parse(res.body.toString('utf8')) as { data?: { token?: unknown; expires_at?: unknown } };
  const token = body.data?.token;
  if (typeof token !== 'string' || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw new Error(`201 without a JWT: ${what}: ${res.body.toString('utf8').slice(0, 300)}`);
  }
  const expiresAt = Date.parse(String(body.data?.expires_at));
  if (!(expiresAt > Date.now() - 5000 && expiresAt <= Date.now() + 86_400_000 + 5000)) {
    throw new Error(`201 with expires_at ${String(body.data?.expires_at)}: ${what}`);
  }
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  const foreign = Object.keys(payload).filter((key) => !TOKEN_CLAIMS.has(key));
  if (payload.sub !== tenant || foreign.length > 0) {
    throw new Error(
      `201 with a token for ${JSON.stringify(payload.sub)} with claims ${JSON.stringify(payload)}: ${what}`,
    );
  }
}

const credentialValue = fc.oneof(
  { weight: 4, arbitrary: credential },
  { weight: 1, arbitrary: fc.array(credential, { minLength: 2, maxLength: 3 }) },
);

const credentialCase = fc.record({
  authorization: optional(credentialValue, 4),
  xApiKey: optional(credentialValue, 3),
  path: fc.constantFrom('/v1/files', '/v1/files?limit=1', '/v1/files?status=completed'),
});

const JWT_SHAPED = /[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/;

describe.each(FUZZ_MODES)("fuzzing Ferry's API ($name)", (mode) => {
  const rig = useFuzzRig(mode, errors);

  it(
    'GET /v1/files (any query), GET/DELETE /v1/files/<any>, downloads and event streams: never a 5xx',
    async () => {
      await fc.assert(
        fc.asyncProperty(registryCase, async (c) => {
          const req = registryRequest(c);
          const res = await rig().send(req);
          fc.pre(res !== undefined);
          const what = describeFuzzRequest({ ...req, path: rig().resolve(req.path) });
          expectBelow500(res.status, what, res.body);
          checkSuccess(c, res, what);
          await rig().checkCase(res.status);
        }),
        fuzzParameters(),
      );
      await rig().checkState();
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'POST /v1/tokens with arbitrary JSON and non-JSON bodies: never a 5xx, accepted only as 201 with a token of the tenant',
    async () => {
      await fc.assert(
        fc.asyncProperty(tokenCase, async (c) => {
          const headers: Record<string, string | undefined> = {
            'Content-Type': c.contentType,
            'Content-Encoding': c.contentEncoding ?? (c.body.gzip ? 'gzip' : undefined),
          };
          if (c.as === 'token') headers.Authorization = 'Bearer <<TOKEN>>';
          const req: RigRequest = {
            method: 'POST',
            path: '/v1/tokens',
            headers,
            body: renderTokenBody(c.body),
            auth: c.as === 'mode',
          };
          const res = await rig().send(req);
          fc.pre(res !== undefined);
          const what = describeFuzzRequest(req);
          expectBelow500(res.status, what, res.body);
          if (res.status >= 200 && res.status < 300) {
            if (res.status !== 201) throw new Error(`accepted with ${res.status}: ${what}`);
            if (c.as === 'token') throw new Error(`an upload token issued a token: ${what}`);
            if (c.as === 'none' && mode.name === 'api-key') throw new Error(`a token without credentials: ${what}`);
            checkIssuedToken(res, rig().tenant, what);
          }
          await rig().checkCase(res.status);
        }),
        fuzzParameters(),
      );
      await rig().checkState();
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'arbitrary Authorization / X-API-Key on GET /v1/files: 200, 401 or 403, and 200 only with the key (or no credential when anonymous)',
    async () => {
      await fc.assert(
        fc.asyncProperty(credentialCase, async (c) => {
          const req: RigRequest = {
            method: 'GET',
            path: c.path,
            headers: { Authorization: c.authorization, 'X-API-Key': c.xApiKey },
            auth: false,
          };
          const res = await rig().send(req);
          fc.pre(res !== undefined);
          const what = describeFuzzRequest(req);
          expectBelow500(res.status, what, res.body);
          const sent = [c.authorization, c.xApiKey].flat().filter((value) => value !== undefined);
          const presented = sent.map((value) => rig().resolve(value));
          if (![200, 401, 403, 431].includes(res.status)) throw new Error(`answered ${res.status}: ${what}`);
          if (res.status === 200) {
            const allowed =
              mode.name === 'api-key' ? presented.some((value) => value.includes(FUZZ_API_KEY)) : sent.length === 0;
            if (!allowed) throw new Error(`200 for credentials that are not the key: ${what}`);
          }
          if (res.status === 403 && !presented.some((value) => JWT_SHAPED.test(value))) {
            throw new Error(`403 for a credential that is no token: ${what}`);
          }
          await rig().checkCase(res.status);
        }),
        fuzzParameters(),
      );
      await rig().checkState();
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});
