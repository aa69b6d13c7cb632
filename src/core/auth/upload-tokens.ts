import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import type { Clock } from '../ports.js';

/** What an upload token lets its holder do: upload into one tenant, within these limits. */
export interface TokenScope {
  readonly tenant: string;
  readonly maxSize?: number;
  readonly allowedTypes?: readonly string[];
  readonly folder?: string;
}

const ISSUER = 'ferry';
const AUDIENCE = 'ferry-upload';
/** Tokens are short-lived by design (API.md §3.7). */
export const MAX_TOKEN_LIFETIME_S = 24 * 3600;
export const DEFAULT_TOKEN_LIFETIME_S = 3600;

/**
 * Short-lived upload tokens for browsers: HS256 JWTs (jose) scoped to a tenant, a maximum size,
 * allowed types and a folder. A browser holds a token, never an API key.
 */
export class UploadTokens {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly clock: Clock,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async issue(scope: TokenScope, lifetimeSeconds: number): Promise<{ token: string; expiresAt: Date }> {
    const now = Math.floor(this.clock.now().getTime() / 1000);
    const expiresAt = new Date((now + lifetimeSeconds) * 1000);
    const token = await new SignJWT({
      ...(scope.maxSize !== undefined ? { max_size: scope.maxSize } : {}),
      ...(scope.allowedTypes ? { allowed_types: [...scope.allowedTypes] } : {}),
      ...(scope.folder !== undefined ? { folder: scope.folder } : {}),
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(scope.tenant)
      .setIssuedAt(now)
      .setExpirationTime(now + lifetimeSeconds)
      .sign(this.key);
    return { token, expiresAt };
  }

  /** The scope of a valid, unexpired token; undefined for anything else. */
  async verify(token: string): Promise<TokenScope | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        issuer: ISSUER,
        audience: AUDIENCE,
        algorithms: ['HS256'],
        currentDate: this.clock.now(),
        requiredClaims: ['exp', 'sub'],
      });
      const maxSize = payload.max_size;
      const allowedTypes = payload.allowed_types;
      const folder = payload.folder;
      return {
        tenant: payload.sub!,
        ...(typeof maxSize === 'number' ? { maxSize } : {}),
        ...(Array.isArray(allowedTypes) ? { allowedTypes: allowedTypes.map(String) } : {}),
        ...(typeof folder === 'string' ? { folder } : {}),
      };
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) return undefined;
      throw error;
    }
  }
}

/** Whether a credential has the shape of a JWT (three base64url segments), not an API key. */
export const looksLikeJwt = (credential: string): boolean =>
  /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(credential);
