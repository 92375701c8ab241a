/**
 * The events and bus messages the engine makes on its own, outside an operation: a skipped
 * evaluation worth recording, a held move into the bounds in effect, a point command found too
 * late, a failed read, and a target's gauges. Builders only: the engine stores and publishes
 * what they return.
 */
import type { BusMessage } from '../observe/bus.js';
import type { PulumiScaleError } from '../errors.js';
import type { SignalPlan } from '../policy/signals.js';
import type { Command, Decision, ScalingEvent } from '../types.js';
import type { TargetRuntime } from './target-runtime.js';

/** What every event the engine records on its own has: nothing ran, so no duration. */
function engineEvent(
  t: TargetRuntime,
  fields: { id: string; now: number } & Pick<ScalingEvent, 'kind' | 'reason' | 'source'> & Partial<ScalingEvent>,
): ScalingEvent {
  const { now, ...rest } = fields;
  return { target: t.config.name, at: new Date(now).toISOString(), from: t.record.current, to: null, intents: 0, durationMs: 0, dryRun: false, ...rest };
}

/** The `skipped` event of an evaluation that changed nothing (a signal started or changed). */
export function skipEvent(t: TargetRuntime, plan: SignalPlan, fields: { id: string; now: number; dryRun: boolean }): ScalingEvent | null {
  if (plan.decision.kind !== 'skip') return null;
  return engineEvent(t, {
    ...fields,
    kind: 'skipped',
    reason: plan.decision.detail,
    source: plan.source,
    skipReason: plan.decision.reason,
    signals: plan.signals,
    rule: plan.rule,
  });
}

/** The `skipped` event of a move into the bounds in effect that a pause holds. */
export function boundsSkipEvent(t: TargetRuntime, decision: Decision, source: string, fields: { id: string; now: number }): ScalingEvent | null {
  if (decision.kind !== 'skip') return null;
  return engineEvent(t, {
    ...fields,
    kind: 'skipped',
    reason: decision.detail,
    source: source.startsWith('schedule:') ? 'schedule' : 'engine',
    skipReason: decision.reason,
  });
}

/** The `missed` event of a point's command found queued at start past its deadline. */
export function missedCommandEvent(t: TargetRuntime, command: Command, fields: { id: string; now: number }): ScalingEvent {
  const fire = command.evidence.schedule;
  return engineEvent(t, {
    ...fields,
    kind: 'missed',
    to: command.adjustment.type === 'to' ? command.adjustment.to : null,
    reason: `schedule ${fire?.name ?? '?'}: its fire at ${fire?.fireAt ?? '?'} was queued before a stop and is past its startingDeadline now; not applied`,
    source: 'schedule',
    intents: 1,
    commands: [command.id],
    evidence: command.evidence,
  });
}

/** The `failed` event of a read that found no stack (or could not read it). */
export function readFailureEvent(t: TargetRuntime, error: PulumiScaleError, fields: { id: string; now: number }): ScalingEvent {
  return engineEvent(t, { ...fields, kind: 'failed', from: null, reason: error.message, source: 'engine', errorCode: error.code });
}

/** The target's gauges: value, desired value, active signals per direction. */
export function targetMessage(t: TargetRuntime, now: number): Extract<BusMessage, { type: 'target' }> {
  const { ups, downs } = t.signals.summary(now);
  return {
    type: 'target',
    target: t.config.name,
    current: t.record.current,
    desired: t.desired?.value ?? null,
    signals: { up: ups, down: downs },
  };
}

/**
 * Whether a skip would only repeat the target's newest event: a skip for the same reason at the
 * same value. The history says "held at 3: paused" once, not once per alert of a flood.
 */
export function repeatsNewest(t: TargetRuntime, plan: SignalPlan): boolean {
  const newest = t.lastEvent;
  return plan.decision.kind === 'skip' && newest?.kind === 'skipped' && newest.skipReason === plan.decision.reason && newest.from === t.record.current;
}

/** The target's error after an operation: a failed event's code and reason, else none. */
export function errorOf(events: readonly ScalingEvent[]): TargetRuntime['error'] {
  const failed = events.find((e) => e.kind === 'failed');
  if (failed === undefined) return null;
  return { code: failed.errorCode ?? 'PS_INTERNAL', message: failed.reason, at: failed.at };
}
