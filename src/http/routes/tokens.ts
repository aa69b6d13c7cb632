import type { IncomingMessage } from 'node:http';
import express from 'express';
import { z } from 'zod';
import { FerryError } from '../../core/errors.js';
import { sanitizeFolder } from '../../core/files/well-known-metadata.js';
import { narrowTypes, type TenantPolicies } from '../../core/tenancy.js';
import { DEFAULT_TOKEN_LIFETIME_S, MAX_TOKEN_LIFETIME_S, type UploadTokens } from '../../core/auth/upload-tokens.js';
import { contextOf } from '../request-context.js';

export interface TokenRoutesOptions {
  readonly tokens: UploadTokens;
  readonly policies: TenantPolicies;
}

const MEDIA_TYPE_PATTERN = /^(\*|[a-z0-9!#$&^_.+-]{1,127}\/(\*|[a-z0-9!#$&^_.+-]{1,127}))$/;

const tokenRequest = z
  .object({
    max_size: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
    allowed_types: z
      .union([z.string().max(2048), z.array(z.string().max(256)).max(64)])
      .transform((value) => (typeof value === 'string' ? value.split(',') : value))
      .transform((types) => types.map((type) => type.trim().toLowerCase()).filter(Boolean))
      .refine((types) => types.length > 0 && types.every((type) => MEDIA_TYPE_PATTERN.test(type)), {
        message: 'allowed_types must list media types such as image/* or application/pdf',
      })
      .optional(),
    folder: z.string().min(1).max(512).optional(),
    expires_in: z.number().int().min(1).max(MAX_TOKEN_LIFETIME_S).optional(),
  })
  .strict();

/**
 * `POST /v1/tokens` (API.md §3.7): an API key holder gets a short-lived upload token for a browser,
 * never wider than the tenant's own limits. JSON bodies are small and strict: unknown keys, wrong
 * types and bodies over 16 KiB are 400/413, never 5xx.
 */
export function tokenRoutes(options: TokenRoutesOptions): express.Router {
  const router = express.Router();
  router.post('/v1/tokens', express.json({ limit: '16kb', strict: true, type: () => true }), async (req, res) => {
    // Upload tokens never get here (authentication accepts them on the tus endpoint only).
    const context = contextOf(req as IncomingMessage);
    const parsed = tokenRequest.safeParse(req.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      throw new FerryError('invalid_request', `${where}${issue.message}`);
    }
    const body = parsed.data;
    const policy = options.policies.for(context.tenant);
    if (body.max_size !== undefined && body.max_size > policy.maxSize) {
      throw new FerryError('invalid_request', `max_size: at most ${policy.maxSize} bytes for this tenant`);
    }
    const folder = body.folder === undefined ? undefined : sanitizeFolder(body.folder);
    // A folder that sanitizes to nothing must not become a token free to upload anywhere.
    if (body.folder !== undefined && folder === undefined) {
      throw new FerryError('invalid_request', 'folder: names no folder (only separators, . or ..)');
    }
    const allowedTypes = body.allowed_types ? narrowTypes(policy.allowedTypes, body.allowed_types) : undefined;
    if (allowedTypes && allowedTypes.length === 0) {
      throw new FerryError('invalid_request', 'allowed_types: none of them is allowed for this tenant');
    }
    const { token, expiresAt } = await options.tokens.issue(
      {
        tenant: context.tenant,
        maxSize: body.max_size ?? policy.maxSize,
        ...(allowedTypes ? { allowedTypes } : {}),
        ...(folder ? { folder } : {}),
      },
      body.expires_in ?? DEFAULT_TOKEN_LIFETIME_S,
    );
    res.status(201).json({ data: { token, expires_at: expiresAt.toISOString() } });
  });
  return router;
}
