/**
 * The coming changes of a target's schedules (`GET /api/v1/targets/:name/timeline`): window
 * starts and ends with their bounds, and point fires with their value, each in UTC and in the
 * schedule's own zone, flagged when daylight saving moves it. An operator reads from it what
 * the next DST weekend will do before it does it.
 *
 * Pure: the caller passes `from`; nothing reads the clock.
 */
import { cronBetween, cronMatches } from './cron.js';
import { firesBetween, windowAt, windowEnd, type Schedule, type WindowSchedule } from './schedule.js';
import { inRepeatedHour, localIso, offsetAt } from './zone.js';

/** What happens at a timeline entry. */
export type TimelineChange = 'window-start' | 'window-end' | 'point';

/** One coming change. */
export interface TimelineEntry {
  /** When, ISO-8601 UTC. */
  at: string;
  /** When, ISO-8601 in the schedule's zone with its offset (`2026-03-29T03:00:00+02:00`). */
  local: string;
  /** The schedule's IANA zone. */
  timezone: string;
  /** The schedule's name. */
  schedule: string;
  /** A window starting or ending, or a point firing. */
  change: TimelineChange;
  /** The window's own lower bound (windows that set one). */
  min?: number;
  /** The window's own upper bound (windows that set one). */
  max?: number;
  /** The value a point asks for. */
  to?: number;
  /**
   * True when daylight saving moved this change: a cron time in the spring gap runs at the
   * gap's end, a time in the repeated autumn hour is ambiguous on the wall clock (a fixed-time
   * cron runs at its first occurrence only), and a `duration` that spans a transition ends at
   * another wall-clock time than its start plus the duration would suggest.
   */
  dstShifted: boolean;
}

/** At most this many entries per schedule: a per-second cron would otherwise fill 48h with 172,800. */
export const TIMELINE_LIMIT = 500;

const HOUR = 3_600_000;

/** Ends before starts before points at the same instant: the order the engine applies them in. */
const ORDER: Record<TimelineChange, number> = { 'window-end': 0, 'window-start': 1, point: 2 };

/** An entry with what it is sorted by. */
interface Sorted {
  ms: number;
  rank: number;
  entry: TimelineEntry;
}

/**
 * The changes of `schedules` in `(from, from + hours]`, sorted by time (then ends, starts,
 * points, then config order). A window already active at `from` contributes its end.
 */
export function timeline(schedules: readonly Schedule[], from: number, hours: number): TimelineEntry[] {
  const until = from + Math.max(0, hours) * HOUR;
  const entries: Sorted[] = [];
  schedules.forEach((s, rank) => {
    const add = (ms: number, change: TimelineChange, dstShifted: boolean): void => {
      const values =
        s.kind === 'point' ? { to: s.to } : { ...(s.min === undefined ? {} : { min: s.min }), ...(s.max === undefined ? {} : { max: s.max }) };
      const entry = { at: new Date(ms).toISOString(), local: localIso(ms, s.timezone), timezone: s.timezone, schedule: s.name, change, ...values, dstShifted };
      entries.push({ ms, rank, entry });
    };
    const cronShifted = (cron: string, ms: number): boolean => !cronMatches(cron, s.timezone, ms) || inRepeatedHour(ms, s.timezone);
    if (s.kind === 'point') {
      for (const ms of firesBetween(s, from, until, TIMELINE_LIMIT)) add(ms, 'point', cronShifted(s.cron, ms));
      return;
    }
    const ends = new Set<number>();
    const addEnd = (start: number, end: number | null): void => {
      if (end === null || end <= from || end > until || ends.has(end)) return;
      ends.add(end);
      add(end, 'window-end', endShifted(s, start, end));
    };
    const current = windowAt(s, from);
    if (current.active && current.start !== null) addEnd(current.start, current.end);
    for (const start of cronBetween(s.cron, s.timezone, from, until, TIMELINE_LIMIT)) {
      add(start, 'window-start', cronShifted(s.cron, start));
      addEnd(start, windowEnd(s, start));
    }
  });
  return entries
    .sort((a, b) => a.ms - b.ms || ORDER[a.entry.change] - ORDER[b.entry.change] || a.rank - b.rank)
    .map((e) => e.entry);
}

/** Whether DST moved a window's end: see {@link TimelineEntry.dstShifted}. */
function endShifted(s: WindowSchedule, start: number, end: number): boolean {
  if (inRepeatedHour(end, s.timezone)) return true;
  if (s.duration !== undefined) return offsetAt(start, s.timezone) !== offsetAt(end, s.timezone);
  return s.end !== undefined && !cronMatches(s.end, s.timezone, end);
}
