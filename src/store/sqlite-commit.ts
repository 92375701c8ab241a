/**
 * The SQLite store's group commit: the writes called during one turn of the event loop (the
 * requests that arrived together) run in one transaction at the next turn, each inside a
 * savepoint of its own, so one sync to disk covers them all. A write that fails rolls back its
 * savepoint only and rejects alone; the others still commit, and a failed COMMIT rejects them
 * all. The cost of a commit is the sync (about as long as the whole request otherwise): 50
 * requests in flight paid 50 syncs one after the other before, and pay one now.
 *
 * The sync runs off the event loop: with `synchronous=NORMAL` a COMMIT writes the write-ahead
 * log without waiting for the disk, and the log is then synced with `fdatasync` on libuv's
 * thread pool before any write of the batch resolves: what `FULL` would have done on the loop.
 *
 * A large write (a delivery of thousands of alerts) is a generator, run in slices of
 * {@link SLICE_MS}, the event loop turning between them; the calls made meanwhile wait for its
 * transaction to end (`settled`), so none sees it half done.
 */
import { closeSync, fdatasync } from 'node:fs';
import type { DatabaseSync } from 'node:sqlite';
import { StoreUnavailableError } from '../errors.js';
import type { Statements } from './sqlite-statements.js';

/** What the group commit needs of the store. */
export interface CommitDeps {
  /** The open database, or a StoreUnavailableError naming `what` when it is not. */
  open(what: string): { sql: Statements; db: DatabaseSync };
  /** The write-ahead log's descriptor to sync, or null when SQLite syncs itself (in memory). */
  wal: number | null;
  /** Runs before each transaction (in it the store brings its memory up to date). */
  beforeCommit(sql: Statements): void;
  /** Runs when a transaction failed as a whole: nothing of it is stored. */
  afterRollback(): void;
}

/** Queues writes and commits them together; see the top of this file. */
export class GroupCommit {
  readonly #deps: CommitDeps;
  /** The writes waiting for the next group commit, in call order. */
  #queued: QueuedWrite[] = [];
  #flushing: ReturnType<typeof setImmediate> | null = null;
  /** The group commit in progress, when it spreads over turns (a large write); resolves when it ends. */
  #transaction: Promise<void> | null = null;
  /** Committed writes waiting for the next sync of the log; a sync in flight covers what committed before it started. */
  #unsynced: (() => void)[] = [];
  #failUnsynced: ((err: unknown) => void)[] = [];
  #syncing: Promise<void> | null = null;
  /** Why nothing more may be acknowledged from this file (a failed sync), or null. */
  broken: string | null = null;

  /** `deps`: how to reach the open database and the store's hooks around a transaction. */
  constructor(deps: CommitDeps) {
    this.#deps = deps;
  }

  /** Resolves once no group commit is in progress (a read then sees whole transactions only). */
  async settled(): Promise<void> {
    while (this.#transaction !== null) await this.#transaction;
  }

  /** Commits what is queued (and what a sync in flight held back) and waits for every sync, then closes the log's descriptor. */
  async close(): Promise<void> {
    for (;;) {
      const transaction = this.#transaction;
      const syncing = this.#syncing;
      if (transaction !== null) await transaction;
      else if (syncing !== null) await syncing;
      else if (this.#queued.length > 0) this.#flush();
      else break;
    }
    if (this.#deps.wal !== null) {
      try {
        closeSync(this.#deps.wal);
      } catch {
        // Already unusable (the failed sync that broke the store): nothing left to release.
      }
    }
  }

  /**
   * Queues `fn` for the next group commit; resolves with its result once committed. Every write
   * goes through here, so no write ever commits alone while others wait.
   */
  write<T>(what: string, fn: (sql: Statements) => T | Generator<void, T>): Promise<T> {
    try {
      this.#deps.open(what);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new StoreUnavailableError(String(err)));
    }
    const committed = new Promise<T>((resolve, reject) => {
      this.#queued.push({ what, fn, resolve: resolve as (value: unknown) => void, reject });
    });
    this.#flushing ??= setImmediate(() => this.#flush());
    return committed;
  }

  /**
   * Commits every queued write in one IMMEDIATE transaction (it takes the write lock up front,
   * so it cannot fail halfway on a lock), each in a savepoint, then settles their promises. A
   * large write spreads the transaction over turns of the event loop; the writes and reads
   * called meanwhile wait for it (see #transaction), so none sees it half done.
   */
  #flush(): void {
    if (this.#flushing !== null) clearImmediate(this.#flushing);
    this.#flushing = null;
    // While the log syncs, writes wait and commit together right after: a commit costs a few
    // hundred microseconds of CPU with its sync, so fewer and larger ones are cheaper, and the
    // wait is the same (a commit made now would wait for the next sync anyway).
    if (this.#transaction !== null || this.#syncing !== null) return;
    const batch = this.#queued;
    this.#queued = [];
    if (batch.length === 0) return;
    let ended = (): void => {};
    this.#transaction = new Promise<void>((resolve) => (ended = resolve));
    void this.#commit(batch).finally(() => {
      this.#transaction = null;
      ended();
      if (this.#queued.length > 0) this.#flushing ??= setImmediate(() => this.#flush());
    });
  }

  async #commit(batch: QueuedWrite[]): Promise<void> {
    const outcomes: Outcome[] = [];
    try {
      const { sql, db } = this.#deps.open('commit');
      this.#deps.beforeCommit(sql);
      sql.begin.run();
      try {
        for (const write of batch) {
          // Synchronous unless the write is large enough to be sliced (see drive).
          const outcome = this.#savepoint(sql, write.fn);
          outcomes.push(outcome instanceof Promise ? await outcome : outcome);
        }
        sql.commit.run();
      } catch (err) {
        rollback(db);
        throw err;
      }
    } catch (err) {
      this.#deps.afterRollback();
      for (const write of batch) write.reject(new StoreUnavailableError(`${write.what} failed: ${message(err)}`, { cause: err }));
      return;
    }
    const settle = () =>
      batch.forEach((write, i) => {
        const outcome = outcomes[i] as (typeof outcomes)[number];
        if (outcome.ok) write.resolve(outcome.value);
        else write.reject(new StoreUnavailableError(`${write.what} failed: ${message(outcome.error)}`, { cause: outcome.error }));
      });
    const wal = this.#deps.wal;
    if (wal === null) {
      settle();
      return;
    }
    this.#unsynced.push(settle);
    this.#failUnsynced.push((err) => {
      for (const write of batch) write.reject(new StoreUnavailableError(`${write.what}: the sync to disk failed: ${message(err)}`, { cause: err }));
    });
    this.#syncing ??= this.#sync(wal);
  }

  /** Runs a write in a savepoint: on failure only its own changes are rolled back. */
  #savepoint(sql: Statements, fn: (sql: Statements) => unknown): Outcome | Promise<Outcome> {
    const failed = (error: unknown): Outcome => {
      sql.rollbackTo.run();
      sql.release.run();
      return { ok: false, error };
    };
    const done = (value: unknown): Outcome => {
      sql.release.run();
      return { ok: true, value };
    };
    sql.savepoint.run();
    try {
      const result = fn(sql);
      if (!isGenerator(result)) return done(result);
      const driven = drive(result);
      return driven instanceof Promise ? driven.then(done, failed) : done(driven.value);
    } catch (error) {
      return failed(error);
    }
  }

  /**
   * Syncs the log on the thread pool, then settles the writes it covers; commits made meanwhile
   * wait for the next sync, started at once. One sync at a time, so they group as commits do.
   */
  async #sync(fd: number): Promise<void> {
    while (this.#unsynced.length > 0) {
      const settle = this.#unsynced;
      const fail = this.#failUnsynced;
      this.#unsynced = [];
      this.#failUnsynced = [];
      const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => fdatasync(fd, resolve));
      if (err === null) {
        for (const f of settle) f();
        continue;
      }
      // What the log held may not be on disk, and a later sync would not say so again (the
      // kernel drops the error once reported): nothing more is acknowledged from this file.
      // Its writes are refused although committed; a restart reads the file as it is.
      this.broken = `the sync to disk of the store failed (${err.message}); restart the daemon`;
      for (const f of [...fail, ...this.#failUnsynced.splice(0)]) f(err);
      this.#unsynced = [];
    }
    this.#syncing = null;
    if (this.#queued.length > 0) this.#flush();
  }

}

/** One write waiting for a group commit. */
interface QueuedWrite {
  what: string;
  fn: (sql: Statements) => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** How one write of a group commit ended. */
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Rows a large write handles between two looks at the clock (see drive). */
export const SLICE_ROWS = 250;

/** How long a large write holds the event loop before it lets other work run. */
const SLICE_MS = 8;

function isGenerator(value: unknown): value is Generator<void, unknown> {
  return typeof value === 'object' && value !== null && typeof (value as Generator).next === 'function' && typeof (value as Generator).throw === 'function';
}

/**
 * Runs a write's generator to its end: at once when it takes less than {@link SLICE_MS} (the
 * usual case, no promise involved), else letting the event loop turn every SLICE_MS.
 */
function drive(write: Generator<void, unknown>): { value: unknown } | Promise<unknown> {
  const started = performance.now();
  for (;;) {
    const step = write.next();
    if (step.done === true) return { value: step.value };
    if (performance.now() - started >= SLICE_MS) return driveSliced(write);
  }
}

async function driveSliced(write: Generator<void, unknown>): Promise<unknown> {
  for (;;) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const slice = performance.now();
    for (;;) {
      const step = write.next();
      if (step.done === true) return step.value;
      if (performance.now() - slice >= SLICE_MS) break;
    }
  }
}

function rollback(db: DatabaseSync): void {
  if (!db.isTransaction) return;
  try {
    db.exec('ROLLBACK');
  } catch {
    // The original error is the one worth reporting; SQLite rolls back on its own when it can't.
  }
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
