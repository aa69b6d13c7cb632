import type { IncomingMessage } from 'node:http';
import express, { type Request } from 'express';
import { FerryError } from '../../core/errors.js';
import type { FileJson } from '../../core/files/file-json.js';
import type { Files, FileView } from '../../core/files/files.js';
import { FILE_STATUSES, type FileQuery, type FileStatus } from '../../core/ports.js';
import type { Uploads } from '../../core/uploads/uploads.js';
import { contextOf } from '../request-context.js';
import { sendBytes } from '../send-bytes.js';

export interface FileRoutesOptions {
  readonly files: Files;
  readonly uploads: Uploads;
  readonly tenantOf: (req: IncomingMessage) => string;
  readonly baseUrlOf: (req: IncomingMessage) => string;
  /** A file as JSON, with a signed download URL under `baseUrl`. */
  readonly present: (file: FileView, baseUrl: string) => FileJson;
  /** Whether `?expires=&signature=` is a valid download signature for this tenant's file. */
  readonly verifySignature: (tenant: string, fileId: string, expires: string, signature: string) => boolean;
}

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;
/** Filter values are names people type; anything longer is not a real folder, tag or batch. */
const MAX_FILTER_LENGTH = 1024;

/** `/v1/files`: the registry over every upload, whichever way it came in (API.md §3.3). */
export function fileRoutes(options: FileRoutesOptions): express.Router {
  const { files, tenantOf, baseUrlOf, present } = options;
  const router = express.Router();

  router.get('/v1/files', async (req, res) => {
    const page = await files.list(fileQuery(req, tenantOf(req)));
    const base = baseUrlOf(req);
    res.json({ data: page.items.map((file) => present(file, base)), next_cursor: page.nextCursor ?? null });
  });

  router.get('/v1/files/:id', async (req, res) => {
    const file = await files.get(tenantOf(req), req.params.id);
    res.json({ data: present(file, baseUrlOf(req)) });
  });

  router.get('/v1/files/:id/content', async (req, res) => {
    const file =
      contextOf(req).credential === 'signed-url'
        ? await files.getBySignature(req.params.id, (tenant) =>
            options.verifySignature(
              tenant,
              req.params.id,
              String(req.query.expires ?? ''),
              String(req.query.signature),
            ),
          )
        : await files.get(tenantOf(req), req.params.id);
    if (file.status === 'expired') throw new FerryError('file_expired', 'the file expired and its bytes are gone');
    if (file.status !== 'completed') {
      throw new FerryError(
        'file_not_ready',
        file.status === 'failed'
          ? `the file failed processing (${file.error?.code ?? 'unknown'}) and is not served`
          : `the file is ${file.status}; its bytes are served once it is completed`,
      );
    }
    await sendBytes(req, res, {
      id: file.id,
      size: file.size ?? file.receivedBytes,
      // The sniffed type wins over the declared one: it is what the bytes are.
      mediaType: file.detectedType ?? file.mimeType,
      name: file.name,
      read: (range) => options.uploads.read(file.id, range),
    });
  });

  router.delete('/v1/files/:id', async (req, res) => {
    await files.delete(tenantOf(req), req.params.id);
    res.status(204).end();
  });

  return router;
}

function fileQuery(req: Request, tenant: string): FileQuery {
  const text = (name: string): string | undefined => {
    const value = req.query[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.length > MAX_FILTER_LENGTH) {
      throw new FerryError(
        'invalid_query',
        `${name} must be given once, as text of at most ${MAX_FILTER_LENGTH} characters`,
      );
    }
    return value;
  };
  const status = text('status');
  if (status !== undefined && !(FILE_STATUSES as readonly string[]).includes(status)) {
    throw new FerryError('invalid_query', `status must be one of ${FILE_STATUSES.join(', ')}`);
  }
  const limitText = text('limit');
  const limit = limitText === undefined ? DEFAULT_LIMIT : Number(limitText);
  if (!/^\d+$/.test(limitText ?? '1') || limit < 1 || limit > MAX_LIMIT) {
    throw new FerryError('invalid_query', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  }
  const filters = { folder: text('folder'), tag: text('tag'), batch: text('batch'), cursor: text('cursor') };
  return {
    tenant,
    limit,
    ...(status ? { status: status as FileStatus } : {}),
    ...Object.fromEntries(Object.entries(filters).filter(([, value]) => value !== undefined)),
  };
}
