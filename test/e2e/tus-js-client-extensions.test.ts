/**
 * tus-js-client 4.3.1 (Node) against a real Ferry process with the client options that rely on tus
 * extensions or on protocol details beyond plain PATCH: `parallelUploads` (concatenation),
 * `overridePatchMethod` (X-HTTP-Method-Override), `uploadDataDuringCreation` (creation-with-upload)
 * and `uploadLengthDeferred` (creation-defer-length). Each upload runs once directly and once
 * through a proxy that keeps cutting TCP connections; the bytes Ferry serves back (fetched directly,
 * not through the proxy) must hash to the source's sha256.
 */
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { Upload } from 'tus-js-client';
import { describe, expect, it } from 'vitest';
import { sha256AndSizeOfUrl } from '../helpers/files.js';
import { spareCreationPost, type LossyProxy, type LossyProxyOptions } from '../helpers/lossy-proxy.js';
import { cutsReport, tusUploadWithRetries, useLossyRig, withoutFunctions } from '../helpers/lossy-rig.js';
import { tusHead, uploadId } from '../helpers/tus.js';

type UploadInput = ConstructorParameters<typeof Upload>[0];
type UploadOptions = ConstructorParameters<typeof Upload>[1];

const MiB = 1024 * 1024;
// Not a multiple of 4 or of any chunk size: the last partial and the last chunk are the odd ones.
const SIZE = 32 * MiB + 12_345;
const PARTS = 4;

const rig = useLossyRig(SIZE, { readBytes: true });

/** What tus-js-client sent, as seen by its `onBeforeRequest` hook (partial uploads included). */
interface SentRequest {
  method: string;
  url: string;
  override: string | undefined;
  concat: string | undefined;
  uploadOffset: string | undefined;
  uploadLength: string | undefined;
  deferLength: string | undefined;
}
/** What came back, from `onAfterResponse`. */
interface Received {
  method: string;
  override: string | undefined;
  status: number;
  location: string | undefined;
  uploadOffset: string | undefined;
}

interface Route {
  /** Through the cutting proxy instead of directly to Ferry. */
  lossy: boolean;
  /** Custom cut policy for the proxy. */
  cutAfterBytes?: LossyProxyOptions['cutAfterBytes'];
  maxCuts?: number;
}

interface Outcome {
  url: string;
  id: string;
  sent: SentRequest[];
  received: Received[];
  cuts: number;
}

/**
 * Uploads `input` with tus-js-client (directly or through a cutting proxy), then checks that
 * Ferry serves exactly the source bytes. Resolves with what was sent and received.
 */
async function upload(input: () => UploadInput, options: UploadOptions, route: Route): Promise<Outcome> {
  const { ferry, file } = rig;
  let endpoint = `${ferry.url}/files/`;
  let p: LossyProxy | undefined;
  if (route.lossy) {
    p = await rig.startProxy({
      maxCuts: route.maxCuts ?? 16,
      ...(route.cutAfterBytes ? { cutAfterBytes: route.cutAfterBytes } : {}),
    });
    endpoint = `${p.url}/files/`;
  }
  const sent: SentRequest[] = [];
  const received: Received[] = [];
  const { url, retries } = await tusUploadWithRetries(
    input(),
    {
      endpoint,
      metadata: { filename: 'extensions.bin', filetype: 'application/octet-stream' },
      ...options,
      onBeforeRequest: (req) => {
        sent.push({
          method: req.getMethod(),
          url: req.getURL(),
          override: req.getHeader('X-HTTP-Method-Override'),
          concat: req.getHeader('Upload-Concat'),
          uploadOffset: req.getHeader('Upload-Offset'),
          uploadLength: req.getHeader('Upload-Length'),
          deferLength: req.getHeader('Upload-Defer-Length'),
        });
      },
      onAfterResponse: (req, res) => {
        received.push({
          method: req.getMethod(),
          override: req.getHeader('X-HTTP-Method-Override'),
          status: res.getStatus(),
          location: res.getHeader('Location'),
          uploadOffset: res.getHeader('Upload-Offset'),
        });
      },
    },
    ferry,
    p,
  );

  const seed = p ? `proxy seed ${p.seed}` : 'direct';
  if (p) {
    console.log(`[extensions] ${JSON.stringify(withoutFunctions(options))}: ${cutsReport(p, SIZE, retries)}`);
    expect(p.cuts(), seed).toBeGreaterThanOrEqual(1);
    expect(url.startsWith(`${p.url}/files/`), seed).toBe(true);
  } else {
    expect(retries, 'no retries without the proxy').toEqual([]);
  }
  const id = uploadId(url);
  // Verify directly against Ferry, not through the proxy.
  expect(await sha256AndSizeOfUrl(`${ferry.url}/files/${id}`), seed).toEqual({ sha256: file.sha256, bytes: SIZE });
  return { url, id, sent, received, cuts: p?.cuts() ?? 0 };
}

/**
 * The concatenation checks: the final upload Ferry made lists, in order, the 4 partial uploads
 * tus-js-client named in its last `Upload-Concat: final;…` POST; each partial is complete and
 * marked partial; their lengths are tus-js-client's split of the file and add up to its size.
 */
async function expectFinalOfFourPartials(outcome: Outcome): Promise<void> {
  const finals = outcome.sent.filter((r) => r.concat?.startsWith('final;'));
  expect(finals.length).toBeGreaterThanOrEqual(1);
  const partUrls = finals.at(-1)!.concat!.slice('final;'.length).trim().split(' ');
  expect(partUrls).toHaveLength(PARTS);
  const partIds = partUrls.map(uploadId);
  expect(new Set(partIds).size).toBe(PARTS);
  // Every partial tus-js-client created said so.
  const partialPosts = outcome.sent.filter((r) => r.method === 'POST' && r.concat === 'partial' && !r.override);
  expect(partialPosts.length).toBeGreaterThanOrEqual(PARTS);

  const final = await tusHead(`${rig.ferry.url}/files/${outcome.id}`);
  expect(final.status).toBe(200);
  expect(final.response.headers['upload-concat']).toBe(`final;${partIds.map((id) => `/files/${id}`).join(' ')}`);
  expect(final.length).toBe(SIZE);
  expect(final.offset).toBe(SIZE);

  const quarter = Math.floor(SIZE / PARTS);
  const expectedLengths = [quarter, quarter, quarter, SIZE - 3 * quarter];
  const lengths: number[] = [];
  for (const id of partIds) {
    const part = await tusHead(`${rig.ferry.url}/files/${id}`);
    expect(part.status).toBe(200);
    expect(part.response.headers['upload-concat']).toBe('partial');
    expect(part.offset).toBe(part.length);
    lengths.push(part.length!);
  }
  expect(lengths).toEqual(expectedLengths);
}

/**
 * Every data-carrying request went out as POST + `X-HTTP-Method-Override: PATCH`, none as PATCH, and
 * Ferry handled them as PATCHes. Through the proxy, the HEAD after a cut shows an offset between
 * chunk boundaries: Ferry kept the bytes of the cut override POST as it does for a cut PATCH.
 */
function expectPatchesOverridden(outcome: Outcome, chunkSize: number): void {
  const minDataRequests = Math.ceil(SIZE / chunkSize);
  expect(outcome.sent.filter((r) => r.method === 'PATCH')).toEqual([]);
  const dataRequests = outcome.sent.filter((r) => r.uploadOffset !== undefined);
  expect(dataRequests.length).toBeGreaterThanOrEqual(minDataRequests);
  for (const r of dataRequests) {
    expect(r.method).toBe('POST');
    expect(r.override).toBe('PATCH');
    expect(r.url).toBe(outcome.url);
  }
  // Ferry treated them as PATCHes: 204 with the new offset (a creation would be 201 + Location).
  const answered = outcome.received.filter((r) => r.override === 'PATCH');
  // Through the proxy most of them are cut before their response; each still stored what arrived.
  expect(answered.length).toBeGreaterThanOrEqual(outcome.cuts > 0 ? 1 : minDataRequests);
  for (const r of answered) {
    expect(r.status).toBe(204);
    expect(r.location).toBeUndefined();
    expect(Number(r.uploadOffset)).toBeGreaterThan(0);
  }
  expect(answered.at(-1)!.uploadOffset).toBe(String(SIZE));
  if (outcome.cuts > 0) {
    const resumedAt = outcome.received.filter((r) => r.method === 'HEAD').map((r) => Number(r.uploadOffset));
    expect(resumedAt.some((offset) => offset % chunkSize !== 0)).toBe(true);
  }
}

const buffer = (): UploadInput => rig.bytes;
const fileStream = (): UploadInput => createReadStream(rig.file.path);
// tus-js-client needs a non-file Readable for uploadLengthDeferred: with an fs.ReadStream it sends
// a full chunkSize Content-Length for the short last chunk and hangs.
const plainStream = (): UploadInput => createReadStream(rig.file.path).pipe(new PassThrough());

for (const lossy of [false, true]) {
  const how = lossy ? 'through a proxy that cuts connections at random points (256 KiB–4 MiB)' : 'directly to Ferry';
  const after = lossy ? 'resumes after every cut and ' : '';

  describe(`tus-js-client extensions ${how}`, () => {
    it(`parallelUploads: 4 from a Buffer (one PATCH per partial) ${after}joins 4 partials into a final upload (HEAD: Upload-Concat final;<4 partials>, Upload-Length = file size) whose bytes match the source sha256`, async () => {
      const outcome = await upload(buffer, { parallelUploads: PARTS }, { lossy });
      await expectFinalOfFourPartials(outcome);
    });

    it(`parallelUploads: 4 from a Buffer in 3 MiB chunks ${after}joins 4 partials into a final upload whose bytes match the source sha256`, async () => {
      const outcome = await upload(buffer, { parallelUploads: PARTS, chunkSize: 3 * MiB }, { lossy });
      await expectFinalOfFourPartials(outcome);
      // 4 partials of ~8 MiB in 3 MiB chunks: at least 3 PATCHes each.
      expect(outcome.sent.filter((r) => r.method === 'PATCH').length).toBeGreaterThanOrEqual(3 * PARTS);
    });

    it(`parallelUploads: 4 from an fs.ReadStream (tus-js-client 4.3.1 slices it into ranged ReadStreams) ${after}joins 4 partials whose bytes match the source sha256`, async () => {
      const outcome = await upload(fileStream, { parallelUploads: PARTS, chunkSize: 4 * MiB }, { lossy });
      await expectFinalOfFourPartials(outcome);
    });

    it(`overridePatchMethod sends every chunk as POST with X-HTTP-Method-Override: PATCH, Ferry stores them as PATCHes, and the upload ${after}matches the source sha256`, async () => {
      const outcome = await upload(fileStream, { overridePatchMethod: true, chunkSize: 4 * MiB }, { lossy });
      expectPatchesOverridden(outcome, 4 * MiB);
    });

    it(`overridePatchMethod with uploadLengthDeferred declares the length on an overridden POST (Ferry applies Upload-Length as on a PATCH) and the upload ${after}matches the source sha256`, async () => {
      const outcome = await upload(
        plainStream,
        { overridePatchMethod: true, uploadLengthDeferred: true, chunkSize: 4 * MiB },
        { lossy },
      );
      expectPatchesOverridden(outcome, 4 * MiB);
      expect(outcome.sent.some((r) => r.override === 'PATCH' && r.uploadLength === String(SIZE))).toBe(true);
      const head = await tusHead(`${rig.ferry.url}/files/${outcome.id}`);
      expect({ length: head.length, offset: head.offset }).toEqual({ length: SIZE, offset: SIZE });
    });

    it(`uploadDataDuringCreation stores the first 4 MiB chunk with the creation POST (201 with Upload-Offset 4 MiB), and the upload ${after}matches the source sha256`, async () => {
      const outcome = await upload(
        fileStream,
        { uploadDataDuringCreation: true, chunkSize: 4 * MiB },
        { lossy, cutAfterBytes: spareCreationPost(4 * MiB) },
      );
      const creations = outcome.received.filter((r) => r.method === 'POST' && r.status === 201);
      expect(creations).toHaveLength(1);
      expect(creations[0]!.uploadOffset).toBe(String(4 * MiB));
      expect(creations[0]!.location).toBeDefined();
    });

    it(`uploadLengthDeferred from a plain stream in 4 MiB chunks creates with Upload-Defer-Length: 1, declares Upload-Length on a later PATCH, ${lossy ? 'resumes after every cut, ' : ''}and the bytes match the source sha256`, async () => {
      const outcome = await upload(plainStream, { uploadLengthDeferred: true, chunkSize: 4 * MiB }, { lossy });
      const creation = outcome.sent.find((r) => r.method === 'POST');
      expect(creation?.deferLength).toBe('1');
      expect(creation?.uploadLength).toBeUndefined();
      expect(outcome.sent.some((r) => r.method === 'PATCH' && r.uploadLength === String(SIZE))).toBe(true);
      const head = await tusHead(`${rig.ferry.url}/files/${outcome.id}`);
      expect({ length: head.length, offset: head.offset }).toEqual({ length: SIZE, offset: SIZE });
    });
  });
}
