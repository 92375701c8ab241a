/**
 * What a target's point schedules ask for between two instants: a command for each fire found
 * in time, and one `missed` event for those found later than their `startingDeadline` (the
 * daemon was down). Pure: the engine claims each in the store (once per fire time) and queues.
 */
import { fireOutcome, firesBetween, type PointSchedule } from '../schedule/index.js';
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
 * The claims of one point's fires in `(from, now]`, oldest first: every fire still within its
 * deadline becomes a `to` command (source `schedule`, clamped to the bounds in effect when it
 * runs); of those past it only the latest is claimed, with one `missed` event that counts them
 * all (a week's downtime must not write a week of events).
 */
export function pointClaims(t: TargetRuntime, point: PointSchedule, from: number, now: number, newId: () => string): PointClaim[] {
  const fires = firesBetween(point, from, now);
  const missed = fires.filter((at) => fireOutcome(point, at, now) === 'missed');
  const due = fires.filter((at) => fireOutcome(point, at, now) === 'fire');
  const target = t.config.name;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const claims: PointClaim[] = [];
  const latestMissed = missed[missed.length - 1];
  if (latestMissed !== undefined) {
    const count = missed.length === 1 ? 'its fire at' : `${missed.length} fires, the latest at`;
    claims.push({
      fire: { target, schedule: point.name, at: iso(latestMissed), outcome: 'missed' },
      command: null,
      event: {
        id: newId(),
        target,
        at: iso(now),
        kind: 'missed',
        from: t.record.current,
        to: point.to,
        reason: `schedule ${point.name}: ${count} ${iso(latestMissed)} came past its startingDeadline (${point.startingDeadline} ms), not applied`,
        source: 'schedule',
        intents: 0,
        durationMs: 0,
        dryRun: false,
        evidence: { schedule: { name: point.name, fireAt: iso(latestMissed) } },
      },
    });
  }
  for (const at of due) {
    claims.push({
      fire: { target, schedule: point.name, at: iso(at), outcome: 'fired' },
      command: {
        id: newId(),
        target,
        adjustment: { type: 'to', to: point.to },
        dryRun: false,
        source: 'schedule',
        reason: `schedule ${point.name} (fire at ${iso(at)})`,
        receivedAt: iso(now),
        bounds: 'clamp',
        evidence: { schedule: { name: point.name, fireAt: iso(at) } },
      },
      event: null,
    });
  }
  return claims;
}
