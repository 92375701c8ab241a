/**
 * The PostgreSQL store's schema, as an ordered list of migrations, and how they are applied.
 *
 * Why a table of versions rather than SQLite's `user_version`: PostgreSQL has no header to hold
 * one, and a row per applied version (with when) also tells an operator what upgraded the
 * database. The schema lives in the first schema of the connection's `search_path`, so one
 * database can hold several daemons' stores (and the tests one store per schema).
 *
 * Why an advisory lock: replicas started together must not both create the tables. Every
 * migration runs in one transaction that first takes `pg_advisory_xact_lock` on a key of the
 * schema; the second replica waits for it, then finds the schema current and does nothing.
 * DDL is transactional in PostgreSQL, so a crash mid-upgrade leaves the old version whole.
 *
 * Migrations are append-only, as for SQLite: once released, a migration is never edited.
 */
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { transaction } from './postgres-connect.js';

/**
 * Migration `i` takes the schema from version `i` to `i + 1`.
 *
 * Version 1 is the SQLite store's version-5 schema in PostgreSQL's types (sqlite-schema.ts says
 * what each table holds), with these differences:
 * - `events.seq` is a plain BIGINT the store numbers itself, gapless, under the history lock
 *   (postgres.ts): a sequence would burn a value with every rolled-back insert, and the total
 *   trim, like SQLite's, is `seq <= newest - limit`. The newest event is never trimmed (both
 *   limits are at least 1), so a seq is never reused and a page cursor stays meaningful.
 * - `signals` are keyed by (target, id) and ordered by a BIGSERIAL `seq`: a refresh is an
 *   `ON CONFLICT (target, id) DO UPDATE` that keeps the row, and so its place. (SQLite's
 *   store-assigned key relies on being the file's only writer; replicas are not.)
 * - the running slot has its own table, `running`, instead of SQLite's `pending` with a slot.
 * - JSON is TEXT: written once, read whole, never queried inside; TEXT keeps what the store
 *   wrote byte for byte, costs no parse on insert, and is the same as in SQLite.
 * - times are as in SQLite: ISO-8601 text where only shown, epoch ms BIGINT where compared.
 *
 * Version 2 is for several replicas on one database (store.ts `ClusterStore`): `replicas` (one
 * row per daemon, its heartbeat), `leases` (one row per stack ever held: a released lease keeps
 * its row, owner NULL, so the next acquisition raises its epoch) and the outbox's claim columns
 * (which replica sends a destination's head message). These times are TIMESTAMPTZ set by the
 * server's `now()`: they are compared across replicas, so no replica's clock may write them.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE intents (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    received_at TEXT NOT NULL,
    json TEXT NOT NULL
  );
  CREATE TABLE commands (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    json TEXT NOT NULL
  );
  CREATE TABLE signals (
    seq BIGSERIAL PRIMARY KEY,
    target TEXT NOT NULL,
    id TEXT NOT NULL,
    json TEXT NOT NULL,
    UNIQUE (target, id)
  );
  CREATE TABLE running (
    target TEXT PRIMARY KEY,
    json TEXT NOT NULL
  );
  CREATE TABLE targets (
    name TEXT PRIMARY KEY,
    json TEXT NOT NULL
  );
  CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    n BIGINT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    json TEXT NOT NULL,
    UNIQUE (target, n)
  );
  CREATE INDEX events_target_seq ON events (target, seq);
  CREATE TABLE deliveries (
    key TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
  );
  CREATE INDEX deliveries_expires_at ON deliveries (expires_at);
  CREATE TABLE schedule_fires (
    target TEXT NOT NULL,
    schedule TEXT NOT NULL,
    fire_at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (target, schedule, fire_at)
  );
  CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    destination TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    not_before BIGINT,
    json TEXT NOT NULL
  );
  CREATE INDEX outbox_destination_seq ON outbox (destination, seq);
  CREATE TABLE approvals (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    json TEXT NOT NULL
  );
  CREATE INDEX approvals_status_seq ON approvals (status, seq);
  `,
  `
  CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    draining BOOLEAN NOT NULL
  );
  CREATE TABLE leases (
    stack TEXT PRIMARY KEY,
    owner TEXT,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
  );
  ALTER TABLE outbox ADD COLUMN claimed_by TEXT, ADD COLUMN claimed_until TIMESTAMPTZ;
  `,
];

/** The schema version this build writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** How long a migration, with its wait for another replica's, may take before init gives up. */
export const MIGRATION_TIMEOUT_MS = 300_000;

/** The table that records each applied version. */
export const VERSION_TABLE = 'pulumiscale_schema';

/**
 * Takes a transaction-scoped advisory lock on `name` within the current schema: two keys, the
 * lock's name and the schema's, so that stores in other schemas of the database never wait on
 * each other. A plain statement (no parameters), so it can follow `BEGIN` in one round trip.
 */
export function advisoryLock(name: string): string {
  if (!/^[a-z.]+$/.test(name)) throw new RangeError(`not a lock name: ${name}`);
  return `SELECT pg_advisory_xact_lock(hashtext('pulumiscale.${name}'), hashtext(current_schema()))`;
}

/** The longest channel name PostgreSQL takes (NAMEDATALEN - 1 bytes); `pg_notify` refuses longer. */
const MAX_CHANNEL_BYTES = 63;

/**
 * The NOTIFY channel of the store in `schema`, where writes of inputs name their target (store.ts
 * `ClusterStore.watch`). Channels are shared by the whole database, and a database may hold
 * several stores, one per schema, so the channel is the schema's: its name, readable for an
 * operator's `LISTEN`, or when that is too long, a digest of it.
 */
export function inputChannel(schema: string): string {
  const readable = `pulumiscale:${schema}`;
  if (Buffer.byteLength(readable) <= MAX_CHANNEL_BYTES) return readable;
  return `pulumiscale:${createHash('sha256').update(schema).digest('hex').slice(0, 48)}`;
}

/**
 * Brings the schema up to {@link SCHEMA_VERSION} in one transaction under the migration lock.
 * A database written by a newer build is refused, its schema unchanged: old code on a newer
 * schema could silently drop what the newer code relies on. Throws what PostgreSQL throws.
 */
export async function migrate(pool: Pool): Promise<void> {
  // The statement timeout is meant for a request's statements; a migration (or the wait for
  // another replica's) may take longer, yet not forever.
  const setup = `SET LOCAL statement_timeout = ${MIGRATION_TIMEOUT_MS}; ${advisoryLock('migrate')}`;
  await transaction(pool, setup, async (client) => {
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
    );
    const found = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${VERSION_TABLE}`);
    const from = found.rows[0]?.version ?? 0;
    if (from > SCHEMA_VERSION) {
      throw new Error(
        `database schema version ${from} is newer than this PulumiScale understands (${SCHEMA_VERSION}); ` +
          'upgrade PulumiScale or point store.url at another database or schema',
      );
    }
    for (let version = from; version < SCHEMA_VERSION; version++) {
      await client.query(MIGRATIONS[version] ?? '');
      await client.query(`INSERT INTO ${VERSION_TABLE} (version) VALUES ($1)`, [version + 1]);
    }
  });
}
