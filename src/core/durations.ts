/** Durations as people write them in configuration and metadata (API.md §2). */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** `90s`, `15m`, `24h`, `7d`, `250ms` → milliseconds; undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!match) return undefined;
  const value = Number(match[1]) * DURATION_UNITS[match[2]!]!;
  return Number.isSafeInteger(Math.round(value)) ? Math.round(value) : undefined;
}
