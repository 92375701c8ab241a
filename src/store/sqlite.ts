/**
 * The embedded store: one SQLite file through `node:sqlite`, for a single daemon.
 *
 * Why synchronous SQLite behind an async interface: `DatabaseSync` runs each call to completion
 * on the event loop, so a statement can never interleave with another call of this process. A
 * write resolves after the COMMIT that holds it returned and its write-ahead log is on disk: a
 * source may acknowledge as soon as `addCommand` or `applySignals` resolves. Writes are grouped
 * (the requests that arrived together share one transaction and one sync), see sqlite-commit.ts.
 *
 * Bounded growth, decided here rather than by the caller:
 * - events: each insert deletes the target's events beyond `historyLimit` (one indexed range
 *   delete, see `n` in sqlite-schema.ts), so a target never holds more than its limit, and
 *   the events of every target beyond `historyTotalLimit` (a range delete on the primary key:
 *   `seq` only grows, so the newest N events are those with `seq > newest - N`). The total is
 *   what bounds the file: a per-target limit alone grows with every target name ever recorded.
 *   A target whose events were all trimmed numbers its next one 1 again, which `n`'s unique
 *   index allows since no row of it is left; it no longer appears in `lastEvents`;
 * - intents: the audit table keeps the newest `intentLimit` accepted commands (default 100,000),
 *   trimmed on insert by `seq`. Trimming by count rather than by "older than the oldest retained
 *   event" keeps it one cheap statement and bounds the table even when no event is written;
 * - commands and signals are not trimmed: they are work and state, bounded by the engine, which
 *   consumes commands and ends signals (a command leaves the queue only with its event);
 * - deliveries: expired ids are purged at start and every {@link PURGE_EVERY} remembers.
 *
 * Every failure, including use before `init` or after `close`, rejects with
 * StoreUnavailableError carrying SQLite's error as its cause.
 */
import type { DatabaseSync, SQLOutputValue } from 'node:sqlite';
import { StoreUnavailableError } from '../errors.js';
import type { Approval, Command, Intent, RunningOperation, ScalingEvent, Signal, TargetRecord } from '../types.js';
import { GroupCommit, message, SLICE_ROWS } from './sqlite-commit.js';
import { migrate, openDatabase, walForSync } from './sqlite-schema.js';
import * as outbox from './sqlite-outbox.js';
import { type ListVariant, prepareStatements, type Statements } from './sqlite-statements.js';
import type { ApprovalDecision, ApprovalQuery, EventQuery, OperationEnd, OutboxMessage, OutboxRouter, ScheduleFire, SignalChange, Store } from './store.js';

/** How far back before a schedule's newest handled fire its older fires are kept. */
export const FIRES_KEPT_MS = 86_400_000;

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
  /** Accepted commands kept in the audit table; older ones are trimmed on insert. Default 100,000. */
  intentLimit?: number;
  /** How long a write waits for a lock held by another connection. Default 5,000 ms. */
  busyTimeoutMs?: number;
  /** The clock that decides whether a delivery id has expired. Default: the system clock. */
  now?: () => Date;
  /** Which notification destinations each appended event goes to (none without it). */
  route?: OutboxRouter;
}

/** The SQLite implementation of {@link Store}. */
export class SqliteStore implements Store {
  readonly #path: string;
  readonly #historyLimit: number;
  readonly #historyTotalLimit: number;
  readonly #intentLimit: number;
  readonly #busyTimeoutMs: number;
  readonly #now: () => Date;
  readonly #route: OutboxRouter | null;
  #db: DatabaseSync | null = null;
  #sql: Statements | null = null;
  #closed = false;
  #remembersSincePurge = 0;
  /** Each stored signal's key by target and id (see applySignals), and the last key given. */
  #signalKeys = new SignalKeys();
  #lastSignalKey = 0;
  /** The key map missed a reload after a failed commit: reloaded before the next one. */
  #keysStale = false;
  #commits: GroupCommit | null = null;

  constructor(opts: SqliteStoreOptions) {
    this.#path = opts.path;
    this.#historyLimit = positiveInt('historyLimit', opts.historyLimit ?? 10_000);
    this.#historyTotalLimit = positiveInt('historyTotalLimit', opts.historyTotalLimit ?? 100_000);
    this.#intentLimit = positiveInt('intentLimit', opts.intentLimit ?? 100_000);
    this.#busyTimeoutMs = opts.busyTimeoutMs ?? 5_000;
    this.#now = opts.now ?? (() => new Date());
    this.#route = opts.route ?? null;
  }

  /** Opens the file, migrates the schema, prepares every statement once. A second call does nothing. */
  async init(): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError('cannot init a closed store');
    if (this.#db) return;
    let db: DatabaseSync | null = null;
    try {
      db = openDatabase(this.#path, { busyTimeoutMs: this.#busyTimeoutMs });
      migrate(db);
      const wal = walForSync(db, this.#path);
      this.#sql = prepareStatements(db);
      this.#sql.purgeDeliveries.run({ now: this.#now().getTime() });
      this.#loadSignalKeys(this.#sql);
      this.#db = db;
      this.#commits = new GroupCommit({
        open: (what) => this.#open(what),
        wal,
        beforeCommit: (sql) => {
          if (!this.#keysStale) return;
          this.#loadSignalKeys(sql);
          this.#keysStale = false;
        },
        // Nothing of the batch is stored: what memory took from it goes too (at the next commit
        // when the file cannot even be read now).
        afterRollback: () => {
          try {
            if (this.#sql !== null) this.#loadSignalKeys(this.#sql);
          } catch {
            this.#keysStale = true;
          }
        },
      });
    } catch (err) {
      this.#sql = null;
      if (db?.isOpen) db.close();
      throw new StoreUnavailableError(`cannot open the store at ${this.#path}: ${message(err)}`, { cause: err });
    }
  }

  /** Closes the file; later calls reject. Safe to call twice, and before `init`. */
  async close(): Promise<void> {
    // What was called before close still commits: its callers are waiting for it.
    await this.#commits?.close();
    this.#commits = null;
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

  async addCommand(command: Command): Promise<void> {
    await this.#write('addCommand', (sql) => this.#queueCommand(sql, command));
  }

  /** The audit record and the queue row of a command, inside the caller's transaction. */
  #queueCommand(sql: Statements, command: Command): void {
    // A repeated id fails on the audit table's or the queue's unique id and rolls the whole
    // call back: commands are immutable.
    const row = sql.insertIntent.get({
      id: command.id,
      target: command.target,
      receivedAt: command.receivedAt,
      json: JSON.stringify(command),
    });
    sql.trimIntents.run({ upto: Number(row?.seq ?? 0) - this.#intentLimit });
    sql.insertCommand.run({ id: command.id, target: command.target, json: JSON.stringify(command) });
  }

  async claimFire(fire: ScheduleFire, made: { command: Command | null; event: ScalingEvent | null }): Promise<boolean> {
    const at = Date.parse(fire.at);
    if (Number.isNaN(at)) throw new StoreUnavailableError(`claimFire: not a date: "${fire.at}"`);
    return this.#write('claimFire', (sql) => {
      const claimed = Number(sql.claimFire.run({ target: fire.target, schedule: fire.schedule, at, outcome: fire.outcome }).changes) > 0;
      if (!claimed) return false;
      sql.trimFires.run({ target: fire.target, schedule: fire.schedule, before: at - FIRES_KEPT_MS });
      if (made.command !== null) this.#queueCommand(sql, made.command);
      if (made.event !== null) this.#insertEvent(sql, made.event);
      return true;
    });
  }

  async lastFires(): Promise<ScheduleFire[]> {
    return this.#read('lastFires', (sql) =>
      sql.lastFires.all().map((row) => ({
        target: text(row.target),
        schedule: text(row.schedule),
        at: new Date(Number(row.fire_at)).toISOString(),
        outcome: text(row.outcome) === 'missed' ? ('missed' as const) : ('fired' as const),
      })),
    );
  }

  async loadCommands(): Promise<Map<string, Command[]>> {
    return this.#read('loadCommands', (sql) => {
      const queues = new Map<string, Command[]>();
      for (const row of sql.selectCommands.all()) {
        const target = text(row.target);
        const queue = queues.get(target) ?? [];
        queue.push(parse<Command>(row.json));
        queues.set(target, queue);
      }
      return queues;
    });
  }

  /**
   * Upserts first, then ends: a key in both lists ends, so the change can only lose a signal,
   * never invent one. A new signal is appended under the next key; a known one is updated or
   * deleted by its key (see migration 4). The key map follows once the statements succeeded, so
   * the next write of the same group commit sees them; a failed COMMIT reloads it.
   */
  async applySignals(change: SignalChange): Promise<void> {
    await this.#write('applySignals', (sql) => this.#applySignals(sql, change));
  }

  /** A generator: a delivery of thousands of alerts is written in slices, see #drive. */
  *#applySignals(sql: Statements, change: SignalChange): Generator<void, void> {
    // Memory takes the keys once the write is done: a write that fails in its savepoint leaves
    // them as they were; a commit that fails as a whole reloads them (afterRollback).
    const staged = new Map<string, { target: string; id: string; key: number | null }>();
    const keyOf = (target: string, id: string): number | undefined => {
      const mine = staged.get(signalName(target, id));
      return mine === undefined ? this.#signalKeys.get(target, id) : (mine.key ?? undefined);
    };
    let rows = 0;
    for (const signal of change.upsert) {
      if (++rows % SLICE_ROWS === 0) yield;
      const json = JSON.stringify(signal);
      const known = keyOf(signal.target, signal.id);
      if (known !== undefined) {
        sql.updateSignal.run({ key: known, json });
      } else {
        const key = ++this.#lastSignalKey;
        sql.insertSignal.run({ key, target: signal.target, id: signal.id, json });
        staged.set(signalName(signal.target, signal.id), { target: signal.target, id: signal.id, key });
      }
    }
    for (const end of change.end) {
      if (++rows % SLICE_ROWS === 0) yield;
      const known = keyOf(end.target, end.id);
      if (known === undefined || sentSince(sql, known, end.lastSeen)) continue;
      sql.deleteSignal.run({ key: known });
      staged.set(signalName(end.target, end.id), { target: end.target, id: end.id, key: null });
    }
    for (const event of change.events) {
      if (++rows % SLICE_ROWS === 0) yield;
      this.#insertEvent(sql, event);
    }
    for (const { target, id, key } of staged.values()) {
      if (key === null) this.#signalKeys.delete(target, id);
      else this.#signalKeys.set(target, id, key);
    }
  }

  async loadSignals(): Promise<Signal[]> {
    return this.#read('loadSignals', (sql) => sql.selectSignals.all().map((row) => parse<Signal>(row.json)));
  }

  async startOperation(target: string, running: RunningOperation): Promise<void> {
    await this.#write('startOperation', (sql) => {
      sql.upsertRunning.run({ target, json: JSON.stringify(running) });
    });
  }

  async markApplying(target: string, running: RunningOperation): Promise<void> {
    await this.#write('markApplying', (sql) => {
      // An UPDATE, not an upsert: an operation that already ended must not come back to life.
      sql.updateRunning.run({ target, json: JSON.stringify(running) });
    });
  }

  async finishOperation(target: string, end: OperationEnd): Promise<void> {
    await this.#write('finishOperation', (sql) => {
      sql.deleteRunning.run({ target });
      for (const event of end.events) this.#insertEvent(sql, event);
      // An id no longer queued is no error: the operation ends either way.
      for (const id of end.consumed) sql.deleteCommand.run({ target, id });
      sql.upsertTarget.run({ name: end.record.name, json: JSON.stringify(end.record) });
      for (const approval of end.approvals ?? []) outbox.saveApproval(sql.outbox, approval);
    });
  }

  async loadRunning(): Promise<Map<string, RunningOperation>> {
    return this.#read('loadRunning', (sql) => {
      const running = new Map<string, RunningOperation>();
      for (const row of sql.selectRunning.all()) running.set(text(row.target), parse<RunningOperation>(row.json));
      return running;
    });
  }

  async saveTarget(record: TargetRecord): Promise<void> {
    await this.#write('saveTarget', (sql) => {
      sql.upsertTarget.run({ name: record.name, json: JSON.stringify(record) });
    });
  }

  async loadTargets(): Promise<Map<string, TargetRecord>> {
    return this.#read('loadTargets', (sql) => {
      const records = new Map<string, TargetRecord>();
      for (const row of sql.selectTargets.all()) records.set(text(row.name), completeRecord(parse(row.json)));
      return records;
    });
  }

  async appendEvent(event: ScalingEvent): Promise<void> {
    await this.#write('appendEvent', (sql) => this.#insertEvent(sql, event));
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
    await this.#write('forgetDelivery', (sql) => {
      sql.forgetDelivery.run({ key });
    });
  }

  async nextMessage(destination: string): Promise<OutboxMessage | null> {
    return this.#read('nextMessage', (sql) => outbox.nextMessage(sql.outbox, destination));
  }

  async removeMessage(seq: number): Promise<void> {
    await this.#write('removeMessage', (sql) => {
      sql.outbox.deleteMessage.run({ seq });
    });
  }

  async deferMessage(seq: number, attempts: number, notBefore: string): Promise<void> {
    const at = Date.parse(notBefore);
    if (Number.isNaN(at)) throw new StoreUnavailableError(`deferMessage: notBefore is not a date: "${notBefore}"`);
    await this.#write('deferMessage', (sql) => {
      sql.outbox.deferMessage.run({ seq, attempts, notBefore: at });
    });
  }

  async countMessages(): Promise<Map<string, number>> {
    return this.#read('countMessages', (sql) => outbox.countMessages(sql.outbox));
  }

  async dropMessagesExcept(keep: readonly string[]): Promise<Map<string, number>> {
    return this.#write('dropMessagesExcept', (sql) => {
      const dropped = new Map<string, number>();
      for (const [destination, n] of outbox.countMessages(sql.outbox)) {
        if (keep.includes(destination)) continue;
        sql.outbox.deleteDestination.run({ destination });
        dropped.set(destination, n);
      }
      return dropped;
    });
  }

  async saveApproval(approval: Approval, also: ApprovalDecision = {}): Promise<void> {
    await this.#write('saveApproval', (sql) => {
      outbox.saveApproval(sql.outbox, approval);
      if (also.event !== undefined) this.#insertEvent(sql, also.event);
      if (also.record !== undefined) sql.upsertTarget.run({ name: also.record.name, json: JSON.stringify(also.record) });
      for (const id of also.consumed ?? []) sql.deleteCommand.run({ target: approval.target, id });
    });
  }

  async getApproval(id: string): Promise<Approval | null> {
    return this.#read('getApproval', (sql) => outbox.getApproval(sql.outbox, id));
  }

  async listApprovals(query: ApprovalQuery): Promise<Approval[]> {
    return this.#read('listApprovals', (sql) => outbox.listApprovals(sql.outbox, query));
  }

  /**
   * An accepted command by id, while the audit table still holds it, consumed or not (not part
   * of the Store contract: only this store's tests read the audit table).
   */
  async getIntent(id: string): Promise<Intent | null> {
    return this.#read('getIntent', (sql) => {
      const row = sql.selectIntent.get({ id });
      return row ? parse<Intent>(row.json) : null;
    });
  }

  #loadSignalKeys(sql: Statements): void {
    this.#signalKeys = new SignalKeys();
    for (const row of sql.selectSignalKeys.all()) {
      const key = Number(row.key);
      this.#signalKeys.set(text(row.target), text(row.id), key);
      this.#lastSignalKey = Math.max(this.#lastSignalKey, key);
    }
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
    outbox.queueMessages(sql.outbox, this.#route, event, this.#now().toISOString());
  }

  /** Queues `fn` for the next group commit; resolves with its result once committed and synced. */
  #write<T>(what: string, fn: (sql: Statements) => T | Generator<void, T>): Promise<T> {
    const commits = this.#commits;
    if (commits === null) return Promise.reject(this.#closedError(what));
    return commits.write(what, fn);
  }

  /** Runs `fn` on the open database once no transaction is open, and wraps any failure. */
  async #read<T>(what: string, fn: (sql: Statements) => T): Promise<T> {
    await this.#commits?.settled();
    const { sql } = this.#open(what);
    try {
      return fn(sql);
    } catch (err) {
      throw new StoreUnavailableError(`${what} failed: ${message(err)}`, { cause: err });
    }
  }

  #open(what: string): { sql: Statements; db: DatabaseSync } {
    const db = this.#db;
    const sql = this.#sql;
    if (!db || !sql) throw this.#closedError(what);
    const broken = this.#commits?.broken ?? null;
    if (broken !== null) throw new StoreUnavailableError(`${what}: ${broken}`);
    return { sql, db };
  }

  #closedError(what: string): StoreUnavailableError {
    return new StoreUnavailableError(`${what}: the store is ${this.#closed ? 'closed' : 'not initialised'}`);
  }
}

/**
 * A record as saved by any version: records written before API pauses and retry budgets
 * (schema 1) lack `pause` and `retry`, which mean "none" there, so callers always get every field.
 */
function completeRecord(saved: Omit<TargetRecord, 'pause' | 'retry'> & Partial<TargetRecord>): TargetRecord {
  return { ...saved, pause: saved.pause ?? null, retry: saved.retry ?? null };
}

/**
 * Each stored signal's key, by target and then id: held for every active signal, so kept in two
 * levels rather than under one joined string per signal (a string that would live as long).
 */
class SignalKeys {
  readonly #byTarget = new Map<string, Map<string, number>>();

  get(target: string, id: string): number | undefined {
    return this.#byTarget.get(target)?.get(id);
  }

  set(target: string, id: string, key: number): void {
    let ids = this.#byTarget.get(target);
    if (ids === undefined) this.#byTarget.set(target, (ids = new Map<string, number>()));
    ids.set(id, key);
  }

  delete(target: string, id: string): void {
    const ids = this.#byTarget.get(target);
    if (ids?.delete(id) === true && ids.size === 0) this.#byTarget.delete(target);
  }
}

/**
 * Whether the signal stored under `key` was sent again after `lastSeen` (an expiry's end names
 * the lastSeen it expired with): such an end leaves it. A delivery the engine took while its end
 * of the expiry waited to be written is kept, as among replicas.
 */
function sentSince(sql: Statements, key: number, lastSeen: string | undefined): boolean {
  if (lastSeen === undefined) return false;
  const row = sql.selectSignal.get({ key });
  return row !== undefined && parse<Signal>(row.json).lastSeen > lastSeen;
}

/** A signal's name within one write: its target and id joined by a NUL, which no target name contains. */
function signalName(target: string, id: string): string {
  return `${target}\0${id}`;
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

