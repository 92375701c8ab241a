/**
 * The alert-driven decision: from the signals active now (firing alerts), the present value,
 * the target's step rules, bounds, pauses, cooldowns and stabilization window, the value the
 * target should have, and whether to change to it now.
 *
 * Level-triggered: nothing here depends on when a notification arrived. An up signal that stays
 * active keeps asking for a step above the present value, so after each cooldown the target
 * steps again until the signal ends or `max` is reached (and the same downward), as AWS's step
 * scaling runs its policy again for as long as the alarm stays in ALARM.
 *
 * Conflicts, as AWS resolves them: up and down signals at once, up wins (and the reason says
 * so); several up signals, the one giving the largest value; several down signals, the one
 * giving the largest value (the least aggressive).
 *
 * The rules after sizing, in order: bounds (clamp, and say so); stabilization (a scale-down goes
 * only as low as the highest desired value in the window); nothing to do (`at-max`, `at-min`,
 * `no-change`, or `stabilization` when the window held a change back); the config's `paused`;
 * an API pause of that direction; that direction's cooldown. A skip held by a pause or a
 * cooldown says when it ends (`waitUntil`), so the engine evaluates again then.
 */
import type { Decision, Direction, Pause, ScalingEvent, Signal } from '../types.js';
import { clamp, formatLeft, label, nothingToDo, pauses, signOf, skip, type PolicyTarget } from './decide.js';
import { MAX_LISTED, summarize, type SignalSummary } from './signal-set.js';
import { stabilize, type Recommendation } from './stabilization.js';
import { stepValue } from './steps.js';

export { MAX_LISTED } from './signal-set.js';

/** Everything `planSignals` needs; the engine reads the present and passes it in. */
export interface SignalInput {
  /** The value read from the stack (or last known); null when unset (then sized from `min`). */
  current: number | null;
  /** The active signals of the target, in arrival order, or their summary (see signal-set.ts). */
  signals: readonly Signal[] | SignalSummary;
  target: PolicyTarget;
  pause: Pause | null;
  cooldownUntil: { up: string | null; down: string | null };
  /** Past desired values, for stabilization. */
  history: readonly Recommendation[];
  /** The clock's present, epoch milliseconds. */
  now: number;
}

/** The alert-driven plan: what to do, what the target should have, and from which signals. */
export interface SignalPlan {
  decision: Decision;
  /** The desired value (after bounds and stabilization) and why. */
  desired: { value: number; reason: string };
  /** The value before stabilization, to remember as a recommendation. */
  recommendation: number;
  /** The signals the decision was made from, as an event lists them. */
  signals: NonNullable<ScalingEvent['signals']>;
  /** The step rule that sized it. */
  rule: string;
  /** The source of the signal that decided (the event's `source`). */
  source: Signal['source'];
  /** When a pause or cooldown holding the change ends (epoch ms), else null. */
  waitUntil: number | null;
}

/** Plans from the active signals; null when there are none. Pure. */
export function planSignals(input: SignalInput): SignalPlan | null {
  const { target, now } = input;
  const summary = isSummary(input.signals) ? input.signals : summarize(input.signals, target.steps);
  const { ups, downs, candidates } = summary;
  if (ups + downs === 0) return null;
  const base = input.current ?? target.min;
  const direction: Direction = ups > 0 ? 'up' : 'down';
  const sized = candidates.map((signal) => ({
    signal,
    ...stepValue({ current: base, direction, value: signal.value, threshold: signal.threshold, rules: target.steps, step: target.step }),
  }));
  // Up: the largest value wins. Down: the largest value too, the least aggressive. Among equals,
  // the first to arrive (candidates come in arrival order).
  const chosen = sized.reduce((best, s) => (s.to > best.to ? s : best));
  const conflict = ups > 0 && downs > 0 ? `; up wins over ${downs} down signal${downs === 1 ? '' : 's'}` : '';
  const count = direction === 'up' ? ups : downs;
  const others = count > 1 ? `; largest of ${count} ${direction} signals` : '';

  const wanted = clamp(chosen.to, target.min, target.max);
  const clampNote = wanted === chosen.to ? '' : `, clamped to ${wanted === target.max ? 'max' : 'min'} ${wanted}`;
  const held = stabilize({ current: base, desired: wanted, now, history: input.history, windowMs: target.stabilization });
  const value = held.value;
  const why = `${chosen.signal.reason} (${chosen.rule}${clampNote}${others}${conflict}${held.reason ? `; ${held.reason}` : ''})`;
  const plan = (decision: Decision, waitUntil: number | null = null): SignalPlan => ({
    decision,
    desired: { value, reason: why },
    recommendation: wanted,
    // The deciding signal first, and at most MAX_LISTED in all: an event stays small whatever
    // the number of alerts firing (`desired.reason` says how many there were).
    signals: [chosen.signal, ...summary.first.filter((s) => s !== chosen.signal)]
      .slice(0, MAX_LISTED)
      .map((s) => ({ id: s.id, source: s.source, direction: s.direction, value: s.value, threshold: s.threshold })),
    rule: chosen.rule,
    source: chosen.signal.source,
    waitUntil,
  });

  const moved = signOf(value - base);
  if (input.current !== null && (moved === null || moved !== direction)) {
    if (held.held && signOf(wanted - base) === direction) return plan(skip(base, wanted, 'stabilization', `${why}: held at ${base}`));
    return plan(nothingToDo(chosen.signal.reason, base, value, direction, target, chosen.rule + conflict));
  }
  if (target.paused) return plan(skip(input.current, value, 'paused', `${why}: target is paused, nothing changed`));
  if (pauses(input.pause, direction, now)) {
    const until = input.pause?.until ?? '';
    return plan(skip(input.current, value, 'paused', `${why}: ${direction} is paused until ${until} (${input.pause?.reason ?? ''})`), Date.parse(until));
  }
  const cooling = input.cooldownUntil[direction];
  const deadline = cooling === null ? Number.NaN : Date.parse(cooling);
  if (now < deadline) {
    return plan(
      skip(input.current, value, 'cooldown', `${why}: ${label(input.current)} -> ${value} waits for the ${direction} cooldown until ${cooling} (${formatLeft(deadline - now)} left)`),
      deadline,
    );
  }
  return plan({ kind: 'change', from: base, to: value, direction, clamped: wanted !== chosen.to, reason: `${why}: ${label(input.current)} -> ${value}` });
}

function isSummary(signals: readonly Signal[] | SignalSummary): signals is SignalSummary {
  return !Array.isArray(signals);
}
