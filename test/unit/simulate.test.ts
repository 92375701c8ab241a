import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioError, seriesScenario } from '../../src/simulate/input.js';
import { parseConfig, targetsOf } from '../../src/config/load.js';
import type { TargetConfig } from '../../src/config/schema.js';
import { boundsAt, firesBetween, nextChange, nextFire } from '../../src/schedule/index.js';
import { ScheduleMemo, simulate, SimulationTooLargeError, type ScheduleQuestions } from '../../src/simulate/simulate.js';
import { target } from '../support/engine.js';
import { fixture } from '../support/sns.js';

/** The target: min 1, max 40, up cooldown 60 s, up bands [70, 90) +2 and [90, ∞) +5. */
const web = target('web', {
  min: 1,
  max: 40,
  cooldown: { up: 60_000, down: 0 },
  steps: { up: { adjustment: 'change', relativeTo: 'value', bands: [{ from: 70, to: 90, by: 2 }, { from: 90, by: 5 }] } },
});

/** The input. */
const EXAMPLE = fixture('simulate/issue-example.json');
/** What the example gives: the same at every entry point (policy, API, CLI). */
const EXPECTED = fixture<{ changes: { at: string; from: number; to: number }[]; final: number }>('simulate/issue-example.expected.json');

const run = (raw: unknown, opMs = 0) => simulate(web, parseScenario(raw), { opMs, evaluationInterval: 15_000 });
const steps = (r: ReturnType<typeof run>) => r.changes.map((c) => [c.at.slice(11, 19), c.from, c.to]);

describe('simulate: the policy on a virtual clock', () => {
  it("gives the issue's sequence: 2→7 at 10:00, then +5 after each up cooldown to 27 at 10:04, and 27→3 at 10:06", () => {
    const result = run(EXAMPLE);
    expect(result).toMatchObject(EXPECTED);
    expect(result.changes[0]?.reason).toContain('band [90, ∞): +5');
  });

  it('an operation takes --op-seconds, during which nothing else starts; its change counts at its end', () => {
    const result = run(EXAMPLE, 20_000);
    expect(steps(result).slice(0, 2)).toEqual([
      ['10:00:20', 2, 7],
      ['10:01:40', 7, 12],
    ]);
  });

  it('a pause holds the signal; its end lets it act', () => {
    const result = run({
      start: { at: '2026-11-29T10:00:00Z', value: 2 },
      inputs: [
        { at: '2026-11-29T10:00:00Z', pause: { for: '5m', direction: 'up' } },
        { at: '2026-11-29T10:01:00Z', signal: { id: 'cpu', direction: 'up', value: 75 } },
      ],
      until: '2026-11-29T10:05:30Z',
    });
    expect(steps(result)).toEqual([['10:05:00', 2, 4]]);
  });

  it('a down signal steps down, bounded by min', () => {
    const result = run({
      start: { at: '2026-11-29T10:00:00Z', value: 2 },
      inputs: [{ at: '2026-11-29T10:00:00Z', signal: { id: 'idle', direction: 'down' } }],
      until: '2026-11-29T10:01:00Z',
    });
    expect(steps(result)).toEqual([['10:00:00', 2, 1]]);
  });

  it('a schedule point sets its value at each fire, and a window moves the value into its bounds', () => {
    const scheduled = target('web', {
      min: 1,
      max: 40,
      schedules: [
        { kind: 'point', name: 'morning', cron: '0 9 * * *', timezone: 'UTC', to: 10, startingDeadline: 300_000 },
        { kind: 'window', name: 'night', cron: '0 20 * * *', duration: 3_600_000, timezone: 'UTC', min: 0, max: 2, priority: 0 },
      ],
    });
    const result = simulate(scheduled, parseScenario({ start: { at: '2026-11-29T08:00:00Z', value: 4 }, until: '2026-11-29T21:30:00Z' }), { opMs: 0, evaluationInterval: 15_000 });
    expect(result.changes.map((c) => [c.at.slice(11, 16), c.from, c.to])).toEqual([
      ['09:00', 4, 10],
      ['20:00', 10, 2],
    ]);
  });
});

describe('simulate: a Prometheus range query as the input', () => {
  const matrix = (values: [number, string][]) => ({ status: 'success', data: { resultType: 'matrix', result: [{ metric: { __name__: 'cpu', job: 'web' }, values }] } });
  const t0 = Date.parse('2026-11-29T10:00:00Z') / 1000;

  it('a sample above --above is a firing up signal with its value; the first below resolves it', () => {
    const scenario = seriesScenario(matrix([[t0, '50'], [t0 + 60, '95'], [t0 + 120, '96'], [t0 + 180, '40']]), { above: 70, startValue: 2 });
    expect(scenario.inputs).toEqual([
      { at: (t0 + 60) * 1000, kind: 'signal', signal: { id: 'cpu{job="web"}', direction: 'up', value: 95, threshold: 70 } },
      { at: (t0 + 120) * 1000, kind: 'signal', signal: { id: 'cpu{job="web"}', direction: 'up', value: 96, threshold: 70 } },
      { at: (t0 + 180) * 1000, kind: 'resolve', id: 'cpu{job="web"}' },
    ]);
    expect(steps(simulate(web, scenario, { opMs: 0, evaluationInterval: 15_000 }))).toEqual([['10:01:00', 2, 7], ['10:02:00', 7, 12]]);
  });

  it.each<[string, unknown, RegExp]>([
    ['a vector instead of a matrix', { data: { resultType: 'vector', result: [] } }, /matrix/],
    ['a sample that is not a number', matrix([[t0, 'abc']]), /data.result.0.values.0.1: "abc" is not a number/],
  ])('refuses %s, saying where', (_name, raw, problem) => {
    expect(() => seriesScenario(raw, { above: 70, startValue: 2 })).toThrow(problem);
  });
});

describe('simulate: the schedules asked only at their edges', () => {
  it('answers as boundsAt and nextChange do, asking them again only once an edge has passed', () => {
    const target = scheduled();
    const { ask, calls } = counted();
    const memo = new ScheduleMemo(target, ask);
    // Three days every 30 s (8,640 instants), and each edge itself; checked against the
    // functions asked directly at every 20th instant and at every edge.
    const from = Date.parse('2026-11-27T00:00:00Z');
    const edges = new Set<number>();
    const instants: number[] = [];
    for (let at = from; at < from + 3 * 86_400_000; at += 30_000) instants.push(at);
    let i = 0;
    for (let k = 0; k < instants.length; k++) {
      const at = instants[k] as number;
      const bounds = memo.boundsAt(at);
      const next = memo.nextChange(at);
      if (next !== null && !edges.has(next)) {
        edges.add(next);
        // The edge itself comes next when it falls between two instants.
        if (next < (instants[k + 1] ?? Infinity)) instants.splice(k + 1, 0, next);
      }
      if (i++ % 20 === 0 || edges.has(at)) {
        expect(bounds).toEqual(boundsAt(target, at));
        expect(next).toBe(nextChange(target.schedules, at));
      }
    }
    // Once per edge crossed (and once at the start), not once per instant.
    expect(edges.size).toBeGreaterThan(10);
    expect(calls.boundsAt).toBeLessThanOrEqual(edges.size + 1);
    expect(calls.nextChange).toBeLessThanOrEqual(edges.size + 1);
  });

  it('a run over three days with a signal up every 15 s asks them at its edges, not at each of its 17,000 instants', () => {
    const target = scheduled();
    const { ask, calls } = counted();
    const start = Date.parse('2026-11-27T00:00:00Z');
    const scenario = { start: { at: start, value: 2 }, until: start + 3 * 86_400_000, inputs: [{ at: start + 60_000, kind: 'signal' as const, signal: { id: 'cpu', direction: 'up' as const, value: null, threshold: null } }] };
    const opts = { opMs: 0, evaluationInterval: 15_000 };
    // The same answer as the functions asked directly give.
    expect(simulate(target, scenario, { ...opts, ask })).toEqual(simulate(target, scenario, opts));
    // Three days hold about a dozen edges each of the schedules; 17,280 instants.
    for (const [name, n] of Object.entries(calls)) expect({ name, n: Math.min(n, 200) }).toEqual({ name, n });
  });
});

/** A target with two windows (one in Berlin time, one of higher priority) and a daily point. */
function scheduled(): TargetConfig {
  const config = parseConfig(
    `targets:
  web:
    workDir: /srv/web
    stack: prod
    configKey: web:replicas
    min: 1
    max: 40
    schedules:
      - { name: business-hours, cron: "0 8 * * 1-5", end: "0 20 * * 1-5", timezone: Europe/Berlin, min: 2, max: 10 }
      - { name: night, cron: "0 22 * * *", duration: 6h, max: 3, priority: 2 }
      - { name: batch, cron: "30 1 * * *", to: 3 }
`,
    { file: 'x.yaml', baseDir: '/', env: {} },
  );
  return targetsOf(config)[0] as TargetConfig;
}

/** The schedule functions, each call counted. */
function counted() {
  const calls = { nextChange: 0, boundsAt: 0, nextFire: 0, firesBetween: 0 };
  const ask: ScheduleQuestions = {
    nextChange: (schedules, now) => (calls.nextChange++, nextChange(schedules, now)),
    boundsAt: (t, now) => (calls.boundsAt++, boundsAt(t, now)),
    nextFire: (s, after) => (calls.nextFire++, nextFire(s, after)),
    firesBetween: (s, from, to, limit) => (calls.firesBetween++, firesBetween(s, from, to, limit)),
  };
  return { ask, calls };
}

describe('simulate: bad input gets every problem with its path', () => {
  it.each<[string, unknown, string]>([
    ['no until', { start: { at: '2026-11-29T10:00:00Z', value: 2 } }, 'until'],
    ['until before start', { ...EXAMPLE, until: '2026-11-29T09:00:00Z' }, 'until'],
    ['a signal with a bad direction', { ...EXAMPLE, inputs: [{ at: '2026-11-29T10:00:00Z', signal: { id: 'cpu', direction: 'sideways' } }] }, 'inputs.0.signal.direction'],
    ['an input with two kinds', { ...EXAMPLE, inputs: [{ at: '2026-11-29T10:00:00Z', resolve: 'cpu', command: { to: 3 } }] }, 'inputs.0'],
    ['a command with to and by', { ...EXAMPLE, inputs: [{ at: '2026-11-29T10:00:00Z', command: { to: 3, by: 1 } }] }, 'inputs.0.command'],
    ['a time that is not ISO', { ...EXAMPLE, inputs: [{ at: 'yesterday', resolve: 'cpu' }] }, 'inputs.0.at'],
    ['an input after until', { ...EXAMPLE, inputs: [{ at: '2026-11-29T11:00:00Z', resolve: 'cpu' }] }, 'inputs.0.at'],
    ['a pause without a unit', { ...EXAMPLE, inputs: [{ at: '2026-11-29T10:00:00Z', pause: { for: '5' } }] }, 'inputs.0.pause.for'],
    // Past any date: it failed with a RangeError, a 500 through the API.
    ['a pause of 100000000d', { ...EXAMPLE, inputs: [{ at: '2026-11-29T10:00:00Z', pause: { for: '100000000d' } }] }, 'inputs.0.pause.for'],
    ['more than 31 days', { ...EXAMPLE, until: '2027-01-29T10:00:00Z' }, 'until'],
  ])('%s', (_name, raw, path) => {
    let error: unknown;
    try {
      parseScenario(raw);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ScenarioError);
    expect((error as ScenarioError).problems.map((p) => p.path)).toContain(path);
  });
});

describe('simulate: what the review found', () => {
  it('a skipped command lets the next one run at the same instant, as the engine does', () => {
    const result = run({
      start: { at: '2026-11-29T10:00:00Z', value: 2 },
      inputs: [
        { at: '2026-11-29T10:00:00Z', command: { to: 50 } },
        { at: '2026-11-29T10:00:00Z', command: { to: 5 } },
      ],
      until: '2026-11-29T10:01:00Z',
    });
    expect(steps(result)).toEqual([['10:00:00', 2, 5]]);
  });

  it('a point that fires at the very start counts', () => {
    const scheduled = target('web', { min: 1, max: 40, schedules: [{ kind: 'point', name: 'p', cron: '0 10 * * *', timezone: 'UTC', to: 10, startingDeadline: 300_000 }] });
    const result = simulate(scheduled, parseScenario({ start: { at: '2026-11-29T10:00:00Z', value: 2 }, until: '2026-11-29T10:05:00Z' }), { opMs: 0, evaluationInterval: 15_000 });
    expect(result.changes.map((c) => [c.at.slice(11, 16), c.from, c.to])).toEqual([['10:00', 2, 10]]);
  });

  it('a run that would visit too many instants is refused, not run for minutes', () => {
    const busy = target('web', { min: 1, max: 40, cooldown: { up: 86_400_000, down: 0 } });
    const scenario = parseScenario({
      start: { at: '2026-11-01T00:00:00Z', value: 2 },
      inputs: [{ at: '2026-11-01T00:00:00Z', signal: { id: 'cpu', direction: 'up' } }],
      until: '2026-11-30T00:00:00Z',
    });
    expect(() => simulate(busy, scenario, { opMs: 0, evaluationInterval: 100 })).toThrow(SimulationTooLargeError);
  });

  it('times without a zone are refused rather than read in the host zone', () => {
    expect(() => parseScenario({ ...EXAMPLE, until: '2026-11-29T10:10:00' })).toThrow(ScenarioError);
  });

  it('NaN and Inf samples of a series are gaps, not errors', () => {
    const t0 = Date.parse('2026-11-29T10:00:00Z') / 1000;
    const raw = { data: { resultType: 'matrix', result: [{ metric: {}, values: [[t0, 'NaN'], [t0 + 60, '95'], [t0 + 120, '+Inf']] }] } };
    expect(seriesScenario(raw, { above: 70, startValue: 2 }).inputs.map((i) => i.kind)).toEqual(['signal']);
  });
});
