import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { mulberry32, startLossyProxy, type LossyProxy } from '../../helpers/lossy-proxy.js';

/** A TCP sink: counts and hashes what each connection sends; answers "ok" once the client ends. */
async function startSink(): Promise<{
  port: number;
  server: Server;
  received: () => Promise<{ bytes: number; sha256: string }[]>;
}> {
  const results: Promise<{ bytes: number; sha256: string }>[] = [];
  const server = createServer((s: Socket) => {
    const hash = createHash('sha256');
    let bytes = 0;
    results.push(
      new Promise((resolve) => {
        s.on('data', (c: Buffer) => {
          hash.update(c);
          bytes += c.length;
        });
        s.on('end', () => s.end('ok'));
        s.on('error', () => {});
        s.on('close', () => resolve({ bytes, sha256: hash.digest('hex') }));
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  return { port: addr.port, server, received: () => Promise.all(results) };
}

/** Send `data` through `port`; resolve with what came back, or the error code if the connection was cut. */
function send(port: number, data: Buffer): Promise<{ reply: string; error?: string }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let reply = '';
    let error: string | undefined;
    s.on('data', (c: Buffer) => (reply += c.toString()));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => resolve({ reply, ...(error ? { error } : {}) }));
    s.end(data);
  });
}

const proxies: LossyProxy[] = [];
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe('lossy proxy', () => {
  it('forwards 8 MiB intact in both directions when it does not cut', async () => {
    const sink = await startSink();
    servers.push(sink.server);
    const proxy = await startLossyProxy({ targetPort: sink.port, cutAfterBytes: () => undefined, log: () => {} });
    proxies.push(proxy);
    const data = randomBytes(8 * 1024 * 1024);
    const res = await send(proxy.port, data);
    expect(res).toEqual({ reply: 'ok' });
    const [got] = await sink.received();
    expect(got).toEqual({ bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    expect(proxy.cuts()).toBe(0);
    expect(proxy.bytesUp()).toBe(data.length);
  });

  it('cuts a connection after exactly the chosen number of client bytes and counts the cut', async () => {
    const sink = await startSink();
    servers.push(sink.server);
    const proxy = await startLossyProxy({ targetPort: sink.port, cutAfterBytes: () => 300_000, log: () => {} });
    proxies.push(proxy);
    const data = randomBytes(2 * 1024 * 1024);
    const res = await send(proxy.port, data);
    expect(res.reply).toBe('');
    const [got] = await sink.received();
    expect(got).toEqual({
      bytes: 300_000,
      sha256: createHash('sha256').update(data.subarray(0, 300_000)).digest('hex'),
    });
    expect(proxy.cuts()).toBe(1);
  });

  it('stops cutting after maxCuts and when cutting is switched off', async () => {
    const sink = await startSink();
    servers.push(sink.server);
    const proxy = await startLossyProxy({
      targetPort: sink.port,
      cutAfterBytes: () => 1000,
      maxCuts: 1,
      log: () => {},
    });
    proxies.push(proxy);
    const data = randomBytes(100_000);
    await send(proxy.port, data);
    expect((await send(proxy.port, data)).reply).toBe('ok');
    proxy.setCutting(false);
    expect(proxy.cuts()).toBe(1);
  });

  it('draws the same cut thresholds from the same seed (default policy, 256 KiB–4 MiB)', async () => {
    const runs: number[][] = [];
    for (let run = 0; run < 2; run++) {
      const sink = await startSink();
      servers.push(sink.server);
      const proxy = await startLossyProxy({ targetPort: sink.port, seed: 12345, log: () => {} });
      proxies.push(proxy);
      const data = randomBytes(5 * 1024 * 1024);
      for (let i = 0; i < 3; i++) await send(proxy.port, data);
      expect(proxy.cuts()).toBe(3);
      runs.push((await sink.received()).map((r) => r.bytes));
    }
    expect(runs[0]).toEqual(runs[1]);
    for (const b of runs[0]!) {
      expect(b).toBeGreaterThanOrEqual(256 * 1024);
      expect(b).toBeLessThanOrEqual(4 * 1024 * 1024);
    }
  });

  it('passes the connection number to a custom policy, so single connections can be spared', async () => {
    const sink = await startSink();
    servers.push(sink.server);
    const seen: number[] = [];
    const proxy = await startLossyProxy({
      targetPort: sink.port,
      cutAfterBytes: (_rng, n) => {
        seen.push(n);
        return n === 2 ? 10 : undefined;
      },
      log: () => {},
    });
    proxies.push(proxy);
    const data = randomBytes(1000);
    for (let i = 0; i < 3; i++) await send(proxy.port, data);
    expect(seen).toEqual([1, 2, 3]);
    expect((await sink.received()).map((r) => r.bytes)).toEqual([1000, 10, 1000]);
    expect(proxy.cuts()).toBe(1);
  });

  it('mulberry32 is deterministic and in [0, 1)', () => {
    const a = mulberry32(7);
    const b = mulberry32(7);
    for (let i = 0; i < 1000; i++) {
      const x = a();
      expect(x).toBe(b());
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
  });
});
