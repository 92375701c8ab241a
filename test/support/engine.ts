/**
 * The engine on fakes, for its unit tests: targets, intents and signals with every field set, an
 * engine on an in-memory store, a fake executor and a fake clock, drained after each test.
 */
import { pino } from 'pino';
import { afterEach } from 'vitest';
import type { TargetConfig } from '../../src/config/schema.js';
import { Engine } from '../../src/engine/engine.js';
import type { Ownership } from '../../src/engine/ownership.js';
import { EventBus, type BusMessage } from '../../src/observe/bus.js';
import type { Adjustment, Intent, ScalingEvent, Signal } from '../../src/types.js';
import { FakeClock } from './fake-clock.js';
import { FakeExecutor } from './fake-executor.js';
import { MemoryStore } from './memory-store.js';

export const up: Adjustment = { type: 'step', direction: 'up' };
export const down: Adjustment = { type: 'step', direction: 'down' };
export const to = (n: number): Adjustment => ({ type: 'to', to: n });

export function target(name: string, over: Partial<TargetConfig> = {}): TargetConfig {
  return {
    name,
    workDir: `/srv/infra/${name}`,
    stack: 'prod',
    configKey: `${name}:replicas`,
    min: 1,
    max: 100,
    step: 1,
    cooldown: { up: 0, down: 0 },
    defaultAction: 'up',
    paused: false,
    env: {},
    createStack: false,
    stabilization: { up: 0, down: 0 },
    schedules: [],
    derived: [],
    stackKey: `file:///srv/state#${name}/prod`,
    ...over,
  };
}

let seq = 0;
export function intent(name: string, adjustment: Adjustment = up, over: Partial<Intent> = {}): Intent {
  seq += 1;
  return {
    id: `intent-${seq}`,
    target: name,
    adjustment,
    dryRun: false,
    source: 'alertmanager',
    reason: `alert #${seq}`,
    receivedAt: '2025-01-01T00:00:00.000Z',
    bounds: 'clamp',
    evidence: { alertName: 'HighCPU' },
    ...over,
  };
}


export interface Setup {
  engine: Engine;
  store: MemoryStore;
  exec: FakeExecutor;
  clock: FakeClock;
  messages: BusMessage[];
  events: () => ScalingEvent[];
}

const live: Setup[] = [];
let ids = 0;

/** An engine on fakes; values seed the executor's stack config. Not started. */
export function setup(opts: {
  targets: TargetConfig[];
  values?: Record<string, number>;
  concurrency?: number;
  dryRun?: boolean;
  retry?: { maxAttempts: number; baseDelay: number; maxDelay: number };
  operationTimeout?: number;
  store?: MemoryStore;
  /** The fake clock's start (default 2025-01-01T00:00:00Z, a Wednesday). */
  start?: number;
  /** Which stacks the engine acts on (default: all of them, as one daemon alone). */
  ownership?: Ownership;
}): Setup {
  const store = opts.store ?? new MemoryStore();
  const exec = new FakeExecutor();
  for (const [k, v] of Object.entries(opts.values ?? {})) exec.values.set(k, v);
  const clock = new FakeClock(opts.start);
  const bus = new EventBus((err) => {
    throw err;
  });
  const messages: BusMessage[] = [];
  bus.subscribe((m) => messages.push(m));
  const engine = new Engine({
    store,
    executor: exec,
    targets: opts.targets,
    clock,
    bus,
    logger: pino({ level: 'silent' }),
    dryRun: opts.dryRun ?? false,
    concurrency: opts.concurrency ?? 2,
    retry: opts.retry ?? { maxAttempts: 3, baseDelay: 1000, maxDelay: 1500 },
    operationTimeout: opts.operationTimeout ?? 1_800_000,
    cancelGrace: 10_000,
    evaluationInterval: 15_000,
    // Unique across engines: a test that restarts on the same store must not reuse an id.
    newId: () => `event-${++ids}`,
    ownership: opts.ownership,
  });
  const events = (): ScalingEvent[] => messages.flatMap((m) => (m.type === 'event' ? [m.event] : []));
  const s = { engine, store, exec, clock, messages, events };
  live.push(s);
  return s;
}

/** Started, with the background reads done. */
export async function started(opts: Parameters<typeof setup>[0]): Promise<Setup> {
  const s = setup(opts);
  await s.engine.start();
  await s.engine.idle();
  return s;
}

/** One turn of the event loop: every promise chain on the in-memory fakes settles. Not a sleep. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

afterEach(async () => {
  // No engine may be left with timers or held work between tests, even after a failure.
  for (const s of live.splice(0)) {
    s.exec.releaseAll();
    const drained = s.engine.drain(0);
    s.clock.advance(0);
    await drained;
  }
});

export function signal(name: string, id: string, direction: 'up' | 'down' = 'up', over: Partial<Signal> = {}): Signal {
  return {
    id,
    target: name,
    source: 'alertmanager',
    direction,
    value: null,
    threshold: null,
    since: '2025-01-01T00:00:00.000Z',
    lastSeen: '2025-01-01T00:00:00.000Z',
    expiresAt: null,
    reason: `alert ${id}`,
    evidence: {},
    ...over,
  };
}

