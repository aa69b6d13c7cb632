import type { IncomingMessage } from 'node:http';
import { Server, type ServerOptions } from '@tus/server';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { ServerRequest } from 'srvx';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import type { UploadPolicy } from '../../core/auth/upload-policy.js';
import { FerryError, isFerryError } from '../../core/errors.js';
import { declaredMediaType, sanitizeFolder, UNSPECIFIC_TYPES } from '../../core/files/well-known-metadata.js';
import { typeAllowed } from '../../core/tenancy.js';
import type { UploadSlots } from '../../core/uploads/upload-slots.js';
import type { Locker } from '../../core/ports.js';
import { CHECKSUM_ALGORITHMS } from '../../core/uploads/checksums.js';
import type { Uploads } from '../../core/uploads/uploads.js';
import { CoreDataStore } from './core-datastore.js';
import { sendUploadBytes } from './download.js';
import { createCreationHandler } from './creation-handler.js';
import { createPatchHandler } from './patch-handler.js';
import { parseUploadChecksum, parseUploadConcat, parseUploadMetadata } from './tus-headers.js';
import {
  EXTRA_EXPOSED_HEADERS,
  TUS_PATH,
  TUS_VERSION,
  retryAfter,
  sendTus,
  stateHeaders,
  tusStatusOf,
} from './tus-responses.js';

export interface TusRouterOptions {
  readonly uploads: Uploads;
  readonly locker: Locker;
  readonly maxSize: number;
  /** Absolute base URL for `Location`; undefined derives it from the request's Host. */
  readonly publicUrl: string | undefined;
  /** How long a lock holder may finish its request after being asked to release it. */
  readonly lockDrainTimeoutMs: number;
  readonly tenantOf: (req: IncomingMessage) => string;
  /** What the request may upload (its tenant's limits, narrowed by an upload token). */
  readonly policyOf: (req: IncomingMessage) => UploadPolicy;
  readonly slots: UploadSlots;
  /** The deployment's CORS origins, for the headers @tus/server writes itself. */
  readonly corsAllows: ((origin: string) => boolean) | undefined;
  readonly logger: Logger;
}

const OVERRIDABLE_METHODS = new Set(['PATCH', 'DELETE', 'HEAD']);

/**
 * tus 1.0 at `/files/`. @tus/server answers HEAD, termination and OPTIONS over Ferry's core. Ferry
 * answers the rest itself: creation, also with an upload's first bytes and for partial uploads
 * (creation-handler.ts), every body on one fast path with checksums (patch-handler.ts), final uploads
 * of a concatenation, method override, the 412 for an unsupported version, tenant checks, expiry from
 * the last received byte, error mapping, and downloads (@tus/server's GET crashed the process on
 * Node 20, see TUS-NOTES.md).
 */
export function createTusRouter(options: TusRouterOptions): express.Router {
  const { uploads, tenantOf, logger } = options;
  const store = new CoreDataStore(uploads);

  const serverOptions: ServerOptions & { datastore: CoreDataStore } = {
    path: TUS_PATH,
    datastore: store,
    locker: options.locker,
    // Only discovery (OPTIONS) reaches @tus/server with a size to tell: creation and bodies are Ferry's.
    maxSize: options.maxSize,
    ...(options.corsAllows ? { allowedOrigins: options.corsAllows, allowedCredentials: true } : {}),
    lockDrainTimeout: options.lockDrainTimeoutMs,
    exposedHeaders: EXTRA_EXPOSED_HEADERS,
    async onIncomingRequest(req, id) {
      const tenant = tenantOf(nodeRequestOf(req));
      // Termination may remove an expired upload; everything else must be live.
      if (req.method === 'DELETE') {
        await uploads.get(id, tenant);
        return;
      }
      await uploads.getLive(id, tenant);
    },
    onResponseError(_req, error) {
      if (isFerryError(error)) {
        // Only requests on an upload URL (HEAD, DELETE) reach a core error here.
        return { status_code: tusStatusOf(error, true), body: `${error.message}\n` };
      }
      if ('status_code' in error && error.status_code < 500) return undefined;
      // Anything else is a fault of ours: log it, tell the client nothing internal.
      logger.error({ err: error }, 'tus request failed');
      return { status_code: 500, body: 'Internal server error\n' };
    },
  };
  const tus = new Server(serverOptions);

  const bodies = createPatchHandler({
    uploads,
    locker: options.locker,
    maxSize: options.maxSize,
    lockDrainTimeoutMs: options.lockDrainTimeoutMs,
    policyOf: options.policyOf,
    slots: options.slots,
  });
  const creation = createCreationHandler({
    uploads,
    policyOf: options.policyOf,
    applyPolicy: applyPolicyToMetadata,
    uploadUrl,
    bodies,
    logger,
  });

  function uploadUrl(req: IncomingMessage, id: string): string {
    if (options.publicUrl) return `${options.publicUrl}${TUS_PATH}/${id}`;
    return `http://${req.headers.host ?? 'localhost'}${TUS_PATH}/${id}`;
  }

  const router = express.Router();
  router.get(`${TUS_PATH}/:id`, (req, res, next) => {
    // Express routes HEAD to GET handlers too; tus must answer HEAD (resume depends on it).
    if (req.method !== 'GET') return next();
    res.locals.uploadId = req.params.id;
    sendUploadBytes(uploads, req.params.id, tenantOf(req), req, res).catch(next);
  });
  router.all(`${TUS_PATH}{/*rest}`, (req, res, next) => {
    // The request log waits for this, so a request the client cut is logged with what it stored.
    res.locals.settled = handleTus(req, res).catch(next);
  });

  async function handleTus(req: Request, res: Response): Promise<void> {
    const refusal = applyMethodOverride(req) ?? refuseUnsupportedVersion(req) ?? refuseBadChecksumHeader(req);
    if (refusal) {
      sendTus(res, refusal.status, refusal.body, refusal.headers);
      return;
    }
    // Upload URLs are `/files/<id>`: anything deeper names no upload (and must not reach one
    // through its last segment, which is where @tus/server looks for the id).
    if (/^\/files\/[^/]+\/./.test(req.path)) {
      sendTus(res, 404, 'Not found\n');
      return;
    }
    if (req.method === 'PATCH') {
      const id = uploadIdOf(req);
      if (id) await bodies.handlePatch(req, res, id);
      else sendTus(res, 404, 'Not found\n');
      return;
    }
    if (req.method === 'POST') {
      const concat = req.get('upload-concat');
      if (concat?.trim().startsWith('final')) await createFinalUpload(req, res, concat);
      else await creation.handlePost(req, res);
      return;
    }
    // HEAD, DELETE and OPTIONS: @tus/server's.
    dropEmptyMetadataHeader(req);
    const response = await tus.handleWeb(new NodeRequest({ req, res }));
    const id = uploadIdOf(req);
    res.locals.uploadId = id;
    if (req.method === 'OPTIONS') response.headers.set('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
    for (const [name, value] of Object.entries(retryAfter(response.status))) response.headers.set(name, value);
    if (id && response.ok && req.method !== 'DELETE' && req.method !== 'OPTIONS') {
      const upload = await uploads.findInAnyTenant(id);
      if (upload) for (const [name, value] of Object.entries(stateHeaders(upload))) response.headers.set(name, value);
    }
    await sendNodeResponse(res, response);
  }

  /** `POST` with `Upload-Concat: final;<urls>`: join finished partial uploads into a new upload. */
  async function createFinalUpload(req: Request, res: Response, header: string): Promise<void> {
    const concat = parseUploadConcat(header, TUS_PATH);
    if (!concat.ok || concat.value.role !== 'final') {
      sendTus(res, 400, `${concat.ok ? 'invalid Upload-Concat' : concat.error}\n`);
      return;
    }
    const metadata = parseUploadMetadata(req.get('upload-metadata'));
    if (!metadata.ok) {
      sendTus(res, 400, `${metadata.error}\n`);
      return;
    }
    try {
      const policy = options.policyOf(req);
      const upload = await uploads.concatenate({
        tenant: policy.tenant,
        partIds: concat.value.partIds,
        metadata: applyPolicyToMetadata(policy, metadata.value),
        maxSize: policy.maxSize,
        protocol: 'tus',
        limits: { maxSize: policy.maxSize, allowedTypes: policy.allowedTypes },
      });
      res.locals.uploadId = upload.id;
      sendTus(res, 201, '', { Location: uploadUrl(req, upload.id), ...stateHeaders(upload) });
    } catch (error) {
      if (!isFerryError(error)) throw error;
      sendTus(res, error.status, `${error.message}\n`);
    }
  }

  return router;
}

interface Refusal {
  readonly status: number;
  readonly body: string;
  readonly headers?: Record<string, string>;
}

/** `X-HTTP-Method-Override` on a POST makes it the named method (for proxies that drop PATCH). */
/**
 * What a tenant's policy or an upload token says about a new upload's metadata: a declared specific
 * type it does not allow is refused (415) before any byte is stored (the sniffed type is checked again
 * after the upload), and a token's folder is where the upload goes (another folder is 403).
 */
function applyPolicyToMetadata(
  policy: UploadPolicy,
  metadata: Readonly<Record<string, string | null>>,
): Record<string, string | null> {
  const declared = declaredMediaType(metadata);
  // `application/octet-stream` claims nothing: processing decides from the bytes.
  if (declared && !UNSPECIFIC_TYPES.has(declared) && !typeAllowed(declared, policy.allowedTypes)) {
    throw new FerryError('type_not_allowed', `${declared} is not an allowed type`);
  }
  if (policy.folder === undefined) return { ...metadata };
  const asked = metadata.folder ? sanitizeFolder(metadata.folder) : undefined;
  if (asked !== undefined && asked !== policy.folder) {
    throw new FerryError('forbidden', `this upload token uploads into folder ${policy.folder} only`);
  }
  return { ...metadata, folder: policy.folder };
}

function applyMethodOverride(req: Request): Refusal | undefined {
  const override = req.get('x-http-method-override');
  if (req.method !== 'POST' || override === undefined) return undefined;
  const method = override.trim().toUpperCase();
  if (!OVERRIDABLE_METHODS.has(method)) {
    return { status: 400, body: 'X-HTTP-Method-Override must be PATCH, DELETE or HEAD\n' };
  }
  req.method = method;
  return undefined;
}

/** tus 1.0: a version the server does not support is 412 with the versions it does (@tus/server says 400). */
function refuseUnsupportedVersion(req: Request): Refusal | undefined {
  const version = req.get('tus-resumable');
  if (req.method === 'OPTIONS' || version === undefined || version.trim() === TUS_VERSION) return undefined;
  return { status: 412, body: 'Unsupported Tus-Resumable version\n', headers: { 'Tus-Version': TUS_VERSION } };
}

function refuseBadChecksumHeader(req: Request): Refusal | undefined {
  const header = req.get('upload-checksum');
  if (header === undefined) return undefined;
  const parsed = parseUploadChecksum(header);
  return parsed.ok ? undefined : { status: 400, body: `${parsed.error}\n` };
}

// Hooks get srvx's web request; the Node request (with Ferry's request context) sits behind it.
function nodeRequestOf(req: ServerRequest): IncomingMessage {
  // Ferry serves HTTP/1.1 only, so the Node request is always an IncomingMessage.
  const nodeRequest = req.runtime?.node?.req as IncomingMessage | undefined;
  if (!nodeRequest) throw new Error('tus hook called without the Node request');
  return nodeRequest;
}

/** The upload an upload URL (`/files/<id>`) names. */
function uploadIdOf(req: Request): string | undefined {
  return /\/files\/([^/]+)\/?$/.exec(req.path)?.[1];
}

/**
 * Some clients (tuspy among them) send an empty `Upload-Metadata` header on every request; it means
 * no metadata (API.md §3.2), and @tus/server's header validation would answer 400.
 */
function dropEmptyMetadataHeader(req: Request): void {
  const value = req.headers['upload-metadata'];
  if (typeof value === 'string' && value.trim() === '') dropHeader(req, 'upload-metadata');
}

/** Removes a request header from both views srvx reads: single headers from one, iteration from the other. */
function dropHeader(req: Request, lowerCaseName: string): void {
  delete req.headers[lowerCaseName];
  const raw: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() !== lowerCaseName) raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  req.rawHeaders = raw;
}
