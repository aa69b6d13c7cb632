import { createHash, timingSafeEqual } from 'node:crypto';

/** One configured key: its tenant and the sha256 of the key (never the key itself). */
export interface ApiKeyEntry {
  readonly tenant: string;
  /** 32 bytes. */
  readonly sha256: Buffer;
}

export const hashApiKey = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

/**
 * The API keys Ferry accepts. Keys are long random secrets, so a sha256 of each is enough to store
 * (no salt or slow hash is needed against guessing); a presented key is hashed and compared with
 * every entry in constant time, without stopping at the first match, so timing tells nothing about
 * which key or how much of it matched.
 */
export class ApiKeyring {
  constructor(private readonly entries: readonly ApiKeyEntry[]) {}

  get size(): number {
    return this.entries.length;
  }

  tenantOf(presented: string): string | undefined {
    const digest = hashApiKey(presented);
    let tenant: string | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(digest, entry.sha256) && tenant === undefined) tenant = entry.tenant;
    }
    return tenant;
  }
}
