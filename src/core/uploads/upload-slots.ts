import { FerryError } from '../errors.js';

/**
 * Counts the uploads of each tenant receiving bytes in this process, so one tenant cannot take every
 * connection and file handle (API.md: concurrent uploads per tenant). Per process: with N replicas a
 * tenant may have up to N times the limit in flight.
 */
export class UploadSlots {
  private readonly inUse = new Map<string, number>();

  /** Takes a slot or throws `too_many_uploads`; the returned function gives it back (once). */
  acquire(tenant: string, limit: number): () => void {
    const used = this.inUse.get(tenant) ?? 0;
    if (used >= limit) {
      throw new FerryError('too_many_uploads', `at most ${limit} uploads of this tenant may receive bytes at once`);
    }
    this.inUse.set(tenant, used + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = (this.inUse.get(tenant) ?? 1) - 1;
      if (now <= 0) this.inUse.delete(tenant);
      else this.inUse.set(tenant, now);
    };
  }
}
