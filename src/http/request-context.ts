import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { DEFAULT_TENANT } from '../core/tenancy.js';

/** What Ferry knows about a request once the HTTP layer has looked at it. */
export interface RequestContext {
  readonly tenant: string;
}

const contexts = new WeakMap<IncomingMessage, RequestContext>();

/** Every request belongs to tenant `default` until authentication decides otherwise. */
export function attachRequestContext(): RequestHandler {
  return (req, _res, next) => {
    contexts.set(req, { tenant: DEFAULT_TENANT });
    next();
  };
}

export function tenantOf(req: IncomingMessage): string {
  const context = contexts.get(req);
  // Routes are mounted after the context middleware; reaching this is a wiring bug.
  if (!context) throw new Error('request has no context: attachRequestContext() must run first');
  return context.tenant;
}
