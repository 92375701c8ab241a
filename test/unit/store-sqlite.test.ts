// The SQLite store: the conformance suite on a file and in memory, then what only SQLite can
// show — durability across a reopen and a killed process, connection settings, schema
// versions, trimming, and failures injected inside a transaction through a second connection.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { createStore, type StoreConfig, UnknownStoreDriverError } from '../../src/store/index.js';
import { MAX_EVENTS_PAGE, PURGE_EVERY, SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite.js';
import { MIGRATIONS, openDatabase, SCHEMA_VERSION } from '../../src/store/sqlite-schema.js';
import type { Intent, Signal } from '../../src/types.js';
import {
  at,
  describeStoreConformance,
  makeCommand,
  makeEvent,
  makeIntent,
  makeRecord,
  makeRunning,
  makeSignal,
} from './store-conformance.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pulumiscale-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let files = 0;
/** A path for a database file that does not exist yet. */
function freshPath(): string {
  return path.join(tmp, `db-${++files}`, 'state.db');
}

/** Stores opened by a test, closed after it even when it fails. */
const opened: SqliteStore[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

async function open(opts: Partial<SqliteStoreOptions> & { path: string }): Promise<SqliteStore> {
  const store = new SqliteStore(opts);
  opened.push(store);
  await store.init();
  return store;
}

/** A second, raw connection to the same file, as an operator's `sqlite3` shell would be. */
function peek<T>(file: string, fn: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

describeStoreConformance('sqlite file', (limits) => open({ path: freshPath(), ...limits }));
describeStoreConformance('sqlite :memory:', (limits) => open({ path: ':memory:', ...limits }));

describe('SqliteStore durability', () => {
  it('everything acknowledged is there after close and reopen of the same file', async () => {
    const file = freshPath();
    const first = await open({ path: file });
    const done = makeCommand({ receivedAt: at(1) });
    const waiting = [makeCommand({ receivedAt: at(2) }), makeCommand({ receivedAt: at(3), adjustment: { type: 'to', to: 5 } })];
    const other = makeCommand({ target: 'api' });
    const signals = [makeSignal(), makeSignal({ target: 'api', direction: 'down', source: 'cloudwatch', expiresAt: null })];
    const ended = makeSignal();
    const event = makeEvent();
    const record = makeRecord({ pause: { until: at(7200), direction: 'up', reason: 'freeze' }, retry: null });
    const applying = makeRunning({ commandIds: [waiting[0]!.id], applying: { from: 3, to: 5 } });
    for (const command of [done, ...waiting, other]) await first.addCommand(command);
    await first.startOperation('web', makeRunning({ commandIds: [done.id] }));
    await first.finishOperation('web', { events: [event], record, consumed: [done.id] });
    await first.startOperation('web', makeRunning({ commandIds: [waiting[0]!.id] }));
    await first.markApplying('web', applying);
    await first.applySignals({ upsert: [...signals, ended], end: [], events: [] });
    await first.applySignals({ upsert: [], end: [{ target: 'web', id: ended.id }], events: [] });
    await first.rememberDelivery('sns:m-1', '2999-01-01T00:00:00.000Z');
    await first.close();

    const second = await open({ path: file });
    const queues = await second.loadCommands();
    expect([...queues.entries()]).toEqual([['web', waiting], ['api', [other]]]);
    expect(await second.loadRunning()).toEqual(new Map([['web', applying]]));
    expect(await second.loadSignals()).toEqual(signals);
    expect(await second.loadTargets()).toEqual(new Map([['web', record]]));
    expect(await second.listEvents({ limit: 10 })).toEqual([event]);
    expect(await second.getIntent(done.id)).toEqual(done);
    expect(await second.rememberDelivery('sns:m-1', '2999-01-01T00:00:00.000Z')).toBe(false);
  });

  it('a write is committed when its promise resolves: another connection sees it before close', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const command = makeCommand();
    await store.addCommand(command);
    const rows = peek(file, (db) => db.prepare('SELECT id, target, json FROM commands').all());
    expect(rows.map((r): unknown[] => [r.id, r.target, JSON.parse(String(r.json))])).toEqual([[command.id, 'web', command]]);
  });

  it('a command acknowledged by a process that is then killed (SIGKILL, no close) is recovered', async () => {
    // The child imports the TypeScript source through Node's type stripping; the hook maps the
    // `.js` specifiers of ESM TypeScript to the `.ts` files beside them.
    const child = path.join(tmp, 'crash-child.mjs');
    writeFileSync(
      child,
      `import { registerHooks } from 'node:module';
registerHooks({
  resolve(specifier, context, next) {
    if (specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
      try { return next(specifier.replace(/\\.js$/, '.ts'), context); } catch {}
    }
    return next(specifier, context);
  },
});
const [moduleUrl, file, json] = process.argv.slice(2);
const { SqliteStore } = await import(moduleUrl);
const store = new SqliteStore({ path: file });
await store.init();
await store.addCommand(JSON.parse(json));
process.stdout.write('acknowledged');
process.kill(process.pid, 'SIGKILL');
`,
    );
    const file = freshPath();
    const command = makeCommand();
    const moduleUrl = pathToFileURL(path.resolve('src/store/sqlite.ts')).href;
    const run = spawnSync(process.execPath, [child, moduleUrl, file, JSON.stringify(command)], { encoding: 'utf8' });
    expect({ signal: run.signal, stdout: run.stdout, stderr: run.stderr }).toEqual({
      signal: 'SIGKILL',
      stdout: 'acknowledged',
      stderr: '',
    });

    const store = await open({ path: file });
    expect(await store.loadCommands()).toEqual(new Map([['web', [command]]]));
    expect(await store.getIntent(command.id)).toEqual(command);
  });

  it('opens connections in WAL mode with synchronous=FULL and a busy timeout', () => {
    const db = openDatabase(freshPath(), { busyTimeoutMs: 1234 });
    try {
      expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
      expect(db.prepare('PRAGMA synchronous').get()).toEqual({ synchronous: 2 });
      expect(db.prepare('PRAGMA busy_timeout').get()).toEqual({ timeout: 1234 });
    } finally {
      db.close();
    }
  });
});

describe('SqliteStore schema versions', () => {
  it('a new file is created with its parent folders and stamped with the current schema version', async () => {
    const file = path.join(tmp, 'deep', 'er', 'state.db');
    await open({ path: file });
    expect(peek(file, (db) => db.prepare('PRAGMA user_version').get())).toEqual({ user_version: SCHEMA_VERSION });
  });

  it('reopening a current file runs no migration again and keeps its data', async () => {
    const file = freshPath();
    const first = await open({ path: file });
    await first.saveTarget(makeRecord());
    await first.close();
    // A second run of the CREATE TABLE migration would fail: the reopen succeeding proves it was skipped.
    const second = await open({ path: file });
    expect(await second.loadTargets()).toEqual(new Map([['web', makeRecord()]]));
    expect(peek(file, (db) => db.prepare('PRAGMA user_version').get())).toEqual({ user_version: SCHEMA_VERSION });
  });

  it('migrates a version-1 file: old pending intents become commands, the running one first and resumable', async () => {
    const file = freshPath();
    mkdirSync(path.dirname(file), { recursive: true });
    // Version 1 as it was written: its own migration, and rows in its JSON shapes.
    const resumed = makeIntent({ receivedAt: at(1), adjustment: { type: 'by', by: 2 }, dryRun: false });
    const queuedBehind = makeIntent({ receivedAt: at(2), adjustment: { type: 'to', to: 9 }, source: 'api' });
    const queuedApi = makeIntent({ target: 'api', receivedAt: at(3), dryRun: true });
    const runningApi = makeIntent({ target: 'api', receivedAt: at(0) });
    const oldRecord = { name: 'web', current: 3, paused: false, cooldownUntil: { up: at(70), down: null } };
    const event = makeEvent();
    peek(file, (db) => {
      db.exec(MIGRATIONS[0] ?? '');
      db.exec('PRAGMA user_version = 1');
      const audit = db.prepare('INSERT INTO intents (id, target, received_at, json) VALUES (?, ?, ?, ?)');
      for (const i of [runningApi, resumed, queuedBehind, queuedApi]) audit.run(i.id, i.target, i.receivedAt, JSON.stringify(i));
      const pending = db.prepare('INSERT INTO pending (target, slot, json) VALUES (?, ?, ?)');
      const old = (intent: Intent, firstAt: string, extra: object = {}) =>
        JSON.stringify({ intent, count: 2, firstAt, attempts: 1, notBefore: at(40), ...extra });
      pending.run('web', 'running', old(resumed, at(1), { applying: { from: 3, to: 5 } }));
      pending.run('web', 'queued', old(queuedBehind, at(2)));
      pending.run('api', 'queued', old(queuedApi, at(3)));
      // An old running slot from before `applying` existed: the key is simply absent.
      pending.run('api', 'running', old(runningApi, at(0)));
      db.prepare('INSERT INTO targets (name, json) VALUES (?, ?)').run('web', JSON.stringify(oldRecord));
      db.prepare("INSERT INTO events (id, target, n, at, kind, json) VALUES (?, 'web', 1, ?, 'changed', ?)").run(
        event.id,
        event.at,
        JSON.stringify(event),
      );
    });

    const store = await open({ path: file, intentLimit: 4 });
    expect([...(await store.loadCommands()).entries()]).toStrictEqual([
      ['api', [runningApi, queuedApi]],
      ['web', [resumed, queuedBehind]],
    ]);
    expect(await store.loadRunning()).toStrictEqual(
      new Map([
        ['api', { kind: 'commands', commandIds: [runningApi.id], dryRun: false, startedAt: at(0), applying: null }],
        ['web', { kind: 'commands', commandIds: [resumed.id], dryRun: false, startedAt: at(1), applying: { from: 3, to: 5 } }],
      ]),
    );
    expect(await store.loadTargets()).toStrictEqual(new Map([['web', { ...oldRecord, pause: null, retry: null }]]));
    expect(await store.listEvents({ limit: 10 })).toEqual([event]);
    expect(peek(file, (db) => db.prepare('SELECT slot FROM pending ORDER BY target').all())).toEqual([
      { slot: 'running' },
      { slot: 'running' },
    ]);
    expect(peek(file, (db) => db.prepare('PRAGMA user_version').get())).toEqual({ user_version: SCHEMA_VERSION });

    // The audit table kept its order through the rebuild: the next command trims the oldest.
    const next = makeCommand();
    await store.addCommand(next);
    expect(await store.getIntent(runningApi.id)).toBeNull();
    expect(await store.getIntent(resumed.id)).toEqual(resumed);
    expect((await store.loadCommands()).get('web')).toEqual([resumed, queuedBehind, next]);
    // The running operation ends as the engine ends it: its command consumed, the rest kept.
    await store.finishOperation('web', { events: [], record: makeRecord(), consumed: [resumed.id] });
    expect((await store.loadCommands()).get('web')).toEqual([queuedBehind, next]);
  });

  it('migrates a version-3 file: its signals keep their data, get keys, and go on being refreshed and ended', async () => {
    const file = freshPath();
    mkdirSync(path.dirname(file), { recursive: true });
    const web = makeSignal({ id: 'b-fingerprint' });
    const api = makeSignal({ target: 'api', id: 'a-fingerprint' });
    const ends = makeSignal({ id: 'c-fingerprint' });
    peek(file, (db) => {
      for (const migration of MIGRATIONS.slice(0, 3)) db.exec(migration);
      db.exec('PRAGMA user_version = 3');
      const insert = db.prepare('INSERT INTO signals (target, id, json) VALUES (?, ?, ?)');
      for (const signal of [web, api, ends]) insert.run(signal.target, signal.id, JSON.stringify(signal));
    });

    const store = await open({ path: file });
    // Version 3 kept no arrival order: the migration numbers them by target and id.
    expect(await store.loadSignals()).toEqual([api, web, ends]);
    const refreshed = { ...web, value: 99, lastSeen: at(30) };
    const fresh = makeSignal({ id: 'd-fingerprint' });
    await store.applySignals({ upsert: [refreshed, fresh], end: [{ target: 'web', id: ends.id }], events: [] });
    expect(await store.loadSignals()).toEqual([api, refreshed, fresh]);
    expect(peek(file, (db) => db.prepare('SELECT count(*) AS n FROM signals').get())).toEqual({ n: 3 });
  });

  it('a write of thousands of signals lets the event loop turn, and no call sees it half done', async () => {
    const store = await open({ path: freshPath() });
    const many = Array.from({ length: 20_000 }, (_, i) => makeSignal({ id: `fp-${i}`, evidence: { labels: { instance: `w${i}` } } }));
    let turns = 0;
    let counting = true;
    const count = (): void => {
      turns += 1;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const written = store.applySignals({ upsert: many, end: [], events: [] });
    // Called while the write is in progress: they wait for it and see all of it, or fail alone.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const read = store.loadSignals();
    const refused = store.applySignals({ upsert: [], end: [], events: [makeEvent({ id: 'dup' }), makeEvent({ id: 'dup' })] });
    await written;
    counting = false;
    expect(turns).toBeGreaterThan(2);
    expect(await read).toHaveLength(20_000);
    await expect(refused).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await store.loadSignals()).toEqual(many);
    expect(await store.listEvents({ limit: 10 })).toEqual([]);
  });

  it('a failed sync to disk refuses its writes and every later call: nothing more is acknowledged from the file', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const kept = makeCommand();
    await store.addCommand(kept);
    // The store's own read-only descriptor of the write-ahead log (SQLite's is read-write), closed
    // under it: its next sync fails as a disk error would.
    const mine = readdirSync('/proc/self/fd').find((fd) => {
      try {
        const flags = /flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '2';
        return readlinkSync(`/proc/self/fd/${fd}`) === `${file}-wal` && (Number.parseInt(flags, 8) & 3) === 0;
      } catch {
        return false;
      }
    });
    expect(mine).toBeDefined();
    closeSync(Number(mine));
    await expect(store.addCommand(makeCommand())).rejects.toThrow(/sync to disk/);
    await expect(store.loadCommands()).rejects.toThrow(/restart the daemon/);
    await expect(store.applySignals({ upsert: [makeSignal()], end: [], events: [] })).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();
    // A restart reads the file as it is: what was acknowledged is there.
    const again = await open({ path: file });
    expect((await again.loadCommands()).get(kept.target)?.[0]).toEqual(kept);
  });

  it('writes called while the log syncs wait for it and commit together; close commits them too', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const first = makeCommand();
    const written = [store.addCommand(first)];
    // The first write's commit happens at the next turn, its sync then runs on the thread pool.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const more = [makeCommand(), makeCommand(), makeCommand()];
    for (const command of more) written.push(store.addCommand(command));
    await store.close();
    await Promise.all(written);
    const again = await open({ path: file });
    expect((await again.loadCommands()).get(first.target)).toEqual([first, ...more]);
  });

  it('a new signal is an append under the next key, a refresh and an end touch its own row only', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const [a, b, c] = [makeSignal(), makeSignal(), makeSignal()];
    await store.applySignals({ upsert: [a, b], end: [], events: [] });
    await store.applySignals({ upsert: [c, { ...a, value: 1 }], end: [{ target: 'web', id: b.id }], events: [] });
    await store.close();
    expect(peek(file, (db) => db.prepare('SELECT key, id FROM signals ORDER BY key').all())).toEqual([
      { key: 1, id: a.id },
      { key: 3, id: c.id },
    ]);
  });

  it('a file written by a newer schema is refused with StoreUnavailableError and its schema is left alone', async () => {
    const file = freshPath();
    mkdirSync(path.dirname(file), { recursive: true });
    peek(file, (db) => db.exec(`CREATE TABLE future (x); PRAGMA user_version = ${SCHEMA_VERSION + 1}`));
    const store = new SqliteStore({ path: file });
    opened.push(store);
    await expect(store.init()).rejects.toThrow(StoreUnavailableError);
    await expect(store.init()).rejects.toThrow(/newer than this PulumiScale understands/);
    const tables = peek(file, (db) => db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all());
    expect(tables).toEqual([{ name: 'future' }]);
    expect(peek(file, (db) => db.prepare('PRAGMA user_version').get())).toEqual({ user_version: SCHEMA_VERSION + 1 });
  });
});

describe('SqliteStore unusable paths', () => {
  it.each([
    [
      'a file that is not a database',
      () => {
        const file = freshPath();
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, 'this is not an SQLite database, just text that is long enough to have a header'.repeat(20));
        return file;
      },
    ],
    [
      'a path whose parent is a file',
      () => {
        const parent = path.join(tmp, `plain-file-${++files}`);
        writeFileSync(parent, 'x');
        return path.join(parent, 'state.db');
      },
    ],
    [
      'a path that is a folder',
      () => {
        const folder = path.join(tmp, `folder-${++files}`);
        mkdirSync(folder);
        return folder;
      },
    ],
  ])('%s makes init reject with StoreUnavailableError', async (_name, makePath) => {
    const store = new SqliteStore({ path: makePath() });
    opened.push(store);
    const failure = store.init();
    await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(failure).rejects.toHaveProperty('cause');
    await expect(store.loadCommands()).rejects.toThrow(/not initialised/);
  });

  it('a store used before init rejects every call with StoreUnavailableError, and writes nothing', async () => {
    const file = freshPath();
    const store = new SqliteStore({ path: file });
    opened.push(store);
    await expect(store.addCommand(makeCommand())).rejects.toThrow(StoreUnavailableError);
    await expect(store.applySignals({ upsert: [makeSignal()], end: [], events: [] })).rejects.toThrow(/not initialised/);
    await expect(store.loadRunning()).rejects.toThrow(/not initialised/);
    await store.init();
    expect(await store.loadCommands()).toEqual(new Map());
    expect(await store.loadSignals()).toEqual([]);
  });

  it('init after close rejects, and a second init of an open store does nothing', async () => {
    const store = await open({ path: ':memory:' });
    await store.saveTarget(makeRecord());
    await store.init();
    expect(await store.loadTargets()).toEqual(new Map([['web', makeRecord()]]));
    await store.close();
    await expect(store.init()).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe('SqliteStore atomicity under failures injected inside the transaction', () => {
  // Each trigger lets the first statements of the call succeed and aborts a later one, so only
  // a real rollback can leave the store as it was.
  const abort = "BEGIN SELECT RAISE(ABORT, 'injected failure'); END";

  it('addCommand: a failed queue write leaves no audit record and the queue as it was', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const first = makeCommand();
    await store.addCommand(first);
    peek(file, (db) => db.exec(`CREATE TRIGGER fail BEFORE INSERT ON commands ${abort}`));
    const second = makeCommand();
    await expect(store.addCommand(second)).rejects.toThrow(/injected failure/);
    expect(await store.getIntent(second.id)).toBeNull();
    expect(await store.loadCommands()).toEqual(new Map([['web', [first]]]));
  });

  it('applySignals: a failed event write leaves the signals as they were', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const kept = makeSignal();
    await store.applySignals({ upsert: [kept], end: [], events: [] });
    peek(file, (db) => db.exec(`CREATE TRIGGER fail BEFORE INSERT ON events ${abort}`));
    const change = { upsert: [makeSignal()], end: [{ target: 'web', id: kept.id }], events: [makeEvent()] };
    await expect(store.applySignals(change)).rejects.toThrow(/injected failure/);
    expect(await store.loadSignals()).toEqual([kept]);
    // Sent again once the store takes it: the failed write left the store's keys as they were,
    // so the new signal is inserted (not updated in a row that is not there) and the ended one goes.
    peek(file, (db) => db.exec('DROP TRIGGER fail'));
    await store.applySignals(change);
    expect(await store.loadSignals()).toEqual(change.upsert);
    const later = { ...(change.upsert[0] as Signal), lastSeen: new Date(Date.parse(kept.lastSeen) + 60_000).toISOString() };
    await store.applySignals({ upsert: [later], end: [], events: [] });
    expect(await store.loadSignals()).toEqual([later]);
  });

  it('finishOperation: a failed record write keeps the running slot and the commands, and appends no event', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const command = makeCommand();
    await store.addCommand(command);
    const running = makeRunning({ commandIds: [command.id] });
    await store.startOperation('web', running);
    peek(file, (db) => db.exec(`CREATE TRIGGER fail BEFORE INSERT ON targets ${abort}`));
    const end = { events: [makeEvent()], record: makeRecord(), consumed: [command.id] };
    await expect(store.finishOperation('web', end)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await store.loadRunning()).toEqual(new Map([['web', running]]));
    expect(await store.loadCommands()).toEqual(new Map([['web', [command]]]));
    expect(await store.listEvents({ limit: 10 })).toEqual([]);
  });
});

describe('SqliteStore bounded growth', () => {
  it('a lowered historyLimit trims the backlog at the next insert', async () => {
    const file = freshPath();
    const first = await open({ path: file, historyLimit: 10 });
    const events = Array.from({ length: 6 }, (_, i) => makeEvent({ at: at(i) }));
    for (const event of events) await first.appendEvent(event);
    await first.close();
    const second = await open({ path: file, historyLimit: 2 });
    const newest = makeEvent({ at: at(6) });
    await second.appendEvent(newest);
    expect(await second.listEvents({ limit: 10 })).toEqual([newest, events[5]]);
  });

  it('keeps the newest intentLimit commands in the audit table, and never touches the queue', async () => {
    const store = await open({ path: ':memory:', intentLimit: 2 });
    const commands = [makeCommand({ target: 'a' }), makeCommand({ target: 'b' }), makeCommand({ target: 'c' })];
    for (const command of commands) await store.addCommand(command);
    expect(await Promise.all(commands.map((c) => store.getIntent(c.id)))).toEqual([null, commands[1], commands[2]]);
    expect((await store.loadCommands()).get('a')).toEqual([commands[0]]);
  });

  it.each([
    [MAX_EVENTS_PAGE + 500, MAX_EVENTS_PAGE],
    [Number.POSITIVE_INFINITY, MAX_EVENTS_PAGE],
    [-1, 0],
  ])('listEvents with limit %d returns %i events', async (limit, count) => {
    const store = await open({ path: ':memory:' });
    for (let i = 0; i < MAX_EVENTS_PAGE + 5; i++) await store.appendEvent(makeEvent({ at: at(i) }));
    expect(await store.listEvents({ limit })).toHaveLength(count);
  });

  it('purges expired delivery ids every PURGE_EVERY remembers, judged by the injected clock', async () => {
    const file = freshPath();
    let now = Date.parse(at(0));
    const store = await open({ path: file, now: () => new Date(now) });
    await store.rememberDelivery('old', at(10));
    const count = () => peek(file, (db) => db.prepare('SELECT count(*) AS n FROM deliveries').get()?.n);
    now = Date.parse(at(20));
    for (let i = 2; i < PURGE_EVERY; i++) await store.rememberDelivery(`live-${i}`, at(1000));
    expect(count()).toBe(PURGE_EVERY - 1);
    await store.rememberDelivery('the-purging-one', at(1000));
    expect(count()).toBe(PURGE_EVERY - 1);
    expect(peek(file, (db) => db.prepare("SELECT key FROM deliveries WHERE key = 'old'").get())).toBeUndefined();
  });

  it.each([
    ['before its expiry', 9, false],
    ['at its expiry', 10, true],
    ['after its expiry', 11, true],
  ])('a delivery id remembered again %s is %s (new)', async (_name, second, isNew) => {
    let now = Date.parse(at(0));
    const store = await open({ path: ':memory:', now: () => new Date(now) });
    expect(await store.rememberDelivery('k', at(10))).toBe(true);
    now = Date.parse(at(second));
    expect(await store.rememberDelivery('k', at(100))).toBe(isNew);
  });

  it('rememberDelivery with an expiresAt that is not a date rejects with StoreUnavailableError', async () => {
    const store = await open({ path: ':memory:' });
    await expect(store.rememberDelivery('k', 'tomorrow')).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe('createStore', () => {
  it('builds an uninitialised SqliteStore for driver sqlite', async () => {
    const store = createStore({ driver: 'sqlite', path: ':memory:', historyLimit: 5, historyTotalLimit: 50 });
    expect(store).toBeInstanceOf(SqliteStore);
    await expect(store.loadTargets()).rejects.toThrow(/not initialised/);
  });

  it('refuses an unknown driver with a typed error that names the known ones', () => {
    const config = { driver: 'mysql', path: 'x', historyLimit: 5 } as unknown as StoreConfig;
    expect(() => createStore(config)).toThrow(UnknownStoreDriverError);
    expect(() => createStore(config)).toThrow('store.driver: unknown driver "mysql" (known: sqlite, postgres)');
    expect(() => createStore(config)).toThrow(expect.objectContaining({ code: 'PS_CONFIG_INVALID' }));
  });
});
