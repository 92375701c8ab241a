/**
 * The SQLite store's schema, as an ordered list of migrations, and the connection settings
 * that make "acknowledged means durable" true for a single file.
 *
 * Why migrations keyed on `PRAGMA user_version`: the version lives in the database header and
 * changes in the same transaction as the schema, so a crash mid-upgrade leaves the file at the
 * old version, never half-migrated. Migrations are append-only: once released, a migration is
 * never edited; a change to the schema is a new entry at the end.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/**
 * Migration `i` takes the schema from version `i` to `i + 1`.
 *
 * Tables (as of the last migration):
 * - `intents`: every accepted command, an audit record (the queue keeps its own copy, so
 *   trimming this table never loses work). `seq` orders it by acceptance, so trimming to the
 *   newest N is one range delete, as for `events`.
 * - `commands`: the operator commands waiting to run. `seq` (AUTOINCREMENT, never reused) is
 *   their arrival order, across targets and within one through the (target, seq) index; a
 *   command leaves the table only with the operation end that records it.
 * - `signals`: the active signals (firing alerts), one row per (target, id) under a `key` the
 *   store assigns in arrival order (version 4; see there), replaced when an
 *   alert is sent again and deleted when it ends.
 * - `pending`: the `running` slot of each target (the operation it runs). The `queued` slot of
 *   version 1 is no longer written (its CHECK still allows it: SQLite cannot alter a CHECK
 *   without rebuilding the table, and nothing depends on it).
 * - `targets`: each target's durable record.
 * - `events`: the history. `seq` orders it globally (AUTOINCREMENT, so a seq is never reused
 *   even after the newest rows are trimmed and a page cursor stays meaningful); `n` numbers a
 *   target's events 1, 2, 3… so trimming to the newest N is one range delete on an index
 *   instead of counting rows.
 * - `deliveries`: delivery ids seen (replay protection), with their expiry in epoch ms so
 *   comparisons do not depend on how an ISO string was spelled.
 * - `outbox`: notification messages waiting for delivery, one per destination (version 5).
 * - `approvals`: changes waiting for a person, and the recent decided ones (version 5).
 *
 * Why the statements are plain SQL: the PostgreSQL store carries this schema over
 * (postgres-schema.ts lists where it departs, for replicas). The SQLite-only statements are
 * confined to migration 2's one-off conversion of version-1 rows, which only an SQLite file can
 * hold; each carries a comment saying so.
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
  // 2: level-triggered engine (issue 7). Commands queued in order, signals held as state, the
  // pending table kept for the running slot only, and the audit table given its own `seq`.
  `
  CREATE TABLE commands (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    json TEXT NOT NULL
  );
  CREATE INDEX commands_target_seq ON commands (target, seq);
  CREATE TABLE signals (
    target TEXT NOT NULL,
    id TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (target, id)
  );

  -- Version 1 trimmed the audit table by SQLite's implicit rowid, which PostgreSQL has no
  -- equivalent of: rebuild it with an explicit seq, keeping acceptance order. (ORDER BY rowid is
  -- SQLite-only, and only ever runs on a version-1 SQLite file.)
  CREATE TABLE intents_v2 (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    received_at TEXT NOT NULL,
    json TEXT NOT NULL
  );
  INSERT INTO intents_v2 (id, target, received_at, json)
    SELECT id, target, received_at, json FROM intents ORDER BY rowid;
  DROP TABLE intents;
  ALTER TABLE intents_v2 RENAME TO intents;

  -- Version-1 pending rows were {intent, count, firstAt, attempts, notBefore[, applying]}. Their
  -- intents were acknowledged, so none may be lost: each becomes a command, the running one
  -- first so that the resumed operation finds its command at the head of its target's queue.
  -- (The retry budget in attempts/notBefore is dropped: it now lives on the target record and
  -- restarts from null, one extra try at worst.)
  -- SQLite-only: json_extract and -> read the old JSON; this conversion exists only for SQLite
  -- files written by version 1, so the PostgreSQL schema has no counterpart. -> keeps JSON
  -- values typed (true stays a boolean, an object stays an object) where json_extract would
  -- give 1 or text.
  INSERT INTO commands (id, target, json)
    SELECT json_extract(json, '$.intent.id'), target, json_extract(json, '$.intent')
    FROM pending
    WHERE slot IN ('running', 'queued')
    ORDER BY CASE slot WHEN 'running' THEN 0 ELSE 1 END, json_extract(json, '$.firstAt'), target
    ON CONFLICT (id) DO NOTHING;
  UPDATE pending
    SET json = json_object(
      'kind', 'commands',
      'commandIds', json_array(json_extract(json, '$.intent.id')),
      'dryRun', json -> '$.intent.dryRun',
      'startedAt', json_extract(json, '$.firstAt'),
      'applying', json -> '$.applying'
    )
    WHERE slot = 'running';
  DELETE FROM pending WHERE slot = 'queued';
  `,
  // 3: the handled fire times of point schedules, one row per (target, schedule, instant), so a
  // point fires once per fire time whatever restarts happen. `fire_at` in epoch ms.
  `
  CREATE TABLE schedule_fires (
    target TEXT NOT NULL,
    schedule TEXT NOT NULL,
    fire_at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (target, schedule, fire_at)
  );
  `,
  // 4: signals keyed by an integer the store assigns in arrival order, without the unique index
  // on (target, id). Fingerprints are random, so every new signal went into a random page of
  // that index: about 30 µs a row against 8 µs for an append (measured with node:sqlite, 40,000
  // rows in commits of 10 and 50), most of the cost of a delivery. The store knows each
  // signal's key (it is the only writer of its file), so a refresh or an end is one row by key.
  `
  CREATE TABLE signals_v4 (
    key INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    id TEXT NOT NULL,
    json TEXT NOT NULL
  );
  INSERT INTO signals_v4 (key, target, id, json)
    SELECT row_number() OVER (ORDER BY target, id), target, id, json FROM signals;
  DROP TABLE signals;
  ALTER TABLE signals_v4 RENAME TO signals;
  `,
  // 5: notifications and approvals (issue 10). `outbox` holds one row per message and
  // destination, written with the event it tells; `seq` orders a destination's messages and
  // `not_before` (epoch ms) paces retries. `approvals` holds changes waiting for a person and,
  // trimmed by `seq`, the recent decided ones.
  `
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    not_before INTEGER,
    json TEXT NOT NULL
  );
  CREATE INDEX outbox_destination_seq ON outbox (destination, seq);
  CREATE TABLE approvals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    json TEXT NOT NULL
  );
  CREATE INDEX approvals_status_seq ON approvals (status, seq);
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

/**
 * Moves the sync to disk of each commit off the event loop, keeping its guarantee, when it can:
 * for a file in WAL mode it opens the write-ahead log (`<file>-wal`), sets `synchronous=NORMAL`
 * (a commit writes the log but does not wait for the disk) and returns the log's descriptor. The
 * store then syncs that descriptor with `fdatasync` on libuv's thread pool after each group
 * commit and answers its callers only once the sync is done, which is what `FULL` would have
 * done on the event loop: the committed transaction is in the log on disk. Checkpoints stay
 * SQLite's, synced as under `NORMAL` (before the log is reused). Returns null, leaving `FULL`,
 * for an in-memory database or when the log cannot be opened.
 */
export function walForSync(db: DatabaseSync, file: string): number | null {
  if (file === MEMORY_PATH) return null;
  const mode = db.prepare('PRAGMA journal_mode').get();
  if (String(mode?.journal_mode ?? '').toLowerCase() !== 'wal') return null;
  let fd: number;
  try {
    fd = openSync(`${file}-wal`, 'r');
  } catch {
    return null;
  }
  try {
    db.exec('PRAGMA synchronous = NORMAL');
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
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
