/**
 * Waiting in tests: a plain `sleep`, and two ways to poll a value until it is what the test wants.
 *
 *   await until('part 1 is in S3', () => partsOf(moto, key, id), (parts) => parts.length > 0);  // throws on timeout
 *   const lines = await eventually(() => cluster.requestLog(0, id), (l) => l.length >= 2);     // returns the last value
 */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `read` every `everyMs` (default 50) until `ok` accepts its value and resolves with it; after
 * `timeoutMs` (default 10 000) rejects with `timed out waiting for <what>` and the last value.
 */
export async function until<T>(
  what: string,
  read: () => Promise<T> | T,
  ok: (value: T) => boolean,
  { timeoutMs = 10_000, everyMs = 50 }: { timeoutMs?: number; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await sleep(everyMs);
  }
}

/**
 * Polls `read` every 50 ms until `ok` accepts its value or `timeoutMs` (default 3000) has passed, and
 * resolves with the last value either way: the caller's assertion on it then says what was wrong
 * (e.g. request log lines, which are written just after the response).
 */
export async function eventually<T>(read: () => T, ok: (value: T) => boolean, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (ok(value) || Date.now() > deadline) return value;
    await sleep(50);
  }
}
