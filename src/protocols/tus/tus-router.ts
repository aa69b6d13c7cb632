import type { IncomingMessage } from 'node:http';
import { Server, type ServerOptions } from '@tus/server';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { ServerRequest } from 'srvx';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { isFerryError } from '../../core/errors.js';
import type { Locker } from '../../core/ports.js';
import type { Uploads } from '../../core/uploads/uploads.js';
import { CoreDataStore } from './core-datastore.js';
import { sendUploadBytes } from './download.js';

export interface TusRouterOptions {
  readonly uploads: Uploads;
  readonly locker: Locker;
  readonly maxSize: number;
  /** Absolute base URL for `Location`; undefined derives it from the request's Host. */
  readonly publicUrl: string | undefined;
  /** How long a lock holder may finish its request after being asked to release it. */
  readonly lockDrainTimeoutMs: number;
  readonly tenantOf: (req: IncomingMessage) => string;
  readonly logger: Logger;
}

const TUS_PATH = '/files';
/** Headers Ferry adds to tus responses that browser clients must be able to read. */
const EXTRA_EXPOSED_HEADERS = ['Upload-Expires'];

/**
 * tus 1.0 at `/files/`: @tus/server handles the protocol over Ferry's core, Ferry adds what it does
 * differently (tenant checks, expiry computed from the last received byte, error mapping) and serves
 * downloads itself (@tus/server's GET crashed the process on Node 20, see TUS-NOTES.md).
 */
export function createTusRouter(options: TusRouterOptions): express.Router {
  const { uploads, tenantOf, logger } = options;
  const store = new CoreDataStore(uploads);
  // Hooks get srvx's web request; the Node request (with Ferry's request context) sits behind it.
  const nodeRequestOf = (req: ServerRequest): IncomingMessage => {
    // Ferry serves HTTP/1.1 only, so the Node request is always an IncomingMessage.
    const nodeRequest = req.runtime?.node?.req as IncomingMessage | undefined;
    if (!nodeRequest) throw new Error('tus hook called without the Node request');
    return nodeRequest;
  };

  const serverOptions: ServerOptions & { datastore: CoreDataStore } = {
    path: TUS_PATH,
    datastore: store,
    locker: options.locker,
    maxSize: options.maxSize,
    lockDrainTimeout: options.lockDrainTimeoutMs,
    exposedHeaders: EXTRA_EXPOSED_HEADERS,
    namingFunction: () => uploads.newId(),
    generateUrl: options.publicUrl ? (_req, { id }) => `${options.publicUrl}${TUS_PATH}/${id}` : undefined,
    async onIncomingRequest(req, id) {
      if (req.method === 'POST') return;
      const tenant = tenantOf(nodeRequestOf(req));
      // Termination may remove an expired upload; everything else must be live.
      if (req.method === 'DELETE') await uploads.get(id, tenant);
      else await uploads.getLive(id, tenant);
    },
    async onUploadCreate(req, upload) {
      store.tenantOfNewUpload.set(upload, tenantOf(nodeRequestOf(req)));
      return { metadata: upload.metadata };
    },
    // Must return an object: `undefined` turns a finished creation-with-upload POST into a 500.
    onUploadFinish: async () => ({}),
    onResponseError(_req, error) {
      if (isFerryError(error)) return { status_code: error.status, body: `${error.message}\n` };
      if ('status_code' in error && error.status_code < 500) return undefined;
      // Anything else is a fault of ours: log it, tell the client nothing internal.
      logger.error({ err: error }, 'tus request failed');
      return { status_code: 500, body: 'Internal server error\n' };
    },
  };
  const tus = new Server(serverOptions);

  const router = express.Router();
  router.get(`${TUS_PATH}/:id`, (req, res, next) => {
    // Express routes HEAD to GET handlers too; tus must answer HEAD (resume depends on it).
    if (req.method !== 'GET') return next();
    res.locals.uploadId = req.params.id;
    sendUploadBytes(uploads, req.params.id, tenantOf(req), res).catch(next);
  });
  router.all(`${TUS_PATH}{/*rest}`, (req, res, next) => {
    handleTus(req, res).catch(next);
  });

  async function handleTus(req: Request, res: Response): Promise<void> {
    dropEmptyMetadataHeader(req);
    const request = new NodeRequest({ req, res });
    const response = await tus.handleWeb(request);
    const id = uploadIdOf(req, response);
    res.locals.uploadId = id;
    res.locals.bytesReceived = bytesReceivedBy(req, response);
    if (id && response.ok && req.method !== 'DELETE' && req.method !== 'OPTIONS') {
      const upload = await uploads.findInAnyTenant(id);
      if (upload?.expiresAt) response.headers.set('Upload-Expires', upload.expiresAt.toUTCString());
    }
    await sendNodeResponse(res, response);
  }

  return router;
}

function uploadIdOf(req: Request, response: globalThis.Response): string | undefined {
  const location = response.headers.get('location');
  const source = req.method === 'POST' ? location : req.path;
  if (!source) return undefined;
  const match = /\/files\/([^/?#]+)\/?(?:[?#].*)?$/.exec(source);
  return match?.[1];
}

/** Bytes a POST or PATCH stored: its new offset minus the offset it started at. */
function bytesReceivedBy(req: Request, response: globalThis.Response): number | undefined {
  const newOffset = response.headers.get('upload-offset');
  if (newOffset === null || (req.method !== 'PATCH' && req.method !== 'POST')) return undefined;
  const startOffset = req.method === 'PATCH' ? Number(req.get('upload-offset')) : 0;
  return Number(newOffset) - startOffset;
}

/**
 * Some clients (tuspy among them) send an empty `Upload-Metadata` header, which means no metadata
 * (API.md §3.2); @tus/server's header validation would answer 400. Both views of the headers are
 * cleaned because srvx reads single headers from one and iterates the other.
 */
function dropEmptyMetadataHeader(req: Request): void {
  const value = req.headers['upload-metadata'];
  if (value === undefined || value.trim() !== '') return;
  delete req.headers['upload-metadata'];
  const raw: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() !== 'upload-metadata') raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  req.rawHeaders = raw;
}
