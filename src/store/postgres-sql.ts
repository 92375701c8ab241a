/**
 * The PostgreSQL store's statements and the row work behind its writes. Every function runs on
 * the caller's transaction (or, for a single statement, as one on its own).
 *
 * Why rows go in as arrays (`unnest($1::text[], …) WITH ORDINALITY`): a delivery of thousands
 * of alerts, or an operation end with its events and their messages, is then one statement and
 * one round trip to the server instead of one per row, which is what a remote database makes
 * expensive. `ORDER BY` the ordinality keeps the order the rows were given in, which is what
 * the sequences number and what arrival order means.
 */
import type { Pool, PoolClient } from 'pg';
import type { Approval, Command, ScalingEvent, Signal, SignalKey } from '../types.js';

/** A pool or a client inside a transaction. */
export type Queryable = Pick<PoolClient, 'query'> | Pick<Pool, 'query'>;

/** A message to add to the outbox: one per event and destination, in order. */
export interface OutboxRow {
  destination: string;
  json: string;
}

/** Decided approvals kept (the newest), besides every pending or approved one. */
export const APPROVALS_KEPT = 1000;

/**
 * An accepted command: its audit record (trimmed to the newest `intentLimit` by `seq`) and its
 * queue row, in one statement. A repeated id fails on either table's unique id.
 *
 * The audit trim is `seq <= newest - limit`, as in SQLite, though a sequence here burns a value
 * with each refused command: after refusals the table keeps a few fewer than `intentLimit`.
 * Counting the newest N instead would read N index entries per command.
 */
export async function queueCommand(q: Queryable, command: Command, intentLimit: number): Promise<void> {
  const json = JSON.stringify(command);
  await q.query(
    `WITH intent AS (
       INSERT INTO intents (id, target, received_at, json) VALUES ($1, $2, $3, $4) RETURNING seq
     ), trimmed AS (
       DELETE FROM intents WHERE seq <= (SELECT seq FROM intent) - $5::bigint
     )
     INSERT INTO commands (id, target, json) VALUES ($1, $2, $4)`,
    [command.id, command.target, command.receivedAt, json, intentLimit],
  );
}

/** Removes consumed commands of `target` (only its own); ids no longer queued are no error. */
export async function consumeCommands(q: Queryable, target: string, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await q.query('DELETE FROM commands WHERE target = $1 AND id = ANY($2::text[])', [target, ids]);
}

/**
 * Appends events, in order, with their outbox messages, then trims the history. Must run under
 * the history lock (postgres.ts): `seq` and each target's `n` are the next numbers after the
 * newest row, which only one writer at a time may compute. Gapless numbers are what make both
 * trims one range delete on an index: a target's events beyond `historyLimit` are those with
 * `n <= newest n - limit`, and all events beyond `historyTotalLimit` those with
 * `seq <= newest seq - limit`. A target whose events were all trimmed numbers from 1 again.
 */
export async function appendEvents(
  q: Queryable,
  events: readonly ScalingEvent[],
  messages: readonly OutboxRow[],
  createdAt: string,
  limits: { historyLimit: number; historyTotalLimit: number },
): Promise<void> {
  if (events.length === 0) return;
  const column = <K extends keyof ScalingEvent>(key: K) => events.map((e) => e[key]);
  await q.query(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS e(id, target, at, kind, json, o)
     ), inserted AS (
       INSERT INTO events (seq, id, target, n, at, kind, json)
       SELECT (SELECT coalesce(max(seq), 0) FROM events) + e.o, e.id, e.target,
              coalesce((SELECT max(x.n) FROM events x WHERE x.target = e.target), 0)
                + row_number() OVER (PARTITION BY e.target ORDER BY e.o),
              e.at, e.kind, e.json
       FROM input e
       ORDER BY e.o
       RETURNING seq
     )
     INSERT INTO outbox (destination, created_at, attempts, not_before, json)
     SELECT m.destination, $8, 0, NULL, m.json
     FROM unnest($6::text[], $7::text[]) WITH ORDINALITY AS m(destination, json, o)
     ORDER BY m.o`,
    [
      column('id'),
      column('target'),
      column('at'),
      column('kind'),
      events.map((e) => JSON.stringify(e)),
      messages.map((m) => m.destination),
      messages.map((m) => m.json),
      createdAt,
    ],
  );
  // A statement of its own: the deletes must see the rows just inserted (an operation end with
  // more events than the limit keeps only the newest of them).
  await q.query(
    `WITH per_target AS (
       DELETE FROM events e
       USING (SELECT t.target, (SELECT max(x.n) FROM events x WHERE x.target = t.target) AS n
              FROM unnest($1::text[]) AS t(target)) AS head
       WHERE e.target = head.target AND e.n <= head.n - $2::bigint
     )
     DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - $3::bigint`,
    [[...new Set(column('target'))], limits.historyLimit, limits.historyTotalLimit],
  );
}

/**
 * Writes a delivery's signal changes in one statement: upserts keyed by (target, id) — a new
 * one is appended under the next `seq`, a refresh keeps its row and so its place — and ends.
 * A key both upserted and ended ends: it is left out of the upserts, so the two parts never
 * touch the same row (a statement's parts do not see each other's changes).
 */
export async function writeSignals(q: Queryable, upsert: readonly Signal[], end: readonly SignalKey[]): Promise<void> {
  const name = (target: string, id: string): string => `${target}\0${id}`;
  const ended = new Map(end.map((k) => [name(k.target, k.id), k]));
  // One row per key, at its first place with its last value: a statement may not upsert a row
  // twice, and a signal sent twice in one delivery is one arrival.
  const upserted = new Map<string, Signal>();
  for (const signal of upsert) {
    const key = name(signal.target, signal.id);
    if (!ended.has(key)) upserted.set(key, signal);
  }
  if (upserted.size === 0 && ended.size === 0) return;
  const rows = [...upserted.values()];
  const keys = [...ended.values()];
  await q.query(
    `WITH ended AS (
       DELETE FROM signals s USING unnest($4::text[], $5::text[]) AS k(target, id)
       WHERE s.target = k.target AND s.id = k.id
     )
     INSERT INTO signals (target, id, json)
     SELECT s.target, s.id, s.json FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS s(target, id, json, o)
     ORDER BY s.o
     ON CONFLICT (target, id) DO UPDATE SET json = excluded.json`,
    [
      rows.map((s) => s.target),
      rows.map((s) => s.id),
      rows.map((s) => JSON.stringify(s)),
      keys.map((k) => k.target),
      keys.map((k) => k.id),
    ],
  );
}

/**
 * Inserts or replaces an approval by id (a replaced one keeps its `seq`, so its place), then
 * forgets decided ones beyond the newest {@link APPROVALS_KEPT}. Counted rather than computed
 * from `seq` (as SQLite does): an upsert burns a sequence value each time it replaces a row.
 */
export async function saveApproval(q: Queryable, approval: Approval): Promise<void> {
  await q.query(
    `INSERT INTO approvals (id, target, status, json) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, json = excluded.json`,
    [approval.id, approval.target, approval.status, JSON.stringify(approval)],
  );
  await q.query(
    `DELETE FROM approvals WHERE status NOT IN ('pending', 'approved')
       AND seq <= (SELECT seq FROM approvals ORDER BY seq DESC OFFSET $1 LIMIT 1)`,
    [APPROVALS_KEPT],
  );
}

/** The statements of single-row writes and of reads, by name. */
export const SQL = {
  upsertTarget: 'INSERT INTO targets (name, json) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET json = excluded.json',
  selectTargets: 'SELECT name, json FROM targets ORDER BY name',

  selectCommands: 'SELECT target, json FROM commands ORDER BY seq',
  selectIntent: 'SELECT json FROM intents WHERE id = $1',
  selectSignals: 'SELECT json FROM signals ORDER BY seq',

  upsertRunning: 'INSERT INTO running (target, json) VALUES ($1, $2) ON CONFLICT (target) DO UPDATE SET json = excluded.json',
  // An UPDATE, not an upsert: an operation that already ended must not come back to life.
  updateRunning: 'UPDATE running SET json = $2 WHERE target = $1',
  deleteRunning: 'DELETE FROM running WHERE target = $1',
  selectRunning: 'SELECT target, json FROM running ORDER BY target',

  // The row count is 1 exactly when the fire is new; a replica claiming the same fire at the
  // same time waits on the key, then inserts nothing.
  claimFire:
    'INSERT INTO schedule_fires (target, schedule, fire_at, outcome) VALUES ($1, $2, $3, $4) ON CONFLICT (target, schedule, fire_at) DO NOTHING',
  trimFires: 'DELETE FROM schedule_fires WHERE target = $1 AND schedule = $2 AND fire_at < $3',
  lastFires:
    'SELECT f.target, f.schedule, f.fire_at, f.outcome FROM schedule_fires f ' +
    'WHERE f.fire_at = (SELECT max(g.fire_at) FROM schedule_fires g WHERE g.target = f.target AND g.schedule = f.schedule) ' +
    'ORDER BY f.target, f.schedule',

  // A loose index scan (PostgreSQL has none built in): hop from one distinct target to the next
  // through the (target, seq) index, then take each target's newest row.
  lastEvents: `
    WITH RECURSIVE names(name) AS (
      SELECT min(target) FROM events
      UNION ALL
      SELECT (SELECT min(target) FROM events WHERE target > names.name) FROM names WHERE names.name IS NOT NULL
    )
    SELECT (SELECT json FROM events WHERE target = names.name ORDER BY seq DESC LIMIT 1) AS json
    FROM names WHERE names.name IS NOT NULL`,

  // The row count is 1 exactly when the id is new or its previous remembrance expired.
  rememberDelivery:
    'INSERT INTO deliveries (key, expires_at) VALUES ($1, $2) ' +
    'ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE deliveries.expires_at <= $3',
  forgetDelivery: 'DELETE FROM deliveries WHERE key = $1',
  purgeDeliveries: 'DELETE FROM deliveries WHERE expires_at <= $1',

  nextMessage:
    'SELECT seq, destination, created_at, attempts, not_before, json FROM outbox WHERE destination = $1 ORDER BY seq LIMIT 1',
  deleteMessage: 'DELETE FROM outbox WHERE seq = $1',
  deleteDestinationsExcept: 'DELETE FROM outbox WHERE NOT (destination = ANY($1::text[])) RETURNING destination',
  deferMessage: 'UPDATE outbox SET attempts = $2, not_before = $3 WHERE seq = $1',
  countMessages: 'SELECT destination, count(*) AS n FROM outbox GROUP BY destination ORDER BY destination',

  selectApproval: 'SELECT json FROM approvals WHERE id = $1',
  listApprovals: 'SELECT json FROM approvals ORDER BY seq DESC LIMIT $1',
  listApprovalsIn: 'SELECT json FROM approvals WHERE status = $2 ORDER BY seq DESC LIMIT $1',
} as const;

/**
 * The history page statement for a query: with or without a target, with or without a cursor.
 * A `before` id that is not (or no longer) in the table makes the subquery NULL, so the page is
 * empty rather than restarting from the newest event.
 */
export function listEventsQuery(query: { target?: string; before?: string; limit: number }): { text: string; values: unknown[] } {
  const values: unknown[] = [query.limit];
  const where: string[] = [];
  if (query.target !== undefined) {
    values.push(query.target);
    where.push(`target = $${values.length}`);
  }
  if (query.before !== undefined) {
    values.push(query.before);
    where.push(`seq < (SELECT seq FROM events WHERE id = $${values.length})`);
  }
  const filter = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
  return { text: `SELECT json FROM events ${filter} ORDER BY seq DESC LIMIT $1`, values };
}
