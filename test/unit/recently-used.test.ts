import { describe, expect, it } from 'vitest';
import { setRecentlyUsed } from '../../src/adapters/recently-used.js';

describe('setRecentlyUsed', () => {
  it('keeps at most `capacity` entries, evicting the least recently set, where setting a key again makes it the most recent', () => {
    const map = new Map<string, number>();
    for (const [key, value] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const)
      setRecentlyUsed(map, key, value, 3);
    setRecentlyUsed(map, 'a', 10, 3); // a is now the newest: b is the oldest
    setRecentlyUsed(map, 'd', 4, 3);
    expect([...map]).toEqual([
      ['c', 3],
      ['a', 10],
      ['d', 4],
    ]);
  });
});
