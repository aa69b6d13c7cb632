import { close, open, write } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const openFile = promisify(open);
const closeFile = promisify(close);

// Ids are upload ids (base64url), as the other record stores require.
const ID = /^[A-Za-z0-9_-]+$/;
/** Records of older versions (and of the stores replicas use on a shared volume): one `<id>.json` per record. */
const RECORD_FILE = /^([A-Za-z0-9_-]+)\.json$/;
const LOG = 'records.log';
/** Holds the pid of the process that owns the log: two writers would lose each other's records. */
const LOCK = 'records.lock';
/** The log is rewritten once it is this much bigger than the records it holds (and past the floor). */
const COMPACT_FACTOR = 2;
const COMPACT_FLOOR_BYTES = 4 * 1024 * 1024;

/** What every record kept in a log has. */
export interface LoggedRecord {
  readonly id: string;
}

type Entry<T> = { readonly put: T } | { readonly delete: string };

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The durable records of embedded mode (one process owns the data directory): the file records
 * (`files/`) and the upload records (`uploads/`), each kind in an append-only log, `<dir>/records.log`,
 * one JSON line per change (`{"put":record}` or `{"delete":id}`), replayed into memory at start and
 * rewritten whole when it has grown to twice what it holds. It is both a FileRecordStore and an
 * UploadStateStore.
 *
 * Why not a file per record (DiskFileRecordStore and FileUploadStateStore, kept for a directory that
 * replicas share): a file record changes three times in a small upload's life and an upload record at
 * least once, and each change as a temporary file plus a rename creates an inode and rewrites a
 * directory entry, which made the records cost small uploads about a third of their throughput. An
 * append is one write; appends that arrive while one is under way go out together in the next write.
 *
 * Durability is the same as for the bytes (DiskBlobStore): handed to the kernel, no fsync. A power
 * loss can cut the last line short; replay ignores a line that does not parse (only the last can be
 * cut), and the rewrite at start removes it. The rewrite goes to a temporary file that is renamed over
 * the log, so a crash in the middle leaves the old log whole. Every record is in memory, as the
 * file registry's index is anyway: about half a kilobyte per record.
 */
export class RecordLog<T extends LoggedRecord> {
  private readonly records = new Map<string, T>();
  /** Length of each record's line, to know how much of the log is still live. */
  private readonly lineBytes = new Map<string, number>();
  private liveBytes = 0;
  private logBytes = 0;
  private fd: number | undefined;
  /** Whether this process holds the lock (and so may remove it). */
  private owner = false;
  private queue: { line: string; apply: () => void; waiter: Waiter }[] = [];
  private flushing = false;
  private readonly idle: (() => void)[] = [];

  /** `kind` names the records in errors (`file`, `upload`). */
  constructor(
    private readonly directory: string,
    private readonly kind: string,
  ) {}

  private get logFile(): string {
    return path.join(this.directory, LOG);
  }

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    await this.takeOwnership();
    const names = await readdir(this.directory);
    const legacy = names.filter((name) => RECORD_FILE.test(name));
    for (const name of legacy) {
      const record = JSON.parse(await readFile(path.join(this.directory, name), 'utf8')) as T;
      this.remember(record, JSON.stringify({ put: record }).length + 1);
    }
    await this.replay();
    // A clean log to append to: without a cut last line, and with the records of older versions.
    await this.rewrite();
    for (const name of [...legacy, ...names.filter((name) => name.endsWith('.tmp'))]) {
      await rm(path.join(this.directory, name), { force: true });
    }
  }

  async close(): Promise<void> {
    await this.settled();
    if (this.fd !== undefined) await closeFile(this.fd);
    this.fd = undefined;
    if (!this.owner) return;
    this.owner = false;
    await rm(path.join(this.directory, LOCK), { force: true });
  }

  /**
   * Refuses to start while another live process owns the log (`ferry sweep` while `ferry serve` runs
   * on the same data directory). A lock left by a process that is gone (killed) is taken over.
   */
  private async takeOwnership(): Promise<void> {
    const lock = path.join(this.directory, LOCK);
    for (;;) {
      try {
        await writeFile(lock, String(process.pid), { flag: 'wx' });
        this.owner = true;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = Number(await readFile(lock, 'utf8').catch(() => ''));
      if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new Error(
          `${this.directory} is in use by process ${owner} (ferry serve?): one process at a time owns an embedded data directory`,
        );
      }
      await rm(lock, { force: true });
    }
  }

  get(id: string): Promise<T | undefined> {
    return Promise.resolve(this.records.get(id));
  }

  put(record: T): Promise<void> {
    if (!ID.test(record.id)) {
      return Promise.reject(new RangeError(`not a ${this.kind} id: ${JSON.stringify(record.id)}`));
    }
    const line = `${JSON.stringify({ put: record } satisfies Entry<T>)}\n`;
    return this.append(line, () => this.remember(record, line.length));
  }

  delete(id: string): Promise<void> {
    return this.append(`${JSON.stringify({ delete: id } satisfies Entry<T>)}\n`, () => this.forget(id));
  }

  async *list(): AsyncIterable<string> {
    yield* [...this.records.keys()];
  }

  /** Memory changes once the line is written, so `get` never shows what the log does not hold. */
  private append(line: string, apply: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line, apply, waiter: { resolve, reject } });
      if (!this.flushing) void this.flush();
    });
  }

  /** The only writer: takes everything queued, writes it in one go, and repeats until nothing is left. */
  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        if (this.fd === undefined) throw new Error(`the ${this.kind} record log is closed`);
        const text = batch.map((entry) => entry.line).join('');
        await writeAll(this.fd, Buffer.from(text));
        this.logBytes += text.length;
        for (const entry of batch) {
          entry.apply();
          entry.waiter.resolve();
        }
        if (this.logBytes > Math.max(COMPACT_FLOOR_BYTES, COMPACT_FACTOR * this.liveBytes)) await this.rewrite();
      } catch (error) {
        for (const entry of batch) entry.waiter.reject(error);
        // Part of the batch may be in the log, and the next append would run on from a cut line:
        // rewrite the log from memory, which holds none of the failed batch.
        await this.rewrite().catch(() => undefined);
      }
    }
    this.flushing = false;
    for (const resolve of this.idle.splice(0)) resolve();
  }

  private settled(): Promise<void> {
    if (!this.flushing) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private async replay(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.logFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let entry: Entry<T>;
      try {
        entry = JSON.parse(line) as Entry<T>;
      } catch {
        continue; // A line cut short by a power loss: the change it held was never acknowledged as stored.
      }
      if ('put' in entry && entry.put && typeof (entry.put as Partial<LoggedRecord>).id === 'string')
        this.remember(entry.put, line.length + 1);
      else if ('delete' in entry && typeof entry.delete === 'string') this.forget(entry.delete);
    }
  }

  /** Writes every record to a new log and puts it in place of the old one. */
  private async rewrite(): Promise<void> {
    const temporary = `${this.logFile}.${process.pid}.tmp`;
    const lines = [...this.records.values()].map((record) => `${JSON.stringify({ put: record } satisfies Entry<T>)}\n`);
    const snapshot = lines.join('');
    await writeFile(temporary, snapshot);
    await rename(temporary, this.logFile);
    if (this.fd !== undefined) await closeFile(this.fd);
    this.fd = undefined; // Never a closed descriptor, should the open fail.
    this.fd = await openFile(this.logFile, 'a');
    this.logBytes = snapshot.length;
  }

  private remember(record: T, bytes: number): void {
    this.liveBytes += bytes - (this.lineBytes.get(record.id) ?? 0);
    this.lineBytes.set(record.id, bytes);
    this.records.set(record.id, record);
  }

  private forget(id: string): void {
    this.liveBytes -= this.lineBytes.get(id) ?? 0;
    this.lineBytes.delete(id);
    this.records.delete(id);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `write` may take fewer bytes than given (a full disk, a signal): go on until all are written. */
async function writeAll(fd: number, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await new Promise<number>((resolve, reject) =>
      write(fd, bytes, offset, bytes.length - offset, null, (error, written) =>
        error ? reject(error) : resolve(written),
      ),
    );
  }
}
