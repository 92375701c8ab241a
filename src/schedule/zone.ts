/**
 * Wall clocks of IANA time zones, read through `Intl` (the tz database Node.js ships). Pure:
 * every function takes its instant as epoch milliseconds; nothing reads the clock.
 *
 * Offsets are derived from the wall clock `Intl` reports for an instant rather than from a
 * zone name's abbreviation, so zones with half-hour offsets (Asia/Kolkata) or unusual DST
 * shifts read right too.
 */

/** The wall-clock fields of an instant in a zone (month 1-12). */
interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timezone, f);
  }
  return f;
}

function wallClock(at: number, timezone: string): WallClock {
  const fields: Record<string, number> = {};
  for (const part of formatter(timezone).formatToParts(at)) {
    if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  const field = (name: string): number => fields[name] ?? 0;
  return {
    year: field('year'),
    month: field('month'),
    day: field('day'),
    hour: field('hour') % 24,
    minute: field('minute'),
    second: field('second'),
  };
}

/**
 * Why `timezone` is not an IANA zone this runtime knows, or null when it is one. Fixed offsets
 * ("+01:00") are refused although `Intl` takes them: they have no DST, and a schedule meant for
 * a place should name the place.
 */
export function timeZoneProblem(timezone: string): string | null {
  const hint = `(use an IANA name, e.g. Europe/Berlin or UTC)`;
  if (!/^[A-Za-z]/.test(timezone)) return `not a time zone: "${timezone}" ${hint}`;
  try {
    formatter(timezone);
    return null;
  } catch {
    return `unknown time zone "${timezone}" ${hint}`;
  }
}

/** The zone's offset from UTC at `at`, in milliseconds (+7_200_000 for CEST). */
export function offsetAt(at: number, timezone: string): number {
  const w = wallClock(at, timezone);
  const wallAsUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return wallAsUtc - Math.floor(at / 1000) * 1000;
}

/** `at` as ISO-8601 in the zone's wall clock with its offset: `2026-03-29T03:00:00+02:00`. */
export function localIso(at: number, timezone: string): string {
  const w = wallClock(at, timezone);
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  const offset = offsetAt(at, timezone) / 60_000;
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return (
    `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

/** How far either side of an instant a DST transition is looked for (real shifts are at most 2h). */
const TRANSITION_REACH = 3 * 3_600_000;

/**
 * Whether the wall-clock time at `at` occurs twice in the zone (the hour repeated when clocks
 * go back in autumn): some other instant, under the offset in force a few hours earlier or
 * later, shows the same wall clock.
 */
export function inRepeatedHour(at: number, timezone: string): boolean {
  const own = offsetAt(at, timezone);
  for (const near of [at - TRANSITION_REACH, at + TRANSITION_REACH]) {
    const other = offsetAt(near, timezone);
    if (other === own) continue;
    const twin = at + own - other;
    if (twin !== at && offsetAt(twin, timezone) === other) return true;
  }
  return false;
}
