/**
 * The SQLite store's schema, as an ordered list of migrations, and the connection settings
 * that make "acknowledged means durable" true for a single file.
 *
 * Why migrations keyed on `PRAGMA user_version`: the version lives in the database header and
 * changes in the same transaction as the schema, so a crash mid-upgrade leaves the file at the
 * old version, never half-migrated. Migrations are append-only: once released, a migration is
 * never edited; a change to the schema is a new entry at the end.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/**
 * Migration `i` takes the schema from version `i` to `i + 1`.
 *
 * Tables:
 * - `intents`: every accepted intent, an audit record (pending slots carry their own copy, so
 *   trimming this table never loses work). Its implicit rowid orders intents by acceptance.
 * - `pending`: at most one `queued` and one `running` pending intent per target.
 * - `targets`: each target's durable record.
 * - `events`: the history. `seq` orders it globally (AUTOINCREMENT, so a seq is never reused
 *   even after the newest rows are trimmed and a page cursor stays meaningful); `n` numbers a
 *   target's events 1, 2, 3… so trimming to the newest N is one range delete on an index
 *   instead of counting rows.
 * - `deliveries`: delivery ids seen (replay protection), with their expiry in epoch ms so
 *   comparisons do not depend on how an ISO string was spelled.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE intents (
    id TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    received_at TEXT NOT NULL,
    json TEXT NOT NULL
  );
  CREATE TABLE pending (
    target TEXT NOT NULL,
    slot TEXT NOT NULL CHECK (slot IN ('queued', 'running')),
    json TEXT NOT NULL,
    PRIMARY KEY (target, slot)
  );
  CREATE TABLE targets (
    name TEXT PRIMARY KEY,
    json TEXT NOT NULL
  );
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    n INTEGER NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    json TEXT NOT NULL
  );
  CREATE INDEX events_target_seq ON events (target, seq);
  CREATE UNIQUE INDEX events_target_n ON events (target, n);
  CREATE TABLE deliveries (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX deliveries_expires_at ON deliveries (expires_at);
  `,
];

/** The schema version this build writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The path SQLite reads as "a private in-memory database". */
export const MEMORY_PATH = ':memory:';

/**
 * Opens a connection with the settings durability depends on: WAL (readers never block the
 * writer), `synchronous=FULL` (a commit is on disk before it returns, which is the whole point
 * of the store) and a busy timeout (an operator's `sqlite3` shell holding a lock delays a write
 * instead of failing it). Creates the parent folder of a file path. Throws what SQLite or the
 * file system throws; the store wraps it.
 */
export function openDatabase(file: string, opts: { busyTimeoutMs: number }): DatabaseSync {
  if (file !== MEMORY_PATH) mkdirSync(path.dirname(file), { recursive: true });
  const db = new DatabaseSync(file, { timeout: opts.busyTimeoutMs });
  try {
    // Read the header first: a file that is not a database fails here, before anything writes.
    readUserVersion(db);
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = FULL');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** The schema version recorded in the database header (0 for a new file). */
export function readUserVersion(db: DatabaseSync): number {
  const row = db.prepare('PRAGMA user_version').get();
  return Number(row?.user_version ?? 0);
}

/**
 * Brings the schema up to {@link SCHEMA_VERSION}, one migration per transaction, each setting
 * `user_version` before it commits. A database written by a newer build is refused with its schema unchanged:
 * running old code on a newer schema could silently drop what the newer code relies on.
 */
export function migrate(db: DatabaseSync): void {
  const from = readUserVersion(db);
  if (from > SCHEMA_VERSION) {
    throw new Error(
      `database schema version ${from} is newer than this PulumiScale understands (${SCHEMA_VERSION}); ` +
        'upgrade PulumiScale or point store.path at another file',
    );
  }
  for (let version = from; version < SCHEMA_VERSION; version++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(MIGRATIONS[version] ?? '');
      // PRAGMA takes no bound parameters; the value is an integer we computed.
      db.exec(`PRAGMA user_version = ${version + 1}`);
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }
}
