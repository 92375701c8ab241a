/**
 * What the engine keeps in memory for each target, and the views it derives from it. The
 * durable part (record, pending slots) mirrors the store; the rest is rebuilt at start.
 */
import type { TargetConfig } from '../config/schema.js';
import { activeCooldowns } from '../policy/decide.js';
import type { PendingIntent, ScalingEvent, TargetRecord, TargetState } from '../types.js';
import { Mailbox } from './mailbox.js';
import type { StackLock } from './scheduler.js';

/** One target's live state. Only the engine reads or writes it. */
export interface TargetRuntime {
  config: TargetConfig;
  /** Its stack's lock key. */
  stack: string;
  mailbox: Mailbox;
  /** The durable state, as last stored (or about to be). */
  record: TargetRecord;
  lastEvent: ScalingEvent | null;
  /** Why the last read or operation failed, as served in the state; null after a success. */
  error: TargetState['error'];
  /** Do not start before this instant (ms): set after the store refused to start an operation. */
  holdUntil: number;
}

/** A target's runtime before anything was loaded: value unknown, no cooldown, nothing pending. */
export function newRuntime(config: TargetConfig): TargetRuntime {
  return {
    config,
    stack: config.stackKey,
    mailbox: new Mailbox(),
    record: { name: config.name, current: null, paused: config.paused, cooldownUntil: { up: null, down: null } },
    lastEvent: null,
    error: null,
    holdUntil: 0,
  };
}

/** The earliest instant (epoch ms) the target's queued intent may start. */
export function readyAt(t: TargetRuntime, pending: PendingIntent): number {
  const notBefore = pending.notBefore === null ? 0 : Date.parse(pending.notBefore);
  return Math.max(t.holdUntil, Number.isNaN(notBefore) ? 0 : notBefore);
}

/**
 * The target's state as served. `running` is about the stack: an operation of any target that
 * shares it counts, since it holds this target's work back too.
 */
export function stateOf(t: TargetRuntime, lock: StackLock | undefined, now: number): TargetState {
  const pending = t.mailbox.queued;
  return {
    ...t.record,
    cooldownUntil: activeCooldowns(t.record.cooldownUntil, now),
    stack: t.config.stack,
    configKeys: [t.config.configKey],
    min: t.config.min,
    max: t.config.max,
    pending: pending?.intent ?? null,
    pendingCount: pending?.count ?? 0,
    running: lock?.kind === 'operation',
    lastEvent: t.lastEvent,
    error: t.error,
  };
}
