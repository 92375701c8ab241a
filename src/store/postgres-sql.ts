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
import type { Approval, Command, Pause, ScalingEvent, Signal, SignalKey, TargetRecord } from '../types.js';
import type { Fence, Lease, ReplicaSeen } from './store.js';

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
 * queue row, in one statement. A repeated id fails on either table's unique id. With a
 * `channel`, the same statement notifies it with the command's target, heard at its commit.
 *
 * The audit trim is `seq <= newest - limit`, as in SQLite, though a sequence here burns a value
 * with each refused command: after refusals the table keeps a few fewer than `intentLimit`.
 * Counting the newest N instead would read N index entries per command.
 */
export async function queueCommand(q: Queryable, command: Command, intentLimit: number, channel: string | null): Promise<void> {
  const json = JSON.stringify(command);
  // The writes are CTEs, which always run to completion; the notification is the main query,
  // since a plain SELECT in a CTE runs only when something reads it.
  await q.query(
    `WITH intent AS (
       INSERT INTO intents (id, target, received_at, json) VALUES ($1, $2, $3, $4) RETURNING seq
     ), trimmed AS (
       DELETE FROM intents WHERE seq <= (SELECT seq FROM intent) - $5::bigint
     ), queued AS (
       INSERT INTO commands (id, target, json) VALUES ($1, $2, $4)
     )
     SELECT pg_notify($6, $2) WHERE $6::text IS NOT NULL`,
    [command.id, command.target, command.receivedAt, json, intentLimit, channel],
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
 * touch the same row (a statement's parts do not see each other's changes). With a `channel`,
 * the same statement notifies it once per target named, heard at its commit: still one round
 * trip.
 */
export async function writeSignals(q: Queryable, upsert: readonly Signal[], end: readonly SignalKey[], channel: string | null): Promise<void> {
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
  const targets = channel === null ? [] : [...new Set([...rows.map((s) => s.target), ...keys.map((k) => k.target)])];
  // The writes are CTEs, which always run to completion; the notifications are the main query.
  // The signals go as one JSON array: `json_array_elements` hands each element's text back as
  // it was written (the type json keeps text, unlike jsonb), and one string costs the client far
  // less than a text[] literal, whose every element is escaped character by character (a
  // profile of the PostgreSQL intake had that escaping and its UTF-8 writes near the top).
  // Named: each connection parses and plans it once, not at every delivery.
  await q.query({
    name: 'pulumiscale.write-signals',
    // An expiry's end names the lastSeen it expired with: a row sent again since (stored by
    // another replica, or by this one while the end waited) is kept. The stored texts are
    // toISOString's, which compare byte by byte (C collation) as the times do.
    text: `WITH ended AS (
       DELETE FROM signals s USING unnest($2::text[], $3::text[], $6::text[]) AS k(target, id, seen)
       WHERE s.target = k.target AND s.id = k.id
         AND (k.seen IS NULL OR coalesce(s.json::json ->> 'lastSeen', '') COLLATE "C" <= k.seen COLLATE "C")
     ), upserted AS (
       INSERT INTO signals (target, id, json)
       SELECT s.e ->> 'target', s.e ->> 'id', s.e::text FROM json_array_elements($1::json) WITH ORDINALITY AS s(e, o)
       ORDER BY s.o
       ON CONFLICT (target, id) DO UPDATE SET json = excluded.json
     )
     SELECT pg_notify($4, t.target) FROM unnest($5::text[]) AS t(target)`,
    values: [JSON.stringify(rows), keys.map((k) => k.target), keys.map((k) => k.id), channel, targets, keys.map((k) => k.lastSeen ?? null)],
  });
}

/** Tells the watchers of `channel` (if any) that `target` has a new input, at the transaction's commit. */
export async function notify(q: Queryable, channel: string | null, target: string): Promise<void> {
  if (channel !== null) await q.query('SELECT pg_notify($1, $2)', [channel, target]);
}

/**
 * Saves a target's record. With `keepStoredPause`, the pause is not the caller's but the one
 * the row holds (none for a new row): a replica writing its record never writes back a pause
 * it has not heard of yet (store.ts `ClusterStore.savePause`). Must then run in a transaction.
 *
 * The stored pause is read in JS, not spliced in by a JSON operator in SQL: both `json` and
 * `jsonb` refuse a record whose text holds a `\u0000` escape (a pause reason may), which would
 * leave the target unable to save its record until the pause ended.
 */
export async function saveRecord(q: Queryable, record: TargetRecord, keepStoredPause: boolean): Promise<void> {
  if (!keepStoredPause) await q.query(SQL.upsertTarget, [record.name, JSON.stringify(record)]);
  else await changeRecord(q, record.name, (stored) => ({ ...record, pause: stored?.pause ?? null }));
}

/** Sets `pause` alone in `target`'s record, creating the record when there is none; must run in a transaction. */
export async function savePause(q: Queryable, target: string, pause: Pause | null): Promise<void> {
  await changeRecord(q, target, (stored) => ({
    ...(stored ?? { name: target, current: null, paused: false, cooldownUntil: { up: null, down: null }, pause: null, retry: null }),
    pause,
  }));
}

/**
 * Writes `change(stored)` as `name`'s record, `stored` being the row's record or null when there
 * is none; must run in a transaction. The row is read under its lock, so a write of it by
 * another transaction either came before (and is read) or waits for this one; a row created
 * meanwhile refuses the insert, and is then read and changed.
 */
async function changeRecord(q: Queryable, name: string, change: (stored: TargetRecord | null) => TargetRecord): Promise<void> {
  // Twice at most: an insert refused by a record created meanwhile finds it on the second read.
  for (let attempt = 0; attempt < 2; attempt++) {
    const found = await q.query<{ json: string }>('SELECT json FROM targets WHERE name = $1 FOR UPDATE', [name]);
    const stored = found.rows[0];
    if (stored !== undefined) {
      await q.query('UPDATE targets SET json = $2 WHERE name = $1', [name, JSON.stringify(change(JSON.parse(stored.json) as TargetRecord))]);
      return;
    }
    const inserted = await q.query('INSERT INTO targets (name, json) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, JSON.stringify(change(null))]);
    if (inserted.rowCount === 1) return;
  }
  throw new Error(`the record of ${name} was neither found nor created`);
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

  // Claims the destination's head for $2 ($3 ms), or nothing. Only the head is ever looked at:
  // when it is locked (another replica claiming or removing it) or claimed by another replica
  // whose claim lives, there is no message for this one, rather than the next (which would
  // break the destination's order). SKIP LOCKED so that a replica polling never waits.
  nextMessage: `
    WITH head AS (
      SELECT seq FROM outbox WHERE destination = $1 ORDER BY seq LIMIT 1
    ), locked AS (
      SELECT o.seq FROM outbox o JOIN head ON o.seq = head.seq FOR UPDATE OF o SKIP LOCKED
    )
    UPDATE outbox o SET claimed_by = $2, claimed_until = now() + $3::double precision * interval '1 millisecond'
    FROM locked
    WHERE o.seq = locked.seq AND (o.claimed_by IS NULL OR o.claimed_by = $2 OR o.claimed_until <= now())
    RETURNING o.seq, o.destination, o.created_at, o.attempts, o.not_before, o.json`,
  deleteMessage: 'DELETE FROM outbox WHERE seq = $1',
  deleteDestinationsExcept: 'DELETE FROM outbox WHERE NOT (destination = ANY($1::text[])) RETURNING destination',
  // A deferred message is free for any replica when it is due.
  deferMessage: 'UPDATE outbox SET attempts = $2, not_before = $3, claimed_by = NULL, claimed_until = NULL WHERE seq = $1',
  countMessages: 'SELECT destination, count(*) AS n FROM outbox GROUP BY destination ORDER BY destination',

  selectApproval: 'SELECT json FROM approvals WHERE id = $1',
  decidePending: "UPDATE approvals SET status = $2, json = $3 WHERE id = $1 AND status = 'pending'",
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

// Replicas and leases (store.ts `ClusterStore`). Every time is the server's `now()`; a TTL is
// given in ms and becomes an interval in the statement.

/** A lease row as read back. */
interface LeaseRow {
  stack: string;
  owner: string;
  /** BIGINT, which node-postgres gives as a string. */
  epoch: string;
  expires_at: Date;
}

function toLease(row: LeaseRow): Lease {
  return { stack: row.stack, owner: row.owner, epoch: Number(row.epoch), expiresAt: row.expires_at.toISOString() };
}

/**
 * Whether `fence` holds: its lease is held by its owner at its epoch and not expired. Run first
 * in the write's own transaction. FOR SHARE keeps the row as it is until that transaction ends:
 * an acquisition of the lease waits for the write to commit, so no write of an old holder ever
 * lands after a new holder took over. (An acquisition already under way is waited for instead,
 * and then this finds the new owner.)
 */
export async function holdsLease(q: Queryable, fence: Fence): Promise<boolean> {
  const found = await q.query(
    'SELECT 1 FROM leases WHERE stack = $1 AND owner = $2 AND epoch = $3 AND expires_at > now() FOR SHARE',
    [fence.stack, fence.owner, fence.epoch],
  );
  return found.rowCount === 1;
}

/**
 * Records `self`'s heartbeat and lists the replicas seen within `ttlMs`, oldest start first,
 * forgetting rows unseen for `forgetMs`, in one statement. The statement's parts share one
 * snapshot, so the list reads `self` from what its upsert returns, not from the table.
 */
export async function heartbeat(
  q: Queryable,
  self: { id: string; startedAt: string; draining: boolean },
  ttlMs: number,
  forgetMs: number,
): Promise<ReplicaSeen[]> {
  type Row = { id: string; started_at: string; last_seen: Date; draining: boolean };
  const found = await q.query<Row>(
    `WITH me AS (
       INSERT INTO replicas (id, started_at, last_seen, draining) VALUES ($1, $2, now(), $3)
       ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, last_seen = excluded.last_seen, draining = excluded.draining
       RETURNING id, started_at, last_seen, draining
     ), forgotten AS (
       DELETE FROM replicas WHERE id <> $1 AND last_seen <= now() - $5::double precision * interval '1 millisecond'
     )
     SELECT id, started_at, last_seen, draining FROM me
     UNION ALL
     SELECT id, started_at, last_seen, draining FROM replicas
     WHERE id <> $1 AND last_seen > now() - $4::double precision * interval '1 millisecond'
     ORDER BY started_at, id`,
    [self.id, self.startedAt, self.draining, ttlMs, forgetMs],
  );
  return found.rows.map((row) => ({ id: row.id, startedAt: row.started_at, lastSeen: row.last_seen.toISOString(), draining: row.draining }));
}

/**
 * Acquires for `owner` up to `max` of `stacks` (distinct), in their order, that are free: no
 * row, released, or expired. First one read of which are free, then takes of as many as are
 * still wanted, each one statement that re-checks freedom under the row's lock, so that of two
 * replicas taking a stack at once one gets it and the other finds it held; a stack lost that
 * way is made up for with the next free ones.
 *
 * Each take commits on its own, and locks its rows in stack order whatever the caller's order,
 * so that two replicas taking overlapping stacks never deadlock; a failure after a take leaves
 * leases nobody is told of, which lapse after `ttlMs`.
 */
export async function acquireLeases(q: Queryable, owner: string, stacks: readonly string[], max: number, ttlMs: number): Promise<Lease[]> {
  const free = await q.query<{ stack: string }>(
    `SELECT s.stack FROM unnest($1::text[]) WITH ORDINALITY AS s(stack, o)
     LEFT JOIN leases l ON l.stack = s.stack
     WHERE l.stack IS NULL OR l.owner IS NULL OR l.expires_at <= now()
     ORDER BY s.o`,
    [stacks],
  );
  const candidates = free.rows.map((row) => row.stack);
  const acquired: Lease[] = [];
  for (let next = 0; acquired.length < max && next < candidates.length; ) {
    const batch = candidates.slice(next, next + max - acquired.length);
    next += batch.length;
    const taken = await q.query<LeaseRow>(
      `INSERT INTO leases (stack, owner, epoch, expires_at)
       SELECT s.stack, $2, 1, now() + $3::double precision * interval '1 millisecond' FROM unnest($1::text[]) AS s(stack)
       ORDER BY s.stack
       ON CONFLICT (stack) DO UPDATE SET owner = excluded.owner, epoch = leases.epoch + 1, expires_at = excluded.expires_at
       WHERE leases.owner IS NULL OR leases.expires_at <= now()
       RETURNING stack, owner, epoch, expires_at`,
      [batch, owner, ttlMs],
    );
    acquired.push(...taken.rows.map(toLease));
  }
  const place = new Map(stacks.map((stack, i) => [stack, i]));
  return acquired.sort((a, b) => (place.get(a.stack) ?? 0) - (place.get(b.stack) ?? 0));
}

/**
 * The rows of `held` still held at their epoch (and, with `live`, not expired), locked in stack
 * order: a CTE that renewals and releases start from, so that they and acquisitions, which
 * lock in that order too, never deadlock. Parameters $1–$3.
 */
function heldRows(live: boolean): string {
  return `held AS (
    SELECT l.stack FROM leases l
    JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS h(stack, owner, epoch)
      ON l.stack = h.stack AND l.owner = h.owner AND l.epoch = h.epoch
    ${live ? 'WHERE l.expires_at > now()' : ''}
    ORDER BY l.stack
    FOR UPDATE OF l
  )`;
}

/** The fences' columns as the parameters of {@link heldRows}. */
function fenceColumns(held: readonly Fence[]): [string[], string[], number[]] {
  return [held.map((f) => f.stack), held.map((f) => f.owner), held.map((f) => f.epoch)];
}

/** Extends the leases of `held` still held and not expired to `now() + ttlMs`; resolves with them, by stack. */
export async function renewLeases(q: Queryable, held: readonly Fence[], ttlMs: number): Promise<Lease[]> {
  const renewed = await q.query<LeaseRow>(
    `WITH ${heldRows(true)}
     UPDATE leases l SET expires_at = now() + $4::double precision * interval '1 millisecond'
     FROM held WHERE l.stack = held.stack
     RETURNING l.stack, l.owner, l.epoch, l.expires_at`,
    [...fenceColumns(held), ttlMs],
  );
  return renewed.rows.map(toLease).sort((a, b) => (a.stack < b.stack ? -1 : a.stack > b.stack ? 1 : 0));
}

/** Frees the leases of `held` still held at their epoch, keeping the epoch for the next holder to raise. */
export async function releaseLeases(q: Queryable, held: readonly Fence[]): Promise<void> {
  await q.query(
    `WITH ${heldRows(false)}
     UPDATE leases l SET owner = NULL, expires_at = now() FROM held WHERE l.stack = held.stack`,
    fenceColumns(held),
  );
}

/** Every lease held now (owned, not expired), by stack. */
export async function listLeases(q: Queryable): Promise<Lease[]> {
  const found = await q.query<LeaseRow>('SELECT stack, owner, epoch, expires_at FROM leases WHERE owner IS NOT NULL AND expires_at > now() ORDER BY stack');
  return found.rows.map(toLease);
}
