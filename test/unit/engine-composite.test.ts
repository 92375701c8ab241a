import { describe, expect, it } from 'vitest';
import { PulumiProgramError } from '../../src/errors.js';
import { intent, signal, started, target, to } from '../support/engine.js';

const composite = () =>
  target('web', {
    derived: [
      { key: 'db:maxConnections', per: 20, plus: 10, min: 50, max: 1000, round: 'nearest' },
      { key: 'web:cpuShares', per: 0.5, plus: 0, round: 'up' },
    ],
  });

describe('engine: composite targets', () => {
  it('one operation sets every key: the driving value and each derived one by its rule', async () => {
    const { engine, exec, events } = await started({ targets: [composite()], values: { web: 2 } });
    await engine.command(intent('web', to(5), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 5, dryRun: false }]);
    expect(exec.keyValues.get('web')).toStrictEqual({ 'db:maxConnections': 110, 'web:cpuShares': 3, 'web:replicas': 5 });
    expect(events().at(-1)).toMatchObject({
      kind: 'changed',
      from: 2,
      to: 5,
      keys: [
        { key: 'web:replicas', from: 2, to: 5 },
        { key: 'db:maxConnections', from: null, to: 110 },
        { key: 'web:cpuShares', from: null, to: 3 },
      ],
    });
    expect(await engine.state('web')).toMatchObject({
      configKeys: ['web:replicas', 'db:maxConnections', 'web:cpuShares'],
      values: { 'web:replicas': 5, 'db:maxConnections': 110, 'web:cpuShares': 3 },
    });
  });

  it("an alert's step sets the derived keys too, and a dry run previews them all", async () => {
    const { engine, exec, events } = await started({ targets: [composite()], values: { web: 2 }, dryRun: true });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 3, dryRun: true }]);
    expect(events().at(-1)).toMatchObject({ kind: 'previewed', to: 3, keys: [{ key: 'web:replicas', to: 3 }, { key: 'db:maxConnections', to: 70 }, { key: 'web:cpuShares', to: 2 }] });
  });

  it("an operator's multi-key command sets the keys it names and the rest by rule, in one operation", async () => {
    const { engine, exec, events } = await started({ targets: [composite()], values: { web: 2 } });
    await engine.command(intent('web', { type: 'to', to: 5, values: { 'db:maxConnections': 300 } }, { source: 'api', bounds: 'reject' }));
    await engine.command(intent('web', { type: 'by', by: 1 }, { source: 'api', bounds: 'reject' }));
    await engine.idle();
    // The multi-key command runs alone: its values are its own.
    expect(exec.applies.map((a) => a.to)).toEqual([5, 6]);
    expect(events()[0]?.keys).toContainEqual({ key: 'db:maxConnections', from: null, to: 300 });
    expect(exec.keyValues.get('web')).toMatchObject({ 'db:maxConnections': 130 });
  });

  it('a failed up reports no key as set: the state keeps the values of before', async () => {
    const { engine, exec, events } = await started({ targets: [composite()], values: { web: 2 } });
    await engine.command(intent('web', to(4), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    exec.failApply('web', new PulumiProgramError('boom'));
    await engine.command(intent('web', to(9), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    expect(events().at(-1)).toMatchObject({ kind: 'failed', to: 9 });
    expect((await engine.state('web'))?.values).toStrictEqual({ 'web:replicas': 4, 'db:maxConnections': 90, 'web:cpuShares': 2 });
  });

  it('before any operation, the derived values shown are what their rules give for the current value', async () => {
    const { engine } = await started({ targets: [composite()], values: { web: 2 } });
    expect((await engine.state('web'))?.values).toStrictEqual({ 'web:replicas': 2, 'db:maxConnections': 50, 'web:cpuShares': 1 });
  });

  it('a multi-key command that keeps the driving value still sets the keys it names, in one up', async () => {
    const { engine, exec, events } = await started({ targets: [composite()], values: { web: 5 } });
    await engine.command(intent('web', { type: 'to', to: 5, values: { 'db:maxConnections': 300 } }, { source: 'api', bounds: 'reject' }));
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 5, dryRun: false }]);
    expect(exec.keyValues.get('web')).toMatchObject({ 'db:maxConnections': 300 });
    expect(events().at(-1)).toMatchObject({ kind: 'changed', from: 5, to: 5 });
  });
});
