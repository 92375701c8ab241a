import { describe, expect, it } from 'vitest';
import { historyScenario } from '../../src/simulate/backtest.js';
import { simulate } from '../../src/simulate/simulate.js';
import type { ScalingEvent } from '../../src/types.js';
import { target } from '../support/engine.js';

let n = 0;
const at = (s: number) => new Date(Date.parse('2026-11-29T10:00:00Z') + s * 1000).toISOString();
const event = (over: Partial<ScalingEvent>): ScalingEvent => ({
  id: `e${++n}`, target: 'web', at: at(0), kind: 'changed', from: null, to: null, reason: 'r', source: 'engine', intents: 0, durationMs: 0, dryRun: false, ...over,
});
const cpu = { id: 'fp-cpu', source: 'alertmanager' as const, direction: 'up' as const, value: 95, threshold: 80 };

/** A history as the daemon records it: an alert stepping twice, its resolution, an operator's command. */
const HISTORY: ScalingEvent[] = [
  event({ at: at(1), kind: 'changed', from: 2, to: 3, source: 'alertmanager', signals: [cpu], durationMs: 1000 }),
  event({ at: at(11), kind: 'changed', from: 3, to: 4, source: 'alertmanager', signals: [cpu], durationMs: 1000 }),
  event({ at: at(15), kind: 'ignored', source: 'alertmanager', evidence: { fingerprint: 'fp-cpu' }, reason: 'alert HighCPU resolved' }),
  event({ at: at(31), kind: 'changed', from: 4, to: 2, source: 'api', commands: ['c1'], durationMs: 1000 }),
  event({ at: at(40), kind: 'changed', from: 2, to: 9, dryRun: true }),
];

describe('backtest: the recorded history as a timeline', () => {
  it('turns signals, resolutions and commands into inputs at the times the engine acted', () => {
    const bt = historyScenario(HISTORY, 'web', Date.parse(at(0)), Date.parse(at(60)));
    expect(bt?.scenario.start).toEqual({ at: Date.parse(at(0)), value: 2 });
    expect(bt?.scenario.inputs).toEqual([
      { at: Date.parse(at(0)), kind: 'signal', signal: { id: 'fp-cpu', direction: 'up', value: 95, threshold: 80 } },
      { at: Date.parse(at(15)), kind: 'resolve', id: 'fp-cpu' },
      { at: Date.parse(at(30)), kind: 'command', adjustment: { type: 'to', to: 2 } },
    ]);
    expect(bt?.recorded.map((c) => [c.from, c.to])).toEqual([[2, 3], [3, 4], [4, 2]]);
  });

  it('replayed against the same policy, it gives the same values', () => {
    const bt = historyScenario(HISTORY, 'web', Date.parse(at(0)), Date.parse(at(60)));
    if (bt === null) throw new Error('no backtest');
    const web = target('web', { min: 1, max: 10, cooldown: { up: 10_000, down: 0 } });
    const replay = simulate(web, bt.scenario, { opMs: 0, evaluationInterval: 1_000 });
    expect(replay.changes.map((c) => c.to)).toEqual(bt.recorded.map((c) => c.to));
  });

  it('a CloudWatch alarm resolves by its name', () => {
    const arn = 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:web-cpu-high';
    const bt = historyScenario(
      [event({ kind: 'skipped', signals: [{ ...cpu, id: arn, source: 'cloudwatch' }] }), event({ at: at(5), kind: 'ignored', evidence: { alarmName: 'web-cpu-high' } })],
      'web',
      Date.parse(at(0)),
      Date.parse(at(60)),
    );
    expect(bt?.scenario.inputs.map((i) => i.kind)).toEqual(['signal', 'resolve']);
  });

  it('nothing of the target since then is null', () => {
    expect(historyScenario(HISTORY, 'api', Date.parse(at(0)), Date.parse(at(60)))).toBeNull();
  });
});

describe('backtest: what the review found', () => {
  it("a schedule's past change is not replayed: the config's schedules fire anew", () => {
    const bt = historyScenario(
      [event({ at: at(1), kind: 'changed', from: 2, to: 10, source: 'schedule', commands: ['s1'], evidence: { schedule: { name: 'morning' } } })],
      'web',
      Date.parse(at(0)),
      Date.parse(at(60)),
    );
    expect(bt?.scenario.inputs).toEqual([]);
    expect(bt?.recorded.map((c) => c.to)).toEqual([10]);
  });

  it('an expiry or resolution naming its signal ends exactly that one', () => {
    const bt = historyScenario(
      [
        event({ kind: 'skipped', signals: [cpu, { ...cpu, id: 'other' }] }),
        event({ at: at(5), kind: 'ignored', evidence: { signal: 'other', fingerprint: 'fp-cpu' } }),
      ],
      'web',
      Date.parse(at(0)),
      Date.parse(at(60)),
    );
    expect(bt?.scenario.inputs.filter((i) => i.kind === 'resolve')).toEqual([{ at: Date.parse(at(5)), kind: 'resolve', id: 'other' }]);
  });
});
