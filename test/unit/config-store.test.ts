// The `store` section: one shape per driver, SQLite's the default and unchanged, PostgreSQL's
// with its URL from the environment and its durations parsed.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type ConfigProblem } from '../../src/config/load.js';
import { webTargetConfig } from '../support/config.js';

/** A config of one target with `store` as given (YAML flow text), parsed with `env`. */
function parse(store: string | null, env: NodeJS.ProcessEnv = {}) {
  const text = `${store === null ? '' : `store: ${store}\n`}${webTargetConfig('')}`;
  return parseConfig(text, { file: 'test.yaml', baseDir: '/etc/pulumiscale', env });
}

function problemsOf(store: string, env: NodeJS.ProcessEnv = {}): ConfigProblem[] {
  try {
    parse(store, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.filter((p) => p.path.startsWith('store'));
    throw err;
  }
  return [];
}

const DATABASE_URL = 'postgres://ps:secret@db.internal:5432/pulumiscale';

describe('config: store', () => {
  it.each<[string, string | null, NodeJS.ProcessEnv, object]>([
    ['no section: SQLite at its default path', null, {}, { driver: 'sqlite', path: '/etc/pulumiscale/.pulumiscale/state.db', historyLimit: 10_000, historyTotalLimit: 100_000 }],
    ['a section without driver: SQLite', '{ path: ./state.db, historyLimit: 50 }', {}, { driver: 'sqlite', path: '/etc/pulumiscale/state.db', historyLimit: 50, historyTotalLimit: 100_000 }],
    ['SQLite in memory stays in memory', '{ driver: sqlite, path: ":memory:" }', {}, { driver: 'sqlite', path: ':memory:', historyLimit: 10_000, historyTotalLimit: 100_000 }],
    [
      'PostgreSQL with every default',
      '{ driver: postgres, url: "${DATABASE_URL}" }',
      { DATABASE_URL },
      { driver: 'postgres', url: DATABASE_URL, poolSize: 10, statementTimeout: 5_000, leaseTTL: 15_000, historyLimit: 10_000, historyTotalLimit: 100_000 },
    ],
    [
      'PostgreSQL with every field',
      '{ driver: postgres, url: "${DATABASE_URL}", poolSize: 4, statementTimeout: 750ms, leaseTTL: 30s, replicaId: "${POD_NAME}", historyLimit: 10, historyTotalLimit: 20 }',
      { DATABASE_URL, POD_NAME: 'pulumiscale-7d9f8c6b5-x2kqp' },
      { driver: 'postgres', url: DATABASE_URL, poolSize: 4, statementTimeout: 750, leaseTTL: 30_000, replicaId: 'pulumiscale-7d9f8c6b5-x2kqp', historyLimit: 10, historyTotalLimit: 20 },
    ],
  ])('%s', (_name, store, env, expected) => {
    expect(parse(store, env).store).toStrictEqual(expected);
  });

  it.each<[string, string, NodeJS.ProcessEnv, ConfigProblem[]]>([
    ['an unset URL variable', '{ driver: postgres, url: "${DATABASE_URL}" }', {}, [{ path: 'store.url', message: 'environment variable DATABASE_URL is not set' }]],
    ['an empty URL', '{ driver: postgres, url: "" }', {}, [{ path: 'store.url', message: 'must not be empty (is its environment variable set?)' }]],
    ['no URL', '{ driver: postgres }', {}, [{ path: 'store.url', message: expect.stringContaining('expected string') as string }]],
    ['a path for PostgreSQL', `{ driver: postgres, url: x, path: ./state.db }`, {}, [{ path: 'store', message: expect.stringContaining('path') as string }]],
    ['a URL for SQLite', '{ driver: sqlite, url: x }', {}, [{ path: 'store', message: expect.stringContaining('url') as string }]],
    ['an unknown driver', '{ driver: mysql }', {}, [{ path: 'store.driver', message: 'unknown driver: use sqlite (the default) or postgres' }]],
    ['a statement timeout too short to run anything', '{ driver: postgres, url: x, statementTimeout: 10ms }', {}, [{ path: 'store.statementTimeout', message: 'must be at least 100ms' }]],
    ['a statement timeout past what PostgreSQL and a timer take', '{ driver: postgres, url: x, statementTimeout: 25d }', {}, [{ path: 'store.statementTimeout', message: 'must be at most 24d (a longer timer would fire at once)' }]],
    ['a lease that is not a duration', '{ driver: postgres, url: x, leaseTTL: soon }', {}, [{ path: 'store.leaseTTL', message: expect.stringContaining('not a duration') as string }]],
    ['a replica id with a space', '{ driver: postgres, url: x, replicaId: "pod 1" }', {}, [{ path: 'store.replicaId', message: 'letters, digits, _ . : - (at most 63)' }]],
    ['a replica id from an unset variable', '{ driver: postgres, url: x, replicaId: "${POD_NAME}" }', {}, [{ path: 'store.replicaId', message: 'environment variable POD_NAME is not set' }]],
    ['a lease shorter than a second', '{ driver: postgres, url: x, leaseTTL: 500ms }', {}, [{ path: 'store.leaseTTL', message: 'must be at least 1s' }]],
    ['a pool of no connections', '{ driver: postgres, url: x, poolSize: 0 }', {}, [{ path: 'store.poolSize', message: expect.stringContaining('>0') as string }]],
  ])('refuses %s', (_name, store, env, expected) => {
    expect(problemsOf(store, env)).toEqual(expected);
  });
});
