import type { RequestHandler } from 'express';
import { errorBody } from './errors.js';

/**
 * Requests in absolute form (`GET http://host/files/ HTTP/1.1`, meant for proxies) are accepted as
 * their path and query, as RFC 9112 asks of servers; one whose URL cannot be parsed is 400, and so is
 * a Host header that cannot be part of a URL. Without this, code that rebuilds the URL (@tus/server's
 * web request) failed with a 500.
 */
export const normalizeRequestTarget: RequestHandler = (req, res, next) => {
  // A Host that no URL can have (a port above 65535, a space) made the same rebuild fail.
  const host = req.headers.host;
  if (host !== undefined && !URL.canParse(`http://${host}/`)) {
    res.status(400).json(errorBody('bad_request', 'the Host header is not a valid host', 400));
    return;
  }
  if (req.url.startsWith('/')) return next();
  try {
    const url = new URL(req.url);
    req.url = `${url.pathname}${url.search}`;
  } catch {
    res.status(400).json(errorBody('bad_request', 'the request target is not a valid URL', 400));
    return;
  }
  next();
};
