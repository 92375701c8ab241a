/**
 * Scheduled scaling: windows and points in IANA time zones (schedule.ts), their coming changes
 * (timeline.ts), and the cron and zone rules under them (cron.ts, zone.ts). Pure throughout:
 * instants are epoch milliseconds passed in; nothing reads the clock or does I/O.
 */
export {
  boundsAt,
  fireOutcome,
  firesBetween,
  FIRES_LIMIT,
  nextChange,
  nextFire,
  scheduleStates,
  windowAt,
  windowEnd,
  type Bounds,
  type BoundsTarget,
  type FireOutcome,
  type PointSchedule,
  type Schedule,
  type ScheduleState,
  type WindowSchedule,
  type WindowState,
} from './schedule.js';
export { timeline, TIMELINE_LIMIT, type TimelineChange, type TimelineEntry } from './timeline.js';
export { cronProblem, CronSyntaxError } from './cron.js';
export { localIso, timeZoneProblem } from './zone.js';
