// The SQLite store: the conformance suite on a file and in memory, then what only SQLite can
// show — durability across a reopen and a killed process, connection settings, schema
// versions, trimming, and failures injected inside a transaction through a second connection.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { createStore, type StoreConfig, UnknownStoreDriverError } from '../../src/store/index.js';
import { MAX_EVENTS_PAGE, PURGE_EVERY, SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite.js';
import { openDatabase, SCHEMA_VERSION } from '../../src/store/sqlite-schema.js';
import { at, describeStoreConformance, makeEvent, makeIntent, makePending, makeRecord } from './store-conformance.js';

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
    const done = makeIntent({ receivedAt: at(1) });
    const waiting = makeIntent({ receivedAt: at(2) });
    const event = makeEvent();
    const record = makeRecord();
    await first.enqueue(done, makePending(done));
    await first.startOperation('web', makePending(done));
    await first.enqueue(waiting, makePending(waiting));
    await first.finishOperation('web', { event, record });
    await first.rememberDelivery('sns:m-1', '2999-01-01T00:00:00.000Z');
    await first.close();

    const second = await open({ path: file });
    expect(await second.loadPending()).toEqual(new Map([['web', { queued: makePending(waiting), running: null }]]));
    expect(await second.loadTargets()).toEqual(new Map([['web', record]]));
    expect(await second.listEvents({ limit: 10 })).toEqual([event]);
    expect(await second.getIntent(done.id)).toEqual(done);
    expect(await second.rememberDelivery('sns:m-1', '2999-01-01T00:00:00.000Z')).toBe(false);
  });

  it('a write is committed when its promise resolves: another connection sees it before close', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const intent = makeIntent();
    await store.enqueue(intent, makePending(intent));
    const rows = peek(file, (db) => db.prepare('SELECT slot, json FROM pending').all());
    expect(rows.map((r): unknown[] => [r.slot, JSON.parse(String(r.json))])).toEqual([['queued', makePending(intent)]]);
  });

  it('an intent acknowledged by a process that is then killed (SIGKILL, no close) is recovered', async () => {
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
const intent = JSON.parse(json);
await store.enqueue(intent, { intent, count: 1, firstAt: intent.receivedAt, attempts: 0, notBefore: null });
process.stdout.write('acknowledged');
process.kill(process.pid, 'SIGKILL');
`,
    );
    const file = freshPath();
    const intent = makeIntent();
    const moduleUrl = pathToFileURL(path.resolve('src/store/sqlite.ts')).href;
    const run = spawnSync(process.execPath, [child, moduleUrl, file, JSON.stringify(intent)], { encoding: 'utf8' });
    expect({ signal: run.signal, stdout: run.stdout, stderr: run.stderr }).toEqual({
      signal: 'SIGKILL',
      stdout: 'acknowledged',
      stderr: '',
    });

    const store = await open({ path: file });
    expect((await store.loadPending()).get('web')?.queued).toEqual(makePending(intent));
    expect(await store.getIntent(intent.id)).toEqual(intent);
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
    await expect(store.loadPending()).rejects.toThrow(/not initialised/);
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

  it('enqueue: a failed slot write leaves no intent recorded and the previous queued slot in place', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const first = makeIntent();
    await store.enqueue(first, makePending(first));
    peek(file, (db) => db.exec(`CREATE TRIGGER fail BEFORE INSERT ON pending ${abort}`));
    const second = makeIntent();
    await expect(store.enqueue(second, makePending(second))).rejects.toThrow(/injected failure/);
    expect(await store.getIntent(second.id)).toBeNull();
    expect((await store.loadPending()).get('web')).toEqual({ queued: makePending(first), running: null });
  });

  it('startOperation: a failed running-slot write leaves the queued slot in place', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const intent = makeIntent();
    await store.enqueue(intent, makePending(intent));
    peek(file, (db) => db.exec(`CREATE TRIGGER fail BEFORE INSERT ON pending WHEN NEW.slot = 'running' ${abort}`));
    await expect(store.startOperation('web', makePending(intent))).rejects.toBeInstanceOf(StoreUnavailableError);
    expect((await store.loadPending()).get('web')).toEqual({ queued: makePending(intent), running: null });
  });

  it('finishOperation: a failed record write keeps the running slot and appends no event', async () => {
    const file = freshPath();
    const store = await open({ path: file });
    const intent = makeIntent();
    await store.enqueue(intent, makePending(intent));
    await store.startOperation('web', makePending(intent));
    peek(file, (db) => db.exec(`CREATE TRIGGER fail BEFORE INSERT ON targets ${abort}`));
    const outcome = { event: makeEvent(), record: makeRecord(), requeue: makePending(intent, { attempts: 1 }) };
    await expect(store.finishOperation('web', outcome)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect((await store.loadPending()).get('web')).toEqual({ queued: null, running: makePending(intent) });
    expect(await store.listEvents({ limit: 10 })).toEqual([]);
  });
});

describe('SqliteStore bounded growth', () => {
  it('keeps the newest historyLimit events of each target, whichever call appended them', async () => {
    const store = await open({ path: ':memory:', historyLimit: 3 });
    const web = [];
    for (let i = 0; i < 5; i++) {
      const event = makeEvent({ target: 'web', at: at(i) });
      web.push(event);
      if (i === 4) {
        const intent = makeIntent();
        await store.enqueue(intent, makePending(intent));
        await store.startOperation('web', makePending(intent));
        await store.finishOperation('web', { event, record: makeRecord() });
      } else {
        await store.appendEvent(event);
      }
    }
    const api = [makeEvent({ target: 'api' }), makeEvent({ target: 'api' })];
    for (const event of api) await store.appendEvent(event);
    expect(await store.listEvents({ target: 'web', limit: 10 })).toEqual(web.slice(2).toReversed());
    expect(await store.listEvents({ target: 'api', limit: 10 })).toEqual(api.toReversed());
  });

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

  it('keeps the newest intentLimit intents in the audit table, and never touches pending slots', async () => {
    const store = await open({ path: ':memory:', intentLimit: 2 });
    const intents = [makeIntent({ target: 'a' }), makeIntent({ target: 'b' }), makeIntent({ target: 'c' })];
    for (const intent of intents) await store.enqueue(intent, makePending(intent));
    expect(await Promise.all(intents.map((i) => store.getIntent(i.id)))).toEqual([null, intents[1], intents[2]]);
    expect((await store.loadPending()).get('a')?.queued?.intent).toEqual(intents[0]);
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
    expect(() => createStore(config)).toThrow('store.driver: unknown driver "mysql" (known: sqlite)');
    expect(() => createStore(config)).toThrow(expect.objectContaining({ code: 'PS_CONFIG_INVALID' }));
  });
});
