import type { IncomingMessage } from 'node:http';
import type { TokenScope } from '../core/auth/upload-tokens.js';

/** How a request proved who it is. */
export type Credential = 'anonymous' | 'api-key' | 'upload-token' | 'signed-url';

/** What Ferry knows about a request once the HTTP layer has authenticated it. */
export interface RequestContext {
  readonly tenant: string;
  readonly credential: Credential;
  /** Set for upload tokens: the limits the token carries. */
  readonly scope?: TokenScope;
}

const contexts = new WeakMap<IncomingMessage, RequestContext>();

export function setRequestContext(req: IncomingMessage, context: RequestContext): void {
  contexts.set(req, context);
}

export function contextOf(req: IncomingMessage): RequestContext {
  const context = contexts.get(req);
  // Routes are mounted after authentication; reaching this is a wiring bug.
  if (!context) throw new Error('request has no context: authenticate() must run first');
  return context;
}

export function tenantOf(req: IncomingMessage): string {
  return contextOf(req).tenant;
}
