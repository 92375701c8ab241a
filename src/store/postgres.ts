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
 * Several replicas (store.ts `ClusterStore`; the statements are in postgres-sql.ts):
 * - a fenced write is a transaction whose first statement checks the lease `FOR SHARE`, so the
 *   lease cannot change hands until the write committed; a write whose lease is gone rolls back
 *   whole and rejects with LeaseLostError. Unfenced, a write is what it was for one daemon;
 * - a fenced record write keeps the pause the row holds: pauses are written by whichever
 *   replica took the request (`savePause`), and the holder hears of them through `watch`;
 * - writes of inputs (commands, signals, pauses, approvals' decisions) `pg_notify` the store's
 *   channel (postgres-schema.ts `inputChannel`) with their target, which PostgreSQL delivers at
 *   commit to each `watch`, a connection of its own outside the pool. A replica alone turns
 *   this off (`notifyOthers`): notifying commits are serialized database-wide;
 * - a destination's head message is claimed by one replica at a time (`nextMessage`), for as
 *   long as its post may take ({@link claimMs}), so that replicas never send a message twice nor
 *   out of order.
 *
 * Bounded growth is as in the SQLite store (sqlite.ts says why): events trimmed per target and
 * in total at each insert, the audit table by count, decided approvals beyond the newest 1,000,
 * delivery ids purged at `init` and every {@link PURGE_EVERY} remembers.
 *
 * Every failure — a refused statement, a stopped server, a statement past its timeout, use
 * before `init` or after `close` — rejects with StoreUnavailableError carrying the cause.
 */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { LeaseLostError, StoreUnavailableError } from '../errors.js';
import type { Approval, Command, Intent, Pause, RunningOperation, ScalingEvent, Signal, TargetRecord } from '../types.js';
import { describeError, listen, openPool, redactUrl, transaction, type PoolOptions } from './postgres-connect.js';
import { SignalBatcher } from './postgres-batch.js';
import { advisoryLock, inputChannel, migrate } from './postgres-schema.js';
import * as rows from './postgres-sql.js';
import { SQL } from './postgres-sql.js';
import type { ApprovalDecision, ApprovalQuery, ClusterStore, EventQuery, Fence, Lease, OperationEnd, OutboxMessage } from './store.js';
import type { OutboxRouter, ReplicaSeen, ScheduleFire, SignalChange, Store } from './store.js';

/** How far back before a schedule's newest handled fire its older fires are kept. */
export const FIRES_KEPT_MS = 86_400_000;

/** The most events one `listEvents` call returns, whatever limit is asked. */
export const MAX_EVENTS_PAGE = 1000;

/** The most approvals one `listApprovals` call returns. */
export const MAX_APPROVALS_PAGE = 1000;

/** How many `rememberDelivery` calls pass between two purges of expired delivery ids. */
export const PURGE_EVERY = 256;

/**
 * How long a replica's claim on a destination's head message lasts (`nextMessage`): another
 * replica may send it only after. Longer than a delivery attempt takes (a destination's
 * `timeout`, 10 s by default; a destination whose timeout is longer gets a longer claim, see
 * {@link claimMs}), so that a live claimer's post is never repeated by another; short enough
 * that the messages of a replica that crashed mid-send go out within minutes.
 */
export const MESSAGE_CLAIM_MS = 120_000;

/** What a claim adds to a delivery attempt's own time: the formatting, the post's start, the store's write of the outcome. */
export const CLAIM_MARGIN_MS = 30_000;

/** How long a claim lasts for an attempt that may take `attemptMs`: {@link MESSAGE_CLAIM_MS}, longer for a longer attempt. */
export function claimMs(attemptMs: number): number {
  return Math.max(MESSAGE_CLAIM_MS, attemptMs + CLAIM_MARGIN_MS);
}

/** How long a replica unseen stays in the replica table (at least; 100 heartbeat TTLs if longer). */
export const REPLICA_FORGOTTEN_MS = 3_600_000;

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
  /** Who claims outbox messages (`nextMessage`): the replica's id (default: one of this store's own). */
  replicaId?: string;
}

/** The PostgreSQL implementation of {@link Store}, shared by replicas as a {@link ClusterStore}. */
export class PostgresStore implements Store, ClusterStore {
  readonly #connection: PoolOptions;
  readonly #historyLimit: number;
  readonly #historyTotalLimit: number;
  readonly #intentLimit: number;
  readonly #route: OutboxRouter | null;
  readonly #now: () => Date;
  readonly #replicaId: string;
  #notifyInputs: boolean;
  /** Alert deliveries without events, committed together. */
  readonly #signalWrites = new SignalBatcher((upsert, end) => this.#run('applySignals', (pool) => rows.writeSignals(pool, upsert, end, this.#told())));
  /** The server process ids of the pool's connections (see `watch`). */
  readonly #ownBackends = new Set<number>();
  #pool: Pool | null = null;
  /** The store's NOTIFY channel, known once open (it is the schema's). */
  #channel = '';
  /** The stop functions of the watches open, which `close` calls. */
  readonly #watches = new Set<() => Promise<void>>();
  #opening: Promise<void> | null = null;
  #closed = false;
  /** Calls under way, which `close` lets finish: their callers are waiting for them. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #remembersSincePurge = 0;

  constructor(opts: PostgresStoreOptions) {
    this.#connection = {
      url: opts.url,
      poolSize: positiveInt('poolSize', opts.poolSize ?? 10),
      statementTimeoutMs: positiveInt('statementTimeoutMs', opts.statementTimeoutMs ?? 5_000),
    };
    this.#historyLimit = positiveInt('historyLimit', opts.historyLimit ?? 10_000);
    this.#historyTotalLimit = positiveInt('historyTotalLimit', opts.historyTotalLimit ?? 100_000);
    this.#intentLimit = positiveInt('intentLimit', opts.intentLimit ?? 100_000);
    this.#route = opts.route ?? null;
    this.#now = opts.now ?? (() => new Date());
    this.#replicaId = opts.replicaId ?? randomUUID();
    this.#notifyInputs = true;
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
    const pool = openPool(this.#connection);
    // The server processes of this store's own connections: word of their writes is not news to it.
    pool.on('connect', (client) => this.#ownBackends.add(backendOf(client)));
    pool.on('remove', (client) => this.#ownBackends.delete(backendOf(client)));
    try {
      await migrate(pool);
      await pool.query(SQL.purgeDeliveries, [this.#now().getTime()]);
      const schema = await pool.query<{ schema: string | null }>('SELECT current_schema() AS schema');
      this.#channel = inputChannel(schema.rows[0]?.schema ?? 'public');
      if (this.#closed) throw new Error('the store was closed while it opened');
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new StoreUnavailableError(`cannot open the store at ${redactUrl(this.#connection.url)}: ${describeError(err)}`, { cause: err });
    }
    this.#pool = pool;
  }

  /** Lets the calls under way finish, then closes every connection; later calls reject. Safe to call twice, and before `init`. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#opening?.catch(() => undefined);
    // Deliveries already taken are written before the pool goes.
    await this.#signalWrites.idle();
    const pool = this.#pool;
    this.#pool = null;
    await Promise.allSettled([...this.#inFlight]);
    await Promise.allSettled([...this.#watches].map((stop) => stop()));
    this.#watches.clear();
    if (pool === null || pool.ended) return;
    try {
      await pool.end();
    } catch (err) {
      throw new StoreUnavailableError(`cannot close the store: ${describeError(err)}`, { cause: err });
    }
  }

  async addCommand(command: Command, fence?: Fence): Promise<void> {
    await this.#single('addCommand', fence, (q) => rows.queueCommand(q, command, this.#intentLimit, this.#told()));
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

  async claimFire(fire: ScheduleFire, made: { command: Command | null; event: ScalingEvent | null }, fence?: Fence): Promise<boolean> {
    const at = Date.parse(fire.at);
    if (Number.isNaN(at)) throw new StoreUnavailableError(`claimFire: not a date: "${fire.at}"`);
    const events = made.event === null ? [] : [made.event];
    return this.#write('claimFire', events, async (client) => {
      const claimed = await client.query(SQL.claimFire, [fire.target, fire.schedule, at, fire.outcome]);
      // Nothing written: the transaction commits empty.
      if (claimed.rowCount !== 1) return false;
      await client.query(SQL.trimFires, [fire.target, fire.schedule, at - FIRES_KEPT_MS]);
      // Unheard: a fire is queued by the schedule's own replica, the stack's holder.
      if (made.command !== null) await rows.queueCommand(client, made.command, this.#intentLimit, null);
      await this.#appendEvents(client, events);
      return true;
    }, fence);
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
    // Without events it is written with the deliveries that arrive meanwhile (postgres-batch.ts):
    // one statement for them all, no transaction, and no wait on the history lock.
    if (change.events.length === 0) {
      await this.#signalWrites.add(change.upsert, change.end);
      return;
    }
    await this.#write('applySignals', change.events, async (client) => {
      await rows.writeSignals(client, change.upsert, change.end, this.#told());
      await this.#appendEvents(client, change.events);
    });
  }

  async loadSignals(): Promise<Signal[]> {
    const found = await this.#select<{ json: string }>('loadSignals', SQL.selectSignals);
    return found.map((row) => JSON.parse(row.json) as Signal);
  }

  async startOperation(target: string, running: RunningOperation, fence?: Fence): Promise<void> {
    await this.#single('startOperation', fence, (q) => q.query(SQL.upsertRunning, [target, JSON.stringify(running)]));
  }

  async markApplying(target: string, running: RunningOperation, fence?: Fence): Promise<void> {
    await this.#single('markApplying', fence, (q) => q.query(SQL.updateRunning, [target, JSON.stringify(running)]));
  }

  async finishOperation(target: string, end: OperationEnd, fence?: Fence): Promise<void> {
    await this.#write('finishOperation', end.events, async (client) => {
      await client.query(SQL.deleteRunning, [target]);
      await this.#appendEvents(client, end.events);
      await rows.consumeCommands(client, target, end.consumed);
      await rows.saveRecord(client, end.record, fence !== undefined);
      for (const approval of end.approvals ?? []) await rows.saveApproval(client, approval);
    }, fence);
  }

  async loadRunning(): Promise<Map<string, RunningOperation>> {
    const found = await this.#select<{ target: string; json: string }>('loadRunning', SQL.selectRunning);
    return new Map(found.map((row) => [row.target, JSON.parse(row.json) as RunningOperation]));
  }

  async saveTarget(record: TargetRecord, fence?: Fence): Promise<void> {
    await this.#single('saveTarget', fence, (q) => rows.saveRecord(q, record, fence !== undefined));
  }

  async loadTargets(): Promise<Map<string, TargetRecord>> {
    const found = await this.#select<{ name: string; json: string }>('loadTargets', SQL.selectTargets);
    return new Map(found.map((row) => [row.name, JSON.parse(row.json) as TargetRecord]));
  }

  async appendEvent(event: ScalingEvent, fence?: Fence): Promise<void> {
    await this.#write('appendEvent', [event], (client) => this.#appendEvents(client, [event]), fence);
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

  /** The destination's head message, claimed for this store's replica for {@link claimMs} of `attemptMs`; null when another replica's claim on it lives. */
  async nextMessage(destination: string, attemptMs = 0): Promise<OutboxMessage | null> {
    type Row = { seq: string; destination: string; created_at: string; attempts: number; not_before: string | null; json: string };
    const [row] = await this.#select<Row>('nextMessage', SQL.nextMessage, [destination, this.#replicaId, claimMs(attemptMs)]);
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

  async saveApproval(approval: Approval, also: ApprovalDecision = {}, fence?: Fence): Promise<void> {
    const events = also.event === undefined ? [] : [also.event];
    await this.#write('saveApproval', events, async (client) => {
      await rows.saveApproval(client, approval);
      await this.#appendEvents(client, events);
      if (also.record !== undefined) await rows.saveRecord(client, also.record, fence !== undefined);
      await rows.consumeCommands(client, approval.target, also.consumed ?? []);
      await rows.notify(client, this.#told(), approval.target);
    }, fence);
  }

  async decideApproval(decided: Approval): Promise<boolean> {
    return this.#write('decideApproval', [], async (client) => {
      const changed = await client.query(SQL.decidePending, [decided.id, decided.status, JSON.stringify(decided)]);
      if (changed.rowCount !== 1) return false;
      await rows.notify(client, this.#told(), decided.target);
      return true;
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

  async heartbeat(self: { id: string; startedAt: string; draining: boolean }, ttlMs: number): Promise<ReplicaSeen[]> {
    const forgetMs = Math.max(REPLICA_FORGOTTEN_MS, 100 * ttlMs);
    return this.#run('heartbeat', (pool) => rows.heartbeat(pool, self, ttlMs, forgetMs));
  }

  async acquireLeases(owner: string, stacks: readonly string[], max: number, ttlMs: number): Promise<Lease[]> {
    const wanted = [...new Set(stacks)];
    return this.#run('acquireLeases', async (pool) => (max < 1 || wanted.length === 0 ? [] : rows.acquireLeases(pool, owner, wanted, Math.floor(max), ttlMs)));
  }

  async renewLeases(held: readonly Fence[], ttlMs: number): Promise<Lease[]> {
    return this.#run('renewLeases', async (pool) => (held.length === 0 ? [] : rows.renewLeases(pool, held, ttlMs)));
  }

  async releaseLeases(held: readonly Fence[]): Promise<void> {
    await this.#run('releaseLeases', async (pool) => (held.length === 0 ? undefined : rows.releaseLeases(pool, held)));
  }

  async listLeases(): Promise<Lease[]> {
    return this.#run('listLeases', (pool) => rows.listLeases(pool));
  }

  async savePause(target: string, pause: Pause | null): Promise<void> {
    await this.#write('savePause', [], async (client) => {
      await rows.savePause(client, target, pause);
      await rows.notify(client, this.#told(), target);
    });
  }

  /** Listens on a connection of its own (not the pool's), which `close` ends too. */
  async watch(listener: (target: string) => void, lost: (err: Error) => void): Promise<() => Promise<void>> {
    return this.#run('watch', async () => {
      let stopListening: (() => Promise<void>) | undefined = undefined;
      const ended = (err: Error): void => {
        if (stopListening !== undefined) this.#watches.delete(stopListening);
        lost(err);
      };
      const heard = (target: string, from: number): void => {
        if (!this.#ownBackends.has(from)) listener(target);
      };
      stopListening = await listen(this.#connection, this.#channel, heard, ended);
      const stop = stopListening;
      this.#watches.add(stop);
      return async () => {
        this.#watches.delete(stop);
        await stop();
      };
    });
  }

  /**
   * An accepted command by id, while the audit table still holds it, consumed or not (not part
   * of the Store contract: only this store's tests read the audit table).
   */
  async getIntent(id: string): Promise<Intent | null> {
    const [row] = await this.#select<{ json: string }>('getIntent', SQL.selectIntent, [id]);
    return row === undefined ? null : (JSON.parse(row.json) as Intent);
  }

  notifyOthers(on: boolean): void {
    this.#notifyInputs = on;
  }

  /** The channel writes of inputs notify, or null when they notify none. */
  #told(): string | null {
    return this.#notifyInputs ? this.#channel : null;
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

  /**
   * Runs `fn` in a transaction, under the history lock when it appends `events`; with a fence,
   * first checks that it holds (rejecting with LeaseLostError, the transaction rolled back).
   */
  #write<T>(what: string, events: readonly ScalingEvent[], fn: (client: rows.Queryable) => Promise<T>, fence?: Fence): Promise<T> {
    return this.#run(what, (pool) =>
      transaction(pool, events.length > 0 ? HISTORY_LOCK : null, async (client) => {
        if (fence !== undefined && !(await rows.holdsLease(client, fence))) {
          throw new LeaseLostError(fence.stack, `${what}: the lease of ${fence.stack} is no longer held at epoch ${fence.epoch}`);
        }
        return fn(client);
      }),
    );
  }

  /** A write that is one statement unfenced, run on its own; fenced, in a transaction that checks the fence first. */
  #single<T>(what: string, fence: Fence | undefined, fn: (q: rows.Queryable) => Promise<T>): Promise<T> {
    return fence === undefined ? this.#run(what, fn) : this.#write(what, [], fn, fence);
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
      // Already a StoreUnavailableError, and one the engine tells apart by its class.
      if (err instanceof LeaseLostError) throw err;
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

/** The server process id of a pooled connection (node-postgres keeps it, its types do not say so). */
function backendOf(client: object): number {
  return (client as { processID?: number | null }).processID ?? -1;
}
