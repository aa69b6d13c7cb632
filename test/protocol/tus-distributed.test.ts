import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessFerry, type InProcessFerry } from '../helpers/in-process-ferry.js';
import { startRedis, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * The tus endpoint in distributed mode (FERRY_REDIS_URL) against a real redis-server: the same
 * protocol, plus what Redis being away means for clients.
 */

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTET = { 'Content-Type': 'application/offset+octet-stream' };

let redis: RedisServer;
let ferry: InProcessFerry;
beforeAll(async () => {
  redis = await startRedis();
  ferry = await startInProcessFerry({ FERRY_REDIS_URL: redis.url, FERRY_REDIS_PREFIX: 'proto:' });
});
afterAll(async () => {
  await ferry.close();
  await stopAllRedis();
});

const create = async (length: number) => {
  const res = await fetch(`${ferry.url}/files/`, {
    method: 'POST',
    headers: { ...TUS, 'Upload-Length': String(length) },
  });
  expect(res.status).toBe(201);
  return res.headers.get('location')!;
};
const patch = (url: string, offset: number, body: string) =>
  fetch(url, {
    method: 'PATCH',
    headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset) },
    body: Buffer.from(body),
  });
const head = (url: string) => fetch(url, { method: 'HEAD', headers: TUS });

describe('tus in distributed mode (Redis)', () => {
  it('creates, appends, reports and downloads like embedded mode, and reports Redis in /readyz', async () => {
    const url = await create(10);
    expect((await patch(url, 0, 'hello')).headers.get('upload-offset')).toBe('5');
    expect((await head(url)).headers.get('upload-offset')).toBe('5');
    expect((await patch(url, 5, 'world')).status).toBe(204);
    expect(await (await fetch(url)).text()).toBe('helloworld');
    const ready = await fetch(`${ferry.url}/readyz`);
    expect(await ready.json()).toEqual({ data: { status: 'ready', checks: { storage: 'ok', redis: 'ok' } } });
  });

  it('while Redis is down answers at once, 423 on upload URLs (tus clients retry the same URL) and 503 on creation, reports not ready, and recovers without a restart; records survive an empty Redis', async () => {
    const url = await create(6);
    expect((await patch(url, 0, 'abc')).status).toBe(204);

    await redis.stop();
    const started = Date.now();
    const headWhileDown = await head(url);
    expect(headWhileDown.status).toBe(423);
    expect(headWhileDown.headers.get('retry-after')).toBe('1');
    const patchWhileDown = await patch(url, 3, 'def');
    expect(patchWhileDown.status).toBe(423);
    expect(patchWhileDown.headers.get('retry-after')).toBe('1');
    expect((await fetch(url, { method: 'DELETE', headers: TUS })).status).toBe(423);
    const created = await fetch(`${ferry.url}/files/`, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } });
    expect(created.status).toBe(503);
    expect(created.headers.get('retry-after')).toBe('1');
    expect(await created.text()).not.toMatch(/ioredis|ECONNREFUSED|stack/i);
    const notReady = await fetch(`${ferry.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ data: { checks: { redis: 'unavailable' } } });
    expect(Date.now() - started).toBeLessThan(5000);

    // Redis comes back empty (no persistence): the upload's record returns from its durable copy.
    await redis.start();
    await expect.poll(async () => (await fetch(`${ferry.url}/readyz`)).status, { timeout: 10_000 }).toBe(200);
    const resumed = await head(url);
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get('upload-offset')).toBe('3');
    expect(resumed.headers.get('upload-length')).toBe('6');
    expect((await patch(url, 3, 'def')).status).toBe(204);
    expect(await (await fetch(url)).text()).toBe('abcdef');
  });
});
