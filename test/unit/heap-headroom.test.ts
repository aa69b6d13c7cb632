import { describe, expect, it } from 'vitest';
import { HEADROOM_BYTES, growingPercentFor } from '../../src/heap-headroom.js';

const MB = 1024 * 1024;

describe('growingPercentFor', () => {
  it('leaves at least 64 MB above a live heap of 16–64 MB, and at most 5× the live heap below that', () => {
    for (const live of [16 * MB, 20 * MB, 32 * MB, 48 * MB, 64 * MB]) {
      const percent = growingPercentFor(live);
      expect(live * (percent / 100), `${live / MB} MB`).toBeGreaterThanOrEqual(HEADROOM_BYTES);
    }
    // Capped: 15 MB live gets 5× (60 MB of room), an empty heap no more.
    expect(growingPercentFor(15 * MB)).toBe(400);
    expect(growingPercentFor(1)).toBe(400);
  });

  it('hands the factor back to V8 (0) once its own growth leaves as much room: above 64 MB live', () => {
    expect(growingPercentFor(65 * MB)).toBe(0);
    expect(growingPercentFor(500 * MB)).toBe(0);
  });
});
