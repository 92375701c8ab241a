/**
 * Decisions on operator commands, and the rules every decision shares (bounds, pauses,
 * cooldown bookkeeping, how a reason reads). Decisions are data: this module returns a
 * {@link Decision} and never acts, so every rule is tested exhaustively without I/O.
 *
 * A command's rules, in the order they apply (the first that fires wins, and its reason is
 * recorded):
 * 1. A target paused by its config changes nothing (`paused`).
 * 2. The wanted value: a bare up/down moves by the target's step rules (an alert's metric value,
 *    when the command carries one) or its `step`; `by` moves by N; `to` is taken as is. When the
 *    key is not set yet (current null), relative changes start from `min`.
 * 3. Bounds: a `reject` command outside [min, max] is skipped (`out-of-bounds`); a `clamp` one
 *    is clamped, and the reason says so.
 * 4. Nothing to do: the clamped value equals the current one (`at-max`, `at-min`, `no-change`).
 *    A request never moves the value against its own direction (a scale-up from above max does
 *    not lower it to max): that is reported as `at-max` / `at-min` too.
 * 5. A direction paused through the API changes nothing that way (`paused`).
 * An operator's command does not wait for a cooldown (as AWS's SetDesiredCapacity does not by
 * default): it runs at once and starts the cooldown of its direction like any change.
 */
import type { TargetConfig } from '../config/schema.js';
import type { Adjustment, Command, CooldownUntil, Decision, Direction, Pause, SkipReason } from '../types.js';
import { stepValue } from './steps.js';

/** Cooldown durations in milliseconds, per direction (the target's parsed `cooldown`). */
export type Cooldowns = TargetConfig['cooldown'];

/** The part of a target's config the policy reads. */
export type PolicyTarget = Pick<TargetConfig, 'min' | 'max' | 'step' | 'paused' | 'cooldown' | 'steps' | 'stabilization'>;

/**
 * Which way an adjustment goes from `current`, or null when it goes nowhere (`by: 0`, or `to`
 * the current value). A `to` for a key that is not set yet counts as `up`: it adds a value.
 */
export function directionOf(adjustment: Adjustment, current: number | null): Direction | null {
  switch (adjustment.type) {
    case 'step':
      return adjustment.direction;
    case 'by':
      return signOf(adjustment.by);
    case 'to':
      return current === null ? 'up' : signOf(adjustment.to - current);
  }
}

/**
 * The cooldowns after a change in `direction` completed at `now`: that direction cools down for
 * its configured duration; the other direction keeps its deadline (a scale-up does not delay a
 * later scale-down, and the reverse).
 */
export function cooldownAfter(previous: CooldownUntil, direction: Direction, now: number, cooldowns: Cooldowns): CooldownUntil {
  return { ...previous, [direction]: new Date(now + cooldowns[direction]).toISOString() };
}

/** The cooldowns still running at `now`; deadlines already passed become null, as served. */
export function activeCooldowns(cooldownUntil: CooldownUntil, now: number): CooldownUntil {
  return { up: stillRunning(cooldownUntil.up, now), down: stillRunning(cooldownUntil.down, now) };
}

/** The pause still in effect at `now`, or null once it has ended. */
export function activePause(pause: Pause | null, now: number): Pause | null {
  return pause !== null && now < Date.parse(pause.until) ? pause : null;
}

/** Whether `pause` holds changes in `direction` at `now`. */
export function pauses(pause: Pause | null, direction: Direction, now: number): boolean {
  const active = activePause(pause, now);
  return active !== null && (active.direction === 'both' || active.direction === direction);
}

/** Everything `decideCommand` needs; the engine reads the present and passes it in. */
export interface CommandInput {
  /** The value read from the stack's config just now (or the one before), null when unset. */
  current: number | null;
  command: Command;
  target: PolicyTarget;
  /** The API pause in the target's record. */
  pause: Pause | null;
  /** The clock's present, epoch milliseconds. */
  now: number;
}

/** Decides one operator command. Pure: same input, same decision. */
export function decideCommand(input: CommandInput): Decision {
  const { current, command, target, now } = input;
  const reasonOf = command.reason;
  const sized = wantedValue(command, current ?? target.min, target);
  const adj = sized.rule;

  if (target.paused) return skip(current, null, 'paused', `${reasonOf}: target is paused, nothing changed (${adj})`);

  const unsetNote = current === null ? (command.adjustment.type === 'to' ? ', key not set' : `, key not set: from min ${target.min}`) : '';
  const wanted = sized.to;
  if ((wanted < target.min || wanted > target.max) && command.bounds === 'reject') {
    return skip(current, wanted, 'out-of-bounds', `${reasonOf}: ${wanted} is outside [${target.min}, ${target.max}] (${adj}${unsetNote})`);
  }
  const to = clamp(wanted, target.min, target.max);
  const clampNote = to === wanted ? '' : `, clamped to ${to === target.max ? 'max' : 'min'} ${to}`;

  // Setting a key that is not there adds a value: it counts as a scale-up.
  let direction: Direction = 'up';
  // An operator's multi-key command that keeps the driving value still sets its other keys: a
  // change from the value to itself (counted as up, as setting a key is).
  const setsOtherKeys = command.adjustment.type === 'to' && Object.keys(command.adjustment.values ?? {}).length > 0;
  if (current !== null) {
    const asked = signOf(wanted - current);
    const moved = signOf(to - current);
    if (!(setsOtherKeys && asked === null)) {
      if (moved === null || (asked !== null && moved !== asked)) return nothingToDo(reasonOf, current, to, asked, target, adj);
      direction = moved;
    }
  }
  if (pauses(input.pause, direction, now)) {
    return skip(current, to, 'paused', `${reasonOf}: ${direction} is paused until ${input.pause?.until ?? '?'} (${input.pause?.reason ?? ''}), nothing changed (${adj})`);
  }
  return {
    kind: 'change',
    from: current ?? target.min,
    to,
    direction,
    clamped: to !== wanted,
    reason: `${reasonOf}: ${label(current)} -> ${to} (${adj}${clampNote}${unsetNote})`,
  };
}

/**
 * The decision for an operation cut off mid-`up` by a stop (`RunningOperation.applying`): finish
 * it at the value it was applying, clamped to today's bounds. It is not decided again from the
 * present, because the stack's config may already hold that value and a relative change would
 * then be applied twice; a cooldown does not hold it back, since the change had already begun
 * (a pause does: the engine reverts instead). Always a change (the `up` converges the stack
 * even when the value is in place).
 */
export function resumeDecision(
  applying: { from: number | null; to: number },
  reason: string,
  target: Pick<PolicyTarget, 'min' | 'max'>,
): Extract<Decision, { kind: 'change' }> {
  const to = clamp(applying.to, target.min, target.max);
  const from = applying.from ?? to;
  const clampNote = to === applying.to ? '' : `, clamped to ${to === target.max ? 'max' : 'min'} ${to}`;
  return {
    kind: 'change',
    from,
    to,
    direction: to >= from ? 'up' : 'down',
    clamped: to !== applying.to,
    reason: `${reason}: resumed after a stop mid-operation: ${label(applying.from)} -> ${to}${clampNote}`,
  };
}

/** The value a command asks for, before bounds, and how it reads in a reason. */
function wantedValue(command: Command, base: number, target: PolicyTarget): { to: number; rule: string } {
  const adjustment = command.adjustment;
  switch (adjustment.type) {
    case 'step':
      // An alert's command (a dry run of what it would do) carries its metric in the evidence.
      return stepValue({
        current: base,
        direction: adjustment.direction,
        value: command.evidence.metricValue ?? null,
        threshold: command.evidence.threshold ?? null,
        rules: target.steps,
        step: target.step,
      });
    case 'by':
      return { to: base + adjustment.by, rule: `by ${adjustment.by >= 0 ? '+' : ''}${adjustment.by}` };
    case 'to':
      return { to: adjustment.to, rule: `to ${adjustment.to}` };
  }
}

/** The skip for a request that would not move the value (or would move it the wrong way). */
export function nothingToDo(reason: string, current: number, to: number, asked: Direction | null, target: Pick<PolicyTarget, 'min' | 'max'>, adj: string): Decision {
  if (asked === 'up' && current >= target.max) {
    const where = current === target.max ? `already at max ${target.max}` : `${current} is above max ${target.max}; a scale-up does not lower it`;
    return skip(current, to, 'at-max', `${reason}: ${where} (${adj})`);
  }
  if (asked === 'down' && current <= target.min) {
    const where = current === target.min ? `already at min ${target.min}` : `${current} is below min ${target.min}; a scale-down does not raise it`;
    return skip(current, to, 'at-min', `${reason}: ${where} (${adj})`);
  }
  return skip(current, to, 'no-change', `${reason}: already ${current} (${adj})`);
}

export function skip(from: number | null, wanted: number | null, reason: SkipReason, detail: string): Decision {
  return { kind: 'skip', from, wanted, reason, detail };
}

export function signOf(delta: number): Direction | null {
  if (delta > 0) return 'up';
  if (delta < 0) return 'down';
  return null;
}

export function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

export function label(current: number | null): string {
  return current === null ? 'unset' : String(current);
}

function stillRunning(until: string | null, now: number): string | null {
  return until !== null && now < Date.parse(until) ? until : null;
}

/** A remaining time for people: whole seconds up to two minutes, then minutes and seconds. */
export function formatLeft(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
}
