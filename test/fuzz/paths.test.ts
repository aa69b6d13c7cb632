/**
 * Property-based fuzzing of request targets as they arrive on the wire: traversal (`..`, `%2e%2e`,
 * `..%2f`), NUL, doubled slashes, unicode, absolute-form URLs with odd authorities, odd Host headers
 * and methods, written on a raw socket so nothing normalises them first. Every answer is below 500
 * and comes within the timeout; the process stays up; U, F and the listing change only through
 * accepted requests (see fuzz-rig().ts). FUZZ_RUNS sets the cases per property (150 by default;
 * `npm run fuzz` runs 2000).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostHeader, rawMethod, requestTarget } from '../helpers/fuzz-arbitraries.js';
import {
  FUZZ_MODES,
  useFuzzRig,
  FUZZ_TEST_TIMEOUT_MS,
  expectBelow500,
  fuzzParameters,
  watchProcessErrors,
} from '../helpers/fuzz-rig.js';

const errors = watchProcessErrors();

const targetCase = fc.record({
  method: rawMethod,
  target: requestTarget,
  /** Absent: no Host header at all (HTTP/1.1 requires one). */
  host: fc.option(hostHeader, { nil: undefined, freq: 10 }),
  /** With tus creation headers a POST creates an upload wherever it lands. */
  tus: fc.boolean(),
});

describe.each(FUZZ_MODES)('fuzzing request targets ($name)', (mode) => {
  const rig = useFuzzRig(mode, errors);

  it(
    'arbitrary request targets, methods and Host headers: never a 5xx, always an answer',
    async () => {
      await fc.assert(
        fc.asyncProperty(targetCase, async (c) => {
          const headers: [string, string][] = [];
          if (c.host !== undefined) headers.push(['Host', c.host]);
          if (c.tus) headers.push(['Tus-Resumable', '1.0.0'], ['Upload-Length', '1']);
          const res = await rig().sendRaw({ method: c.method, target: c.target, headers, contentLength: '0' });
          const what = `${c.method} ${JSON.stringify(rig().resolve(c.target))} (Host ${JSON.stringify(c.host)})`;
          // Node closes CONNECT requests it has no handler for without an answer; that is not Ferry's.
          if (res === undefined && c.method !== 'CONNECT') throw new Error(`closed without an answer: ${what}`);
          if (res) expectBelow500(res.status, what);
          await rig().checkCase(res?.status);
        }),
        fuzzParameters(),
      );
      await rig().checkState();
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it('answers 400 to a Host header no URL can have (port 65536), in origin and absolute form (found by this fuzzer)', async () => {
    for (const target of ['/files/', 'http://127.0.0.1/files/', '/v1/files']) {
      const res = await rig().sendRaw({
        method: 'GET',
        target,
        headers: [['Host', '1.2.3.4:65536']],
        contentLength: '0',
      });
      expect(res?.status, target).toBe(400);
    }
  });
});
