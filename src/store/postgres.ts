/**
 * The shared store: PostgreSQL through node-postgres, for one daemon or several replicas of it.
 *
 * Same contract as the SQLite store (store.ts), kept the same way: each multi-part write is one
 * transaction on one pooled connection, and a call resolves after its COMMIT returned, so what
 * it wrote is durable as the server's `synchronous_commit` makes it. Reads are single
 * statements, so each sees one consistent snapshot. There is no group commit here: the server
 * runs transactions side by side and groups their WAL flushes itself.
 *
 * Concurrency, with replicas in mind:
 * - every write that appends events (and so outbox messages) first takes the history lock, a
 *   transaction-scoped advisory lock of the schema: event numbering is "the next after the
 *   newest row", which one writer at a time may compute (postgres-sql.ts `appendEvents`), and
 *   outbox messages then commit in `seq` order, so a notifier reading the head never skips one
 *   committed late under a lower number. Writes without events (most alert deliveries, queued
 *   commands, records) do not wait on it;
 * - signals are upserted by their unique (target, id) key, which keeps a refreshed signal's
 *   row and its arrival `seq`;
 * - a schedule fire is claimed by its primary key, so two replicas claiming it at once get one
 *   true and one false;
 * - calls made at the same time run on connections of their own and commit in the server's
 *   order, which need not be the call order (SQLite's group commit keeps the call order). The
 *   order the contract speaks of is the order of commits; the engine awaits each write of a
 *   target before the next, so a target's commands queue in the order they were accepted.
 *
 * Bounded growth is as in the SQLite store (sqlite.ts says why): events trimmed per target and
 * in total at each insert, the audit table by count, decided approvals beyond the newest 1,000,
 * delivery ids purged at `init` and every {@link PURGE_EVERY} remembers.
 *
 * Every failure — a refused statement, a stopped server, a statement past its timeout, use
 * before `init` or after `close` — rejects with StoreUnavailableError carrying the cause.
 */
import type { Pool } from 'pg';
import { StoreUnavailableError } from '../errors.js';
import type { Approval, Command, Intent, RunningOperation, ScalingEvent, Signal, TargetRecord } from '../types.js';
import { describeError, openPool, redactUrl, transaction } from './postgres-connect.js';
import { advisoryLock, migrate } from './postgres-schema.js';
import * as rows from './postgres-sql.js';
import { SQL } from './postgres-sql.js';
import type { ApprovalDecision, ApprovalQuery, EventQuery, OperationEnd, OutboxMessage, OutboxRouter, ScheduleFire, SignalChange, Store } from './store.js';

/** How far back before a schedule's newest handled fire its older fires are kept. */
export const FIRES_KEPT_MS = 86_400_000;

/** The most events one `listEvents` call returns, whatever limit is asked. */
export const MAX_EVENTS_PAGE = 1000;

/** The most approvals one `listApprovals` call returns. */
export const MAX_APPROVALS_PAGE = 1000;

/** How many `rememberDelivery` calls pass between two purges of expired delivery ids. */
export const PURGE_EVERY = 256;

/** The lock every event-appending write takes first (see the top of this file). */
const HISTORY_LOCK = advisoryLock('history');

/** How the PostgreSQL store is set up. */
export interface PostgresStoreOptions {
  /** A libpq-style URL (`postgres://user:pass@host:5432/db`); `?options=-c search_path=s` picks a schema. */
  url: string;
  /** Connections open at most (default 10). */
  poolSize?: number;
  /** The server cancels a statement running longer (default 5,000 ms); also the wait for a connection. */
  statementTimeoutMs?: number;
  /** Events kept per target (default 10,000). */
  historyLimit?: number;
  /** Events kept in all, across targets (default 100,000). */
  historyTotalLimit?: number;
  /** Accepted commands kept in the audit table (default 100,000). */
  intentLimit?: number;
  /** Which notification destinations each appended event goes to (none without it). */
  route?: OutboxRouter;
  /** The clock deliveries expire by and outbox messages are stamped with (default: the system's). */
  now?: () => Date;
}

/** The PostgreSQL implementation of {@link Store}. */
export class PostgresStore implements Store {
  readonly #url: string;
  readonly #poolSize: number;
  readonly #statementTimeoutMs: number;
  readonly #historyLimit: number;
  readonly #historyTotalLimit: number;
  readonly #intentLimit: number;
  readonly #route: OutboxRouter | null;
  readonly #now: () => Date;
  #pool: Pool | null = null;
  #opening: Promise<void> | null = null;
  #closed = false;
  /** Calls under way, which `close` lets finish: their callers are waiting for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #remembersSincePurge = 0;

  constructor(opts: PostgresStoreOptions) {
    this.#url = opts.url;
    this.#poolSize = positiveInt('poolSize', opts.poolSize ?? 10);
    this.#statementTimeoutMs = positiveInt('statementTimeoutMs', opts.statementTimeoutMs ?? 5_000);
    this.#historyLimit = positiveInt('historyLimit', opts.historyLimit ?? 10_000);
    this.#historyTotalLimit = positiveInt('historyTotalLimit', opts.historyTotalLimit ?? 100_000);
    this.#intentLimit = positiveInt('intentLimit', opts.intentLimit ?? 100_000);
    this.#route = opts.route ?? null;
    this.#now = opts.now ?? (() => new Date());
  }

  /**
   * Connects, migrates the schema (once across replicas, see postgres-schema.ts) and purges
   * expired delivery ids. A second call does nothing; a failed one may be retried.
   */
  async init(): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError('cannot init a closed store');
    if (this.#pool !== null) return;
    this.#opening ??= this.#open().finally(() => {
      this.#opening = null;
    });
    return this.#opening;
  }

  async #open(): Promise<void> {
    const pool = openPool({ url: this.#url, poolSize: this.#poolSize, statementTimeoutMs: this.#statementTimeoutMs });
    try {
      await migrate(pool);
      await pool.query(SQL.purgeDeliveries, [this.#now().getTime()]);
      if (this.#closed) throw new Error('the store was closed while it opened');
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new StoreUnavailableError(`cannot open the store at ${redactUrl(this.#url)}: ${describeError(err)}`, { cause: err });
    }
    this.#pool = pool;
  }

  /** Lets the calls under way finish, then closes every connection; later calls reject. Safe to call twice, and before `init`. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#opening?.catch(() => undefined);
    const pool = this.#pool;
    this.#pool = null;
    await Promise.allSettled([...this.#inFlight]);
    if (pool === null || pool.ended) return;
    try {
      await pool.end();
    } catch (err) {
      throw new StoreUnavailableError(`cannot close the store: ${describeError(err)}`, { cause: err });
    }
  }

  async addCommand(command: Command): Promise<void> {
    await this.#run('addCommand', (pool) => rows.queueCommand(pool, command, this.#intentLimit));
  }

  async loadCommands(): Promise<Map<string, Command[]>> {
    const found = await this.#select<{ target: string; json: string }>('loadCommands', SQL.selectCommands);
    const queues = new Map<string, Command[]>();
    for (const row of found) {
      const queue = queues.get(row.target) ?? [];
      queue.push(JSON.parse(row.json) as Command);
      queues.set(row.target, queue);
    }
    return queues;
  }

  async claimFire(fire: ScheduleFire, made: { command: Command | null; event: ScalingEvent | null }): Promise<boolean> {
    const at = Date.parse(fire.at);
    if (Number.isNaN(at)) throw new StoreUnavailableError(`claimFire: not a date: "${fire.at}"`);
    const events = made.event === null ? [] : [made.event];
    return this.#write('claimFire', events, async (client) => {
      const claimed = await client.query(SQL.claimFire, [fire.target, fire.schedule, at, fire.outcome]);
      // Nothing written: the transaction commits empty.
      if (claimed.rowCount !== 1) return false;
      await client.query(SQL.trimFires, [fire.target, fire.schedule, at - FIRES_KEPT_MS]);
      if (made.command !== null) await rows.queueCommand(client, made.command, this.#intentLimit);
      await this.#appendEvents(client, events);
      return true;
    });
  }

  async lastFires(): Promise<ScheduleFire[]> {
    const found = await this.#select<{ target: string; schedule: string; fire_at: string; outcome: string }>('lastFires', SQL.lastFires);
    return found.map((row) => ({
      target: row.target,
      schedule: row.schedule,
      at: new Date(Number(row.fire_at)).toISOString(),
      outcome: row.outcome === 'missed' ? ('missed' as const) : ('fired' as const),
    }));
  }

  async applySignals(change: SignalChange): Promise<void> {
    // Without events it is one statement: no transaction, and no wait on the history lock.
    if (change.events.length === 0) {
      await this.#run('applySignals', (pool) => rows.writeSignals(pool, change.upsert, change.end));
      return;
    }
    await this.#write('applySignals', change.events, async (client) => {
      await rows.writeSignals(client, change.upsert, change.end);
      await this.#appendEvents(client, change.events);
    });
  }

  async loadSignals(): Promise<Signal[]> {
    const found = await this.#select<{ json: string }>('loadSignals', SQL.selectSignals);
    return found.map((row) => JSON.parse(row.json) as Signal);
  }

  async startOperation(target: string, running: RunningOperation): Promise<void> {
    await this.#run('startOperation', (pool) => pool.query(SQL.upsertRunning, [target, JSON.stringify(running)]));
  }

  async markApplying(target: string, running: RunningOperation): Promise<void> {
    await this.#run('markApplying', (pool) => pool.query(SQL.updateRunning, [target, JSON.stringify(running)]));
  }

  async finishOperation(target: string, end: OperationEnd): Promise<void> {
    await this.#write('finishOperation', end.events, async (client) => {
      await client.query(SQL.deleteRunning, [target]);
      await this.#appendEvents(client, end.events);
      await rows.consumeCommands(client, target, end.consumed);
      await client.query(SQL.upsertTarget, [end.record.name, JSON.stringify(end.record)]);
      for (const approval of end.approvals ?? []) await rows.saveApproval(client, approval);
    });
  }

  async loadRunning(): Promise<Map<string, RunningOperation>> {
    const found = await this.#select<{ target: string; json: string }>('loadRunning', SQL.selectRunning);
    return new Map(found.map((row) => [row.target, JSON.parse(row.json) as RunningOperation]));
  }

  async saveTarget(record: TargetRecord): Promise<void> {
    await this.#run('saveTarget', (pool) => pool.query(SQL.upsertTarget, [record.name, JSON.stringify(record)]));
  }

  async loadTargets(): Promise<Map<string, TargetRecord>> {
    const found = await this.#select<{ name: string; json: string }>('loadTargets', SQL.selectTargets);
    return new Map(found.map((row) => [row.name, JSON.parse(row.json) as TargetRecord]));
  }

  async appendEvent(event: ScalingEvent): Promise<void> {
    await this.#write('appendEvent', [event], (client) => this.#appendEvents(client, [event]));
  }

  async listEvents(query: EventQuery): Promise<ScalingEvent[]> {
    const limit = Number.isFinite(query.limit) ? Math.min(MAX_EVENTS_PAGE, Math.max(0, Math.floor(query.limit))) : MAX_EVENTS_PAGE;
    const { text, values } = rows.listEventsQuery({ ...query, limit });
    const found = await this.#select<{ json: string }>('listEvents', text, values);
    return found.map((row) => JSON.parse(row.json) as ScalingEvent);
  }

  async lastEvents(): Promise<Map<string, ScalingEvent>> {
    const found = await this.#select<{ json: string }>('lastEvents', SQL.lastEvents);
    const last = new Map<string, ScalingEvent>();
    for (const row of found) {
      const event = JSON.parse(row.json) as ScalingEvent;
      last.set(event.target, event);
    }
    return last;
  }

  async rememberDelivery(key: string, expiresAt: string): Promise<boolean> {
    const expires = Date.parse(expiresAt);
    if (Number.isNaN(expires)) throw new StoreUnavailableError(`rememberDelivery: expiresAt is not a date: "${expiresAt}"`);
    const now = this.#now().getTime();
    const purge = ++this.#remembersSincePurge >= PURGE_EVERY;
    if (purge) this.#remembersSincePurge = 0;
    return this.#run('rememberDelivery', async (pool) => {
      // The purge needs no transaction with the remembrance: each is right on its own.
      if (purge) await pool.query(SQL.purgeDeliveries, [now]);
      const result = await pool.query(SQL.rememberDelivery, [key, expires, now]);
      return result.rowCount === 1;
    });
  }

  async forgetDelivery(key: string): Promise<void> {
    await this.#run('forgetDelivery', (pool) => pool.query(SQL.forgetDelivery, [key]));
  }

  async nextMessage(destination: string): Promise<OutboxMessage | null> {
    type Row = { seq: string; destination: string; created_at: string; attempts: number; not_before: string | null; json: string };
    const [row] = await this.#select<Row>('nextMessage', SQL.nextMessage, [destination]);
    if (row === undefined) return null;
    return {
      seq: Number(row.seq),
      destination: row.destination,
      event: JSON.parse(row.json) as ScalingEvent,
      createdAt: row.created_at,
      attempts: row.attempts,
      notBefore: row.not_before === null ? null : new Date(Number(row.not_before)).toISOString(),
    };
  }

  async removeMessage(seq: number): Promise<void> {
    await this.#run('removeMessage', (pool) => pool.query(SQL.deleteMessage, [seq]));
  }

  async deferMessage(seq: number, attempts: number, notBefore: string): Promise<void> {
    const at = Date.parse(notBefore);
    if (Number.isNaN(at)) throw new StoreUnavailableError(`deferMessage: notBefore is not a date: "${notBefore}"`);
    await this.#run('deferMessage', (pool) => pool.query(SQL.deferMessage, [seq, attempts, at]));
  }

  async countMessages(): Promise<Map<string, number>> {
    // count(*) is a BIGINT, which node-postgres gives as a string.
    const found = await this.#select<{ destination: string; n: string }>('countMessages', SQL.countMessages);
    return new Map(found.map((row) => [row.destination, Number(row.n)]));
  }

  async dropMessagesExcept(keep: readonly string[]): Promise<Map<string, number>> {
    const result = await this.#run('dropMessagesExcept', (pool) => pool.query<{ destination: string }>(SQL.deleteDestinationsExcept, [[...keep]]));
    const dropped = new Map<string, number>();
    for (const row of result.rows) dropped.set(row.destination, (dropped.get(row.destination) ?? 0) + 1);
    return dropped;
  }

  async saveApproval(approval: Approval, also: ApprovalDecision = {}): Promise<void> {
    const events = also.event === undefined ? [] : [also.event];
    await this.#write('saveApproval', events, async (client) => {
      await rows.saveApproval(client, approval);
      await this.#appendEvents(client, events);
      if (also.record !== undefined) await client.query(SQL.upsertTarget, [also.record.name, JSON.stringify(also.record)]);
      await rows.consumeCommands(client, approval.target, also.consumed ?? []);
    });
  }

  async getApproval(id: string): Promise<Approval | null> {
    const [row] = await this.#select<{ json: string }>('getApproval', SQL.selectApproval, [id]);
    return row === undefined ? null : (JSON.parse(row.json) as Approval);
  }

  async listApprovals(query: ApprovalQuery): Promise<Approval[]> {
    const limit = Number.isFinite(query.limit) ? Math.min(MAX_APPROVALS_PAGE, Math.max(0, Math.floor(query.limit))) : MAX_APPROVALS_PAGE;
    const found =
      query.status === undefined
        ? await this.#select<{ json: string }>('listApprovals', SQL.listApprovals, [limit])
        : await this.#select<{ json: string }>('listApprovals', SQL.listApprovalsIn, [limit, query.status]);
    return found.map((row) => JSON.parse(row.json) as Approval);
  }

  /**
   * An accepted command by id, while the audit table still holds it, consumed or not (not part
   * of the Store contract: only this store's tests read the audit table).
   */
  async getIntent(id: string): Promise<Intent | null> {
    const [row] = await this.#select<{ json: string }>('getIntent', SQL.selectIntent, [id]);
    return row === undefined ? null : (JSON.parse(row.json) as Intent);
  }

  /** Appends events with their outbox messages, inside a transaction holding the history lock. */
  async #appendEvents(client: rows.Queryable, events: readonly ScalingEvent[]): Promise<void> {
    if (events.length === 0) return;
    const messages: rows.OutboxRow[] = [];
    for (const event of events) {
      const destinations = this.#route?.(event) ?? [];
      if (destinations.length === 0) continue;
      const json = JSON.stringify(event);
      for (const destination of destinations) messages.push({ destination, json });
    }
    const limits = { historyLimit: this.#historyLimit, historyTotalLimit: this.#historyTotalLimit };
    await rows.appendEvents(client, events, messages, this.#now().toISOString(), limits);
  }

  /** Runs `fn` in a transaction, under the history lock when it appends `events`. */
  #write<T>(what: string, events: readonly ScalingEvent[], fn: (client: rows.Queryable) => Promise<T>): Promise<T> {
    return this.#run(what, (pool) => transaction(pool, events.length > 0 ? HISTORY_LOCK : null, fn));
  }

  /** One read statement's rows. */
  #select<R extends object>(what: string, text: string, values: unknown[] = []): Promise<R[]> {
    return this.#run(what, async (pool) => (await pool.query<R & Record<string, unknown>>(text, values)).rows);
  }

  /** Runs `fn` on the open pool, counted as in flight, and wraps any failure. */
  async #run<T>(what: string, fn: (pool: Pool) => Promise<T>): Promise<T> {
    const pool = this.#pool;
    if (pool === null) throw new StoreUnavailableError(`${what}: the store is ${this.#closed ? 'closed' : 'not initialised'}`);
    // Started in a promise, so that even a synchronous throw is wrapped like the rest.
    const call = Promise.resolve(pool).then(fn);
    this.#inFlight.add(call);
    try {
      return await call;
    } catch (err) {
      throw new StoreUnavailableError(`${what} failed: ${describeError(err)}`, { cause: err });
    } finally {
      this.#inFlight.delete(call);
    }
  }
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
