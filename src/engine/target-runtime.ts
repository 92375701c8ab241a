/**
 * What the engine keeps in memory for each target, and the views it derives from it. The
 * durable part (record, commands, signals, running slot) mirrors the store and changes only
 * after the store accepted the change; the rest (desired value, stabilization history, whether
 * the next skip is worth recording) starts empty at each start.
 */
import type { TargetConfig } from '../config/schema.js';
import { activeCooldowns, activePause } from '../policy/decide.js';
import { keyValues, ownedKeys } from '../policy/derived.js';
import { SignalSet } from '../policy/signal-set.js';
import type { Recommendation } from '../policy/stabilization.js';
import { boundsAt, scheduleStates } from '../schedule/index.js';
import type { Approval, Command, RunningOperation, ScalingEvent, Signal, TargetRecord, TargetState } from '../types.js';
import type { StackLock } from './scheduler.js';

/** One target's live state. Only the engine reads or writes it. */
export interface TargetRuntime {
  config: TargetConfig;
  /** Its stack's lock key. */
  stack: string;
  /** The durable state, as last stored. */
  record: TargetRecord;
  /** Queued operator commands, in order. */
  commands: Command[];
  /** Its signals by id, in arrival order, as stored (an expired one stays until it is ended). */
  signals: SignalSet;
  /** The operation in the store's running slot, if any. */
  running: RunningOperation | null;
  lastEvent: ScalingEvent | null;
  /** Why the last read or operation failed, as served in the state; null after a success. */
  error: TargetState['error'];
  /** The last evaluation's desired value and reason. */
  desired: TargetState['desired'];
  /** Past desired values of alert-driven evaluations, for stabilization (kept in memory only). */
  recommendations: Recommendation[];
  /**
   * Counts signal starts and changes (and pauses); `reported` is the count the last recorded
   * decision covered. While they differ, the next decision is recorded even when it changes
   * nothing ("why didn't it scale?"), while evaluations that merely repeat one do not fill the
   * history. Counts rather than a flag, so a change during an operation is not lost with it.
   */
  changes: number;
  reported: number;
  /**
   * Under `engine.dryRun`: the value the last alert-driven preview showed. A preview changes
   * neither the value nor the cooldowns, so the same one is not shown again until the inputs
   * change.
   */
  previewed: number | null;
  /** Do not start before this instant (ms): set after the store refused to start an operation. */
  holdUntil: number;
  /** The open approval (`approval` targets): pending, or approved and not yet used; as stored. */
  approval: Approval | null;
  /** A composite target's key values as its last operation set them (memory only; null before one). */
  keyValues: Record<string, number> | null;
  /** When the next drift check is due (ms), null for a target without `drift.refresh.every`. */
  driftDueAt: number | null;
  /** The signature of the drift state last found ('' for none), so it is reported once (drift.ts). */
  driftSeen: string | null;
  /** The last automatic change the preview guard refused (memory only), see OperationInput.guarded. */
  guarded: { from: number | null; to: number; until: number } | null;
  /** The last change a person rejected or let expire (memory only), see OperationInput.declined. */
  declined: { from: number | null; to: number } | null;
  /** Serialises this target's store writes, so memory sees them in the order the store did. */
  tail: Promise<unknown>;
  /** Counts the deliveries (and ends) of signals that reached memory: a reload compares it (engine #reload). */
  signalWrites: number;
  /** Just taken over from another replica: its folder's settings are checked before the first read. */
  takenOver: boolean;
}

/** A target's runtime before anything was loaded: value unknown, nothing queued. */
export function newRuntime(config: TargetConfig): TargetRuntime {
  return {
    config,
    stack: config.stackKey,
    record: { name: config.name, current: null, paused: config.paused, cooldownUntil: { up: null, down: null }, pause: null, retry: null },
    commands: [],
    signals: new SignalSet(config.steps),
    running: null,
    lastEvent: null,
    error: null,
    desired: null,
    recommendations: [],
    changes: 0,
    reported: 0,
    previewed: null,
    holdUntil: 0,
    approval: null,
    keyValues: null,
    driftDueAt: null,
    driftSeen: null,
    guarded: null,
    declined: null,
    tail: Promise.resolve(),
    signalWrites: 0,
    takenOver: false,
  };
}

/** Runs `fn` after the target's previous serial work settled; the queue moves on whatever the outcome. */
export function serial<T>(t: TargetRuntime, fn: () => Promise<T>): Promise<T> {
  const run = t.tail.then(fn);
  t.tail = run.catch(() => undefined);
  return run;
}

/** Each owned key's value: the driving key's the current value, the others as last set or by rule. */
function valuesOf(t: TargetRuntime): Record<string, number | null> {
  const current = t.record.current;
  if (t.config.derived.length === 0) return { [t.config.configKey]: current };
  const set = t.keyValues;
  const byRule = current === null ? null : keyValues(t.config, current);
  return Object.fromEntries(ownedKeys(t.config).map((key) => [key, key === t.config.configKey ? current : (set?.[key] ?? byRule?.[key] ?? null)]));
}

/** The signals of a target that are active at `now` (not past their expiry). */
export function activeSignals(t: TargetRuntime, now: number): Signal[] {
  return t.signals.active(now);
}

/**
 * The target's state as served. `running` is about the stack: an operation of any target that
 * shares it counts, since it holds this target's work back too.
 */
export function stateOf(t: TargetRuntime, lock: StackLock | undefined, now: number, owner: string | null = null): TargetState {
  const { retry: _retry, applied: _applied, ...record } = t.record;
  // The commands an operation is applying now stay stored until its event; they are not queued.
  const covered = new Set(t.running?.commandIds ?? []);
  const queued = t.commands.filter((c) => !covered.has(c.id));
  return {
    ...record,
    cooldownUntil: activeCooldowns(t.record.cooldownUntil, now),
    pause: activePause(t.record.pause, now),
    paused: t.config.paused || activePause(t.record.pause, now) !== null,
    stack: t.config.stack,
    configKeys: ownedKeys(t.config),
    values: valuesOf(t),
    min: t.config.min,
    max: t.config.max,
    pending: queued[0] ?? null,
    pendingCount: queued.length,
    commands: queued,
    signals: activeSignals(t, now).map((s) => ({
      id: s.id,
      source: s.source,
      direction: s.direction,
      value: s.value,
      threshold: s.threshold,
      since: s.since,
      lastSeen: s.lastSeen,
    })),
    desired: t.desired,
    bounds: boundsAt(t.config, now),
    schedules: scheduleStates(t.config.schedules, now),
    running: lock?.kind === 'operation',
    lastEvent: t.lastEvent,
    error: t.error,
    owner,
  };
}
