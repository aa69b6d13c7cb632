import { describe, expect, it } from 'vitest';
import { isUploadId, newUploadId } from '../../src/core/uploads/upload-id.js';

describe('upload ids', () => {
  it('ids across many draws of random bytes are all distinct, 22 base64url characters, and accepted by isUploadId', () => {
    // 256 ids come from one draw: 3000 ids span a dozen draws and their boundaries.
    const ids = Array.from({ length: 3000 }, () => newUploadId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(isUploadId(id)).toBe(true);
    }
    // 128 bits each: no two ids share their first 8 bytes either (a reused slice of a draw would).
    const prefixes = ids.map((id) => Buffer.from(id, 'base64url').subarray(0, 8).toString('hex'));
    expect(new Set(prefixes).size).toBe(ids.length);
  });

  it('isUploadId refuses what newUploadId never makes', () => {
    for (const text of [
      '',
      'a'.repeat(21),
      'a'.repeat(23),
      `${'a'.repeat(21)}=`,
      `${'a'.repeat(21)}/`,
      '../etc/passwd',
    ]) {
      expect(isUploadId(text)).toBe(false);
    }
  });
});
