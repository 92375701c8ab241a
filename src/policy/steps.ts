/**
 * Step rules: how far one evaluation moves a target, from the metric value an alert carries
 * (roadmap #13: "if metric > 90%, add 5; if > 70%, add 2"). The semantics are AWS step
 * scaling's, so that an operator who knows `StepAdjustments` reads these rules the same way:
 * - bands are half-open intervals of the metric: `[from, to)` for a scale-up and `(from, to]`
 *   for a scale-down, as AWS includes the bound nearer the threshold;
 * - `percent` rounds the way AWS does (toward zero, but never to 0) and honours `minMagnitude`;
 * - `exact` sets the value.
 * Whatever no rule covers (no rule for the direction, no metric value, no matching band) moves
 * by the target's plain `step`, so a target without rules behaves as before, and the returned
 * `rule` says which case applied so that an event can explain the value.
 *
 * Pure: no clock, no I/O. Bounds (min/max), cooldowns and stabilization are applied after this
 * by the caller.
 */
import type { TargetConfig } from '../config/schema.js';

/** How a band's `by` is read: added to the value, a percentage of it, or the new value itself. */
export type StepAdjustmentType = 'change' | 'percent' | 'exact';

/** One band of metric values and the adjustment it asks for. An open bound is infinite. */
export interface StepBand {
  /** Lower bound of the metric; missing means -∞. Inclusive for `up`, exclusive for `down`. */
  from?: number;
  /** Upper bound of the metric; missing means +∞. Exclusive for `up`, inclusive for `down`. */
  to?: number;
  /** The adjustment, read according to the rule's {@link StepAdjustmentType}. */
  by: number;
}

/** The step rule of one direction (a target's `steps.up` or `steps.down`). */
export interface StepRule {
  /** How each band's `by` is applied. */
  adjustment: StepAdjustmentType;
  /** Whether bands bound the metric value itself or its distance from the alert's threshold. */
  relativeTo: 'value' | 'threshold';
  /** Contiguous, non-overlapping bands (checked by the config schema). */
  bands: readonly StepBand[];
  /** For `percent` only: the smallest change a band may make, in units of the value. */
  minMagnitude?: number;
}

/** A target's step rules per direction; a missing direction moves by `step`. */
export interface StepRules {
  /** The rule for scale-ups. */
  up?: StepRule;
  /** The rule for scale-downs. */
  down?: StepRule;
}

type Fits<T extends U, U> = T;
/**
 * A parsed config's `steps` (config/schema.ts). Declared through `Fits` as a build-time proof
 * that it is a {@link StepRules}: if the schema and these types drift apart, the build stops
 * here rather than the engine at run time.
 */
export type ConfiguredStepRules = Fits<NonNullable<TargetConfig['steps']>, StepRules>;

/** What fired and the value it asks for, before bounds. */
export interface StepResult {
  /** The value asked for; the caller clamps it to the target's bounds. */
  to: number;
  /** Which rule decided, for an event's reason, e.g. `steps.up band [90, ∞): +5`. */
  rule: string;
}

/** What {@link stepValue} reads: the present value and the signal that asks to move it. */
export interface StepInput {
  /** The target's current value (the caller starts an unset key from `min`). */
  current: number;
  /** Which way the signal asks to go. */
  direction: 'up' | 'down';
  /** The metric value the alert carried, or null when it carried none. */
  value: number | null;
  /** The alert's threshold, or null when unknown; needed by `relativeTo: threshold` only. */
  threshold: number | null;
  /** The target's step rules, if any. */
  rules: StepRules | undefined;
  /** The target's plain step, used whenever no band applies. */
  step: number;
}

/** Which band of its rule a signal falls in, or why none applies (then the plain `step` moves it). */
type Placement =
  | { band: StepBand; index: number; against: string; rule: StepRule }
  | { band: null; why: string | null };

function placement(direction: 'up' | 'down', value: number | null, threshold: number | null, rules: StepRules | undefined): Placement {
  const rule = rules?.[direction];
  if (rule === undefined) return { band: null, why: null };
  // A NaN or infinite value cannot fall in a band; it is as good as no value.
  if (value === null || !Number.isFinite(value)) return { band: null, why: 'no metric value' };
  let metric = value;
  let against = '';
  if (rule.relativeTo === 'threshold') {
    if (threshold === null || !Number.isFinite(threshold)) return { band: null, why: 'no threshold' };
    metric = value - threshold;
    against = ` relative to threshold ${threshold}`;
  }
  const index = rule.bands.findIndex((b) => inBand(b, metric, direction));
  if (index < 0) {
    const shown = rule.relativeTo === 'threshold' ? `${metric} (${value} - threshold ${threshold})` : String(metric);
    return { band: null, why: `no band matches ${shown}` };
  }
  return { band: rule.bands[index] as StepBand, index, against, rule };
}

/**
 * The class of a signal under a target's rules: its direction and the band it falls in, or
 * `step` when the plain step moves it. Signals of one class ask for the same value from any
 * present value (their rule texts may differ), which lets the engine size one signal per class
 * instead of every signal (see signal-set.ts). Pure.
 */
export function stepClass(direction: 'up' | 'down', value: number | null, threshold: number | null, rules: StepRules | undefined): string {
  const placed = placement(direction, value, threshold, rules);
  if (placed.band === null) return PLAIN_STEP_CLASS[direction];
  // Every active signal keeps its class: one string per band serves them all.
  return (BAND_CLASSES[direction][placed.index] ??= `${direction}:${placed.index}`);
}

const PLAIN_STEP_CLASS = { up: 'up:step', down: 'down:step' } as const;
/** The band classes made so far, by direction and band index (bounded by the rules' bands). */
const BAND_CLASSES: Record<'up' | 'down', string[]> = { up: [], down: [] };

/** The value one step of `direction` asks for, and the rule that decided it. Pure. */
export function stepValue(input: StepInput): StepResult {
  const { current, direction, value, threshold, rules, step } = input;
  const placed = placement(direction, value, threshold, rules);
  if (placed.band === null) {
    return {
      to: direction === 'up' ? current + step : current - step,
      rule: `step ${direction === 'up' ? '+' : '-'}${step}${placed.why === null ? '' : ` (${placed.why})`}`,
    };
  }
  const { band, against, rule } = placed;
  const where = `steps.${direction} band ${formatBand(band, direction)}${against}`;
  switch (rule.adjustment) {
    case 'change':
      return { to: current + band.by, rule: `${where}: ${signed(band.by)}` };
    case 'exact':
      return { to: band.by, rule: `${where}: set ${band.by}` };
    case 'percent': {
      const min = rule.minMagnitude;
      return {
        to: current + percentChange(current, band.by, min),
        rule: `${where}: ${signed(band.by)}%${min === undefined ? '' : ` (min ${min})`}`,
      };
    }
  }
}

/**
 * The change a `percent` band makes to `current`, rounded as AWS rounds
 * `PercentChangeInCapacity`: toward zero, except that a change between -1 and 1 becomes ±1 (a
 * percentage that fired moves the value at least by one); then raised to `minMagnitude` when
 * smaller. The sign comes from `by`, so that even a value of 0 can grow by `minMagnitude`.
 */
export function percentChange(current: number, by: number, minMagnitude?: number): number {
  const exact = (current * by) / 100;
  let change: number;
  if (exact > 0 && exact < 1) change = 1;
  else if (exact < 0 && exact > -1) change = -1;
  else change = Math.trunc(exact) + 0; // + 0 turns -0 into 0
  if (minMagnitude !== undefined && Math.abs(change) < minMagnitude) change = Math.sign(by) * minMagnitude;
  return change;
}

/**
 * Whether `metric` falls in `band`: `[from, to)` going up and `(from, to]` going down. AWS puts
 * the inclusive bound on the side of the threshold, so a value exactly on a boundary belongs to
 * the band nearer the threshold, and "at least 90" reads as `from: 90` for a scale-up.
 */
function inBand(band: StepBand, metric: number, direction: 'up' | 'down'): boolean {
  const from = band.from ?? Number.NEGATIVE_INFINITY;
  const to = band.to ?? Number.POSITIVE_INFINITY;
  return direction === 'up' ? metric >= from && metric < to : metric > from && metric <= to;
}

/** `[70, 90)` going up, `(-∞, 30]` going down. */
function formatBand(band: StepBand, direction: 'up' | 'down'): string {
  const from = band.from === undefined ? '-∞' : String(band.from);
  const to = band.to === undefined ? '∞' : String(band.to);
  return direction === 'up' ? `[${from}, ${to})` : `(${from}, ${to}]`;
}

function signed(n: number): string {
  return n >= 0 ? `+${n}` : String(n);
}
