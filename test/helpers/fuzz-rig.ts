/**
 * The fuzz rig: an in-process Ferry with known state, a request function that fills in credentials
 * and placeholders, and the state invariants every fuzz property checks.
 *
 * Known state, made with valid requests before any property runs:
 * - U: an unfinished upload (size 100, offset 5),
 * - F: a completed file with known bytes (sha256),
 * - seeds S0 (a completed empty file with an odd name), S1 (a deferred-length upload) and S2 (a
 *   complete partial upload), which fuzzed requests may also name.
 *
 * Generated text names these with placeholders (`<<U>>`, `<<F>>`, `<<FETAG>>` (F's ETag),
 * `<<SIGNED_F>>` (the query of F's signed download URL), `<<S0>>`…, `<<KEY>>`, `<<TOKEN>>`)
 * that `resolve` replaces just before sending, so counterexamples read as what they target.
 *
 * Invariants:
 * - after every case (`checkCase`): /healthz answers 200; no uncaught exception or unhandled
 *   rejection happened; a rejected request (any answer but 2xx) created or removed nothing under
 *   the data directory; U's offset is 5 and F's bytes are unchanged. U or F may only disappear
 *   through an accepted request (2xx, or one whose outcome is unknown) whose path names its id; they
 *   are then made again and the request noted in `acceptedRemovals`.
 * - after every property (`checkState`): the tenant's listing holds every id it held before (except
 *   ids an accepted request named) and nothing else than ids the fuzzer created with a 201 (unless
 *   some request's outcome was unknown); every id the fuzzer created is a 22-character base64url
 *   id; every file under the data directory is `uploads/<id>` or one of the record logs
 *   (`uploads/records.log`, `files/records.log`) and its lock (`records.lock`).
 *
 * A request's outcome is unknown when it got no answer, or an answer Node's HTTP parser wrote for
 * malformed framing while Ferry was still handling the request (the raw requests of tus.test.ts):
 * the rig then waits for the data directory to settle and gives the request the benefit of the doubt.
 */
import { createHash } from 'node:crypto';
import type fc from 'fast-check';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { durableRecords } from './record-logs.js';
import { startInProcessFerry, type InProcessFerry } from './in-process-ferry.js';
import {
  describeFuzzRequest,
  fuzzSend,
  fuzzSendRaw,
  type FuzzRequest,
  type FuzzResponse,
  type RawRequest,
  type RawResponse,
} from './fuzz-http.js';
import { sleep } from './poll.js';

/** Cases per property: small in CI, more in the nightly command (`npm run fuzz`). */
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 150);
/** Set to replay a failure fast-check reported (it prints the seed). */
export const FUZZ_SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** Per property: generous, since shrinking a failure replays many cases. */
export const FUZZ_TEST_TIMEOUT_MS = Math.max(60_000, FUZZ_RUNS * 150);

/** fast-check parameters shared by every property. */
export function fuzzParameters<T>(): fc.Parameters<T> {
  return { numRuns: FUZZ_RUNS, ...(FUZZ_SEED === undefined ? {} : { seed: FUZZ_SEED }) };
}

/** The one property every answer has: no 5xx. */
export function expectBelow500(status: number, what: string, body?: Buffer): void {
  if (status >= 500) throw new Error(`${what} answered ${status} ${body?.toString('utf8').slice(0, 200) ?? ''}`);
}

export const FUZZ_API_KEY = 'fuzz-api-key-0123456789abcdef';
const TENANT = 'acme';

export interface FuzzMode {
  readonly name: 'api-key' | 'anonymous';
  readonly env: Readonly<Record<string, string>>;
}

/** With an API key on every request (tenant acme), and anonymous on loopback (tenant default). */
export const FUZZ_MODES: readonly FuzzMode[] = [
  { name: 'api-key', env: { FERRY_API_KEYS: `${TENANT}:${FUZZ_API_KEY}` } },
  { name: 'anonymous', env: {} },
];

export const ID_SHAPE = /^[A-Za-z0-9_-]{22}$/;
const U_SIZE = 100;
export const U_OFFSET = 5;
/** After a request whose outcome is unknown, the data directory must stay unchanged this long twice. */
const SETTLE_MS = 25;
const F_BYTES = Buffer.from('%PDF-1.4\nferry fuzz fixture: the bytes of F never change\n', 'utf8');

/** Process-level failures seen while the suite runs (listeners are attached by the test file). */
export interface ProcessErrors {
  readonly seen: string[];
}

export function watchProcessErrors(): ProcessErrors {
  const seen: string[] = [];
  process.on('uncaughtException', (error) => seen.push(`uncaughtException: ${String(error?.stack ?? error)}`));
  process.on('unhandledRejection', (reason) => seen.push(`unhandledRejection: ${String(reason)}`));
  return { seen };
}

/** A request as the properties describe it: `auth: false` leaves out the mode's credentials. */
export interface RigRequest extends FuzzRequest {
  readonly auth?: boolean;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

export class FuzzRig {
  /** Ids the fuzzer created (201 with a Location) during the current property. */
  readonly created = new Set<string>();
  /** Requests that were accepted and removed U, F or a seed (path, status), for the report. */
  readonly acceptedRemovals: string[] = [];
  /** How often each status was answered (`none`: no answer; `not sent`: refused by node:http). */
  readonly statuses = new Map<string, number>();
  /** Requests of the current property that were accepted or whose outcome is unknown (decoded). */
  private readonly acceptedPaths: string[] = [];
  private listedBefore = new Set<string>();
  /** The last fuzzed request, with placeholders resolved. */
  private lastRequest = '';
  /** Names under uploads/ and files/ just before the last fuzzed request. */
  private stored = new Set<string>();
  /** Requests of the current property that got no answer (what they did is not known). */
  private unanswered = 0;
  /** The last few fuzzed requests and their answers, for failure messages. */
  private readonly history: string[] = [];
  u = '';
  f = '';
  readonly seeds: string[] = [];
  /** The query of F's signed download URL (`expires=…&signature=…`). */
  signedF = '';
  /** A valid upload token of this tenant (for credential fuzzing). */
  token = '';

  private constructor(
    readonly mode: FuzzMode,
    readonly ferry: InProcessFerry,
    private readonly errors: ProcessErrors,
  ) {}

  static async start(mode: FuzzMode, errors: ProcessErrors): Promise<FuzzRig> {
    const rig = new FuzzRig(mode, await startInProcessFerry({ ...mode.env }), errors);
    await rig.makeU();
    await rig.makeF();
    await rig.makeSeeds();
    const token = await rig.valid('POST', '/v1/tokens', { 'Content-Type': 'application/json' }, Buffer.from('{}'));
    rig.token = (JSON.parse(token.body.toString('utf8')) as { data: { token: string } }).data.token;
    rig.listedBefore = new Set(await rig.listIds());
    return rig;
  }

  /** The tenant fuzzed requests act as. */
  get tenant(): string {
    return this.mode.name === 'api-key' ? TENANT : 'default';
  }

  get url(): string {
    return this.ferry.url;
  }

  close(): Promise<void> {
    return this.ferry.close();
  }

  /** The mode's credentials: the API key, or nothing on the anonymous loopback Ferry. */
  authHeaders(): Record<string, string> {
    return this.mode.name === 'api-key' ? { Authorization: `Bearer ${FUZZ_API_KEY}` } : {};
  }

  /** Replaces the placeholders of generated text with the rig's ids, key and token. */
  resolve(text: string): string {
    return text.replace(/<<(U|F|FETAG|SIGNED_F|S\d|KEY|TOKEN)>>/g, (_all, name: string) => {
      if (name === 'SIGNED_F') return this.signedF;
      if (name === 'U') return this.u;
      if (name === 'FETAG') return `"${this.f}-${F_BYTES.length}"`;
      if (name === 'F') return this.f;
      if (name === 'KEY') return FUZZ_API_KEY;
      if (name === 'TOKEN') return this.token;
      return this.seeds[Number(name.slice(1))] ?? 'no-such-seed';
    });
  }

  /**
   * Sends a fuzzed request (placeholders resolved, credentials added unless `auth: false` or the
   * request sets its own) and records what it created. `undefined`: node:http would not send it.
   */
  async send(req: RigRequest): Promise<FuzzResponse | undefined> {
    const headers: Record<string, string | readonly string[]> = req.auth === false ? {} : this.authHeaders();
    for (const [name, value] of Object.entries(req.headers ?? {})) {
      if (value === undefined) continue;
      headers[name] = typeof value === 'string' ? this.resolve(value) : value.map((v) => this.resolve(v));
    }
    const resolved: FuzzRequest = {
      ...req,
      path: this.resolve(req.path),
      headers,
    };
    this.lastRequest = `${resolved.method} ${resolved.path}`;
    this.remember(describeFuzzRequest(resolved));
    this.stored = await storedNames(this.ferry.dataDir);
    const res = await fuzzSend(this.url, resolved);
    // `undefined` here: node:http refused to send it, so the server never saw it.
    this.answered(res === undefined ? 'not sent' : res.status);
    if (res) this.note(res.status, res.headers.location);
    return res;
  }

  /**
   * Sends a raw request (placeholders resolved; CR and LF dropped from header values so each stays
   * one line; the mode's credentials first unless `auth` is false). `undefined`: no answer.
   */
  async sendRaw(req: RawRequest & { readonly auth?: boolean }): Promise<RawResponse | undefined> {
    const line = (text: string) => this.resolve(text).replace(/[\r\n]/g, '');
    const credentials = req.auth === false ? [] : Object.entries(this.authHeaders());
    const resolved: RawRequest = {
      ...req,
      target: line(req.target),
      headers: [...credentials, ...req.headers].map(([name, value]) => [line(name), line(value)] as const),
    };
    this.lastRequest = `${resolved.method} ${resolved.target}`;
    const headerText = resolved.headers
      .map(([name, value]) => `${name}: ${clipText(JSON.stringify(value), 120)}`)
      .join('; ');
    const length =
      resolved.contentLength === undefined ? '' : ` Content-Length ${JSON.stringify(resolved.contentLength)}`;
    this.remember(
      `raw ${resolved.method} ${clipText(JSON.stringify(resolved.target))} [${headerText}]${length} body ${resolved.body?.length ?? 0} B${resolved.halfClose ? ', then half-closed' : ''}`,
    );
    this.stored = await storedNames(this.ferry.dataDir);
    const res = await fuzzSendRaw(this.url, resolved);
    this.answered(res?.status);
    if (res) this.note(res.status, res.headers.location);
    return res;
  }

  private remember(description: string): void {
    this.history.push(description);
    if (this.history.length > 6) this.history.shift();
  }

  private answered(status: number | 'not sent' | undefined): void {
    this.history[this.history.length - 1] += ` → ${status ?? 'no answer'}`;
    const key = String(status ?? 'none');
    this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
  }

  /** The last requests, oldest first, for failure messages. */
  recent(): string {
    return this.history.map((line) => `\n    ${line}`).join('');
  }

  /** Records a 201's new upload: its id must be id-shaped. */
  private note(status: number, location: string | string[] | undefined): void {
    if (status !== 201 || typeof location !== 'string') return;
    const id = /\/files\/([^/?#]+)$/.exec(location)?.[1];
    if (id === undefined || !ID_SHAPE.test(id)) {
      throw new Error(`201 with a Location that is not an upload URL with an id: ${JSON.stringify(location)}`);
    }
    this.created.add(id);
  }

  /**
   * Per case, after the request just sent (`status` its answer; undefined if there was none, or if
   * it does not tell the request's outcome): the process answers, U and F are as made, nothing
   * crashed, and a rejected request created or removed nothing in the data directory.
   */
  async checkCase(status: number | undefined): Promise<void> {
    const what = clipText(this.lastRequest, 2000);
    // A request whose outcome is not known may still be at work in the server: let it finish.
    if (status === undefined) {
      this.unanswered += 1;
      await this.settle();
    }
    if (this.errors.seen.length > 0) throw new Error(`after ${what}: ${this.errors.seen.join('\n')}`);
    const health = await this.valid('GET', '/healthz', {}, undefined, false);
    if (health.status !== 200) throw new Error(`after ${what}: /healthz answered ${health.status}`);
    // Unanswered: whether it was accepted is not known, so it is given the benefit of the doubt.
    const accepted = status === undefined || (status >= 200 && status < 300);
    if (accepted) this.acceptedPaths.push(decodeLoosely(this.lastRequest));
    else await this.checkStorageUnchanged(what, status);

    const head = await fuzzSend(this.url, {
      method: 'HEAD',
      path: `/files/${this.u}`,
      headers: { ...this.authHeaders(), 'Tus-Resumable': '1.0.0' },
    });
    if (head?.status === 200) {
      if (head.headers['upload-offset'] !== String(U_OFFSET)) {
        throw new Error(
          `after ${what} (answered ${status}): U's offset is ${head.headers['upload-offset']}, not ${U_OFFSET}; recent requests:${this.recent()}`,
        );
      }
    } else {
      this.removedBy(what, status, accepted, this.u, `U (HEAD answered ${head?.status})`);
      await this.makeU();
    }

    const content = await fuzzSend(this.url, {
      method: 'GET',
      path: `/v1/files/${this.f}/content`,
      headers: this.authHeaders(),
    });
    if (content?.status === 200) {
      if (sha256(content.body) !== sha256(F_BYTES)) {
        throw new Error(`after ${what} (answered ${status}): F's bytes changed; recent requests:${this.recent()}`);
      }
    } else {
      this.removedBy(what, status, accepted, this.f, `F (content answered ${content?.status})`);
      await this.makeF();
    }
  }

  /** Waits until the data directory stops changing (two looks `SETTLE_MS` apart agree), at most 1 s. */
  private async settle(): Promise<void> {
    let last = [...(await storedNames(this.ferry.dataDir))].join();
    for (let waited = 0; waited < 1000; waited += SETTLE_MS) {
      await sleep(SETTLE_MS);
      const now = [...(await storedNames(this.ferry.dataDir))].join();
      if (now === last && waited > 0) return;
      last = now;
    }
  }

  /** A rejected request created or removed nothing in the data directory. */
  private async checkStorageUnchanged(what: string, status: number): Promise<void> {
    const now = await storedNames(this.ferry.dataDir);
    const added = [...now].filter((name) => !this.stored.has(name));
    const removed = [...this.stored].filter((name) => !now.has(name));
    if (added.length === 0 && removed.length === 0) return;
    const durable = await durableRecords(this.ferry.dataDir, 'files');
    const records = added
      .filter((name) => name.startsWith('files/'))
      .map((name) => JSON.stringify(durable.get(name.slice('files/'.length)) ?? '?'));
    throw new Error(
      `a rejected request (${status}) changed the data directory: added [${added.join(', ')}], removed [${removed.join(', ')}]` +
        `${records.map((record) => `\n  new record: ${clipText(record, 600)}`).join('')}\n  request: ${what}; recent requests:${this.recent()}`,
    );
  }

  /** U or F is gone: fine only after an accepted request that named it. */
  private removedBy(what: string, status: number | undefined, accepted: boolean, id: string, which: string): void {
    if (!accepted) {
      throw new Error(
        `${which} is gone after a rejected request (${status}): ${what}; recent requests:${this.recent()}`,
      );
    }
    if (!decodeLoosely(this.lastRequest).includes(id)) {
      throw new Error(`${which} is gone after ${what}, which does not name it; recent requests:${this.recent()}`);
    }
    this.acceptedRemovals.push(`${which}: ${clipText(what)} → ${status ?? 'outcome unknown'}`);
  }

  /** One line on what the cases were answered, and what accepted requests removed. */
  summary(): string {
    const counts = [...this.statuses].sort(([a], [b]) => a.localeCompare(b)).map(([status, n]) => `${status}×${n}`);
    const removals = this.acceptedRemovals.map((line) => `\n  accepted removal of ${line}`).join('');
    return `[fuzz ${this.mode.name}] answers ${counts.join(' ')}${removals}`;
  }

  /** Per property: listing, created ids and the data directory (see the file comment). */
  async checkState(): Promise<void> {
    const listed = new Set(await this.listIds());
    for (const id of this.listedBefore) {
      if (listed.has(id) || id === this.u || id === this.f) continue;
      if (!this.acceptedPaths.some((p) => p.includes(id))) {
        throw new Error(`file ${id} disappeared from the listing without an accepted request naming it`);
      }
    }
    for (const id of listed) {
      if (
        !this.listedBefore.has(id) &&
        !this.created.has(id) &&
        id !== this.u &&
        id !== this.f &&
        this.unanswered === 0
      ) {
        const record = await fuzzSend(this.url, {
          method: 'GET',
          path: `/v1/files/${id}`,
          headers: this.authHeaders(),
        });
        throw new Error(`file ${id} is listed but no accepted creation made it: ${record?.body.toString('utf8')}`);
      }
    }
    for (const id of this.created) if (!ID_SHAPE.test(id)) throw new Error(`created id ${JSON.stringify(id)}`);
    await this.checkDataDir();
    if (this.errors.seen.length > 0) throw new Error(this.errors.seen.join('\n'));
    // The next property starts from here.
    this.listedBefore = listed;
    this.created.clear();
    this.acceptedPaths.length = 0;
    this.unanswered = 0;
  }

  /** Every entry under the data directory is an upload's bytes or record, or a file record. */
  private async checkDataDir(): Promise<void> {
    // Writes finish just after answers (records, processing): let them settle.
    for (let attempt = 0; ; attempt++) {
      const stray = await strayEntries(this.ferry.dataDir);
      if (stray.length === 0) return;
      if (attempt >= 20) throw new Error(`unexpected entries in the data directory: ${stray.join(', ')}`);
      await sleep(100);
    }
  }

  /** Every file id the tenant's listing shows, following cursors. */
  async listIds(): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 1000; page++) {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await this.valid('GET', `/v1/files?limit=1000${query}`);
      const body = JSON.parse(res.body.toString('utf8')) as { data: { id: string }[]; next_cursor: string | null };
      ids.push(...body.data.map((file) => file.id));
      cursor = body.next_cursor;
      if (cursor === null) return ids;
    }
    throw new Error('listing did not end');
  }

  /** A request that must succeed (setup and checks). */
  async valid(
    method: string,
    target: string,
    headers: Record<string, string> = {},
    body?: Buffer,
    auth = true,
  ): Promise<FuzzResponse> {
    const req: FuzzRequest = {
      method,
      path: target,
      headers: { ...(auth ? this.authHeaders() : {}), ...headers },
      body,
    };
    const res = await fuzzSend(this.url, req);
    if (!res || res.status >= 300) {
      throw new Error(`${describeFuzzRequest(req)} → ${res?.status} ${res?.body.toString('utf8').slice(0, 300)}`);
    }
    return res;
  }

  private async create(headers: Record<string, string>, body?: Buffer): Promise<string> {
    const res = await this.valid('POST', '/files/', { 'Tus-Resumable': '1.0.0', ...headers }, body);
    const id = /\/files\/([^/?#]+)$/.exec(String(res.headers.location))?.[1];
    if (!id || !ID_SHAPE.test(id)) throw new Error(`no upload id in ${String(res.headers.location)}`);
    return id;
  }

  private async makeU(): Promise<void> {
    this.u = await this.create({ 'Upload-Length': String(U_SIZE), 'Upload-Metadata': `filename ${b64('u.bin')}` });
    await this.valid(
      'PATCH',
      `/files/${this.u}`,
      { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      Buffer.alloc(U_OFFSET, 0x75),
    );
  }

  private async makeF(): Promise<void> {
    this.f = await this.create(
      {
        'Upload-Length': String(F_BYTES.length),
        'Upload-Metadata': `filename ${b64('f.pdf')},filetype ${b64('application/pdf')}`,
        'Content-Type': 'application/offset+octet-stream',
      },
      F_BYTES,
    );
    await this.waitCompleted(this.f);
    const file = await this.valid('GET', `/v1/files/${this.f}`);
    const url = (JSON.parse(file.body.toString('utf8')) as { data: { download_url: string } }).data.download_url;
    this.signedF = new URL(url).search.slice(1);
  }

  private async makeSeeds(): Promise<void> {
    // S0: a completed empty file whose name and type need escaping wherever they are shown.
    const s0 = await this.create({
      'Upload-Length': '0',
      'Upload-Metadata': [
        `filename ${b64('"<script>\u202e\u0000..\\..\\evil.html"')}`,
        `filetype ${b64('text/html')}`,
        `folder ${b64('../../etc')}`,
        `tags ${b64('a,,b, c ,\u00e9')}`,
        `batch ${b64('b\u0001atch')}`,
        `owner ${b64('{"__proto__":1}')}`,
        'flag',
      ].join(','),
    });
    await this.waitCompleted(s0);
    const s1 = await this.create({ 'Upload-Defer-Length': '1' });
    const s2 = await this.create({ 'Upload-Length': '0', 'Upload-Concat': 'partial' });
    this.seeds.push(s0, s1, s2);
  }

  private async waitCompleted(id: string): Promise<void> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const res = await this.valid('GET', `/v1/files/${id}`);
      const status = (JSON.parse(res.body.toString('utf8')) as { data: { status: string } }).data.status;
      if (status === 'completed') return;
      if (status === 'failed') throw new Error(`fixture ${id} failed processing`);
      await sleep(25);
    }
    throw new Error(`fixture ${id} was not completed in time`);
  }
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function clipText(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Percent-escapes of ASCII characters decoded (ids are ASCII), everything else left as it is. */
export function decodeLoosely(text: string): string {
  return text.replace(/%([0-7][0-9a-f])/gi, (_all, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * Names of what is stored: `uploads/<id>` for each upload's bytes (temporary files left out), and
 * `upload-records/<id>` and `files/<id>` for each record in the logs `uploads/records.log` and
 * `files/records.log`.
 */
async function storedNames(dataDir: string): Promise<Set<string>> {
  const names = new Set<string>();
  for (const name of await readdir(path.join(dataDir, 'uploads'))) {
    if (/^[A-Za-z0-9_-]{22}$/.test(name)) names.add(`uploads/${name}`);
  }
  for (const id of (await durableRecords(dataDir, 'uploads')).keys()) names.add(`upload-records/${id}`);
  for (const id of (await durableRecords(dataDir, 'files')).keys()) names.add(`files/${id}`);
  return names;
}

/** A record log and its owner's lock (see RecordLog). */
const RECORD_LOG = /^records\.(?:log|lock)$/;
const UPLOAD_ENTRY = new RegExp(`^[A-Za-z0-9_-]{22}$|${RECORD_LOG.source}`);
const FILE_ENTRY = RECORD_LOG;

async function strayEntries(dataDir: string): Promise<string[]> {
  const stray: string[] = [];
  for (const entry of await readdir(dataDir, { withFileTypes: true })) {
    const shape = entry.name === 'uploads' ? UPLOAD_ENTRY : entry.name === 'files' ? FILE_ENTRY : undefined;
    if (!shape || !entry.isDirectory()) {
      stray.push(entry.name);
      continue;
    }
    for (const inner of await readdir(path.join(dataDir, entry.name), { withFileTypes: true })) {
      if (!inner.isFile() || !shape.test(inner.name)) stray.push(`${entry.name}/${inner.name}`);
    }
  }
  return stray;
}

/**
 * One Ferry per `describe` of a fuzz suite: started before its properties, its summary printed and
 * closed after them. Returns a getter (the rig exists only once `beforeAll` ran).
 */
export function useFuzzRig(mode: FuzzMode, errors: ProcessErrors): () => FuzzRig {
  let rig: FuzzRig | undefined;
  beforeAll(async () => {
    rig = await FuzzRig.start(mode, errors);
  });
  afterAll(async () => {
    if (!rig) return;
    console.info(rig.summary());
    await rig.close();
  });
  return () => {
    if (!rig) throw new Error('the fuzz rig is used before beforeAll started it');
    return rig;
  };
}
