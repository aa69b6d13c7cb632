import type { IncomingMessage } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { Request, Response } from 'express';
import { FerryError, isFerryError } from '../../core/errors.js';
import type { UploadPolicy } from '../../core/auth/upload-policy.js';
import type { Locker } from '../../core/ports.js';
import type { UploadSlots } from '../../core/uploads/upload-slots.js';
import type { ExpectedChecksum } from '../../core/uploads/checksums.js';
import { isUploadId } from '../../core/uploads/upload-id.js';
import type { Upload, Uploads } from '../../core/uploads/uploads.js';
import { NON_NEGATIVE_INTEGER, parseUploadChecksum } from './tus-headers.js';
import { TusRefusal, sendTus, stateHeaders, tusStatusOf } from './tus-responses.js';

export interface PatchHandlerOptions {
  readonly uploads: Uploads;
  readonly locker: Locker;
  readonly maxSize: number;
  readonly lockDrainTimeoutMs: number;
  readonly policyOf: (req: IncomingMessage) => UploadPolicy;
  readonly slots: UploadSlots;
}

/**
 * A refused PATCH whose body is at most this big is read and dropped after the answer, as Go's HTTP
 * server does (256 KiB there): the client can then read the answer instead of failing with EPIPE on
 * a closed connection. A bigger body is not worth the bandwidth; that connection is closed.
 */
const DRAIN_REFUSED_BODY_UP_TO = 1024 * 1024;

const TUS_CONTENT_TYPE = /^application\/offset\+octet-stream\s*(?:;|$)/i;

/** Whether a request's body is upload bytes (a creation-with-upload POST carries them only then). */
export function carriesUploadBytes(req: IncomingMessage): boolean {
  return TUS_CONTENT_TYPE.test(req.headers['content-type'] ?? '');
}

/**
 * tus `PATCH`, Ferry's own: the request body goes straight from the socket into core's append, with
 * Node streams end to end. @tus/server turns every body into a web stream and back, which copies each
 * chunk into a fresh ArrayBuffer; with an application-sized heap that external memory churn set off a
 * full GC every few MiB and cost about twice the CPU per GB (measured, see README). Semantics follow
 * tus 1.0 and @tus/server, with the differences Ferry documents (415 for a wrong Content-Type, an
 * identical repeated Upload-Length ignored).
 */
export function createPatchHandler(options: PatchHandlerOptions) {
  const { uploads, locker } = options;

  async function handlePatch(req: Request, res: Response, id: string): Promise<void> {
    res.locals.uploadId = id;
    try {
      const request = readPatchHeaders(req);
      const policy = options.policyOf(req);
      const after = await writeBody(req, res, id, policy, request, () => uploads.getLive(id, policy.tenant));
      sendTus(res, 204, '', { 'Upload-Offset': String(after.offset), ...stateHeaders(after) });
    } catch (error) {
      refuse(req, res, error, true);
    }
  }

  /**
   * A creation-with-upload POST: `create` makes the upload `id` (that only this request knows) under
   * its lock, and the body is then written under the same lock exactly as a PATCH at offset 0 would
   * be (one fast path for every body). Resolves with the upload after it; a refusal (`TusRefusal`, a
   * core error) is for the caller to answer.
   */
  async function writeCreationBody(
    req: Request,
    res: Response,
    id: string,
    policy: UploadPolicy,
    create: () => Promise<Upload>,
  ): Promise<Upload> {
    const request = { offset: 0, declaredLength: undefined, ...readBodyHeaders(req) };
    return writeBody(req, res, id, policy, request, create);
  }

  /**
   * Under the upload's lock and a slot of its tenant: finds the upload (`lookup`, under the lock),
   * checks that it takes bytes (not a final upload) at this offset and length, then appends the body.
   * Resolves with the upload after it.
   */
  async function writeBody(
    req: Request,
    res: Response,
    id: string,
    policy: UploadPolicy,
    request: PatchHeaders,
    lookup: () => Promise<Upload>,
  ): Promise<Upload> {
    // A name no upload can have takes no slot and no lock (with Redis, a lock is a key named after it).
    if (!isUploadId(id)) throw new FerryError('upload_not_found', 'upload not found');
    const tenant = policy.tenant;
    const releaseSlot = options.slots.acquire(tenant, policy.maxConcurrentUploads);
    try {
      const lock = locker.newLock(id);
      const waiting = new AbortController();
      const abortWait = () => waiting.abort();
      req.once('close', abortWait);
      let stopBody: (() => void) | undefined;
      let releaseRequested = false;
      await lock.lock(waiting.signal, () => {
        if (releaseRequested) return;
        releaseRequested = true;
        // The holder gets a moment to finish on its own, then keeps what it has and lets go.
        setTimeout(() => stopBody?.(), options.lockDrainTimeoutMs).unref();
      });
      req.off('close', abortWait);

      let after: Upload;
      let bodyStopped = false;
      try {
        const upload = await lookup();
        if (upload.concatenation?.role === 'final') throw new TusRefusal(403, 'a final upload cannot be patched');
        if (upload.offset !== request.offset) throw new TusRefusal(409, 'Upload-Offset conflict');
        // A deferred length may grow up to the limit the upload was created under.
        const maxSize = upload.limits?.maxSize ?? options.maxSize;
        const size = await settleLength(id, upload.size, request.declaredLength, request.offset, maxSize);
        const limit = (size ?? maxSize) - request.offset;
        if (request.contentLength !== undefined && request.contentLength > limit) {
          throw new TusRefusal(413, "upload's size exceeded");
        }
        const body = new BodyLimiter(limit);
        const stop = () => {
          if (bodyStopped) return;
          bodyStopped = true;
          req.unpipe(body);
          body.end();
        };
        stopBody = stop;
        if (releaseRequested) stop();
        // A client that goes away ends the body: what arrived is kept (unless it is a checksummed chunk).
        req.once('close', () => {
          if (!req.complete) stop();
        });
        req.pipe(body);
        const record = size === upload.size ? upload : { ...upload, size };
        after = await uploads.append(record, request.offset, body, request.checksum);
        if (body.exceeded) {
          stop();
          throw new TusRefusal(413, "upload's size exceeded");
        }
      } finally {
        stopBody = undefined;
        await lock.unlock();
      }
      res.locals.bytesReceived = after.offset - request.offset;
      // The rest of a body we stopped reading is still on the wire: this connection cannot be reused.
      if (!req.complete) res.shouldKeepAlive = false;
      return after;
    } finally {
      releaseSlot();
    }
  }

  /** Answers a refused body request (or rethrows what is no refusal), closing the connection when its body is left unread. */
  function refuse(req: Request, res: Response, error: unknown, onUploadUrl: boolean): void {
    if (res.headersSent || req.socket.destroyed) return;
    if (!req.complete && !(isUnread(req) && isSmallRemainder(req))) res.shouldKeepAlive = false;
    if (error instanceof TusRefusal) sendTus(res, error.status, `${error.message}\n`);
    else if (isFerryError(error)) sendTus(res, tusStatusOf(error, onUploadUrl), `${error.message}\n`);
    else throw error;
  }

  /**
   * A deferred length may be declared on any PATCH. Repeating the stored length is harmless (a client
   * resuming after the declaring PATCH was cut does it); a different one is refused.
   */
  async function settleLength(
    id: string,
    stored: number | undefined,
    declared: number | undefined,
    offset: number,
    maxSize: number,
  ): Promise<number | undefined> {
    if (declared === undefined || declared === stored) return stored;
    if (stored !== undefined) throw new TusRefusal(400, 'Upload-Length is already set');
    if (declared < offset) throw new TusRefusal(400, 'Upload-Length is smaller than the stored offset');
    if (declared > maxSize) throw new TusRefusal(413, 'Maximum size exceeded');
    await uploads.declareSize(id, declared);
    return declared;
  }

  return { handlePatch, writeCreationBody, refuse };
}

interface PatchHeaders {
  readonly offset: number;
  readonly declaredLength: number | undefined;
  readonly contentLength: number | undefined;
  readonly checksum: ExpectedChecksum | undefined;
}

function readPatchHeaders(req: Request): PatchHeaders {
  if (!req.get('tus-resumable')) throw new TusRefusal(412, 'Tus-Resumable Required');
  const offset = req.get('upload-offset');
  if (offset === undefined || !NON_NEGATIVE_INTEGER.test(offset.trim())) {
    throw new TusRefusal(400, 'Upload-Offset header required (a non-negative integer)');
  }
  if (!TUS_CONTENT_TYPE.test(req.get('content-type') ?? '')) {
    throw new TusRefusal(415, 'Content-Type must be application/offset+octet-stream');
  }
  const length = req.get('upload-length');
  if (length !== undefined && !NON_NEGATIVE_INTEGER.test(length.trim())) {
    throw new TusRefusal(400, 'Upload-Length must be a non-negative integer');
  }
  return {
    offset: Number(offset),
    declaredLength: length === undefined ? undefined : Number(length),
    ...readBodyHeaders(req),
  };
}

/** What a request that carries upload bytes (PATCH, creation-with-upload POST) says about its body. */
function readBodyHeaders(req: Request): Pick<PatchHeaders, 'contentLength' | 'checksum'> {
  const contentLength = req.get('content-length');
  const checksumHeader = req.get('upload-checksum');
  const parsedChecksum = checksumHeader === undefined ? undefined : parseUploadChecksum(checksumHeader);
  if (parsedChecksum && !parsedChecksum.ok) throw new TusRefusal(400, parsedChecksum.error);
  return {
    contentLength: contentLength === undefined ? undefined : Number(contentLength),
    checksum: parsedChecksum?.ok
      ? { ...parsedChecksum.value, ...(contentLength !== undefined ? { length: Number(contentLength) } : {}) }
      : undefined,
  };
}

/**
 * Passes at most `limit` bytes and then ends, flagging `exceeded`: a body longer than the upload has
 * room for (possible only without Content-Length) keeps what fits and is answered 413.
 */
class BodyLimiter extends Transform {
  exceeded = false;
  private remaining: number;

  constructor(limit: number) {
    super();
    this.remaining = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.exceeded) return callback();
    if (chunk.length <= this.remaining) {
      this.remaining -= chunk.length;
      return callback(null, chunk);
    }
    this.exceeded = true;
    const fitting = chunk.subarray(0, this.remaining);
    this.remaining = 0;
    this.push(fitting);
    // End the readable side; whatever else the request sends is dropped.
    this.push(null);
    callback();
  }
}

/** A body refused before any of it was read: Node drains it itself after the answer. */
function isUnread(req: Request): boolean {
  return !req.readableDidRead;
}

/** Whether a refused request body is small enough to drain. */
function isSmallRemainder(req: Request): boolean {
  const length = Number(req.get('content-length'));
  return Number.isFinite(length) && length <= DRAIN_REFUSED_BODY_UP_TO;
}
