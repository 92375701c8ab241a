/**
 * A throwaway PostgreSQL server for the tests that need a real one: `initdb` in a temp folder,
 * `pg_ctl start` listening on a Unix socket in that folder only (no TCP port, so test files
 * running side by side never collide), one database created. Meant to be shared by the tests
 * of one file (beforeAll/afterAll): starting it costs about a second, mostly initdb.
 *
 * Debian's server binaries are used (/usr/lib/postgresql/<version>/bin, the newest version).
 * A missing server is a failure with the command that installs it, never a skip (DESIGN.md);
 * scripts/setup-peers.sh installs it for `npm test`.
 *
 * PostgreSQL refuses to run as root. Run as root (as CI is), the binaries run through
 * `runuser` as the `postgres` account Debian's package creates (or `nobody`), which owns the
 * temp folder. The server is made fast rather than durable (fsync off): it is thrown away.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, chownSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** What to tell someone whose machine has no PostgreSQL server. */
export const POSTGRES_SETUP_HINT = 'apt-get update && apt-get install -y --no-install-recommends postgresql (or run scripts/setup-peers.sh)';

/** Where Debian installs each server version's binaries. */
const DEBIAN_ROOT = '/usr/lib/postgresql';

/** The database every server gets. */
export const TEST_DATABASE = 'pulumiscale_test';

/** A running throwaway server. */
export interface PostgresServer {
  /** The URL of the test database, as the superuser, over the server's socket. */
  url: string;
  /** The URL of the test database with `schema` first on its search_path. */
  urlFor(schema: string): string;
  /** Stops the server (fast shutdown: open connections are ended). */
  stop(): Promise<void>;
  /** Starts it again after `stop` or `kill`, on the same socket and data. */
  start(): Promise<void>;
  /** Stops it at once, as a crash would (immediate shutdown: no checkpoint). */
  kill(): Promise<void>;
  /** Stops it if running and removes its folder. Safe to call twice. */
  remove(): Promise<void>;
}

/** The folder of the newest installed server version's binaries; throws with the install command when there is none. */
export function findPostgresBin(): string {
  const versions = existsSync(DEBIAN_ROOT)
    ? readdirSync(DEBIAN_ROOT)
        .filter((v) => /^\d+$/.test(v) && existsSync(path.join(DEBIAN_ROOT, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) throw new Error(`no PostgreSQL server found in ${DEBIAN_ROOT}/<version>/bin: ${POSTGRES_SETUP_HINT}`);
  return path.join(DEBIAN_ROOT, newest, 'bin');
}

/** The account the server runs as, and how to run a command as it. */
function runAs(): { user: string | null; wrap: (cmd: string, args: string[]) => [string, string[]] } {
  if (userInfo().uid !== 0) return { user: null, wrap: (cmd, args) => [cmd, args] };
  const hasPostgres = spawnSync('id', ['-u', 'postgres'], { stdio: 'ignore' }).status === 0;
  const user = hasPostgres ? 'postgres' : 'nobody';
  return { user, wrap: (cmd, args) => ['runuser', ['-u', user, '--', cmd, ...args]] };
}

/** Initialises, starts and prepares a server; see the top of this file. */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = findPostgresBin();
  const { user, wrap } = runAs();
  // /tmp when another account runs the server (it must reach the folder, and a TMPDIR under
  // root's home it cannot), and a short path in any case: the socket's must fit in 107 bytes.
  const base = user !== null || tmpdir().length > 60 ? '/tmp' : tmpdir();
  const dir = mkdtempSync(path.join(base, 'pulumiscale-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  if (user !== null) {
    const id = spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim();
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim();
    chownSync(dir, Number(id), Number(gid));
  }
  const exec = async (cmd: string, args: string[]): Promise<void> => {
    const [file, argv] = wrap(path.join(bin, cmd), args);
    try {
      await run(file, argv, { cwd: dir, timeout: 60_000 });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`${cmd} failed: ${e.stderr?.trim() || e.message} (log: ${log})`, { cause: err });
    }
  };

  // Settings as `-c` options: only what a throwaway server needs, and connections enough for
  // several pools per test. No fsync (the data dies with the test run, and a killed server
  // still finds its WAL in the page cache), but commits stay synchronous: a test that kills
  // the server checks that what was acknowledged is there after.
  const settings = [`-k ${dir}`, "-c listen_addresses=''", '-c max_connections=200', '-c fsync=off', '-c full_page_writes=off'].join(' ');
  let running = false;
  const start = async (): Promise<void> => {
    await exec('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', settings, 'start']);
    running = true;
  };
  const shutdown = async (mode: 'fast' | 'immediate'): Promise<void> => {
    if (!running) return;
    await exec('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
    running = false;
  };
  // A test run killed before afterAll still takes its server down.
  const onExit = (): void => {
    if (!running) return;
    const [file, argv] = wrap(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
    spawnSync(file, argv, { stdio: 'ignore' });
  };
  process.once('exit', onExit);

  try {
    await exec('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    await start();
    const socket = encodeURIComponent(dir);
    const admin = new pg.Client({ connectionString: `postgresql://postgres@${socket}/postgres` });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${TEST_DATABASE}`);
    } finally {
      await admin.end();
    }
  } catch (err) {
    await shutdown('immediate').catch(() => undefined);
    process.off('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const url = `postgresql://postgres@${encodeURIComponent(dir)}/${TEST_DATABASE}`;
  return {
    url,
    urlFor: (schema) => `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    stop: () => shutdown('fast'),
    start,
    kill: () => shutdown('immediate'),
    async remove() {
      await shutdown('immediate');
      process.off('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
