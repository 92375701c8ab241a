/**
 * `makeTestApp()`: the real Fastify app (buildApp) on a real parsed config, with a fake engine
 * that records what reached it and a fake store for deliveries and events, for HTTP tests
 * through `app.inject()`. Logs are captured as parsed JSON lines so tests can assert on them.
 */
import type { FastifyInstance } from 'fastify';
import { pino, type Level } from 'pino';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { PulumiScaleError, StoreUnavailableError } from '../../src/errors.js';
import { buildApp } from '../../src/http/app.js';
import type { AppDeps, EngineApi } from '../../src/http/deps.js';
import { Metrics } from '../../src/observe/metrics.js';
import { TEST_TOPIC_ARN } from './sns.js';
import type { ApprovalQuery, EventQuery, SignalChange } from '../../src/store/store.js';
import type { Actor, Approval, Command, Pause, ScalingEvent, Signal, SignalKey, TargetState } from '../../src/types.js';

/** Credentials and names the base config uses. */
export const TEST_AUTH = {
  alertmanagerToken: 'am-token-for-tests',
  alertmanagerBasic: { username: 'alertmanager', password: 'am-password-for-tests' },
  apiToken: 'api-token-for-tests',
  topicArn: TEST_TOPIC_ARN,
} as const;

/**
 * The base config: three targets (`web` and `worker` default to up, `batch` to down), both
 * webhooks protected, a 64 KiB body limit. Tests override parts with `config`.
 */
export const BASE_CONFIG = {
  server: { host: '127.0.0.1', port: 0, bodyLimit: '64kb' },
  store: { path: ':memory:' },
  log: { level: 'silent' },
  webhooks: {
    alertmanager: { bearerTokens: [TEST_AUTH.alertmanagerToken], basicAuth: [TEST_AUTH.alertmanagerBasic] },
    cloudwatch: { verifySignature: true, topicArns: [TEST_AUTH.topicArn], autoConfirm: false, replayWindow: '24h' },
  },
  api: { bearerTokens: [TEST_AUTH.apiToken] },
  targets: {
    web: { workDir: './infra/web', stack: 'prod', configKey: 'web:replicas', min: 2, max: 40 },
    worker: { workDir: './infra/worker', stack: 'prod', configKey: 'worker:replicas', min: 1, max: 20, step: 2 },
    batch: { inline: { project: 'batch' }, stack: 'dev', configKey: 'batch:replicas', min: 0, max: 8, defaultAction: 'down' },
  },
};

type MethodName<T> = { [K in keyof T]: T[K] extends (...args: never[]) => unknown ? K : never }[keyof T];

/** The engine methods a test can make fail, as a store outage would. */
export type FailingMethod = Extract<MethodName<EngineApi>, 'command' | 'signals' | 'pause' | 'record'>;

/**
 * An engine that does nothing but remember: what a test asserts "reached the engine". It keeps
 * what the real engine keeps for `state()` (queued commands, active signals, the API pause) but
 * runs nothing, so commands stay queued and signals stay until ended.
 */
export class FakeEngine implements EngineApi {
  /** Commands queued (operator commands and webhook previews), in order. */
  readonly commands: Command[] = [];
  /** Signal changes applied (one per webhook delivery), in order. */
  readonly signalChanges: SignalChange[] = [];
  /** Pauses set (`pause`) and lifted (`null`), in order. */
  readonly pauses: { target: string; pause: Pause | null }[] = [];
  /** Events recorded through `record()`, in order. */
  readonly recorded: ScalingEvent[] = [];
  /** Every event that reached the engine, with a signal change or through `record()`, in order. */
  readonly events: ScalingEvent[] = [];
  /** Set to make isDraining() true. */
  draining = false;
  readonly #failures = new Map<FailingMethod, { times: number; error: () => Error }>();
  /** Active signals by target, then id. */
  readonly #signals = new Map<string, Map<string, Signal>>();
  readonly #pause = new Map<string, Pause | null>();

  constructor(
    private readonly config: Readonly<Config>,
    private readonly store: FakeStore,
  ) {}

  /** The next `times` calls of `method` reject (StoreUnavailableError unless given) and store nothing. */
  failNext(method: FailingMethod, times = 1, error: () => Error = () => new StoreUnavailableError(`store down (${method}, injected)`)): void {
    this.#failures.set(method, { times, error });
  }

  /** True when nothing reached the engine: no command, signal change, pause or event. */
  untouched(): boolean {
    return this.commands.length === 0 && this.signalChanges.length === 0 && this.pauses.length === 0 && this.events.length === 0;
  }

  /** Every signal upserted, over all changes, in order. */
  get upserted(): Signal[] {
    return this.signalChanges.flatMap((c) => c.upsert);
  }

  /** Every signal ended, over all changes, in order. */
  get ended(): SignalKey[] {
    return this.signalChanges.flatMap((c) => c.end);
  }

  async command(command: Command): Promise<{ queued: number }> {
    this.#fail('command');
    this.commands.push(command);
    return { queued: this.#queue(command.target).length };
  }

  async signals(change: SignalChange): Promise<void> {
    this.#fail('signals');
    this.signalChanges.push(change);
    for (const s of change.upsert) {
      const byId = this.#signals.get(s.target) ?? new Map<string, Signal>();
      byId.set(s.id, { ...s, since: byId.get(s.id)?.since ?? s.since });
      this.#signals.set(s.target, byId);
    }
    for (const key of change.end) this.#signals.get(key.target)?.delete(key.id);
    this.events.push(...change.events);
    this.store.events.push(...change.events);
  }

  async pause(name: string, pause: Pause | null): Promise<TargetState> {
    this.#fail('pause');
    this.pauses.push({ target: name, pause });
    this.#pause.set(name, pause);
    const state = await this.state(name);
    if (!state) throw new Error(`FakeEngine.pause: no target named ${name}`);
    return state;
  }

  /** Verdicts given (`decideApproval`), in order. */
  readonly verdicts: { id: string; verdict: 'approve' | 'reject'; actor: Actor }[] = [];

  /** Decides an approval the FakeStore holds, as the engine would (pending only). */
  async decideApproval(id: string, verdict: 'approve' | 'reject', actor: Actor): Promise<Approval> {
    const open = this.store.approvals.get(id);
    if (open === undefined) throw new PulumiScaleError('PS_APPROVAL_UNKNOWN', `no approval with id "${id}"`);
    if (open.status !== 'pending') throw new PulumiScaleError('PS_APPROVAL_CLOSED', `approval ${id} is ${open.status}`);
    this.verdicts.push({ id, verdict, actor });
    const decided: Approval = { ...open, status: verdict === 'approve' ? 'approved' : 'rejected', decidedBy: actor, decidedAt: new Date().toISOString() };
    this.store.approvals.set(id, decided);
    return decided;
  }

  async record(event: ScalingEvent): Promise<void> {
    this.#fail('record');
    this.recorded.push(event);
    this.events.push(event);
    this.store.events.push(event);
  }

  async state(name: string): Promise<TargetState | null> {
    const t = this.config.targets[name];
    if (!t) return null;
    const commands = this.#queue(name);
    const pause = this.#pause.get(name) ?? null;
    const last = [...this.store.events].reverse().find((e) => e.target === name) ?? null;
    return {
      name,
      stack: t.stack,
      configKeys: [t.configKey],
      values: { [t.configKey]: null },
      min: t.min,
      max: t.max,
      current: null,
      paused: t.paused || pause !== null,
      cooldownUntil: { up: null, down: null },
      pause,
      bounds: { min: t.min, max: t.max, source: 'config' },
      schedules: [],
      pending: commands[0] ?? null,
      pendingCount: commands.length,
      commands,
      signals: [...(this.#signals.get(name)?.values() ?? [])].map(({ id, source, direction, value, threshold, since, lastSeen }) => ({
        id,
        source,
        direction,
        value,
        threshold,
        since,
        lastSeen,
      })),
      desired: null,
      running: false,
      lastEvent: last,
      error: null,
      owner: 'local',
    };
  }

  async states(): Promise<TargetState[]> {
    const out: TargetState[] = [];
    for (const name of Object.keys(this.config.targets)) {
      const s = await this.state(name);
      if (s) out.push(s);
    }
    return out;
  }

  isDraining(): boolean {
    return this.draining;
  }

  #queue(target: string): Command[] {
    return this.commands.filter((c) => c.target === target);
  }

  #fail(method: FailingMethod): void {
    const f = this.#failures.get(method);
    if (f && f.times > 0) {
      f.times -= 1;
      throw f.error();
    }
  }
}

/** The store as the HTTP layer sees it: events and delivery ids, in memory. */
type HttpStore = AppDeps['store'];

/** The store as the HTTP layer sees it, in memory. */
export class FakeStore implements HttpStore {
  /** History, oldest first. */
  readonly events: ScalingEvent[] = [];
  /** Approvals by id, in the order they were seeded. */
  readonly approvals = new Map<string, Approval>();
  /** Delivery ids and when they expire (ISO). */
  readonly deliveries = new Map<string, string>();
  readonly #failures = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  /** The next `times` calls of `method` reject with StoreUnavailableError. */
  failNext(method: 'listEvents' | 'rememberDelivery' | 'forgetDelivery', times = 1): void {
    this.#failures.set(method, (this.#failures.get(method) ?? 0) + times);
  }

  async listEvents(query: EventQuery): Promise<ScalingEvent[]> {
    this.#fail('listEvents');
    let list = [...this.events].reverse();
    if (query.target !== undefined) list = list.filter((e) => e.target === query.target);
    if (query.before !== undefined) {
      const i = list.findIndex((e) => e.id === query.before);
      list = i === -1 ? [] : list.slice(i + 1);
    }
    return list.slice(0, query.limit);
  }

  async rememberDelivery(key: string, expiresAt: string): Promise<boolean> {
    this.#fail('rememberDelivery');
    const known = this.deliveries.get(key);
    if (known !== undefined && Date.parse(known) > this.now()) return false;
    this.deliveries.set(key, expiresAt);
    return true;
  }

  async forgetDelivery(key: string): Promise<void> {
    this.#fail('forgetDelivery');
    this.deliveries.delete(key);
  }

  async listApprovals(query: ApprovalQuery): Promise<Approval[]> {
    return [...this.approvals.values()].reverse().filter((a) => query.status === undefined || a.status === query.status).slice(0, query.limit);
  }

  async getApproval(id: string): Promise<Approval | null> {
    return this.approvals.get(id) ?? null;
  }

  #fail(method: string): void {
    const left = this.#failures.get(method) ?? 0;
    if (left > 0) {
      this.#failures.set(method, left - 1);
      throw new StoreUnavailableError(`store down (${method}, injected)`);
    }
  }
}

/** Options of {@link makeTestApp}. */
export interface TestAppOptions {
  /** Deep-merged over {@link BASE_CONFIG} (objects merge, arrays and scalars replace). */
  config?: Record<string, unknown>;
  /** A whole YAML config instead of BASE_CONFIG (then `config` is ignored). */
  configText?: string;
  /** Environment for `${VAR}` interpolation (default: empty). */
  env?: NodeJS.ProcessEnv;
  /** The clock (default Date.now). */
  now?: () => number;
  /** Id generator (default: `id-1`, `id-2`… so assertions are stable). */
  newId?: () => string;
  /** SNS plumbing (certificate fetcher, subscription confirmer). */
  sns?: AppDeps['sns'];
  /** Captured log level (default info). */
  logLevel?: Level;
}

/** A parsed log line. */
export type LogLine = Record<string, unknown> & { level: number; msg?: string };

/** What {@link makeTestApp} returns. */
export interface TestApp {
  /** The real app, ready; use `app.inject()`. */
  app: FastifyInstance;
  /** What the app was built with (to reach `deps.sns` mocks, the clock…). */
  deps: AppDeps;
  /** The parsed, frozen config. */
  config: Readonly<Config>;
  /** The fake engine: what reached it, and switches for draining and failures. */
  engine: FakeEngine;
  /** The fake store: events and delivery ids. */
  store: FakeStore;
  /** The app's own metrics registry. */
  metrics: Metrics;
  /** Every log line written so far, parsed. */
  logs: LogLine[];
  /** Closes the app. */
  close(): Promise<void>;
}

/** Builds the app on a test config with fakes around it. Call `close()` when done. */
export async function makeTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const text = opts.configText ?? stringify(deepMerge(BASE_CONFIG, opts.config ?? {}));
  const config = parseConfig(text, { file: 'test-config.yaml', baseDir: process.cwd(), env: opts.env ?? {} });
  const now = opts.now ?? Date.now;
  let n = 0;
  const newId = opts.newId ?? (() => `id-${++n}`);
  const logs: LogLine[] = [];
  const logger = pino({ level: opts.logLevel ?? 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const store = new FakeStore(now);
  const engine = new FakeEngine(config, store);
  const metrics = new Metrics({ defaultMetrics: false });
  const deps: AppDeps = { config, engine, store, logger, metrics, now, newId, ...(opts.sns ? { sns: opts.sns } : {}) };
  const app = buildApp(deps);
  await app.ready();
  return { app, deps, config, engine, store, metrics, logs, close: () => app.close() };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merges `patch` into a copy of `base`; `undefined` in the patch removes a key. */
export function deepMerge(base: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete out[k];
    else if (isPlainObject(v) && isPlainObject(out[k])) out[k] = deepMerge(out[k], v);
    else out[k] = v;
  }
  return out;
}
