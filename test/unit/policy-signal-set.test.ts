/**
 * SignalSet keeps a target's signals so that a decision sizes one signal per step class instead
 * of every signal. Its promise: the plan is the one sizing every active signal would give. The
 * oracle here sizes every signal the plain way (stepValue over the list, the first to arrive
 * winning among equals) and the two are compared over random histories of upserts, refreshes,
 * ends and expiries.
 */
import { describe, expect, it } from 'vitest';
import type { PolicyTarget } from '../../src/policy/decide.js';
import { MAX_LISTED, SignalSet } from '../../src/policy/signal-set.js';
import { planSignals } from '../../src/policy/signals.js';
import { stepValue, type ConfiguredStepRules } from '../../src/policy/steps.js';
import type { Signal } from '../../src/types.js';

const NOW = Date.parse('2025-01-01T12:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();

const RULES: ConfiguredStepRules = {
  up: { adjustment: 'change', relativeTo: 'threshold', bands: [{ from: 0, to: 10, by: 1 }, { from: 10, to: 30, by: 3 }, { from: 30, by: 3 }] },
  down: { adjustment: 'percent', relativeTo: 'value', bands: [{ to: 20, by: -50 }, { from: 20, to: 40, by: -10 }], minMagnitude: 1 },
};
const TARGET: PolicyTarget = { min: 1, max: 100, step: 2, paused: false, cooldown: { up: 0, down: 0 }, stabilization: { up: 0, down: 0 }, steps: RULES };

function signal(id: string, over: Partial<Signal> = {}): Signal {
  return { id, target: 'web', source: 'alertmanager', direction: 'up', value: null, threshold: null, since: iso(NOW), lastSeen: iso(NOW), expiresAt: null, reason: `alert ${id}`, evidence: {}, ...over };
}

/** The plain way: size every active signal, in arrival order. */
function oracle(active: Signal[], current: number) {
  const ups = active.filter((s) => s.direction === 'up');
  const downs = active.filter((s) => s.direction === 'down');
  const direction = ups.length > 0 ? 'up' : 'down';
  const sized = (ups.length > 0 ? ups : downs).map((s) => ({ s, to: stepValue({ current, direction, value: s.value, threshold: s.threshold, rules: RULES, step: TARGET.step }).to }));
  const best = sized.reduce((a, b) => (b.to > a.to ? b : a));
  const listed = [best.s, ...active.filter((s) => s !== best.s)].slice(0, MAX_LISTED).map((s) => s.id);
  return { chosen: best.s.id, count: sized.length, listed };
}

/** A small deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

describe('SignalSet: a summary plans as sizing every signal would', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('random history %i: same winner, same count, same listed signals', (seed) => {
    const rand = random(seed);
    const set = new SignalSet(RULES);
    // The oracle's arrival order: a refresh keeps its place, an end and a new start goes last.
    const order: string[] = [];
    const live = new Map<string, Signal>();
    let now = NOW;
    for (let step = 0; step < 400; step++) {
      now += Math.floor(rand() * 2000);
      const id = `s${Math.floor(rand() * 40)}`;
      const roll = rand();
      if (roll < 0.7) {
        const value = rand() < 0.15 ? null : Math.round(rand() * 60);
        const s = signal(id, {
          direction: rand() < 0.7 ? 'up' : 'down',
          value,
          threshold: rand() < 0.1 ? null : 20,
          expiresAt: rand() < 0.3 ? iso(now + Math.floor(rand() * 20_000)) : null,
        });
        if (!live.has(id)) order.push(id);
        live.set(id, s);
        set.set(s);
      } else {
        if (live.delete(id)) order.splice(order.indexOf(id), 1);
        set.delete(id);
      }
      // Expired signals leave the oracle's list as they leave the summary (the engine ends them).
      for (const s of set.expire(now)) {
        live.delete(s.id);
        order.splice(order.indexOf(s.id), 1);
        set.delete(s.id);
      }
      const active = order.map((i) => live.get(i) as Signal);
      const current = 1 + Math.floor(rand() * 50);
      const plan = planSignals({ current, signals: set.summary(now), target: TARGET, pause: null, cooldownUntil: { up: null, down: null }, history: [], now });
      if (active.length === 0) {
        expect(plan).toBeNull();
        continue;
      }
      const expected = oracle(active, current);
      expect(plan?.signals[0]?.id).toBe(expected.chosen);
      expect(plan?.signals.map((s) => s.id)).toEqual(expected.listed);
      if (expected.count > 1) expect(plan?.desired.reason).toContain(`largest of ${expected.count} `);
      else expect(plan?.desired.reason).not.toContain('largest of');
    }
  });

  it('sizes one candidate per step class, whatever the number of signals', () => {
    const set = new SignalSet(RULES);
    for (let i = 0; i < 10_000; i++) set.set(signal(`fp-${i}`, { value: 25 + (i % 3), threshold: 20 }));
    set.set(signal('no-value'));
    const summary = set.summary(NOW);
    expect(summary).toMatchObject({ ups: 10_001, downs: 0 });
    expect(summary.candidates.map((s) => s.id)).toEqual(['fp-0', 'no-value']);
    expect(summary.first).toHaveLength(MAX_LISTED + 1);
  });

  it('a signal past its expiry leaves the summary at that time, and is returned once to be ended', () => {
    const set = new SignalSet(undefined);
    set.set(signal('a', { expiresAt: iso(NOW + 1000) }));
    set.set(signal('b'));
    expect(set.summary(NOW + 999).ups).toBe(2);
    expect(set.expire(NOW + 1000).map((s) => s.id)).toEqual(['a']);
    expect(set.expire(NOW + 2000)).toEqual([]);
    expect(set.summary(NOW + 2000)).toMatchObject({ ups: 1, candidates: [{ id: 'b' }] });
    // Still held (the store has not ended it yet), and due to be ended.
    expect(set.get('a')).toBeDefined();
    expect(set.expiredHeld).toBe(1);
    expect(set.due(NOW + 2000).map((s) => s.id)).toEqual(['a']);
    set.delete('a');
    expect(set.expiredHeld).toBe(0);
  });

  it('an expiry that is not a date has passed', () => {
    const set = new SignalSet(undefined);
    set.set(signal('a', { expiresAt: 'not a date' }));
    expect(set.summary(NOW)).toMatchObject({ ups: 0, downs: 0 });
    expect(set.expiredHeld).toBe(1);
    // Sent again with a good expiry, it is active again.
    set.set(signal('a', { expiresAt: iso(NOW + 1000) }));
    expect(set.expiredHeld).toBe(0);
    expect(set.summary(NOW).ups).toBe(1);
  });

  it('a refresh with a later expiry keeps the signal; a refresh without one makes it last', () => {
    const set = new SignalSet(undefined);
    set.set(signal('a', { expiresAt: iso(NOW + 1000) }));
    set.set(signal('a', { expiresAt: iso(NOW + 5000) }));
    expect(set.expire(NOW + 1000)).toEqual([]);
    set.set(signal('a', { expiresAt: null }));
    expect(set.expire(NOW + 10_000)).toEqual([]);
    expect(set.summary(NOW + 10_000).ups).toBe(1);
  });
});
