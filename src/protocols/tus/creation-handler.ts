import type { IncomingMessage } from 'node:http';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { UploadPolicy } from '../../core/auth/upload-policy.js';
import type { Upload, Uploads } from '../../core/uploads/uploads.js';
import { carriesUploadBytes, type createPatchHandler } from './patch-handler.js';
import { NON_NEGATIVE_INTEGER, parseUploadMetadata } from './tus-headers.js';
import { TusRefusal, sendTus, stateHeaders } from './tus-responses.js';

export interface CreationHandlerOptions {
  readonly uploads: Uploads;
  readonly policyOf: (req: IncomingMessage) => UploadPolicy;
  /** What a tenant's policy says about a new upload's metadata (may refuse it). */
  readonly applyPolicy: (
    policy: UploadPolicy,
    metadata: Readonly<Record<string, string | null>>,
  ) => Record<string, string | null>;
  readonly uploadUrl: (req: IncomingMessage, id: string) => string;
  readonly bodies: ReturnType<typeof createPatchHandler>;
  readonly logger: Logger;
}

interface CreationHeaders {
  /** Undefined: the client defers the length (`Upload-Defer-Length: 1`). */
  readonly size: number | undefined;
  readonly metadata: Record<string, string | null>;
  readonly partial: boolean;
}

/**
 * tus creation (`POST /files/`, also with an upload's first bytes, and partial uploads of a
 * concatenation), Ferry's own: @tus/server's creation turned every POST into a web `Request` and its
 * answer back into a Node response, which cost small uploads more than the creation itself. Header
 * rules are tus 1.0's and @tus/server's: `Tus-Resumable` (412 without), exactly one of
 * `Upload-Length` and `Upload-Defer-Length: 1` (400), `Upload-Metadata` as tus defines it (400; empty
 * means none, API.md §3.2), `Upload-Length` within the request's maximum (413). A creation that
 * carries bytes takes the new upload's lock, creates the upload under it and writes the body under it
 * on the PATCH path, as at offset 0. One without bytes takes no lock, as tusd takes none: the id was
 * made a moment ago and only the file list can show it before the 201, so there is no writer to
 * exclude (a deletion through the file API meanwhile removes the new upload as it would a moment
 * later). With Redis the lock was two round trips of the dozen a small upload makes.
 */
export function createCreationHandler(options: CreationHandlerOptions) {
  const { uploads, bodies } = options;

  async function handlePost(req: Request, res: Response): Promise<void> {
    let created: string | undefined;
    try {
      const request = readCreationHeaders(req);
      const policy = options.policyOf(req);
      if (request.size !== undefined && request.size > policy.maxSize) {
        throw new TusRefusal(413, 'Maximum size exceeded');
      }
      const metadata = options.applyPolicy(policy, request.metadata);
      const id = uploads.newId();
      const create = async () => {
        const upload = await uploads.create({
          id,
          tenant: policy.tenant,
          size: request.size,
          metadata,
          protocol: 'tus',
          limits: { maxSize: policy.maxSize, allowedTypes: policy.allowedTypes },
          ...(request.partial ? { concatenation: { role: 'partial' } as const } : {}),
        });
        created = id;
        res.locals.uploadId = id;
        return upload;
      };
      const headers: Record<string, string> = { Location: options.uploadUrl(req, id) };
      let upload: Upload;
      if (carriesUploadBytes(req)) {
        // Created under the lock the body is then written under: one lock for the whole request.
        upload = await bodies.writeCreationBody(req, res, id, policy, create);
        headers['Upload-Offset'] = String(upload.offset);
      } else {
        upload = await create();
      }
      sendTus(res, 201, '', { ...headers, ...stateHeaders(upload) });
    } catch (error) {
      // A refused creation leaves no upload: the client never learns its id.
      if (created !== undefined) await removeRefused(created);
      // Answered as a PATCH's refusals are (what is no refusal goes on to the error handler).
      bodies.refuse(req, res, error, false);
    }
  }

  /** Best effort: an upload nobody can name is swept with the unfinished ones if this fails. */
  async function removeRefused(id: string): Promise<void> {
    await uploads
      .remove(id)
      .catch((error: unknown) => options.logger.warn({ err: error, upload_id: id }, 'refused upload not removed'));
  }

  return { handlePost };
}

function readCreationHeaders(req: Request): CreationHeaders {
  if (!req.get('tus-resumable')) throw new TusRefusal(412, 'Tus-Resumable Required');
  const length = req.get('upload-length');
  const deferred = req.get('upload-defer-length');
  if ((length === undefined) === (deferred === undefined)) {
    throw new TusRefusal(400, 'Upload-Length or Upload-Defer-Length header required');
  }
  if (length !== undefined && !NON_NEGATIVE_INTEGER.test(length)) {
    throw new TusRefusal(400, 'Upload-Length must be a non-negative integer');
  }
  if (deferred !== undefined && deferred !== '1') throw new TusRefusal(400, 'Upload-Defer-Length must be 1');
  const concat = req.get('upload-concat');
  if (concat !== undefined && concat.trim() !== 'partial') {
    throw new TusRefusal(400, 'Upload-Concat must be "partial" or "final;<urls>"');
  }
  const metadata = parseUploadMetadata(req.get('upload-metadata'));
  if (!metadata.ok) throw new TusRefusal(400, metadata.error);
  return {
    size: length === undefined ? undefined : Number(length),
    metadata: metadata.value,
    partial: concat !== undefined,
  };
}
