/**
 * Helpers for the auth end-to-end tests: requests with credentials, answers compared "exactly like a
 * missing id", authenticated file polling, a PATCH that holds its body mid-way, and the CLI run as a
 * one-shot process (exit code, stdout, stderr).
 *
 *   const acme = bearer(ACME_KEY);
 *   const real = await send('HEAD', `${url}/files/${id}`, { ...acme, 'Tus-Resumable': '1.0.0' });
 *   expect(normalized(real, id)).toEqual(normalized(missing, missingId));
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request, type ClientRequest } from 'node:http';
import { expect } from 'vitest';
import type { FileJson } from '../../src/core/files/file-json.js';
import { FERRY_CLI, REPO_ROOT } from './ferry-process.js';
import { requestBytes } from './files-api.js';
import { until } from './poll.js';
import { httpRequest, type RawResponse } from './tus.js';

export type Headers = Record<string, string>;

/** `Authorization: Bearer <credential>` (an API key or an upload token). */
export const bearer = (credential: string): Headers => ({ Authorization: `Bearer ${credential}` });

/** An id shaped exactly like Ferry's (128 random bits, base64url) that names nothing. */
export const randomUploadId = (): string => randomBytes(16).toString('base64url');

/** One request on a fresh connection; the body comes back as text. */
export function send(method: string, url: string, headers: Headers = {}, body?: Buffer | string): Promise<RawResponse> {
  return httpRequest(method, url, headers, body);
}

/**
 * Like `send`, for answers that may be an endless stream (SSE): resolves when the response ends or
 * `ms` after its headers arrived (then the connection is closed and `ended` is false).
 */
export function sendBriefly(
  method: string,
  url: string,
  headers: Headers = {},
  ms = 1000,
): Promise<RawResponse & { ended: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      let body = '';
      let done = false;
      const finish = (ended: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ended });
        if (!ended) req.destroy();
      };
      const timer = setTimeout(() => finish(false), ms);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => finish(true));
      res.on('error', () => finish(false));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Body parsed as JSON (throws with the text when it is not). */
export function jsonOf<T = Record<string, unknown>>(res: RawResponse): T {
  try {
    return JSON.parse(res.body) as T;
  } catch {
    throw new Error(`expected JSON, got ${res.status} ${JSON.stringify(res.headers)} ${res.body.slice(0, 500)}`);
  }
}

/** The JSON error code of an answer (undefined if the body is not a JSON error). */
export function errorCodeOf(res: RawResponse): string | undefined {
  try {
    return (JSON.parse(res.body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** Headers that legitimately differ between two answers (time of day, connection handling). */
const VOLATILE_HEADERS = new Set(['date', 'connection', 'keep-alive']);

/**
 * An answer with the id it was about replaced by `<id>` (error messages may echo it), without the
 * headers that differ between any two requests: two of these compare equal when a client cannot
 * tell the two answers apart.
 */
export function normalized(res: RawResponse, id: string): { status: number; headers: Headers; body: string } {
  const headers: Headers = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (VOLATILE_HEADERS.has(name) || value === undefined) continue;
    headers[name] = (Array.isArray(value) ? value.join(', ') : value).replaceAll(id, '<id>');
  }
  return { status: res.status, headers, body: res.body.replaceAll(id, '<id>') };
}

/** Expects the JSON 401 every missing or wrong credential gets. HEAD answers carry no body. */
export function expectUnauthorized(res: RawResponse, method: string): void {
  expect(res.status, res.body).toBe(401);
  expect(res.headers['www-authenticate']).toBe('Bearer realm="ferry"');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  if (method === 'HEAD') return;
  expect(jsonOf(res)).toEqual({ error: { code: 'unauthorized', message: expect.any(String), status: 401 } });
}

/** `GET /v1/files/<id>` with credentials → the file (throws unless 200). */
export async function getFileAs(baseUrl: string, id: string, headers: Headers): Promise<FileJson> {
  const res = await send('GET', `${baseUrl}/v1/files/${id}`, headers);
  if (res.status !== 200) throw new Error(`GET /v1/files/${id} → ${res.status} ${res.body}`);
  return jsonOf<{ data: FileJson }>(res).data;
}

/** Polls `GET /v1/files/<id>` (with credentials) until its status is one of `statuses`. */
export function waitForFileAs(
  baseUrl: string,
  id: string,
  headers: Headers,
  statuses: readonly FileJson['status'][],
  timeoutMs = 10_000,
): Promise<FileJson> {
  return until(
    `file ${id} to be ${statuses.join(' or ')}`,
    () => getFileAs(baseUrl, id, headers),
    (file) => statuses.includes(file.status),
    { timeoutMs, everyMs: 25 },
  );
}

/** `GET /v1/files` with credentials → the ids listed on the first page (limit 1000). */
export async function listedIds(baseUrl: string, headers: Headers): Promise<string[]> {
  const res = await send('GET', `${baseUrl}/v1/files?limit=1000`, headers);
  if (res.status !== 200) throw new Error(`GET /v1/files → ${res.status} ${res.body}`);
  return jsonOf<{ data: FileJson[] }>(res).data.map((file) => file.id);
}

/** Binary body of a GET (for content routes). */
export async function getBytes(url: string, headers: Headers = {}) {
  return requestBytes('GET', url, headers);
}

/** `POST /v1/tokens` with `credentials`; `body` is sent as given (a string) or as JSON. */
export function postToken(baseUrl: string, headers: Headers, body: unknown): Promise<RawResponse> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return send('POST', `${baseUrl}/v1/tokens`, { 'Content-Type': 'application/json', ...headers }, text);
}

/** Issues an upload token (expects 201) and returns it with its expiry. */
export async function issueToken(
  baseUrl: string,
  headers: Headers,
  body: Record<string, unknown> = {},
): Promise<{ token: string; expiresAt: string }> {
  const res = await postToken(baseUrl, headers, body);
  if (res.status !== 201) throw new Error(`POST /v1/tokens ${JSON.stringify(body)} → ${res.status} ${res.body}`);
  const { data } = jsonOf<{ data: { token: string; expires_at: string } }>(res);
  return { token: data.token, expiresAt: data.expires_at };
}

/** Headers of a tus PATCH of `length` bytes at `offset`. */
export function tusPatchHeaders(offset: number, length: number, extra: Headers = {}): Headers {
  return {
    'Tus-Resumable': '1.0.0',
    'Content-Type': 'application/offset+octet-stream',
    'Upload-Offset': String(offset),
    'Content-Length': String(length),
    ...extra,
  };
}

export interface HeldPatch {
  /** Resolves once the first bytes have been written to the socket. */
  readonly started: Promise<void>;
  /** Writes the rest of the body and resolves with the answer. */
  finish(): Promise<RawResponse>;
  /** Destroys the request (the client goes away mid-body). */
  abort(): void;
  /** The answer (or the connection error), whichever comes. */
  readonly answer: Promise<RawResponse | Error>;
}

/**
 * A PATCH that announces `body.length` bytes, writes the first `firstBytes` of them and then waits
 * until `finish()` (the rest is written and the request ended) or `abort()`.
 */
export function holdPatch(url: string, headers: Headers, body: Buffer, firstBytes: number): HeldPatch {
  let request!: ClientRequest;
  let startedFn!: () => void;
  const started = new Promise<void>((resolve) => (startedFn = resolve));
  const answer = httpRequest('PATCH', url, { ...headers, 'Content-Length': String(body.length) }, (req) => {
    request = req;
    req.write(body.subarray(0, firstBytes), () => startedFn());
  }).catch((error: unknown) => error as Error);
  return {
    started,
    answer,
    async finish() {
      request.end(body.subarray(firstBytes));
      const res = await answer;
      if (res instanceof Error) throw res;
      return res;
    },
    abort() {
      request.destroy();
    },
  };
}

/** A PATCH whose body is sent with `Transfer-Encoding: chunked` (no Content-Length). */
export function chunkedPatch(url: string, headers: Headers, body: Buffer): Promise<RawResponse | Error> {
  return httpRequest('PATCH', url, { ...headers, 'Transfer-Encoding': 'chunked' }, (req) => {
    req.end(body);
  }).catch((error: unknown) => error as Error);
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `node dist/cli.js <args>` with exactly `env` (plus PATH), optional `stdin`; resolves when it exits
 * (killed after `timeoutMs`). For commands that must fail fast or finish on their own.
 */
export function runCli(
  args: string[],
  env: Record<string, string>,
  { stdin, timeoutMs = 20_000 }: { stdin?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [FERRY_CLI, ...args],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: timeoutMs },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number' && !error.killed) {
          reject(error);
          return;
        }
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
  });
}
