import { describe, expect, it } from 'vitest';
import { percentChange, stepValue, type StepInput, type StepRule, type StepRules } from '../../src/policy/steps.js';

/** The issue's own example (issue 7): "if metric > 90%, add 5; if > 70%, add 2". */
const ISSUE: StepRules = {
  up: { adjustment: 'change', relativeTo: 'value', bands: [{ from: 70, to: 90, by: 2 }, { from: 90, by: 5 }] },
  down: { adjustment: 'percent', relativeTo: 'value', minMagnitude: 1, bands: [{ to: 30, by: -25 }] },
};

/**
 * AWS's worked example (EC2 / Application Auto Scaling user guides, "Step adjustments"): an
 * alarm threshold of 50, capacity 10, PercentChangeInCapacity; no change between 40 and 60,
 * ±10% from there to 70 / 30, ±30% beyond.
 */
const AWS: StepRules = {
  up: {
    adjustment: 'percent',
    relativeTo: 'threshold',
    bands: [{ from: 0, to: 10, by: 0 }, { from: 10, to: 20, by: 10 }, { from: 20, by: 30 }],
  },
  down: {
    adjustment: 'percent',
    relativeTo: 'threshold',
    bands: [{ from: -10, to: 0, by: 0 }, { from: -20, to: -10, by: -10 }, { to: -20, by: -30 }],
  },
};

function input(over: Partial<StepInput>): StepInput {
  return { current: 10, direction: 'up', value: null, threshold: null, rules: ISSUE, step: 1, ...over };
}

describe('stepValue: the issue example (change, relative to the value)', () => {
  it.each(rules([
    { rule: 'a value in the top band adds its by', value: 95, direction: 'up', current: 4, to: 9, says: 'steps.up band [90, ∞): +5' },
    { rule: 'going up, a lower bound is inclusive', value: 70, direction: 'up', current: 4, to: 6, says: 'steps.up band [70, 90): +2' },
    { rule: 'going up, an upper bound is exclusive (90 belongs to the band above)', value: 90, direction: 'up', current: 4, to: 9, says: 'steps.up band [90, ∞): +5' },
    { rule: 'a value below every band moves by step', value: 60, direction: 'up', current: 4, to: 5, says: 'step +1 (no band matches 60)' },
    { rule: 'going down, an upper bound is inclusive', value: 30, direction: 'down', current: 8, to: 6, says: 'steps.down band (-∞, 30]: -25% (min 1)' },
    { rule: 'going down, minMagnitude raises a change of less than one', value: 10, direction: 'down', current: 2, to: 1, says: 'steps.down band (-∞, 30]: -25% (min 1)' },
    { rule: 'going down, a value above every band moves by step', value: 55, direction: 'down', current: 8, to: 7, says: 'step -1 (no band matches 55)' },
  ] as const))('%s', (_rule, { value, direction, current, to, says }) => {
    expect(stepValue(input({ value, direction, current }))).toEqual({ to, rule: says });
  });
});

describe('stepValue: AWS step adjustments (threshold 50, percent of the current value)', () => {
  // AWS's narrative, one evaluation after another: 10 -> 11 -> 14 -> 13 -> 10.
  it.each(rules([
    { rule: 'at 60, a scale-out adds 10% of 10: 1', direction: 'up', value: 60, current: 10, to: 11 },
    { rule: 'at 70, it adds 30% of 11 (3.3), rounded down to 3', direction: 'up', value: 70, current: 11, to: 14 },
    { rule: 'at 40, a scale-in removes 10% of 14 (1.4), rounded to 1', direction: 'down', value: 40, current: 14, to: 13 },
    { rule: 'at 30, it removes 30% of 13 (3.9), rounded to 3', direction: 'down', value: 30, current: 13, to: 10 },
    { rule: 'between 50 and 60 the no-change band holds the value', direction: 'up', value: 55, current: 10, to: 10 },
    { rule: 'between 40 and 50 the no-change band holds the value', direction: 'down', value: 45, current: 10, to: 10 },
  ] as const))('%s', (_rule, { direction, value, current, to }) => {
    expect(stepValue({ current, direction, value, threshold: 50, rules: AWS, step: 1 }).to).toBe(to);
  });

  // StepAdjustment API reference: with threshold 50, bounds 0..10 fire for 50 <= metric < 60;
  // bounds -10..0 fire for 40 < metric <= 50.
  it.each(rules([
    { rule: 'above the threshold, the lower bound is inclusive: 50 is in [0, 10)', direction: 'up', value: 50, band: '[0, 10)' },
    { rule: 'above the threshold, the upper bound is exclusive: 60 is in [10, 20)', direction: 'up', value: 60, band: '[10, 20)' },
    { rule: 'below the threshold, the upper bound is inclusive: 50 is in (-10, 0]', direction: 'down', value: 50, band: '(-10, 0]' },
    { rule: 'below the threshold, the lower bound is exclusive: 40 is in (-20, -10]', direction: 'down', value: 40, band: '(-20, -10]' },
  ] as const))('%s', (_rule, { direction, value, band }) => {
    const { rule } = stepValue({ current: 10, direction, value, threshold: 50, rules: AWS, step: 1 });
    expect(rule).toContain(`steps.${direction} band ${band} relative to threshold 50: `);
  });

  it('says how far from the threshold a value no band covers was', () => {
    const only: StepRules = { up: { ...(AWS.up as StepRule), bands: [{ from: 10, to: 20, by: 10 }] } };
    expect(stepValue({ current: 10, direction: 'up', value: 55, threshold: 50, rules: only, step: 2 })).toEqual({
      to: 12,
      rule: 'step +2 (no band matches 5 (55 - threshold 50))',
    });
  });
});

describe('percentChange: AWS rounding of PercentChangeInCapacity', () => {
  it.each(rules([
    { rule: 'a change above 1 rounds down (12.7 -> 12)', current: 127, by: 10, min: undefined, change: 12 },
    { rule: 'a change between 0 and 1 becomes 1 (0.67 -> 1)', current: 67, by: 1, min: undefined, change: 1 },
    { rule: 'a change below -1 rounds toward zero (-6.67 -> -6)', current: 667, by: -1, min: undefined, change: -6 },
    { rule: 'a change between -1 and 0 becomes -1 (-0.67 -> -1)', current: 67, by: -1, min: undefined, change: -1 },
    { rule: 'a whole change stays as it is (10% of 10)', current: 10, by: 10, min: undefined, change: 1 },
    { rule: 'minMagnitude raises a smaller change (25% of 4 is 1, min 2 gives 2)', current: 4, by: 25, min: 2, change: 2 },
    { rule: 'minMagnitude raises a smaller decrease too', current: 4, by: -25, min: 2, change: -2 },
    { rule: 'minMagnitude leaves a larger change alone', current: 40, by: 25, min: 2, change: 10 },
    { rule: 'minMagnitude grows a value of 0, in the direction of by', current: 0, by: 50, min: 1, change: 1 },
    { rule: 'without minMagnitude a value of 0 stays 0', current: 0, by: 50, min: undefined, change: 0 },
  ]))('%s', (_rule, { current, by, min, change }) => {
    expect(percentChange(current, by, min)).toBe(change);
  });
});

describe('stepValue: adjustments and fallbacks', () => {
  it.each(rules([
    {
      rule: 'exact sets the value, whatever the current one',
      over: { value: 95, current: 30, rules: { up: { adjustment: 'exact', relativeTo: 'value', bands: [{ from: 90, by: 12 }] } } },
      to: 12,
      says: 'steps.up band [90, ∞): set 12',
    },
    { rule: 'no rules at all: a plain step', over: { value: 95, rules: undefined, step: 2 }, to: 12, says: 'step +2' },
    { rule: 'no rule for the direction: a plain step', over: { value: 10, direction: 'down', rules: { up: ISSUE.up } }, to: 9, says: 'step -1' },
    { rule: 'no metric value: a plain step, and the reason says so', over: { value: null }, to: 11, says: 'step +1 (no metric value)' },
    { rule: 'a value that is not a number counts as none', over: { value: Number.NaN }, to: 11, says: 'step +1 (no metric value)' },
    {
      rule: 'relative to the threshold without one: a plain step',
      over: { value: 95, threshold: null, rules: AWS },
      to: 11,
      says: 'step +1 (no threshold)',
    },
  ] satisfies { rule: string; over: Partial<StepInput>; to: number; says: string }[]))('%s', (_rule, { over, to, says }) => {
    expect(stepValue(input(over))).toEqual({ to, rule: says });
  });
});

/** Table rows as [rule, row], so each test is named by its full rule (`$rule` would be cut short). */
function rules<T extends { rule: string }>(rows: readonly T[]): [string, T][] {
  return rows.map((row) => [row.rule, row]);
}
