// The lease keeper (cluster/lease-keeper.ts) over an in-memory store shared by replicas: the
// other replicas are played through the store (a heartbeat, a lease taken), the database's time
// moves with `store.elapse`, the beats' timers with the fake clock, and the local monotonic
// clock follows the fake clock unless a test freezes the process past it (`suspend`).
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LeaseKeeper, type LeaseChange, type LeaseHolder } from '../../src/cluster/lease-keeper.js';
import { EventBus, type BusMessage } from '../../src/observe/bus.js';
import type { Fence } from '../../src/store/store.js';
import { settle } from '../support/engine.js';
import { FakeClock } from '../support/fake-clock.js';
import { FakeClusterStore } from '../support/fake-cluster-store.js';

const TTL = 30_000;
/** The local deadline's margin for this TTL: min(1 s, TTL / 10). */
const MARGIN = 1_000;
const SELF = 'r1';

/** What the engine would be: records what it is told, busy on the stacks the test says. */
class Holder implements LeaseHolder {
  readonly acquiredWith: string[][] = [];
  readonly lostWith: string[][] = [];
  readonly busyOn = new Set<string>();
  /** While set, `acquired` rejects with it (the store could not be read). */
  failure: Error | null = null;
  /** While set, `acquired` waits for it (a slow load of many stacks). */
  gate: Promise<void> | null = null;

  async acquired(stacks: readonly string[]): Promise<void> {
    this.acquiredWith.push([...stacks]);
    if (this.gate !== null) await this.gate;
    if (this.failure !== null) throw this.failure;
  }

  lost(stacks: readonly string[]): void {
    this.lostWith.push([...stacks]);
  }

  busy(stack: string): boolean {
    return this.busyOn.has(stack);
  }
}

interface Replica {
  keeper: LeaseKeeper;
  store: FakeClusterStore;
  clock: FakeClock;
  holder: Holder;
  messages: BusMessage[];
  /** The process is stopped for `ms` (SIGSTOP): the monotonic clock moves, no timer fires. */
  suspend(ms: number): void;
  /** Resolves after the next beat ends (its `cluster` message) and the one after is armed. */
  beaten(): Promise<void>;
  /** Starts the keeper and waits for its first beat (the one at start). */
  started(): Promise<void>;
  /** Time passes for everyone (database, timers, monotonic clock), and the beats due run. */
  pass(ms: number): Promise<void>;
  /** Leases counted as changed for `reason`, in all. */
  changed(reason: LeaseChange): number;
}

function replica(opts: { stacks: string[]; store?: FakeClusterStore; self?: string }): Replica {
  const store = opts.store ?? new FakeClusterStore();
  const clock = new FakeClock();
  const holder = new Holder();
  const bus = new EventBus((err) => {
    throw err;
  });
  const messages: BusMessage[] = [];
  bus.subscribe((m) => messages.push(m));
  let suspended = 0;
  const keeper = new LeaseKeeper({
    store,
    self: opts.self ?? SELF,
    startedAt: clock.iso(),
    stacks: opts.stacks,
    ttlMs: TTL,
    clock,
    logger: pino({ level: 'silent' }),
    bus,
    monotonic: () => clock.now() + suspended,
  });
  keeper.attach(holder);
  // The beat's last word is its `cluster` message; the next beat is armed right after it.
  const beaten = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const off = bus.subscribe((m) => {
        if (m.type !== 'cluster') return;
        off();
        resolve();
      });
    }).then(settle);
  return {
    keeper,
    store,
    clock,
    holder,
    messages,
    suspend: (ms) => {
      suspended += ms;
    },
    beaten,
    started: async () => {
      const first = beaten();
      keeper.start();
      clock.advance(0);
      await first;
    },
    pass: async (ms) => {
      const next = beaten();
      store.elapse(ms);
      clock.advance(ms);
      await next;
    },
    changed: (reason) => messages.reduce((n, m) => n + (m.type === 'lease-change' && m.reason === reason ? m.count : 0), 0),
  };
}

const STACKS = ['s1', 's2', 's3', 's4', 's5', 's6', 's7'];

describe('LeaseKeeper: taking a fair share', () => {
  it('alone on an empty table, the first beat (at start) takes every stack and tells the holder', async () => {
    const r = replica({ stacks: STACKS });
    await r.started();
    expect(r.store.heldBy(SELF)).toEqual(STACKS);
    expect(r.holder.acquiredWith.flat().sort()).toEqual(STACKS);
    for (const s of STACKS) expect(r.keeper.holds(s)).toBe(true);
    expect(r.changed('acquired')).toBe(7);
    expect(r.messages.at(-1)).toEqual({ type: 'cluster', held: 7, replicasLive: 1 });
  });

  it.each<[string, { others: string[]; draining?: string[]; gone?: string[] }, number]>([
    ['three replicas share 7 stacks: ceil(7/3) = 3 each', { others: ['r2', 'r3'] }, 3],
    ['a draining replica does not count', { others: ['r2', 'r3'], draining: ['r3'] }, 4],
    ['a replica unseen within the TTL does not count', { others: ['r2', 'r3'], gone: ['r3'] }, 4],
  ])('%s', async (_rule, { others, draining = [], gone = [] }, share) => {
    const store = new FakeClusterStore();
    for (const id of gone) store.seen(id);
    store.elapse(TTL);
    for (const id of others.filter((o) => !gone.includes(o))) store.seen(id, { draining: draining.includes(id) });
    const r = replica({ stacks: STACKS, store });
    await r.keeper.beat();
    expect(r.keeper.heldCount).toBe(share);
    expect(r.store.heldBy(SELF)).toHaveLength(share);
    expect(r.holder.acquiredWith.flat()).toHaveLength(share);
  });

  it('never takes a stack another replica holds, and ownerOf names who holds what', async () => {
    const store = new FakeClusterStore();
    store.seen('r2');
    store.grant('s2', 'r2', TTL);
    const r = replica({ stacks: ['s1', 's2', 's3'], store });
    expect(r.keeper.ownerOf('s2')).toBeNull();
    await r.keeper.beat();
    expect(r.store.holder('s2')).toBe('r2');
    expect(r.keeper.holds('s2')).toBe(false);
    expect(r.keeper.ownerOf('s2')).toBe('r2');
    expect(r.keeper.ownerOf('s1')).toBe(SELF);
    expect(r.keeper.ownerOf('s3')).toBe(SELF);
    expect((await r.keeper.view()).leases.map((l) => [l.stack, l.owner])).toEqual([
      ['s1', SELF],
      ['s2', 'r2'],
      ['s3', SELF],
    ]);
  });

  it('when a replica joins, surplus idle stacks are released at the next beat, never a busy one', async () => {
    const r = replica({ stacks: ['s1', 's2', 's3', 's4'] });
    await r.keeper.beat();
    expect(r.keeper.heldCount).toBe(4);
    r.store.seen('r2');
    for (const s of ['s1', 's2', 's3']) r.holder.busyOn.add(s);
    await r.keeper.beat();
    // The fair share is 2, but only s4 is idle: the busy ones stay until they are idle.
    expect(r.store.heldBy(SELF)).toEqual(['s1', 's2', 's3']);
    expect(r.holder.lostWith).toEqual([['s4']]);
    expect(r.keeper.holds('s4')).toBe(false);
    expect(r.changed('released')).toBe(1);
    r.holder.busyOn.delete('s2');
    await r.keeper.beat();
    expect(r.store.heldBy(SELF)).toEqual(['s1', 's3']);
    expect(r.changed('released')).toBe(2);
    // Released means free at once: the newcomer takes them at its beat, not after the TTL.
    const r2 = replica({ stacks: ['s1', 's2', 's3', 's4'], store: r.store, self: 'r2' });
    await r2.keeper.beat();
    expect(r.store.heldBy('r2')).toEqual(['s2', 's4']);
  });
});

describe('LeaseKeeper: keeping leases', () => {
  it('beats every third of the TTL: leases stay held however long it runs', async () => {
    const r = replica({ stacks: ['s1', 's2'] });
    await r.started();
    for (let i = 0; i < 9; i++) await r.pass(TTL / 3);
    expect(r.store.heldBy(SELF)).toEqual(['s1', 's2']);
    expect(r.keeper.holds('s1')).toBe(true);
    expect(r.store.clusterCalls.filter((c) => c === 'renewLeases')).toHaveLength(9);
    // Renewed, never acquired again: the epoch is the first one.
    expect(r.keeper.fence('s1')).toEqual({ stack: 's1', owner: SELF, epoch: 1 });
    expect(r.changed('acquired')).toBe(2);
  });

  it('a lease another replica took is lost at the next renewal: the holder is told, nothing more acts on it', async () => {
    const r = replica({ stacks: ['s1', 's2'] });
    await r.keeper.beat();
    r.store.grant('s1', 'r2', TTL);
    await r.keeper.beat();
    expect(r.holder.lostWith).toEqual([['s1']]);
    expect(r.keeper.holds('s1')).toBe(false);
    expect(r.keeper.holds('s2')).toBe(true);
    expect(r.changed('lost')).toBe(1);
    expect(r.keeper.ownerOf('s1')).toBe('r2');
    expect(r.messages.at(-1)).toEqual({ type: 'cluster', held: 1, replicasLive: 1 });
  });

  it('the fence carries the epoch acquired, which rises when the stack is acquired again', async () => {
    const r = replica({ stacks: ['s1'] });
    expect(r.keeper.fence('s1')).toEqual({ stack: 's1', owner: SELF, epoch: 0 });
    await r.keeper.beat();
    expect(r.keeper.fence('s1')).toEqual({ stack: 's1', owner: SELF, epoch: 1 });
    // No beat for longer than the TTL: the lease lapsed in the database's time.
    r.store.elapse(TTL);
    await r.keeper.beat();
    expect(r.changed('lost')).toBe(1);
    expect(r.keeper.holds('s1')).toBe(true);
    expect(r.keeper.fence('s1')).toEqual({ stack: 's1', owner: SELF, epoch: 2 });
    expect(r.store.leases.get('s1')?.epoch).toBe(2);
  });

  it('a fenced write refused (refused) steps down from that stack at once', async () => {
    const r = replica({ stacks: ['s1', 's2'] });
    await r.keeper.beat();
    const fence = r.keeper.fence('s1') as Fence;
    // A refusal of an epoch not held (an older operation's) changes nothing.
    r.keeper.refused({ ...fence, epoch: fence.epoch - 1 });
    expect(r.keeper.holds('s1')).toBe(true);
    r.keeper.refused(fence);
    expect(r.keeper.holds('s1')).toBe(false);
    expect(r.holder.lostWith).toEqual([['s1']]);
    expect(r.changed('lost')).toBe(1);
    // Refused twice (two writes in flight): counted once.
    r.keeper.refused(fence);
    expect(r.changed('lost')).toBe(1);
  });

  it('a holder that cannot load the state of acquired stacks gives them back', async () => {
    const r = replica({ stacks: ['s1', 's2'] });
    r.holder.failure = new Error('the store could not be read');
    await r.keeper.beat();
    expect(r.holder.acquiredWith.flat().sort()).toEqual(['s1', 's2']);
    expect(r.keeper.heldCount).toBe(0);
    expect(r.keeper.holds('s1')).toBe(false);
    expect(r.store.heldBy(SELF)).toEqual([]);
    expect(r.changed('released')).toBe(2);
    r.holder.failure = null;
    await r.keeper.beat();
    expect(r.store.heldBy(SELF)).toEqual(['s1', 's2']);
  });
});

describe('LeaseKeeper: when it cannot know', () => {
  it('a beat that cannot reach the store steps down from every stack, and takes them again once it can', async () => {
    const r = replica({ stacks: ['s1', 's2', 's3'] });
    await r.started();
    const epoch = r.keeper.fence('s1')?.epoch ?? 0;
    r.store.cutOff(true);
    await r.pass(TTL / 3);
    expect(r.keeper.heldCount).toBe(0);
    for (const s of ['s1', 's2', 's3']) expect(r.keeper.holds(s)).toBe(false);
    expect(r.holder.lostWith.flat().sort()).toEqual(['s1', 's2', 's3']);
    expect(r.changed('store-unavailable')).toBe(3);
    expect(r.messages.at(-1)).toMatchObject({ type: 'cluster', held: 0 });
    r.store.cutOff(false);
    // Back at the next beat: its rows were still its own, at the same epoch, so it renews them
    // rather than waiting a TTL for them to lapse; and takes them up again from the store.
    await r.pass(TTL / 3);
    expect(r.store.heldBy(SELF)).toEqual(['s1', 's2', 's3']);
    expect(r.keeper.holds('s1')).toBe(true);
    expect(r.keeper.fence('s1')?.epoch).toBe(epoch);
    expect(r.holder.acquiredWith.flat().filter((s) => s === 's1')).toHaveLength(2);
  });

  it('alone it tells nobody of inputs; once it sees another replica it tells them again, before it gives any stack up', async () => {
    const r = replica({ stacks: ['s1', 's2'] });
    await r.keeper.beat();
    expect(r.keeper.alone).toBe(true);
    expect(r.store.notifying).toBe(false);
    const notifyingAtRelease: boolean[] = [];
    const release = r.store.releaseLeases.bind(r.store);
    r.store.releaseLeases = async (held) => {
      notifyingAtRelease.push(r.store.notifying);
      return release(held);
    };
    r.store.seen('r2');
    await r.keeper.beat();
    expect(r.keeper.alone).toBe(false);
    expect(r.store.heldBy(SELF)).toHaveLength(1);
    expect(notifyingAtRelease).toEqual([true]);
    // Not knowing who else there is (the store cannot be reached), it tells everyone.
    r.store.cutOff(true);
    r.store.notifying = false;
    await r.keeper.beat();
    expect(r.store.notifying).toBe(true);
  });

  it("the beats, and so the renewals, never wait for the engine's load of acquired stacks", async () => {
    const r = replica({ stacks: ['s1', 's2'] });
    let open = (): void => undefined;
    r.holder.gate = new Promise<void>((resolve) => (open = resolve));
    await r.started();
    expect(r.holder.acquiredWith.flat().sort()).toEqual(['s1', 's2']);
    // Two TTLs of beats while the load is still under way: every lease is renewed each time.
    for (let i = 0; i < 6; i++) await r.pass(TTL / 3);
    expect(r.keeper.holds('s1')).toBe(true);
    expect(r.store.heldBy(SELF)).toEqual(['s1', 's2']);
    open();
    // A hand-over waits for the load before it releases.
    await r.keeper.handOver();
    expect(r.store.heldBy(SELF)).toEqual([]);
  });

  it('after an outage longer than the TTL, its lapsed leases are taken again at a higher epoch', async () => {
    const r = replica({ stacks: ['s1', 's2', 's3'] });
    await r.keeper.beat();
    const epoch = r.keeper.fence('s1')?.epoch ?? 0;
    r.store.cutOff(true);
    await r.keeper.beat();
    expect(r.keeper.heldCount).toBe(0);
    r.store.elapse(TTL);
    r.store.cutOff(false);
    await r.keeper.beat();
    await r.keeper.beat();
    expect(r.store.heldBy(SELF)).toEqual(['s1', 's2', 's3']);
    expect(r.keeper.fence('s1')?.epoch).toBeGreaterThan(epoch);
  });

  it('a replica stopped past its TTL (SIGSTOP) acts on nothing before its next renewal, even with no beat', async () => {
    const r = replica({ stacks: ['s1', 's2'] });
    await r.keeper.beat();
    r.suspend(TTL - MARGIN - 1);
    expect(r.keeper.holds('s1')).toBe(true);
    r.suspend(1);
    expect(r.keeper.holds('s1')).toBe(false);
    expect(r.keeper.holds('s2')).toBe(false);
    expect(r.keeper.ownerOf('s1')).toBeNull();
    // Resumed, its lease was still its own in the database: the renewal lets it act again.
    await r.keeper.beat();
    expect(r.keeper.holds('s1')).toBe(true);
    expect(r.keeper.fence('s1')?.epoch).toBe(1);
  });

  it('resumed after another replica took its stack, it stays stepped down', async () => {
    const r = replica({ stacks: ['s1'] });
    await r.keeper.beat();
    r.suspend(TTL);
    r.store.elapse(TTL);
    r.store.seen('r2');
    r.store.grant('s1', 'r2', TTL);
    expect(r.keeper.holds('s1')).toBe(false);
    await r.keeper.beat();
    expect(r.keeper.holds('s1')).toBe(false);
    expect(r.holder.lostWith).toEqual([['s1']]);
    expect(r.keeper.ownerOf('s1')).toBe('r2');
  });
});

describe('LeaseKeeper: leaving', () => {
  it('drain heartbeats draining at once and gives idle stacks up, keeping busy ones until the hand-over', async () => {
    const r = replica({ stacks: ['s1', 's2', 's3'] });
    await r.started();
    r.holder.busyOn.add('s2');
    const drained = r.beaten();
    r.keeper.drain();
    r.clock.advance(0);
    await drained;
    expect(r.store.replicas.get(SELF)?.draining).toBe(true);
    expect(r.store.heldBy(SELF)).toEqual(['s2']);
    expect(r.holder.lostWith.flat().sort()).toEqual(['s1', 's3']);
    expect(r.keeper.ownerOf('s1')).toBeNull();
    expect(r.messages.at(-1)).toEqual({ type: 'cluster', held: 1, replicasLive: 0 });
    // Draining, it takes nothing back at later beats.
    await r.pass(TTL / 3);
    expect(r.store.heldBy(SELF)).toEqual(['s2']);
    await r.keeper.handOver();
    expect(r.store.heldBy(SELF)).toEqual([]);
    expect(r.keeper.holds('s2')).toBe(false);
    expect(r.changed('released')).toBe(3);
    // Handed over: no beat any more.
    const calls = r.store.clusterCalls.length;
    r.clock.advance(3 * TTL);
    expect(r.clock.pendingTimers).toBe(0);
    expect(r.store.clusterCalls).toHaveLength(calls);
  });

  it('a drain asked while a beat runs is said by a beat of its own right after it', async () => {
    const r = replica({ stacks: ['s1', 's2'] });
    const first = r.beaten();
    void r.keeper.beat();
    r.keeper.drain();
    r.clock.advance(0);
    await first;
    await settle();
    // The beat under way said "not draining" before the drain; a second one says it.
    expect(r.messages.filter((m) => m.type === 'cluster')).toHaveLength(2);
    expect(r.store.replicas.get(SELF)?.draining).toBe(true);
    expect(r.store.heldBy(SELF)).toEqual([]);
  });

  it('the hand-over says draining last, even when no beat said it before', async () => {
    const r = replica({ stacks: ['s1', 's2'] });
    await r.keeper.beat();
    expect(r.store.replicas.get(SELF)?.draining).toBe(false);
    await r.keeper.handOver();
    expect(r.store.heldBy(SELF)).toEqual([]);
    expect(r.store.replicas.get(SELF)?.draining).toBe(true);
  });

  it('another replica counts a draining one out and takes what it gave up', async () => {
    const store = new FakeClusterStore();
    const a = replica({ stacks: ['s1', 's2'], store, self: 'r1' });
    const b = replica({ stacks: ['s1', 's2'], store, self: 'r2' });
    await a.keeper.beat();
    await b.keeper.beat();
    expect(store.heldBy('r1')).toHaveLength(2);
    expect(store.heldBy('r2')).toHaveLength(0);
    a.keeper.drain();
    await a.keeper.beat();
    await b.keeper.beat();
    expect(store.heldBy('r2')).toEqual(['s1', 's2']);
    expect(b.messages.at(-1)).toEqual({ type: 'cluster', held: 2, replicasLive: 1 });
  });

  it('stopped while a beat runs, it arms no further beat', async () => {
    const r = replica({ stacks: ['s1'] });
    const first = r.beaten();
    r.keeper.start();
    r.clock.advance(0);
    r.keeper.stop();
    await first;
    expect(r.clock.pendingTimers).toBe(0);
  });

  it('stop ends the beats without releasing: the leases lapse after their TTL', async () => {
    const r = replica({ stacks: ['s1'] });
    await r.started();
    r.keeper.stop();
    r.clock.advance(TTL);
    expect(r.clock.pendingTimers).toBe(0);
    expect(r.store.holder('s1')).toBe(SELF);
    r.store.elapse(TTL);
    expect(r.store.holder('s1')).toBeNull();
    expect(r.changed('released')).toBe(0);
  });
});
