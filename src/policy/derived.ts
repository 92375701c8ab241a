/**
 * Composite targets: the values of the keys derived from a target's driving value. Pure.
 *
 * A derived key is round(per * x + plus), clamped to its [min, max]. The product is rounded to
 * nine decimals before `up` or `down` rounding, so that binary fractions (0.1 * 30 is
 * 3.0000000000000004) do not push an exact result to the next whole number.
 */

/** One derived key's rule, as configured. */
export interface DerivedRule {
  key: string;
  per: number;
  plus: number;
  min?: number | undefined;
  max?: number | undefined;
  round: 'nearest' | 'up' | 'down';
}

/** A target as this module needs it: its driving key and derived rules. */
export interface CompositeTarget {
  configKey: string;
  derived: readonly DerivedRule[];
}

/** One derived key's value for the driving value `x`. */
export function derivedValue(rule: DerivedRule, x: number): number {
  const exact = Math.round((rule.per * x + rule.plus) * 1e9) / 1e9;
  const whole = rule.round === 'up' ? Math.ceil(exact) : rule.round === 'down' ? Math.floor(exact) : Math.round(exact);
  const low = rule.min ?? Number.NEGATIVE_INFINITY;
  const high = rule.max ?? Number.POSITIVE_INFINITY;
  // -0 would be written as "0" anyway; keep it a plain 0.
  return Math.min(high, Math.max(low, whole)) + 0;
}

/**
 * Every key's value for the driving value `x`, the driving key first; `overrides` (an operator
 * setting several keys at once) replace derived values by key.
 */
export function keyValues(target: CompositeTarget, x: number, overrides: Readonly<Record<string, number>> = {}): Record<string, number> {
  const values: Record<string, number> = { [target.configKey]: x };
  for (const rule of target.derived) values[rule.key] = overrides[rule.key] ?? derivedValue(rule, x);
  return values;
}

/** Every key the target owns: the driving key, then the derived ones in config order. */
export function ownedKeys(target: CompositeTarget): string[] {
  return [target.configKey, ...target.derived.map((d) => d.key)];
}
