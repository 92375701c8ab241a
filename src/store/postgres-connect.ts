/**
 * The PostgreSQL store's connections: the pool and its settings, transactions on a client of
 * it, and how a failure is described. Kept apart from postgres.ts so that the rules about a
 * lost connection (which node-postgres reports as an event, and which crash the process when
 * nobody listens) live in one place.
 */
import pg from 'pg';
import type { Pool, PoolClient } from 'pg';

/** How the pool is set up. */
export interface PoolOptions {
  url: string;
  /** Connections open at most. */
  poolSize: number;
  /** The server cancels any statement running longer; also the wait for a connection. */
  statementTimeoutMs: number;
}

/**
 * How long a connection may sit inside a transaction doing nothing before the server ends it.
 * A daemon stopped mid-transaction (SIGSTOP, a debugger) would otherwise hold the history lock,
 * and every replica's event writes with it, until its TCP connection died.
 */
export const IDLE_IN_TRANSACTION_MS = 60_000;

/**
 * A pool on `url`. Connections are opened on demand, so nothing is checked here: the first
 * query (the migration, at `init`) is where a wrong URL or a stopped server shows.
 */
export function openPool(opts: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize,
    // Sent at connection start, so it holds for every statement without a round trip.
    statement_timeout: opts.statementTimeoutMs,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    // Without it a server that stopped answering (not refusing) holds a call until the OS gives up.
    connectionTimeoutMillis: opts.statementTimeoutMs,
    keepAlive: true,
    application_name: 'pulumiscale',
  });
  // An idle connection that dies (a restarted server, a failover) is reported here; the pool has
  // already dropped it, and the next call opens another. Nothing else to do: unheard, the event
  // would crash the daemon.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Runs `fn` in a transaction on a client of `pool`: `BEGIN`, then `setup` when given (plain
 * statements sent with BEGIN in one round trip, e.g. an advisory lock), `fn`, `COMMIT`. Any
 * failure rolls back and rethrows; a client whose connection failed is discarded rather than
 * returned to the pool. A COMMIT that fails on a lost connection leaves the outcome unknown
 * (it may have committed): the caller is told it failed, as with any database.
 */
export async function transaction<T>(pool: Pool, setup: string | null, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A connection lost while checked out is an 'error' event on the client (the pool listens
  // only while it is idle); its query rejects too, so noting it is enough.
  const lost = (err: Error): void => {
    broken = err;
  };
  client.on('error', lost);
  try {
    await client.query(setup === null ? 'BEGIN' : `BEGIN; ${setup}`);
    const value = await fn(client);
    await client.query('COMMIT');
    return value;
  } catch (err) {
    if (broken === undefined) {
      await client.query('ROLLBACK').catch((rollback: unknown) => {
        broken = rollback instanceof Error ? rollback : new Error(describeError(rollback));
      });
    }
    throw err;
  } finally {
    client.off('error', lost);
    client.release(broken);
  }
}

/**
 * A failure in words: its message, else its code (node's connection errors to a host with
 * several addresses are an AggregateError with an empty message and one error per address).
 */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.message === '') return err.errors.map(describeError).join('; ');
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return err.message !== '' ? err.message : typeof code === 'string' ? code : err.name;
  }
  return String(err);
}

/** The URL as it may be logged: without its password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured URL';
  }
}
