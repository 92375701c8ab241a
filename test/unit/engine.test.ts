import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../src/config/schema.js';
import { Engine } from '../../src/engine/engine.js';
import { PulumiProgramError, PulumiScaleError, StackNotFoundError, StoreUnavailableError } from '../../src/errors.js';
import { EventBus, type BusMessage } from '../../src/observe/bus.js';
import type { Adjustment, Intent, PendingIntent, ScalingEvent } from '../../src/types.js';
import { FakeClock } from '../support/fake-clock.js';
import { FakeExecutor } from '../support/fake-executor.js';
import { MemoryStore } from '../support/memory-store.js';

const up: Adjustment = { type: 'step', direction: 'up' };
const down: Adjustment = { type: 'step', direction: 'down' };
const to = (n: number): Adjustment => ({ type: 'to', to: n });

function target(name: string, over: Partial<TargetConfig> = {}): TargetConfig {
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
    stackKey: `file:///srv/state#${name}/prod`,
    ...over,
  };
}

let seq = 0;
function intent(name: string, adjustment: Adjustment = up, over: Partial<Intent> = {}): Intent {
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

interface Setup {
  engine: Engine;
  store: MemoryStore;
  exec: FakeExecutor;
  clock: FakeClock;
  messages: BusMessage[];
  events: () => ScalingEvent[];
}

const live: Setup[] = [];

/** An engine on fakes; values seed the executor's stack config. Not started. */
function setup(opts: {
  targets: TargetConfig[];
  values?: Record<string, number>;
  concurrency?: number;
  dryRun?: boolean;
  retry?: { maxAttempts: number; baseDelay: number; maxDelay: number };
  operationTimeout?: number;
  store?: MemoryStore;
}): Setup {
  const store = opts.store ?? new MemoryStore();
  const exec = new FakeExecutor();
  for (const [k, v] of Object.entries(opts.values ?? {})) exec.values.set(k, v);
  const clock = new FakeClock();
  const bus = new EventBus((err) => {
    throw err;
  });
  const messages: BusMessage[] = [];
  bus.subscribe((m) => messages.push(m));
  let ids = 0;
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
    newId: () => `event-${++ids}`,
  });
  const events = (): ScalingEvent[] => messages.flatMap((m) => (m.type === 'event' ? [m.event] : []));
  const s = { engine, store, exec, clock, messages, events };
  live.push(s);
  return s;
}

/** Started, with the background reads done. */
async function started(opts: Parameters<typeof setup>[0]): Promise<Setup> {
  const s = setup(opts);
  await s.engine.start();
  await s.engine.idle();
  return s;
}

/** One turn of the event loop: every promise chain on the in-memory fakes settles. Not a sleep. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

afterEach(async () => {
  // No engine may be left with timers or held work between tests, even after a failure.
  for (const s of live.splice(0)) {
    s.exec.releaseAll();
    const drained = s.engine.drain(0);
    s.clock.advance(0);
    await drained;
  }
});

describe('engine: submit', () => {
  it('stores the intent before it resolves, then applies it', async () => {
    const { engine, store, exec, events } = await started({ targets: [target('web')], values: { web: 3 } });
    const i = intent('web');
    const pending = await engine.submit(i);
    expect(pending).toMatchObject({ intent: i, count: 1, attempts: 0 });
    expect(store.intents).toEqual([i]);
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: false }]);
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 4, intents: 1, source: 'alertmanager', intentId: i.id }]);
    expect(store.events).toHaveLength(1);
    expect(store.slots('web')).toEqual({ queued: null, running: null });
    expect(await engine.state('web')).toMatchObject({ current: 4, pending: null, running: false, lastEvent: { kind: 'changed' } });
  });

  it('refuses an unknown target with PS_TARGET_UNKNOWN', async () => {
    const { engine } = await started({ targets: [target('web')] });
    await expect(engine.submit(intent('nope'))).rejects.toMatchObject({ code: 'PS_TARGET_UNKNOWN' });
  });

  it('a store failure on submit leaves nothing pending and runs nothing', async () => {
    const { engine, store, exec, messages } = await started({ targets: [target('web')], values: { web: 3 } });
    store.failNext('enqueue');
    await expect(engine.submit(intent('web'))).rejects.toBeInstanceOf(StoreUnavailableError);
    await engine.idle();
    expect(await engine.state('web')).toMatchObject({ pending: null, pendingCount: 0 });
    expect(exec.applies).toEqual([]);
    expect(messages.filter((m) => m.type === 'intent')).toEqual([]);
    // The next intent starts afresh: the failed one was never counted.
    expect((await engine.submit(intent('web'))).count).toBe(1);
  });

  it('publishes each intent, saying whether it merged', async () => {
    const { engine, exec, messages } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    await engine.submit(intent('web'));
    await exec.until(() => exec.held.length === 1);
    await engine.submit(intent('web'));
    await engine.submit(intent('web'));
    expect(messages.filter((m) => m.type === 'intent')).toEqual([
      { type: 'intent', target: 'web', source: 'alertmanager', merged: false },
      { type: 'intent', target: 'web', source: 'alertmanager', merged: false },
      { type: 'intent', target: 'web', source: 'alertmanager', merged: true },
    ]);
    exec.releaseAll();
    await engine.idle();
  });
});

describe('engine: coalescing', () => {
  it('a storm of 1000 intents while one operation runs makes at most 2 applies, and counts every intent', async () => {
    const { engine, exec, store, events } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    await engine.submit(intent('web'));
    await exec.until(() => exec.held.length === 1);
    await Promise.all(Array.from({ length: 999 }, () => engine.submit(intent('web'))));
    expect(await engine.state('web')).toMatchObject({ pendingCount: 999, running: true });
    exec.releaseAll();
    await engine.idle();
    expect(exec.applies.length).toBeLessThanOrEqual(2);
    expect(events().map((e) => e.intents)).toEqual([1, 999]);
    expect(store.events.reduce((n, e) => n + e.intents, 0)).toBe(1000);
    expect(store.intents).toHaveLength(1000);
  });

  it('a scale-up waiting is never dropped for a later scale-down', async () => {
    const { engine, exec, events } = await started({ targets: [target('web')], values: { web: 5 } });
    exec.holding = true;
    await engine.submit(intent('web', to(6)));
    await exec.until(() => exec.held.length === 1);
    const upIntent = intent('web', up);
    await engine.submit(upIntent);
    await engine.submit(intent('web', down));
    expect((await engine.state('web'))?.pending).toEqual(upIntent);
    exec.releaseAll();
    await engine.idle();
    expect(events()).toMatchObject([
      { kind: 'changed', from: 5, to: 6, intents: 1 },
      { kind: 'changed', from: 6, to: 7, intents: 2, intentId: upIntent.id },
    ]);
  });
});

describe('engine: ordering and concurrency', () => {
  it('runs different stacks in parallel, never more than `concurrency` at once', async () => {
    const { engine, exec } = await started({ targets: [target('a'), target('b'), target('c')], concurrency: 2 });
    exec.holding = true;
    for (const name of ['a', 'b', 'c']) await engine.submit(intent(name));
    await exec.until(() => exec.held.length === 2);
    await settle();
    expect(exec.held.map((h) => h.target)).toEqual(['a', 'b']);
    expect(await engine.state('c')).toMatchObject({ pendingCount: 1, running: false });
    exec.release('a');
    await exec.until(() => exec.held.some((h) => h.target === 'c'));
    exec.releaseAll();
    await engine.idle();
    expect(exec.maxInFlight).toBe(2);
    expect(exec.applies.map((c) => c.target)).toEqual(['a', 'b', 'c']);
  });

  it('serializes two targets that own keys of the same stack', async () => {
    const shared = { workDir: '/srv/infra/app', stack: 'prod', stackKey: 'file:///srv/state#app/prod' };
    const { engine, exec, events } = await started({
      targets: [target('web', { ...shared, configKey: 'app:web' }), target('worker', { ...shared, configKey: 'app:worker' })],
      concurrency: 2,
    });
    exec.holding = true;
    await engine.submit(intent('web'));
    await engine.submit(intent('worker'));
    await exec.until(() => exec.held.length === 1);
    await settle();
    expect(exec.calls.filter((c) => c.target === 'worker' && c.op === 'apply')).toEqual([]);
    expect(await engine.state('worker')).toMatchObject({ running: true, pendingCount: 1 });
    exec.releaseAll();
    await engine.idle();
    expect(exec.sameStackOverlaps).toBe(0);
    expect(events().map((e) => e.target)).toEqual(['web', 'worker']);
  });

  it('serves targets first come, first served', async () => {
    const { engine, exec } = await started({ targets: [target('a'), target('b'), target('c')], concurrency: 1 });
    exec.holding = true;
    await engine.submit(intent('a'));
    await exec.until(() => exec.held.length === 1);
    await engine.submit(intent('c'));
    await engine.submit(intent('a'));
    await engine.submit(intent('b'));
    exec.releaseAll();
    await engine.idle();
    expect(exec.applies.map((c) => c.target)).toEqual(['a', 'c', 'a', 'b']);
  });

  it('decides from the present: the value is read when the operation starts', async () => {
    const { engine, exec, events } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.values.set('web', 10); // changed by hand after the start-up read
    await engine.submit(intent('web'));
    await engine.idle();
    expect(events()).toMatchObject([{ kind: 'changed', from: 10, to: 11 }]);
  });
});

describe('engine: outcomes', () => {
  it('retries a locked stack with doubling backoff, capped, then gives up and records failed', async () => {
    const { engine, exec, store, clock, messages, events } = await started({
      targets: [target('web')],
      values: { web: 3 },
      retry: { maxAttempts: 3, baseDelay: 1000, maxDelay: 1500 },
    });
    exec.conflict('web', 3);
    await engine.submit(intent('web'));
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    expect(events()).toEqual([]);
    expect(store.slots('web')).toMatchObject({ running: null, queued: { attempts: 1, notBefore: clock.iso(1000) } });

    clock.advance(999);
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    clock.advance(1);
    await engine.idle();
    expect(exec.applies).toHaveLength(2);

    clock.advance(1499);
    await engine.idle();
    expect(exec.applies).toHaveLength(2);
    clock.advance(1);
    await engine.idle();
    expect(exec.applies).toHaveLength(3);

    expect(messages.filter((m) => m.type === 'retry')).toEqual([
      { type: 'retry', target: 'web', attempt: 1, delayMs: 1000 },
      { type: 'retry', target: 'web', attempt: 2, delayMs: 1500 },
    ]);
    expect(events()).toMatchObject([{ kind: 'failed', errorCode: 'PS_PULUMI_CONFLICT', from: 3, to: 4 }]);
    expect(events()[0]?.reason).toContain('gave up after 3 attempts');
    expect(store.slots('web')).toEqual({ queued: null, running: null });
    expect(await engine.state('web')).toMatchObject({ current: 3, pending: null });
    expect(messages.filter((m) => m.type === 'operation-start')).toHaveLength(3);
    expect(messages.filter((m) => m.type === 'operation-end')).toHaveLength(3);
  });

  it('a retry that then succeeds records one changed event covering the intent', async () => {
    const { engine, exec, clock, events } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.conflict('web', 1);
    await engine.submit(intent('web'));
    await engine.idle();
    clock.advance(1000);
    await engine.idle();
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 4, intents: 1 }]);
  });

  it('an intent arriving during a backoff becomes the effective one but waits for the backoff', async () => {
    const { engine, exec, clock, events } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.conflict('web', 1);
    await engine.submit(intent('web', up));
    await engine.idle();
    await engine.submit(intent('web', to(8)));
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    clock.advance(1000);
    await engine.idle();
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 8, intents: 2 }]);
  });

  it('a storm against a locked stack runs pulumi once per backoff and gives up after maxAttempts', async () => {
    const { engine, exec, clock, events } = await started({
      targets: [target('web')],
      values: { web: 3 },
      retry: { maxAttempts: 3, baseDelay: 1000, maxDelay: 1500 },
    });
    exec.conflict('web', 10);
    for (let round = 0; round < 4; round++) {
      for (let n = 0; n < 20; n++) await engine.submit(intent('web'));
      await engine.idle();
      clock.advance(1500);
      await engine.idle();
    }
    // Three tries for the first storm, then it gave up; the later storms start a fresh budget.
    expect(events()[0]).toMatchObject({ kind: 'failed', errorCode: 'PS_PULUMI_CONFLICT' });
    expect(exec.applies.length).toBeLessThanOrEqual(6);
  });

  it.each(rules([
    { rule: 'a program failure records failed with its code', error: new PulumiProgramError('resource web failed'), code: 'PS_PULUMI_PROGRAM', reason: 'resource web failed' },
    { rule: 'an unexpected error records failed as PS_INTERNAL', error: new Error('boom'), code: 'PS_INTERNAL', reason: 'boom' },
  ]))('%s and leaves current unchanged', async (_rule, { error, code, reason }) => {
    const { engine, exec, store, events } = await started({ targets: [target('web', { cooldown: { up: 60_000, down: 0 } })], values: { web: 3 } });
    exec.failApply('web', error);
    await engine.submit(intent('web'));
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    expect(events()).toMatchObject([{ kind: 'failed', errorCode: code, reason, from: 3, to: 4 }]);
    expect(store.targets.get('web')).toMatchObject({ current: 3, cooldownUntil: { up: null, down: null } });
    expect(await engine.state('web')).toMatchObject({ current: 3, pending: null });
  });

  it('an operation past engine.operationTimeout is cancelled, its value restored, and recorded failed with PS_PULUMI_TIMEOUT', async () => {
    const { engine, exec, clock, store, events } = await started({ targets: [target('web')], values: { web: 3 }, operationTimeout: 60_000 });
    exec.holding = true;
    await engine.submit(intent('web'));
    await exec.until(() => exec.held.length === 1);
    clock.advance(59_999);
    await settle();
    expect(exec.held).toHaveLength(1);
    clock.advance(1);
    await engine.idle();
    expect(exec.held).toHaveLength(0);
    expect(exec.values.get('web')).toBe(3);
    expect(events()).toMatchObject([{ kind: 'failed', errorCode: 'PS_PULUMI_TIMEOUT', from: 3, to: 4 }]);
    expect(store.slots('web')).toEqual({ queued: null, running: null });
    expect(await engine.state('web')).toMatchObject({ current: 3, running: false, error: { code: 'PS_PULUMI_TIMEOUT' } });
  });

  it('when the end of an operation cannot be stored, memory keeps it running and the write is retried until it lands', async () => {
    const { engine, clock, store, events } = await started({ targets: [target('web')], values: { web: 3 } });
    store.failNext('finishOperation', 2);
    await engine.submit(intent('web'));
    await settle();
    // Not stored yet: the state says so, and nothing was published.
    expect(store.slots('web').running).not.toBeNull();
    expect(await engine.state('web')).toMatchObject({ current: 3, running: true });
    expect(events()).toEqual([]);
    clock.advance(1000);
    await settle();
    clock.advance(2000);
    await engine.idle();
    expect(store.slots('web')).toEqual({ queued: null, running: null });
    expect(store.events).toMatchObject([{ kind: 'changed', from: 3, to: 4 }]);
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 4 }]);
    expect(await engine.state('web')).toMatchObject({ current: 4, running: false });
  });

  it('a stack that does not exist shows in the state and the history at start, and nothing runs', async () => {
    const { engine, exec, events } = setup({ targets: [target('web')] });
    exec.failRead('web', new StackNotFoundError('web: stack prod does not exist'), new StackNotFoundError('web: stack prod does not exist'));
    await engine.start();
    await engine.idle();
    expect(await engine.state('web')).toMatchObject({ current: null, error: { code: 'PS_STACK_NOT_FOUND' } });
    expect(events()).toMatchObject([{ kind: 'failed', errorCode: 'PS_STACK_NOT_FOUND', source: 'engine' }]);
    await engine.submit(intent('web'));
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(events()[1]).toMatchObject({ kind: 'failed', errorCode: 'PS_STACK_NOT_FOUND' });
  });

  it('a failed read records failed without applying', async () => {
    const { engine, exec, events } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.failRead('web', new PulumiScaleError('PS_PULUMI_CONFIG', 'web:replicas is not a number'));
    await engine.submit(intent('web'));
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(events()).toMatchObject([{ kind: 'failed', errorCode: 'PS_PULUMI_CONFIG', from: 3, to: null }]);
  });

  it('records a change in cooldown as skipped, and changes again once it has passed', async () => {
    const { engine, clock, events, exec } = await started({
      targets: [target('web', { cooldown: { up: 60_000, down: 300_000 } })],
      values: { web: 3 },
    });
    await engine.submit(intent('web'));
    await engine.idle();
    expect(await engine.state('web')).toMatchObject({ cooldownUntil: { up: clock.iso(60_000), down: null } });

    clock.advance(30_000);
    await engine.submit(intent('web'));
    await engine.idle();
    expect(events()[1]).toMatchObject({ kind: 'skipped', skipReason: 'cooldown', from: 4, to: null, intents: 1 });
    expect(events()[1]?.reason).toContain('30s left');

    // A scale-down is not held back by the up cooldown.
    await engine.submit(intent('web', down));
    await engine.idle();
    expect(events()[2]).toMatchObject({ kind: 'changed', from: 4, to: 3 });

    clock.advance(30_000);
    await engine.submit(intent('web'));
    await engine.idle();
    expect(events()[3]).toMatchObject({ kind: 'changed', from: 3, to: 4 });
    expect(exec.applies).toHaveLength(3);
    expect(await engine.state('web')).toMatchObject({ cooldownUntil: { up: clock.iso(60_000), down: clock.iso(300_000 - 30_000) } });
  });

  it.each(rules([
    { rule: 'a global dry run previews', engineDryRun: true, intentDryRun: false },
    { rule: 'a dry-run intent previews', engineDryRun: false, intentDryRun: true },
  ]))('%s: current unchanged and no cooldown', async (_rule, { engineDryRun, intentDryRun }) => {
    const { engine, exec, events } = await started({
      targets: [target('web', { cooldown: { up: 60_000, down: 0 } })],
      values: { web: 3 },
      dryRun: engineDryRun,
    });
    await engine.submit(intent('web', up, { dryRun: intentDryRun }));
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: true }]);
    expect(events()).toMatchObject([{ kind: 'previewed', from: 3, to: 4, dryRun: true }]);
    expect(await engine.state('web')).toMatchObject({ current: 3, cooldownUntil: { up: null, down: null } });
  });

  it('a paused target records every intent as skipped', async () => {
    const { engine, exec, events } = await started({ targets: [target('web', { paused: true })], values: { web: 3 } });
    await engine.submit(intent('web'));
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(events()).toMatchObject([{ kind: 'skipped', skipReason: 'paused' }]);
  });

  it('publishes start and end of every operation, and the event before the end', async () => {
    const { engine, messages } = await started({ targets: [target('web')], values: { web: 3 } });
    await engine.submit(intent('web'));
    await engine.idle();
    expect(messages.filter((m) => m.type !== 'intent').map((m) => m.type)).toEqual(['operation-start', 'event', 'operation-end']);
    expect(messages.at(-1)).toMatchObject({ type: 'operation-end', target: 'web', kind: 'changed' });
  });

  it('a store failure when starting keeps the intent queued and tries again later', async () => {
    const { engine, exec, store, clock, events } = await started({ targets: [target('web')], values: { web: 3 } });
    store.failNext('startOperation');
    await engine.submit(intent('web'));
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(await engine.state('web')).toMatchObject({ pendingCount: 1 });
    clock.advance(1000);
    await engine.idle();
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 4 }]);
  });
});

describe('engine: start', () => {
  it('reads every target in the background; a failed read is not fatal', async () => {
    const s = setup({ targets: [target('a'), target('b')], values: { a: 7, b: 2 } });
    s.exec.failRead('b', new Error('no stack'));
    await s.engine.start();
    await s.engine.idle();
    expect((await s.engine.states()).map((t) => [t.name, t.current])).toEqual([
      ['a', 7],
      ['b', null],
    ]);
    expect(s.store.targets.get('a')).toMatchObject({ current: 7 });
  });

  it('puts an operation cut off by a crash back in the queue, merged with what came after, and runs it', async () => {
    const store = new MemoryStore();
    const at = '2024-12-31T23:00:00.000Z';
    const cutOff: PendingIntent = { intent: intent('web', to(5)), count: 3, firstAt: at, attempts: 0, notBefore: null };
    const after: PendingIntent = { intent: intent('web', down), count: 2, firstAt: at, attempts: 0, notBefore: null };
    store.pending.set('web', { running: cutOff, queued: after });
    store.targets.set('web', { name: 'web', current: 3, paused: false, cooldownUntil: { up: null, down: null } });
    const { engine, exec, events } = setup({ targets: [target('web')], values: { web: 3 }, store });
    await engine.start();
    await engine.idle();
    // The cut-off scale-up is kept over the later scale-down, and covers all five intents.
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 5, dryRun: false }]);
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 5, intents: 5, intentId: cutOff.intent.id }]);
    expect(store.slots('web')).toEqual({ queued: null, running: null });
  });

  it('finishes a relative change cut off mid-apply at the value it was applying, never applying it twice', async () => {
    const store = new MemoryStore();
    const at = '2024-12-31T23:00:00.000Z';
    // A step up from 3 was being applied: the stack's config already says 4 when the daemon died.
    const cutOff: PendingIntent = { intent: intent('web', up), count: 1, firstAt: at, attempts: 0, notBefore: null, applying: { from: 3, to: 4 } };
    store.pending.set('web', { running: cutOff, queued: null });
    store.targets.set('web', { name: 'web', current: 3, paused: false, cooldownUntil: { up: null, down: null } });
    const { engine, exec, events } = setup({ targets: [target('web')], values: { web: 4 }, store });
    await engine.start();
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: false }]);
    expect(exec.values.get('web')).toBe(4);
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 4, intents: 1 }]);
    expect(events()[0]?.reason).toContain('resumed after a stop mid-operation');
    expect(store.slots('web')).toEqual({ queued: null, running: null });
  });

  it('does not resume an operation cut off by a stop while the target is paused: skipped, and its value taken back out of the config', async () => {
    const store = new MemoryStore();
    const at = '2024-12-31T23:00:00.000Z';
    const cutOff: PendingIntent = { intent: intent('web', up), count: 1, firstAt: at, attempts: 0, notBefore: null, applying: { from: 3, to: 4 } };
    store.pending.set('web', { running: cutOff, queued: null });
    const { engine, exec, events } = setup({ targets: [target('web', { paused: true })], values: { web: 4 }, store });
    await engine.start();
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(exec.values.get('web')).toBe(3);
    expect(events()).toMatchObject([{ kind: 'skipped', skipReason: 'paused', from: 3 }]);
    expect(store.slots('web')).toEqual({ queued: null, running: null });
    expect(await engine.state('web')).toMatchObject({ current: 3 });
  });

  it('records the value being applied on the running slot before a real apply, and not for a preview', async () => {
    const { engine, exec, store } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    await engine.submit(intent('web', up));
    await exec.until(() => exec.held.length === 1);
    expect(store.slots('web').running?.applying).toEqual({ from: 3, to: 4 });
    exec.release();
    await engine.idle();
    expect(store.slots('web')).toEqual({ queued: null, running: null });

    await engine.submit(intent('web', down, { dryRun: true })); // down: the up cooldown is running
    await exec.until(() => exec.held.length === 1);
    expect(store.slots('web').running?.applying).toBeUndefined();
    exec.releaseAll();
    await engine.idle();
  });

  it('loads the last event and record of each target', async () => {
    const store = new MemoryStore();
    const last: ScalingEvent = {
      id: 'old', target: 'web', at: '2024-12-31T00:00:00.000Z', kind: 'changed', from: 2, to: 3, reason: 'x',
      source: 'api', intents: 1, durationMs: 5, dryRun: false,
    };
    store.events.push(last);
    store.targets.set('web', { name: 'web', current: 3, paused: false, cooldownUntil: { up: '2025-01-01T00:01:00.000Z', down: null } });
    const { engine } = setup({ targets: [target('web')], store });
    await engine.start();
    expect(await engine.state('web')).toMatchObject({
      name: 'web', stack: 'prod', configKeys: ['web:replicas'], min: 1, max: 100, current: 3, paused: false,
      cooldownUntil: { up: '2025-01-01T00:01:00.000Z', down: null }, pending: null, pendingCount: 0, running: false, lastEvent: last,
    });
    expect(await engine.state('nope')).toBeNull();
  });

  it('refuses intents before start', async () => {
    const { engine } = setup({ targets: [target('web')] });
    await expect(engine.submit(intent('web'))).rejects.toMatchObject({ code: 'PS_INTERNAL' });
  });
});

describe('engine: drain', () => {
  it('waits for the running operation, starts nothing more, and leaves queued intents in the store', async () => {
    const { engine, exec, store } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    await engine.submit(intent('web'));
    await exec.until(() => exec.held.length === 1);
    await engine.submit(intent('web', to(9)));

    let result: { finished: boolean } | undefined;
    const drained = engine.drain(60_000).then((r) => (result = r));
    expect(engine.isDraining()).toBe(true);
    await settle();
    expect(result).toBeUndefined();

    exec.release();
    await drained;
    expect(result).toEqual({ finished: true, stopped: true });
    expect(exec.applies).toHaveLength(1);
    expect(store.slots('web')).toMatchObject({ running: null, queued: { count: 1, intent: { adjustment: to(9) } } });
  });

  it('past its timeout (engine clock) cancels the running operation, records nothing, and keeps it running in the store', async () => {
    const { engine, exec, clock, store, events } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    await engine.submit(intent('web'));
    await exec.until(() => exec.held.length === 1);
    let result: { finished: boolean } | undefined;
    const drained = engine.drain(1000).then((r) => (result = r));
    clock.advance(999);
    await settle();
    expect(result).toBeUndefined();
    expect(exec.held).toHaveLength(1);
    clock.advance(1);
    await drained;
    expect(result).toEqual({ finished: false, stopped: true });
    expect(exec.held).toHaveLength(0);
    expect(events()).toEqual([]);
    expect(exec.values.get('web')).toBe(3);
    // The next start finds it running and finishes it.
    expect(store.slots('web')).toMatchObject({ running: { intent: { adjustment: up }, applying: { from: 3, to: 4 } } });
  });

  it('refuses new intents with PS_DRAINING', async () => {
    const { engine, store } = await started({ targets: [target('web')] });
    expect(await engine.drain(1000)).toEqual({ finished: true, stopped: true });
    await expect(engine.submit(intent('web'))).rejects.toMatchObject({ code: 'PS_DRAINING', status: 503 });
    expect(store.intents).toEqual([]);
  });

  it('does not run a retry whose backoff ends during the drain', async () => {
    const { engine, exec, clock, store } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.conflict('web', 1);
    await engine.submit(intent('web'));
    await engine.idle();
    expect(await engine.drain(10_000)).toEqual({ finished: true, stopped: true });
    clock.advance(5000);
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    expect(store.slots('web').queued).toMatchObject({ attempts: 1 });
  });
});

describe('engine: record', () => {
  it('appends an event that ends no operation and publishes it', async () => {
    const { engine, store, messages } = await started({ targets: [target('web')] });
    const ignored: ScalingEvent = {
      id: 'e1', target: 'web', at: '2025-01-01T00:00:00.000Z', kind: 'ignored', from: null, to: null,
      reason: 'alert HighCPU resolved', source: 'alertmanager', intents: 1, durationMs: 0, dryRun: false,
    };
    await engine.record(ignored);
    expect(store.events).toEqual([ignored]);
    expect(messages).toContainEqual({ type: 'event', event: ignored });
    expect((await engine.state('web'))?.lastEvent).toEqual(ignored);
  });
});

/** Table rows as [rule, row], so each test is named by its full rule (`$rule` would be cut short). */
function rules<T extends { rule: string }>(rows: readonly T[]): [string, T][] {
  return rows.map((row) => [row.rule, row]);
}
