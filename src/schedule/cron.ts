/**
 * Cron expressions in IANA time zones: node-cron's syntax, croner's evaluation.
 *
 * Why croner and not node-cron: node-cron (4.x) computes a fire time inside the spring gap,
 * finds it does not read back as the wall-clock time asked for, and skips it, so "30 2 * * *"
 * would not run at all on the day Europe/Berlin moves to summer time. cron-parser (5.x) runs it
 * at 03:30 local, shifted by the gap instead of at its end. croner (11.x, pinned) implements
 * Vixie cron's rule, which test/unit/schedule.test.ts proves for Europe/Berlin,
 * America/New_York, UTC and Asia/Kolkata:
 * - a **fixed-time** expression (no `*` and no step in seconds, minutes or hours, e.g.
 *   `30 2 * * *` or `0 8,20 * * *`) fires a time that falls in the spring gap at the first
 *   instant after the gap (03:00 local), and a time in the repeated autumn hour once, at its
 *   first occurrence;
 * - any other expression (`15 * * * *`, `*\/5 * * * *`) follows real time: it fires every
 *   matching wall-clock time that exists, both occurrences of a repeated one included, so an
 *   hourly job stays hourly across both transitions.
 *
 * node-cron's syntax is translated before croner reads it: five fields or six with seconds
 * first, `@daily`-style nicknames, month and weekday names (full or three letters), 0 or 7 for
 * Sunday, inverted ranges that wrap (`22-2` is 22,23,0,1,2), `?` for a whole day field, `L`,
 * `LW`, `15W`, `2#3`, `5L`. As in node-cron, a day-of-month and a day-of-week both restricted
 * must both match (`0 0 1 * 1` fires on a Monday the 1st). `L-n` is refused: croner cannot
 * express it.
 *
 * Pure: each query takes its reference instant; nothing reads the clock. (croner would read it
 * to fill in a `?` outside the day fields, which this module refuses for that reason.)
 */
import { Cron } from 'croner';

const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

/** Field bounds after seconds are prepended: second, minute, hour, day, month, weekday. */
const BOUNDS: readonly (readonly [number, number])[] = [[0, 59], [0, 59], [0, 23], [1, 31], [1, 12], [0, 6]];

/** A cron expression that cannot be read; the message says why. */
export class CronSyntaxError extends Error {
  override readonly name = 'CronSyntaxError';
}

/** Replaces month or weekday names (full or three letters, any case) by their numbers. */
function numberNames(field: string, names: readonly string[], first: number): string {
  return field.replace(/[a-z]+/gi, (word) => {
    const lower = word.toLowerCase();
    const at = names.findIndex((n) => n === lower || (lower.length === 3 && n.startsWith(lower)));
    return at === -1 ? word : String(at + first);
  });
}

/**
 * Expands an inverted range (`22-2`, `6-0/2`) the way node-cron does: wrapping the field. A
 * weekday range starting at 7 starts at 0 (both are Sunday), so `7-1` is Sunday to Monday.
 */
function unwrapRanges(field: string, [min, max]: readonly [number, number], weekday: boolean): string {
  return field
    .split(',')
    .map((token) => {
      const m = /^(\d+)-(\d+)(?:\/(\d+))?$/.exec(token);
      if (m === null) return token;
      const [from, to, step] = [weekday && m[1] === '7' ? 0 : Number(m[1]), Number(m[2]), Number(m[3] ?? '1')];
      if (from <= to) return `${from}-${to}${m[3] === undefined ? '' : `/${m[3]}`}`;
      if (step < 1 || from > max || to < min) return token;
      const size = max - min + 1;
      const values: number[] = [];
      for (let offset = 0; offset <= (((to - from) % size) + size) % size; offset += step) {
        values.push(from + offset > max ? from + offset - size : from + offset);
      }
      return values.join(',');
    })
    .join(',');
}

/**
 * node-cron's syntax as croner's six-field syntax (seconds first). Throws
 * {@link CronSyntaxError} for what node-cron would not read, or croner could not.
 */
export function toCronerPattern(expression: string): string {
  const text = expression.trim().replace(/\s+/g, ' ');
  const fields = (NICKNAMES[text.toLowerCase()] ?? text).split(' ');
  if (fields.length === 5) fields.unshift('0');
  if (fields.length !== 6 || text === '') {
    throw new CronSyntaxError(`expected five fields (minute hour day month weekday), or six with seconds first; got ${text === '' ? 0 : fields.length}`);
  }
  return fields
    .map((field, i) => {
      if (field === '?' && (i === 3 || i === 5)) return '*';
      if (field.includes('?')) throw new CronSyntaxError(`"?" may only stand for a whole day-of-month or day-of-week field`);
      if (i === 3 && /L-\d/i.test(field)) throw new CronSyntaxError('L-n (days before the last) is not supported; use L, LW or a day number');
      let f = field;
      if (i === 4) f = numberNames(f, MONTHS, 1);
      if (i === 5) f = numberNames(f, WEEKDAYS, 0);
      const bounds = BOUNDS[i];
      return bounds === undefined ? f : unwrapRanges(f, bounds, i === 5);
    })
    .join(' ');
}

const compiled = new Map<string, Cron>();

/**
 * The croner job for an expression in a zone, compiled once. Throws {@link CronSyntaxError}
 * for a bad expression; a bad zone surfaces at the first query (check it with
 * `timeZoneProblem` first).
 */
function compile(expression: string, timezone: string): Cron {
  const key = `${timezone}\n${expression}`;
  let job = compiled.get(key);
  if (job === undefined) {
    const pattern = toCronerPattern(expression);
    try {
      // No callback: croner only evaluates, it never starts a timer.
      job = new Cron(pattern, { timezone, mode: '6-part', domAndDow: true, fixedTimeRule: 'no-wildcard' });
    } catch (err) {
      const why = err instanceof Error ? err.message.replace(/^CronPattern:\s*/, '') : String(err);
      throw new CronSyntaxError(why, { cause: err });
    }
    compiled.set(key, job);
  }
  return job;
}

/** The first fire strictly after `after` (epoch ms), or null when there is none. */
export function cronNext(expression: string, timezone: string, after: number): number | null {
  return compile(expression, timezone).nextRun(new Date(after))?.getTime() ?? null;
}

/** The fires in `(from, to]` (epoch ms), oldest first, at most `limit`. */
export function cronBetween(expression: string, timezone: string, from: number, to: number, limit: number): number[] {
  const fires: number[] = [];
  let at = cronNext(expression, timezone, from);
  while (at !== null && at <= to && fires.length < limit) {
    fires.push(at);
    at = cronNext(expression, timezone, at);
  }
  return fires;
}

/** The latest fire at or before `at` (epoch ms), or null when there is none. */
export function cronLatest(expression: string, timezone: string, at: number): number | null {
  // croner's previousRuns includes a run earlier in the reference's own second, so 1 ms past
  // `at` includes a fire exactly at `at` and nothing after it (fires fall on whole seconds).
  return compile(expression, timezone).previousRuns(1, new Date(at + 1))[0]?.getTime() ?? null;
}

/**
 * Whether the wall-clock time at `at` in the zone matches the expression. A fire that does not
 * match was moved there by a spring gap.
 */
export function cronMatches(expression: string, timezone: string, at: number): boolean {
  return compile(expression, timezone).match(new Date(at));
}

/** Why `expression` is not a usable cron expression, or null when it is one. */
export function cronProblem(expression: string): string | null {
  try {
    // Never firing is judged in UTC: no field can name a year, so a zone changes nothing.
    if (cronNext(expression, 'UTC', 0) === null) return `never fires: "${expression}"`;
    return null;
  } catch (err) {
    if (err instanceof CronSyntaxError) return `not a cron expression: "${expression}" (${err.message})`;
    throw err;
  }
}

/**
 * Whether two expressions name the same fire times as written (after node-cron's nicknames,
 * names, `?` and the implicit seconds are resolved); used to refuse a window that ends as it
 * starts.
 */
export function sameCron(a: string, b: string): boolean {
  try {
    return toCronerPattern(a) === toCronerPattern(b);
  } catch {
    return false;
  }
}
