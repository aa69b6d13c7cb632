/**
 * A loopback TCP proxy that cuts connections, to test resumable uploads over a bad network.
 *
 *   const proxy = await startLossyProxy({ targetPort: ferry.port, maxCuts: 10 });
 *   // point the client at proxy.url; Ferry sees the proxy's Host header, so Location URLs
 *   // it returns point at the proxy too.
 *   ...
 *   expect(proxy.cuts()).toBeGreaterThan(0);
 *   await proxy.close();
 *
 * Each accepted connection gets a cut threshold: after that many client→server bytes have been
 * forwarded, both sockets are destroyed (the bytes up to the threshold are handed to the target
 * first). By default thresholds are uniform in [minCutBytes, maxCutBytes] (256 KiB … 4 MiB),
 * drawn from a seeded PRNG; the seed is printed and can be forced with `seed` or the
 * `LOSSY_PROXY_SEED` environment variable. Server→client bytes are never cut. Bytes are forwarded
 * unchanged (no HTTP parsing).
 */
import { randomInt } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';

/** Deterministic PRNG (mulberry32): returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cut policy: a threshold uniform in [min, max] bytes for every connection. */
export function uniformCut(min: number, max: number): (rng: () => number, connection: number) => number {
  return (rng) => min + Math.floor(rng() * (max - min + 1));
}

/**
 * Cut policy for uploads with creation-with-upload: uniform in 256 KiB … 4 MiB, but connection #1 only
 * after `chunk` + 16 KiB. A creation POST cut mid-body leaves tus-js-client without an upload URL, so it
 * can only start over, and it gives up after its retries without progress; so connection #1 (the
 * POST's) is cut only after the POST's first chunk, during the PATCH that follows it on the same
 * connection.
 */
export function spareCreationPost(chunk: number): (rng: () => number, connection: number) => number {
  return (rng, n) => (n === 1 ? chunk + 16 * 1024 : 0) + uniformCut(256 * 1024, 4 * 1024 * 1024)(rng, n);
}

export interface LossyProxyOptions {
  targetPort: number;
  /** Default 127.0.0.1. */
  targetHost?: string;
  /** PRNG seed. Default: `LOSSY_PROXY_SEED` from the environment, else random. */
  seed?: number;
  /** Smallest cut threshold for the default policy. Default 256 KiB. */
  minCutBytes?: number;
  /** Largest cut threshold for the default policy. Default 4 MiB. */
  maxCutBytes?: number;
  /** Probability that a connection gets a cut threshold at all (default policy). Default 1. */
  cutProbability?: number;
  /**
   * Custom policy, called once per connection with the proxy's PRNG and the connection's number
   * (1 for the first): client→server bytes to forward before cutting, or `undefined` for no cut.
   * Overrides min/max/cutProbability. `uniformCut(min, max)` builds the default policy.
   */
  cutAfterBytes?: (rng: () => number, connection: number) => number | undefined;
  /** Stop cutting after this many cuts (new connections are then left alone). Default: unlimited. */
  maxCuts?: number;
  /** Print the seed and every cut via this function. Default: console.log for the seed only. */
  log?: (line: string) => void;
}

export interface LossyProxy {
  /** Port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** The PRNG seed in use (print it in failure messages). */
  readonly seed: number;
  /** Number of connections cut so far. */
  cuts(): number;
  /** Number of connections accepted so far. */
  connections(): number;
  /** Client→server bytes forwarded so far, over all connections. */
  bytesUp(): number;
  /** Turn cutting off (or on again) for connections accepted from now on. */
  setCutting(enabled: boolean): void;
  /** Stop listening and destroy every open socket. */
  close(): Promise<void>;
}

export async function startLossyProxy(opts: LossyProxyOptions): Promise<LossyProxy> {
  const targetHost = opts.targetHost ?? '127.0.0.1';
  const envSeed = process.env.LOSSY_PROXY_SEED;
  const seed = opts.seed ?? (envSeed !== undefined && envSeed !== '' ? Number(envSeed) : randomInt(2 ** 31));
  const rng = mulberry32(seed);
  const min = opts.minCutBytes ?? 256 * 1024;
  const max = opts.maxCutBytes ?? 4 * 1024 * 1024;
  const p = opts.cutProbability ?? 1;
  const uniform = uniformCut(min, max);
  const policy =
    opts.cutAfterBytes ?? ((r: () => number, n: number): number | undefined => (r() < p ? uniform(r, n) : undefined));
  const maxCuts = opts.maxCuts ?? Infinity;
  const log = opts.log;
  (log ?? console.log)(`[lossy-proxy] seed=${seed} (set LOSSY_PROXY_SEED=${seed} to reproduce the cut thresholds)`);

  let cuts = 0;
  let conns = 0;
  let up = 0;
  let cutting = true;
  const sockets = new Set<Socket>();

  const server = createServer({ allowHalfOpen: true }, (client) => {
    conns++;
    const connNo = conns;
    const threshold = cutting && cuts < maxCuts ? policy(rng, connNo) : undefined;
    const upstream = connect({ host: targetHost, port: opts.targetPort, allowHalfOpen: true });
    sockets.add(client);
    sockets.add(upstream);
    let forwarded = 0;
    let cut = false;

    const destroyBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('error', destroyBoth);
    upstream.on('error', destroyBoth);

    // server → client: untouched
    upstream.pipe(client);

    // client → server: counted, cut at the threshold
    client.on('data', (chunk: Buffer) => {
      if (cut) return;
      if (threshold !== undefined && cuts < maxCuts && forwarded + chunk.length >= threshold) {
        cut = true;
        cuts++;
        const head = chunk.subarray(0, threshold - forwarded);
        forwarded += head.length;
        up += head.length;
        log?.(`[lossy-proxy] cut connection #${connNo} after ${forwarded} bytes (cut #${cuts})`);
        client.pause();
        upstream.write(head, () => destroyBoth());
        return;
      }
      forwarded += chunk.length;
      up += chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => {
          if (!cut) client.resume();
        });
      }
    });
    client.on('end', () => {
      if (!cut) upstream.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('lossy-proxy: no address');
  const port = addr.port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seed,
    cuts: () => cuts,
    connections: () => conns,
    bytesUp: () => up,
    setCutting: (enabled) => {
      cutting = enabled;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        sockets.clear();
        server.close(() => resolve());
      }),
  };
}
