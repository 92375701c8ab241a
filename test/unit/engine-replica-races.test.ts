// Replicas racing one another over a target's inputs: approvals decided on a replica that does
// not hold the stack (compare-and-set, recorded once by whoever holds it, even after a hand-over),
// expired signals another replica refreshed, and a reload that reads the store while the holder
// takes a delivery.
import { describe, expect, it } from 'vitest';
import { intent, signal, started, target, to } from '../support/engine.js';
import { FakeClusterStore } from '../support/fake-cluster-store.js';
import { HandLeases } from '../support/hand-leases.js';

const TTL = 30_000;
const WEB = target('web').stackKey;

async function replica(opts: { targets: ReturnType<typeof target>[]; hold?: string[]; store: FakeClusterStore; self?: string }) {
  const leases = new HandLeases(opts.store, opts.self, TTL);
  for (const stack of opts.hold ?? []) leases.take(stack);
  const s = await started({ targets: opts.targets, values: { web: 3 }, store: opts.store, ownership: leases });
  return { ...s, leases };
}

const guarded = target('web', { approval: { via: 'ops-slack', timeout: 60_000 }, cooldown: { up: 30_000, down: 30_000 } });
const alice = { name: 'alice', id: 'U1', via: 'slack' as const };

/**
 * A holder `r1` whose alert-driven change waits for approval, and a replica `r2` not holding
 * the stack that has read the store since (as its ticks do): the approval's id.
 */
async function pendingApproval(store: FakeClusterStore) {
  const holder = await replica({ store, hold: [WEB], targets: [guarded] });
  const other = await replica({ store, self: 'r2', targets: [guarded] });
  await holder.engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
  await holder.engine.idle();
  const id = holder.events().find((e) => e.kind === 'awaiting-approval')?.approval?.id as string;
  other.engine.reloadAll();
  await other.engine.idle();
  return { holder, other, id };
}

describe('approvals decided on a replica not holding the stack', () => {
  it.each(['approve', 'reject'] as const)('a person may %s on a replica that does not hold the stack; the holder acts on it once', async (verdict) => {
    const store = new FakeClusterStore();
    const { holder, other, id } = await pendingApproval(store);
    const decided = await other.engine.decideApproval(id, verdict, alice);
    expect(decided.status).toBe(verdict === 'approve' ? 'approved' : 'rejected');
    // The other replica wrote the decision alone: no event, no record.
    expect(other.events()).toEqual([]);
    holder.engine.inputsChanged(['web']);
    await holder.engine.idle();
    if (verdict === 'approve') {
      expect(holder.exec.applies.filter((a) => !a.dryRun)).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: false }]);
      expect(store.approvals.get(id)?.status).toBe('applied');
    } else {
      expect(holder.exec.applies.filter((a) => !a.dryRun)).toEqual([]);
      expect(holder.events().filter((e) => e.kind === 'skipped')).toHaveLength(1);
      expect(store.approvals.get(id)).toMatchObject({ status: 'rejected', decidedBy: { name: 'alice' } });
      expect((await holder.engine.state('web'))?.cooldownUntil.up).not.toBeNull();
    }
  });

  it('an expired approval clicked on a non-holder is refused there and writes nothing: the holder\'s value and a pause stay', async () => {
    const store = new FakeClusterStore();
    const holder = await replica({ store, hold: [WEB], targets: [guarded] });
    const other = await replica({ store, self: 'r2', targets: [guarded] });
    await holder.engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await holder.engine.idle();
    const id = holder.events().find((e) => e.kind === 'awaiting-approval')?.approval?.id as string;
    // r2's clock passes the approval's expiry (its ticks reload its mirror on the way).
    other.clock.advance(61_000);
    await other.engine.idle();
    // Meanwhile, on the holder: an operator's command runs (they run while an approval waits), and a pause is set.
    await holder.engine.command(intent('web', to(6), { source: 'api', bounds: 'reject' }));
    await holder.engine.idle();
    const pause = { until: holder.clock.iso(3_600_000), direction: 'both' as const, reason: 'maintenance' };
    await holder.engine.pause('web', pause);
    expect(store.targets.get('web')).toMatchObject({ current: 6, pause });
    // A person clicks on r2 (load balancer's choice): it finds the approval expired and closes it itself.
    await expect(other.engine.decideApproval(id, 'approve', alice)).rejects.toThrow();
    // Promised: only the holder writes the record; an acknowledged pause is never lost.
    expect(store.targets.get('web')?.current).toBe(6);
    expect(store.targets.get('web')?.pause).toEqual(pause);
  });

  it('a rejection written alone by a non-holder is recorded by the next holder when the stack changes hands first', async () => {
    const store = new FakeClusterStore();
    const { holder: r1, other: r2, id } = await pendingApproval(store);
    const decided = await r2.engine.decideApproval(id, 'reject', alice);
    expect(decided.status).toBe('rejected');
    // r1 dies before it hears of it; r3 takes the stack over.
    r1.leases.give(WEB);
    r1.engine.lost([WEB]);
    store.elapse(TTL);
    const r3 = await replica({ store, self: 'r3', targets: [guarded] });
    r3.leases.take(WEB);
    await r3.engine.acquired([WEB]);
    await r3.engine.idle();
    // Promised: "the holder records it and starts the cooldown": a skip and an up cooldown, no new request.
    expect(r3.events().filter((e) => e.kind === 'skipped')).toHaveLength(1);
    expect((await r3.engine.state('web'))?.cooldownUntil.up).not.toBeNull();
    expect(r3.events().filter((e) => e.kind === 'awaiting-approval')).toHaveLength(0);
  });

  it('a non-holder with a stale copy cannot overwrite an approval the holder already applied: 409', async () => {
    const store = new FakeClusterStore();
    const { holder, other, id } = await pendingApproval(store);
    // bob approves on the holder; it is applied.
    await holder.engine.decideApproval(id, 'approve', { name: 'bob', id: 'U2', via: 'slack' });
    await holder.engine.idle();
    expect(store.approvals.get(id)?.status).toBe('applied');
    // alice, a second later, rejects through r2, whose mirror still says pending (it reloads non-held targets only at its tick).
    const late = other.engine.decideApproval(id, 'reject', alice);
    // Promised: the approval is closed (409), and the history keeps "applied".
    await expect(late).rejects.toThrow();
    expect(store.approvals.get(id)?.status).toBe('applied');
  });
});

describe('ends of expired signals among replicas', () => {
  it('the holder does not end a signal another replica refreshed, even without word of it', async () => {
    const store = new FakeClusterStore();
    const holder = await replica({ store, hold: [WEB], targets: [target('web', { max: 3 })] });
    await holder.engine.signals({ upsert: [signal('web', 'cpu', 'up', { expiresAt: holder.clock.iso(14_000) })], end: [], events: [] });
    await holder.engine.idle();
    // Just before its expiry the alert is sent again, to another replica (a plain store write: the holder has not heard yet).
    await store.applySignals({ upsert: [signal('web', 'cpu', 'up', { expiresAt: holder.clock.iso(3_600_000), lastSeen: holder.clock.iso(13_000) })], end: [], events: [] });
    // The holder's next evaluation: it reloads "in case word was lost"... and ends the signal it had.
    holder.clock.advance(15_000);
    await holder.engine.idle();
    expect(store.signals.get('web') ?? []).toHaveLength(1);
    expect(store.events.filter((e) => e.kind === 'ignored')).toHaveLength(0);
  });

  it('a refresh another replica stores after the holder read the store, while its end is on the way, is kept, and the holder reads it back', async () => {
    const store = new FakeClusterStore();
    const holder = await replica({ store, hold: [WEB], targets: [target('web', { max: 3 })] });
    await holder.engine.signals({ upsert: [signal('web', 'cpu', 'up', { expiresAt: holder.clock.iso(14_000) })], end: [], events: [] });
    await holder.engine.idle();
    const refreshed = signal('web', 'cpu', 'up', { expiresAt: holder.clock.iso(3_600_000), lastSeen: holder.clock.iso(14_500) });
    const write = store.applySignals.bind(store);
    store.applySignals = async (change) => {
      // The other replica's write commits first, between the holder's reload and its end.
      if (change.end.length > 0) await write({ upsert: [refreshed], end: [], events: [] });
      return write(change);
    };
    holder.clock.advance(15_000);
    await holder.engine.idle();
    expect(store.signals.get('web')).toEqual([refreshed]);
    expect((await holder.engine.state('web'))?.signals).toEqual([expect.objectContaining({ id: 'cpu', lastSeen: refreshed.lastSeen })]);
  });
});

describe('#reload racing the holder\'s own signal writes', () => {
  it('a delivery that reaches memory while a reload reads the store is not undone by it', async () => {
    // A real database answers the snapshot's reads at its own pace: the approvals come last.
    class Slow extends FakeClusterStore {
      approvalsGate: Promise<void> | null = null;
      override async listApprovals(q: Parameters<FakeClusterStore['listApprovals']>[0]) {
        if (this.approvalsGate !== null) await this.approvalsGate;
        return super.listApprovals(q);
      }
    }
    const store = new Slow();
    const holder = await replica({ store, hold: [WEB], targets: [target('web', { max: 3 })] });
    await holder.engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await holder.engine.idle();
    let open = (): void => undefined;
    store.approvalsGate = new Promise<void>((r) => (open = r));
    // A reload reads the signals (cpu among them), then waits for the approvals...
    holder.engine.inputsChanged(['web']);
    await new Promise((r) => setImmediate(r));
    // ...while the holder takes the end of cpu and a new alert.
    await holder.engine.signals({ upsert: [signal('web', 'mem')], end: [{ target: 'web', id: 'cpu' }], events: [] });
    store.approvalsGate = null;
    open();
    await holder.engine.idle();
    expect((await holder.engine.state('web'))?.signals.map((s) => s.id)).toEqual(['mem']);
  });
});
