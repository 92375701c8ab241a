import { describe, expect, it } from 'vitest';
import { pruneRecommendations, stabilize, type Recommendation, type StabilizationWindows } from '../../src/policy/stabilization.js';

const NOW = Date.parse('2025-01-01T12:00:00.000Z');
const MIN = 60_000;
const DOWN_5M: StabilizationWindows = { up: 0, down: 5 * MIN };
/** A recommendation `ago` milliseconds before NOW. */
const rec = (ago: number, value: number): Recommendation => ({ at: NOW - ago, value });

describe('stabilize', () => {
  it.each(rules([
    {
      rule: 'a scale-down goes only as low as the highest desired value in the down window',
      current: 10, desired: 4, history: [rec(4 * MIN, 8), rec(2 * MIN, 6)], windowMs: DOWN_5M,
      value: 8, reason: 'stabilization: held at 8, the highest desired value in the last 5m',
    },
    {
      rule: 'a scale-down with only lower wishes in the window goes ahead',
      current: 10, desired: 4, history: [rec(MIN, 3), rec(2 * MIN, 2)], windowMs: DOWN_5M,
      value: 4, reason: null,
    },
    {
      rule: 'a recommendation older than the window no longer holds',
      current: 10, desired: 4, history: [rec(6 * MIN, 8)], windowMs: DOWN_5M,
      value: 4, reason: null,
    },
    {
      rule: 'a recommendation exactly as old as the window has left it',
      current: 10, desired: 4, history: [rec(5 * MIN, 8)], windowMs: DOWN_5M,
      value: 4, reason: null,
    },
    {
      rule: 'a recommendation just inside the window still holds',
      current: 10, desired: 4, history: [rec(5 * MIN - 1, 8)], windowMs: DOWN_5M,
      value: 8, reason: 'stabilization: held at 8, the highest desired value in the last 5m',
    },
    {
      rule: 'a recent wish above the current value holds it where it is and never raises it',
      current: 10, desired: 4, history: [rec(MIN, 12)], windowMs: DOWN_5M,
      value: 10, reason: 'stabilization: held at 10 (current), as 12 was desired in the last 5m',
    },
    {
      rule: 'a down window of 0 is no stabilization',
      current: 10, desired: 4, history: [rec(1, 10)], windowMs: { up: 0, down: 0 },
      value: 4, reason: null,
    },
    {
      rule: 'the down window does not slow a scale-up',
      current: 4, desired: 8, history: [rec(MIN, 2)], windowMs: DOWN_5M,
      value: 8, reason: null,
    },
    {
      rule: 'a scale-up goes only as high as the lowest desired value in the up window',
      current: 4, desired: 10, history: [rec(2 * MIN, 6), rec(MIN, 8)], windowMs: { up: 150_000, down: 0 },
      value: 6, reason: 'stabilization: held at 6, the lowest desired value in the last 2m30s',
    },
    {
      rule: 'a recent wish below the current value holds a scale-up where it is and never lowers it',
      current: 4, desired: 10, history: [rec(MIN, 3)], windowMs: { up: 3 * MIN, down: 0 },
      value: 4, reason: 'stabilization: held at 4 (current), as 3 was desired in the last 3m',
    },
    {
      rule: 'no move desired: nothing to stabilize',
      current: 5, desired: 5, history: [rec(MIN, 9), rec(MIN, 1)], windowMs: { up: 5 * MIN, down: 5 * MIN },
      value: 5, reason: null,
    },
  ] satisfies Row[]))('%s', (_rule, { current, desired, history, windowMs, value, reason }) => {
    expect(stabilize({ current, desired, now: NOW, history, windowMs })).toEqual({ value, held: reason !== null, reason });
  });

  it('a dip in load scales down one window after the last higher wish, not before', () => {
    // One evaluation a minute; load falls at minute 2 and stays low.
    const desired = [10, 10, 4, 4, 4, 4, 4, 4];
    let current = 10;
    let history: Recommendation[] = [];
    const values: number[] = [];
    desired.forEach((d, minute) => {
      const now = NOW + minute * MIN;
      const { value } = stabilize({ current, desired: d, now, history, windowMs: DOWN_5M });
      // The caller records the raw desired value, not the stabilized one.
      history = pruneRecommendations([...history, { at: now, value: d }], now, DOWN_5M);
      current = value;
      values.push(value);
    });
    // The last wish for 10 was at minute 1: it holds until minute 6 (1 + 5m).
    expect(values).toEqual([10, 10, 10, 10, 10, 10, 4, 4]);
  });
});

describe('pruneRecommendations', () => {
  it.each(rules([
    {
      rule: 'keeps what the longest window can still see',
      history: [rec(6 * MIN, 1), rec(5 * MIN, 2), rec(4 * MIN, 3), rec(30_000, 4)], windowMs: { up: MIN, down: 5 * MIN },
      kept: [rec(4 * MIN, 3), rec(30_000, 4)],
    },
    {
      rule: 'keeps nothing when both windows are off',
      history: [rec(1, 1)], windowMs: { up: 0, down: 0 },
      kept: [],
    },
  ] satisfies { rule: string; history: Recommendation[]; windowMs: StabilizationWindows; kept: Recommendation[] }[]))('%s', (_rule, { history, windowMs, kept }) => {
    const before = structuredClone(history);
    expect(pruneRecommendations(history, NOW, windowMs)).toEqual(kept);
    expect(history).toEqual(before);
  });
});

interface Row {
  rule: string;
  current: number;
  desired: number;
  history: Recommendation[];
  windowMs: StabilizationWindows;
  value: number;
  reason: string | null;
}

/** Table rows as [rule, row], so each test is named by its full rule (`$rule` would be cut short). */
function rules<T extends { rule: string }>(rows: readonly T[]): [string, T][] {
  return rows.map((row) => [row.rule, row]);
}
