import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InProcessFerry } from '../helpers/in-process-ferry.js';
import { uploadChecksum } from '../helpers/tus.js';

export type StartFerry = (env: Record<string, string>) => Promise<InProcessFerry>;

/**
 * The tus extensions @tus/server lacks and Ferry adds: checksum, concatenation, method override,
 * and the 412 for unsupported versions (tus 1.0.0, "Protocol Extensions").
 */

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTET = { 'Content-Type': 'application/offset+octet-stream' };

export function tusExtensionsSuite(mode: string, start: StartFerry): void {
  describe(`${mode}`, () => {
    let ferry: InProcessFerry;
    beforeAll(async () => {
      ferry = await start({ FERRY_MAX_SIZE: '1MiB' });
    });
    afterAll(async () => {
      await ferry.close();
    });

    async function createUpload(headers: Record<string, string> = {}, body?: Buffer): Promise<Response> {
      return fetch(`${ferry.url}/files/`, { method: 'POST', headers: { ...TUS, ...headers }, body });
    }
    async function newUpload(length: number, headers: Record<string, string> = {}): Promise<string> {
      const res = await createUpload({ 'Upload-Length': String(length), ...headers });
      expect(res.status).toBe(201);
      return res.headers.get('location')!;
    }
    const patch = (url: string, offset: number, body: Buffer, headers: Record<string, string> = {}) =>
      fetch(url, { method: 'PATCH', headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset), ...headers }, body });
    const head = (url: string) => fetch(url, { method: 'HEAD', headers: TUS });
    const bytesOf = async (url: string) => Buffer.from(await (await fetch(url)).arrayBuffer());

    describe('tus checksum extension', () => {
      it('advertises checksum and its algorithms in OPTIONS', async () => {
        const res = await fetch(`${ferry.url}/files/`, { method: 'OPTIONS' });
        expect(res.headers.get('tus-extension')?.split(',')).toContain('checksum');
        expect(res.headers.get('tus-checksum-algorithm')).toBe('sha1,md5,crc32c');
      });

      for (const algorithm of ['sha1', 'md5', 'crc32c'] as const) {
        it(`accepts a chunk whose ${algorithm} matches (204) and stores it`, async () => {
          const chunk = Buffer.from(`checked with ${algorithm}`);
          const url = await newUpload(chunk.length * 2);
          const res = await patch(url, 0, chunk, { 'Upload-Checksum': uploadChecksum(algorithm, chunk) });
          expect(res.status).toBe(204);
          expect(res.headers.get('upload-offset')).toBe(String(chunk.length));
        });

        it(`refuses a chunk whose ${algorithm} does not match with 460 and keeps none of its bytes`, async () => {
          const good = Buffer.from('good bytes');
          const bad = Buffer.from('corrupted!');
          const url = await newUpload(good.length + bad.length);
          expect((await patch(url, 0, good)).status).toBe(204);
          const res = await patch(url, good.length, bad, {
            'Upload-Checksum': uploadChecksum(algorithm, good),
          });
          expect(res.status).toBe(460);
          expect((await head(url)).headers.get('upload-offset')).toBe(String(good.length));
          // The upload continues from the unchanged offset, and only verified bytes are in it.
          const retry = await patch(url, good.length, bad, {
            'Upload-Checksum': uploadChecksum(algorithm, bad),
          });
          expect(retry.status).toBe(204);
          expect((await bytesOf(url)).equals(Buffer.concat([good, bad]))).toBe(true);
        });
      }

      it('verifies the body of a creation-with-upload request', async () => {
        const body = Buffer.from('created with a body');
        const wrong = await createUpload(
          {
            'Upload-Length': String(body.length),
            ...OCTET,
            'Upload-Checksum': uploadChecksum('sha1', Buffer.from('x')),
          },
          body,
        );
        expect(wrong.status).toBe(460);
        expect(wrong.headers.get('location')).toBeNull();
        const right = await createUpload(
          { 'Upload-Length': String(body.length), ...OCTET, 'Upload-Checksum': uploadChecksum('sha1', body) },
          body,
        );
        expect(right.status).toBe(201);
        expect(right.headers.get('upload-offset')).toBe(String(body.length));
        expect((await bytesOf(right.headers.get('location')!)).equals(body)).toBe(true);
      });

      it('answers 400 to a malformed or unsupported Upload-Checksum and stores nothing', async () => {
        const url = await newUpload(4);
        for (const header of [
          'sha1',
          'sha1 not base64!',
          'sha256 ' + uploadChecksum('sha1', Buffer.from('data')).split(' ')[1],
          'md5 AAAA',
          'a b c',
        ]) {
          const res = await patch(url, 0, Buffer.from('data'), { 'Upload-Checksum': header });
          expect(res.status, header).toBe(400);
        }
        expect((await head(url)).headers.get('upload-offset')).toBe('0');
      });

      it('verifies a 900 KiB chunk streamed through (memory stays bounded: no whole-body buffer)', async () => {
        const chunk = Buffer.alloc(900 * 1024, 0xab);
        const url = await newUpload(chunk.length);
        const res = await patch(url, 0, chunk, { 'Upload-Checksum': uploadChecksum('crc32c', chunk) });
        expect(res.status).toBe(204);
        expect(
          createHash('sha256')
            .update(await bytesOf(url))
            .digest('hex'),
        ).toBe(createHash('sha256').update(chunk).digest('hex'));
      });
    });

    describe('tus concatenation extension', () => {
      async function partial(data: Buffer): Promise<string> {
        const res = await createUpload(
          { 'Upload-Length': String(data.length), 'Upload-Concat': 'partial', ...OCTET },
          data,
        );
        expect(res.status).toBe(201);
        expect(res.headers.get('upload-concat')).toBe('partial');
        return res.headers.get('location')!;
      }
      const final = (urls: string[], headers: Record<string, string> = {}) =>
        createUpload({ 'Upload-Concat': `final;${urls.join(' ')}`, ...headers });

      it('advertises concatenation', async () => {
        const res = await fetch(`${ferry.url}/files/`, { method: 'OPTIONS' });
        expect(res.headers.get('tus-extension')?.split(',')).toContain('concatenation');
      });

      it('joins finished partial uploads in order into a final upload with the summed length', async () => {
        const parts = [Buffer.from('first-'), Buffer.from('second-'), Buffer.from('third')];
        const urls = [];
        for (const part of parts) urls.push(await partial(part));
        expect((await head(urls[0]!)).headers.get('upload-concat')).toBe('partial');
        // Relative and absolute URLs may be mixed.
        const res = await final([new URL(urls[0]!).pathname, urls[1]!, urls[2]!], {
          'Upload-Metadata': 'filename YS50eHQ=',
        });
        expect(res.status).toBe(201);
        const url = res.headers.get('location')!;
        const state = await head(url);
        const ids = urls.map((u) => new URL(u).pathname);
        expect(state.headers.get('upload-concat')).toBe(`final;${ids.join(' ')}`);
        expect(state.headers.get('upload-length')).toBe('18');
        expect(state.headers.get('upload-offset')).toBe('18');
        expect(state.headers.get('upload-metadata')).toBe('filename YS50eHQ=');
        expect((await bytesOf(url)).toString()).toBe('first-second-third');
      });

      it('refuses PATCH to a final upload with 403', async () => {
        const url = (await final([await partial(Buffer.from('abc'))])).headers.get('location')!;
        expect((await patch(url, 3, Buffer.from('more'))).status).toBe(403);
      });

      it('refuses invalid concatenations: unknown (404), unfinished, not partial, none, foreign URL (400)', async () => {
        const unknown = `${ferry.url}/files/AAAAAAAAAAAAAAAAAAAAAA`;
        expect((await final([unknown])).status).toBe(404);
        const unfinishedRes = await createUpload({ 'Upload-Length': '10', 'Upload-Concat': 'partial' });
        expect((await final([unfinishedRes.headers.get('location')!])).status).toBe(400);
        const plain = await newUpload(1);
        await patch(plain, 0, Buffer.from('x'));
        expect((await final([plain])).status).toBe(400);
        expect((await createUpload({ 'Upload-Concat': 'final;' })).status).toBe(400);
        expect((await final(['https://elsewhere.example/other/AAAAAAAAAAAAAAAAAAAAAA'])).status).toBe(400);
      });

      it('refuses a final upload larger than FERRY_MAX_SIZE with 413', async () => {
        const big = Buffer.alloc(600 * 1024, 1);
        const first = await partial(big);
        const second = await partial(big);
        expect((await final([first, second])).status).toBe(413);
      });
    });

    describe('X-HTTP-Method-Override', () => {
      it('makes a POST act as PATCH, HEAD and DELETE', async () => {
        const url = await newUpload(5);
        const asPatch = await fetch(url, {
          method: 'POST',
          headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'X-HTTP-Method-Override': 'PATCH' },
          body: Buffer.from('hello'),
        });
        expect(asPatch.status).toBe(204);
        expect(asPatch.headers.get('upload-offset')).toBe('5');
        const asHead = await fetch(url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'HEAD' } });
        expect(asHead.status).toBe(200);
        expect(asHead.headers.get('upload-offset')).toBe('5');
        const asDelete = await fetch(url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE' } });
        expect(asDelete.status).toBe(204);
        expect((await head(url)).status).toBe(404);
      });

      it('answers 400 to an override other than PATCH, HEAD or DELETE', async () => {
        const url = await newUpload(5);
        const res = await fetch(url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'PUT' } });
        expect(res.status).toBe(400);
      });
    });

    describe('Tus-Resumable versions', () => {
      it('answers 412 with Tus-Version to an unsupported version', async () => {
        const res = await createUpload({ 'Tus-Resumable': '0.2.2', 'Upload-Length': '1' });
        expect(res.status).toBe(412);
        expect(res.headers.get('tus-version')).toBe('1.0.0');
      });
    });
  });
}
