// The engine among replicas (engine/ownership.ts): it acts only on the stacks it holds, proves
// it on every write of its own with the fence, gives up a write the store refused for a lost
// lease, takes up the work of a stack it acquires from the store, and reloads the inputs other
// replicas wrote. The leases are a fake Ownership over the in-memory store shared by replicas,
// whose fenced writes refuse as PostgreSQL does.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LeaseKeeper } from '../../src/cluster/lease-keeper.js';
import { keepWatching } from '../../src/cluster/watch.js';
import type { Engine } from '../../src/engine/engine.js';
import type { RunningOperation, TargetRecord } from '../../src/types.js';
import { EventBus } from '../../src/observe/bus.js';
import { intent, setup, signal, started, target, to } from '../support/engine.js';
import { FakeClock } from '../support/fake-clock.js';
import { FakeClusterStore } from '../support/fake-cluster-store.js';
import { HandLeases } from '../support/hand-leases.js';

const TTL = 30_000;
const WEB = target('web').stackKey;

/** A replica `r1` on a fresh shared store, holding the stacks of `hold`, started. */
async function replica(opts: { targets?: ReturnType<typeof target>[]; values?: Record<string, number>; hold?: string[]; store?: FakeClusterStore; self?: string } = {}) {
  const store = opts.store ?? new FakeClusterStore();
  const leases = new HandLeases(store, opts.self, TTL);
  for (const stack of opts.hold ?? []) leases.take(stack);
  const s = await started({ targets: opts.targets ?? [target('web')], values: opts.values ?? { web: 3 }, store, ownership: leases });
  return { ...s, store, leases };
}

/** An input taken by any replica. */
type Input = (engine: Engine) => Promise<unknown>;
const aCommand: Input = (engine) => engine.command(intent('web'));
const aSignal: Input = (engine) => engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });

/** The Store methods the engine calls for writes of its own about a target (never for inputs). */
const OWN_WRITES = ['startOperation', 'markApplying', 'finishOperation', 'saveTarget', 'appendEvent', 'claimFire', 'saveApproval'] as const;

describe('engine among replicas: acting only on held stacks', () => {
  it.each<[string, Input]>([
    ['a queued command', aCommand],
    ['an active signal', aSignal],
  ])('a stack not held is never acted on, even with %s; acquired, its work runs', async (_input, input) => {
    const { engine, exec, store, clock, leases, events } = await replica({ targets: [target('web', { max: 4 })] });
    await input(engine);
    await engine.idle();
    clock.advance(15_000);
    await engine.idle();
    // Not even read: the holder does that.
    expect(exec.calls).toEqual([]);
    expect(store.fenced).toEqual([]);
    leases.take(WEB);
    await engine.acquired([WEB]);
    // Taken over: what this process had opened of the stack is forgotten before anything reads it.
    expect(exec.forgotten).toEqual(['web']);
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: false }]);
    expect(events().filter((e) => e.kind === 'changed')).toMatchObject([{ from: 3, to: 4 }]);
  });

  it('a stack lost stops its work: a firing signal starts nothing more', async () => {
    const { engine, exec, store, clock, leases } = await replica({ targets: [target('web', { cooldown: { up: 60_000, down: 0 } })], hold: [WEB] });
    await aSignal(engine);
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    leases.give(WEB);
    engine.lost([WEB]);
    store.grant(WEB, 'r2', TTL);
    clock.advance(120_000);
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
  });

  it.each<[string, boolean]>([
    ['its holder ends an expired signal', true],
    ['a replica that does not hold the stack leaves it (another may have refreshed it)', false],
  ])('%s', async (_rule, held) => {
    const { engine, store, clock } = await replica({ targets: [target('web', { max: 3 })], hold: held ? [WEB] : [] });
    await engine.signals({ upsert: [signal('web', 'cpu', 'up', { expiresAt: clock.iso(30_000) })], end: [], events: [] });
    await engine.idle();
    for (let i = 0; i < 4; i++) {
      clock.advance(15_000);
      await engine.idle();
    }
    expect(store.signals.get('web') ?? []).toHaveLength(held ? 0 : 1);
    expect(store.events.filter((e) => e.kind === 'ignored')).toHaveLength(held ? 1 : 0);
  });

  it.each<[string, (s: { store: FakeClusterStore; leases: HandLeases }) => void, string | null]>([
    ['this replica, when it holds the stack', ({ leases }) => leases.take(WEB), 'r1'],
    ['the replica holding it, as the lease table says', ({ store }) => store.grant(WEB, 'r2', TTL), 'r2'],
    ['nobody, when no replica holds it', () => undefined, null],
  ])('the state names its owner: %s', async (_rule, arrange, owner) => {
    const s = await replica();
    arrange(s);
    expect((await s.engine.state('web'))?.owner).toBe(owner);
    expect((await s.engine.states())[0]?.owner).toBe(owner);
  });
});

describe('engine among replicas: fenced writes', () => {
  it('every write of its own carries the fence of the epoch it holds; inputs carry none', async () => {
    const store = new FakeClusterStore();
    // Held before by another replica (epoch 1): this one acquires at epoch 2.
    store.grant(WEB, 'r0', TTL);
    const drifting = target('web', { max: 4, drift: { every: 60_000, beforeScale: false, onDrift: 'revert' } });
    const { engine, exec, clock } = await replica({ targets: [drifting], store, hold: [WEB] });
    await engine.command(intent('web', to(4), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    // At max: a skip of its own is recorded.
    await aSignal(engine);
    await engine.idle();
    // Set by hand: the drift check queues a revert of its own, which runs.
    exec.values.set('web', 2);
    clock.advance(60_000);
    await engine.idle();
    expect(exec.values.get('web')).toBe(4);
    const fence = { stack: WEB, owner: 'r1', epoch: 2 };
    expect(store.fenced.length).toBeGreaterThan(0);
    for (const write of store.fenced) expect(write).toEqual({ method: write.method, fence, refused: false });
    for (const method of OWN_WRITES) expect(store.fenced.filter((w) => w.method === method)).toHaveLength(store.calls.filter((c) => c === method).length);
    expect(new Set(store.fenced.map((w) => w.method))).toEqual(new Set(['saveTarget', 'startOperation', 'finishOperation', 'appendEvent', 'addCommand']));
    // The operator's command is an input (unfenced); the drift's revert is the engine's own.
    expect(store.calls.filter((c) => c === 'addCommand')).toHaveLength(2);
    expect(store.fenced.filter((w) => w.method === 'addCommand')).toHaveLength(1);
  });

  it('an end refused for a lost lease is given up at once: refused() is told, and the new holder finishes it', async () => {
    const { engine, exec, store, clock, leases, events } = await replica({ hold: [WEB] });
    exec.holding = true;
    const command = intent('web');
    await engine.command(command);
    await exec.until(() => exec.held.length === 1);
    // Cut off past its lease mid-up: another replica took the stack.
    store.elapse(TTL);
    store.seen('r2');
    store.grant(WEB, 'r2', TTL);
    exec.releaseAll();
    await engine.idle();
    clock.advance(600_000);
    await engine.idle();
    expect(leases.refusedFor).toEqual([WEB]);
    expect(store.fenced.filter((w) => w.method === 'finishOperation')).toEqual([{ method: 'finishOperation', fence: { stack: WEB, owner: 'r1', epoch: 1 }, refused: true }]);
    expect(events().filter((e) => e.kind === 'changed')).toEqual([]);
    // What the new holder needs: the slot with the value being applied, the command still queued.
    expect(store.running.get('web')).toMatchObject({ commandIds: [command.id], applying: { from: 3, to: 4 } });
    expect(store.commands.get('web')).toEqual([command]);

    // The new holder (on the same stack: its up had succeeded) records it without a second up.
    const leases2 = new HandLeases(store, 'r2', TTL);
    const r2 = setup({ targets: [target('web')], store, ownership: leases2 });
    r2.exec.values.set('web', 4);
    r2.exec.deployed.set('web', 4);
    await r2.engine.start();
    leases2.take(WEB);
    await r2.engine.acquired([WEB]);
    await r2.engine.idle();
    expect(r2.exec.applies).toEqual([]);
    expect(r2.events()).toMatchObject([{ kind: 'changed', from: 3, to: 4, commands: [command.id] }]);
    expect(store.running.get('web')).toBeUndefined();
    expect(store.commands.get('web')).toBeUndefined();
    expect(store.targets.get('web')).toMatchObject({ current: 4, applied: 4 });
  });
});

describe('engine among replicas: taking a stack up', () => {
  const record: TargetRecord = { name: 'web', current: 3, paused: false, cooldownUntil: { up: null, down: null }, pause: null, retry: null };
  const slot = (applying: RunningOperation['applying'], commandIds: string[]): RunningOperation => ({ kind: 'commands', commandIds, dryRun: false, startedAt: '2025-01-01T00:00:00.000Z', applying });

  it.each<[string, RunningOperation['applying'], number | null, number]>([
    ['an up that had succeeded is recorded, never applied twice', { from: 3, to: 4 }, 4, 0],
    ['an up cut off before it succeeded is finished at its value', { from: 3, to: 4 }, null, 1],
    ['a slot that had not begun to apply is dropped; its command runs afresh', null, null, 1],
  ])('a running slot found on acquisition: %s', async (_rule, applying, deployed, applies) => {
    const store = new FakeClusterStore();
    const command = intent('web');
    await store.addCommand(command);
    store.running.set('web', slot(applying, [command.id]));
    store.targets.set('web', record);
    const { engine, exec, leases, events } = await replica({ store, values: { web: deployed ?? 3 } });
    if (deployed !== null) exec.deployed.set('web', deployed);
    // Not held: it is left alone.
    await engine.idle();
    expect(store.running.has('web')).toBe(true);
    leases.take(WEB);
    await engine.acquired([WEB]);
    await engine.idle();
    expect(exec.applies).toHaveLength(applies);
    expect(exec.values.get('web')).toBe(4);
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 4, commands: [command.id] }]);
    expect(store.running.has('web')).toBe(false);
    expect(store.commands.has('web')).toBe(false);
    expect(store.targets.get('web')).toMatchObject({ current: 4 });
  });
});

describe('engine among replicas: inputs written by other replicas', () => {
  it('word of a command another replica stored makes the holder reload and run it', async () => {
    const { engine, exec, store } = await replica({ hold: [WEB] });
    await store.addCommand(intent('web'));
    await engine.idle();
    expect(exec.applies).toEqual([]);
    engine.inputsChanged(['web']);
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: false }]);
    expect(store.commands.has('web')).toBe(false);
  });

  it('through the store\'s watch, a command another replica stores reaches the holder at once', async () => {
    const { engine, exec, store, clock } = await replica({ hold: [WEB] });
    const stop = await keepWatching(store, engine, clock, pino({ level: 'silent' }));
    await store.addCommand(intent('web'));
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: false }]);
    await stop();
  });

  it('without word of it (a watch lost), the next evaluation reloads and runs it', async () => {
    const { engine, exec, store, clock } = await replica({ hold: [WEB] });
    await store.addCommand(intent('web'));
    clock.advance(15_000);
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: false }]);
  });

  it("a replica not holding the stack serves the holder's operation as running, from the store", async () => {
    const store = new FakeClusterStore();
    const other = await replica({ store, self: 'r2' });
    expect((await other.engine.state('web'))?.running).toBe(false);
    await store.startOperation('web', { kind: 'commands', commandIds: [], dryRun: false, startedAt: other.clock.iso(), applying: { from: 3, to: 4 } });
    other.engine.reloadAll();
    await other.engine.idle();
    expect((await other.engine.state('web'))?.running).toBe(true);
    await store.finishOperation('web', { events: [], record: { name: 'web', current: 4, paused: false, cooldownUntil: { up: null, down: null }, pause: null, retry: null }, consumed: [] });
    other.engine.reloadAll();
    await other.engine.idle();
    expect(await other.engine.state('web')).toMatchObject({ running: false, current: 4 });
  });

  it.each<[string, number, number]>([
    // The store says 5 was last applied, the stack's latest update holds 5: this copy (3) is behind.
    ['is set to the latest update when it is behind what the daemon last applied', 5, 5],
    // The latest update holds 6, not what the daemon applied: someone else's, left to the drift rules.
    ['is left alone when the stack moved otherwise', 6, 3],
  ])("a taken-over stack's folder settings copy %s", async (_name, deployed, after) => {
    const store = new FakeClusterStore();
    await store.saveTarget({ name: 'web', current: 5, applied: 5, paused: false, cooldownUntil: { up: null, down: null }, pause: null, retry: null });
    const { engine, exec, leases } = await replica({ store, values: { web: 3 } });
    exec.deployed.set('web', deployed);
    leases.take(WEB);
    await engine.acquired([WEB]);
    await engine.idle();
    expect(exec.values.get('web')).toBe(after);
    expect((await engine.state('web'))?.current).toBe(after);
    expect(exec.applies).toEqual([]);
  });

  it('alone (no other replica seen), the evaluation does not reload: nobody else writes', async () => {
    const { engine, exec, store, clock, leases } = await replica({ hold: [WEB] });
    leases.alone = true;
    const reads = store.calls.filter((c) => c === 'loadSignals').length;
    clock.advance(15_000);
    await engine.idle();
    expect(store.calls.filter((c) => c === 'loadSignals').length).toBe(reads);
    expect(exec.applies).toEqual([]);
  });

  it('a pause taken by a replica that does not hold the stack is written alone and heard by the holder', async () => {
    const store = new FakeClusterStore();
    const holder = await replica({ store, hold: [WEB], targets: [target('web', { max: 3 })] });
    const other = await replica({ store, self: 'r2' });
    const pause = { until: holder.clock.iso(3_600_000), direction: 'both' as const, reason: 'maintenance' };
    const before = store.calls.length;
    await other.engine.pause('web', pause);
    expect(store.clusterCalls).toContain('savePause');
    expect(store.calls.slice(before)).not.toContain('saveTarget');
    holder.engine.inputsChanged(['web']);
    await holder.engine.idle();
    expect((await holder.engine.state('web'))?.pause).toEqual(pause);
    // The holder's own record writes keep it.
    await holder.engine.command(intent('web'));
    await holder.engine.idle();
    expect(holder.exec.applies).toEqual([]);
    expect(store.targets.get('web')?.pause).toEqual(pause);
  });

});

describe('engine among replicas: with the lease keeper', () => {
  /** A replica whose leases a LeaseKeeper keeps; the test runs its beats and moves its monotonic clock. */
  async function kept(store: FakeClusterStore, self: string, targets: ReturnType<typeof target>[]) {
    let monotonic = 0;
    const keeper = new LeaseKeeper({
      store,
      self,
      startedAt: '2025-01-01T00:00:00.000Z',
      stacks: targets.map((t) => t.stackKey),
      ttlMs: TTL,
      clock: new FakeClock(),
      logger: pino({ level: 'silent' }),
      bus: new EventBus(),
      monotonic: () => monotonic,
    });
    const s = setup({ targets, values: Object.fromEntries(targets.map((t) => [t.name, 3])), store, ownership: keeper });
    keeper.attach(s.engine);
    await s.engine.start();
    const beat = async (): Promise<void> => {
      await keeper.beat();
      await s.engine.idle();
    };
    return { ...s, keeper, beat, pass: (ms: number) => void (monotonic += ms) };
  }

  it('two replicas share the stacks, and each runs only the work of its own, whichever took the input', async () => {
    const store = new FakeClusterStore();
    const targets = [target('web'), target('api')];
    store.seen('r1');
    store.seen('r2');
    const r1 = await kept(store, 'r1', targets);
    const r2 = await kept(store, 'r2', targets);
    await r1.beat();
    await r2.beat();
    expect(r1.keeper.heldCount).toBe(1);
    expect(r2.keeper.heldCount).toBe(1);
    const stop = await keepWatching(store, r2.engine, r2.clock, pino({ level: 'silent' }));
    // Both inputs reach r1 (a load balancer's choice); r2 hears of its own through the watch.
    await r1.engine.command(intent('web'));
    await r1.engine.command(intent('api'));
    await r1.engine.idle();
    await r2.engine.idle();
    const ran = (r: typeof r1) => r.exec.applies.map((a) => a.target);
    const mine = (r: typeof r1) => targets.filter((t) => r.keeper.holds(t.stackKey)).map((t) => t.name);
    expect(ran(r1)).toEqual(mine(r1));
    expect(ran(r2)).toEqual(mine(r2));
    expect(store.commands.size).toBe(0);
    await stop();
  });

  // An operation's writes carry the fence of the epoch it started under; when the replica lost
  // the lease and took it again meanwhile (a store blip, a pause past the TTL, nobody else
  // taking it), the refusal of the old epoch's end must not give up the new, valid hold.
  it('a refusal for an epoch it no longer holds does not give up the hold it has now', async () => {
    const store = new FakeClusterStore();
    const r1 = await kept(store, 'r1', [target('web')]);
    await r1.beat();
    r1.exec.holding = true;
    await r1.engine.command(intent('web'));
    await r1.exec.until(() => r1.exec.held.length === 1);
    // Stopped past its TTL mid-up; nobody took the stack: the next beat acquires it again.
    store.elapse(TTL);
    r1.pass(TTL);
    await r1.keeper.beat();
    expect(r1.keeper.fence(WEB)?.epoch).toBe(2);
    r1.exec.releaseAll();
    await r1.engine.idle();
    // The end written under epoch 1 was refused; the hold at epoch 2 finishes it.
    expect(store.fenced.find((w) => w.method === 'finishOperation')).toMatchObject({ fence: { epoch: 1 }, refused: true });
    expect(r1.keeper.holds(WEB)).toBe(true);
    expect(r1.exec.applies).toHaveLength(1);
    expect(r1.events()).toMatchObject([{ kind: 'changed', from: 3, to: 4 }]);
  });
});
