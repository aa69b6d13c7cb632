import type { RequestHandler } from 'express';
import type { ApiKeyring } from '../../core/auth/api-keys.js';
import { looksLikeJwt, type UploadTokens } from '../../core/auth/upload-tokens.js';
import { DEFAULT_TENANT } from '../../core/tenancy.js';
import { setRequestContext } from '../request-context.js';
import { errorBody } from './errors.js';

export interface AuthenticateOptions {
  readonly keyring: ApiKeyring;
  readonly tokens: UploadTokens;
  readonly allowAnonymous: boolean;
  /** Paths where upload tokens are accepted (the upload endpoints); elsewhere a token is 403. */
  readonly tokenPaths: readonly string[];
}

/** `GET /v1/files/<id>/content?expires=…&signature=…`: the signature is the credential. */
const SIGNED_CONTENT = /^\/v1\/files\/[^/]+\/content$/;

/**
 * Decides the tenant of every request (API.md §3.7): an API key (`Authorization: Bearer <key>` or
 * `X-API-Key`), an upload token (a JWT, sent the same way) on the upload endpoints, a signed download
 * URL, or, when allowed, nobody at all (tenant `default`). A missing or wrong credential is 401 with
 * the same answer whatever was wrong, so it tells a guesser nothing. CORS preflights carry no
 * credentials and are answered before this runs.
 */
export function authenticate(options: AuthenticateOptions): RequestHandler {
  return async (req, res, next) => {
    const credential = credentialOf(req.get('authorization'), req.get('x-api-key'));
    if (credential === undefined) {
      const read = req.method === 'GET' || req.method === 'HEAD';
      if (read && SIGNED_CONTENT.test(req.path) && req.query.signature !== undefined) {
        // The route checks the signature against the file's tenant.
        setRequestContext(req, { tenant: '', credential: 'signed-url' });
        return next();
      }
      // tus discovery (OPTIONS) tells nothing about anyone's uploads.
      if (options.allowAnonymous || req.method === 'OPTIONS') {
        setRequestContext(req, { tenant: DEFAULT_TENANT, credential: 'anonymous' });
        return next();
      }
      return unauthorized(res);
    }
    // An API key may contain dots too: a credential that is no valid token is tried as a key.
    const scope = looksLikeJwt(credential) ? await options.tokens.verify(credential) : undefined;
    if (scope) {
      if (!options.tokenPaths.some((prefix) => req.path === prefix || req.path.startsWith(`${prefix}/`))) {
        res
          .status(403)
          .json(errorBody('token_not_allowed', 'upload tokens are accepted on the upload endpoints only', 403));
        return;
      }
      setRequestContext(req, { tenant: scope.tenant, credential: 'upload-token', scope });
      return next();
    }
    const tenant = options.keyring.tenantOf(credential);
    if (tenant === undefined) return unauthorized(res);
    setRequestContext(req, { tenant, credential: 'api-key' });
    next();
  };
}

function credentialOf(authorization: string | undefined, apiKey: string | undefined): string | undefined {
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    // A malformed Authorization header is a wrong credential, not a missing one.
    return match ? match[1]! : '';
  }
  return apiKey?.trim();
}

function unauthorized(res: Parameters<RequestHandler>[1]): void {
  res.setHeader('WWW-Authenticate', 'Bearer realm="ferry"');
  res.status(401).json(errorBody('unauthorized', 'a valid API key or upload token is required', 401));
}
