/**
 * Builds the configured store. The registry is an explicit record with one factory per
 * `store.driver`, so adding a driver to the config schema fails to compile until it has a
 * factory here; a driver that reaches this file anyway (a config not parsed by the schema) is a
 * typed error naming the known ones.
 */
import type { Config } from '../config/schema.js';
import { PulumiScaleError } from '../errors.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { OutboxRouter, Store } from './store.js';

export type { ApprovalQuery, EventQuery, OperationEnd, OutboxMessage, OutboxRouter, ScheduleFire, SignalChange, Store } from './store.js';
export { PostgresStore, type PostgresStoreOptions } from './postgres.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';

/** The parsed `store` section of the config. */
export type StoreConfig = Config['store'];

/** What a store is given besides its config section. */
export interface StoreWiring {
  /** Which notification destinations each event goes to (the outbox). */
  route?: OutboxRouter;
  /** This daemon's id among replicas (a shared store's outbox claims carry it). */
  replicaId?: string;
}

/** Builds an uninitialised store from its config section; the caller runs `init()`. */
type StoreFactory = (config: StoreConfig, wiring: StoreWiring) => Store;

/** The config section of one driver. */
type DriverConfig<D extends StoreConfig['driver']> = Extract<StoreConfig, { driver: D }>;

/** One factory per driver, each given its own section's shape. */
type Factories = { [D in StoreConfig['driver']]: (config: DriverConfig<D>, wiring: StoreWiring) => Store };

const FACTORIES: Factories = {
  sqlite: (config, wiring) =>
    new SqliteStore({
      path: config.path,
      historyLimit: config.historyLimit,
      historyTotalLimit: config.historyTotalLimit,
      ...(wiring.route ? { route: wiring.route } : {}),
    }),
  postgres: (config, wiring) =>
    new PostgresStore({
      url: config.url,
      poolSize: config.poolSize,
      statementTimeoutMs: config.statementTimeout,
      historyLimit: config.historyLimit,
      historyTotalLimit: config.historyTotalLimit,
      ...(wiring.route ? { route: wiring.route } : {}),
      ...(wiring.replicaId ? { replicaId: wiring.replicaId } : {}),
    }),
};

/** The drivers `createStore` knows, in registry order. */
export const STORE_DRIVERS = Object.keys(FACTORIES) as StoreConfig['driver'][];

/** A `store.driver` with no factory. */
export class UnknownStoreDriverError extends PulumiScaleError {
  constructor(driver: string) {
    super('PS_CONFIG_INVALID', `store.driver: unknown driver "${driver}" (known: ${STORE_DRIVERS.join(', ')})`, {
      details: { driver, known: STORE_DRIVERS },
    });
  }
}

/** Returns the store for `config.driver`, not yet initialised. Throws UnknownStoreDriverError. */
export function createStore(config: StoreConfig, wiring: StoreWiring = {}): Store {
  const driver: string = config.driver;
  if (!Object.hasOwn(FACTORIES, driver)) throw new UnknownStoreDriverError(driver);
  // The record's type pairs each driver with its own section; indexing it by a union loses
  // that pairing, so the factory is called through the widest of its shapes.
  const factory = FACTORIES[config.driver] as StoreFactory;
  return factory(config, wiring);
}
