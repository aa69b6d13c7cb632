import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../ports.js';

/** How long a download URL in a File stays valid. */
export const DOWNLOAD_URL_LIFETIME_S = 3600;

/**
 * Signed download URLs (API.md §3.7): `?expires=<unix s>&signature=<hex HMAC-SHA256>` over the
 * tenant, the file id and the expiry, so a URL works without a key (an `<img src>`, a link handed to
 * another service), for one file, until it expires. The tenant is bound by the signature, not
 * written in the URL.
 */
export class UrlSigner {
  constructor(
    private readonly secret: string,
    private readonly clock: Clock,
  ) {}

  /** Valid for an hour from `from` (now by default; a webhook signs from its event's time). */
  sign(tenant: string, fileId: string, from: Date = this.clock.now()): { expires: number; signature: string } {
    const expires = Math.floor(from.getTime() / 1000) + DOWNLOAD_URL_LIFETIME_S;
    return { expires, signature: this.mac(tenant, fileId, expires) };
  }

  verify(tenant: string, fileId: string, expires: string, signature: string): boolean {
    if (!/^\d{1,12}$/.test(expires) || !/^[0-9a-f]{64}$/.test(signature)) return false;
    if (Number(expires) * 1000 < this.clock.now().getTime()) return false;
    const expected = Buffer.from(this.mac(tenant, fileId, Number(expires)), 'hex');
    return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
  }

  private mac(tenant: string, fileId: string, expires: number): string {
    return createHmac('sha256', this.secret).update(`download\n${tenant}\n${fileId}\n${expires}`).digest('hex');
  }
}
