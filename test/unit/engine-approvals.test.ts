import { describe, expect, it } from 'vitest';
import type { Actor } from '../../src/types.js';
import { intent, setup, signal, started, target, to } from '../support/engine.js';
import { MemoryStore } from '../support/memory-store.js';
import { makeApproval } from './store-fixtures.js';

const alice: Actor = { via: 'slack', id: 'U1', name: 'alice' };
const guarded = (over = {}) => target('web', { approval: { via: 'ops-slack', timeout: 60_000 }, cooldown: { up: 30_000, down: 30_000 }, ...over });

describe('engine: approvals', () => {
  it('an alert-driven change is previewed and waits for a person instead of being applied', async () => {
    const { engine, exec, store, events } = await started({ targets: [guarded()], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: true }]);
    expect(exec.values.get('web')).toBe(3);
    const [waiting] = events();
    expect(waiting).toMatchObject({ kind: 'awaiting-approval', from: 3, to: 4, approval: { status: 'pending', via: 'ops-slack', expiresAt: '2025-01-01T00:01:00.000Z' } });
    const approval = store.approvals.get(waiting?.approval?.id ?? '');
    expect(approval).toMatchObject({ status: 'pending', from: 3, to: 4, target: 'web' });
    // Waiting, it does not ask again at every evaluation.
    await engine.signals({ upsert: [signal('web', 'mem')], end: [], events: [] });
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
  });

  it('approved, the next operation applies exactly the previewed change and says who approved it', async () => {
    const { engine, exec, store, events } = await started({ targets: [guarded()], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    const id = events()[0]?.approval?.id ?? '';
    const decided = await engine.decideApproval(id, 'approve', alice);
    expect(decided).toMatchObject({ status: 'approved', decidedBy: alice });
    await engine.idle();
    expect(exec.applies.at(-1)).toEqual({ op: 'apply', target: 'web', to: 4, dryRun: false });
    expect(events().at(-1)).toMatchObject({ kind: 'changed', from: 3, to: 4, approval: { id, status: 'applied' } });
    expect(events().at(-1)?.reason).toContain('approved by alice');
    expect(store.approvals.get(id)?.status).toBe('applied');
    // Used once: deciding again is refused.
    await expect(engine.decideApproval(id, 'approve', alice)).rejects.toMatchObject({ code: 'PS_APPROVAL_CLOSED', status: 409 });
  });

  it('when the stack moved since the preview, approving asks again rather than applying a stale change', async () => {
    const { engine, exec, store, events } = await started({ targets: [guarded()], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    const first = events()[0]?.approval?.id ?? '';
    exec.values.set('web', 7); // someone ran pulumi config set + up by hand
    await engine.decideApproval(first, 'approve', alice);
    await engine.idle();
    expect(exec.applies.filter((a) => !a.dryRun)).toEqual([]);
    expect(store.approvals.get(first)?.status).toBe('superseded');
    expect(events().at(-1)).toMatchObject({ kind: 'awaiting-approval', from: 7, to: 8, approval: { status: 'pending' } });
  });

  it('rejected, a skip is recorded and the cooldown holds the same request back', async () => {
    const { engine, exec, clock, events } = await started({ targets: [guarded()], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    const id = events()[0]?.approval?.id ?? '';
    await engine.decideApproval(id, 'reject', alice);
    await engine.idle();
    expect(events().at(-1)).toMatchObject({ kind: 'skipped', skipReason: 'rejected', from: 3, evidence: { actor: alice }, approval: { id, status: 'rejected' } });
    expect(exec.applies).toHaveLength(1);
    expect((await engine.state('web'))?.cooldownUntil.up).toBe('2025-01-01T00:00:30.000Z');
    // After the cooldown, the alert still firing asks again.
    clock.advance(30_000);
    await engine.idle();
    expect(events().at(-1)).toMatchObject({ kind: 'awaiting-approval', to: 4 });
  });

  it('not decided in time, it expires as a skip with approval-expired', async () => {
    const { engine, clock, store, events } = await started({ targets: [guarded()], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    const id = events()[0]?.approval?.id ?? '';
    clock.advance(60_000);
    await engine.idle();
    expect(events().at(-1)).toMatchObject({ kind: 'skipped', skipReason: 'approval-expired', approval: { id, status: 'expired' } });
    expect(store.approvals.get(id)?.status).toBe('expired');
    await expect(engine.decideApproval(id, 'approve', alice)).rejects.toMatchObject({ code: 'PS_APPROVAL_CLOSED' });
  });

  it("an operator's command does not wait for approval, even while a request is pending", async () => {
    const { engine, exec, events } = await started({ targets: [guarded()], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    await engine.command(intent('web', to(6), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    expect(exec.applies.at(-1)).toEqual({ op: 'apply', target: 'web', to: 6, dryRun: false });
    expect(events().at(-1)).toMatchObject({ kind: 'changed', from: 3, to: 6 });
  });

  it("a schedule's command waits for approval and is consumed when rejected", async () => {
    const { engine, exec, store, events } = await started({ targets: [guarded()], values: { web: 3 } });
    const fire = intent('web', to(9), { source: 'schedule', bounds: 'clamp', evidence: { schedule: { name: 'morning' } } });
    await engine.command(fire);
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 9, dryRun: true }]);
    const waiting = events().at(-1);
    expect(waiting).toMatchObject({ kind: 'awaiting-approval', to: 9 });
    expect(store.commands.get('web')?.map((c) => c.id)).toEqual([fire.id]);
    await engine.decideApproval(waiting?.approval?.id ?? '', 'reject', alice);
    await engine.idle();
    expect(store.commands.get('web')).toBeUndefined();
    expect((await engine.state('web'))?.pendingCount).toBe(0);
  });

  it('an unknown approval id is PS_APPROVAL_UNKNOWN', async () => {
    const { engine } = await started({ targets: [guarded()], values: { web: 3 } });
    await expect(engine.decideApproval('nope', 'approve', alice)).rejects.toMatchObject({ code: 'PS_APPROVAL_UNKNOWN', status: 404 });
  });

  it('a pending approval survives a restart, and approving it after the restart applies it', async () => {
    const store = new MemoryStore();
    const first = await started({ targets: [guarded()], values: { web: 3 }, store });
    await first.engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await first.engine.idle();
    const id = first.events()[0]?.approval?.id ?? '';
    await first.engine.drain(0);
    const second = setup({ targets: [guarded()], values: { web: 3 }, store });
    await second.engine.start();
    await second.engine.idle();
    // Still waiting: the restart neither applied it nor asked again.
    expect(second.exec.applies).toEqual([]);
    await second.engine.decideApproval(id, 'approve', alice);
    await second.engine.idle();
    expect(second.exec.applies.at(-1)).toEqual({ op: 'apply', target: 'web', to: 4, dryRun: false });
  });

  it('a dry-run daemon previews as before and asks no one', async () => {
    const { engine, exec, store, events } = await started({ targets: [guarded()], values: { web: 3 }, dryRun: true });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: true }]);
    expect(events().at(-1)?.kind).toBe('previewed');
    expect(store.approvals.size).toBe(0);
  });
});

describe('engine: approvals, what the review found', () => {
  it('an approval given after the alert resolved is used up at once, not kept for a later alert', async () => {
    const { engine, exec, store, events } = await started({ targets: [guarded()], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    const id = events()[0]?.approval?.id ?? '';
    await engine.signals({ upsert: [], end: [{ target: 'web', id: 'cpu' }], events: [] });
    await engine.decideApproval(id, 'approve', alice);
    await engine.idle();
    expect(store.approvals.get(id)?.status).toBe('superseded');
    // A new alert later asks again rather than riding on the old approval.
    await engine.signals({ upsert: [signal('web', 'cpu2')], end: [], events: [] });
    await engine.idle();
    expect(exec.applies.filter((a) => !a.dryRun)).toEqual([]);
    expect(events().at(-1)).toMatchObject({ kind: 'awaiting-approval', to: 4 });
  });

  it("a person's command behind a schedule's waiting command runs at once, and rejecting the request does not drop it", async () => {
    const { engine, exec, store, events } = await started({ targets: [guarded()], values: { web: 3 } });
    await engine.command(intent('web', to(9), { source: 'schedule', bounds: 'clamp', evidence: { schedule: { name: 'morning' } } }));
    await engine.idle();
    const waiting = events().at(-1);
    const mine = intent('web', to(12), { source: 'api', bounds: 'reject' });
    await engine.command(mine);
    await engine.idle();
    expect(exec.applies.at(-1)).toEqual({ op: 'apply', target: 'web', to: 12, dryRun: false });
    expect(events().at(-1)).toMatchObject({ kind: 'changed', from: 3, to: 12, commands: [mine.id] });
    await engine.decideApproval(waiting?.approval?.id ?? '', 'reject', alice);
    await engine.idle();
    expect(store.commands.get('web')).toBeUndefined();
    expect(exec.values.get('web')).toBe(12);
  });

  it('a rejected move into the bounds is not asked for again until the value or the bounds change', async () => {
    const { engine, exec, events } = await started({ targets: [guarded({ min: 5 })], values: { web: 3 } });
    await engine.idle();
    const request = events().at(-1);
    expect(request).toMatchObject({ kind: 'awaiting-approval', from: 3, to: 5 });
    await engine.decideApproval(request?.approval?.id ?? '', 'reject', alice);
    await engine.idle();
    expect(events().at(-1)).toMatchObject({ kind: 'skipped', skipReason: 'rejected' });
    expect(exec.applies).toHaveLength(1);
  });

  it('open approvals of a target that no longer asks for approval are closed at start', async () => {
    const store = new MemoryStore();
    const first = await started({ targets: [guarded()], values: { web: 3 }, store });
    await first.engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await first.engine.idle();
    const id = first.events()[0]?.approval?.id ?? '';
    await first.engine.drain(0);
    const second = setup({ targets: [target('web')], values: { web: 3 }, store });
    await second.engine.start();
    expect(store.approvals.get(id)?.status).toBe('superseded');
  });
});

describe('engine: an approved change cut off after its up succeeded', () => {
  it('is recorded at the next start without a second up, and its approval is applied', async () => {
    const store = new MemoryStore();
    const approval = makeApproval({ target: 'web', status: 'approved', from: 3, to: 4, decidedBy: { via: 'api', id: 'api', name: 'api' } });
    await store.saveApproval(approval);
    await store.startOperation('web', { kind: 'signals', commandIds: [], dryRun: false, startedAt: '2025-01-01T00:00:00.000Z', applying: { from: 3, to: 4 } });
    const s = setup({ targets: [guarded()], values: { web: 4 }, store });
    s.exec.deployed.set('web', 4);
    await s.engine.start();
    await s.engine.idle();
    expect(s.exec.applies.filter((a) => !a.dryRun)).toEqual([]);
    expect(s.events()).toMatchObject([{ kind: 'changed', from: 3, to: 4, approval: { id: approval.id, status: 'applied' } }]);
    expect(store.approvals.get(approval.id)?.status).toBe('applied');
  });
});
