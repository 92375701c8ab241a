// The PostgreSQL store shared by replicas (store.ts `ClusterStore`): two stores on one schema
// play two replicas. The replica table and leases run on the database's clock, so where time
// must pass the tests move a row's time back with their own connection instead of waiting.
import { describe, expect, it } from 'vitest';
import { LeaseLostError, StoreUnavailableError } from '../../src/errors.js';
import { CLAIM_MARGIN_MS, MESSAGE_CLAIM_MS, PostgresStore, type PostgresStoreOptions } from '../../src/store/postgres.js';
import type { Fence, OutboxRouter } from '../../src/store/store.js';
import type { Pause } from '../../src/types.js';
import { useOwnServer, usePostgresStores } from '../support/postgres-stores.js';
import { at, makeApproval, makeCommand, makeEvent, makeRecord, makeRunning, makeSignal } from './store-conformance.js';

const db = usePostgresStores('cluster');
const { freshSchema, open, peek } = db;

/** Two replicas, `r1` and `r2`, on one fresh schema. */
async function twoReplicas(opts: Partial<PostgresStoreOptions> = {}): Promise<{ schema: string; a: PostgresStore; b: PostgresStore }> {
  const schema = await freshSchema();
  const [a, b] = await Promise.all([open(schema, { ...opts, replicaId: 'r1' }), open(schema, { ...opts, replicaId: 'r2' })]);
  return { schema, a, b };
}


/** The database's clock, in epoch ms. */
async function dbNow(): Promise<number> {
  const [row] = await peek<{ now: Date }>('SELECT now() AS now');
  return row?.now.getTime() ?? Number.NaN;
}

/** Resolves once `check` holds; fails after `ms`. For what arrives over a connection (notifications). */
async function until(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not so within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const TTL = 60_000;

describe('PostgresStore replicas', () => {
  it('heartbeat lists every replica seen within the TTL, itself included, oldest start first, in the database time', async () => {
    const { a, b } = await twoReplicas();
    const before = await dbNow();
    expect(await a.heartbeat({ id: 'r1', startedAt: at(10), draining: false }, TTL)).toMatchObject([{ id: 'r1', startedAt: at(10), draining: false }]);
    const seen = await b.heartbeat({ id: 'r2', startedAt: at(5), draining: true }, TTL);
    expect(seen).toMatchObject([
      { id: 'r2', startedAt: at(5), draining: true },
      { id: 'r1', startedAt: at(10), draining: false },
    ]);
    for (const replica of seen) expect(Date.parse(replica.lastSeen)).toBeGreaterThanOrEqual(before);
  });

  it('a replica unseen for longer than the TTL drops out of the list; one unseen for an hour is forgotten', async () => {
    const { schema, a, b } = await twoReplicas();
    await b.heartbeat({ id: 'r2', startedAt: at(0), draining: false }, 1_000);
    await db.admin.query(`UPDATE ${schema}.replicas SET last_seen = now() - interval '2 seconds' WHERE id = 'r2'`);
    expect((await a.heartbeat({ id: 'r1', startedAt: at(1), draining: false }, 1_000)).map((r) => r.id)).toEqual(['r1']);
    expect(await peek(`SELECT id FROM ${schema}.replicas ORDER BY id`)).toEqual([{ id: 'r1' }, { id: 'r2' }]);

    await db.admin.query(`UPDATE ${schema}.replicas SET last_seen = now() - interval '2 hours' WHERE id = 'r2'`);
    await a.heartbeat({ id: 'r1', startedAt: at(1), draining: false }, 1_000);
    expect(await peek(`SELECT id FROM ${schema}.replicas`)).toEqual([{ id: 'r1' }]);
    // A replica that comes back is listed again.
    expect((await b.heartbeat({ id: 'r2', startedAt: at(0), draining: false }, 1_000)).map((r) => r.id)).toEqual(['r2', 'r1']);
  });
});

describe('PostgresStore leases', () => {
  const stacks = Array.from({ length: 10 }, (_, i) => `file:///state/app/stack-${i}`);

  /** Moves a lease's expiry into the past. */
  async function expire(schema: string, stack: string): Promise<void> {
    await db.admin.query(`UPDATE ${schema}.leases SET expires_at = now() - interval '1 second' WHERE stack = $1`, [stack]);
  }

  it('two replicas acquiring the same stacks at once get disjoint sets that cover them all, at epoch 1', async () => {
    const { a, b } = await twoReplicas();
    for (let round = 0; round < 5; round++) {
      const these = stacks.map((s) => `${s}/${round}`);
      // The other replica tries them in the opposite order: the takes must not deadlock either.
      const [one, two] = await Promise.all([a.acquireLeases('r1', these, 10, TTL), b.acquireLeases('r2', these.toReversed(), 10, TTL)]);
      const taken = [...one, ...two].map((l) => l.stack);
      expect(new Set(taken).size).toBe(taken.length);
      expect(taken.toSorted()).toEqual(these.toSorted());
      expect([...one, ...two].every((l) => l.epoch === 1)).toBe(true);
      expect(one.every((l) => l.owner === 'r1') && two.every((l) => l.owner === 'r2')).toBe(true);
    }
    expect(await a.listLeases()).toHaveLength(50);
  });

  it('takes at most max of the free stacks, in the order given, with an expiry of now + ttl in the database time', async () => {
    const { b, a } = await twoReplicas();
    await a.acquireLeases('r1', [stacks[0]!, stacks[2]!], 5, TTL);
    const before = await dbNow();
    const taken = await b.acquireLeases('r2', [stacks[2]!, stacks[5]!, stacks[0]!, stacks[3]!, stacks[4]!], 2, TTL);
    const after = await dbNow();
    expect(taken.map((l) => l.stack)).toEqual([stacks[5], stacks[3]]);
    for (const lease of taken) {
      expect(Date.parse(lease.expiresAt)).toBeGreaterThanOrEqual(before + TTL);
      expect(Date.parse(lease.expiresAt)).toBeLessThanOrEqual(after + TTL);
    }
    expect(await b.acquireLeases('r2', stacks, 0, TTL)).toEqual([]);
    expect((await a.listLeases()).map((l) => [l.stack, l.owner])).toEqual([
      [stacks[0], 'r1'],
      [stacks[2], 'r1'],
      [stacks[3], 'r2'],
      [stacks[5], 'r2'],
    ]);
  });

  it('an expired lease is taken by another replica at the next epoch; taken again by the same after expiry, the epoch rises again', async () => {
    const { schema, a, b } = await twoReplicas();
    const [stack] = stacks as [string];
    expect(await a.acquireLeases('r1', [stack], 1, TTL)).toMatchObject([{ stack, owner: 'r1', epoch: 1 }]);
    expect(await b.acquireLeases('r2', [stack], 1, TTL)).toEqual([]);
    await expire(schema, stack);
    expect(await a.listLeases()).toEqual([]);
    expect(await b.acquireLeases('r2', [stack], 1, TTL)).toMatchObject([{ stack, owner: 'r2', epoch: 2 }]);
    await expire(schema, stack);
    expect(await b.acquireLeases('r2', [stack], 1, TTL)).toMatchObject([{ stack, owner: 'r2', epoch: 3 }]);
  });

  it('renewal extends only the leases still held at their epoch and not expired', async () => {
    const { schema, a, b } = await twoReplicas();
    const [s0, s1, s2] = stacks as [string, string, string];
    const held = await a.acquireLeases('r1', [s0, s1, s2], 3, 1_000);
    await expire(schema, s1);
    await b.acquireLeases('r2', [s1], 1, TTL);
    // Expired, and nobody took it: lost all the same, as the replica cannot know it was not taken.
    await expire(schema, s2);
    const renewed = await a.renewLeases(held, TTL);
    expect(renewed.map((l) => [l.stack, l.epoch])).toEqual([[s0, 1]]);
    expect(Date.parse(renewed[0]!.expiresAt)).toBeGreaterThan(Date.parse(held[0]!.expiresAt) + 30_000);
    expect(await a.renewLeases([], TTL)).toEqual([]);
  });

  it('release frees a lease at once and keeps its epoch for the next holder to raise; a stale release changes nothing', async () => {
    const { a, b } = await twoReplicas();
    const [s0, s1] = stacks as [string, string];
    const held = await a.acquireLeases('r1', [s0, s1], 2, TTL);
    await a.releaseLeases([{ stack: s0, owner: 'r1', epoch: 7 }, { stack: s1, owner: 'r2', epoch: 1 }]);
    expect(await a.listLeases()).toHaveLength(2);
    await a.releaseLeases(held);
    expect(await a.listLeases()).toEqual([]);
    expect(await b.acquireLeases('r2', [s0, s1], 2, TTL)).toMatchObject([{ stack: s0, epoch: 2 }, { stack: s1, epoch: 2 }]);
  });
});

describe('PostgresStore fencing', () => {
  const stack = 'file:///state/app/web';
  const route: OutboxRouter = () => ['audit'];

  /** Everything the fenced writes could change, as the store reads it. */
  async function contents(store: PostgresStore): Promise<unknown> {
    return {
      commands: await store.loadCommands(),
      running: await store.loadRunning(),
      targets: await store.loadTargets(),
      events: await store.listEvents({ limit: 100 }),
      fires: await store.lastFires(),
      approvals: await store.listApprovals({ limit: 100 }),
      messages: await store.countMessages(),
    };
  }

  /** `r1` held the stack at epoch 1; its lease expired and `r2` holds it at epoch 2. */
  async function takenOver(): Promise<{ a: PostgresStore; b: PostgresStore; stale: Fence; current: Fence }> {
    const { schema, a, b } = await twoReplicas({ route });
    await a.acquireLeases('r1', [stack], 1, TTL);
    await db.admin.query(`UPDATE ${schema}.leases SET expires_at = now() WHERE stack = $1`, [stack]);
    await b.acquireLeases('r2', [stack], 1, TTL);
    // Unfenced: a slot for markApplying and finishOperation, a command to consume.
    const command = makeCommand();
    await a.addCommand(command);
    await a.startOperation('web', makeRunning({ commandIds: [command.id] }));
    return { a, b, stale: { stack, owner: 'r1', epoch: 1 }, current: { stack, owner: 'r2', epoch: 2 } };
  }

  const writes: [string, (store: PostgresStore, fence: Fence) => Promise<unknown>][] = [
    ['addCommand', (s, f) => s.addCommand(makeCommand({ source: 'schedule' }), f)],
    ['startOperation', (s, f) => s.startOperation('web', makeRunning({ startedAt: at(99) }), f)],
    ['markApplying', (s, f) => s.markApplying('web', makeRunning({ applying: { from: 3, to: 5 } }), f)],
    ['finishOperation', async (s, f) => {
      const consumed = [...((await s.loadCommands()).get('web') ?? [])].map((c) => c.id);
      await s.finishOperation('web', { events: [makeEvent()], record: makeRecord({ current: 5 }), consumed, approvals: [makeApproval()] }, f);
    }],
    ['claimFire', (s, f) => s.claimFire({ target: 'web', schedule: 'night', at: at(60), outcome: 'fired' }, { command: makeCommand(), event: makeEvent() }, f)],
    ['saveTarget', (s, f) => s.saveTarget(makeRecord({ current: 7 }), f)],
    ['appendEvent', (s, f) => s.appendEvent(makeEvent({ kind: 'skipped' }), f)],
    ['saveApproval', (s, f) => s.saveApproval(makeApproval({ status: 'rejected' }), { event: makeEvent(), record: makeRecord({ current: 1 }) }, f)],
  ];

  it.each(writes)('%s with a stale fence rejects with LeaseLostError and writes nothing; with the current fence it writes', async (name, write) => {
    const { a, b, stale, current } = await takenOver();
    const before = await contents(a);
    const refused = write(a, stale);
    await expect(refused).rejects.toBeInstanceOf(LeaseLostError);
    await expect(refused).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(refused).rejects.toMatchObject({ stackKey: stack, message: `${name}: the lease of ${stack} is no longer held at epoch 1` });
    expect(await contents(a)).toEqual(before);

    await write(b, current);
    expect(await contents(a)).not.toEqual(before);
  });

  it.each([
    ['released', 'owner = NULL, expires_at = now()'],
    ['expired but not taken', "expires_at = now() - interval '1 second'"],
  ])('a fence whose lease was %s no longer holds', async (_name, change) => {
    const { schema, a } = await twoReplicas();
    const [lease] = await a.acquireLeases('r1', [stack], 1, TTL);
    await db.admin.query(`UPDATE ${schema}.leases SET ${change}`);
    await expect(a.saveTarget(makeRecord(), { stack, owner: 'r1', epoch: lease!.epoch })).rejects.toBeInstanceOf(LeaseLostError);
    expect(await a.loadTargets()).toEqual(new Map());
  });

  it('a fenced write under way holds off an acquisition of its lease until it committed', async () => {
    const { schema, a, b } = await twoReplicas();
    const [lease] = await a.acquireLeases('r1', [stack], 1, 300);
    // The write's insert sleeps past the lease's expiry, its fence checked at the start.
    await db.admin.query(`
      CREATE FUNCTION ${schema}.slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(0.6); RETURN NEW; END $$ LANGUAGE plpgsql;
      CREATE TRIGGER slow BEFORE INSERT ON ${schema}.targets FOR EACH ROW EXECUTE FUNCTION ${schema}.slow();`);
    const write = a.saveTarget(makeRecord(), { stack, owner: 'r1', epoch: lease!.epoch });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const taken = await b.acquireLeases('r2', [stack], 1, TTL);
    // Taken only once the write committed: its row is there as soon as the lease changed hands.
    expect(await peek(`SELECT name FROM ${schema}.targets`)).toEqual([{ name: 'web' }]);
    expect(taken).toMatchObject([{ owner: 'r2', epoch: 2 }]);
    await write;
    expect(await b.loadTargets()).toEqual(new Map([['web', makeRecord()]]));
  });
});

describe('PostgresStore pauses', () => {
  const stack = 'file:///state/app/web';
  // A NUL escape too: the stored pause is carried as the row's JSON text, never through jsonb.
  const pause: Pause = { until: at(3600), direction: 'up', reason: 'maintenance ✓ \u0000 window' };

  it('savePause changes only the pause, creating a record when there is none; null lifts it', async () => {
    const { a } = await twoReplicas();
    await a.savePause('api', pause);
    expect((await a.loadTargets()).get('api')).toStrictEqual({ name: 'api', current: null, paused: false, cooldownUntil: { up: null, down: null }, pause, retry: null });
    const record = makeRecord({ current: 4, retry: { attempts: 2, notBefore: at(9) }, applied: 4 });
    await a.saveTarget(record);
    await a.savePause('web', pause);
    expect((await a.loadTargets()).get('web')).toStrictEqual({ ...record, pause });
    await a.savePause('web', null);
    expect((await a.loadTargets()).get('web')).toStrictEqual(record);
  });

  it('a fenced record write keeps the pause another replica stored; an unfenced one writes the whole record', async () => {
    const { a, b } = await twoReplicas();
    const [lease] = await a.acquireLeases('r1', [stack], 1, TTL);
    const fence = { stack, owner: 'r1', epoch: lease!.epoch };
    // A new row: the caller's pause is not the store's, so none.
    await a.saveTarget(makeRecord({ pause }), fence);
    expect((await a.loadTargets()).get('web')?.pause).toBeNull();

    await b.savePause('web', pause);
    const writes: [string, (record: ReturnType<typeof makeRecord>) => Promise<unknown>][] = [
      ['saveTarget', (record) => a.saveTarget(record, fence)],
      ['finishOperation', (record) => a.finishOperation('web', { events: [makeEvent()], record, consumed: [] }, fence)],
      ['saveApproval', (record) => a.saveApproval(makeApproval({ status: 'rejected' }), { record }, fence)],
    ];
    for (const [i, [, write]] of writes.entries()) {
      const record = makeRecord({ current: 10 + i, pause: null });
      await write(record);
      expect((await b.loadTargets()).get('web')).toStrictEqual({ ...record, pause });
    }
    await b.savePause('web', null);
    await a.saveTarget(makeRecord({ pause }), fence);
    expect((await a.loadTargets()).get('web')?.pause).toBeNull();

    await a.saveTarget(makeRecord({ pause }));
    expect((await b.loadTargets()).get('web')).toStrictEqual(makeRecord({ pause }));
  });
});

describe('PostgresStore watch', () => {
  /** A watch on `store` collecting what it hears, and whether it was lost. */
  async function watching(store: PostgresStore): Promise<{ heard: string[]; lost: Error[]; stop: () => Promise<void> }> {
    const heard: string[] = [];
    const lost: Error[] = [];
    const stop = await store.watch((target) => heard.push(target), (err) => lost.push(err));
    return { heard, lost, stop };
  }

  /** How many connections listen on a store's channel (a watch's own connection). */
  async function listeners(): Promise<number> {
    const [row] = await peek<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN \"pulumiscale:%'");
    return Number(row?.n);
  }

  it("hears the target of every input another replica writes, after its commit, and nothing else", async () => {
    const { a, b } = await twoReplicas();
    const watch = await watching(b);
    await a.addCommand(makeCommand({ target: 'web' }));
    const ended = makeSignal({ target: 'db' });
    await a.applySignals({ upsert: [makeSignal({ target: 'api' }), makeSignal({ target: 'api' })], end: [{ target: 'db', id: ended.id }], events: [] });
    await a.applySignals({ upsert: [makeSignal({ target: 'cache' })], end: [], events: [makeEvent({ target: 'cache', kind: 'ignored' })] });
    await a.savePause('queue', { until: at(60), direction: 'both', reason: 'deploy' });
    await a.saveApproval(makeApproval({ target: 'jobs', status: 'approved' }));
    // Not inputs: unheard.
    await a.saveTarget(makeRecord({ name: 'quiet' }));
    await a.appendEvent(makeEvent({ target: 'quiet' }));
    await a.addCommand(makeCommand({ target: 'last' }));
    await until(() => watch.heard.includes('last'));
    expect(watch.heard.toSorted()).toEqual(['api', 'cache', 'db', 'jobs', 'last', 'queue', 'web']);
    expect(watch.lost).toEqual([]);
  });

  it("leaves out the store's own writes: its caller has them already", async () => {
    const { a, b } = await twoReplicas();
    const watch = await watching(b);
    await b.addCommand(makeCommand({ target: 'own' }));
    await b.savePause('own', null);
    await a.addCommand(makeCommand({ target: 'last' }));
    await until(() => watch.heard.includes('last'));
    expect(watch.heard).toEqual(['last']);
  });

  it('hears nothing of a refused write, nor of a store in another schema', async () => {
    const { schema, a, b } = await twoReplicas();
    const other = await open(await freshSchema());
    const watch = await watching(b);
    const command = makeCommand({ target: 'twice' });
    await a.addCommand(command);
    await expect(a.addCommand({ ...command, target: 'refused' })).rejects.toThrow();
    await other.addCommand(makeCommand({ target: 'elsewhere' }));
    await (await open(schema)).addCommand(makeCommand({ target: 'last' }));
    await until(() => watch.heard.includes('last'));
    expect(watch.heard).toEqual(['twice', 'last']);
  });

  it('stop ends the watch and its connection, without calling lost; close stops the watches left', async () => {
    const { a, b } = await twoReplicas();
    const first = await watching(b);
    const second = await watching(b);
    await until(async () => (await listeners()) === 2);
    await first.stop();
    await first.stop();
    await a.addCommand(makeCommand({ target: 'after' }));
    await until(() => second.heard.includes('after'));
    expect(first.heard).toEqual([]);
    await b.close();
    await until(async () => (await listeners()) === 0);
    expect([first.lost, second.lost]).toEqual([[], []]);
    await expect(b.watch(() => undefined, () => undefined)).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('a store told not to notify (a replica alone) tells nobody until told again, and still hears the others', async () => {
    const { schema, b } = await twoReplicas();
    const quiet = await open(schema);
    quiet.notifyOthers(false);
    const watch = await watching(b);
    const heardByQuiet = await watching(quiet);
    await quiet.addCommand(makeCommand({ target: 'web' }));
    await quiet.applySignals({ upsert: [makeSignal({ target: 'api' })], end: [], events: [] });
    await quiet.savePause('queue', null);
    await quiet.saveApproval(makeApproval({ target: 'jobs' }));
    await (await open(schema)).addCommand(makeCommand({ target: 'last' }));
    await until(() => watch.heard.includes('last') && heardByQuiet.heard.includes('last'));
    expect(watch.heard).toEqual(['last']);
    expect((await b.loadCommands()).get('web')).toHaveLength(1);
    // Another replica appeared: told again.
    quiet.notifyOthers(true);
    await quiet.addCommand(makeCommand({ target: 'again' }));
    await until(() => watch.heard.includes('again'));
  });

  it('a listener that throws ends its watch as lost', async () => {
    const { a, b } = await twoReplicas();
    const lost: Error[] = [];
    await b.watch(() => {
      throw new Error('listener failed');
    }, (err) => lost.push(err));
    await a.addCommand(makeCommand());
    await until(() => lost.length > 0);
    expect(lost).toMatchObject([{ message: 'listener failed' }]);
  });

  describe('on a server that stops', () => {
    const ownServer = useOwnServer();

    it('calls lost once; restarted, a new watch hears again', async () => {
      const store = await open('public', { on: ownServer.server });
      const watch = await watching(store);
      await ownServer.server.stop();
      try {
        await until(() => watch.lost.length > 0);
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(watch.lost).toHaveLength(1);
        expect(watch.lost[0]).toBeInstanceOf(Error);
      } finally {
        await ownServer.server.start();
      }
      await watch.stop();
      const again = await watching(store);
      // Another store writes: a store's own writes are not news to its watch.
      await (await open('public', { on: ownServer.server })).addCommand(makeCommand({ target: 'back' }));
      await until(() => again.heard.includes('back'));
      expect(watch.lost).toHaveLength(1);
    });
  });
});

describe('PostgresStore decideApproval', () => {
  it('writes a decision only while the approval is pending, and tells the other replicas', async () => {
    const { a, b } = await twoReplicas();
    const pending = makeApproval({ target: 'web', status: 'pending' });
    await a.saveApproval(pending);
    const heard: string[] = [];
    const stop = await b.watch((target) => heard.push(target), () => undefined);
    const rejected = { ...pending, status: 'rejected' as const, decidedBy: { via: 'slack' as const, id: 'U1', name: 'alice' }, awaitingHolder: true as const };
    expect(await a.decideApproval(rejected)).toBe(true);
    await until(() => heard.length > 0);
    expect(heard).toEqual(['web']);
    expect(await b.getApproval(pending.id)).toEqual(rejected);
    // Decided already: a second decision (a stale copy's) writes nothing.
    expect(await b.decideApproval({ ...pending, status: 'approved' })).toBe(false);
    expect((await a.getApproval(pending.id))?.status).toBe('rejected');
    await a.saveApproval({ ...pending, status: 'applied' });
    expect(await a.decideApproval({ ...pending, status: 'rejected' })).toBe(false);
    expect(await a.decideApproval({ ...makeApproval(), status: 'approved' })).toBe(false);
    await stop();
  });
});

describe('PostgresStore outbox claims', () => {
  const route: OutboxRouter = (event) => (event.kind === 'changed' ? ['chat', 'audit'] : ['audit']);

  /** Two replicas with two messages waiting for `chat`. */
  async function twoMessages(): Promise<{ schema: string; a: PostgresStore; b: PostgresStore; first: string; second: string }> {
    const { schema, a, b } = await twoReplicas({ route });
    const [first, second] = [makeEvent({ kind: 'changed' }), makeEvent({ kind: 'changed' })];
    await a.appendEvent(first);
    await a.appendEvent(second);
    return { schema, a, b, first: first.id, second: second.id };
  }

  it('the head is claimed by one replica: the same one gets it again, another gets none (never the next) while the claim lives', async () => {
    const { schema, a, b, first } = await twoMessages();
    const head = await a.nextMessage('chat');
    expect(head?.event.id).toBe(first);
    expect(await b.nextMessage('chat')).toBeNull();
    expect((await a.nextMessage('chat'))?.seq).toBe(head?.seq);
    const [claim] = await peek<{ claimed_by: string; left: number }>(
      `SELECT claimed_by, extract(epoch FROM claimed_until - now()) * 1000 AS left FROM ${schema}.outbox WHERE seq = $1`,
      [head?.seq],
    );
    expect(claim?.claimed_by).toBe('r1');
    expect(Number(claim?.left)).toBeGreaterThan(MESSAGE_CLAIM_MS - 5_000);
    // Another destination's head is another matter.
    expect((await b.nextMessage('audit'))?.event.id).toBe(first);
  });

  it('a destination whose post may take longer than a claim gets a claim that long, and some', async () => {
    const { schema, a, b } = await twoMessages();
    const attemptMs = MESSAGE_CLAIM_MS * 5;
    const head = await a.nextMessage('chat', attemptMs);
    expect(await b.nextMessage('chat', attemptMs)).toBeNull();
    const [claim] = await peek<{ left: number }>(`SELECT extract(epoch FROM claimed_until - now()) * 1000 AS left FROM ${schema}.outbox WHERE seq = $1`, [head?.seq]);
    expect(Number(claim?.left)).toBeGreaterThan(attemptMs + CLAIM_MARGIN_MS - 5_000);
    // A short attempt still claims for the usual time.
    const audit = await a.nextMessage('audit', 1_000);
    const [short] = await peek<{ left: number }>(`SELECT extract(epoch FROM claimed_until - now()) * 1000 AS left FROM ${schema}.outbox WHERE seq = $1`, [audit?.seq]);
    expect(Number(short?.left)).toBeGreaterThan(MESSAGE_CLAIM_MS - 5_000);
    expect(Number(short?.left)).toBeLessThanOrEqual(MESSAGE_CLAIM_MS);
  });

  it('a deferred head is free for any replica; a removed one makes the next the head', async () => {
    const { a, b, first, second } = await twoMessages();
    const head = await a.nextMessage('chat');
    await a.deferMessage(head?.seq ?? -1, 1, at(30));
    expect(await b.nextMessage('chat')).toMatchObject({ event: { id: first }, attempts: 1, notBefore: at(30) });
    expect(await a.nextMessage('chat')).toBeNull();
    await b.removeMessage(head?.seq ?? -1);
    expect((await a.nextMessage('chat'))?.event.id).toBe(second);
  });

  it("the claim of a replica that stopped lapses after its time, and the head goes to another", async () => {
    const { schema, a, b, first } = await twoMessages();
    await a.nextMessage('chat');
    await db.admin.query(`UPDATE ${schema}.outbox SET claimed_until = now() - interval '1 second'`);
    expect((await b.nextMessage('chat'))?.event.id).toBe(first);
    expect(await a.nextMessage('chat')).toBeNull();
  });

  it('a head locked by another session gives none at once, not the next message', async () => {
    const { schema, a, first } = await twoMessages();
    const holder = await db.admin.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT seq FROM ${schema}.outbox WHERE destination = 'chat' ORDER BY seq LIMIT 1 FOR UPDATE`);
      expect(await a.nextMessage('chat')).toBeNull();
    } finally {
      await holder.query('COMMIT');
      holder.release();
    }
    expect((await a.nextMessage('chat'))?.event.id).toBe(first);
  });

  it('replicas polling at once: one of them gets the head, every time', async () => {
    const { a, b, first } = await twoMessages();
    const polls = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).nextMessage('chat').then((m) => ({ by: i % 2, m }))));
    const got = polls.filter((p) => p.m !== null);
    expect(got.length).toBeGreaterThan(0);
    expect(new Set(got.map((p) => p.by)).size).toBe(1);
    expect(got.every((p) => p.m?.event.id === first)).toBe(true);
  });
});
