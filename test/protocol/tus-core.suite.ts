import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InProcessFerry } from '../helpers/in-process-ferry.js';

export type StartFerry = (env: Record<string, string>) => Promise<InProcessFerry>;

/**
 * tus 1.0.0 core protocol and the extensions Ferry's foundation supports, walked section by section
 * against a real server on loopback (disk storage).
 */

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTET = { 'Content-Type': 'application/offset+octet-stream' };
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

export function tusCoreSuite(mode: string, start: StartFerry): void {
  describe(`${mode}`, () => {
    let ferry: InProcessFerry;
    beforeAll(async () => {
      ferry = await start({ FERRY_MAX_SIZE: '1MiB' });
    });
    afterAll(async () => {
      await ferry.close();
    });

    async function create(headers: Record<string, string>, body?: Buffer): Promise<Response> {
      return fetch(`${ferry.url}/files/`, { method: 'POST', headers: { ...TUS, ...headers }, body });
    }

    async function createUpload(length: number, metadata?: string): Promise<string> {
      const res = await create({
        'Upload-Length': String(length),
        ...(metadata ? { 'Upload-Metadata': metadata } : {}),
      });
      expect(res.status).toBe(201);
      const location = res.headers.get('location');
      expect(location).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/files\/[A-Za-z0-9_-]{22}$/);
      return location!;
    }

    const patch = (url: string, offset: number, body: Buffer, headers: Record<string, string> = {}) =>
      fetch(url, { method: 'PATCH', headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset), ...headers }, body });
    const head = (url: string) => fetch(url, { method: 'HEAD', headers: TUS });

    describe('tus core protocol: OPTIONS', () => {
      it('advertises version, extensions and the maximum size', async () => {
        const res = await fetch(`${ferry.url}/files/`, { method: 'OPTIONS' });
        expect(res.status).toBe(204);
        expect(res.headers.get('tus-version')).toBe('1.0.0');
        expect(res.headers.get('tus-resumable')).toBe('1.0.0');
        expect(res.headers.get('tus-max-size')).toBe(String(1024 * 1024));
        expect(res.headers.get('tus-extension')?.split(',')).toEqual(
          expect.arrayContaining([
            'creation',
            'creation-with-upload',
            'creation-defer-length',
            'termination',
            'expiration',
          ]),
        );
      });

      it('lets browsers read every tus header (CORS expose list)', async () => {
        const res = await fetch(`${ferry.url}/files/`, {
          method: 'OPTIONS',
          headers: { Origin: 'https://app.example' },
        });
        const exposed = res.headers.get('access-control-expose-headers')?.toLowerCase() ?? '';
        for (const header of [
          'upload-offset',
          'location',
          'upload-expires',
          'upload-length',
          'tus-resumable',
          'tus-version',
        ]) {
          expect(exposed).toContain(header);
        }
        expect(res.headers.get('access-control-allow-origin')).toBeTruthy();
        expect(res.headers.get('access-control-allow-methods')).toContain('PATCH');
      });
    });

    describe('tus core protocol: HEAD and PATCH', () => {
      it('reports offset, length and metadata of a new upload with no-store caching', async () => {
        const url = await createUpload(10, `filename ${b64('a.txt')}`);
        const res = await head(url);
        expect(res.status).toBe(200);
        expect(res.headers.get('upload-offset')).toBe('0');
        expect(res.headers.get('upload-length')).toBe('10');
        expect(res.headers.get('upload-metadata')).toBe(`filename ${b64('a.txt')}`);
        expect(res.headers.get('cache-control')).toBe('no-store');
      });

      it('appends chunks at the right offsets and reports the new offset after each', async () => {
        const url = await createUpload(10);
        const first = await patch(url, 0, Buffer.from('hello'));
        expect(first.status).toBe(204);
        expect(first.headers.get('upload-offset')).toBe('5');
        expect((await head(url)).headers.get('upload-offset')).toBe('5');
        const second = await patch(url, 5, Buffer.from('world'));
        expect(second.headers.get('upload-offset')).toBe('10');
        const download = await fetch(url);
        expect(Buffer.from(await download.arrayBuffer()).toString()).toBe('helloworld');
      });

      it('answers 409 to a PATCH at the wrong offset and keeps the stored bytes unchanged', async () => {
        const url = await createUpload(10);
        await patch(url, 0, Buffer.from('abc'));
        const res = await patch(url, 1, Buffer.from('XYZ'));
        expect(res.status).toBe(409);
        expect((await head(url)).headers.get('upload-offset')).toBe('3');
      });

      it('answers 412 when Tus-Resumable is missing', async () => {
        const url = await createUpload(10);
        const res = await fetch(url, { method: 'HEAD' });
        expect(res.status).toBe(412);
      });

      it('answers 415 to a PATCH without the tus content type and keeps the offset', async () => {
        const url = await createUpload(4);
        for (const contentType of ['text/plain', undefined]) {
          const res = await fetch(url, {
            method: 'PATCH',
            headers: { ...TUS, 'Upload-Offset': '0', ...(contentType ? { 'Content-Type': contentType } : {}) },
            body: Buffer.from('data'),
          });
          expect(res.status, String(contentType)).toBe(415);
        }
        expect((await head(url)).headers.get('upload-offset')).toBe('0');
      });

      it('answers 400 to a PATCH without a valid Upload-Offset', async () => {
        const url = await createUpload(4);
        for (const offset of [undefined, '-1', 'abc', '1.5']) {
          const res = await fetch(url, {
            method: 'PATCH',
            headers: { ...TUS, ...OCTET, ...(offset ? { 'Upload-Offset': offset } : {}) },
            body: Buffer.from('data'),
          });
          expect(res.status, String(offset)).toBe(400);
        }
        expect((await head(url)).headers.get('upload-offset')).toBe('0');
      });

      it('answers 413 to a chunked PATCH body longer than the upload, keeping only what fits', async () => {
        const url = await createUpload(4);
        const { port, pathname } = new URL(url);
        const status = await new Promise<number>((resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              port,
              path: pathname,
              method: 'PATCH',
              headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' },
            },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', reject);
          // No Content-Length: Node sends the body chunked, so only the stream itself can be limited.
          req.write('0123');
          req.end('456789');
        });
        expect(status).toBe(413);
        const after = await head(url);
        expect(after.headers.get('upload-offset')).toBe('4');
        expect(Buffer.from(await (await fetch(url)).arrayBuffer()).toString()).toBe('0123');
      });

      it('answers 413 to a PATCH that would exceed the declared length', async () => {
        const url = await createUpload(4);
        const res = await patch(url, 0, Buffer.from('too long'));
        expect(res.status).toBe(413);
        expect((await head(url)).headers.get('upload-offset')).toBe('0');
      });

      it('answers 404 for unknown and malformed upload ids', async () => {
        for (const id of ['AAAAAAAAAAAAAAAAAAAAAA', 'not-an-id', '..%2F..%2Fetc%2Fpasswd', '%00']) {
          const res = await head(`${ferry.url}/files/${id}`);
          expect(res.status, id).toBe(404);
        }
        expect((await patch(`${ferry.url}/files/AAAAAAAAAAAAAAAAAAAAAA`, 0, Buffer.from('x'))).status).toBe(404);
      });
    });

    describe('tus creation extension', () => {
      it('answers 413 when Upload-Length is above FERRY_MAX_SIZE', async () => {
        const res = await create({ 'Upload-Length': String(1024 * 1024 + 1) });
        expect(res.status).toBe(413);
      });

      it('accepts exactly FERRY_MAX_SIZE', async () => {
        const res = await create({ 'Upload-Length': String(1024 * 1024) });
        expect(res.status).toBe(201);
      });

      it('answers 400 for malformed Upload-Metadata', async () => {
        for (const metadata of ['filename not*base64!', 'a b c', ' , ', 'key\u00e9 dmFsdWU=']) {
          const res = await create({ 'Upload-Length': '1', 'Upload-Metadata': metadata });
          expect(res.status, metadata).toBe(400);
        }
      });

      it('treats an empty Upload-Metadata header as no metadata', async () => {
        const res = await create({ 'Upload-Length': '1', 'Upload-Metadata': '' });
        expect(res.status).toBe(201);
        const headRes = await head(res.headers.get('location')!);
        expect(headRes.headers.get('upload-metadata')).toBeNull();
      });

      it('answers 400 without Upload-Length or Upload-Defer-Length, and with a negative length', async () => {
        expect((await create({})).status).toBe(400);
        expect((await create({ 'Upload-Length': '-1' })).status).toBe(400);
      });

      it('answers 400 to both Upload-Length and Upload-Defer-Length, to a defer value other than 1, a non-integer length and an unknown Upload-Concat', async () => {
        const cases: Record<string, string>[] = [
          { 'Upload-Length': '5', 'Upload-Defer-Length': '1' },
          { 'Upload-Defer-Length': '0' },
          { 'Upload-Defer-Length': 'yes' },
          { 'Upload-Length': '1.5' },
          { 'Upload-Length': 'abc' },
          { 'Upload-Length': '5', 'Upload-Concat': 'whole' },
        ];
        for (const headers of cases) {
          const res = await create(headers);
          expect(res.status, JSON.stringify(headers)).toBe(400);
          expect(res.headers.get('location'), JSON.stringify(headers)).toBeNull();
        }
      });

      it('answers 412 to a creation without Tus-Resumable and creates nothing', async () => {
        const res = await fetch(`${ferry.url}/files/`, { method: 'POST', headers: { 'Upload-Length': '5' } });
        expect(res.status).toBe(412);
        expect(res.headers.get('location')).toBeNull();
      });

      it('answers a creation with 201, Location, Tus-Resumable, Upload-Expires and no Upload-Offset', async () => {
        const res = await create({ 'Upload-Length': '5' });
        expect(res.status).toBe(201);
        expect(res.headers.get('tus-resumable')).toBe('1.0.0');
        expect(res.headers.get('upload-offset')).toBeNull();
        const expires = Date.parse(res.headers.get('upload-expires') ?? '');
        expect(expires).toBeGreaterThan(Date.now());
        expect((await head(res.headers.get('location')!)).headers.get('upload-length')).toBe('5');
      });

      it('creates a zero-length upload that is complete at once and downloads as empty', async () => {
        const url = await createUpload(0);
        const res = await head(url);
        expect(res.headers.get('upload-offset')).toBe('0');
        expect(res.headers.get('upload-expires')).toBeNull();
        const download = await fetch(url);
        expect(download.status).toBe(200);
        expect((await download.arrayBuffer()).byteLength).toBe(0);
      });
    });

    describe('tus creation-with-upload extension', () => {
      it('stores the body of the creation request and reports its offset', async () => {
        const body = Buffer.from('first part');
        const res = await create({ 'Upload-Length': '20', ...OCTET }, body);
        expect(res.status).toBe(201);
        expect(res.headers.get('upload-offset')).toBe(String(body.length));
        expect((await head(res.headers.get('location')!)).headers.get('upload-offset')).toBe(String(body.length));
      });

      it('completes a small upload in one request', async () => {
        const body = Buffer.from('tiny file');
        const res = await create({ 'Upload-Length': String(body.length), ...OCTET }, body);
        expect(res.status).toBe(201);
        expect(res.headers.get('upload-expires')).toBeNull();
        const download = await fetch(res.headers.get('location')!);
        expect(Buffer.from(await download.arrayBuffer()).equals(body)).toBe(true);
      });

      it('refuses a body longer than Upload-Length with 413 and gives no Location (nothing to resume)', async () => {
        const res = await create({ 'Upload-Length': '4', ...OCTET }, Buffer.from('too long'));
        expect(res.status).toBe(413);
        expect(res.headers.get('location')).toBeNull();
      });

      it('takes a body with a deferred length and reports Upload-Defer-Length until it is declared', async () => {
        const body = Buffer.from('deferred start');
        const res = await create({ 'Upload-Defer-Length': '1', ...OCTET }, body);
        expect(res.status).toBe(201);
        expect(res.headers.get('upload-offset')).toBe(String(body.length));
        const url = res.headers.get('location')!;
        const after = await head(url);
        expect(after.headers.get('upload-offset')).toBe(String(body.length));
        expect(after.headers.get('upload-defer-length')).toBe('1');
        const last = await patch(url, body.length, Buffer.from('!'), { 'Upload-Length': String(body.length + 1) });
        expect(last.status).toBe(204);
        expect(Buffer.from(await (await fetch(url)).arrayBuffer()).toString()).toBe('deferred start!');
      });
    });

    describe('tus creation-defer-length extension', () => {
      it('reports Upload-Defer-Length until the length is declared in a PATCH, then completes', async () => {
        const res = await create({ 'Upload-Defer-Length': '1' });
        expect(res.status).toBe(201);
        const url = res.headers.get('location')!;
        const before = await head(url);
        expect(before.headers.get('upload-defer-length')).toBe('1');
        expect(before.headers.get('upload-length')).toBeNull();
        expect((await patch(url, 0, Buffer.from('abc'))).headers.get('upload-offset')).toBe('3');
        const last = await patch(url, 3, Buffer.from('def'), { 'Upload-Length': '6' });
        expect(last.status).toBe(204);
        const after = await head(url);
        expect(after.headers.get('upload-length')).toBe('6');
        expect(after.headers.get('upload-defer-length')).toBeNull();
        expect(Buffer.from(await (await fetch(url)).arrayBuffer()).toString()).toBe('abcdef');
      });

      it('refuses a declared length above FERRY_MAX_SIZE with 413', async () => {
        const res = await create({ 'Upload-Defer-Length': '1' });
        const url = res.headers.get('location')!;
        const declared = await patch(url, 0, Buffer.from('a'), { 'Upload-Length': String(2 * 1024 * 1024) });
        expect(declared.status).toBe(413);
      });
    });

    describe('tus expiration extension', () => {
      it('sends Upload-Expires, about FERRY_INCOMPLETE_TTL ahead, on creation, HEAD and PATCH of unfinished uploads', async () => {
        const before = Date.now();
        const res = await create({ 'Upload-Length': '10' });
        const url = res.headers.get('location')!;
        for (const response of [res, await head(url), await patch(url, 0, Buffer.from('12345'))]) {
          const expires = response.headers.get('upload-expires');
          expect(expires).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
          const at = Date.parse(expires!);
          // Default FERRY_INCOMPLETE_TTL is 24 h; HTTP dates have one-second precision.
          expect(at).toBeGreaterThanOrEqual(before + 24 * 3600_000 - 1000);
          expect(at).toBeLessThanOrEqual(Date.now() + 24 * 3600_000 + 1000);
        }
      });

      it('sends no Upload-Expires once the upload is complete', async () => {
        const url = await createUpload(3);
        const res = await patch(url, 0, Buffer.from('abc'));
        expect(res.headers.get('upload-expires')).toBeNull();
        expect((await head(url)).headers.get('upload-expires')).toBeNull();
      });
    });

    describe('tus expiration: expired uploads', () => {
      let shortLived: InProcessFerry;
      beforeAll(async () => {
        shortLived = await start({ FERRY_INCOMPLETE_TTL: '1s' });
      });
      afterAll(async () => {
        await shortLived.close();
      });

      it('answers 410 for an unfinished upload idle past FERRY_INCOMPLETE_TTL, but keeps serving a completed one', async () => {
        const mk = async (length: number) =>
          (
            await fetch(`${shortLived.url}/files/`, {
              method: 'POST',
              headers: { ...TUS, 'Upload-Length': String(length) },
            })
          ).headers.get('location')!;
        const unfinished = await mk(10);
        const finished = await mk(2);
        expect((await patch(finished, 0, Buffer.from('ok'))).status).toBe(204);
        await new Promise((resolve) => setTimeout(resolve, 2100));
        expect((await head(unfinished)).status).toBe(410);
        expect((await patch(unfinished, 0, Buffer.from('late'))).status).toBe(410);
        expect((await head(finished)).status).toBe(200);
        expect((await fetch(finished)).status).toBe(200);
      });
    });

    describe('tus termination extension', () => {
      it('deletes an unfinished upload: 204, then 404 for HEAD, PATCH and GET', async () => {
        const url = await createUpload(10);
        await patch(url, 0, Buffer.from('abc'));
        const res = await fetch(url, { method: 'DELETE', headers: TUS });
        expect(res.status).toBe(204);
        expect((await head(url)).status).toBe(404);
        expect((await patch(url, 3, Buffer.from('def'))).status).toBe(404);
        expect((await fetch(url)).status).toBe(404);
      });

      it('deletes a completed upload and its bytes', async () => {
        const url = await createUpload(2);
        await patch(url, 0, Buffer.from('ok'));
        expect((await fetch(url, { method: 'DELETE', headers: TUS })).status).toBe(204);
        expect((await fetch(url)).status).toBe(404);
      });

      it('answers 404 to DELETE of an unknown upload', async () => {
        const res = await fetch(`${ferry.url}/files/AAAAAAAAAAAAAAAAAAAAAA`, { method: 'DELETE', headers: TUS });
        expect(res.status).toBe(404);
      });
    });

    describe('GET /files/<id> downloads', () => {
      it('streams the bytes of a completed upload with length, type and a safe attachment name', async () => {
        const body = Buffer.alloc(256 * 1024, 7);
        const url = await createUpload(
          body.length,
          `filename ${b64('résumé "final".pdf')},filetype ${b64('application/pdf')}`,
        );
        await patch(url, 0, body);
        const res = await fetch(url);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-length')).toBe(String(body.length));
        expect(res.headers.get('content-type')).toBe('application/pdf');
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(res.headers.get('content-disposition')).toBe(
          `attachment; filename="r_sum_ _final_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf`,
        );
        const digest = createHash('sha256')
          .update(Buffer.from(await res.arrayBuffer()))
          .digest('hex');
        expect(digest).toBe(createHash('sha256').update(body).digest('hex'));
      });

      it('serves one byte range with 206 and Content-Range, and 416 for a range past the end', async () => {
        const body = Buffer.from('0123456789abcdef');
        const url = await createUpload(body.length);
        await patch(url, 0, body);
        const whole = await fetch(url);
        expect(whole.headers.get('accept-ranges')).toBe('bytes');
        expect(whole.headers.get('etag')).toMatch(/^"[A-Za-z0-9_-]{22}-16"$/);
        const part = await fetch(url, { headers: { Range: 'bytes=4-9' } });
        expect(part.status).toBe(206);
        expect(part.headers.get('content-range')).toBe('bytes 4-9/16');
        expect(part.headers.get('content-length')).toBe('6');
        expect(await part.text()).toBe('456789');
        const tail = await fetch(url, { headers: { Range: 'bytes=-3' } });
        expect(await tail.text()).toBe('def');
        const beyond = await fetch(url, { headers: { Range: 'bytes=16-' } });
        expect(beyond.status).toBe(416);
        expect(beyond.headers.get('content-range')).toBe('bytes */16');
      });

      it('answers 409 for an upload that is not complete', async () => {
        const url = await createUpload(10);
        expect((await fetch(url)).status).toBe(409);
      });

      it('falls back to application/octet-stream for an invalid declared type', async () => {
        const url = await createUpload(1, `filetype ${b64('text/html\r\nX-Evil: 1')}`);
        await patch(url, 0, Buffer.from('x'));
        expect((await fetch(url)).headers.get('content-type')).toBe('application/octet-stream');
      });
    });

    describe('locking: a HEAD during a stalled PATCH', () => {
      it('gets the true offset within seconds, and the stalled PATCH keeps what it received', async () => {
        const url = await createUpload(1024 * 1024);
        const { pathname, port } = new URL(url);
        const patchDone = new Promise<number>((resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              port,
              path: pathname,
              method: 'PATCH',
              headers: { ...TUS, ...OCTET, 'Upload-Offset': '0', 'Content-Length': String(1024 * 1024) },
            },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', reject);
          // Send 100 KiB, then stall forever: only the lock release can end this request.
          req.write(Buffer.alloc(100 * 1024, 1));
        });
        await new Promise((resolve) => setTimeout(resolve, 300));
        const started = Date.now();
        const res = await head(url);
        const waited = Date.now() - started;
        expect(res.status).toBe(200);
        expect(res.headers.get('upload-offset')).toBe(String(100 * 1024));
        expect(waited).toBeLessThan(5000);
        expect(await patchDone).toBe(204);
      });
    });

    describe('errors outside the tus endpoint', () => {
      it('answers unknown routes with a JSON 404 error with a stable code', async () => {
        const res = await fetch(`${ferry.url}/nope`);
        expect(res.status).toBe(404);
        expect(await res.json()).toEqual({ error: { code: 'not_found', message: 'no such route', status: 404 } });
      });

      it('reports liveness and readiness', async () => {
        expect((await fetch(`${ferry.url}/healthz`)).status).toBe(200);
        const ready = await fetch(`${ferry.url}/readyz`);
        expect(ready.status).toBe(200);
        expect(await ready.json()).toMatchObject({ data: { status: 'ready', checks: { storage: 'ok' } } });
      });
    });
  });
}
