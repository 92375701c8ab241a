/**
 * Wires the daemon: store, event bus, metrics, logs, executor, engine and HTTP server, and owns
 * the drain. Nothing here decides anything; it only connects the stages in the order data
 * flows (DESIGN.md, "Architecture").
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { targetsOf } from './config/load.js';
import type { Config } from './config/schema.js';
import { systemClock, type Clock } from './engine/clock.js';
import { Engine } from './engine/engine.js';
import { soleOwnership } from './engine/ownership.js';
import { LeaseKeeper } from './cluster/lease-keeper.js';
import { keepWatching } from './cluster/watch.js';
import { buildApp, type AppDeps } from './http/app.js';
import { isLoopback, openRoutes } from './http/auth.js';
import { EventBus } from './observe/bus.js';
import { createLogger, logEvents } from './observe/logger.js';
import { Metrics } from './observe/metrics.js';
import { Followups } from './notify/chat/followups.js';
import { fetchPoster, Notifier, type Poster } from './notify/notifier.js';
import { outboxRouter } from './notify/route.js';
import { AutomationExecutor } from './pulumi/automation.js';
import type { Executor } from './pulumi/executor.js';
import { StreamHub } from './http/stream.js';
import { createStore } from './store/index.js';
import { isClusterStore, type Store } from './store/store.js';

/** What `startDaemon` may be given instead of its defaults (tests, embedding). */
export interface DaemonOptions {
  logger?: Logger;
  executor?: Executor;
  store?: Store;
  clock?: Clock;
  sns?: AppDeps['sns'];
  /** Listen on this port instead of the config's (0 picks a free one). */
  port?: number;
  /** Posts notifications and chat follow-ups (`fetch` by default). */
  post?: Poster;
}

/** A running daemon. */
export interface Daemon {
  app: FastifyInstance;
  engine: Engine;
  store: Store;
  metrics: Metrics;
  logger: Logger;
  /** The address it listens on, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /**
   * Stops taking work (readiness fails, POSTs get 503), lets running operations finish within
   * `engine.drainTimeout`, keeps queued intents in the store, then closes everything. Past the
   * timeout it cancels the running Pulumi CLIs (SIGINT, SIGKILL after `engine.cancelGrace`),
   * keeps their intents for the next start, and resolves `finished: false`.
   * Safe to call more than once; later calls wait for the first.
   */
  drain(): Promise<{ finished: boolean }>;
  /**
   * For a second signal: cancels the running operations at once (their CLIs get SIGINT and
   * stop on their own) without waiting for anything; the caller exits right after.
   */
  abort(): void;
}

/** Starts every stage and listens. Rejects (after cleaning up) when any stage fails to start. */
export async function startDaemon(config: Readonly<Config>, opts: DaemonOptions = {}): Promise<Daemon> {
  const logger = opts.logger ?? createLogger(config.log.level);
  const bus = new EventBus((err) => logger.error({ err }, 'event subscriber failed'));
  // Only configured names (and the history's buckets) become target labels: see observe/metrics.ts.
  const metrics = new Metrics({ targets: Object.keys(config.targets) });
  metrics.attach(bus);
  logEvents(bus, logger);

  const backend = config.pulumi.backendUrl;
  if (backend?.startsWith('file://')) mkdirSync(backend.slice('file://'.length), { recursive: true });

  // This daemon's id among replicas (in leases, outbox claims and `GET /api/v1/cluster`).
  const self = (config.store.driver === 'postgres' ? config.store.replicaId : undefined) ?? `${hostname()}-${randomBytes(3).toString('hex')}`;
  const startedAt = new Date().toISOString();
  const store = opts.store ?? createStore(config.store, { route: outboxRouter(config), replicaId: self });
  await store.init();
  const clock = opts.clock ?? systemClock;
  // Replicas sharing PostgreSQL act on the stacks whose lease they hold; a daemon alone, on all.
  const keeper =
    config.store.driver === 'postgres' && isClusterStore(store)
      ? new LeaseKeeper({
          store,
          self,
          startedAt,
          stacks: targetsOf(config).map((t) => t.stackKey),
          ttlMs: config.store.leaseTTL,
          clock,
          logger: logger.child({ stage: 'cluster' }),
          bus,
        })
      : null;
  const post = opts.post ?? fetchPoster;
  const notifier = new Notifier({
    store,
    destinations: config.notifications,
    publicUrl: config.server.publicUrl ?? null,
    clock,
    bus,
    logger: logger.child({ stage: 'notify' }),
    post,
  });
  metrics.countQueued = { destinations: config.notifications.map((d) => d.name), count: () => store.countMessages() };
  // A response URL is a Slack address for one command's replies; it carries no secret of ours.
  const respond = async (url: string, body: unknown): Promise<void> => {
    const result = await post(url, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, AbortSignal.timeout(10_000));
    if (result.status >= 300) throw new Error(`the response URL answered ${result.status}`);
  };
  const followups = new Followups(respond, logger.child({ stage: 'chat' }), () => clock.now());
  bus.subscribe((msg) => {
    if (msg.type !== 'event') return;
    notifier.poke();
    followups.onEvent(msg.event);
  });
  for (const d of config.notifications) {
    if (d.type === 'webhook' && d.secret === undefined) logger.warn({ destination: d.name }, `notification ${d.name} posts unsigned: set its secret so the receiver can verify what it gets`);
  }
  const executor =
    opts.executor ??
    new AutomationExecutor({ pulumi: config.pulumi, logger: logger.child({ stage: 'pulumi' }), cancelGraceMs: config.engine.cancelGrace });
  const engine = new Engine({
    store,
    executor,
    targets: targetsOf(config),
    clock,
    bus,
    logger: logger.child({ stage: 'engine' }),
    dryRun: config.engine.dryRun,
    concurrency: config.engine.concurrency,
    retry: config.engine.retry,
    operationTimeout: config.engine.operationTimeout,
    cancelGrace: config.engine.cancelGrace,
    evaluationInterval: config.engine.evaluationInterval,
    ownership: keeper ?? soleOwnership(self),
  });
  keeper?.attach(engine);
  // A daemon alone is the one live replica (it holds no leases: every stack is its own).
  if (keeper === null) metrics.replicasLive.set(1);
  const cluster = keeper ?? {
    view: async () => ({ self, replicas: [{ id: self, lastSeen: new Date(clock.now()).toISOString(), startedAt, draining: engine.isDraining() }], leases: [] }),
  };
  let unwatch: (() => Promise<void>) | null = null;

  let app: FastifyInstance | undefined;
  try {
    await engine.start();
    if (keeper !== null && isClusterStore(store)) {
      unwatch = await keepWatching(store, engine, clock, logger.child({ stage: 'cluster' }));
      keeper.start();
    }
    const stream = new StreamHub(bus, (name) => engine.state(name));
    app = buildApp({ config, engine, store, logger, metrics, stream, cluster, chat: { followups, respond }, ...(opts.sns ? { sns: opts.sns } : {}) });
    await app.listen({ host: config.server.host, port: opts.port ?? config.server.port });
    notifier.start();
  } catch (err) {
    keeper?.stop();
    await unwatch?.();
    await app?.close().catch(() => {});
    await notifier.close().catch(() => {});
    await executor.close().catch(() => {});
    await store.close().catch(() => {});
    throw err;
  }
  metrics.ready.set(1);
  const addr = app.server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`;
  logger.info({ url, targets: Object.keys(config.targets), dryRun: config.engine.dryRun }, 'pulumiscale is listening');
  // Open by choice is fine on localhost; elsewhere every open route is said out loud, once.
  if (!isLoopback(config.server.host)) {
    for (const open of openRoutes(config)) {
      logger.warn({ route: open.route, host: config.server.host }, `route ${open.route} takes no credentials on ${config.server.host}: ${open.risk}`);
    }
  }

  const started = app;
  let draining: Promise<{ finished: boolean }> | undefined;
  const drain = () => {
    draining ??= (async () => {
      metrics.ready.set(0);
      logger.info({ timeoutMs: config.engine.drainTimeout }, 'draining: refusing new work, letting running operations finish');
      // The other replicas take this one's idle stacks at once; the busy ones once they finish.
      keeper?.drain();
      const drained = engine.drain(config.engine.drainTimeout);
      const running = (await engine.states()).filter((t) => t.running).map((t) => t.name);
      const result = await drained;
      if (!result.finished) {
        // The operator's bound on the wait: the running CLIs were cancelled, their config put
        // back, and their intents stay in the store, running, to resume at the next start.
        logger.error({ running, drainTimeout: config.engine.drainTimeout, stopped: result.stopped }, 'drain timeout passed: running operations were cancelled');
      }
      // Handed over once nothing runs here; a CLI that would not stop keeps its stack's lease until it lapses.
      if (result.stopped) await keeper?.handOver();
      else keeper?.stop();
      await unwatch?.();
      await started.close();
      // What is not delivered by now stays in the outbox for the next start.
      await notifier.close();
      // A CLI that would not stop even when killed still holds its workspace: leave it be.
      if (result.stopped) await executor.close();
      await store.close();
      logger.info({ finished: result.finished }, 'drained');
      return { finished: result.finished };
    })();
    return draining;
  };
  const abort = () => {
    logger.warn('second signal: cancelling running operations and exiting now');
    keeper?.stop();
    engine.interrupt();
  };
  return { app: started, engine, store, metrics, logger, url, drain, abort };
}
