import { describe, expect, it } from 'vitest';
import { GUARD_HOLD_MS, guardRefusal } from '../../src/engine/operation.js';
import { intent, signal, started, target, to } from '../support/engine.js';

const guarded = (guard: { maxReplace?: number; maxDelete?: number } = { maxReplace: 0, maxDelete: 0 }) => target('web', { guard });

describe('the preview guard', () => {
  it.each<[string, { maxReplace?: number; maxDelete?: number }, Record<string, number>, RegExp | null]>([
    ['an update passes', { maxReplace: 0, maxDelete: 0 }, { update: 2, same: 3 }, null],
    ['one replace over maxReplace 0 is refused', { maxReplace: 0 }, { replace: 1 }, /replace 1 resource\(s\) \(guard.maxReplace 0\)/],
    ['a replace within maxReplace passes', { maxReplace: 1 }, { replace: 1 }, null],
    ['a delete over maxDelete is refused', { maxDelete: 0 }, { delete: 2 }, /delete 2 resource\(s\)/],
    ['both over are both said', { maxReplace: 0, maxDelete: 0 }, { replace: 1, delete: 1 }, /replace 1 .* and delete 1/],
    ['an unset limit is no limit', { maxDelete: 0 }, { replace: 9 }, null],
  ])('%s', (_name, guard, changes, refusal) => {
    const why = guardRefusal(guarded(guard), changes);
    if (refusal === null) expect(why).toBeNull();
    else expect(why).toMatch(refusal);
  });

  it('a change whose preview is within the limits is previewed, then applied', async () => {
    const { engine, exec, events } = await started({ targets: [guarded()], values: { web: 3 } });
    await engine.command(intent('web', to(5), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    expect(exec.applies).toEqual([
      { op: 'apply', target: 'web', to: 5, dryRun: true },
      { op: 'apply', target: 'web', to: 5, dryRun: false },
    ]);
    expect(events().at(-1)).toMatchObject({ kind: 'changed', from: 3, to: 5 });
  });

  it('a change whose preview would replace a resource is not applied, and the skip carries the preview', async () => {
    const { engine, exec, events } = await started({ targets: [guarded()], values: { web: 3 } });
    exec.changes.set('web', { replace: 1, same: 2 });
    await engine.command(intent('web', to(5), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 5, dryRun: true }]);
    expect(exec.values.get('web')).toBe(3);
    expect(events().at(-1)).toMatchObject({ kind: 'skipped', skipReason: 'guard', from: 3, preview: { replace: 1, same: 2 } });
    expect((await engine.state('web'))?.pendingCount).toBe(0);
  });

  it('an alert-driven change the guard refused is not previewed again at every evaluation', async () => {
    const { engine, exec, clock, events } = await started({ targets: [guarded()], values: { web: 3 } });
    exec.changes.set('web', { delete: 1 });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    clock.advance(60_000);
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: true }]);
    expect(events().filter((e) => e.skipReason === 'guard')).toHaveLength(1);
    // An operator's command still goes through its own guard check.
    exec.changes.set('web', { update: 1 });
    await engine.command(intent('web', to(6), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    expect(events()).toContainEqual(expect.objectContaining({ kind: 'changed', from: 3, to: 6, source: 'api' }));
  });

  it('a dry-run daemon previews once, without a second guard preview', async () => {
    const { engine, exec } = await started({ targets: [guarded()], values: { web: 3 }, dryRun: true });
    exec.changes.set('web', { replace: 1 });
    await engine.command(intent('web', to(5), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 5, dryRun: true }]);
  });

  it('the hold on a refused change ends after a while, so a stack fixed meanwhile is tried again', async () => {
    const { engine, exec, clock } = await started({ targets: [target('web', { guard: { maxReplace: 0 }, cooldown: { up: 0, down: 0 } })], values: { web: 3 } });
    exec.changes.set('web', { replace: 1 });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    exec.changes.set('web', { update: 1 });
    clock.advance(GUARD_HOLD_MS);
    await engine.idle();
    expect(exec.applies.slice(0, 3)).toEqual([
      { op: 'apply', target: 'web', to: 4, dryRun: true },
      { op: 'apply', target: 'web', to: 4, dryRun: true },
      { op: 'apply', target: 'web', to: 4, dryRun: false },
    ]);
  });
});

