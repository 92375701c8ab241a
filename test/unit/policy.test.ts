import { describe, expect, it } from 'vitest';
import { activeCooldowns, cooldownAfter, decideCommand, directionOf, resumeDecision, type CommandInput, type PolicyTarget } from '../../src/policy/decide.js';
import type { Adjustment, Decision, Intent, Pause } from '../../src/types.js';

const NOW = Date.parse('2025-01-01T12:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const TARGET: PolicyTarget = { min: 2, max: 10, step: 1, paused: false, cooldown: { up: 60_000, down: 300_000 }, stabilization: { up: 0, down: 0 } };

const up: Adjustment = { type: 'step', direction: 'up' };
const down: Adjustment = { type: 'step', direction: 'down' };
const by = (n: number): Adjustment => ({ type: 'by', by: n });
const to = (n: number): Adjustment => ({ type: 'to', to: n });

let seq = 0;
function intent(adjustment: Adjustment, over: Partial<Intent> = {}): Intent {
  seq += 1;
  return {
    id: `intent-${seq}`,
    target: 'web',
    adjustment,
    dryRun: false,
    source: 'alertmanager',
    reason: 'alert HighCPU',
    receivedAt: iso(NOW),
    bounds: 'clamp',
    evidence: {},
    ...over,
  };
}

function input(current: number | null, adjustment: Adjustment, over: Partial<Omit<CommandInput, 'current' | 'command'>> & { intent?: Partial<Intent> } = {}): CommandInput {
  const { intent: intentOver, ...rest } = over;
  return { current, command: intent(adjustment, intentOver), target: TARGET, pause: null, now: NOW, ...rest };
}

const decide = decideCommand;

function expectChange(d: Decision): Extract<Decision, { kind: 'change' }> {
  if (d.kind !== 'change') throw new Error(`expected a change, got skip ${d.reason}: ${d.detail}`);
  return d;
}

function expectSkip(d: Decision): Extract<Decision, { kind: 'skip' }> {
  if (d.kind !== 'skip') throw new Error(`expected a skip, got change ${d.reason}`);
  return d;
}

describe('decide: the wanted value', () => {
  it.each(rules([
    { rule: 'a step up adds the target step', current: 3, adj: up, target: { step: 2 }, want: 5, direction: 'up' },
    { rule: 'a step down subtracts the target step', current: 5, adj: down, target: { step: 2 }, want: 3, direction: 'down' },
    { rule: 'by adds a positive amount', current: 3, adj: by(4), target: {}, want: 7, direction: 'up' },
    { rule: 'by subtracts a negative amount', current: 7, adj: by(-3), target: {}, want: 4, direction: 'down' },
    { rule: 'to sets an absolute value above current', current: 3, adj: to(8), target: {}, want: 8, direction: 'up' },
    { rule: 'to sets an absolute value below current', current: 8, adj: to(3), target: {}, want: 3, direction: 'down' },
    { rule: 'an unset key starts a step up from min', current: null, adj: up, target: {}, want: 3, direction: 'up' },
    { rule: 'an unset key starts a by from min', current: null, adj: by(3), target: {}, want: 5, direction: 'up' },
    { rule: 'an unset key takes a to as is', current: null, adj: to(6), target: {}, want: 6, direction: 'up' },
    { rule: 'an unset key set to min counts as a scale-up', current: null, adj: to(2), target: {}, want: 2, direction: 'up' },
  ] as const))('%s', (_rule, { current, adj, target, want, direction }) => {
    const d = expectChange(decide(input(current, adj, { target: { ...TARGET, ...target } })));
    expect(d).toMatchObject({ to: want, direction, clamped: false });
    expect(d.from).toBe(current ?? TARGET.min);
  });
});

describe('decide: bounds', () => {
  it.each(rules([
    { rule: 'lower bound is inclusive', current: 3, adj: to(2), want: 2 },
    { rule: 'upper bound is inclusive', current: 9, adj: to(10), want: 10 },
    { rule: 'a step up may reach max', current: 9, adj: up, want: 10 },
    { rule: 'a step down may reach min', current: 3, adj: down, want: 2 },
  ]))('%s (clamp and reject alike)', (_rule, { current, adj, want }) => {
    for (const bounds of ['clamp', 'reject'] as const) {
      const d = expectChange(decide(input(current, adj, { intent: { bounds } })));
      expect(d).toMatchObject({ to: want, clamped: false });
    }
  });

  it.each(rules([
    { rule: 'a clamp intent above max is clamped to max', current: 8, adj: by(5), want: 10, direction: 'up', says: 'clamped to max 10' },
    { rule: 'a clamp intent below min is clamped to min', current: 4, adj: by(-5), want: 2, direction: 'down', says: 'clamped to min 2' },
    { rule: 'a clamp to above max is clamped to max', current: 3, adj: to(50), want: 10, direction: 'up', says: 'clamped to max 10' },
    { rule: 'a step down of an unset key is clamped to min', current: null, adj: down, want: 2, direction: 'up', says: 'clamped to min 2' },
    { rule: 'a scale-down from above max comes back within bounds', current: 50, adj: down, want: 10, direction: 'down', says: 'clamped to max 10' },
    { rule: 'a scale-up from below min comes back within bounds', current: 0, adj: up, want: 2, direction: 'up', says: 'clamped to min 2' },
  ] as const))('%s', (_rule, { current, adj, want, direction, says }) => {
    const d = expectChange(decide(input(current, adj)));
    expect(d).toMatchObject({ to: want, direction, clamped: true });
    expect(d.reason).toContain(says);
  });

  it.each(rules([
    { rule: 'reject: a to above max is out of bounds', current: 3, adj: to(11), wanted: 11 },
    { rule: 'reject: a to below min is out of bounds', current: 3, adj: to(1), wanted: 1 },
    { rule: 'reject: a step past max is out of bounds', current: 10, adj: up, wanted: 11 },
    { rule: 'reject: a by past min is out of bounds', current: 3, adj: by(-2), wanted: 1 },
  ]))('%s', (_rule, { current, adj, wanted }) => {
    const d = expectSkip(decide(input(current, adj, { intent: { bounds: 'reject' } })));
    expect(d).toMatchObject({ reason: 'out-of-bounds', from: current, wanted });
    expect(d.detail).toContain(`${wanted} is outside [2, 10]`);
  });
});

describe('decide: nothing to do', () => {
  it.each(rules([
    { rule: 'a step up at max is at-max', current: 10, adj: up, reason: 'at-max', says: 'already at max 10' },
    { rule: 'a clamped by at max is at-max', current: 10, adj: by(5), reason: 'at-max', says: 'already at max 10' },
    { rule: 'a to above max while at max is at-max', current: 10, adj: to(12), reason: 'at-max', says: 'already at max 10' },
    { rule: 'a step down at min is at-min', current: 2, adj: down, reason: 'at-min', says: 'already at min 2' },
    { rule: 'a to below min while at min is at-min', current: 2, adj: to(0), reason: 'at-min', says: 'already at min 2' },
    { rule: 'a to of the current value is no-change', current: 5, adj: to(5), reason: 'no-change', says: 'already 5' },
    { rule: 'by 0 is no-change', current: 5, adj: by(0), reason: 'no-change', says: 'already 5' },
    { rule: 'asking for max while at max is no-change, not at-max', current: 10, adj: to(10), reason: 'no-change', says: 'already 10' },
    { rule: 'a scale-up never lowers a value above max', current: 50, adj: up, reason: 'at-max', says: '50 is above max 10' },
    { rule: 'a scale-down never raises a value below min', current: 0, adj: down, reason: 'at-min', says: '0 is below min 2' },
  ] as const))('%s', (_rule, { current, adj, reason, says }) => {
    const d = expectSkip(decide(input(current, adj)));
    expect(d.reason).toBe(reason);
    expect(d.from).toBe(current);
    expect(d.detail).toContain(says);
  });
});

describe('decide: paused', () => {
  it.each(rules([
    { rule: 'a paused target skips a change it would make', current: 3, adj: up },
    { rule: 'a paused target skips before bounds are checked', current: 3, adj: to(99) },
    { rule: 'a paused target skips a scale-down too', current: 3, adj: down },
  ]))('%s', (_rule, { current, adj }) => {
    const d = expectSkip(
      decide(input(current, adj, { target: { ...TARGET, paused: true }, intent: { bounds: 'reject' } })),
    );
    expect(d).toMatchObject({ reason: 'paused', from: current, wanted: null });
    expect(d.detail).toContain('paused');
  });
});

describe('decide: operator commands and cooldowns', () => {
  it('a command does not wait for a cooldown: it runs at once (and starts its own)', () => {
    const d = expectChange(decide(input(3, up, {})));
    expect(d).toMatchObject({ to: 4, direction: 'up' });
  });
});

describe('decide: API pauses', () => {
  const pause = (direction: Pause['direction'], until = NOW + 60_000): Pause => ({ until: iso(until), direction, reason: 'deploy freeze' });
  it.each(rules([
    { rule: 'a pause of both directions holds an up', p: pause('both'), adj: up, skipped: true },
    { rule: 'a pause of up holds an up', p: pause('up'), adj: up, skipped: true },
    { rule: 'a pause of up lets a down through', p: pause('up'), adj: down, skipped: false },
    { rule: 'a pause of down holds a down', p: pause('down'), adj: to(3), skipped: true },
    { rule: 'a pause ends exactly at its until', p: pause('both', NOW), adj: up, skipped: false },
  ]))('%s', (_rule, { p, adj, skipped }) => {
    const d = decide(input(5, adj, { pause: p }));
    expect(d.kind).toBe(skipped ? 'skip' : 'change');
    if (d.kind === 'skip') {
      expect(d.reason).toBe('paused');
      expect(d.detail).toContain('deploy freeze');
    }
  });
});

describe('decide: reasons read like a sentence', () => {
  it.each(rules([
    { rule: 'a step names its size', current: 3, adj: up, step: 2, reason: 'alert HighCPU: 3 -> 5 (step +2)' },
    { rule: 'a by names its sign', current: 7, adj: by(-3), step: 1, reason: 'alert HighCPU: 7 -> 4 (by -3)' },
    { rule: 'a to names its value', current: 3, adj: to(8), step: 1, reason: 'alert HighCPU: 3 -> 8 (to 8)' },
    { rule: 'a clamp says so', current: 8, adj: by(5), step: 1, reason: 'alert HighCPU: 8 -> 10 (by +5, clamped to max 10)' },
    { rule: 'an unset key says it started from min', current: null, adj: up, step: 1, reason: 'alert HighCPU: unset -> 3 (step +1, key not set: from min 2)' },
    { rule: 'an unset key with a to says it was unset', current: null, adj: to(6), step: 1, reason: 'alert HighCPU: unset -> 6 (to 6, key not set)' },
  ] as const))('%s', (_rule, { current, adj, step, reason }) => {
    expect(expectChange(decide(input(current, adj, { target: { ...TARGET, step } }))).reason).toBe(reason);
  });
});

describe('decide is pure', () => {
  it('gives the same decision for the same input and does not touch it', () => {
    const frozen = deepFreeze(input(3, up, { pause: { until: iso(NOW + 1), direction: 'down', reason: 'x' } }));
    expect(decide(frozen)).toEqual(decide(frozen));
  });
});

describe('resumeDecision: an operation cut off mid-up is finished, not decided again', () => {
  it.each<{ rule: string; applying: { from: number | null; to: number }; want: Partial<Decision> }>([
    { rule: 'a step up resumes at the value it was applying', applying: { from: 3, to: 4 }, want: { from: 3, to: 4, direction: 'up', clamped: false } },
    { rule: 'a step down resumes downwards', applying: { from: 5, to: 4 }, want: { from: 5, to: 4, direction: 'down', clamped: false } },
    { rule: 'a value now above max is clamped to max', applying: { from: 9, to: 12 }, want: { from: 9, to: 10, direction: 'up', clamped: true } },
    { rule: 'a value now below min is clamped to min', applying: { from: 3, to: 1 }, want: { from: 3, to: 2, direction: 'down', clamped: true } },
    { rule: 'a key that was unset resumes from the value itself', applying: { from: null, to: 4 }, want: { from: 4, to: 4, direction: 'up' } },
  ])('$rule', ({ applying, want }) => {
    const decision = resumeDecision(applying, 'alert HighCPU firing', TARGET);
    expect(decision).toMatchObject({ kind: 'change', ...want });
    expect(decision.reason).toMatch(/^alert HighCPU firing: resumed after a stop mid-operation: /);
  });

  it('says when it clamped', () => {
    expect(resumeDecision({ from: 9, to: 12 }, 'manual', TARGET).reason).toBe('manual: resumed after a stop mid-operation: 9 -> 10, clamped to max 10');
  });
});

describe('directionOf', () => {
  it.each([
    { name: 'step up', adj: up, current: 3, want: 'up' },
    { name: 'step down', adj: down, current: 3, want: 'down' },
    { name: 'by +2', adj: by(2), current: 3, want: 'up' },
    { name: 'by -2', adj: by(-2), current: 3, want: 'down' },
    { name: 'by 0', adj: by(0), current: 3, want: null },
    { name: 'to 5', adj: to(5), current: 3, want: 'up' },
    { name: 'to 1', adj: to(1), current: 3, want: 'down' },
    { name: 'to 3', adj: to(3), current: 3, want: null },
    { name: 'to 0', adj: to(0), current: null, want: 'up' },
    { name: 'step down', adj: down, current: null, want: 'down' },
  ] as const)('$name from $current goes $want', ({ adj, current, want }) => {
    expect(directionOf(adj, current)).toBe(want);
  });
});

describe('cooldownAfter and activeCooldowns', () => {
  it('a change starts the cooldown of its own direction only', () => {
    const before = { up: null, down: iso(NOW + 5) };
    expect(cooldownAfter(before, 'up', NOW, TARGET.cooldown)).toEqual({ up: iso(NOW + 60_000), down: iso(NOW + 5) });
    expect(cooldownAfter({ up: iso(NOW + 5), down: null }, 'down', NOW, TARGET.cooldown)).toEqual({ up: iso(NOW + 5), down: iso(NOW + 300_000) });
  });

  it.each(rules([
    { rule: 'a deadline in the future is active', until: NOW + 1, active: true },
    { rule: 'a deadline reached is over', until: NOW, active: false },
    { rule: 'a deadline passed is over', until: NOW - 1, active: false },
  ]))('%s', (_rule, { until, active }) => {
    expect(activeCooldowns({ up: iso(until), down: null }, NOW)).toEqual({ up: active ? iso(until) : null, down: null });
  });
});

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Table rows as [rule, row], so each test is named by its full rule (`$rule` would be cut short). */
function rules<T extends { rule: string }>(rows: readonly T[]): [string, T][] {
  return rows.map((row) => [row.rule, row]);
}
