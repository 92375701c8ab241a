import { describe, expect, it } from 'vitest';
import { coalesce, mergePending } from '../../src/policy/coalesce.js';
import { activeCooldowns, cooldownAfter, decide, directionOf, resumeDecision, type DecideInput, type PolicyTarget } from '../../src/policy/decide.js';
import type { Adjustment, CooldownUntil, Decision, Intent, PendingIntent } from '../../src/types.js';

const NOW = Date.parse('2025-01-01T12:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const TARGET: PolicyTarget = { min: 2, max: 10, step: 1, paused: false, cooldown: { up: 60_000, down: 300_000 } };
const NO_COOLDOWN: CooldownUntil = { up: null, down: null };

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

function pending(i: Intent, over: Partial<PendingIntent> = {}): PendingIntent {
  return { intent: i, count: 1, firstAt: i.receivedAt, attempts: 0, notBefore: null, ...over };
}

function input(current: number | null, adjustment: Adjustment, over: Partial<Omit<DecideInput, 'current'>> & { intent?: Partial<Intent> } = {}): DecideInput {
  const { intent: intentOver, ...rest } = over;
  return {
    current,
    pending: pending(intent(adjustment, intentOver)),
    target: TARGET,
    cooldownUntil: NO_COOLDOWN,
    now: NOW,
    ...rest,
  };
}

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
    { rule: 'a paused target skips before cooldown is checked', current: 3, adj: down },
  ]))('%s', (_rule, { current, adj }) => {
    const d = expectSkip(
      decide(input(current, adj, { target: { ...TARGET, paused: true }, cooldownUntil: { up: iso(NOW + 1), down: iso(NOW + 1) }, intent: { bounds: 'reject' } })),
    );
    expect(d).toMatchObject({ reason: 'paused', from: current, wanted: null });
    expect(d.detail).toContain('paused');
  });
});

describe('decide: cooldown', () => {
  it.each(rules([
    { rule: 'an up change inside the up cooldown is skipped', current: 3, adj: up, until: { up: NOW + 1, down: null }, skipped: true },
    { rule: 'a down change inside the down cooldown is skipped', current: 5, adj: down, until: { up: null, down: NOW + 1 }, skipped: true },
    { rule: 'cooldown ends exactly at its deadline', current: 3, adj: up, until: { up: NOW, down: null }, skipped: false },
    { rule: 'a deadline in the past does not block', current: 3, adj: up, until: { up: NOW - 1, down: null }, skipped: false },
    { rule: 'a scale-down is not blocked by the up cooldown', current: 5, adj: down, until: { up: NOW + 3_600_000, down: null }, skipped: false },
    { rule: 'a scale-up is not blocked by the down cooldown', current: 5, adj: up, until: { up: null, down: NOW + 3_600_000 }, skipped: false },
    { rule: 'a to below current is blocked by the down cooldown', current: 8, adj: to(4), until: { up: null, down: NOW + 1 }, skipped: true },
    { rule: 'setting an unset key counts as up for cooldown', current: null, adj: to(4), until: { up: NOW + 1, down: null }, skipped: true },
    { rule: 'a clamped change is still subject to cooldown', current: 8, adj: by(9), until: { up: NOW + 1, down: null }, skipped: true },
  ]))('%s', (_rule, { current, adj, until, skipped }) => {
    const cooldownUntil = { up: until.up === null ? null : iso(until.up), down: until.down === null ? null : iso(until.down) };
    const d = decide(input(current, adj, { cooldownUntil }));
    expect(d.kind).toBe(skipped ? 'skip' : 'change');
    if (d.kind === 'skip') expect(d.reason).toBe('cooldown');
  });

  it('a skip at a bound is reported as such, not as cooldown', () => {
    const d = expectSkip(decide(input(10, up, { cooldownUntil: { up: iso(NOW + 1000), down: null } })));
    expect(d.reason).toBe('at-max');
  });

  it('the cooldown skip names when it ends, how long is left and the change it holds back', () => {
    const d = expectSkip(decide(input(3, up, { cooldownUntil: { up: iso(NOW + 45_000), down: null } })));
    expect(d).toMatchObject({ reason: 'cooldown', from: 3, wanted: 4 });
    expect(d.detail).toContain(`up cooldown until ${iso(NOW + 45_000)}`);
    expect(d.detail).toContain('45s left');
    expect(d.detail).toContain('3 -> 4');
  });

  it('a long cooldown reads in minutes', () => {
    const d = expectSkip(decide(input(5, down, { cooldownUntil: { up: null, down: iso(NOW + 270_000) } })));
    expect(d.detail).toContain('4m30s left');
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
    const frozen = deepFreeze(input(3, up, { cooldownUntil: { up: iso(NOW - 1), down: iso(NOW + 1) } }));
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

describe('coalesce', () => {
  const NOW_ISO = iso(NOW);

  it('starts a pending intent when nothing is pending', () => {
    const i = intent(up);
    expect(coalesce(null, i, 3, NOW_ISO)).toEqual({
      pending: { intent: i, count: 1, firstAt: NOW_ISO, attempts: 0, notBefore: null },
      merged: false,
    });
  });

  it.each(rules([
    { rule: 'the newest wins between two ups', existing: up, incoming: to(8), current: 3, wins: 'incoming' },
    { rule: 'the newest wins between two downs', existing: down, incoming: by(-2), current: 5, wins: 'incoming' },
    { rule: 'an up replaces a pending down', existing: down, incoming: up, current: 5, wins: 'incoming' },
    { rule: 'a pending up is never dropped for a down', existing: up, incoming: down, current: 5, wins: 'existing' },
    { rule: 'a pending by +N is never dropped for a by -N', existing: by(3), incoming: by(-3), current: 5, wins: 'existing' },
    { rule: 'a to above current is an up and is kept against a down', existing: to(8), incoming: down, current: 3, wins: 'existing' },
    { rule: 'a to below current is a down and is replaced by an up', existing: to(1), incoming: up, current: 3, wins: 'incoming' },
    { rule: 'an incoming to below current is a down and does not replace an up', existing: up, incoming: to(1), current: 3, wins: 'existing' },
    { rule: 'with no current value a to counts as up', existing: to(1), incoming: down, current: null, wins: 'existing' },
    { rule: 'a pending no-op is replaced by a down', existing: by(0), incoming: down, current: 3, wins: 'incoming' },
    { rule: 'a no-op does not count as a down against an up', existing: up, incoming: to(3), current: 3, wins: 'incoming' },
  ] as const))('%s', (_rule, { existing, incoming, current, wins }) => {
    const old = pending(intent(existing));
    const neu = intent(incoming);
    const { pending: result, merged } = coalesce(old, neu, current, NOW_ISO);
    expect(merged).toBe(true);
    expect(result.intent).toBe(wins === 'existing' ? old.intent : neu);
  });

  it.each(rules([
    { rule: 'a real pending intent is not replaced by a dry-run', existing: { adj: down, dryRun: false }, incoming: { adj: up, dryRun: true }, wins: 'existing' },
    { rule: 'a dry-run pending intent is replaced by a real one', existing: { adj: up, dryRun: true }, incoming: { adj: to(9), dryRun: false }, wins: 'incoming' },
    { rule: 'a dry-run is replaced by a newer dry-run', existing: { adj: up, dryRun: true }, incoming: { adj: to(9), dryRun: true }, wins: 'incoming' },
    { rule: 'a pending dry-run up does not block a real down', existing: { adj: up, dryRun: true }, incoming: { adj: down, dryRun: false }, wins: 'incoming' },
    { rule: 'a pending dry-run up is never dropped for a dry-run down', existing: { adj: up, dryRun: true }, incoming: { adj: down, dryRun: true }, wins: 'existing' },
  ] as const))('%s', (_rule, { existing, incoming, wins }) => {
    const old = pending(intent(existing.adj, { dryRun: existing.dryRun }));
    const neu = intent(incoming.adj, { dryRun: incoming.dryRun });
    expect(coalesce(old, neu, 5, NOW_ISO).pending.intent).toBe(wins === 'existing' ? old.intent : neu);
  });

  it.each(rules([
    { rule: 'a kept intent keeps its retry state', existing: up, incoming: down, attempts: 2, notBefore: iso(NOW + 4000) },
    { rule: 'a new effective intent keeps the stack\'s retry state (a storm must not reset a locked stack\'s backoff)', existing: up, incoming: to(9), attempts: 2, notBefore: iso(NOW + 4000) },
  ] as const))('%s; the count grows and firstAt stays', (_rule, { existing, incoming, attempts, notBefore }) => {
    const old = pending(intent(existing), { count: 7, firstAt: iso(NOW - 10_000), attempts: 2, notBefore: iso(NOW + 4000) });
    const { pending: result } = coalesce(old, intent(incoming), 5, NOW_ISO);
    expect(result).toMatchObject({ count: 8, firstAt: iso(NOW - 10_000), attempts, notBefore });
  });

  it('a storm of 1000 intents is one pending intent counting 1000', () => {
    let p: PendingIntent | null = null;
    for (let n = 0; n < 1000; n += 1) p = coalesce(p, intent(n % 3 === 0 ? down : up), 5, NOW_ISO).pending;
    expect(p?.count).toBe(1000);
    expect(directionOf((p as PendingIntent).intent.adjustment, 5)).toBe('up');
  });
});

describe('mergePending', () => {
  it.each(rules([
    { rule: 'a newer pending up replaces an older down', older: down, newer: up, wins: 'newer' },
    { rule: 'an older pending up is kept against a newer down', older: up, newer: down, wins: 'older' },
  ] as const))('%s; counts add up and the earliest firstAt stays', (_rule, { older, newer, wins }) => {
    const o = pending(intent(older), { count: 3, firstAt: iso(NOW - 5000), attempts: 1, notBefore: iso(NOW + 2000) });
    const n = pending(intent(newer), { count: 4, firstAt: iso(NOW - 1000) });
    const merged = mergePending(o, n, 5);
    expect(merged.count).toBe(7);
    expect(merged.firstAt).toBe(iso(NOW - 5000));
    // Whichever intent wins, the retry state of the stack (the older, retried one's) stays.
    expect(merged).toMatchObject({ intent: wins === 'older' ? o.intent : n.intent, attempts: 1, notBefore: iso(NOW + 2000) });
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
