/**
 * The embedded store: one SQLite file through `node:sqlite`, for a single daemon.
 *
 * Why synchronous SQLite behind an async interface: `DatabaseSync` runs each call to completion
 * on the event loop, so a transaction can never interleave with another call of this process and
 * needs no lock of its own; the methods are async only so that the PostgreSQL store can share
 * the contract. A method resolves after its COMMIT returned, and with `synchronous=FULL` that
 * means the data is on disk: a source may acknowledge as soon as `enqueue` resolves.
 *
 * Bounded growth, decided here rather than by the caller:
 * - events: each insert deletes the target's events beyond `historyLimit` (one indexed range
 *   delete, see `n` in sqlite-schema.ts), so a target never holds more than its limit, and
 *   the events of every target beyond `historyTotalLimit` (a range delete on the primary key:
 *   `seq` only grows, so the newest N events are those with `seq > newest - N`). The total is
 *   what bounds the file: a per-target limit alone grows with every target name ever recorded.
 *   A target whose events were all trimmed numbers its next one 1 again, which `n`'s unique
 *   index allows since no row of it is left; it no longer appears in `lastEvents`;
 * - intents: the audit table keeps the newest `intentLimit` accepted intents (default 100,000),
 *   trimmed on insert by rowid. Trimming by count rather than by "older than the oldest retained
 *   event" keeps it one cheap statement and bounds the table even when no event is written;
 * - deliveries: expired ids are purged at start and every {@link PURGE_EVERY} remembers.
 *
 * Every failure, including use before `init` or after `close`, rejects with
 * StoreUnavailableError carrying SQLite's error as its cause.
 */
import type { DatabaseSync, SQLOutputValue, StatementSync } from 'node:sqlite';
import { StoreUnavailableError } from '../errors.js';
import type { Intent, PendingIntent, ScalingEvent, TargetRecord } from '../types.js';
import { migrate, openDatabase } from './sqlite-schema.js';
import type { EventQuery, PendingSlots, Store } from './store.js';

/** The most events one `listEvents` call returns, whatever limit is asked. */
export const MAX_EVENTS_PAGE = 1000;

/** How many `rememberDelivery` calls pass between two purges of expired delivery ids. */
export const PURGE_EVERY = 256;

/** How the SQLite store is set up. */
export interface SqliteStoreOptions {
  /** The database file (its folder is created), or `:memory:` for a throwaway store. */
  path: string;
  /** Events kept per target; older ones are trimmed on insert. Default 10,000. */
  historyLimit?: number;
  /** Events kept in all, across targets; the oldest are trimmed on insert. Default 100,000. */
  historyTotalLimit?: number;
  /** Accepted intents kept in the audit table; older ones are trimmed on insert. Default 100,000. */
  intentLimit?: number;
  /** How long a write waits for a lock held by another connection. Default 5,000 ms. */
  busyTimeoutMs?: number;
  /** The clock that decides whether a delivery id has expired. Default: the system clock. */
  now?: () => Date;
}

/** The SQLite implementation of {@link Store}. */
export class SqliteStore implements Store {
  readonly #path: string;
  readonly #historyLimit: number;
  readonly #historyTotalLimit: number;
  readonly #intentLimit: number;
  readonly #busyTimeoutMs: number;
  readonly #now: () => Date;
  #db: DatabaseSync | null = null;
  #sql: Statements | null = null;
  #closed = false;
  #remembersSincePurge = 0;

  constructor(opts: SqliteStoreOptions) {
    this.#path = opts.path;
    this.#historyLimit = positiveInt('historyLimit', opts.historyLimit ?? 10_000);
    this.#historyTotalLimit = positiveInt('historyTotalLimit', opts.historyTotalLimit ?? 100_000);
    this.#intentLimit = positiveInt('intentLimit', opts.intentLimit ?? 100_000);
    this.#busyTimeoutMs = opts.busyTimeoutMs ?? 5_000;
    this.#now = opts.now ?? (() => new Date());
  }

  /** Opens the file, migrates the schema, prepares every statement once. A second call does nothing. */
  async init(): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError('cannot init a closed store');
    if (this.#db) return;
    let db: DatabaseSync | null = null;
    try {
      db = openDatabase(this.#path, { busyTimeoutMs: this.#busyTimeoutMs });
      migrate(db);
      this.#sql = prepareStatements(db);
      this.#sql.purgeDeliveries.run({ now: this.#now().getTime() });
      this.#db = db;
    } catch (err) {
      this.#sql = null;
      if (db?.isOpen) db.close();
      throw new StoreUnavailableError(`cannot open the store at ${this.#path}: ${message(err)}`, { cause: err });
    }
  }

  /** Closes the file; later calls reject. Safe to call twice, and before `init`. */
  async close(): Promise<void> {
    this.#closed = true;
    const db = this.#db;
    this.#db = null;
    this.#sql = null;
    if (db?.isOpen) {
      try {
        db.close();
      } catch (err) {
        throw new StoreUnavailableError(`cannot close the store: ${message(err)}`, { cause: err });
      }
    }
  }

  async enqueue(intent: Intent, queued: PendingIntent): Promise<void> {
    this.#write('enqueue', (sql) => {
      // A duplicate intent id fails here and rolls the whole call back: intents are immutable.
      const { lastInsertRowid } = sql.insertIntent.run({
        id: intent.id,
        target: intent.target,
        receivedAt: intent.receivedAt,
        json: JSON.stringify(intent),
      });
      sql.trimIntents.run({ upto: Number(lastInsertRowid) - this.#intentLimit });
      sql.upsertPending.run({ target: intent.target, slot: 'queued', json: JSON.stringify(queued) });
    });
  }

  async startOperation(target: string, running: PendingIntent): Promise<void> {
    this.#write('startOperation', (sql) => {
      sql.deletePending.run({ target, slot: 'queued' });
      sql.upsertPending.run({ target, slot: 'running', json: JSON.stringify(running) });
    });
  }

  async markApplying(target: string, running: PendingIntent): Promise<void> {
    this.#write('markApplying', (sql) => {
      sql.updatePending.run({ target, slot: 'running', json: JSON.stringify(running) });
    });
  }

  async finishOperation(
    target: string,
    outcome: { event: ScalingEvent | null; record: TargetRecord; requeue?: PendingIntent | null },
  ): Promise<void> {
    this.#write('finishOperation', (sql) => {
      sql.deletePending.run({ target, slot: 'running' });
      if (outcome.event) this.#insertEvent(sql, outcome.event);
      sql.upsertTarget.run({ name: outcome.record.name, json: JSON.stringify(outcome.record) });
      // The engine has already merged whatever was queued meanwhile into `requeue`.
      if (outcome.requeue) {
        sql.upsertPending.run({ target, slot: 'queued', json: JSON.stringify(outcome.requeue) });
      }
    });
  }

  async loadPending(): Promise<Map<string, PendingSlots>> {
    return this.#read('loadPending', (sql) => {
      const slots = new Map<string, PendingSlots>();
      for (const row of sql.selectPending.all()) {
        const target = text(row.target);
        const entry = slots.get(target) ?? { queued: null, running: null };
        const pending = parse<PendingIntent>(row.json);
        if (row.slot === 'running') entry.running = pending;
        else entry.queued = pending;
        slots.set(target, entry);
      }
      return slots;
    });
  }

  async saveTarget(record: TargetRecord): Promise<void> {
    this.#write('saveTarget', (sql) => {
      sql.upsertTarget.run({ name: record.name, json: JSON.stringify(record) });
    });
  }

  async loadTargets(): Promise<Map<string, TargetRecord>> {
    return this.#read('loadTargets', (sql) => {
      const records = new Map<string, TargetRecord>();
      for (const row of sql.selectTargets.all()) records.set(text(row.name), parse<TargetRecord>(row.json));
      return records;
    });
  }

  async appendEvent(event: ScalingEvent): Promise<void> {
    this.#write('appendEvent', (sql) => this.#insertEvent(sql, event));
  }

  async listEvents(query: EventQuery): Promise<ScalingEvent[]> {
    return this.#read('listEvents', (sql) => {
      const limit = Number.isFinite(query.limit)
        ? Math.min(MAX_EVENTS_PAGE, Math.max(0, Math.floor(query.limit)))
        : MAX_EVENTS_PAGE;
      const variant = `${query.target === undefined ? '' : 'target'}:${query.before === undefined ? '' : 'before'}`;
      const params: Record<string, string | number> = { limit };
      if (query.target !== undefined) params.target = query.target;
      if (query.before !== undefined) params.before = query.before;
      return sql.listEvents[variant as ListVariant].all(params).map((row) => parse<ScalingEvent>(row.json));
    });
  }

  async lastEvents(): Promise<Map<string, ScalingEvent>> {
    return this.#read('lastEvents', (sql) => {
      const last = new Map<string, ScalingEvent>();
      for (const row of sql.lastEvents.all()) {
        const event = parse<ScalingEvent>(row.json);
        last.set(event.target, event);
      }
      return last;
    });
  }

  async rememberDelivery(key: string, expiresAt: string): Promise<boolean> {
    const expires = Date.parse(expiresAt);
    if (Number.isNaN(expires)) throw new StoreUnavailableError(`rememberDelivery: expiresAt is not a date: "${expiresAt}"`);
    return this.#write('rememberDelivery', (sql) => {
      const now = this.#now().getTime();
      if (++this.#remembersSincePurge >= PURGE_EVERY) {
        this.#remembersSincePurge = 0;
        sql.purgeDeliveries.run({ now });
      }
      // The upsert only overwrites an expired row, so `changes` is 1 exactly when the id is new.
      return Number(sql.rememberDelivery.run({ key, expires, now }).changes) > 0;
    });
  }

  async forgetDelivery(key: string): Promise<void> {
    this.#write('forgetDelivery', (sql) => {
      sql.forgetDelivery.run({ key });
    });
  }

  /**
   * An accepted intent by id, while the audit table still holds it (not part of the Store
   * contract yet; see the report on `getIntent`).
   */
  async getIntent(id: string): Promise<Intent | null> {
    return this.#read('getIntent', (sql) => {
      const row = sql.selectIntent.get({ id });
      return row ? parse<Intent>(row.json) : null;
    });
  }

  #insertEvent(sql: Statements, event: ScalingEvent): void {
    const row = sql.insertEvent.get({
      id: event.id,
      target: event.target,
      at: event.at,
      kind: event.kind,
      json: JSON.stringify(event),
    });
    sql.trimEvents.run({ target: event.target, upto: Number(row?.n ?? 0) - this.#historyLimit });
    sql.trimHistory.run({ upto: Number(row?.seq ?? 0) - this.#historyTotalLimit });
  }

  /** Runs `fn` in one IMMEDIATE transaction: it takes the write lock up front, so it cannot fail halfway on a lock. */
  #write<T>(what: string, fn: (sql: Statements) => T): T {
    return this.#read(what, (sql, db) => {
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = fn(sql);
        db.exec('COMMIT');
        return result;
      } catch (err) {
        rollback(db);
        throw err;
      }
    });
  }

  /** Runs `fn` on the open database and wraps any failure. */
  #read<T>(what: string, fn: (sql: Statements, db: DatabaseSync) => T): T {
    const db = this.#db;
    const sql = this.#sql;
    if (!db || !sql) {
      throw new StoreUnavailableError(`${what}: the store is ${this.#closed ? 'closed' : 'not initialised'}`);
    }
    try {
      return fn(sql, db);
    } catch (err) {
      throw new StoreUnavailableError(`${what} failed: ${message(err)}`, { cause: err });
    }
  }
}

type ListVariant = ':' | 'target:' | ':before' | 'target:before';

/** Every statement the store runs, prepared once at `init`. */
function prepareStatements(db: DatabaseSync) {
  const list = (where: string): StatementSync =>
    db.prepare(`SELECT json FROM events ${where} ORDER BY seq DESC LIMIT :limit`);
  // A `before` id that is not (or no longer) in the table makes the subquery NULL, so the page
  // is empty rather than restarting from the newest event.
  const olderThan = 'seq < (SELECT seq FROM events WHERE id = :before)';
  return {
    insertIntent: db.prepare(
      'INSERT INTO intents (id, target, received_at, json) VALUES (:id, :target, :receivedAt, :json)',
    ),
    trimIntents: db.prepare('DELETE FROM intents WHERE rowid <= :upto'),
    selectIntent: db.prepare('SELECT json FROM intents WHERE id = :id'),
    upsertPending: db.prepare(
      'INSERT INTO pending (target, slot, json) VALUES (:target, :slot, :json) ' +
        'ON CONFLICT (target, slot) DO UPDATE SET json = excluded.json',
    ),
    deletePending: db.prepare('DELETE FROM pending WHERE target = :target AND slot = :slot'),
    updatePending: db.prepare('UPDATE pending SET json = :json WHERE target = :target AND slot = :slot'),
    selectPending: db.prepare('SELECT target, slot, json FROM pending'),
    upsertTarget: db.prepare(
      'INSERT INTO targets (name, json) VALUES (:name, :json) ON CONFLICT (name) DO UPDATE SET json = excluded.json',
    ),
    selectTargets: db.prepare('SELECT name, json FROM targets'),
    insertEvent: db.prepare(
      'INSERT INTO events (id, target, n, at, kind, json) VALUES (:id, :target, ' +
        'coalesce((SELECT max(n) FROM events WHERE target = :target), 0) + 1, :at, :kind, :json) RETURNING n, seq',
    ),
    trimEvents: db.prepare('DELETE FROM events WHERE target = :target AND n <= :upto'),
    trimHistory: db.prepare('DELETE FROM events WHERE seq <= :upto'),
    listEvents: {
      ':': list(''),
      'target:': list('WHERE target = :target'),
      ':before': list(`WHERE ${olderThan}`),
      'target:before': list(`WHERE target = :target AND ${olderThan}`),
    } satisfies Record<ListVariant, StatementSync>,
    // A loose index scan: hop from one distinct target to the next through the (target, seq)
    // index, then take each target's newest row, instead of grouping every event in the table.
    lastEvents: db.prepare(`
      WITH RECURSIVE names(name) AS (
        SELECT min(target) FROM events
        UNION ALL
        SELECT (SELECT min(target) FROM events WHERE target > names.name) FROM names WHERE names.name IS NOT NULL
      )
      SELECT (SELECT json FROM events WHERE target = names.name ORDER BY seq DESC LIMIT 1) AS json
      FROM names WHERE names.name IS NOT NULL`),
    rememberDelivery: db.prepare(
      'INSERT INTO deliveries (key, expires_at) VALUES (:key, :expires) ' +
        'ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE deliveries.expires_at <= :now',
    ),
    forgetDelivery: db.prepare('DELETE FROM deliveries WHERE key = :key'),
    purgeDeliveries: db.prepare('DELETE FROM deliveries WHERE expires_at <= :now'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

function rollback(db: DatabaseSync): void {
  if (!db.isTransaction) return;
  try {
    db.exec('ROLLBACK');
  } catch {
    // The original error is the one worth reporting; SQLite rolls back on its own when it can't.
  }
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function text(value: SQLOutputValue | undefined): string {
  if (typeof value !== 'string') throw new TypeError(`expected a text column, got ${typeof value}`);
  return value;
}

/** Parses a JSON column the store itself wrote; the shape is trusted, the column type is not. */
function parse<T>(value: SQLOutputValue | undefined): T {
  return JSON.parse(text(value)) as T;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
