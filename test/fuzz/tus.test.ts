/**
 * Property-based fuzzing of the tus endpoint: creation headers (POST /files/) and requests on upload
 * URLs (PATCH/HEAD/DELETE /files/<path>). Every answer is below 500 and comes within the timeout; the
 * process stays up; U, F and the listing change only through accepted requests (see fuzz-rig().ts).
 * FUZZ_RUNS sets the cases per property (150 by default; `npm run fuzz` runs 2000).
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import {
  metadata,
  methodOverride,
  mostly,
  numberText,
  pathTail,
  queryString,
  renderMetadata,
  smallBody,
  tusContentType,
  tusResumable,
  uploadChecksum,
  uploadConcat,
  validMetadata,
} from '../helpers/fuzz-arbitraries.js';
import { describeFuzzRequest, type FuzzRequest } from '../helpers/fuzz-http.js';
import {
  FUZZ_MODES,
  useFuzzRig,
  FUZZ_TEST_TIMEOUT_MS,
  U_OFFSET,
  expectBelow500,
  fuzzParameters,
  watchProcessErrors,
} from '../helpers/fuzz-rig.js';

const errors = watchProcessErrors();

const optional = <T>(arbitrary: fc.Arbitrary<T>, freq: number) => fc.option(arbitrary, { nil: undefined, freq });

/** sha1, crc32c and md5 of no bytes: valid checksums of an empty body. */
const EMPTY_CHECKSUMS = ['sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=', 'crc32c AAAAAA==', 'md5 1B2M2Y8AsgTpgAmY7PhCfg=='];

const creationCase = fc.record({
  path: fc.constantFrom('/files/', '/files/', '/files/', '/files', '/files/?x=1', '/FILES/', '/files/<<U>>'),
  tusResumable: mostly(fc.constant('1.0.0'), tusResumable, { absent: 1, valid: 12, fuzzed: 2 }),
  uploadLength: mostly(fc.oneof(fc.nat({ max: 8 }), fc.nat({ max: 2000 })).map(String), numberText, {
    absent: 2,
    valid: 6,
    fuzzed: 2,
  }),
  uploadDeferLength: mostly(fc.constant('1'), numberText, { absent: 8, valid: 2, fuzzed: 1 }),
  uploadMetadata: mostly(validMetadata, metadata, { absent: 2, valid: 4, fuzzed: 3 }),
  uploadConcat: mostly(fc.constant('partial'), uploadConcat, { absent: 6, valid: 1, fuzzed: 2 }),
  uploadChecksum: mostly(fc.constantFrom(...EMPTY_CHECKSUMS), uploadChecksum, { absent: 6, valid: 1, fuzzed: 2 }),
  methodOverride: mostly(fc.constantFrom('PATCH', 'DELETE', 'HEAD'), methodOverride, {
    absent: 10,
    valid: 1,
    fuzzed: 1,
  }),
  contentType: mostly(fc.constant('application/offset+octet-stream'), tusContentType, {
    absent: 3,
    valid: 2,
    fuzzed: 1,
  }),
  body: optional(smallBody, 2),
  /** One header sent twice, the second time with this value. */
  repeated: optional(
    fc.tuple(
      fc.constantFrom('Upload-Length', 'Upload-Metadata', 'Tus-Resumable', 'Upload-Concat', 'Upload-Checksum'),
      numberText,
    ),
    8,
  ),
});

type CreationCase = typeof creationCase extends fc.Arbitrary<infer T> ? T : never;

function creationRequest(c: CreationCase): FuzzRequest {
  const headers: Record<string, string | string[] | undefined> = {
    'Tus-Resumable': c.tusResumable,
    'Upload-Length': c.uploadLength,
    'Upload-Defer-Length': c.uploadDeferLength,
    'Upload-Metadata': c.uploadMetadata && renderMetadata(c.uploadMetadata),
    'Upload-Concat': c.uploadConcat,
    'Upload-Checksum': c.uploadChecksum,
    'X-HTTP-Method-Override': c.methodOverride,
    'Content-Type': c.contentType,
  };
  if (c.repeated) {
    const [name, second] = c.repeated;
    const first = headers[name];
    headers[name] = typeof first === 'string' ? [first, second] : [second, second];
  }
  return { method: 'POST', path: c.path, headers, body: c.body && Buffer.from(c.body) };
}

/** A Upload-Offset Ferry would read as U's offset: the fuzzer never sends one (U must not change). */
const isUOffset = (value: string | undefined) =>
  value !== undefined && /^\d{1,16}$/.test(value.trim()) && Number(value) === U_OFFSET;

const uploadUrlCase = fc.record({
  method: fc.constantFrom('PATCH', 'PATCH', 'PATCH', 'HEAD', 'DELETE', 'GET', 'OPTIONS', 'POST'),
  tail: pathTail,
  query: optional(queryString, 6),
  tusResumable: mostly(fc.constant('1.0.0'), tusResumable, { absent: 1, valid: 12, fuzzed: 2 }),
  uploadOffset: mostly(fc.constantFrom('0', '4', '6', '100', '101'), numberText, { absent: 1, valid: 6, fuzzed: 3 }),
  uploadLength: mostly(fc.nat({ max: 200 }).map(String), numberText, { absent: 6, valid: 1, fuzzed: 1 }),
  contentType: mostly(fc.constant('application/offset+octet-stream'), tusContentType, {
    absent: 1,
    valid: 8,
    fuzzed: 2,
  }),
  uploadChecksum: mostly(fc.constantFrom(...EMPTY_CHECKSUMS), uploadChecksum, { absent: 6, valid: 1, fuzzed: 1 }),
  methodOverride: mostly(fc.constantFrom('PATCH', 'DELETE', 'HEAD'), methodOverride, {
    absent: 10,
    valid: 1,
    fuzzed: 1,
  }),
  /** exact: Content-Length is the body's; short/long: it says less/more (then our side closes); garbage: any text. */
  framing: fc.constantFrom('exact', 'exact', 'exact', 'exact', 'exact', 'exact', 'short', 'long', 'garbage'),
  contentLength: numberText,
  body: optional(smallBody, 3),
});

describe.each(FUZZ_MODES)('fuzzing the tus endpoint ($name)', (mode) => {
  const rig = useFuzzRig(mode, errors);

  it(
    'POST /files/ with arbitrary creation headers and bodies: never a 5xx, only id-shaped uploads created',
    async () => {
      await fc.assert(
        fc.asyncProperty(creationCase, async (c) => {
          const req = creationRequest(c);
          const res = await rig().send(req);
          fc.pre(res !== undefined);
          expectBelow500(res.status, describeFuzzRequest(req), res.body);
          if (res.status === 201 && typeof res.headers.location !== 'string') {
            throw new Error(`201 without Location: ${describeFuzzRequest(req)}`);
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
    'PATCH/HEAD/DELETE on arbitrary upload paths and headers: never a 5xx, U keeps its offset',
    async () => {
      await fc.assert(
        fc.asyncProperty(uploadUrlCase, async (c) => {
          fc.pre(!isUOffset(c.uploadOffset));
          const path = `/files/${c.tail}${c.query === undefined ? '' : `?${c.query}`}`;
          const headers: Record<string, string | undefined> = {
            'Tus-Resumable': c.tusResumable,
            'Upload-Offset': c.uploadOffset,
            'Upload-Length': c.uploadLength,
            'Content-Type': c.contentType,
            'Upload-Checksum': c.uploadChecksum,
            'X-HTTP-Method-Override': c.methodOverride,
          };
          const body = c.body && Buffer.from(c.body);
          const what = `${c.method} ${JSON.stringify(rig().resolve(path)).slice(0, 300)} (${c.framing})`;
          if (c.framing === 'exact') {
            const res = await rig().send({ method: c.method, path, headers, body });
            fc.pre(res !== undefined);
            expectBelow500(res.status, what, res.body);
            await rig().checkCase(res.status);
            return;
          }
          const length = body?.length ?? 0;
          const res = await rig().sendRaw({
            method: c.method,
            target: path,
            headers: [
              ['Host', '127.0.0.1'],
              ...Object.entries(headers).flatMap(([name, value]) =>
                value === undefined ? [] : [[name, value] as const],
              ),
            ],
            body,
            contentLength:
              c.framing === 'short'
                ? String(Math.max(0, length - 1 - (length >> 1)))
                : c.framing === 'long'
                  ? String(length + 10)
                  : c.contentLength,
            // A client that promised more than it sent and stopped: the server must not wait forever.
            halfClose: c.framing !== 'short',
          });
          // Node's parser answers 400 for what does not match Content-Length (the bytes after a short
          // one are a second, garbage request; a body that ends early is an error) and may do so while
          // Ferry is still handling the request: the status says nothing of what the request did.
          if (res === undefined && c.framing === 'short') throw new Error(`no answer: ${what}`);
          if (res) expectBelow500(res.status, what);
          await rig().checkCase(undefined);
        }),
        fuzzParameters(),
      );
      await rig().checkState();
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});
