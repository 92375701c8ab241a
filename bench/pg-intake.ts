/**
 * Intake on the PostgreSQL store: the intake figure's load and durability check
 * (bench/intake.ts `measureIntake`) against one daemon whose store is a throwaway PostgreSQL
 * server on this machine (test/support/postgres.ts), next to the bare route in the same run.
 * Goal: at least 0.30x the bare route's acknowledged requests per second, per replica; every
 * acknowledged alert stored.
 *
 * The server is the tests' one: a Unix socket (no TCP), and fsync off. Commits stay
 * synchronous, but none waits for the disk, so this measures the daemon's side of the store
 * (pool, statements, round trips) rather than a production server's flushes.
 */
import pg from 'pg';
import { startPostgres } from '../test/support/postgres.js';
import type { BenchContext } from './context.js';
import { measureIntake } from './intake.js';
import { sleep } from './processes.js';
import { fmt, type Row } from './report.js';

/** The schema the daemon's tables go in, made fresh in the server's test database. */
const SCHEMA = 'bench_intake';
/** Longer than PostgreSQL's shortest interval between two reports of a server process's statistics (1 s). */
const STATS_FLUSH_MS = 1_500;

/** Runs one statement on its own connection; returns its rows. */
async function sql(url: string, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(text)).rows;
  } finally {
    await client.end();
  }
}

/** Transactions committed in the test database so far (the server's statistics; this query's own included). */
async function commits(url: string): Promise<number> {
  const [row] = await sql(url, 'SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()');
  return Number(row?.xact_commit ?? Number.NaN);
}

/** Figure: intake throughput on PostgreSQL against the bare route, and durability of the acks. */
export async function pgIntake(ctx: BenchContext): Promise<Row[]> {
  ctx.log('pg-intake: starting a throwaway PostgreSQL server');
  const server = await startPostgres();
  try {
    await sql(server.url, `CREATE SCHEMA ${SCHEMA}`);
    const before = await commits(server.url);
    const store = `{ driver: postgres, url: ${JSON.stringify(server.urlFor(SCHEMA))} }`;
    const { base, run, acked, stored } = await measureIntake(ctx, { name: 'pg-intake', store });
    // Every transaction of the daemon's two lives, starts included: what one acknowledged alert
    // costs the server. A server process reports its counts when it ends (or at most once a
    // second): the daemon's last ones end just after it.
    await sleep(STATS_FLUSH_MS);
    const made = (await commits(server.url)) - before;
    ctx.note(`pg-intake: ${fmt.int(made)} transactions committed in all, ${(made / Math.max(1, acked)).toFixed(2)} per acknowledged alert`);
    return [
      { figure: 'pg-intake: acknowledged/s, 50 conns', daemon: run.rate, baseline: base.rate, format: fmt.int, goal: 'ratio >= 0.30', pass: run.rate >= 0.3 * base.rate },
      { figure: 'pg-intake: acked alerts not stored', daemon: Math.max(0, acked - stored), baseline: null, format: fmt.int, goal: '= 0', pass: stored >= acked && acked > 0 },
    ];
  } finally {
    await server.remove();
  }
}
