import { describe, expect, it } from 'vitest';
import { intent, started, target, to } from '../support/engine.js';

type OnDrift = 'report' | 'adopt' | 'revert';
const watched = (onDrift: OnDrift = 'report', beforeScale = false) =>
  target('web', { drift: { every: 60_000, beforeScale, onDrift }, cooldown: { up: 0, down: 0 } });

/** Starts on value 3 and lets one drift interval pass (the engine's tick is 15 s). */
async function afterOneInterval(s: Awaited<ReturnType<typeof started>>): Promise<void> {
  s.clock.advance(60_000);
  await s.engine.idle();
}

describe('engine: drift checks', () => {
  it('a clean stack is checked every interval and records nothing', async () => {
    const s = await started({ targets: [watched()], values: { web: 3 } });
    await afterOneInterval(s);
    await afterOneInterval(s);
    expect(s.exec.calls.filter((c) => c.op === 'checkDrift')).toHaveLength(2);
    expect(s.events()).toEqual([]);
    expect(s.messages).toContainEqual({ type: 'drift-check', target: 'web', outcome: 'clean' });
  });

  it('resources changed outside Pulumi are one drift event, not repeated while unchanged', async () => {
    const s = await started({ targets: [watched()], values: { web: 3 } });
    const urn = 'urn:pulumi:prod::web::psfile:index:File::replicasFile';
    s.exec.drift.set('web', { changes: { update: 1 }, resources: [{ urn, type: 'psfile:index:File', name: 'replicasFile', op: 'update', properties: ['content'] }] });
    await afterOneInterval(s);
    await afterOneInterval(s);
    const drift = s.events().filter((e) => e.kind === 'drift');
    expect(drift).toHaveLength(1);
    expect(drift[0]).toMatchObject({ source: 'engine', drift: { resources: { changes: { update: 1 }, items: [{ name: 'replicasFile', properties: ['content'] }] }, key: null, action: null } });
    // Put right by hand, then drifted again: reported again.
    s.exec.drift.delete('web');
    await afterOneInterval(s);
    s.exec.drift.set('web', { changes: { delete: 1 }, resources: [{ urn, type: 'psfile:index:File', name: 'replicasFile', op: 'delete', properties: [] }] });
    await afterOneInterval(s);
    expect(s.events().filter((e) => e.kind === 'drift')).toHaveLength(2);
  });

  it.each<[OnDrift, number, string]>([
    ['report', 3, 'reported'],
    ['adopt', 7, 'adopted'],
  ])('an owned key set by hand, with onDrift %s, leaves the known value at %i', async (onDrift, current, action) => {
    const s = await started({ targets: [watched(onDrift)], values: { web: 3 } });
    s.exec.values.set('web', 7);
    await afterOneInterval(s);
    expect(s.events().filter((e) => e.kind === 'drift')).toMatchObject([{ from: 3, to: 7, drift: { key: { key: 'web:replicas', expected: 3, actual: 7 }, action } }]);
    expect((await s.engine.state('web'))?.current).toBe(current);
    expect(s.exec.applies).toEqual([]);
  });

  it('with onDrift revert, the daemon puts its value back with one up', async () => {
    const s = await started({ targets: [watched('revert')], values: { web: 3 } });
    s.exec.values.set('web', 7);
    await afterOneInterval(s);
    expect(s.exec.applies).toEqual([{ op: 'apply', target: 'web', to: 3, dryRun: false }]);
    expect(s.exec.values.get('web')).toBe(3);
    expect(s.events().map((e) => e.kind)).toEqual(['drift', 'changed']);
    expect(s.events()[1]).toMatchObject({ from: 7, to: 3, source: 'engine' });
  });

  it('a revert waits out its direction’s cooldown, said once', async () => {
    const s = await started({ targets: [target('web', { drift: { every: 60_000, beforeScale: false, onDrift: 'revert' }, cooldown: { up: 600_000, down: 0 } })], values: { web: 3 } });
    await s.engine.command(intent('web', to(4), { source: 'api', bounds: 'reject' }));
    await s.engine.idle();
    s.exec.values.set('web', 2);
    await afterOneInterval(s);
    await afterOneInterval(s);
    expect(s.exec.applies).toHaveLength(1);
    expect(s.events().filter((e) => e.kind === 'drift')).toHaveLength(1);
    s.clock.advance(600_000);
    await s.engine.idle();
    await afterOneInterval(s);
    expect(s.exec.values.get('web')).toBe(4);
  });

  it('before-scale runs a real refresh before each up, never before a preview', async () => {
    const s = await started({ targets: [watched('report', true)], values: { web: 3 } });
    await s.engine.command(intent('web', to(5), { source: 'api', bounds: 'reject' }));
    await s.engine.command(intent('web', to(6), { source: 'api', bounds: 'reject', dryRun: true }));
    await s.engine.idle();
    expect(s.exec.applies).toEqual([
      { op: 'apply', target: 'web', to: 5, dryRun: false, refreshFirst: true },
      { op: 'apply', target: 'web', to: 6, dryRun: true },
    ]);
  });

  it('a failed check is counted and tried again at the next interval', async () => {
    const s = await started({ targets: [watched()], values: { web: 3 } });
    s.exec.failRead('web', new Error('backend unreachable'));
    await afterOneInterval(s);
    expect(s.messages).toContainEqual({ type: 'drift-check', target: 'web', outcome: 'failed' });
    await afterOneInterval(s);
    expect(s.messages.filter((m) => m.type === 'drift-check').map((m) => (m as { outcome: string }).outcome)).toEqual(['failed', 'clean']);
  });
});

describe('engine: drift, what the review found', () => {
  it('a pause set while a check runs survives the check, adopt included', async () => {
    const s = await started({ targets: [watched('adopt')], values: { web: 3 } });
    let open = (): void => {};
    s.exec.driftGate = new Promise<void>((resolve) => {
      open = resolve;
    });
    s.exec.values.set('web', 7);
    s.clock.advance(60_000);
    await s.exec.until(() => s.exec.calls.some((c) => c.op === 'checkDrift'));
    await s.engine.pause('web', { until: '2025-01-01T05:00:00.000Z', direction: 'both', reason: 'hold' });
    s.exec.driftGate = null;
    open();
    await s.engine.idle();
    expect((await s.engine.state('web'))?.pause).toMatchObject({ reason: 'hold' });
    expect(s.store.targets.get('web')?.pause).toMatchObject({ reason: 'hold' });
    expect((await s.engine.state('web'))?.current).toBe(7);
  });

  it('a value set by hand while the daemon was down is drift at the first check, not taken silently', async () => {
    const first = await started({ targets: [watched()], values: { web: 3 } });
    await first.engine.command(intent('web', to(4), { source: 'api', bounds: 'reject' }));
    await first.engine.idle();
    await first.engine.drain(0);
    expect(first.store.targets.get('web')).toMatchObject({ current: 4, applied: 4 });
    const s = await started({ targets: [watched()], values: { web: 9 }, store: first.store });
    await afterOneInterval(s);
    expect(s.exec.calls.filter((c) => c.op === 'checkDrift')).toHaveLength(1);
    expect(s.events().filter((e) => e.kind === 'drift')).toMatchObject([{ drift: { key: { expected: 4, actual: 9 } } }]);
  });

  it('a revert of a target with approval waits for a person', async () => {
    const s = await started({
      targets: [target('web', { drift: { every: 60_000, beforeScale: false, onDrift: 'revert' }, approval: { via: 'ops', timeout: 600_000 }, cooldown: { up: 0, down: 0 } })],
      values: { web: 3 },
    });
    s.exec.values.set('web', 7);
    await afterOneInterval(s);
    expect(s.events().map((e) => e.kind)).toEqual(['drift', 'awaiting-approval']);
    expect(s.exec.applies).toEqual([{ op: 'apply', target: 'web', to: 3, dryRun: true }]);
  });

  it('a revert held by a pause is said once, and done once the pause ends', async () => {
    const s = await started({ targets: [watched('revert')], values: { web: 3 } });
    await s.engine.pause('web', { until: new Date(s.clock.now() + 150_000).toISOString(), direction: 'both', reason: 'hold' });
    s.exec.values.set('web', 7);
    await afterOneInterval(s);
    await afterOneInterval(s);
    expect(s.exec.applies).toEqual([]);
    expect(s.events().filter((e) => e.kind === 'drift')).toHaveLength(1);
    await afterOneInterval(s);
    await afterOneInterval(s);
    expect(s.exec.values.get('web')).toBe(3);
  });

  it('a dry-run daemon reports a drift it would revert, and changes nothing', async () => {
    const s = await started({ targets: [watched('revert')], values: { web: 3 }, dryRun: true });
    s.exec.values.set('web', 7);
    await afterOneInterval(s);
    expect(s.events().map((e) => [e.kind, e.drift?.action])).toEqual([['drift', 'reported']]);
    expect(s.exec.applies).toEqual([]);
  });
});
