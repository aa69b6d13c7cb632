/**
 * A local webhook receiver for tests (127.0.0.1, a free port) that records every delivery attempt
 * with its raw body, and a verifier for `Ferry-Signature` written the way a user's backend would.
 *
 *   const receiver = await startWebhookReceiver({ failFirst: 2 });   // 500 twice per delivery id, then 204
 *   ... FERRY_WEBHOOK_URL: receiver.url ...
 *   await receiver.waitFor((a) => a.accepted && a.event === 'completed');
 *   expect(verifyFerrySignature(secret, a.signature, a.body)).toEqual({ ok: true, ... });
 *   await receiver.close();
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookAttempt {
  /** `Date.now()` when the request had arrived whole. */
  readonly receivedAt: number;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly deliveryId: string | undefined;
  /** The `Ferry-Event` header. */
  readonly event: string | undefined;
  readonly signature: string | undefined;
  /** The raw body, exactly as received (what the signature covers). */
  readonly body: string;
  /** The status the receiver answered. */
  readonly status: number;
  readonly accepted: boolean;
  /** 1 for the first attempt of its delivery id, 2 for the first retry… */
  readonly attempt: number;
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/hooks/ferry` */
  readonly url: string;
  readonly attempts: readonly WebhookAttempt[];
  /** Attempts of one delivery id, in arrival order. */
  attemptsOf(deliveryId: string): WebhookAttempt[];
  waitFor(predicate: (attempt: WebhookAttempt) => boolean, timeoutMs?: number): Promise<WebhookAttempt>;
  close(): Promise<void>;
}

export interface WebhookReceiverOptions {
  /** Each delivery id is answered 500 this many times before it is accepted with 204. Default 0. */
  readonly failFirst?: number;
}

export async function startWebhookReceiver(options: WebhookReceiverOptions = {}): Promise<WebhookReceiver> {
  const failFirst = options.failFirst ?? 0;
  const attempts: WebhookAttempt[] = [];
  const waiters = new Set<() => void>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const header = (name: string) => {
        const value = req.headers[name];
        return typeof value === 'string' ? value : undefined;
      };
      const deliveryId = header('ferry-delivery');
      const attempt = attempts.filter((a) => a.deliveryId === deliveryId).length + 1;
      const status = attempt <= failFirst ? 500 : 204;
      attempts.push({
        receivedAt: Date.now(),
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        deliveryId,
        event: header('ferry-event'),
        signature: header('ferry-signature'),
        body: Buffer.concat(chunks).toString('utf8'),
        status,
        accepted: status < 300,
        attempt,
      });
      res.writeHead(status).end();
      for (const waiter of [...waiters]) waiter();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/hooks/ferry`,
    attempts,
    attemptsOf: (deliveryId) => attempts.filter((a) => a.deliveryId === deliveryId),
    waitFor(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = attempts.find(predicate);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer: NodeJS.Timeout = setTimeout(() => {
          waiters.delete(check);
          const seen = attempts.map((a) => `${a.event} ${a.deliveryId} #${a.attempt} → ${a.status}`);
          reject(new Error(`no matching webhook attempt within ${timeoutMs} ms; received: ${seen.join('; ')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type SignatureCheck =
  { readonly ok: true; readonly timestamp: number } | { readonly ok: false; readonly reason: string };

/**
 * Verifies `Ferry-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` as a receiver
 * should: the MAC compared in constant time, the timestamp within `toleranceSeconds` of `nowMs`.
 */
export function verifyFerrySignature(
  secret: string,
  header: string | undefined,
  rawBody: string,
  { nowMs = Date.now(), toleranceSeconds = 300 }: { nowMs?: number; toleranceSeconds?: number } = {},
): SignatureCheck {
  if (!header) return { ok: false, reason: 'no signature header' };
  const parts = new Map<string, string>();
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) parts.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const t = parts.get('t');
  const v1 = parts.get('v1');
  if (!t || !/^\d+$/.test(t) || !v1 || !/^[0-9a-f]{64}$/.test(v1)) return { ok: false, reason: 'malformed header' };
  const timestamp = Number(t);
  if (Math.abs(nowMs / 1000 - timestamp) > toleranceSeconds) return { ok: false, reason: 'timestamp too old' };
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(v1, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, reason: 'signature mismatch' };
  }
  return { ok: true, timestamp };
}
