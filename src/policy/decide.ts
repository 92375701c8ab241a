/**
 * The scaling decision: given the present (the stack's current value, the target's bounds and
 * cooldowns, the clock) and the pending intent, say what to do. Decisions are data: this module
 * returns a {@link Decision} and never acts, so every rule is tested exhaustively without I/O.
 *
 * Rules, in the order they apply (the first that fires wins, and its reason is recorded):
 * 1. A paused target changes nothing (`paused`).
 * 2. The wanted value: a step moves by the target's step, `by` moves by N, `to` is taken as is.
 *    When the key is not set yet (current null), relative changes start from `min`.
 * 3. Bounds: a `reject` intent outside [min, max] is skipped (`out-of-bounds`); a `clamp`
 *    intent is clamped, and the reason says so.
 * 4. Nothing to do: the clamped value equals the current one (`at-max`, `at-min`, `no-change`).
 *    A request never moves the value against its own direction (a scale-up from above max does
 *    not lower it to max): that is reported as `at-max` / `at-min` too.
 * 5. Cooldown: a change in a direction whose cooldown has not ended is skipped (`cooldown`).
 *    The cooldown is over exactly at its deadline.
 */
import type { TargetConfig } from '../config/schema.js';
import type { Adjustment, CooldownUntil, Decision, Direction, Intent, PendingIntent, SkipReason } from '../types.js';

/** Cooldown durations in milliseconds, per direction (the target's parsed `cooldown`). */
export type Cooldowns = TargetConfig['cooldown'];

/** The part of a target's config the policy reads. */
export type PolicyTarget = Pick<TargetConfig, 'min' | 'max' | 'step' | 'paused' | 'cooldown'>;

/** Everything `decide` needs; the caller (the engine) reads the present and passes it in. */
export interface DecideInput {
  /** The value read from the stack's config just now, or null when the key is not set. */
  current: number | null;
  /** The coalesced intent to decide on. */
  pending: PendingIntent;
  /** Bounds, step, paused flag and cooldown durations. `paused` is the target's live state. */
  target: PolicyTarget;
  /** When each direction's cooldown ends (from the target's durable record). */
  cooldownUntil: CooldownUntil;
  /** The clock's present, epoch milliseconds. */
  now: number;
}

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

/** Decides what to do with the pending intent. Pure: same input, same decision. */
export function decide(input: DecideInput): Decision {
  const { current, target, now } = input;
  const intent = input.pending.intent;
  const adj = describeAdjustment(intent.adjustment, target.step);

  if (target.paused) {
    return skip(current, null, 'paused', `${intent.reason}: target is paused, nothing changed (${adj})`);
  }

  // A key that is not set yet has no value to move from: relative changes start at min.
  const base = current ?? target.min;
  const wanted = wantedValue(intent.adjustment, base, target.step);
  const unsetNote = current === null ? (intent.adjustment.type === 'to' ? ', key not set' : `, key not set: from min ${target.min}`) : '';

  const inBounds = wanted >= target.min && wanted <= target.max;
  if (!inBounds && intent.bounds === 'reject') {
    return skip(
      current,
      wanted,
      'out-of-bounds',
      `${intent.reason}: ${wanted} is outside [${target.min}, ${target.max}] (${adj}${unsetNote})`,
    );
  }
  const to = clamp(wanted, target.min, target.max);
  const clampNote = to === wanted ? '' : `, clamped to ${to === target.max ? 'max' : 'min'} ${to}`;

  // Setting a key that is not there adds a value: it counts as a scale-up.
  let direction: Direction = 'up';
  if (current !== null) {
    const asked = signOf(wanted - current);
    const moved = signOf(to - current);
    if (moved === null || (asked !== null && moved !== asked)) {
      return nothingToDo(intent, current, to, asked, target, adj);
    }
    direction = moved;
  }

  const until = input.cooldownUntil[direction];
  const deadline = until === null ? Number.NaN : Date.parse(until);
  if (now < deadline) {
    return skip(
      current,
      to,
      'cooldown',
      `${intent.reason}: ${label(current)} -> ${to} waits for the ${direction} cooldown until ${until} ` +
        `(${formatLeft(deadline - now)} left; ${adj}${clampNote}${unsetNote})`,
    );
  }

  return {
    kind: 'change',
    from: base,
    to,
    direction,
    clamped: to !== wanted,
    reason: `${intent.reason}: ${label(current)} -> ${to} (${adj}${clampNote}${unsetNote})`,
  };
}

/**
 * The decision for an operation cut off mid-`up` by a stop (`PendingIntent.applying`): finish
 * it at the value it was applying, clamped to today's bounds. It is not decided again from the
 * present, because the stack's config may already hold that value and a relative change would
 * then be applied twice; and neither a cooldown nor a pause holds it back, since the change had
 * already begun. Always a change (the `up` converges the stack even when the value is in place).
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

/** The value an adjustment asks for, before bounds. */
function wantedValue(adjustment: Adjustment, base: number, step: number): number {
  switch (adjustment.type) {
    case 'step':
      return adjustment.direction === 'up' ? base + step : base - step;
    case 'by':
      return base + adjustment.by;
    case 'to':
      return adjustment.to;
  }
}

/** The skip for a request that would not move the value (or would move it the wrong way). */
function nothingToDo(
  intent: Intent,
  current: number,
  to: number,
  asked: Direction | null,
  target: PolicyTarget,
  adj: string,
): Decision {
  if (asked === 'up' && current >= target.max) {
    const where = current === target.max ? `already at max ${target.max}` : `${current} is above max ${target.max}; a scale-up does not lower it`;
    return skip(current, to, 'at-max', `${intent.reason}: ${where} (${adj})`);
  }
  if (asked === 'down' && current <= target.min) {
    const where = current === target.min ? `already at min ${target.min}` : `${current} is below min ${target.min}; a scale-down does not raise it`;
    return skip(current, to, 'at-min', `${intent.reason}: ${where} (${adj})`);
  }
  return skip(current, to, 'no-change', `${intent.reason}: already ${current} (${adj})`);
}

function skip(from: number | null, wanted: number | null, reason: SkipReason, detail: string): Decision {
  return { kind: 'skip', from, wanted, reason, detail };
}

/** How an adjustment reads in a reason: `step +2`, `by -1`, `to 7`. */
function describeAdjustment(adjustment: Adjustment, step: number): string {
  switch (adjustment.type) {
    case 'step':
      return `step ${adjustment.direction === 'up' ? '+' : '-'}${step}`;
    case 'by':
      return `by ${adjustment.by >= 0 ? '+' : ''}${adjustment.by}`;
    case 'to':
      return `to ${adjustment.to}`;
  }
}

function signOf(delta: number): Direction | null {
  if (delta > 0) return 'up';
  if (delta < 0) return 'down';
  return null;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function label(current: number | null): string {
  return current === null ? 'unset' : String(current);
}

function stillRunning(until: string | null, now: number): string | null {
  return until !== null && now < Date.parse(until) ? until : null;
}

/** A remaining time for people: whole seconds up to two minutes, then minutes and seconds. */
function formatLeft(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
}
