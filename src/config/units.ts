/** Parsers for the human-friendly sizes and durations used in configuration (API.md §2). */

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

/** `5GiB`, `10 MiB`, `1048576` → bytes; undefined when the text is not a size. */
export function parseSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*$/.exec(text);
  if (!match) return undefined;
  const value = Number(match[1]) * SIZE_UNITS[match[2] ?? 'B']!;
  return Number.isSafeInteger(Math.floor(value)) ? Math.floor(value) : undefined;
}

// Durations are also read from upload metadata (`retention`), so core owns the parser.
export { parseDuration } from '../core/durations.js';
