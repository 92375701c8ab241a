/**
 * Approvals: a target with `approval` does not apply a change the daemon decided by itself
 * (alerts, schedules). The operation previews it and records an approval request instead; a
 * person approves or rejects it (chat buttons, the API); the next operation applies it when the
 * stack's value and the decision are still what was previewed, or asks again. The pieces here
 * are plain data; the engine stores them and holds the target while a request waits.
 */
import type { TargetConfig } from '../config/schema.js';
import { cooldownAfter } from '../policy/decide.js';
import type { Actor, Approval, Command, Decision, ScalingEvent, TargetRecord } from '../types.js';
import type { Plan } from './operation.js';

/**
 * Whether a plan is the daemon's own doing: signals, a move into the bounds in effect, a
 * schedule's command, or the engine's (a drift revert). An operator's command (API, chat) is a person's decision already.
 */
export function needsApproval(plan: Plan): boolean {
  if (plan.kind === 'signals' || plan.kind === 'bounds') return true;
  const first = plan.kind === 'commands' ? plan.batch[0] : undefined;
  return first !== undefined && isAutomatic(first);
}

/** A command the daemon queued by itself: a schedule's, or the engine's own (a drift revert). */
export function isAutomatic(command: Command): boolean {
  return command.source === 'schedule' || command.source === 'engine';
}

/** A new pending request for a previewed change. */
export function requestApproval(input: {
  id: string;
  target: TargetConfig;
  from: number | null;
  decision: Extract<Decision, { kind: 'change' }>;
  changes: Record<string, number>;
  now: number;
  commands: string[];
}): Approval {
  const { target, decision, now } = input;
  const timeout = target.approval?.timeout ?? 0;
  return {
    id: input.id,
    target: target.name,
    status: 'pending',
    from: input.from,
    to: decision.to,
    reason: decision.reason,
    changes: input.changes,
    via: target.approval?.via ?? '',
    requestedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + timeout).toISOString(),
    decidedBy: null,
    decidedAt: null,
    commands: input.commands,
  };
}

/** What an event says about its approval. */
export function approvalNote(a: Approval): NonNullable<ScalingEvent['approval']> {
  return { id: a.id, status: a.status, expiresAt: a.expiresAt, changes: a.changes, via: a.via, decidedBy: a.decidedBy };
}

/**
 * Closes a pending request without applying it: rejected by `actor`, or expired (`actor`
 * null). The event records it as a skip, and the direction's cooldown starts, so that the same
 * change is not asked for again at once while the alert still fires.
 */
export function closeApproval(input: {
  approval: Approval;
  actor: Actor | null;
  target: TargetConfig;
  record: TargetRecord;
  id: string;
  now: number;
  dryRun: boolean;
}): { approval: Approval; event: ScalingEvent; record: TargetRecord } {
  const { approval: a, actor, target, now } = input;
  const at = new Date(now).toISOString();
  const closed: Approval = { ...a, status: actor === null ? 'expired' : 'rejected', decidedBy: actor, decidedAt: at };
  const direction = a.to >= (a.from ?? a.to) ? 'up' : 'down';
  const record = { ...input.record, cooldownUntil: cooldownAfter(input.record.cooldownUntil, direction, now, target.cooldown) };
  const change = `${a.from ?? 'unset'} -> ${a.to}`;
  const reason =
    actor === null
      ? `${change} was not approved within ${Math.round((target.approval?.timeout ?? 0) / 1000)}s (${a.reason})`
      : `${change} was rejected by ${actor.name} (${actor.via}) (${a.reason})`;
  const event: ScalingEvent = {
    id: input.id,
    target: target.name,
    at,
    kind: 'skipped',
    from: a.from,
    to: null,
    reason,
    source: actor === null ? 'engine' : actor.via === 'api' ? 'api' : 'chat',
    intents: a.commands.length,
    durationMs: 0,
    dryRun: input.dryRun,
    skipReason: actor === null ? 'approval-expired' : 'rejected',
    ...(actor === null ? {} : { evidence: { actor } }),
    approval: approvalNote(closed),
  };
  return { approval: closed, event, record };
}
