/**
 * The events and bus messages the engine makes on its own, outside an operation: a skipped
 * evaluation worth recording, a failed read, and a target's gauges. Builders only: the engine
 * stores and publishes what they return.
 */
import type { BusMessage } from '../observe/bus.js';
import type { PulumiScaleError } from '../errors.js';
import type { SignalPlan } from '../policy/signals.js';
import type { Command, Decision, ScalingEvent } from '../types.js';
import { activeSignals, type TargetRuntime } from './target-runtime.js';

/** The `skipped` event of an evaluation that changed nothing (a signal started or changed). */
export function skipEvent(t: TargetRuntime, plan: SignalPlan, fields: { id: string; now: number; dryRun: boolean }): ScalingEvent | null {
  if (plan.decision.kind !== 'skip') return null;
  return {
    id: fields.id,
    target: t.config.name,
    at: new Date(fields.now).toISOString(),
    kind: 'skipped',
    from: t.record.current,
    to: null,
    reason: plan.decision.detail,
    source: plan.source,
    intents: 0,
    durationMs: 0,
    dryRun: fields.dryRun,
    skipReason: plan.decision.reason,
    signals: plan.signals,
    rule: plan.rule,
  };
}

/** The `skipped` event of a move into the bounds in effect that a pause holds. */
export function boundsSkipEvent(t: TargetRuntime, decision: Decision, source: string, fields: { id: string; now: number }): ScalingEvent | null {
  if (decision.kind !== 'skip') return null;
  return {
    id: fields.id,
    target: t.config.name,
    at: new Date(fields.now).toISOString(),
    kind: 'skipped',
    from: t.record.current,
    to: null,
    reason: decision.detail,
    source: source.startsWith('schedule:') ? 'schedule' : 'engine',
    intents: 0,
    durationMs: 0,
    dryRun: false,
    skipReason: decision.reason,
  };
}

/** The `missed` event of a point's command found queued at start past its deadline. */
export function missedCommandEvent(t: TargetRuntime, command: Command, fields: { id: string; now: number }): ScalingEvent {
  const fire = command.evidence.schedule;
  return {
    id: fields.id,
    target: t.config.name,
    at: new Date(fields.now).toISOString(),
    kind: 'missed',
    from: t.record.current,
    to: command.adjustment.type === 'to' ? command.adjustment.to : null,
    reason: `schedule ${fire?.name ?? '?'}: its fire at ${fire?.fireAt ?? '?'} was queued before a stop and is past its startingDeadline now; not applied`,
    source: 'schedule',
    intents: 1,
    durationMs: 0,
    dryRun: false,
    commands: [command.id],
    evidence: command.evidence,
  };
}

/** The `failed` event of a read that found no stack (or could not read it). */
export function readFailureEvent(t: TargetRuntime, error: PulumiScaleError, fields: { id: string; now: number }): ScalingEvent {
  return {
    id: fields.id,
    target: t.config.name,
    at: new Date(fields.now).toISOString(),
    kind: 'failed',
    from: null,
    to: null,
    reason: error.message,
    source: 'engine',
    intents: 0,
    durationMs: 0,
    dryRun: false,
    errorCode: error.code,
  };
}

/** The target's gauges: value, desired value, active signals per direction. */
export function targetMessage(t: TargetRuntime, now: number): Extract<BusMessage, { type: 'target' }> {
  const active = activeSignals(t, now);
  return {
    type: 'target',
    target: t.config.name,
    current: t.record.current,
    desired: t.desired?.value ?? null,
    signals: { up: active.filter((s) => s.direction === 'up').length, down: active.filter((s) => s.direction === 'down').length },
  };
}

/** The target's error after an operation: a failed event's code and reason, else none. */
export function errorOf(events: readonly ScalingEvent[]): TargetRuntime['error'] {
  const failed = events.find((e) => e.kind === 'failed');
  if (failed === undefined) return null;
  return { code: failed.errorCode ?? 'PS_INTERNAL', message: failed.reason, at: failed.at };
}
