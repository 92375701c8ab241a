/**
 * Durations in the config are strings with a unit ("500ms", "60s", "5m", "1h", "1h30m"), so a
 * bare number can never be misread as seconds where milliseconds were meant.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;

/**
 * The longest duration taken anywhere (config, simulator): 100 years. Durations are added to
 * the present (a signal's expiry, a cooldown's end, a pause), and past about 270,000 years that
 * is no date at all; a bound well short of it gives a clear error up front instead of a failure
 * the first time the sum is made.
 */
export const MAX_DURATION_MS = 36_500 * 86_400_000;
/** {@link MAX_DURATION_MS} as it is written in a duration. */
export const MAX_DURATION_TEXT = '36500d';

/** Parses a duration string to milliseconds, or returns null when it is not one. */
export function parseDuration(text: string): number | null {
  const s = text.trim();
  if (!WHOLE.test(s)) return null;
  let total = 0;
  for (const m of s.matchAll(PART)) total += Number(m[1]) * (UNIT_MS[m[2] as string] ?? 0);
  return Math.round(total);
}
