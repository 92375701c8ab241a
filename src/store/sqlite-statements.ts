/**
 * Every statement the SQLite store runs, prepared once per connection.
 *
 * Why a module of its own: the statements are the part the PostgreSQL store carries over
 * (postgres-sql.ts), so they are kept together and plain: named parameters, `ON CONFLICT`,
 * `RETURNING` and `WITH RECURSIVE`, all of which PostgreSQL reads with the same meaning. No
 * rowid, no `INSERT OR REPLACE`, no JSON functions.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { prepareOutboxStatements } from './sqlite-outbox.js';

/** The four shapes of a history page: with or without a target, with or without a cursor. */
export type ListVariant = ':' | 'target:' | ':before' | 'target:before';

/** Prepares every statement of the store on `db` (whose schema is current). */
export function prepareStatements(db: DatabaseSync) {
  const list = (where: string): StatementSync =>
    db.prepare(`SELECT json FROM events ${where} ORDER BY seq DESC LIMIT :limit`);
  // A `before` id that is not (or no longer) in the table makes the subquery NULL, so the page
  // is empty rather than restarting from the newest event.
  const olderThan = 'seq < (SELECT seq FROM events WHERE id = :before)';
  return {
    // Prepared rather than exec'd: a group commit runs two of these per write.
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    savepoint: db.prepare('SAVEPOINT write'),
    release: db.prepare('RELEASE write'),
    rollbackTo: db.prepare('ROLLBACK TO write'),

    insertIntent: db.prepare(
      'INSERT INTO intents (id, target, received_at, json) VALUES (:id, :target, :receivedAt, :json) RETURNING seq',
    ),
    trimIntents: db.prepare('DELETE FROM intents WHERE seq <= :upto'),
    selectIntent: db.prepare('SELECT json FROM intents WHERE id = :id'),

    insertCommand: db.prepare('INSERT INTO commands (id, target, json) VALUES (:id, :target, :json)'),
    selectCommands: db.prepare('SELECT target, json FROM commands ORDER BY seq'),
    // Scoped to the target, so an operation can never consume another target's command.
    deleteCommand: db.prepare('DELETE FROM commands WHERE target = :target AND id = :id'),

    // `changes` is 1 exactly when the fire is new.
    claimFire: db.prepare(
      'INSERT INTO schedule_fires (target, schedule, fire_at, outcome) VALUES (:target, :schedule, :at, :outcome) ' +
        'ON CONFLICT (target, schedule, fire_at) DO NOTHING',
    ),
    // A schedule's fires older than a day before its newest are only history (the events keep
    // that): a per-second point would otherwise add 86,400 rows a day.
    trimFires: db.prepare('DELETE FROM schedule_fires WHERE target = :target AND schedule = :schedule AND fire_at < :before'),
    lastFires: db.prepare(
      'SELECT f.target, f.schedule, f.fire_at, f.outcome FROM schedule_fires f ' +
        'WHERE f.fire_at = (SELECT max(g.fire_at) FROM schedule_fires g WHERE g.target = f.target AND g.schedule = f.schedule) ' +
        'ORDER BY f.target, f.schedule',
    ),

    insertSignal: db.prepare('INSERT INTO signals (key, target, id, json) VALUES (:key, :target, :id, :json)'),
    updateSignal: db.prepare('UPDATE signals SET json = :json WHERE key = :key'),
    deleteSignal: db.prepare('DELETE FROM signals WHERE key = :key'),
    selectSignals: db.prepare('SELECT json FROM signals ORDER BY key'),
    selectSignal: db.prepare('SELECT json FROM signals WHERE key = :key'),
    selectSignalKeys: db.prepare('SELECT key, target, id FROM signals ORDER BY key'),

    upsertRunning: db.prepare(
      "INSERT INTO pending (target, slot, json) VALUES (:target, 'running', :json) " +
        'ON CONFLICT (target, slot) DO UPDATE SET json = excluded.json',
    ),
    updateRunning: db.prepare("UPDATE pending SET json = :json WHERE target = :target AND slot = 'running'"),
    deleteRunning: db.prepare("DELETE FROM pending WHERE target = :target AND slot = 'running'"),
    selectRunning: db.prepare("SELECT target, json FROM pending WHERE slot = 'running' ORDER BY target"),

    upsertTarget: db.prepare(
      'INSERT INTO targets (name, json) VALUES (:name, :json) ON CONFLICT (name) DO UPDATE SET json = excluded.json',
    ),
    selectTargets: db.prepare('SELECT name, json FROM targets ORDER BY name'),

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

    /** Notifications and approvals: sqlite-outbox.ts. */
    outbox: prepareOutboxStatements(db),
  };
}

/** The prepared statements, by name. */
export type Statements = ReturnType<typeof prepareStatements>;
