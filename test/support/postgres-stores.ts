/**
 * PostgreSQL stores for a test file: one throwaway server for the file (started before its
 * tests, removed after), the tests' own pool on it (to make schemas and look at rows behind the
 * stores' backs), a fresh schema per store, and every store a test opened closed after it, even
 * when it fails. Registers its vitest hooks when called, at the top of a file.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { PostgresStore, type PostgresStoreOptions } from '../../src/store/postgres.js';
import { startPostgres, type PostgresServer } from './postgres.js';

export interface PostgresStores {
  /** The file's server (set once its tests start). */
  readonly server: PostgresServer;
  /** The tests' own connections. */
  readonly admin: pg.Pool;
  /** A new, empty schema of the test database. */
  freshSchema: () => Promise<string>;
  /** A store on `schema` of `on` (the file's server by default), initialised, closed after the test. */
  open: (schema: string, opts?: Partial<PostgresStoreOptions> & { on?: PostgresServer }) => Promise<PostgresStore>;
  /** Closes `store` after the test (one the test made itself). */
  track: (store: PostgresStore) => PostgresStore;
  /** Rows of `sql` run on the tests' own connection. */
  peek: <R extends object>(sql: string, values?: unknown[]) => Promise<R[]>;
}

/** Sets up the file's server and pool; `prefix` names its schemas. */
export function usePostgresStores(prefix: string): PostgresStores {
  let server: PostgresServer | undefined;
  let admin: pg.Pool | undefined;
  let schemas = 0;
  const opened: PostgresStore[] = [];
  beforeAll(async () => {
    server = await startPostgres();
    admin = new pg.Pool({ connectionString: server.url, max: 3 });
    // A test that stops the server ends the pool's idle connections; the pool opens new ones.
    admin.on('error', () => undefined);
  }, 60_000);
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await admin?.end();
    await server?.remove();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the PostgreSQL server is not started yet (use it inside a test)');
    return value;
  };
  const stores: PostgresStores = {
    get server() {
      return started(server);
    },
    get admin() {
      return started(admin);
    },
    freshSchema: async () => {
      const name = `${prefix}_${++schemas}`;
      await stores.admin.query(`CREATE SCHEMA ${name}`);
      return name;
    },
    open: async (schema, opts = {}) => {
      const { on, ...rest } = opts;
      const store = stores.track(new PostgresStore({ url: (on ?? stores.server).urlFor(schema), ...rest }));
      await store.init();
      return store;
    },
    track: (store) => {
      opened.push(store);
      return store;
    },
    peek: async <R extends object>(sql: string, values: unknown[] = []) => (await stores.admin.query<R & Record<string, unknown>>(sql, values)).rows,
  };
  return stores;
}

/**
 * A server of its own for a `describe` whose tests stop or kill it (the file's server stays
 * up for the others); started before them, removed after. Call it inside the `describe`.
 */
export function useOwnServer(): { readonly server: PostgresServer } {
  let server: PostgresServer | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.remove();
  });
  return {
    get server() {
      if (server === undefined) throw new Error('the PostgreSQL server is not started yet (use it inside a test)');
      return server;
    },
  };
}
