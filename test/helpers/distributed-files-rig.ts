/**
 * Helpers for the distributed file-registry end-to-end tests (test/e2e/files-distributed.test.ts):
 * `ferry worker` / `ferry reindex` child processes next to a cluster's `ferry serve` replicas, a tiny
 * Server-Sent Events reader, and small clients for `/v1/files`.
 *
 *   const worker = await startWorker(cluster);          // waits for "ferry worker running"
 *   const stream = await openEventStream(`${b.url}/v1/events?batch=x`);
 *   const id = await uploadTo(a.url, file, { filename: 'a.bin', batch: 'x' });
 *   await stream.waitFor((events) => events.some((e) => e.data.event === 'completed'));
 *   await worker.kill();                                 // SIGKILL by pid
 *   afterEach(cleanupDistributedFiles);                  // every worker, CLI run and stream left
 *
 * Processes get the same sanitised environment as test/helpers/ferry-process.ts: FERRY_* variables of
 * the test runner are not inherited.
 */
import { TEST_SECRETS } from './secrets.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { crc32c } from '@node-rs/crc32';
import { FERRY_CLI, REPO_ROOT } from './ferry-process.js';
import type { RandomFile } from './files.js';
import { sleep } from './poll.js';
import { httpRequest, tusCreate, tusPatchFile, uploadId, type RawResponse } from './tus.js';

// --- Processes -----------------------------------------------------------------------------------

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliProcess {
  readonly pid: number;
  readonly exited: Promise<CliExit>;
  isRunning(): boolean;
  /** stdout and stderr so far, in arrival order. */
  logs(): string;
  stderr(): string;
  /** SIGKILL by pid (a crash) and wait for the exit. */
  kill(): Promise<void>;
  /** Send `signal` (default SIGTERM) and wait for the exit (SIGKILL after `timeoutMs`); resolves with the code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

const children = new Set<CliProcess>();

process.once('exit', () => {
  for (const child of children) if (child.isRunning()) process.kill(child.pid, 'SIGKILL');
});

/** The environment `ferry-process.ts` gives its children: no inherited FERRY_*, PORT or HOST. */
function childEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('FERRY_') || k === 'PORT' || k === 'HOST') continue;
    env[k] = v;
  }
  Object.assign(env, TEST_SECRETS);
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Spawns `node dist/cli.js <args>` with `env` (on top of the sanitised environment). */
export function spawnCli(args: string[], env: Record<string, string | undefined>): CliProcess {
  const child: ChildProcess = spawn(process.execPath, [FERRY_CLI, ...args], {
    cwd: REPO_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let all = '';
  let errText = '';
  child.stdout!.on('data', (c: Buffer) => (all += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => {
    const s = c.toString('utf8');
    all += s;
    errText += s;
  });
  let running = true;
  const exited = new Promise<CliExit>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      resolve({ code, signal });
    });
    child.once('error', () => {
      running = false;
      resolve({ code: null, signal: null });
    });
  });
  const pid = child.pid!;
  const cli: CliProcess = {
    pid,
    exited,
    isRunning: () => running,
    logs: () => all,
    stderr: () => errText,
    async kill() {
      if (running) process.kill(pid, 'SIGKILL');
      await exited;
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000) {
      if (running) process.kill(pid, signal);
      const timer = setTimeout(() => {
        if (running) process.kill(pid, 'SIGKILL');
      }, timeoutMs);
      const { code } = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  children.add(cli);
  void exited.then(() => children.delete(cli));
  return cli;
}

/** Where a cluster's processes meet: its Redis and the data directory they share. */
export interface SharedPlace {
  readonly redis: { readonly url: string };
  readonly dataDir: string;
}

/** The environment of a process that joins `place`. */
export function placeEnv(
  place: SharedPlace,
  extra: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  return { FERRY_REDIS_URL: place.redis.url, FERRY_DATA_DIR: place.dataDir, ...extra };
}

/** Starts `ferry worker` on the cluster's Redis and data directory; resolves once it logged that it runs. */
export async function startWorker(
  place: SharedPlace,
  extra: Record<string, string | undefined> = {},
  timeoutMs = 15_000,
): Promise<CliProcess> {
  const worker = spawnCli(['worker'], placeEnv(place, extra));
  const deadline = Date.now() + timeoutMs;
  while (!worker.logs().includes('ferry worker running')) {
    if (!worker.isRunning()) {
      const { code, signal } = await worker.exited;
      throw new Error(`ferry worker exited (code ${code}, signal ${signal}) before it ran:\n${tail(worker.logs())}`);
    }
    if (Date.now() > deadline) {
      await worker.kill();
      throw new Error(
        `ferry worker did not log "ferry worker running" within ${timeoutMs} ms:\n${tail(worker.logs())}`,
      );
    }
    await sleep(25);
  }
  return worker;
}

/** Runs `node dist/cli.js <args>` to its end (SIGKILL after `timeoutMs`). */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  timeoutMs = 20_000,
): Promise<CliExit & { logs: string; stderr: string }> {
  const cli = spawnCli(args, env);
  const timer = setTimeout(() => void cli.kill(), timeoutMs);
  const exit = await cli.exited;
  clearTimeout(timer);
  return { ...exit, logs: cli.logs(), stderr: cli.stderr() };
}

/** JSON log lines of a process whose `msg` is `msg`. */
export function logLines(logs: string, msg: string): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  for (const line of logs.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed.msg === msg) found.push(parsed);
    } catch {
      // not a log line
    }
  }
  return found;
}

function tail(s: string, n = 4000): string {
  return s.length > n ? '…' + s.slice(-n) : s;
}

// --- Server-Sent Events --------------------------------------------------------------------------

/** The JSON of an event's `data:` line. */
export interface FileEventData {
  event: string;
  file_id: string;
  at: string;
  [field: string]: unknown;
}

export interface SseEvent {
  /** The `id:` line: a Redis stream id. */
  id: string;
  data: FileEventData;
}

export interface EventStream {
  /** Every event received so far, in arrival order. */
  readonly events: SseEvent[];
  /** Resolves with `events` once `ok` accepts them; rejects after `timeoutMs` with what arrived. */
  waitFor(ok: (events: SseEvent[]) => boolean, timeoutMs?: number, what?: string): Promise<SseEvent[]>;
  /** True once the server ended the stream or the connection failed. */
  ended(): boolean;
  close(): void;
}

const streams = new Set<EventStream>();

/**
 * Opens an SSE stream (GET `url`, optionally with `Last-Event-ID`) and resolves once the server
 * answered 200 and sent its first block (`retry:`); rejects on any other status.
 */
export function openEventStream(url: string, opts: { lastEventId?: string } = {}): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = [];
    let ended = false;
    let buffer = '';
    let req: ClientRequest | undefined = undefined;
    let firstBlock = false;
    const stream: EventStream = {
      events,
      ended: () => ended,
      close: () => {
        ended = true;
        streams.delete(stream);
        req?.destroy();
      },
      async waitFor(ok, timeoutMs = 10_000, what = 'events') {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          if (ok(events)) return events;
          if (Date.now() > deadline) {
            throw new Error(
              `timed out after ${timeoutMs} ms waiting for ${what} on ${url}; got:\n` +
                events.map((e) => `  ${e.id} ${JSON.stringify(e.data)}`).join('\n'),
            );
          }
          await sleep(20);
        }
      },
    };
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (opts.lastEventId !== undefined) headers['Last-Event-ID'] = opts.lastEventId;
    req = request(url, { method: 'GET', headers, agent: false }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => reject(new Error(`GET ${url} → ${res.statusCode}: ${body}`)));
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const parsed = parseBlock(block);
          if (parsed) events.push(parsed);
          if (!firstBlock) {
            firstBlock = true;
            streams.add(stream);
            resolve(stream);
          }
        }
      });
      const finish = () => {
        ended = true;
      };
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    });
    req.on('error', (error) => {
      ended = true;
      if (!firstBlock) reject(error);
    });
    req.end();
  });
}

function parseBlock(block: string): SseEvent | undefined {
  let id: string | undefined;
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
  }
  if (id === undefined || data.length === 0) return undefined;
  return { id, data: JSON.parse(data.join('\n')) as FileEventData };
}

/** Orders two Redis stream ids (`<ms>-<seq>`). */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

/** `created…completed` style summary of the events of one file, for assertions. */
export function eventTypesOf(events: SseEvent[], fileId: string): string[] {
  return events.filter((e) => e.data.file_id === fileId).map((e) => e.data.event);
}

// --- /v1/files -----------------------------------------------------------------------------------

/** A file as `/v1/files` shows it (the fields these tests look at). */
export interface FileJson {
  id: string;
  name: string;
  size: number | null;
  received_bytes: number;
  folder: string | null;
  tags: string[];
  batch: string | null;
  status: string;
  checksums: { sha256: string | null; crc32c: string | null };
  created_at: string;
  download_url: string | null;
  error: unknown;
}

export async function getJson<T>(url: string): Promise<{ status: number; body: T; raw: RawResponse }> {
  const raw = await httpRequest('GET', url);
  let body: T;
  try {
    body = JSON.parse(raw.body) as T;
  } catch {
    body = undefined as T;
  }
  return { status: raw.status, body, raw };
}

/** `GET /v1/files/<id>`; throws unless 200. */
export async function getFile(baseUrl: string, id: string): Promise<FileJson> {
  const { status, raw, body } = await getJson<{ data: FileJson }>(`${baseUrl}/v1/files/${id}`);
  if (status !== 200) throw new Error(`GET ${baseUrl}/v1/files/${id} → ${status}: ${raw.body}`);
  return body.data;
}

export type ListQuery = Partial<Record<'folder' | 'tag' | 'batch' | 'status' | 'limit' | 'cursor', string>>;

/** `GET /v1/files?…`; throws unless 200. */
export async function listFiles(
  baseUrl: string,
  query: ListQuery = {},
): Promise<{ data: FileJson[]; next_cursor: string | null }> {
  const url = `${baseUrl}/v1/files?${new URLSearchParams(query as Record<string, string>).toString()}`;
  const { status, raw, body } = await getJson<{ data: FileJson[]; next_cursor: string | null }>(url);
  if (status !== 200) throw new Error(`GET ${url} → ${status}: ${raw.body}`);
  return body;
}

/** Polls `GET /v1/files/<id>` until its status is `status`; rejects after `timeoutMs` with the last seen. */
export async function waitForStatus(
  baseUrl: string,
  id: string,
  status: string,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<FileJson> {
  const deadline = Date.now() + timeoutMs;
  let last: FileJson | undefined;
  for (;;) {
    last = await getFile(baseUrl, id);
    if (last.status === status) return last;
    if (Date.now() > deadline) {
      throw new Error(`file ${id} on ${baseUrl} is ${last.status}, not ${status}, after ${timeoutMs} ms`);
    }
    await sleep(everyMs);
  }
}

/** tus `Upload-Metadata` for `metadata`. */
export function uploadMetadata(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

/**
 * Creates a tus upload of `file` on `baseUrl` with `metadata` and sends it with raw PATCHes of
 * `chunk` bytes, all to `baseUrl` (`upTo` stops early, leaving the upload incomplete). Resolves with
 * the upload id.
 */
export async function uploadTo(
  baseUrl: string,
  file: RandomFile,
  metadata: Record<string, string>,
  opts: { chunk?: number; upTo?: number } = {},
): Promise<string> {
  const { url } = await createUpload(baseUrl, file.size, metadata);
  await patchTo(url, file, 0, opts);
  return uploadId(url);
}

/** `POST /files/` with `Upload-Length` and `metadata`; resolves with the upload URL. */
export async function createUpload(
  baseUrl: string,
  size: number,
  metadata: Record<string, string>,
): Promise<{ url: string }> {
  const { url } = await tusCreate(baseUrl, size, { 'Upload-Metadata': uploadMetadata(metadata) });
  return { url };
}

/** Sends `file` from `offset` to upload URL `url` in PATCHes of `chunk` bytes (up to `upTo`). */
export async function patchTo(
  url: string,
  file: RandomFile,
  offset: number,
  opts: { chunk?: number; upTo?: number } = {},
): Promise<void> {
  const end = opts.upTo ?? file.size;
  const chunk = opts.chunk ?? end;
  for (let at = offset; at < end;) {
    const stop = Math.min(at + chunk, end);
    const res = await tusPatchFile(url, file.path, at, stop);
    if (res.status !== 204 || res.offset !== stop) {
      throw new Error(`PATCH ${url} @${at}…${stop} → ${res.status} offset ${res.offset}: ${res.response.body}`);
    }
    at = stop;
  }
}

/** crc32c of a file as Ferry reports it: base64 of the big-endian 32-bit value. */
export async function crc32cOfFile(path: string): Promise<string> {
  let crc = 0;
  for await (const chunk of createReadStream(path)) crc = crc32c(chunk as Buffer, crc);
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc >>> 0);
  return out.toString('base64');
}

/** SIGKILLs every worker or CLI process still running and closes every event stream (afterEach). */
export async function cleanupDistributedFiles(): Promise<void> {
  for (const stream of [...streams]) stream.close();
  await Promise.all([...children].map((child) => child.kill()));
}
