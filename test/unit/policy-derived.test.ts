import { describe, expect, it } from 'vitest';
import { decideCommand } from '../../src/policy/decide.js';
import { makeIntent } from './store-fixtures.js';
import { derivedValue, keyValues, ownedKeys, type DerivedRule } from '../../src/policy/derived.js';
import { problemsOf, webTargetConfig, parseTestConfig } from '../support/config.js';

const rule = (over: Partial<DerivedRule> = {}): DerivedRule => ({ key: 'db:maxConnections', per: 1, plus: 0, round: 'nearest', ...over });

describe('derived values: round(per * x + plus), clamped', () => {
  it.each<[string, Partial<DerivedRule>, number, number]>([
    ["the issue's example: 20 x + 10 at 5", { per: 20, plus: 10, min: 50, max: 1000 }, 5, 110],
    ['clamped up to min', { per: 20, plus: 10, min: 50, max: 1000 }, 1, 50],
    ['clamped down to max', { per: 20, plus: 10, min: 50, max: 1000 }, 100, 1000],
    ['nearest rounds a half up', { per: 0.5 }, 3, 2],
    ['nearest rounds below a half down', { per: 0.4 }, 3, 1],
    ['up rounds any fraction up', { per: 0.5, round: 'up' }, 3, 2],
    ['up keeps a whole result', { per: 0.5, round: 'up' }, 4, 2],
    ['down drops the fraction', { per: 0.5, round: 'down' }, 3, 1],
    ['a binary fraction does not tip up over a whole result', { per: 0.1, round: 'up' }, 30, 3],
    ['a binary fraction does not tip down under a whole result', { per: 0.7, round: 'down' }, 10, 7],
    ['a negative slope', { per: -2, plus: 100 }, 10, 80],
    ['zero stays a plain zero', { per: -1, round: 'up' }, 0, 0],
    ['no bounds leave the value free', { per: 1000 }, 7, 7000],
  ])('%s', (_name, over, x, expected) => {
    expect(Object.is(derivedValue(rule(over), x), expected)).toBe(true);
  });

  it('keyValues gives the driving key first, then each derived key, overrides winning', () => {
    const target = { configKey: 'web:replicas', derived: [rule({ per: 20, plus: 10 }), rule({ key: 'web:cpuShares', per: 0.5, round: 'up' })] };
    expect(keyValues(target, 5)).toStrictEqual({ 'web:replicas': 5, 'db:maxConnections': 110, 'web:cpuShares': 3 });
    expect(keyValues(target, 5, { 'db:maxConnections': 200 })).toStrictEqual({ 'web:replicas': 5, 'db:maxConnections': 200, 'web:cpuShares': 3 });
    expect(ownedKeys(target)).toStrictEqual(['web:replicas', 'db:maxConnections', 'web:cpuShares']);
  });
});

describe('config: derived keys', () => {
  it("parses the issue's example with its defaults", () => {
    const c = parseTestConfig(
      webTargetConfig('    derived:\n      - { key: db:maxConnections, per: 20, plus: 10, min: 50, max: 1000 }\n      - { key: web:cpuShares, per: 0.5, round: up }'),
    );
    expect(c.targets.web?.derived).toStrictEqual([
      { key: 'db:maxConnections', per: 20, plus: 10, min: 50, max: 1000, round: 'nearest' },
      { key: 'web:cpuShares', per: 0.5, plus: 0, round: 'up' },
    ]);
  });

  it.each([
    ['a derived key equal to the driving key', '    derived: [{ key: web:replicas, per: 2 }]', 'targets.web.derived.0.key'],
    ['a key derived twice in one target', '    derived: [{ key: db:conns }, { key: db:conns, per: 2 }]', 'targets.web.derived.1.key'],
    ['bounds that cannot hold together', '    derived: [{ key: db:conns, min: 10, max: 5 }]', 'targets.web.derived.0.max'],
    ['a key that is not namespace:key', '    derived: [{ key: conns }]', 'targets.web.derived.0.key'],
    ['an unknown rounding', '    derived: [{ key: db:conns, round: half-even }]', 'targets.web.derived.0.round'],
  ])('refuses %s', (_name, yaml, path) => {
    expect(problemsOf(webTargetConfig(yaml)).map((p) => p.path)).toContain(path);
  });

  it('refuses a key owned by two targets of one stack, derived in one and driving in the other', () => {
    const text = `
targets:
  web:
    workDir: ./infra/web
    stack: prod
    configKey: web:replicas
    min: 1
    max: 10
    derived: [{ key: web:workers, per: 2 }]
  workers:
    workDir: ./infra/web
    stack: prod
    configKey: web:workers
    min: 1
    max: 10
`;
    expect(problemsOf(text)).toContainEqual({ path: 'targets.workers.configKey', message: 'already owned by target web' });
  });
});

describe('config: derived keys of an inline target', () => {
  it('refuses two keys whose outputs would share a name', () => {
    const text = `
targets:
  settings:
    inline: { project: settings }
    stack: prod
    configKey: web:replicas
    min: 1
    max: 10
    derived: [{ key: db:replicas, per: 2 }]
`;
    expect(problemsOf(text).map((p) => p.path)).toContain('targets.settings.derived.0.key');
  });
});

describe('decideCommand: a multi-key command', () => {
  const base = { current: 5, target: { min: 1, max: 10, step: 1, paused: false, cooldown: { up: 0, down: 0 }, stabilization: { up: 0, down: 0 } }, pause: null, now: 0 };
  const command = (values?: Record<string, number>) => makeIntent({ source: 'api', bounds: 'reject', adjustment: { type: 'to', to: 5, ...(values ? { values } : {}) } });

  it('that keeps the driving value still changes: its other keys are set', () => {
    expect(decideCommand({ ...base, command: command({ 'db:maxConnections': 300 }) })).toMatchObject({ kind: 'change', from: 5, to: 5, direction: 'up' });
  });

  it('without other keys, the same value is no change', () => {
    expect(decideCommand({ ...base, command: command() })).toMatchObject({ kind: 'skip', reason: 'no-change' });
  });

  it('is still held by a pause of up', () => {
    const pause = { until: '2099-01-01T00:00:00.000Z', direction: 'up' as const, reason: 'hold' };
    expect(decideCommand({ ...base, pause, command: command({ 'db:maxConnections': 300 }) })).toMatchObject({ kind: 'skip', reason: 'paused' });
  });
});
