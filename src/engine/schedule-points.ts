/**
 * What a target's point schedules ask for between two instants: a command for each fire found
 * in time, and one `missed` event for those found later than their `startingDeadline` (the
 * daemon was down). Pure: the engine claims each in the store (once per fire time) and queues.
 */
import { cronLatest } from '../schedule/cron.js';
import { FIRES_LIMIT, firesBetween, type PointSchedule } from '../schedule/index.js';
import type { ScheduleFire } from '../store/store.js';
import type { Command, ScalingEvent } from '../types.js';
import type { TargetRuntime } from './target-runtime.js';

/** One fire to claim, with what it makes. */
export interface PointClaim {
  fire: ScheduleFire;
  command: Command | null;
  event: ScalingEvent | null;
}

/** The point schedules of a target. */
export function pointsOf(t: TargetRuntime): PointSchedule[] {
  return t.config.schedules.filter((s): s is PointSchedule => s.kind === 'point');
}

/**
 * The claims of one point's fires in `(from, now]`. A point sets an absolute value, so only its
 * latest fire still within `startingDeadline` is acted on (a catch-up after downtime "fires
 * once at start", not once per fire it slept through); every earlier fire in the range, on time
 * or not, is superseded or missed, and one `missed` event counts them. The counts come from
 * bounded scans, so a week of downtime on a per-second cron costs no more than a few thousand
 * cron steps and never loses the fire that is on time.
 */
export function pointClaims(t: TargetRuntime, point: PointSchedule, from: number, now: number, newId: () => string): PointClaim[] {
  const target = t.config.name;
  const iso = (ms: number): string => new Date(ms).toISOString();
  // Fires at or before this instant are too late (fireOutcome's rule: late by the deadline or more).
  const lateBy = now - point.startingDeadline;
  const onTime = firesBetween(point, Math.max(from, lateBy), now);
  const latest = onTime[onTime.length - 1];
  const latestMissed = from < lateBy ? cronLatest(point.cron, point.timezone, lateBy) : null;
  const missedCount = latestMissed !== null && latestMissed > from ? firesBetween(point, from, lateBy).length : 0;
  const skipped = missedCount + Math.max(0, onTime.length - 1);
  const claims: PointClaim[] = [];
  if (skipped > 0) {
    const last = onTime.length > 1 ? (onTime[onTime.length - 2] as number) : (latestMissed as number);
    const capped = missedCount >= FIRES_LIMIT ? 'at least ' : '';
    claims.push({
      fire: { target, schedule: point.name, at: iso(last), outcome: 'missed' },
      command: null,
      event: {
        id: newId(),
        target,
        at: iso(now),
        kind: 'missed',
        from: t.record.current,
        to: point.to,
        reason:
          `schedule ${point.name}: ${capped}${skipped} fire${skipped === 1 ? '' : 's'} up to ${iso(last)} not applied ` +
          `(${latest === undefined ? `all past its startingDeadline of ${point.startingDeadline} ms` : `superseded by the fire at ${iso(latest)}`})`,
        source: 'schedule',
        intents: 0,
        durationMs: 0,
        dryRun: false,
        evidence: { schedule: { name: point.name, fireAt: iso(last) } },
      },
    });
  }
  if (latest !== undefined) {
    claims.push({
      fire: { target, schedule: point.name, at: iso(latest), outcome: 'fired' },
      command: {
        id: newId(),
        target,
        adjustment: { type: 'to', to: point.to },
        dryRun: false,
        source: 'schedule',
        reason: `schedule ${point.name} (fire at ${iso(latest)})`,
        receivedAt: iso(now),
        bounds: 'clamp',
        evidence: { schedule: { name: point.name, fireAt: iso(latest) } },
      },
      event: null,
    });
  }
  return claims;
}
