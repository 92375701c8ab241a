/**
 * Scheduled scaling (roadmap #12): windows that replace a target's bounds while they are
 * active, and points that set its value once at each fire.
 *
 * Everything here is evaluated from the clock, never from having seen a fire: whether a window
 * is active at `now` is read from its latest start at or before `now` and that start's end, so
 * a daemon started at 10:00 on a weekday is inside an 08:00–20:00 window at once, and a
 * restart changes nothing. Points are a sequence of fire times; which of them have been acted
 * on is the engine's durable record (keyed by schedule name and fire time), not this module's.
 *
 * Pure: every function takes its instants as epoch milliseconds and reads no clock. Cron and
 * daylight-saving rules are in cron.ts.
 */
import { cronBetween, cronLatest, cronNext } from './cron.js';

/**
 * A window: bounds in effect from each fire of `cron` until its end. Reactive scaling keeps
 * working inside them.
 */
export interface WindowSchedule {
  /** Discriminant: a schedule without `to` in the config. */
  kind: 'window';
  /** Unique within its target; names the bounds' source (`schedule:<name>`). */
  name: string;
  /** When the window starts (node-cron syntax, read in `timezone`). */
  cron: string;
  /** When it ends: the first fire of this cron after the start. Exclusive with `duration`. */
  end?: string;
  /** Or how long it lasts, in milliseconds of real time (12h is 12h across a DST change). */
  duration?: number;
  /** IANA zone both crons are read in. */
  timezone: string;
  /** The lower bound while active; missing keeps the target's own. May go below it. */
  min?: number;
  /** The upper bound while active; missing keeps the target's own. `0` holds the target at 0. */
  max?: number;
  /** Among overlapping active windows, the highest priority decides the bounds. */
  priority: number;
}

/** A point: sets the value to `to` once at each fire of `cron`, as an operator command would. */
export interface PointSchedule {
  /** Discriminant: a schedule with `to` in the config. */
  kind: 'point';
  /** Unique within its target; keys each fire in the store together with its fire time. */
  name: string;
  /** When it fires (node-cron syntax, read in `timezone`). */
  cron: string;
  /** IANA zone the cron is read in. */
  timezone: string;
  /** The value each fire asks for (then held to the bounds in effect). */
  to: number;
  /** A fire found later than this (ms), e.g. after downtime, is recorded as missed instead. */
  startingDeadline: number;
}

/** One scheduled change of a target. */
export type Schedule = WindowSchedule | PointSchedule;


/** A window's state at one instant, as {@link windowAt} reads it from the clock. */
export interface WindowState {
  /** Whether the window's bounds are in effect. */
  active: boolean;
  /** When the current window started (epoch ms), or null when inactive. */
  start: number | null;
  /** When the current window ends (epoch ms), or null when inactive or never ending. */
  end: number | null;
  /** The next start strictly after the instant asked about, or null when there is none. */
  next: number | null;
}

/** The bounds in effect at an instant, and why. */
export interface Bounds {
  /** Lowest value allowed. */
  min: number;
  /** Highest value allowed. */
  max: number;
  /** `config` (the target's own) or `schedule:<name>`, names joined by `+` when several tie. */
  source: string;
}

/** A schedule's state for the API (a target's `schedules`). */
export interface ScheduleState {
  /** The schedule's name. */
  name: string;
  /** A window in effect; always false for a point, which has no duration. */
  active: boolean;
  /** The next start (window) or fire (point), ISO-8601 UTC, or null when there is none. */
  next: string | null;
}

/** What becomes of a point's fire found at some instant: acted on, or recorded as missed. */
export type FireOutcome = 'fire' | 'missed';

/** The most fire times {@link firesBetween} returns unless told otherwise. */
export const FIRES_LIMIT = 1000;

/** The next start (window) or fire (point) strictly after `after`, or null when there is none. */
export function nextFire(s: Schedule, after: number): number | null {
  return cronNext(s.cron, s.timezone, after);
}

/**
 * A point's fire times in `(from, to]`, oldest first, at most `limit` (call again from the
 * last one for more). The engine's catch-up after downtime: each is then judged by
 * {@link fireOutcome}.
 */
export function firesBetween(s: PointSchedule, from: number, to: number, limit = FIRES_LIMIT): number[] {
  return cronBetween(s.cron, s.timezone, from, to, limit);
}

/**
 * Whether a fire at `at`, handled at `now`, is acted on: only when it is less than the point's
 * `startingDeadline` late. A point missed while the daemon was down fires once at start if it is
 * recent enough, and is recorded as missed otherwise.
 */
export function fireOutcome(s: PointSchedule, at: number, now: number): FireOutcome {
  return now - at < s.startingDeadline ? 'fire' : 'missed';
}

/**
 * When the window that started at `start` ends: the first `end` fire after it, or `start +
 * duration`; null when it never ends (no end fire comes, or neither is set, which the config
 * refuses).
 */
export function windowEnd(s: WindowSchedule, start: number): number | null {
  if (s.duration !== undefined) return start + s.duration;
  if (s.end !== undefined) return cronNext(s.end, s.timezone, start);
  return null;
}

/**
 * Whether a window is active at `now`, read from the clock: its latest start at or before
 * `now` and that start's end. Active on `[start, end)`. When starts come faster than the window
 * lasts, the latest start governs (its end is the latest too).
 */
export function windowAt(s: WindowSchedule, now: number): WindowState {
  const next = cronNext(s.cron, s.timezone, now);
  const start = cronLatest(s.cron, s.timezone, now);
  if (start === null) return { active: false, start: null, end: null, next };
  const end = windowEnd(s, start);
  if (end !== null && end <= now) return { active: false, start: null, end: null, next };
  return { active: true, start, end, next };
}

/** The subset of a target {@link boundsAt} reads. */
export interface BoundsTarget {
  /** The target's own lower bound. */
  min: number;
  /** The target's own upper bound. */
  max: number;
  /** Its schedules; points are ignored here. */
  schedules: readonly Schedule[];
}

/**
 * The bounds in effect at `now`: the target's own when no window is active, else the active
 * windows': the highest `priority` wins; at equal priority the largest `min` and the largest
 * `max` are taken. Windows may go below the target's own `min` (`max: 0` at night).
 *
 * A window that sets one side only keeps the target's other side, unless that would put min
 * above max: then the window's value wins on both (a window `min: 50` over a target `max: 40`
 * gives 50..50; a window `max: 0` over a target `min: 2` gives 0..0). When two windows of equal
 * priority set opposite sides that cross (one `min: 10`, another `max: 5`), the larger value
 * wins on both (10..10): a schedule asking for capacity is not silently capped.
 */
export function boundsAt(target: BoundsTarget, now: number): Bounds {
  const active = target.schedules.filter((s): s is WindowSchedule => s.kind === 'window' && windowAt(s, now).active);
  if (active.length === 0) return { min: target.min, max: target.max, source: 'config' };
  const top = Math.max(...active.map((w) => w.priority));
  const winners = active.filter((w) => w.priority === top);
  const mins = winners.flatMap((w) => (w.min === undefined ? [] : [w.min]));
  const maxes = winners.flatMap((w) => (w.max === undefined ? [] : [w.max]));
  let min = mins.length > 0 ? Math.max(...mins) : target.min;
  let max = maxes.length > 0 ? Math.max(...maxes) : target.max;
  if (min > max) {
    if (mins.length > 0) max = min;
    else min = max;
  }
  return { min, max, source: `schedule:${winners.map((w) => w.name).join('+')}` };
}

/** Each schedule's state at `now`, for a target's `schedules` in the API. */
export function scheduleStates(schedules: readonly Schedule[], now: number): ScheduleState[] {
  return schedules.map((s) => {
    const next = nextFire(s, now);
    return {
      name: s.name,
      active: s.kind === 'window' && windowAt(s, now).active,
      next: next === null ? null : new Date(next).toISOString(),
    };
  });
}

/**
 * The earliest instant strictly after `now` at which any schedule changes something (a window
 * starts or ends, a point fires), or null when none ever will: when the engine's timer should
 * wake it next.
 */
export function nextChange(schedules: readonly Schedule[], now: number): number | null {
  let earliest: number | null = null;
  const consider = (at: number | null): void => {
    if (at !== null && at > now && (earliest === null || at < earliest)) earliest = at;
  };
  for (const s of schedules) {
    consider(nextFire(s, now));
    if (s.kind === 'window') consider(windowAt(s, now).end);
  }
  return earliest;
}
