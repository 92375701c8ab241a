/**
 * A second reference for the intake figure: the bare route of bench/baseline-server.ts, plus
 * what "acknowledged means durable" costs at the least. Each request's alerts are inserted into
 * SQLite, the requests that arrived together in one transaction at the next turn of the event
 * loop, the write-ahead log synced with `fdatasync` on libuv's thread pool, and only then is
 * each answered 202; while a sync runs, the next requests wait and commit together after it.
 * That is the daemon's group commit (src/store/sqlite-commit.ts) at its leanest (no savepoint
 * per write), without anything else the daemon does: no validation, translation, signal memory,
 * evaluation, history or metrics. A lower bound of what durability costs the daemon.
 *
 * Not a goal's baseline (issue #9 measures against the bare route): it says how much of the gap
 * the durable write itself explains, on this machine and in the same run.
 *
 *   node --import tsx bench/durable-baseline-server.ts PORT BODY_LIMIT DIR
 */
import Fastify from 'fastify';
import { fdatasync, openSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

const port = Number(process.argv[2]);
const bodyLimit = Number(process.argv[3] ?? 1024 * 1024);
const file = path.join(process.argv[4] ?? '.', 'durable-baseline.db');

const db = new DatabaseSync(file);
db.exec('PRAGMA journal_mode = WAL');
// The daemon's settings: the commit writes the log, the sync below puts it on disk.
db.exec('PRAGMA synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS alerts (key INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, json TEXT NOT NULL)');
const wal = openSync(`${file}-wal`, 'r');
const insert = db.prepare('INSERT INTO alerts (fingerprint, json) VALUES (?, ?)');

interface Write {
  alerts: readonly { fingerprint?: unknown }[];
  /** Settles the request: undefined once its alerts are on disk, else why not. */
  done: (err?: Error) => void;
}
let queued: Write[] = [];
let flushScheduled = false;
let syncing = false;

function flush(): void {
  flushScheduled = false;
  if (syncing || queued.length === 0) return;
  const batch = queued;
  queued = [];
  try {
    db.exec('BEGIN IMMEDIATE');
    for (const w of batch) for (const a of w.alerts) insert.run(String(a.fingerprint), JSON.stringify(a));
    db.exec('COMMIT');
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    for (const w of batch) w.done(err as Error);
    return;
  }
  syncing = true;
  fdatasync(wal, (err) => {
    syncing = false;
    for (const w of batch) w.done(err ?? undefined);
    flush();
  });
}

const app = Fastify({ logger: false, bodyLimit });
app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/webhooks/alertmanager', async (req, reply) => {
  const alerts = (req.body as { alerts?: { fingerprint?: unknown }[] } | undefined)?.alerts ?? [];
  // A failed write answers 500 (Fastify's default for a thrown error): counted as refused.
  await new Promise<void>((resolve, reject) => {
    queued.push({ alerts, done: (err) => (err === undefined ? resolve() : reject(err)) });
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });
  return reply.status(202).send({ accepted: alerts.length, ignored: 0, rejected: [] });
});

await app.listen({ host: '127.0.0.1', port });
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void app.close().then(() => process.exit(0)));
