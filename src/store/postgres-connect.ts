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
 * How long a listening connection may be silent before TCP keepalive probes start. A watch has
 * no queries of its own to notice a server that vanished without closing the connection (a
 * failover, a cut network); the default of the OS (two hours) would leave it deaf that long.
 */
export const LISTEN_KEEPALIVE_MS = 10_000;

/** The settings of every connection the store opens, pooled or not. */
function connectionSettings(opts: PoolOptions): pg.ClientConfig {
  return {
    connectionString: opts.url,
    // Sent at connection start, so it holds for every statement without a round trip.
    statement_timeout: opts.statementTimeoutMs,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    // Without it a server that stopped answering (not refusing) holds a call until the OS gives up.
    connectionTimeoutMillis: opts.statementTimeoutMs,
    keepAlive: true,
    application_name: 'pulumiscale',
  };
}

/**
 * A pool on `url`. Connections are opened on demand, so nothing is checked here: the first
 * query (the migration, at `init`) is where a wrong URL or a stopped server shows.
 */
export function openPool(opts: PoolOptions): Pool {
  const pool = new pg.Pool({ ...connectionSettings(opts), max: opts.poolSize });
  // An idle connection that dies (a restarted server, a failover) is reported here; the pool has
  // already dropped it, and the next call opens another. Nothing else to do: unheard, the event
  // would crash the daemon.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Listens on `channel` on a connection of its own (a pooled one would be handed to other calls,
 * and a LISTEN belongs to its session), calling `heard` with each notification's payload.
 *
 * `lost` is called at most once, when the connection fails or ends without `stop` (or when
 * `heard` throws: the connection is then ended, and the caller watches again as after any
 * loss); never after `stop`. Resolves with `stop`, which ends the connection and may be called
 * more than once; rejects, leaving nothing open, when the connection or the LISTEN fails.
 */
export async function listen(
  opts: PoolOptions,
  channel: string,
  heard: (payload: string, from: number) => void,
  lost: (err: Error) => void,
): Promise<() => Promise<void>> {
  const client = new pg.Client({ ...connectionSettings(opts), keepAliveInitialDelayMillis: LISTEN_KEEPALIVE_MS });
  // Listening: connected, and neither stopped nor lost. Before it, a failure rejects the call.
  let live = false;
  const fail = (err: Error): void => {
    if (!live) return;
    live = false;
    client.end().catch(() => undefined);
    lost(err);
  };
  client.on('error', fail);
  client.on('end', () => fail(new Error('the listening connection ended')));
  client.on('notification', (message) => {
    if (!live || message.channel !== channel) return;
    try {
      heard(message.payload ?? '', message.processId);
    } catch (err) {
      fail(err instanceof Error ? err : new Error(describeError(err)));
    }
  });
  try {
    await client.connect();
    await client.query(`LISTEN ${quoteIdentifier(channel)}`);
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  live = true;
  return async () => {
    live = false;
    await client.end();
  };
}

/** `name` as an SQL identifier, quoted (case and every character kept). */
function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
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
