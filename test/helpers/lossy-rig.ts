/**
 * The rig of the lossy-network suites: one Ferry and one random file for the whole test file, cutting
 * proxies in front of that Ferry that are closed after each test, and tus-js-client uploads that retry
 * like its default rule and say what happened when they fail.
 *
 *   const rig = useLossyRig(40 * MiB);                      // registers beforeAll/afterEach/afterAll
 *   const proxy = await rig.startProxy({ maxCuts: 20 });     // closed after the test
 *   const { url, retries } = await tusUploadWithRetries(createReadStream(rig.file.path),
 *     { endpoint: `${proxy.url}/files/` }, rig.ferry, proxy);
 *   console.log(`${cutsReport(proxy, rig.file.size, retries)}`);
 */
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { cleanupFerries, startFerry, type FerryProcess, type StartFerryOptions } from './ferry-process.js';
import { cleanupTempFiles, randomFile, type RandomFile } from './files.js';
import { startLossyProxy, type LossyProxy, type LossyProxyOptions } from './lossy-proxy.js';
import { tusUpload } from './tus.js';

type UploadInput = Parameters<typeof tusUpload>[0];
type UploadOptions = Parameters<typeof tusUpload>[1];

/**
 * tus-js-client `retryDelays` for uploads through a cutting proxy: tus-js-client resets its retry
 * counter whenever an attempt made progress, so an upload survives any number of cuts.
 */
export const LOSSY_RETRY_DELAYS = [0, 100, 200, 500, 1000, 1000, 2000];

export interface LossyRig {
  /** The Ferry every test of the file uses. */
  readonly ferry: FerryProcess;
  /** The random source file. */
  readonly file: RandomFile;
  /** The source file's bytes (only with `readBytes`). */
  readonly bytes: Buffer;
  /** A cutting proxy in front of `ferry` (`targetPort` set), closed after the test. */
  startProxy(options?: Omit<LossyProxyOptions, 'targetPort'>): Promise<LossyProxy>;
}

export interface LossyRigOptions {
  /** Options for the Ferry, read when it starts (after earlier `beforeAll` hooks have run). */
  ferry?: () => StartFerryOptions;
  /** Also read the whole file into `bytes`. */
  readBytes?: boolean;
  /** Timeout of the `beforeAll` hook. Default 30 000 ms. */
  timeoutMs?: number;
}

/**
 * Registers the hooks: `beforeAll` writes a random file of `size` bytes and starts a Ferry;
 * `afterEach` closes the proxies the test started; `afterAll` stops every Ferry and deletes the files.
 */
export function useLossyRig(size: number, opts: LossyRigOptions = {}): LossyRig {
  let ferry: FerryProcess | undefined;
  let file: RandomFile | undefined;
  let bytes: Buffer | undefined;
  const proxies: LossyProxy[] = [];

  beforeAll(async () => {
    [file, ferry] = await Promise.all([randomFile(size), startFerry(opts.ferry?.() ?? {})]);
    if (opts.readBytes) bytes = await readFile(file.path);
  }, opts.timeoutMs ?? 30_000);
  afterEach(async () => {
    for (const proxy of proxies.splice(0)) await proxy.close();
  });
  afterAll(async () => {
    await cleanupFerries();
    await cleanupTempFiles();
  });

  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`useLossyRig: no ${what} (outside a test, or without readBytes)`);
    return value;
  };
  return {
    get ferry() {
      return ready(ferry, 'ferry');
    },
    get file() {
      return ready(file, 'file');
    },
    get bytes() {
      return ready(bytes, 'bytes');
    },
    async startProxy(options = {}) {
      const proxy = await startLossyProxy({ ...options, targetPort: ready(ferry, 'ferry').port });
      proxies.push(proxy);
      return proxy;
    },
  };
}

/**
 * `tusUpload` with `retryDelays: LOSSY_RETRY_DELAYS` (unless `options` sets them) and tus-js-client's
 * default retry rule (network errors, 5xx, 409 and 423), recording every retry. A failed upload
 * rejects with the proxy's seed and cuts, the retries and the tail of Ferry's logs.
 */
export async function tusUploadWithRetries(
  input: UploadInput,
  options: UploadOptions,
  ferry: FerryProcess,
  proxy?: LossyProxy,
): Promise<{ url: string; retries: string[] }> {
  const retries: string[] = [];
  const { url } = await tusUpload(input, {
    retryDelays: LOSSY_RETRY_DELAYS,
    ...options,
    onShouldRetry: (err, attempt) => {
      const status = err.originalResponse?.getStatus() ?? 0;
      retries.push(`attempt ${attempt}: ${status || 'network'} ${err.message.split('\n')[0]}`);
      // tus-js-client's default rule: retry network errors, 5xx, 409 and 423
      return status === 0 || status >= 500 || status === 409 || status === 423;
    },
  }).catch((err: unknown) => {
    throw new Error(
      `upload failed${proxy ? ` (proxy seed ${proxy.seed}, ${proxy.cuts()} cuts)` : ''}; retries:\n${retries.join('\n')}\n` +
        `${String(err)}\n--- ferry logs ---\n${ferry.logs().slice(-4000)}`,
    );
  });
  return { url, retries };
}

/** `<cuts> cuts over <connections> connections, <bytes> bytes forwarded for a <size>-byte file, <n> retries` */
export function cutsReport(proxy: LossyProxy, size: number, retries: string[]): string {
  return (
    `${proxy.cuts()} cuts over ${proxy.connections()} connections, ` +
    `${proxy.bytesUp()} bytes forwarded for a ${size}-byte file, ${retries.length} retries`
  );
}

/** The upload options without the callbacks, for a log line. */
export function withoutFunctions(options: UploadOptions): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => typeof v !== 'function'));
}
