// The PostgreSQL store: the conformance suite on a real server (one schema per store, so every
// test starts empty without a database per test), then what only PostgreSQL can show — replicas
// migrating and writing side by side, the unique signal key, a server that stops and comes
// back, statement timeouts, and failures injected inside a transaction.
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { createStore } from '../../src/store/index.js';
import { MAX_EVENTS_PAGE, PostgresStore, type PostgresStoreOptions } from '../../src/store/postgres.js';
import { SCHEMA_VERSION } from '../../src/store/postgres-schema.js';
import type { Signal } from '../../src/types.js';
import type { PostgresServer } from '../support/postgres.js';
import { useOwnServer, usePostgresStores } from '../support/postgres-stores.js';
import { at, describeStoreConformance, makeCommand, makeEvent, makeRecord, makeRunning, makeSignal } from './store-conformance.js';

const db = usePostgresStores('store');
const { freshSchema, peek } = db;

/** A store on `schema` (a fresh one by default), initialised. */
async function open(opts: Partial<PostgresStoreOptions> & { schema?: string; on?: PostgresServer } = {}): Promise<PostgresStore> {
  const { schema, ...rest } = opts;
  return db.open(schema ?? (await freshSchema()), rest);
}

describeStoreConformance('postgres', (limits) => open(limits));

describe('PostgresStore schema', () => {
  it('two replicas starting together migrate once: one row per version, both stores usable', async () => {
    const schema = await freshSchema();
    const [a, b] = [new PostgresStore({ url: db.server.urlFor(schema) }), new PostgresStore({ url: db.server.urlFor(schema) })];
    db.track(a);
    db.track(b);
    await Promise.all([a.init(), b.init()]);
    const versions = await peek<{ version: number }>(`SELECT version FROM ${schema}.pulumiscale_schema ORDER BY version`);
    expect(versions.map((v) => v.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    await a.saveTarget(makeRecord());
    expect(await b.loadTargets()).toEqual(new Map([['web', makeRecord()]]));
  });

  it('init waits for the migration lock another session holds, then migrates', async () => {
    const schema = await freshSchema();
    const holder = await db.admin.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(hashtext('pulumiscale.migrate'), hashtext($1))`, [schema]);
      const store = new PostgresStore({ url: db.server.urlFor(schema) });
      db.track(store);
      let done = false;
      const init = store.init().then(() => (done = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(done).toBe(false);
      await holder.query('COMMIT');
      await init;
      expect(await store.loadTargets()).toEqual(new Map());
    } finally {
      holder.release();
    }
  });

  it('a database written by a newer schema is refused with StoreUnavailableError, its schema left alone', async () => {
    const schema = await freshSchema();
    await (await open({ schema })).close();
    await db.admin.query(`INSERT INTO ${schema}.pulumiscale_schema (version) VALUES ($1)`, [SCHEMA_VERSION + 1]);
    const store = new PostgresStore({ url: db.server.urlFor(schema) });
    db.track(store);
    const failure = store.init();
    await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(failure).rejects.toThrow(/newer than this PulumiScale understands/);
    const versions = await peek<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.pulumiscale_schema`);
    expect(versions).toEqual([{ n: String(SCHEMA_VERSION + 1) }]);
  });
});

describe('PostgresStore with replicas', () => {
  it('a refreshed signal keeps its row and arrival place, from either replica; one that ended and fired again goes last', async () => {
    const schema = await freshSchema();
    const [one, two] = [await open({ schema }), await open({ schema })];
    const [a, b, c] = [makeSignal({ id: 'z' }), makeSignal({ id: 'y' }), makeSignal({ target: 'api', id: 'x' })];
    await one.applySignals({ upsert: [a, b, c], end: [], events: [] });
    const before = await peek<{ seq: string; id: string }>(`SELECT seq, id FROM ${schema}.signals ORDER BY seq`);
    await two.applySignals({ upsert: [{ ...a, value: 1 }], end: [], events: [] });
    await one.applySignals({ upsert: [{ ...a, value: 2 }, { ...b, value: 3 }], end: [], events: [] });
    expect(await peek(`SELECT seq, id FROM ${schema}.signals ORDER BY seq`)).toEqual(before);
    expect(await two.loadSignals()).toEqual([{ ...a, value: 2 }, { ...b, value: 3 }, c]);

    await two.applySignals({ upsert: [], end: [{ target: 'web', id: a.id }], events: [] });
    await one.applySignals({ upsert: [a], end: [], events: [] });
    expect(await one.loadSignals()).toEqual([{ ...b, value: 3 }, c, a]);
  });

  it("an expiry's end leaves a signal another replica stored again since; an end that names its lastSeen, or none, ends it", async () => {
    const schema = await freshSchema();
    const [holder, other] = [await open({ schema }), await open({ schema })];
    const seen = (s: number) => new Date(Date.parse('2026-11-29T09:00:00.000Z') + s * 1000).toISOString();
    const [a, b, c] = [makeSignal({ id: 'a', lastSeen: seen(0) }), makeSignal({ id: 'b', lastSeen: seen(0) }), makeSignal({ id: 'c', lastSeen: seen(0) })];
    await holder.applySignals({ upsert: [a, b, c], end: [], events: [] });
    // Sent again to the other replica (a later lastSeen) while the holder decided they expired.
    const refreshed = { ...a, lastSeen: seen(600), expiresAt: seen(4200) };
    await other.applySignals({ upsert: [refreshed], end: [], events: [] });
    const expired = (s: Signal) => ({ target: s.target, id: s.id, lastSeen: s.lastSeen });
    await holder.applySignals({ upsert: [], end: [expired(a), expired(b)], events: [] });
    expect(await holder.loadSignals()).toEqual([refreshed, c]);
    // An end naming the lastSeen stored, or an end of a resolved alert (no lastSeen), ends it.
    await holder.applySignals({ upsert: [], end: [expired(refreshed)], events: [] });
    await holder.applySignals({ upsert: [], end: [{ target: c.target, id: c.id }], events: [] });
    expect(await holder.loadSignals()).toEqual([]);
  });

  it('a signal sent twice in one delivery is one arrival, at its first place with its last value', async () => {
    const store = await open();
    const [a, b] = [makeSignal(), makeSignal()];
    await store.applySignals({ upsert: [a, b, { ...a, value: 7 }], end: [], events: [] });
    expect(await store.loadSignals()).toEqual([{ ...a, value: 7 }, b]);
  });

  it('a delivery of thousands of signals is written whole, in its order, with its events', async () => {
    const store = await open();
    const many = Array.from({ length: 5_000 }, (_, i) => makeSignal({ id: `fp-${i}`, evidence: { labels: { instance: `w${i}` } } }));
    const events = Array.from({ length: 500 }, (_, i) => makeEvent({ kind: 'ignored', at: at(i) }));
    await store.applySignals({ upsert: many, end: [], events });
    expect(await store.loadSignals()).toEqual(many);
    expect(await store.listEvents({ limit: 1000 })).toEqual(events.toReversed());
  });

  it('events written by two replicas at once are numbered without gaps and trimmed exactly', async () => {
    const schema = await freshSchema();
    const [one, two] = [await open({ schema, historyLimit: 4 }), await open({ schema, historyLimit: 4 })];
    const events = Array.from({ length: 24 }, (_, i) => makeEvent({ at: at(i) }));
    await Promise.all(events.map((event, i) => (i % 2 === 0 ? one : two).appendEvent(event)));
    const left = await peek<{ seq: string; n: string }>(`SELECT seq, n FROM ${schema}.events ORDER BY seq`);
    expect(left).toEqual(['21', '22', '23', '24'].map((n) => ({ seq: n, n })));
    expect(await one.listEvents({ limit: 10 })).toHaveLength(4);
  });

  it('a fire claimed by two replicas at once is claimed by one', async () => {
    const schema = await freshSchema();
    const [one, two] = [await open({ schema }), await open({ schema })];
    const fire = { target: 'web', schedule: 'night', at: at(60), outcome: 'fired' as const };
    const claims = await Promise.all([one, two, one, two].map((s) => s.claimFire(fire, { command: makeCommand({ source: 'schedule' }), event: makeEvent() })));
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect((await one.loadCommands()).get('web')).toHaveLength(1);
    expect(await two.listEvents({ limit: 10 })).toHaveLength(1);
  });
});

describe('PostgresStore failures', () => {
  it('a statement past statementTimeoutMs is cancelled: the write rejects and changes nothing; writes without events do not wait', async () => {
    const schema = await freshSchema();
    const store = await open({ schema, statementTimeoutMs: 300 });
    const holder = await db.admin.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(hashtext('pulumiscale.history'), hashtext($1))`, [schema]);
      const failure = store.appendEvent(makeEvent());
      await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(failure).rejects.toThrow(/statement timeout/);
      await store.saveTarget(makeRecord());
      await store.applySignals({ upsert: [makeSignal()], end: [], events: [] });
    } finally {
      await holder.query('COMMIT');
      holder.release();
    }
    expect(await store.listEvents({ limit: 10 })).toEqual([]);
    expect(await store.loadTargets()).toEqual(new Map([['web', makeRecord()]]));
  });

  // Each trigger lets the first statements of the call succeed and fails a later one, so only a
  // real rollback leaves the store as it was.
  it.each([
    ['targets', 'finishOperation'],
    ['outbox', 'finishOperation'],
    ['commands', 'claimFire'],
  ] as const)('a failure inside the transaction (insert into %s) rolls %s back whole', async (table, call) => {
    const schema = await freshSchema();
    const store = await open({ schema, route: () => ['audit'] });
    const command = makeCommand();
    await store.addCommand(command);
    const running = makeRunning({ commandIds: [command.id] });
    await store.startOperation('web', running);
    await db.admin.query(`
      CREATE FUNCTION ${schema}.fail() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql;
      CREATE TRIGGER fail BEFORE INSERT ON ${schema}.${table} FOR EACH ROW EXECUTE FUNCTION ${schema}.fail();`);
    const fire = { target: 'web', schedule: 'night', at: at(60), outcome: 'fired' as const };
    const failure =
      call === 'finishOperation'
        ? store.finishOperation('web', { events: [makeEvent()], record: makeRecord(), consumed: [command.id] })
        : store.claimFire(fire, { command: makeCommand(), event: makeEvent() });
    await expect(failure).rejects.toThrow(/injected failure/);
    expect(await store.loadRunning()).toEqual(new Map([['web', running]]));
    expect(await store.loadCommands()).toEqual(new Map([['web', [command]]]));
    expect(await store.listEvents({ limit: 10 })).toEqual([]);
    expect(await store.countMessages()).toEqual(new Map());
    expect(await store.lastFires()).toEqual([]);
  });
});

describe('PostgresStore on a server that stops', () => {
  const ownServer = useOwnServer();

  it.each([
    ['stopped', () => ownServer.server.stop()],
    ['killed', () => ownServer.server.kill()],
  ])('a %s server makes every call reject with StoreUnavailableError and its cause; restarted, the store works again', async (_name, down) => {
    const store = await open({ on: ownServer.server, schema: 'public' });
    const kept = makeCommand();
    await store.addCommand(kept);
    await down();
    const calls: [string, Promise<unknown>][] = [
      ['read', store.loadCommands()],
      ['single write', store.saveTarget(makeRecord())],
      ['transaction', store.appendEvent(makeEvent())],
    ];
    for (const [, call] of calls) {
      await expect(call).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(call).rejects.toHaveProperty('cause', expect.any(Error));
    }
    await ownServer.server.start();
    expect((await store.loadCommands()).get('web')).toContainEqual(kept);
    const after = makeCommand();
    await store.addCommand(after);
    expect((await store.loadCommands()).get('web')).toContainEqual(after);
  });

  it('init against a stopped server rejects with StoreUnavailableError and its cause, and may be retried', async () => {
    await ownServer.server.stop();
    const store = new PostgresStore({ url: ownServer.server.urlFor('public') });
    db.track(store);
    try {
      const failure = store.init();
      await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(failure).rejects.toHaveProperty('cause', expect.any(Error));
      await expect(store.loadTargets()).rejects.toThrow(/not initialised/);
    } finally {
      await ownServer.server.start();
    }
    await store.init();
    await expect(store.loadTargets()).resolves.toBeInstanceOf(Map);
  });
});

describe('PostgresStore bounded growth and clock', () => {
  it('keeps the newest intentLimit commands in the audit table, and never touches the queue', async () => {
    const store = await open({ intentLimit: 2 });
    const commands = [makeCommand({ target: 'a' }), makeCommand({ target: 'b' }), makeCommand({ target: 'c' })];
    for (const command of commands) await store.addCommand(command);
    expect(await Promise.all(commands.map((c) => store.getIntent(c.id)))).toEqual([null, commands[1], commands[2]]);
    expect((await store.loadCommands()).get('a')).toEqual([commands[0]]);
  });

  it('caps a history page at MAX_EVENTS_PAGE, and a negative limit gives none', async () => {
    const store = await open();
    const events = Array.from({ length: MAX_EVENTS_PAGE + 5 }, (_, i) => makeEvent({ at: at(i) }));
    await store.finishOperation('web', { events, record: makeRecord(), consumed: [] });
    for (const [limit, count] of [
      [MAX_EVENTS_PAGE + 500, MAX_EVENTS_PAGE],
      [Number.POSITIVE_INFINITY, MAX_EVENTS_PAGE],
      [-1, 0],
    ]) {
      expect(await store.listEvents({ limit: limit as number })).toHaveLength(count as number);
    }
  });

  it.each([
    ['before its expiry', 9, false],
    ['at its expiry', 10, true],
    ['after its expiry', 11, true],
  ])('a delivery id remembered again %s is %s (new), judged by the injected clock', async (_name, second, isNew) => {
    let now = Date.parse(at(0));
    const store = await open({ now: () => new Date(now) });
    expect(await store.rememberDelivery('k', at(10))).toBe(true);
    now = Date.parse(at(second));
    expect(await store.rememberDelivery('k', at(100))).toBe(isNew);
  });
});

describe('PostgresStore lifecycle', () => {
  it('a store used before init rejects every call with StoreUnavailableError; init after close rejects', async () => {
    const store = new PostgresStore({ url: db.server.urlFor(await freshSchema()) });
    db.track(store);
    await expect(store.addCommand(makeCommand())).rejects.toThrow(/not initialised/);
    await store.init();
    await store.init();
    expect(await store.loadSignals()).toEqual([]);
    await store.close();
    await expect(store.init()).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('close lets the calls under way finish', async () => {
    const schema = await freshSchema();
    const store = await open({ schema });
    const commands = [makeCommand(), makeCommand(), makeCommand()];
    const written = commands.map((c) => store.addCommand(c));
    await store.close();
    await Promise.all(written);
    const again = await open({ schema });
    // Calls made together run on connections of their own, so they commit in the server's
    // order, not the call order (the engine awaits each command of a target before the next).
    const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
    expect((await again.loadCommands()).get('web')?.toSorted(byId)).toEqual(commands.toSorted(byId));
  });

  it('createStore builds an uninitialised PostgresStore for driver postgres', async () => {
    const config = { driver: 'postgres', url: db.server.url, poolSize: 2, statementTimeout: 1000, leaseTTL: 15_000, historyLimit: 5, historyTotalLimit: 50 } as const;
    const store = createStore(config);
    expect(store).toBeInstanceOf(PostgresStore);
    await expect(store.loadTargets()).rejects.toThrow(/not initialised/);
  });
});
