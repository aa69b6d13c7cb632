/**
 * fast-check arbitraries for everything Ferry parses: tus headers, upload metadata, paths, query
 * strings, JSON bodies and credentials. Ids, the API key and an upload token appear as placeholders
 * (`<<U>>`, `<<F>>`, `<<S0>>`…`<<S2>>`, `<<KEY>>`, `<<TOKEN>>`) that the rig resolves when sending
 * (see fuzz-rig.ts), so counterexamples say what they aimed at.
 */
import { createHmac } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { TEST_SECRETS } from './secrets.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const b64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

// --- Text ---------------------------------------------------------------------------------------

/** Printable ASCII, any code points (controls and lone surrogates included) or grapheme clusters. */
export const anyText = (maxLength = 40): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ maxLength }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength }) },
  );

/** A short pattern repeated to `min`…`max` characters (shrinks by length). */
export const longText = (
  min: number,
  max: number,
  pattern: fc.Arbitrary<string> = fc.string({ minLength: 1, maxLength: 6 }),
) =>
  fc
    .tuple(pattern, fc.integer({ min, max }))
    .map(([unit, length]) =>
      (unit.length === 0 ? 'a' : unit).repeat(Math.ceil(length / Math.max(1, unit.length))).slice(0, length),
    );

/** What someone might put where a number belongs. */
export const numberText: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.nat().map(String) },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String) },
  { weight: 1, arbitrary: fc.double().map(String) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '0',
      '00',
      '-0',
      '-1',
      '+1',
      '1e3',
      '1E400',
      '0x10',
      '0b1',
      '0o7',
      '1_000',
      '1.0',
      '.5',
      '5.',
      ' 6',
      '6 ',
      '\uff11\uff12',
      '\u0663',
      'NaN',
      'Infinity',
      '-Infinity',
      '9007199254740991',
      '9007199254740992',
      '9007199254740993',
      '9999999999999999',
      '18446744073709551616',
      '5368709120',
      '5368709121',
      '1,2',
      '1 2',
      'null',
      '[]',
      '{}',
      '1\u00a0',
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 17, max: 400 }).map((n) => '9'.repeat(n)) },
  { weight: 1, arbitrary: anyText(12) },
);

// --- Paths --------------------------------------------------------------------------------------

const IDS = ['<<U>>', '<<F>>', '<<S0>>', '<<S1>>', '<<S2>>'] as const;

/** One path segment: traversal, encodings, NUL, unicode, ids, very long, random. */
export const pathSegment: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '..',
      '.',
      '%2e%2e',
      '%2E%2E',
      '%2e',
      '.%2e',
      '%2e.',
      '..%2f',
      '..%2F..%2F',
      '..%5c',
      '..\\',
      '%2f',
      '%2F',
      '%5c',
      '%00',
      '%',
      '%zz',
      '%e9',
      '%C3%A9',
      '%F0%9F%98%80',
      '%ED%A0%80',
      '%c0%ae%c0%ae',
      '\u00e9',
      '\u{1F600}',
      '~',
      ';',
      ';jsessionid=1',
      '*',
      'files',
      'v1',
      'content',
      'events',
      'etc',
      'passwd',
      '__proto__',
      'constructor',
      'prototype',
      'null',
      '',
      '%20',
      '+',
      '?',
      '#',
      '?x=1',
      '&',
      '=',
    ),
  },
  { weight: 3, arbitrary: fc.constantFrom(...IDS) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 6000 }).map((n) => 'a'.repeat(n)) },
  { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{22}$/) },
);

const ID_SUFFIXES = [
  '',
  '/',
  '//',
  '/.',
  '/..',
  '/x',
  'x',
  '%00',
  '%2f',
  '%2F..',
  '..',
  '%2e%2e',
  ';x',
  '?x=1',
  '#x',
  '%20',
  '\u00e9',
  '/content',
  '/events',
  '%3F',
];
const ID_PREFIXES = ['x/', '../', '%2e%2e/', '..%2f', './', '/', 'files/', '%2f', 'a/b/', '<<S1>>/'];

/** What follows `/files/` or `/v1/files/`: segments, or a real id with something around it. */
export const pathTail: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...IDS) },
  { weight: 3, arbitrary: fc.array(pathSegment, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('/')) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...IDS), fc.constantFrom(...ID_SUFFIXES))
      .map(([id, suffix]) => `${id}${suffix}`),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...ID_PREFIXES), fc.constantFrom(...IDS))
      .map(([prefix, id]) => `${prefix}${id}`),
  },
);

// --- Query strings ------------------------------------------------------------------------------

const queryKey = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'limit',
      'cursor',
      'status',
      'folder',
      'tag',
      'batch',
      'limit[]',
      'status[]',
      'a[]',
      'limit[x]',
      '__proto__',
      '__proto__[x]',
      '__proto__[limit]',
      'constructor',
      'constructor[prototype][x]',
      'toString',
      'hasOwnProperty',
      'last_event_id',
      'expires',
      'signature',
      '',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

/** A cursor that decodes to `<date>|<id>` with odd dates and ids. */
const cursorLike = fc
  .tuple(
    fc.constantFrom(
      '2020-01-01T00:00:00.000Z',
      'garbage',
      '',
      '9999-99-99',
      '+275760-09-13T00:00:00.000Z',
      '-271821-04-20T00:00:00.000Z',
      '0',
    ),
    fc.oneof(anyText(12), fc.constant('<<F>>')),
    fc.constantFrom('|', '||', ''),
  )
  .map(([date, id, bar]) => b64url(`${date}${bar}${id}`));

export const queryValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: numberText },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'uploading',
      'queued',
      'processing',
      'completed',
      'failed',
      'expired',
      'COMPLETED',
      '',
      '%',
      '%zz',
      '%00',
      '%ED%A0%80',
      '%E9',
      '%C3%A9',
      'a%26b',
      '..%2f..',
      '%5B%5D',
    ),
  },
  { weight: 1, arbitrary: cursorLike },
  { weight: 2, arbitrary: anyText(30) },
  { weight: 1, arbitrary: longText(1000, 2000) },
);

/** `a=1&a=2&b[]=x&__proto__[x]=1…`: repeated, bracketed and prototype names, odd values. */
export const queryString: fc.Arbitrary<string> = fc
  .tuple(
    fc.array(fc.tuple(queryKey, fc.option(queryValue, { nil: undefined })), { maxLength: 8 }),
    fc.constantFrom('&', '&', ';', '&&'),
  )
  .map(([pairs, separator]) =>
    pairs.map(([key, value]) => (value === undefined ? key : `${key}=${value}`)).join(separator),
  );

// --- tus headers --------------------------------------------------------------------------------

export const tusResumable: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.constant('1.0.0') },
  { weight: 2, arbitrary: fc.constantFrom('1.0.0 ', '1.0', '0.2.2', '1.0.0, 1.0.0', '', '1.0.1', 'v1.0.0') },
  { weight: 1, arbitrary: anyText(8) },
);

const metaKey = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom('filename', 'name', 'filetype', 'type', 'folder', 'tags', 'batch', 'retention', 'owner'),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      'hasOwnProperty',
      'valueOf',
      '__defineGetter__',
      'isPrototypeOf',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', ' ', 'a b', 'k,', '\u043a\u043b\u044e\u0447', '\u00e9', '\t', 'a\u00a0b'),
  },
  { weight: 2, arbitrary: fc.string({ maxLength: 16 }) },
);

/** A metadata value as the client means it (sent base64-encoded, as tus requires). */
const metaPlain = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'report.pdf',
      'image/png',
      'text/html',
      'image/*',
      '*/*',
      'application/x-msdownload',
      '../../etc/passwd',
      '/',
      '..',
      'a//b/../c',
      '\u0000',
      'C:\\Windows\\system32',
      '3d',
      '0',
      '-1',
      '999999999999999d',
      '1e9d',
      '86400',
      '99999999999999999999',
      '1w',
      'soon',
      '1,2,3',
      ','.repeat(40),
      Array.from({ length: 40 }, (_, i) => `t${i}`).join(','),
      '{"__proto__":{"polluted":true}}',
      '<script>alert(1)</script>',
      '\u202e',
      '\ufeff',
    ),
  },
  { weight: 3, arbitrary: anyText(64) },
  // base64 grows by 4/3: up to ~12 KB on the wire.
  { weight: 1, arbitrary: longText(1, 9000) },
);

export type MetaValue = { readonly plain: string } | { readonly raw: string } | null;

/** A value that is not valid base64 (or not valid tus base64). */
const metaRaw = fc.oneof(
  { weight: 2, arbitrary: anyText(32) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      '=',
      '====',
      'YQ',
      'YQ=',
      'YQ===',
      'Y Q==',
      '!!!!',
      '%59%51%3D%3D',
      'YWJj\u00e9',
      'YWJj\n',
    ),
  },
  { weight: 1, arbitrary: longText(1000, 12000) },
);

export interface MetadataSpec {
  readonly entries?: readonly (readonly [string, MetaValue])[];
  readonly separator?: string;
  /** The whole header as it is. */
  readonly raw?: string;
}

export const metadata: fc.Arbitrary<MetadataSpec> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      entries: fc.array(
        fc.tuple(
          metaKey,
          fc.oneof(
            { weight: 5, arbitrary: metaPlain.map((plain): MetaValue => ({ plain })) },
            { weight: 2, arbitrary: metaRaw.map((raw): MetaValue => ({ raw })) },
            { weight: 1, arbitrary: fc.constant<MetaValue>(null) },
          ),
        ),
        { maxLength: 8 },
      ),
      separator: fc.constantFrom(',', ',', ', ', ',,', ' ,'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ raw: anyText(64) }) },
  // More keys than the 64 user keys allowed.
  {
    weight: 1,
    arbitrary: fc.integer({ min: 60, max: 200 }).map((n) => ({
      entries: Array.from({ length: n }, (_, i): readonly [string, MetaValue] => [`k${i}`, { plain: 'v' }]),
      separator: ',',
    })),
  },
);

/** Metadata a tus client could send: unique plain keys, base64 values (odd ones among them). */
export const validMetadata: fc.Arbitrary<MetadataSpec> = fc.record({
  entries: fc.uniqueArray(
    fc.tuple(
      fc.oneof(
        {
          weight: 3,
          arbitrary: fc.constantFrom('filename', 'name', 'filetype', 'type', 'folder', 'tags', 'batch', 'retention'),
        },
        { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.~-]{1,12}$/) },
      ),
      fc.oneof(
        { weight: 6, arbitrary: metaPlain.map((plain): MetaValue => ({ plain })) },
        { weight: 1, arbitrary: fc.constant<MetaValue>(null) },
      ),
    ),
    { maxLength: 6, selector: ([key]) => key },
  ),
  separator: fc.constant(','),
});

/** Absent, a valid value, or a fuzzed one: most cases stay valid enough to reach deep parsers. */
export const mostly = <T>(
  valid: fc.Arbitrary<T>,
  fuzzed: fc.Arbitrary<T>,
  weights: { absent?: number; valid?: number; fuzzed?: number } = {},
): fc.Arbitrary<T | undefined> =>
  fc.oneof(
    // Cross-shrinking lets a counterexample shrink a value away (to absent), not only within its kind.
    { withCrossShrink: true },
    { weight: weights.absent ?? 1, arbitrary: fc.constant(undefined) },
    { weight: weights.valid ?? 6, arbitrary: valid },
    { weight: weights.fuzzed ?? 2, arbitrary: fuzzed },
  );

export function renderMetadata(spec: MetadataSpec): string {
  if (spec.raw !== undefined) return spec.raw;
  return (spec.entries ?? [])
    .map(([key, value]) => (value === null ? key : `${key} ${'plain' in value ? b64(value.plain) : value.raw}`))
    .join(spec.separator ?? ',');
}

const concatUrl = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '/files/<<S2>>',
      '/files/<<U>>',
      '/files/<<F>>',
      '/files/<<S0>>',
      '/files/<<S1>>',
      'http://127.0.0.1/files/<<S2>>',
      'http://evil.example/files/<<S2>>',
      '/files/../files/<<S2>>',
      '/files/%2e%2e/<<S2>>',
      '/files/<<S2>>/',
      '/files/<<S2>>?x#y',
      '/files/<<S2>>%00',
      '/files/<<S2>>/../<<S2>>',
      '..',
      '/files/..',
      '/files/',
      '/files//',
      '//evil/files/x',
      'javascript:alert(1)',
      'file:///etc/passwd',
      'http://[::1',
      'http://a:99999/files/x',
      '/files/%zz',
    ),
  },
  { weight: 1, arbitrary: fc.webUrl() },
  { weight: 1, arbitrary: pathTail.map((tail) => `/files/${tail}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
);

export const uploadConcat: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'partial',
      'Partial',
      'partial;',
      ' partial ',
      'final',
      'final;',
      'final; ',
      'FINAL;/files/x',
    ),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.constantFrom('final;', 'final; ', 'final;  '),
        fc.array(concatUrl, { maxLength: 5 }),
        fc.constantFrom(' ', ' ', '  ', '\t', ','),
      )
      .map(([prefix, urls, separator]) => `${prefix}${urls.join(separator)}`),
  },
  { weight: 1, arbitrary: anyText(40) },
);

export const uploadChecksum: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom('sha1', 'md5', 'crc32c', 'SHA1', 'sha256', 'crc32', ''),
        fc.uint8Array({ maxLength: 24 }).map((bytes) => Buffer.from(bytes).toString('base64')),
      )
      .map(([algorithm, digest]) => `${algorithm} ${digest}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'sha1',
      'sha1 ',
      ' sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      'md5 ====',
      'md5 AAAAAAAAAAAAAAAAAAAAAA== extra',
      'crc32c AAAAAA==',
      'crc32c AAAA',
      'crc32c  AAAAAA==',
    ),
  },
  { weight: 1, arbitrary: anyText(40) },
);

export const methodOverride: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'PATCH',
      'patch',
      ' DELETE ',
      'HEAD',
      'GET',
      'POST',
      'OPTIONS',
      'PUT',
      'PATCH, DELETE',
      'DELETE\t',
      '',
    ),
  },
  { weight: 1, arbitrary: anyText(10) },
);

export const tusContentType: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constant('application/offset+octet-stream') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/offset+octet-stream; charset=utf-8',
      'APPLICATION/OFFSET+OCTET-STREAM',
      'application/offset+octet-streamx',
      'application/json',
      'multipart/form-data; boundary=x',
      'text/plain',
      '',
    ),
  },
  { weight: 1, arbitrary: anyText(30) },
);

export const smallBody = fc.uint8Array({ maxLength: 300 });

// --- Downloads and events ---------------------------------------------------------------------

export const rangeHeader: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'bytes=0-0',
      'bytes=-1',
      'bytes=0-',
      'bytes=5-2',
      'bytes=99999999999999999999-',
      'bytes=-99999999999999999999',
      'bytes=0-99999999999999999999',
      'bytes=0-1,2-3',
      'bytes=-0',
      'bytes=-',
      'bytes= 1 - 2 ',
      'BYTES=1-2',
      'items=0-1',
      'bytes=1e3-',
      'bytes=0x1-2',
      '',
    ),
  },
  { weight: 2, arbitrary: fc.tuple(numberText, numberText).map(([first, last]) => `bytes=${first}-${last}`) },
  { weight: 1, arbitrary: anyText(30) },
);

export const etagHeader: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('*', 'W/"x"', '""', '<<FETAG>>', '"x", <<FETAG>>', '"<<F>>-0"', ',,,', '"'),
  anyText(40),
);

export const signature: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^[0-9a-f]{64}$/),
  fc.stringMatching(/^[0-9a-fA-F]{63,65}$/),
  fc.constantFrom('', 'x', '00', '0'.repeat(64), 'g'.repeat(64)),
  anyText(70),
);

export const lastEventId: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: numberText },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      '0',
      '-1',
      '1e400',
      '99999999999999999999999999',
      String(Date.now() * 1000),
      'null',
      '__proto__',
    ),
  },
  { weight: 2, arbitrary: anyText(30) },
  { weight: 1, arbitrary: longText(1000, 8000) },
);

// --- JSON bodies (POST /v1/tokens) ------------------------------------------------------------

const tokenFields = fc.record(
  {
    max_size: fc.oneof(
      fc.integer(),
      fc.double(),
      fc.constantFrom(
        1e308,
        -1e308,
        0,
        -0,
        Number.MAX_SAFE_INTEGER,
        Number.MAX_SAFE_INTEGER + 2,
        5368709120,
        5368709121,
        1.5,
      ),
      numberText,
      fc.jsonValue(),
    ),
    allowed_types: fc.oneof(
      fc.constantFrom(
        'image/*',
        '*',
        '*/*',
        'image/png,application/pdf',
        '',
        ',',
        ' , ',
        'IMAGE/PNG',
        'text/html;charset=utf-8',
        'a/b/c',
        'x'.repeat(2049),
      ),
      fc.array(fc.oneof(fc.constantFrom('image/*', '*/*', 'x', ''), anyText(20)), { maxLength: 70 }),
      anyText(40),
      fc.jsonValue(),
    ),
    folder: fc.oneof(
      fc.constantFrom('../..', '/', '..', '.', 'a/../../b', '\u0000', '', ' ', 'x'.repeat(513)),
      anyText(40),
      fc.jsonValue(),
    ),
    expires_in: fc.oneof(fc.integer(), fc.constantFrom(0, 1, 86400, 86401, 1e308, -1, 0.5), numberText, fc.jsonValue()),
  },
  { requiredKeys: [] },
);

const nesting = fc
  .tuple(
    fc.integer({ min: 1, max: 9000 }),
    fc.constantFrom(['[', '1', ']'], ['{"a":', '1', '}'], ['{"__proto__":', '{}', '}'], ['{"max_size":', '1', '}']),
  )
  .map(([depth, [open, inner, close]]) => `${open.repeat(depth)}${inner}${close.repeat(depth)}`);

/** A body that gzip-inflates to 10 MB of spaces. */
const GZIP_BOMB = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20));

export interface TokenBody {
  readonly text?: string;
  readonly bytes?: Uint8Array;
  readonly gzip?: boolean;
}

export const tokenBody: fc.Arbitrary<TokenBody> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        tokenFields,
        fc.dictionary(
          fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.string({ maxLength: 8 })),
          fc.jsonValue(),
          { maxKeys: 2 },
        ),
      )
      .map(([fields, extra]) => ({ text: JSON.stringify({ ...extra, ...fields }) })),
  },
  { weight: 2, arbitrary: fc.json().map((text) => ({ text })) },
  { weight: 1, arbitrary: fc.anything().map((value) => ({ text: String(JSON.stringify(value)) })) },
  { weight: 1, arbitrary: nesting.map((text) => ({ text })) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        '{"__proto__":{"max_size":1}}',
        '{"__proto__":{"folder":"x"},"folder":"y"}',
        '{"constructor":{"prototype":{"polluted":1}}}',
        '{"__proto__":null}',
        '{"max_size":1,"max_size":"x"}',
        '{"folder":"a","folder":"b"}',
        '{"max_size":1e308}',
        '{"max_size":1e309}',
        '{"max_size":-1e309}',
        '{"expires_in":123456789012345678901234567890}',
        '{"max_size":1.0}',
        '{"max_size":5e-324}',
        '{"max_size":"10"}',
        '{"expires_in":"3600"}',
        '{"allowed_types":1}',
        '{"folder":1}',
        '{"max_size":[1]}',
        '{"max_size":{"valueOf":1}}',
        '{}',
        '',
        'null',
        'true',
        '"x"',
        '1',
        '[]',
        '{',
        '}',
        '{"a":}',
        '\ufeff{}',
        'NaN',
        '{max_size:1}',
        "{'a':1}",
      )
      .map((text) => ({ text })),
  },
  { weight: 1, arbitrary: anyText(60).map((text) => ({ text })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ bytes })) },
  { weight: 1, arbitrary: longText(16_000, 20_000).map((folder) => ({ text: JSON.stringify({ folder }) })) },
  { weight: 1, arbitrary: fc.constant({ bytes: new Uint8Array(GZIP_BOMB), gzip: true }) },
  { weight: 1, arbitrary: fc.constantFrom('{}', '{"expires_in":60}').map((text) => ({ text, gzip: true })) },
);

export function renderTokenBody(body: TokenBody): Buffer {
  const bytes = body.bytes ? Buffer.from(body.bytes) : Buffer.from(body.text ?? '', 'utf8');
  return body.gzip && !body.bytes ? gzipSync(bytes) : bytes;
}

export const jsonContentType: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constant('application/json') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      'application/json; charset=foo',
      'application/json; charset=',
      'APPLICATION/JSON',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/merge-patch+json',
      '',
      ';',
    ),
  },
  { weight: 1, arbitrary: anyText(30) },
);

export const contentEncoding: fc.Arbitrary<string> = fc.constantFrom(
  'identity',
  'gzip',
  'deflate',
  'br',
  'x-gzip',
  'compress',
  'GZIP',
  'gzip, gzip',
  'foo',
  '',
);

// --- Credentials ------------------------------------------------------------------------------

/** A JWT over these header and payload (objects, or JSON text as it is), HS256-signed with `secret`. */
function jwt(header: object, payload: object | string, secret: string | undefined): string {
  const json = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const unsigned = `${b64url(JSON.stringify(header))}.${b64url(json)}`;
  const mac = secret === undefined ? 'x' : createHmac('sha256', secret).update(unsigned).digest('base64url');
  return `${unsigned}.${mac}`;
}

const CLAIMS = { iss: 'ferry', aud: 'ferry-upload', sub: 'acme', exp: 4_102_444_800 };
const SECRET = TEST_SECRETS.FERRY_TOKEN_SECRET!;

/** Forged and odd JWTs: alg none, wrong secret, expired, HS512, missing subject, odd claims. */
const forgedTokens = [
  jwt({ alg: 'none', typ: 'JWT' }, CLAIMS, undefined),
  jwt({ alg: 'HS256', typ: 'JWT' }, CLAIMS, 'not-the-secret-0123456789abcdef'),
  jwt({ alg: 'HS256', typ: 'JWT' }, { ...CLAIMS, exp: 1 }, SECRET),
  jwt({ alg: 'HS512', typ: 'JWT' }, CLAIMS, SECRET),
  jwt({ alg: 'HS256', typ: 'JWT' }, { ...CLAIMS, sub: undefined }, SECRET),
  jwt({ alg: 'HS256', typ: 'JWT' }, { ...CLAIMS, aud: 'other' }, SECRET),
  jwt({ alg: 'HS256', typ: 'JWT' }, { ...CLAIMS, max_size: 'x', allowed_types: 'image/*', folder: 1 }, SECRET),
  jwt({ alg: 'HS256', typ: 'JWT' }, { ...CLAIMS, sub: '' }, SECRET),
  jwt({ alg: 'HS256', typ: 'JWT', crit: ['x'] }, CLAIMS, SECRET),
  jwt({ alg: 'HS256', typ: 'JWT' }, `{"__proto__":{"sub":"x"},${JSON.stringify(CLAIMS).slice(1)}`, SECRET),
  jwt({ alg: 'HS256', typ: 'JWT' }, '[1]', SECRET),
  jwt({ alg: 'HS256', typ: 'JWT' }, 'not json', SECRET),
];

const segment64 = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
  fc.jsonValue().map((value) => b64url(JSON.stringify(value)) || 'e30'),
);
const jwtShaped = fc.tuple(segment64, segment64, segment64).map((parts) => parts.join('.'));

export const credential: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'Bearer <<KEY>>',
      'bearer <<KEY>>',
      'BEARER <<KEY>>',
      'Bearer  <<KEY>>  ',
      'Bearer\t<<KEY>>',
      'Bearer <<KEY>> x',
      'Bearer <<KEY>>x',
      'Bearer x<<KEY>>',
      'Bearer',
      'Bearer ',
      'Basic <<KEY>>',
      '<<KEY>>',
      ' <<KEY>> ',
      'Bearer <<TOKEN>>',
      'Bearer <<TOKEN>>x',
      'Bearer <<TOKEN>>.x',
      'Bearer x<<TOKEN>>',
      'Bearer <<TOKEN>> <<KEY>>',
      '<<TOKEN>>',
      'a.b.c',
      'Bearer a.b.c',
      'Bearer ..',
      'Bearer a..c',
      '',
    ),
  },
  { weight: 2, arbitrary: fc.constantFrom(...forgedTokens).map((token) => `Bearer ${token}`) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom('Bearer ', 'bearer ', '', 'Token ', 'Basic '),
        fc.oneof(jwtShaped, anyText(60), longText(1000, 15_000)),
      )
      .map(([scheme, value]) => `${scheme}${value}`),
  },
  { weight: 2, arbitrary: anyText(60) },
);

// --- Raw request targets ------------------------------------------------------------------------

const authority = fc.constantFrom(
  '127.0.0.1',
  'evil.example',
  'x:99999',
  'x:-1',
  'x:abc',
  '[::1]',
  '[::1',
  '[bad',
  'user:pass@host',
  '@',
  'a..b',
  '%41',
  '\u00e9',
  '',
  ':80',
  'host:0',
  '1.2.3.4:65536',
);
const scheme = fc.constantFrom('http://', 'https://', 'HTTP://', 'ftp://', 'file://', 'http:/', 'http:', '//', '');
const routePath = fc.constantFrom(
  '/files/',
  '/files',
  '/files/<<U>>',
  '/v1/files',
  '/v1/files/<<F>>/content',
  '/v1/files/<<F>>/events',
  '/v1/events',
  '/healthz',
  '/',
  '',
);

/** Request targets: traversal, encoded separators, NUL, absolute-form with odd authorities, random. */
export const requestTarget: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '/..%2f..%2fetc/passwd',
      '//files//',
      '/files/%00',
      '/files/..',
      '/files/../v1/files',
      '/v1/files/..%2f..%2f',
      '/./files/',
      '/files/./',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/files%2f<<U>>',
      '/FILES/<<U>>',
      '/Files/',
      '/v1/FILES',
      '*',
      '/healthz/..',
      '/v1/files/<<F>>/content/..',
      '/v1/files/<<F>>%2fcontent',
      '/files/<<U>>%00',
      '/files/<<U>>/',
      '/files/x/<<U>>',
      '/?',
      '/#',
      '/;',
      '/files;/',
      '/files/;<<U>>',
      '/v1/events',
      '/v1/events?batch=%00',
      '/v1//events',
      '/v1/files/<<F>>/events',
      '/v1/files/<<F>>/events/..',
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(scheme, authority, routePath, fc.option(queryString, { nil: undefined }))
      .map(([s, a, p, q]) => `${s}${a}${p}${q === undefined ? '' : `?${q}`}`),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom('/', '//', '/files/', '/v1/files/', '/v1/', '/files/<<U>>/', '/v1/files/<<F>>/'), pathTail)
      .map(([prefix, tail]) => `${prefix}${tail}`),
  },
  // Anything but the bytes that end a request line (CR, LF) and the space that separates it.
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((text) => text.replace(/[\r\n ]/g, '')) },
);

export const rawMethod: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('GET', 'POST', 'HEAD', 'DELETE', 'PATCH', 'OPTIONS', 'PUT') },
  { weight: 1, arbitrary: fc.constantFrom('get', 'M-SEARCH', 'TRACE', 'PROPFIND', 'FOO', 'PURGE', 'CONNECT') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,10}$/) },
);

export const hostHeader: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constant('127.0.0.1') },
  { weight: 1, arbitrary: authority },
  { weight: 1, arbitrary: anyText(20) },
);

/** Header text for a raw request: CR and LF would end the header line, so they go. */
export const headerLineSafe = (text: string): string => text.replace(/[\r\n]/g, '');
