/**
 * Durations in the config are strings with a unit ("500ms", "60s", "5m", "1h", "1h30m"), so a
 * bare number can never be misread as seconds where milliseconds were meant.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;

/** Parses a duration string to milliseconds, or returns null when it is not one. */
export function parseDuration(text: string): number | null {
  const s = text.trim();
  if (!WHOLE.test(s)) return null;
  let total = 0;
  for (const m of s.matchAll(PART)) total += Number(m[1]) * (UNIT_MS[m[2] as string] ?? 0);
  return Math.round(total);
}
