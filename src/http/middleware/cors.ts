import type { RequestHandler } from 'express';

/** Request headers browsers may send: tus, auth, ranges, SSE resumption. */
const ALLOWED_HEADERS = [
  'Authorization',
  'X-API-Key',
  'Content-Type',
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Offset',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'Upload-Concat',
  'Upload-Checksum',
  'X-HTTP-Method-Override',
  'X-Requested-With',
  'Last-Event-ID',
  'Range',
  'If-None-Match',
].join(', ');

/** Response headers browsers may read. */
export const CORS_EXPOSED_HEADERS = [
  'Location',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'Upload-Concat',
  'Upload-Expires',
  'Upload-Checksum',
  'Retry-After',
  'Content-Length',
  'Content-Range',
  'Content-Disposition',
  'ETag',
  'Accept-Ranges',
].join(', ');

export interface CorsPolicy {
  /** The `Access-Control-Allow-Origin` value for a request from `origin`, or undefined: none. */
  allowOrigin(origin: string | undefined): string | undefined;
  /** Credentials (cookies) only ever with explicitly listed origins, never with `*`. */
  readonly credentials: boolean;
  /** For @tus/server, which writes its own CORS headers. */
  readonly allows: ((origin: string) => boolean) | undefined;
}

/** `['*']`: any origin, no credentials. Exact origins: echoed back when listed, with credentials. */
export function corsPolicy(origins: readonly string[]): CorsPolicy {
  if (origins.includes('*')) return { allowOrigin: () => '*', credentials: false, allows: undefined };
  const listed = new Set(origins);
  return {
    allowOrigin: (origin) => (origin !== undefined && listed.has(origin) ? origin : undefined),
    credentials: true,
    allows: (origin) => listed.has(origin),
  };
}

/**
 * CORS for every route: the allow-origin header on every response and preflights answered here,
 * before authentication (a preflight carries no credentials).
 */
export function cors(policy: CorsPolicy): RequestHandler {
  return (req, res, next) => {
    const origin = req.get('origin');
    const allowed = policy.allowOrigin(origin);
    res.setHeader('Vary', 'Origin');
    if (allowed) {
      res.setHeader('Access-Control-Allow-Origin', allowed);
      res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSED_HEADERS);
      if (policy.credentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    if (req.method === 'OPTIONS' && req.get('access-control-request-method')) {
      if (allowed) {
        res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, POST, PATCH, PUT, DELETE, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
        res.setHeader('Access-Control-Max-Age', '86400');
      }
      res.status(204).end();
      return;
    }
    next();
  };
}
