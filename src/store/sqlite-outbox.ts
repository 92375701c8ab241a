/**
 * The SQLite store's outbox and approvals: statements and the row work behind the Store's
 * notification methods, kept apart from sqlite.ts so that each file stays one job. Every
 * function here runs inside the caller's transaction (a group commit) or read.
 *
 * Why the outbox is written with the event: a message exists exactly when its event does, so a
 * crash between the two cannot lose a notification nor send one for an event that was never
 * stored. The same plain SQL carries to PostgreSQL, where a replica claims a message with
 * `FOR UPDATE SKIP LOCKED` instead of owning the file.
 */
import type { DatabaseSync, SQLOutputValue } from 'node:sqlite';
import type { Approval, ScalingEvent } from '../types.js';
import type { ApprovalQuery, OutboxMessage, OutboxRouter } from './store.js';

/** Decided approvals kept (the newest), besides every pending or approved one. */
export const APPROVALS_KEPT = 1000;

/** The most approvals one `listApprovals` call returns. */
export const MAX_APPROVALS_PAGE = 1000;

/** Prepares the outbox and approval statements on `db` (whose schema is current). */
export function prepareOutboxStatements(db: DatabaseSync) {
  return {
    insertMessage: db.prepare(
      'INSERT INTO outbox (destination, created_at, attempts, not_before, json) VALUES (:destination, :createdAt, 0, NULL, :json)',
    ),
    nextMessage: db.prepare(
      'SELECT seq, destination, created_at, attempts, not_before, json FROM outbox WHERE destination = :destination ORDER BY seq LIMIT 1',
    ),
    deleteMessage: db.prepare('DELETE FROM outbox WHERE seq = :seq'),
    deferMessage: db.prepare('UPDATE outbox SET attempts = :attempts, not_before = :notBefore WHERE seq = :seq'),
    countMessages: db.prepare('SELECT destination, count(*) AS n FROM outbox GROUP BY destination ORDER BY destination'),
    deleteDestination: db.prepare('DELETE FROM outbox WHERE destination = :destination'),

    upsertApproval: db.prepare(
      'INSERT INTO approvals (id, target, status, json) VALUES (:id, :target, :status, :json) ' +
        'ON CONFLICT (id) DO UPDATE SET status = excluded.status, json = excluded.json RETURNING seq',
    ),
    // Only decided ones are forgotten: a pending or approved one is work.
    trimApprovals: db.prepare("DELETE FROM approvals WHERE seq <= :upto AND status NOT IN ('pending', 'approved')"),
    selectApproval: db.prepare('SELECT json FROM approvals WHERE id = :id'),
    listApprovals: db.prepare('SELECT json FROM approvals ORDER BY seq DESC LIMIT :limit'),
    listApprovalsIn: db.prepare('SELECT json FROM approvals WHERE status = :status ORDER BY seq DESC LIMIT :limit'),
  };
}

/** The prepared outbox and approval statements. */
export type OutboxStatements = ReturnType<typeof prepareOutboxStatements>;

/** Adds the messages `route` names for an event just inserted. */
export function queueMessages(sql: OutboxStatements, route: OutboxRouter | null, event: ScalingEvent, createdAt: string): void {
  if (route === null) return;
  const destinations = route(event);
  if (destinations.length === 0) return;
  const json = JSON.stringify(event);
  for (const destination of destinations) sql.insertMessage.run({ destination, createdAt, json });
}

/** The head of a destination's queue. */
export function nextMessage(sql: OutboxStatements, destination: string): OutboxMessage | null {
  const row = sql.nextMessage.get({ destination });
  if (row === undefined) return null;
  const notBefore = row.not_before === null ? null : new Date(Number(row.not_before)).toISOString();
  return {
    seq: Number(row.seq),
    destination: String(row.destination),
    event: JSON.parse(String(row.json)) as ScalingEvent,
    createdAt: String(row.created_at),
    attempts: Number(row.attempts),
    notBefore,
  };
}

/** Messages waiting, per destination. */
export function countMessages(sql: OutboxStatements): Map<string, number> {
  return new Map(sql.countMessages.all().map((row) => [String(row.destination), Number(row.n)]));
}

/** Inserts or replaces an approval, trimming decided ones beyond {@link APPROVALS_KEPT}. */
export function saveApproval(sql: OutboxStatements, approval: Approval): void {
  const row = sql.upsertApproval.get({ id: approval.id, target: approval.target, status: approval.status, json: JSON.stringify(approval) });
  sql.trimApprovals.run({ upto: Number(row?.seq ?? 0) - APPROVALS_KEPT });
}

/** One approval by id. */
export function getApproval(sql: OutboxStatements, id: string): Approval | null {
  const row = sql.selectApproval.get({ id });
  return row === undefined ? null : parseApproval(row.json);
}

/** A page of approvals, newest first. */
export function listApprovals(sql: OutboxStatements, query: ApprovalQuery): Approval[] {
  const limit = Number.isFinite(query.limit) ? Math.min(MAX_APPROVALS_PAGE, Math.max(0, Math.floor(query.limit))) : MAX_APPROVALS_PAGE;
  const rows = query.status === undefined ? sql.listApprovals.all({ limit }) : sql.listApprovalsIn.all({ status: query.status, limit });
  return rows.map((row) => parseApproval(row.json));
}

function parseApproval(json: SQLOutputValue | undefined): Approval {
  return JSON.parse(String(json)) as Approval;
}
