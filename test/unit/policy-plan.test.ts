/**
 * The two plans an operation chooses from: queued operator commands (in order, batched only
 * when that equals running them one by one) and the active signals (level-triggered: the same
 * signals keep asking for a step after every cooldown, until a bound).
 */
import { describe, expect, it } from 'vitest';
import { planCommands } from '../../src/policy/commands.js';
import { cooldownAfter, type PolicyTarget } from '../../src/policy/decide.js';
import { planSignals, type SignalInput } from '../../src/policy/signals.js';
import type { Adjustment, Command, Signal } from '../../src/types.js';

const NOW = Date.parse('2025-01-01T12:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const TARGET: PolicyTarget = { min: 1, max: 10, step: 1, paused: false, cooldown: { up: 60_000, down: 300_000 }, stabilization: { up: 0, down: 0 } };

let seq = 0;
function command(adjustment: Adjustment, over: Partial<Command> = {}): Command {
  seq += 1;
  return { id: `c${seq}`, target: 'web', adjustment, dryRun: false, source: 'api', reason: 'manual', receivedAt: iso(NOW), bounds: 'reject', evidence: {}, ...over };
}
const by = (n: number): Adjustment => ({ type: 'by', by: n });
const to = (n: number): Adjustment => ({ type: 'to', to: n });

function signal(id: string, direction: 'up' | 'down', value: number | null = null, threshold: number | null = null): Signal {
  return { id, target: 'web', source: 'alertmanager', direction, value, threshold, since: iso(NOW), lastSeen: iso(NOW), expiresAt: null, reason: `alert ${id}`, evidence: {} };
}

function signals(current: number | null, list: Signal[], over: Partial<SignalInput> = {}): SignalInput {
  return { current, signals: list, target: TARGET, pause: null, cooldownUntil: { up: null, down: null }, history: [], now: NOW, ...over };
}

describe('planCommands: commands run in order, batched only when that changes nothing', () => {
  it.each([
    { rule: 'by 2 + by 2 is by 4 in one operation', queue: [by(2), by(2)], current: 3, batch: 2, to: 7 },
    { rule: 'to 5 then to 7 is to 7 in one operation', queue: [to(5), to(7)], current: 4, batch: 2, to: 7 },
    { rule: 'to 3 then to 5 from 4 turn back: two operations, each starting its own cooldown', queue: [to(3), to(5)], current: 4, batch: 1, to: 3 },
    { rule: 'by +1 then by -1 is not a no-change: two operations', queue: [by(1), by(-1)], current: 4, batch: 1, to: 5 },
    { rule: 'a command that would leave the bounds ends the batch (it runs, and is skipped, alone)', queue: [by(2), by(20)], current: 3, batch: 1, to: 5 },
    { rule: 'a first command out of bounds is a skip covering it alone', queue: [by(20), by(1)], current: 3, batch: 1, to: null },
    { rule: 'a preview never shares an operation with a change', queue: [by(1), { ...by(1), dry: true }], current: 3, batch: 1, to: 4 },
  ])('$rule', ({ queue, current, batch, to: want }) => {
    const cmds = queue.map((a) => ('dry' in a ? command({ type: 'by', by: 1 }, { dryRun: true }) : command(a)));
    const plan = planCommands({ queue: cmds, current, target: TARGET, pause: null, now: NOW });
    expect(plan?.batch.map((c) => c.id)).toEqual(cmds.slice(0, batch).map((c) => c.id));
    if (want === null) expect(plan?.decision).toMatchObject({ kind: 'skip', reason: 'out-of-bounds' });
    else expect(plan?.decision).toMatchObject({ kind: 'change', to: want });
  });

  // Three ?dryRun=true alerts (one `up` preview each) previewed 3 -> 6 together: a preview
  // changes nothing, so each, run alone, would have previewed 3 -> 4.
  it.each([
    { rule: 'three up previews from 3 are one preview of 3 -> 4, covering all three', queue: [by(1), by(1), by(1)], batch: 3, to: 4 },
    { rule: 'two previews of different changes are two operations', queue: [by(1), by(2)], batch: 1, to: 4 },
    { rule: 'a preview followed by a real command runs alone', queue: [by(1), by(1)], real: 1, batch: 1, to: 4 },
  ])('previews: $rule', ({ queue, real, batch, to: want }) => {
    const cmds = queue.map((a, i) => command(a, { dryRun: i !== real }));
    const plan = planCommands({ queue: cmds, current: 3, target: TARGET, pause: null, now: NOW });
    expect(plan?.batch.map((c) => c.id)).toEqual(cmds.slice(0, batch).map((c) => c.id));
    expect(plan?.decision).toMatchObject({ kind: 'change', from: 3, to: want });
  });

  it('under engine.dryRun every command is a preview: two `by 1` at 3 are one preview of 3 -> 4', () => {
    const cmds = [command(by(1)), command(by(1))];
    const plan = planCommands({ queue: cmds, current: 3, target: TARGET, pause: null, now: NOW, previewAll: true });
    expect(plan?.batch.map((c) => c.id)).toEqual(cmds.map((c) => c.id));
    expect(plan?.decision).toMatchObject({ kind: 'change', from: 3, to: 4 });
  });

  it('an empty queue plans nothing', () => {
    expect(planCommands({ queue: [], current: 3, target: TARGET, pause: null, now: NOW })).toBeNull();
  });

  it('the reason of a batch names every command it covers', () => {
    const plan = planCommands({ queue: [command(by(2), { reason: 'first' }), command(by(2), { reason: 'second' })], current: 3, target: TARGET, pause: null, now: NOW });
    expect(plan?.decision.kind === 'change' && plan.decision.reason).toMatch(/2 commands: first: .*; second: .* => 3 -> 7/);
  });
});

describe('planSignals: conflicts', () => {
  it.each([
    { rule: 'no signal, no plan', list: [], want: null },
    { rule: 'an up signal steps up', list: [signal('a', 'up')], want: { kind: 'change', to: 5, direction: 'up' } },
    { rule: 'a down signal steps down', list: [signal('a', 'down')], want: { kind: 'change', to: 3, direction: 'down' } },
    { rule: 'up and down at once: up wins', list: [signal('a', 'down'), signal('b', 'up')], want: { kind: 'change', to: 5, direction: 'up' } },
  ])('$rule', ({ list, want }) => {
    const plan = planSignals(signals(4, list));
    if (want === null) expect(plan).toBeNull();
    else expect(plan?.decision).toMatchObject(want);
  });

  it('the decision says that up won over the down signals', () => {
    const plan = planSignals(signals(4, [signal('a', 'down'), signal('b', 'up')]));
    expect(plan?.decision.kind === 'change' && plan.decision.reason).toContain('up wins over 1 down signal');
  });

  it('several up signals: the one giving the largest value', () => {
    const target = { ...TARGET, steps: { up: { adjustment: 'change' as const, relativeTo: 'value' as const, bands: [{ from: 70, to: 90, by: 2 }, { from: 90, by: 5 }] } } };
    const plan = planSignals(signals(2, [signal('a', 'up', 75), signal('b', 'up', 95), signal('c', 'up', null)], { target }));
    expect(plan?.decision).toMatchObject({ kind: 'change', to: 7 });
    expect(plan?.rule).toContain('[90, ∞)');
  });

  it('several down signals: the one giving the largest value (the least aggressive)', () => {
    const target = { ...TARGET, steps: { down: { adjustment: 'change' as const, relativeTo: 'value' as const, bands: [{ to: 10, by: -3 }, { from: 10, to: 30, by: -1 }] } } };
    const plan = planSignals(signals(8, [signal('a', 'down', 5), signal('b', 'down', 20)], { target }));
    expect(plan?.decision).toMatchObject({ kind: 'change', to: 7 });
  });

  it('a metric value of 95 with the bands 70-90 +2 and 90+ +5 adds 5', () => {
    const target = { ...TARGET, max: 20, steps: { up: { adjustment: 'change' as const, relativeTo: 'value' as const, bands: [{ from: 70, to: 90, by: 2 }, { from: 90, by: 5 }] } } };
    expect(planSignals(signals(3, [signal('a', 'up', 95)], { target }))?.decision).toMatchObject({ kind: 'change', to: 8 });
  });
});

describe('planSignals: what holds a change back', () => {
  it.each([
    { rule: 'at max, an up signal changes nothing (at-max)', current: 10, list: [signal('a', 'up')], over: {}, reason: 'at-max', wait: null },
    { rule: 'at min, a down signal changes nothing (at-min)', current: 1, list: [signal('a', 'down')], over: {}, reason: 'at-min', wait: null },
    { rule: 'a paused target changes nothing', current: 4, list: [signal('a', 'up')], over: { target: { ...TARGET, paused: true } }, reason: 'paused', wait: null },
    { rule: 'an API pause of up holds until it ends', current: 4, list: [signal('a', 'up')], over: { pause: { until: iso(NOW + 3000), direction: 'up' as const, reason: 'r' } }, reason: 'paused', wait: NOW + 3000 },
    { rule: 'the up cooldown holds until it ends', current: 4, list: [signal('a', 'up')], over: { cooldownUntil: { up: iso(NOW + 45_000), down: null } }, reason: 'cooldown', wait: NOW + 45_000 },
  ])('$rule', ({ current, list, over, reason, wait }) => {
    const plan = planSignals(signals(current, list, over));
    expect(plan?.decision).toMatchObject({ kind: 'skip', reason });
    expect(plan?.waitUntil).toBe(wait);
  });

  it('stabilization: a scale-down goes only as low as the highest desired value in the window', () => {
    const target = { ...TARGET, stabilization: { up: 0, down: 300_000 } };
    const history = [{ at: NOW - 60_000, value: 8 }];
    const plan = planSignals(signals(8, [signal('a', 'down')], { target, history }));
    expect(plan?.decision).toMatchObject({ kind: 'skip', reason: 'stabilization' });
    const later = planSignals(signals(8, [signal('a', 'down')], { target, history, now: NOW + 300_000 }));
    expect(later?.decision).toMatchObject({ kind: 'change', to: 7 });
  });
});

describe('planSignals: repetition, level-triggered', () => {
  it('one up signal and nothing else takes the value from 1 to max, one cooldown at a time', () => {
    let current = 1;
    let now = NOW;
    let cooldownUntil = { up: null as string | null, down: null as string | null };
    const steps: number[] = [];
    for (let round = 0; round < 20; round++) {
      const plan = planSignals(signals(current, [signal('cpu', 'up')], { now, cooldownUntil }));
      if (plan === null) break;
      if (plan.decision.kind === 'change') {
        current = plan.decision.to;
        steps.push(current);
        cooldownUntil = cooldownAfter(cooldownUntil, 'up', now, TARGET.cooldown);
      } else if (plan.waitUntil !== null) {
        now = plan.waitUntil;
      } else {
        expect(plan.decision).toMatchObject({ reason: 'at-max' });
        break;
      }
    }
    expect(steps).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(now).toBe(NOW + 8 * 60_000);
  });
});
