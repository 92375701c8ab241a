import { describe, expect, it } from 'vitest';
import { PulumiProgramError, PulumiScaleError, StackNotFoundError, StoreUnavailableError } from '../../src/errors.js';
import type { Store } from '../../src/store/store.js';
import type { ScalingEvent, SignalKey, TargetRecord } from '../../src/types.js';
import { down, intent, settle, setup, signal, started, target, to, up } from '../support/engine.js';
import { MemoryStore } from '../support/memory-store.js';

describe('engine: commands', () => {
  it('stores the command before it resolves, then applies it', async () => {
    const { engine, store, exec, events } = await started({ targets: [target('web')], values: { web: 3 } });
    const i = intent('web');
    expect(await engine.command(i)).toEqual({ queued: 1 });
    expect(store.intents).toEqual([i]);
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: false }]);
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 4, intents: 1, source: 'alertmanager', intentId: i.id, commands: [i.id] }]);
    expect(store.commands.get('web') ?? []).toEqual([]);
    expect(store.running.get('web')).toBeUndefined();
  });

  it('refuses an unknown target with PS_TARGET_UNKNOWN', async () => {
    const { engine } = await started({ targets: [target('web')] });
    await expect(engine.command(intent('nope'))).rejects.toMatchObject({ code: 'PS_TARGET_UNKNOWN', status: 404 });
  });

  it('a store failure leaves nothing queued and runs nothing', async () => {
    const { engine, store, exec } = await started({ targets: [target('web')], values: { web: 3 } });
    store.failNext('addCommand');
    await expect(engine.command(intent('web'))).rejects.toBeInstanceOf(StoreUnavailableError);
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(await engine.state('web')).toMatchObject({ pendingCount: 0, commands: [] });
  });

  it('two by 2 commands add 4, in one operation when they wait together', async () => {
    const { engine, exec, events } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    await engine.command(intent('web', to(4), { source: 'api', bounds: 'reject' }));
    await exec.until(() => exec.held.length === 1);
    const a = intent('web', { type: 'by', by: 2 }, { source: 'api', bounds: 'reject' });
    const b = intent('web', { type: 'by', by: 2 }, { source: 'api', bounds: 'reject' });
    await engine.command(a);
    await engine.command(b);
    expect(await engine.state('web')).toMatchObject({ pendingCount: 2, commands: [a, b] });
    exec.releaseAll();
    await engine.idle();
    expect(exec.values.get('web')).toBe(8);
    expect(events()[1]).toMatchObject({ kind: 'changed', from: 4, to: 8, intents: 2, commands: [a.id, b.id] });
  });

  it('a storm of 1000 commands is never merged away: each is covered by an event', async () => {
    const { engine, exec, store } = await started({ targets: [target('web', { max: 5000 })], values: { web: 3 } });
    exec.holding = true;
    await engine.command(intent('web'));
    await exec.until(() => exec.held.length === 1);
    await Promise.all(Array.from({ length: 999 }, () => engine.command(intent('web'))));
    exec.releaseAll();
    await engine.idle();
    expect(exec.values.get('web')).toBe(1003);
    expect(store.events.reduce((n, e) => n + e.intents, 0)).toBe(1000);
    expect(exec.applies.length).toBeLessThanOrEqual(2);
  });

  it('a command runs during a cooldown (and starts its own)', async () => {
    const { engine, exec, store, events } = await started({ targets: [target('web', { cooldown: { up: 60_000, down: 300_000 } })], values: { web: 3 } });
    await engine.command(intent('web'));
    await engine.idle();
    await engine.command(intent('web'));
    await engine.idle();
    expect(exec.values.get('web')).toBe(5);
    expect(events().map((e) => e.kind)).toEqual(['changed', 'changed']);
    expect(store.targets.get('web')?.cooldownUntil.up).not.toBeNull();
  });

  it('a paused target records every command as skipped, and consumes it', async () => {
    const { engine, exec, events, store } = await started({ targets: [target('web', { paused: true })], values: { web: 3 } });
    await engine.command(intent('web'));
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(events()).toMatchObject([{ kind: 'skipped', skipReason: 'paused' }]);
    expect(store.commands.get('web') ?? []).toEqual([]);
  });
});

describe('engine: signals (level-triggered)', () => {
  it('one firing up signal and nothing else steps after every cooldown until max; its end stops it', async () => {
    const { engine, exec, clock, events } = await started({ targets: [target('web', { max: 4, cooldown: { up: 60_000, down: 0 } })], values: { web: 1 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    expect(exec.values.get('web')).toBe(2);
    for (let i = 0; i < 5; i++) {
      clock.advance(60_000);
      await engine.idle();
    }
    expect(exec.values.get('web')).toBe(4);
    expect(events().filter((e) => e.kind === 'changed').map((e) => e.to)).toEqual([2, 3, 4]);
    // At max nothing more is recorded: the signal's start was covered by the changes it made,
    // and evaluations that repeat a decision do not fill the history.
    expect(events().filter((e) => e.kind === 'skipped')).toEqual([]);
    await engine.signals({ upsert: [], end: [{ target: 'web', id: 'cpu' }], events: [] });
    expect(await engine.state('web')).toMatchObject({ signals: [] });
  });

  it('a re-sent alert refreshes its signal; it is not a new step', async () => {
    const { engine, exec } = await started({ targets: [target('web', { cooldown: { up: 60_000, down: 0 } })], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    await engine.signals({ upsert: [signal('web', 'cpu', 'up', { lastSeen: '2025-01-01T00:00:05.000Z' })], end: [], events: [] });
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    expect((await engine.state('web'))?.signals).toMatchObject([{ id: 'cpu', lastSeen: '2025-01-01T00:00:05.000Z' }]);
  });

  it('a skip is recorded when a signal starts, not at every evaluation', async () => {
    const { engine, clock, events } = await started({ targets: [target('web', { max: 3 })], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    for (let i = 0; i < 4; i++) {
      clock.advance(15_000);
      await engine.idle();
    }
    expect(events()).toMatchObject([{ kind: 'skipped', skipReason: 'at-max', signals: [{ id: 'cpu', direction: 'up' }] }]);
  });

  it('an Alertmanager signal ends by itself after its TTL', async () => {
    const { engine, clock, store } = await started({ targets: [target('web', { max: 3 })], values: { web: 3 } });
    const expiresAt = new Date(clock.now() + 30_000).toISOString();
    await engine.signals({ upsert: [signal('web', 'cpu', 'up', { expiresAt })], end: [], events: [] });
    await engine.idle();
    expect((await engine.state('web'))?.signals).toHaveLength(1);
    clock.advance(30_000);
    await engine.idle();
    expect((await engine.state('web'))?.signals).toEqual([]);
    expect(store.signals.get('web') ?? []).toEqual([]);
    // Said in the history, naming the signal ("why did it stop scaling?").
    expect(store.events.at(-1)).toMatchObject({ kind: 'ignored', target: 'web', evidence: { signal: 'cpu' } });
    expect(store.events.at(-1)?.reason).toContain('expired');
  });

  it('an API pause holds a signal, then ends by itself and the signal acts', async () => {
    const { engine, clock, exec } = await started({ targets: [target('web', { cooldown: { up: 60_000, down: 0 } })], values: { web: 3 } });
    const until = new Date(clock.now() + 3000).toISOString();
    await engine.pause('web', { until, direction: 'up', reason: 'deploy' });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(await engine.state('web')).toMatchObject({ paused: true, pause: { until, direction: 'up' } });
    clock.advance(3000);
    await engine.idle();
    expect(exec.values.get('web')).toBe(4);
    expect(await engine.state('web')).toMatchObject({ paused: false, pause: null });
  });

  it('a command behind a firing alert runs', async () => {
    const { engine, exec, events } = await started({ targets: [target('web', { cooldown: { up: 600_000, down: 600_000 } })], values: { web: 5 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    await engine.command(intent('web', to(2), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    expect(exec.values.get('web')).toBe(2);
    expect(events().filter((e) => e.kind === 'changed').map((e) => [e.source, e.to])).toEqual([
      ['alertmanager', 6],
      ['api', 2],
    ]);
  });

  it('serves the desired value of the last evaluation', async () => {
    const { engine, clock } = await started({ targets: [target('web', { cooldown: { up: 60_000, down: 0 } })], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    clock.advance(1000);
    await engine.signals({ upsert: [signal('web', 'mem', 'up', { lastSeen: '2025-01-01T00:00:01.000Z' })], end: [], events: [] });
    await engine.idle();
    expect((await engine.state('web'))?.desired).toMatchObject({ value: 5 });
  });
});

describe('engine: found in review, each a regression test', () => {
  it('engine.dryRun with a firing alert previews once, not at every evaluation', async () => {
    const { engine, exec, clock, events } = await started({ targets: [target('web')], values: { web: 3 }, dryRun: true });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    clock.advance(15_000);
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: true }]);
    expect(events().map((e) => e.kind)).toEqual(['previewed']);
  });

  it('an unset key with a paused target is read once, not in a loop', async () => {
    const { engine, exec, clock } = await started({ targets: [target('web', { paused: true })] });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    clock.advance(15_000);
    await engine.idle();
    expect(exec.calls.filter((c) => c.op === 'read').length).toBeLessThanOrEqual(2);
    expect(exec.applies).toEqual([]);
  });

  it('a pause set while an operation runs is kept when it ends', async () => {
    const { engine, exec, clock } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    await engine.command(intent('web'));
    await exec.until(() => exec.held.length === 1);
    const until = new Date(clock.now() + 60_000).toISOString();
    await engine.pause('web', { until, direction: 'both', reason: 'freeze' });
    exec.releaseAll();
    await engine.idle();
    expect(await engine.state('web')).toMatchObject({ current: 4, paused: true, pause: { until } });
  });

  it('a resumed relative change that meets a locked stack is finished at its value later, never applied twice', async () => {
    const store = new MemoryStore();
    const cut = intent('web', { type: 'by', by: 1 }, { source: 'api', bounds: 'reject' });
    store.commands.set('web', [cut]);
    store.running.set('web', { kind: 'commands', commandIds: [cut.id], dryRun: false, startedAt: '2024-12-31T23:00:00.000Z', applying: { from: 3, to: 4 } });
    const { engine, exec, clock } = setup({ targets: [target('web')], values: { web: 4 }, store });
    exec.conflict('web', 1);
    await engine.start();
    await engine.idle();
    expect(store.running.get('web')).toMatchObject({ applying: { from: 3, to: 4 } });
    clock.advance(1000);
    await engine.idle();
    expect(exec.values.get('web')).toBe(4);
    expect(exec.applies.map((a) => a.to)).toEqual([4, 4]);
    expect(store.running.get('web')).toBeUndefined();
  });

  it('a signal that starts while an operation runs still gets its skip recorded', async () => {
    const { engine, exec, events } = await started({ targets: [target('web', { max: 4, cooldown: { up: 600_000, down: 0 } })], values: { web: 3 } });
    exec.holding = true;
    await engine.command(intent('web'));
    await exec.until(() => exec.held.length === 1);
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    exec.releaseAll();
    await engine.idle();
    expect(events().map((e) => [e.kind, e.skipReason])).toEqual([
      ['changed', undefined],
      ['skipped', 'at-max'],
    ]);
  });

  it('a hold-off after an alert-driven failure does not hold an operator command', async () => {
    const { engine, exec } = await started({ targets: [target('web')], values: { web: 3 }, retry: { maxAttempts: 3, baseDelay: 1000, maxDelay: 60_000 } });
    exec.failApply('web', new PulumiProgramError('bad'));
    await engine.signals({ upsert: [signal('web', 'cpu', 'down')], end: [], events: [] });
    await engine.idle();
    await engine.command(intent('web', to(9), { source: 'api', bounds: 'reject' }));
    await engine.idle();
    // The command ran at once (the down alert, no longer held off, goes on from there).
    expect(exec.applies.map((a) => a.to).slice(0, 2)).toEqual([2, 9]);
  });
});

describe('engine: floods of alerts', () => {
  it('a paused target receiving one new alert per delivery records its skip once, not once per alert', async () => {
    const { engine, events } = await started({ targets: [target('web', { paused: true })], values: { web: 3 } });
    for (let i = 0; i < 50; i++) await engine.signals({ upsert: [signal('web', `fp-${i}`)], end: [], events: [] });
    await engine.idle();
    expect(events().map((e) => [e.kind, e.skipReason])).toEqual([['skipped', 'paused']]);
    expect((await engine.state('web'))?.signals).toHaveLength(50);
  });

  it('once something else is recorded, the same skip is worth recording again', async () => {
    const { engine, events } = await started({ targets: [target('web', { paused: true })], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'a')], end: [], events: [] });
    await engine.idle();
    const resolved: ScalingEvent = { id: 'resolved-a', target: 'web', at: new Date().toISOString(), kind: 'ignored', from: 3, to: null, reason: 'alert a resolved', source: 'alertmanager', intents: 0, durationMs: 0, dryRun: false };
    await engine.signals({ upsert: [], end: [{ target: 'web', id: 'a' }], events: [resolved] });
    await engine.signals({ upsert: [signal('web', 'b')], end: [], events: [] });
    await engine.idle();
    expect(events().map((e) => e.kind)).toEqual(['skipped', 'ignored', 'skipped']);
  });

  it('a signal found past its expiry by an evaluation is ended in the store then, not at the next periodic one', async () => {
    const { engine, clock, store } = await started({ targets: [target('web', { paused: true })], values: { web: 3 } });
    const old = signal('web', 'old', 'up', { expiresAt: new Date(clock.now() + 5000).toISOString() });
    await engine.signals({ upsert: [old], end: [], events: [] });
    await engine.idle();
    const ends: SignalKey[] = [];
    const write = store.applySignals.bind(store);
    store.applySignals = async (change) => {
      ends.push(...change.end);
      return write(change);
    };
    // Before the periodic evaluation (every 15 s here): a new delivery makes the evaluation.
    clock.advance(6000);
    await engine.signals({ upsert: [signal('web', 'new')], end: [], events: [] });
    await engine.idle();
    expect((store.signals.get('web') ?? []).map((s) => s.id)).toEqual(['new']);
    expect((await engine.state('web'))?.signals.map((s) => s.id)).toEqual(['new']);
    // The end names what expired, so that a store shared by replicas keeps a refresh stored since.
    expect(ends).toEqual([{ target: 'web', id: 'old', lastSeen: old.lastSeen }]);
  });

  it("an expiry's end that reaches memory after the alert was sent again leaves it, in memory as in the store", async () => {
    const { engine, clock, store } = await started({ targets: [target('web', { paused: true })], values: { web: 3 } });
    const first = signal('web', 'cpu', 'up', { lastSeen: clock.iso(0) });
    await engine.signals({ upsert: [first], end: [], events: [] });
    const again = signal('web', 'cpu', 'up', { lastSeen: clock.iso(1_000) });
    await engine.signals({ upsert: [again], end: [], events: [] });
    await engine.signals({ upsert: [], end: [{ target: 'web', id: 'cpu', lastSeen: first.lastSeen }], events: [] });
    await engine.idle();
    expect((await engine.state('web'))?.signals.map((s) => s.lastSeen)).toEqual([again.lastSeen]);
    expect((store.signals.get('web') ?? []).map((s) => s.lastSeen)).toEqual([again.lastSeen]);
  });
});

/** Makes the store hold its signal writes until the returned function is called, then take them in call order. */
function holdSignalWrites(store: Pick<Store, 'applySignals'>): () => void {
  const write = store.applySignals.bind(store);
  let release = (): void => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  store.applySignals = async (change) => {
    await held;
    return write(change);
  };
  return release;
}

describe('engine: deliveries written together', () => {
  it('a stale re-delivery of an alert whose end is still being written does not bring it back', async () => {
    const { engine, store } = await started({ targets: [target('web', { paused: true })], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu', 'up', { since: '2025-01-01T00:00:00.000Z', lastSeen: '2025-01-01T00:00:00.000Z' })], end: [], events: [] });
    // The store holds both writes and then takes them in call order, as one group commit does.
    const release = holdSignalWrites(store);
    // The OK, then SNS's retry of the older ALARM while the OK is still being written.
    const ok = engine.signals({ upsert: [], end: [{ target: 'web', id: 'cpu', at: '2025-01-01T00:01:00.000Z' }], events: [] });
    await new Promise<void>((resolve) => setImmediate(resolve));
    const retry = engine.signals({ upsert: [signal('web', 'cpu', 'up', { since: '2025-01-01T00:00:00.000Z', lastSeen: '2025-01-01T00:00:30.000Z' })], end: [], events: [] });
    await new Promise<void>((resolve) => setImmediate(resolve));
    release();
    await Promise.all([ok, retry]);
    await engine.idle();
    expect((await engine.state('web'))?.signals).toEqual([]);
    expect(store.signals.get('web') ?? []).toEqual([]);
  });

  it('an older delivery of a signal arriving with a newer one still being written changes nothing', async () => {
    const { engine, store } = await started({ targets: [target('web', { paused: true })], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu', 'up', { lastSeen: '2025-01-01T00:00:00.000Z' })], end: [], events: [] });
    const release = holdSignalWrites(store);
    const newer = engine.signals({ upsert: [signal('web', 'cpu', 'up', { lastSeen: '2025-01-01T00:00:20.000Z', value: 95 })], end: [], events: [] });
    await new Promise<void>((resolve) => setImmediate(resolve));
    const older = engine.signals({ upsert: [signal('web', 'cpu', 'up', { lastSeen: '2025-01-01T00:00:10.000Z', value: 80 })], end: [], events: [] });
    await new Promise<void>((resolve) => setImmediate(resolve));
    release();
    await Promise.all([newer, older]);
    await engine.idle();
    expect((await engine.state('web'))?.signals).toMatchObject([{ id: 'cpu', value: 95, lastSeen: '2025-01-01T00:00:20.000Z' }]);
  });
});

describe('engine: large deliveries', () => {
  it('a notification of 1,000 alerts is one evaluation: one skip recorded, listing at most 10 signals', async () => {
    const { engine, events } = await started({ targets: [target('web', { paused: true })], values: { web: 3 } });
    const many = Array.from({ length: 1000 }, (_, i) => signal('web', `fp-${i}`));
    await engine.signals({ upsert: many, end: [], events: [] });
    await engine.idle();
    expect(events()).toHaveLength(1);
    expect(events()[0]).toMatchObject({ kind: 'skipped', skipReason: 'paused' });
    expect(events()[0]?.signals).toHaveLength(10);
    expect((await engine.state('web'))?.signals).toHaveLength(1000);
  });
});

describe('engine: start-up reads', () => {
  it('targets that own keys of one stack in one folder are read with one read of its config', async () => {
    const shared = { workDir: '/srv/infra/app', stack: 'prod', stackKey: 'file:///srv/state#app/prod' };
    const many = Array.from({ length: 100 }, (_, i) => target(`t${i}`, { ...shared, configKey: `app:k${i}` }));
    const values = Object.fromEntries(many.map((t, i) => [t.name, i]));
    const { engine, exec } = setup({ targets: [...many, target('other')], values: { ...values, other: 7 } });
    await engine.start();
    await engine.idle();
    expect(exec.readManyCalls).toBe(2);
    expect(await engine.state('t42')).toMatchObject({ current: 42 });
    expect(await engine.state('other')).toMatchObject({ current: 7 });
  });
});

describe('engine: gauges', () => {
  it('after a delivery the target gauge carries the evaluation\'s desired value, also when its last signal ended', async () => {
    const { engine, messages } = await started({ targets: [target('web', { cooldown: { up: 600_000, down: 0 } })], values: { web: 3 } });
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    await engine.signals({ upsert: [], end: [{ target: 'web', id: 'cpu' }], events: [] });
    const last = messages.filter((m) => m.type === 'target').at(-1);
    expect(last).toMatchObject({ type: 'target', current: 4, desired: 4, signals: { up: 0, down: 0 } });
  });
});

describe('engine: previews under engine.dryRun', () => {
  it('two queued `by 1` at 3 are one preview of 3 -> 4, not 3 -> 5', async () => {
    const { engine, exec, events } = await started({ targets: [target('web')], values: { web: 3 }, dryRun: true });
    exec.holding = true;
    await engine.command(intent('web', to(7), { source: 'api', bounds: 'reject' }));
    await exec.until(() => exec.held.length === 1);
    await engine.command(intent('web', { type: 'by', by: 1 }, { source: 'api', bounds: 'reject' }));
    await engine.command(intent('web', { type: 'by', by: 1 }, { source: 'api', bounds: 'reject' }));
    exec.releaseAll();
    await engine.idle();
    expect(events().map((e) => [e.kind, e.from, e.to, e.intents])).toEqual([
      ['previewed', 3, 7, 1],
      ['previewed', 3, 4, 2],
    ]);
  });
});

describe('engine: what the live stream hears', () => {
  it('a queued command and a started operation each say the target changed, while they wait and run', async () => {
    const { engine, exec, messages } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    const said = () => messages.filter((m) => m.type === 'target').length;
    const before = said();
    await engine.command(intent('web', to(4), { source: 'api', bounds: 'reject' }));
    // Said at once, with one queued (before its operation has taken it).
    expect(said()).toBeGreaterThan(before);
    await exec.until(() => exec.held.length === 1);
    // Said again once the operation started, and the state then says it runs.
    const atStart = said();
    expect(atStart).toBeGreaterThan(before + 1);
    expect(await engine.state('web')).toMatchObject({ running: true });
    const queued = said();
    await engine.command(intent('web', to(5), { source: 'api', bounds: 'reject' }));
    expect(said()).toBeGreaterThan(queued);
    expect(await engine.state('web')).toMatchObject({ running: true, pendingCount: 1 });
    exec.releaseAll();
    await engine.idle();
  });
});

describe('engine: stale deliveries', () => {
  it('an ALARM that SNS retries after its OK was taken starts nothing', async () => {
    const { engine, exec } = await started({ targets: [target('web', { cooldown: { up: 600_000, down: 0 } })], values: { web: 3 } });
    const alarm = signal('web', 'arn:alarm', 'up', { source: 'cloudwatch', since: '2025-01-01T00:00:00.000Z' });
    await engine.signals({ upsert: [], end: [{ target: 'web', id: 'arn:alarm', at: '2025-01-01T00:05:00.000Z' }], events: [] });
    await engine.signals({ upsert: [alarm], end: [], events: [] });
    await engine.idle();
    expect(exec.applies).toEqual([]);
    // A new ALARM of the same alarm, after the OK, is a new signal.
    await engine.signals({ upsert: [{ ...alarm, since: '2025-01-01T00:06:00.000Z' }], end: [], events: [] });
    await engine.idle();
    expect(exec.values.get('web')).toBe(4);
  });
});

describe('engine: ordering and concurrency', () => {
  it('runs different stacks in parallel, never more than `concurrency` at once', async () => {
    const { engine, exec } = await started({ targets: [target('a'), target('b'), target('c')], concurrency: 2 });
    exec.holding = true;
    for (const name of ['a', 'b', 'c']) await engine.command(intent(name));
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
    await engine.command(intent('web'));
    await engine.command(intent('worker'));
    await exec.until(() => exec.held.length === 1);
    await settle();
    expect(exec.calls.filter((c) => c.target === 'worker' && c.op === 'apply')).toEqual([]);
    expect(await engine.state('worker')).toMatchObject({ running: true, pendingCount: 1 });
    exec.releaseAll();
    await engine.idle();
    expect(exec.sameStackOverlaps).toBe(0);
    expect(events().map((e) => e.target)).toEqual(['web', 'worker']);
  });

  it('decides from the present: the value is read when the operation starts', async () => {
    const { engine, exec, events } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.values.set('web', 10); // changed by hand after the start-up read
    await engine.command(intent('web'));
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
    await engine.command(intent('web'));
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    expect(store.targets.get('web')?.retry).toMatchObject({ attempts: 1 });
    clock.advance(999);
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    clock.advance(1);
    await engine.idle();
    expect(exec.applies).toHaveLength(2);
    clock.advance(1500);
    await engine.idle();
    expect(exec.applies).toHaveLength(3);
    expect(messages.filter((m) => m.type === 'retry')).toEqual([
      { type: 'retry', target: 'web', attempt: 1, delayMs: 1000 },
      { type: 'retry', target: 'web', attempt: 2, delayMs: 1500 },
    ]);
    expect(events()).toMatchObject([{ kind: 'failed', errorCode: 'PS_PULUMI_CONFLICT', intents: 1 }]);
    expect(events()[0]?.reason).toContain('gave up after 3 attempts');
    expect(store.commands.get('web') ?? []).toEqual([]);
  });

  it('a storm against a locked stack runs pulumi once per backoff, not at every arrival', async () => {
    const { engine, exec, clock } = await started({ targets: [target('web', { max: 500 })], values: { web: 3 }, retry: { maxAttempts: 3, baseDelay: 1000, maxDelay: 1500 } });
    exec.conflict('web', 2);
    await engine.command(intent('web'));
    await engine.idle();
    for (let n = 0; n < 50; n++) await engine.command(intent('web'));
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    clock.advance(1000);
    await engine.idle();
    expect(exec.applies).toHaveLength(2);
    clock.advance(1500);
    await engine.idle();
    expect(exec.applies).toHaveLength(3);
    expect(exec.values.get('web')).toBe(54);
  });

  it.each(rules([
    { rule: 'a program failure records failed with its code', error: new PulumiProgramError('resource web failed'), code: 'PS_PULUMI_PROGRAM', reason: 'resource web failed' },
    { rule: 'an unexpected error records failed as PS_INTERNAL', error: new Error('boom'), code: 'PS_INTERNAL', reason: 'boom' },
  ]))('%s and leaves current unchanged', async (_rule, { error, code, reason }) => {
    const { engine, exec, store, events } = await started({ targets: [target('web', { cooldown: { up: 60_000, down: 0 } })], values: { web: 3 } });
    exec.failApply('web', error);
    await engine.command(intent('web'));
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    expect(events()).toMatchObject([{ kind: 'failed', errorCode: code, reason, from: 3, to: 4 }]);
    expect(store.targets.get('web')).toMatchObject({ current: 3, cooldownUntil: { up: null, down: null } });
    expect(await engine.state('web')).toMatchObject({ current: 3, pending: null, error: { code } });
  });

  it('a failing signal-driven operation holds off for the longest backoff instead of failing at every evaluation', async () => {
    const { engine, exec, clock, events } = await started({
      targets: [target('web', { cooldown: { up: 60_000, down: 0 } })],
      values: { web: 3 },
      retry: { maxAttempts: 3, baseDelay: 1000, maxDelay: 1500 },
    });
    exec.failApply('web', new PulumiProgramError('bad'), new PulumiProgramError('bad'));
    await engine.signals({ upsert: [signal('web', 'cpu')], end: [], events: [] });
    await engine.idle();
    clock.advance(1000);
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    clock.advance(500);
    await engine.idle();
    expect(exec.applies).toHaveLength(2);
    clock.advance(1500);
    await engine.idle();
    expect(exec.values.get('web')).toBe(4);
    expect(events().map((e) => e.kind)).toEqual(['failed', 'failed', 'changed']);
  });

  it('an operation past engine.operationTimeout is cancelled, its value restored, and recorded failed with PS_PULUMI_TIMEOUT', async () => {
    const { engine, exec, clock, store, events } = await started({ targets: [target('web')], values: { web: 3 }, operationTimeout: 60_000 });
    exec.holding = true;
    await engine.command(intent('web'));
    await exec.until(() => exec.held.length === 1);
    clock.advance(59_999);
    await settle();
    expect(exec.held).toHaveLength(1);
    clock.advance(1);
    await engine.idle();
    expect(exec.held).toHaveLength(0);
    expect(exec.values.get('web')).toBe(3);
    expect(events()).toMatchObject([{ kind: 'failed', errorCode: 'PS_PULUMI_TIMEOUT', from: 3, to: 4 }]);
    expect(store.running.get('web')).toBeUndefined();
    expect(await engine.state('web')).toMatchObject({ current: 3, running: false, error: { code: 'PS_PULUMI_TIMEOUT' } });
  });

  it('when the end of an operation cannot be stored, memory keeps it running and the write is retried until it lands', async () => {
    const { engine, clock, store, events } = await started({ targets: [target('web')], values: { web: 3 } });
    store.failNext('finishOperation', 2);
    const i = intent('web');
    await engine.command(i);
    await settle();
    await settle();
    expect(store.running.get('web')).toBeDefined();
    expect(await engine.state('web')).toMatchObject({ current: 3, running: true, pendingCount: 0 });
    expect(store.commands.get('web')).toEqual([i]);
    expect(events()).toEqual([]);
    clock.advance(1000);
    await settle();
    clock.advance(2000);
    await engine.idle();
    expect(store.running.get('web')).toBeUndefined();
    expect(store.events).toMatchObject([{ kind: 'changed', from: 3, to: 4 }]);
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 4 }]);
    expect(await engine.state('web')).toMatchObject({ current: 4, running: false, pendingCount: 0 });
  });

  it('a stack that does not exist shows in the state and the history at start, and nothing runs', async () => {
    const { engine, exec, events } = setup({ targets: [target('web')] });
    exec.failRead('web', new StackNotFoundError('web: stack prod does not exist'), new StackNotFoundError('web: stack prod does not exist'));
    await engine.start();
    await engine.idle();
    expect(await engine.state('web')).toMatchObject({ current: null, error: { code: 'PS_STACK_NOT_FOUND' } });
    expect(events()).toMatchObject([{ kind: 'failed', errorCode: 'PS_STACK_NOT_FOUND', source: 'engine' }]);
    await engine.command(intent('web'));
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(events()[1]).toMatchObject({ kind: 'failed', errorCode: 'PS_STACK_NOT_FOUND' });
  });

  it('publishes start and end of every operation, and the event before the end', async () => {
    const { engine, messages } = await started({ targets: [target('web')], values: { web: 3 } });
    await engine.command(intent('web'));
    await engine.idle();
    const kinds = messages.filter((m) => m.type !== 'target' && m.type !== 'intent').map((m) => m.type);
    expect(kinds).toEqual(['operation-start', 'operation-end', 'event']);
  });
});

describe('engine: start', () => {
  it('reads every target in the background; a failed read is not fatal', async () => {
    const { engine, exec } = setup({ targets: [target('a'), target('b')], values: { a: 3 } });
    exec.failRead('b', new PulumiScaleError('PS_PULUMI_CONFIG', 'b:replicas is not a number'));
    await engine.start();
    await engine.idle();
    expect(await engine.state('a')).toMatchObject({ current: 3 });
    expect(await engine.state('b')).toMatchObject({ current: null, error: { code: 'PS_PULUMI_CONFIG' } });
  });

  it('finishes a relative change cut off mid-apply at the value it was applying, never applying it twice, and consumes its command', async () => {
    const store = new MemoryStore();
    const cut = intent('web', up);
    store.commands.set('web', [cut]);
    store.running.set('web', { kind: 'commands', commandIds: [cut.id], dryRun: false, startedAt: '2024-12-31T23:00:00.000Z', applying: { from: 3, to: 4 } });
    store.targets.set('web', record('web', 3));
    const { engine, exec, events } = setup({ targets: [target('web')], values: { web: 4 }, store });
    await engine.start();
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 4, dryRun: false }]);
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 4, commands: [cut.id] }]);
    expect(events()[0]?.reason).toContain('resumed after a stop mid-operation');
    expect(store.running.get('web')).toBeUndefined();
    expect(store.commands.get('web') ?? []).toEqual([]);
  });

  it('drops a running slot that had not begun to apply; its commands stay queued and run', async () => {
    const store = new MemoryStore();
    const cmd = intent('web', to(6));
    store.commands.set('web', [cmd]);
    store.running.set('web', { kind: 'commands', commandIds: [cmd.id], dryRun: false, startedAt: '2024-12-31T23:00:00.000Z', applying: null });
    const { engine, exec } = setup({ targets: [target('web')], values: { web: 3 }, store });
    await engine.start();
    await engine.idle();
    expect(exec.values.get('web')).toBe(6);
    expect(store.running.get('web')).toBeUndefined();
  });

  it('does not resume an operation cut off by a stop while the target is paused: skipped, and its value taken back out of the config', async () => {
    const store = new MemoryStore();
    const cut = intent('web', up);
    store.commands.set('web', [cut]);
    store.running.set('web', { kind: 'commands', commandIds: [cut.id], dryRun: false, startedAt: '2024-12-31T23:00:00.000Z', applying: { from: 3, to: 4 } });
    const { engine, exec, events } = setup({ targets: [target('web', { paused: true })], values: { web: 4 }, store });
    await engine.start();
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(exec.values.get('web')).toBe(3);
    expect(events()).toMatchObject([{ kind: 'skipped', skipReason: 'paused', from: 3 }]);
    expect(store.running.get('web')).toBeUndefined();
    expect(await engine.state('web')).toMatchObject({ current: 3 });
  });

  it('a cut-off operation whose up had succeeded is recorded as changed on a paused target, not reverted', async () => {
    const store = new MemoryStore();
    const cut = intent('web', up);
    store.commands.set('web', [cut]);
    store.running.set('web', { kind: 'commands', commandIds: [cut.id], dryRun: false, startedAt: '2024-12-31T23:00:00.000Z', applying: { from: 3, to: 4 } });
    const { engine, exec, events } = setup({ targets: [target('web', { paused: true })], values: { web: 4 }, store });
    exec.deployed.set('web', 4);
    await engine.start();
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(exec.values.get('web')).toBe(4);
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 4, commands: [cut.id] }]);
    expect(await engine.state('web')).toMatchObject({ current: 4 });
  });

  it('records the value being applied on the running slot before a real apply, and not for a preview', async () => {
    const { engine, exec, store } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    await engine.command(intent('web', up));
    await exec.until(() => exec.held.length === 1);
    expect(store.running.get('web')?.applying).toEqual({ from: 3, to: 4 });
    exec.release();
    await engine.idle();
    expect(store.running.get('web')).toBeUndefined();
    await engine.command(intent('web', down, { dryRun: true }));
    await exec.until(() => exec.held.length === 1);
    expect(store.running.get('web')?.applying).toBeNull();
    exec.releaseAll();
    await engine.idle();
  });

  it('loads signals, the last event and the record of each target', async () => {
    const store = new MemoryStore();
    store.targets.set('web', { ...record('web', 3), cooldownUntil: { up: '2025-01-01T00:01:00.000Z', down: null } });
    store.signals.set('web', [signal('web', 'cpu')]);
    const { engine } = setup({ targets: [target('web', { max: 3 })], values: { web: 3 }, store });
    await engine.start();
    await engine.idle();
    expect(await engine.state('web')).toMatchObject({ current: 3, signals: [{ id: 'cpu' }], cooldownUntil: { up: '2025-01-01T00:01:00.000Z' } });
  });

  it('refuses commands before start', async () => {
    const { engine } = setup({ targets: [target('web')] });
    await expect(engine.command(intent('web'))).rejects.toMatchObject({ code: 'PS_INTERNAL' });
  });
});

describe('engine: drain', () => {
  it('waits for the running operation, starts nothing more, and leaves queued commands in the store', async () => {
    const { engine, exec, store } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    await engine.command(intent('web'));
    await exec.until(() => exec.held.length === 1);
    const queued = intent('web', to(9), { dryRun: true });
    await engine.command(queued);
    let result: { finished: boolean } | undefined;
    const drained = engine.drain(60_000).then((r) => (result = r));
    expect(engine.isDraining()).toBe(true);
    await settle();
    expect(result).toBeUndefined();
    exec.release();
    await drained;
    expect(result).toEqual({ finished: true, stopped: true });
    expect(exec.applies).toHaveLength(1);
    expect(store.commands.get('web')).toEqual([queued]);
  });

  it('past its timeout (engine clock) cancels the running operation, records nothing, and keeps it running in the store', async () => {
    const { engine, exec, clock, store, events } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.holding = true;
    await engine.command(intent('web'));
    await exec.until(() => exec.held.length === 1);
    let result: { finished: boolean } | undefined;
    const drained = engine.drain(1000).then((r) => (result = r));
    clock.advance(999);
    await settle();
    expect(result).toBeUndefined();
    clock.advance(1);
    await drained;
    expect(result).toEqual({ finished: false, stopped: true });
    expect(exec.held).toHaveLength(0);
    expect(events()).toEqual([]);
    expect(exec.values.get('web')).toBe(3);
    expect(store.running.get('web')).toMatchObject({ applying: { from: 3, to: 4 } });
  });

  it('refuses new commands and signals with PS_DRAINING', async () => {
    const { engine, store } = await started({ targets: [target('web')] });
    expect(await engine.drain(1000)).toEqual({ finished: true, stopped: true });
    await expect(engine.command(intent('web'))).rejects.toMatchObject({ code: 'PS_DRAINING', status: 503 });
    await expect(engine.signals({ upsert: [signal('web', 'x')], end: [], events: [] })).rejects.toMatchObject({ code: 'PS_DRAINING' });
    expect(store.intents).toEqual([]);
  });

  it('does not run a retry whose backoff ends during the drain', async () => {
    const { engine, exec, clock, store } = await started({ targets: [target('web')], values: { web: 3 } });
    exec.conflict('web', 1);
    await engine.command(intent('web'));
    await engine.idle();
    expect(await engine.drain(10_000)).toEqual({ finished: true, stopped: true });
    clock.advance(5000);
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    expect(store.commands.get('web')).toHaveLength(1);
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

function record(name: string, current: number | null): TargetRecord {
  return { name, current, paused: false, cooldownUntil: { up: null, down: null }, pause: null, retry: null };
}

/** Table rows as [rule, row], so each test is named by its full rule (`$rule` would be cut short). */
function rules<T extends { rule: string }>(rows: readonly T[]): [string, T][] {
  return rows.map((row) => [row.rule, row]);
}
