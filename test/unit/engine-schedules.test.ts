/**
 * Scheduled scaling in the engine, on a fake clock: windows replace the bounds while they are
 * in effect (evaluated from the clock, so a start inside a window applies it at once), and
 * points queue a command once per fire time, whatever restarts happen, or record a fire found
 * past its deadline as missed.
 */
import { describe, expect, it } from 'vitest';
import type { Schedule } from '../../src/schedule/index.js';
import { setup, started, target } from '../support/engine.js';
import { MemoryStore } from '../support/memory-store.js';

const T0 = Date.parse('2026-11-30T07:59:00.000Z'); // a Monday, 07:59 UTC
const MINUTE = 60_000;

const business: Schedule = { kind: 'window', name: 'business', cron: '0 8 * * 1-5', end: '0 20 * * 1-5', timezone: 'UTC', min: 6, priority: 0 };
const night: Schedule = { kind: 'window', name: 'night', cron: '0 20 * * *', duration: 12 * 60 * MINUTE, timezone: 'UTC', min: 0, max: 0, priority: 0 };
const batch: Schedule = { kind: 'point', name: 'batch', cron: '*/5 * * * *', timezone: 'UTC', to: 7, startingDeadline: 5 * MINUTE };

describe('engine: schedule windows', () => {
  it('a window raises the value to its min when it starts, and the state says which bounds are in effect', async () => {
    const { engine, exec, clock, events } = await started({ targets: [target('web', { min: 2, max: 10, schedules: [business] })], values: { web: 3 }, start: T0 });
    expect(await engine.state('web')).toMatchObject({ bounds: { min: 2, max: 10, source: 'config' }, schedules: [{ name: 'business', active: false }] });
    clock.advance(MINUTE);
    await engine.idle();
    expect(exec.values.get('web')).toBe(6);
    expect(events()).toMatchObject([{ kind: 'changed', from: 3, to: 6, source: 'schedule' }]);
    expect(await engine.state('web')).toMatchObject({ bounds: { min: 6, max: 10, source: 'schedule:business' }, schedules: [{ name: 'business', active: true }] });
  });

  it('a max: 0 window holds 0, and its end brings the value back up to the target\'s own min', async () => {
    const start = Date.parse('2026-11-30T19:59:00.000Z');
    const { engine, exec, clock } = await started({ targets: [target('web', { min: 2, max: 10, schedules: [night] })], values: { web: 4 }, start });
    clock.advance(MINUTE);
    await engine.idle();
    expect(exec.values.get('web')).toBe(0);
    clock.advance(12 * 60 * MINUTE);
    await engine.idle();
    expect(exec.values.get('web')).toBe(2);
    expect(await engine.state('web')).toMatchObject({ bounds: { source: 'config' } });
  });

  it('a daemon started inside a window applies its bounds at once, without waiting for the next start', async () => {
    const { exec, engine } = await started({
      targets: [target('web', { min: 2, max: 10, schedules: [business] })],
      values: { web: 3 },
      start: Date.parse('2026-11-30T10:00:00.000Z'),
    });
    await engine.idle();
    expect(exec.values.get('web')).toBe(6);
  });

  it('inside a window, a manual to below its min is out of bounds', async () => {
    const { engine, exec, events } = await started({
      targets: [target('web', { min: 2, max: 10, schedules: [business] })],
      values: { web: 6 },
      start: Date.parse('2026-11-30T10:00:00.000Z'),
    });
    await engine.command({ id: 'c1', target: 'web', adjustment: { type: 'to', to: 3 }, dryRun: false, source: 'api', reason: 'manual', receivedAt: '2026-11-30T10:00:00.000Z', bounds: 'reject', evidence: {} });
    await engine.idle();
    expect(exec.values.get('web')).toBe(6);
    expect(events().at(-1)).toMatchObject({ kind: 'skipped', skipReason: 'out-of-bounds' });
  });
});

describe('engine: schedule points', () => {
  it('a point sets the value at each fire, once per fire time (a fire less than its deadline before the first start included)', async () => {
    const { engine, exec, clock, store } = await started({ targets: [target('web', { min: 1, max: 10, schedules: [batch] })], values: { web: 3 }, start: T0 });
    // 07:55 was 4 minutes before the start, within the 5-minute deadline: it fired at start.
    expect(exec.values.get('web')).toBe(7);
    exec.values.set('web', 3);
    clock.advance(MINUTE); // 08:00, a fire
    await engine.idle();
    expect(exec.values.get('web')).toBe(7);
    exec.values.set('web', 3);
    clock.advance(5 * MINUTE); // 08:05, the next
    await engine.idle();
    expect(exec.values.get('web')).toBe(7);
    expect([...store.fires.values()].map((f) => [f.at, f.outcome])).toEqual([
      ['2026-11-30T07:55:00.000Z', 'fired'],
      ['2026-11-30T08:00:00.000Z', 'fired'],
      ['2026-11-30T08:05:00.000Z', 'fired'],
    ]);
  });

  it('a restart fires a point missed less than its deadline ago once, and never twice', async () => {
    const store = new MemoryStore();
    await store.claimFire({ target: 'web', schedule: 'batch', at: '2026-11-30T07:55:00.000Z', outcome: 'fired' }, { command: null, event: null });
    const at = Date.parse('2026-11-30T08:02:00.000Z'); // 08:00 was missed while down, 2 min ago
    const first = setup({ targets: [target('web', { min: 1, max: 10, schedules: [batch] })], values: { web: 3 }, store, start: at });
    await first.engine.start();
    await first.engine.idle();
    expect(first.exec.values.get('web')).toBe(7);
    const again = setup({ targets: [target('web', { min: 1, max: 10, schedules: [batch] })], values: { web: 3 }, store, start: at + 1000 });
    await again.engine.start();
    await again.engine.idle();
    expect(again.exec.applies).toEqual([]);
  });

  it('fires found past their deadline are recorded as missed, once, not applied', async () => {
    const store = new MemoryStore();
    await store.claimFire({ target: 'web', schedule: 'batch', at: '2026-11-30T07:55:00.000Z', outcome: 'fired' }, { command: null, event: null });
    const at = Date.parse('2026-11-30T08:32:00.000Z'); // 08:00 … 08:25 missed, 08:30 in time
    const { engine, exec, events } = setup({ targets: [target('web', { min: 1, max: 10, schedules: [batch] })], values: { web: 3 }, store, start: at });
    await engine.start();
    await engine.idle();
    // 08:00 … 08:25 are past the deadline: one missed event counts them; 08:30 fires.
    expect(events().filter((e) => e.kind === 'missed')).toMatchObject([{ reason: expect.stringContaining('6 fires up to 2026-11-30T08:25:00.000Z') as unknown }]);
    expect(exec.applies.map((a) => a.to)).toEqual([7]);
  });

  it('a catch-up fires a point once, its latest fire within the deadline, not once per fire slept through', async () => {
    const every10s: Schedule = { kind: 'point', name: 'tick', cron: '*/10 * * * * *', timezone: 'UTC', to: 5, startingDeadline: 5 * MINUTE };
    const { engine, exec, events, store } = await started({ targets: [target('web', { min: 1, max: 10, schedules: [every10s] })], values: { web: 3 }, start: T0 });
    await engine.idle();
    expect(exec.applies.map((a) => a.to)).toEqual([5]);
    expect(events().filter((e) => e.kind === 'missed')).toMatchObject([{ reason: expect.stringContaining('superseded by the fire at 2026-11-30T07:59:00.000Z') as unknown }]);
    expect([...store.fires.values()].filter((f) => f.outcome === 'fired').map((f) => f.at)).toEqual(['2026-11-30T07:59:00.000Z']);
  });

  it('after a week down on a per-second point, the fire on time still fires and the count says at least', async () => {
    const everySecond: Schedule = { kind: 'point', name: 'sec', cron: '* * * * * *', timezone: 'UTC', to: 8, startingDeadline: 5_000 };
    const store = new MemoryStore();
    await store.claimFire({ target: 'web', schedule: 'sec', at: new Date(T0 - 7 * 24 * 60 * MINUTE).toISOString(), outcome: 'fired' }, { command: null, event: null });
    const { engine, exec, events } = setup({ targets: [target('web', { min: 1, max: 10, schedules: [everySecond] })], values: { web: 3 }, store, start: T0 });
    await engine.start();
    await engine.idle();
    expect(exec.values.get('web')).toBe(8);
    expect(events().filter((e) => e.kind === 'missed')).toMatchObject([{ reason: expect.stringContaining('at least') as unknown }]);
  });
});

describe('engine: schedules, found in review, each a regression test', () => {
  it('a failing move into a window\'s bounds holds off for the longest backoff instead of failing in a loop', async () => {
    const { engine, exec, clock } = await started({
      targets: [target('web', { min: 2, max: 10, schedules: [business] })],
      values: { web: 3 },
      start: T0,
      retry: { maxAttempts: 3, baseDelay: 1000, maxDelay: 60_000 },
    });
    exec.failApply('web', new Error('boom'), new Error('boom'));
    clock.advance(MINUTE);
    await engine.idle();
    expect(exec.applies).toHaveLength(1);
    clock.advance(60_000);
    await engine.idle();
    expect(exec.applies).toHaveLength(2);
  });

  it('a dry-run daemon previews a window\'s move once, not at every evaluation', async () => {
    const { engine, exec, clock, events } = await started({ targets: [target('web', { min: 2, max: 10, schedules: [business] })], values: { web: 3 }, start: T0, dryRun: true });
    clock.advance(MINUTE);
    await engine.idle();
    clock.advance(15_000);
    await engine.idle();
    expect(exec.applies).toEqual([{ op: 'apply', target: 'web', to: 6, dryRun: true }]);
    expect(events().map((e) => e.kind)).toEqual(['previewed']);
  });

  it('a pause across a window start holds the move, says so once, and lets it happen when it ends', async () => {
    const { engine, exec, clock, events } = await started({ targets: [target('web', { min: 2, max: 10, schedules: [business] })], values: { web: 3 }, start: T0 });
    await engine.pause('web', { until: new Date(T0 + 5 * MINUTE).toISOString(), direction: 'up', reason: 'freeze' });
    clock.advance(MINUTE);
    await engine.idle();
    expect(exec.applies).toEqual([]);
    expect(events()).toMatchObject([{ kind: 'skipped', skipReason: 'paused', source: 'schedule' }]);
    clock.advance(4 * MINUTE);
    await engine.idle();
    expect(exec.values.get('web')).toBe(6);
  });

  it('a point fire the store refused is tried again soon, within its deadline', async () => {
    const store = new MemoryStore();
    const { engine, exec, clock } = setup({ targets: [target('web', { min: 1, max: 10, schedules: [batch] })], values: { web: 3 }, store, start: Date.parse('2026-11-30T07:57:00.000Z') });
    await engine.start();
    await engine.idle();
    exec.values.set('web', 3); // 07:55 fired at start (2 minutes late): set by hand since
    store.failNext('claimFire');
    clock.advance(3 * MINUTE); // 08:00: refused
    await engine.idle();
    expect(exec.values.get('web')).toBe(3);
    clock.advance(2_000);
    await engine.idle();
    expect(exec.values.get('web')).toBe(7);
  });

  it('a point command queued before a stop and past its deadline at the next start is recorded as missed, not run', async () => {
    const store = new MemoryStore();
    await store.claimFire(
      { target: 'web', schedule: 'batch', at: '2026-11-30T08:00:00.000Z', outcome: 'fired' },
      {
        command: {
          id: 'point-1',
          target: 'web',
          adjustment: { type: 'to', to: 7 },
          dryRun: false,
          source: 'schedule',
          reason: 'schedule batch (fire at 2026-11-30T08:00:00.000Z)',
          receivedAt: '2026-11-30T08:00:00.000Z',
          bounds: 'clamp',
          evidence: { schedule: { name: 'batch', fireAt: '2026-11-30T08:00:00.000Z' } },
        },
        event: null,
      },
    );
    const { engine, exec, events } = setup({ targets: [target('web', { min: 1, max: 10, schedules: [batch] })], values: { web: 3 }, store, start: Date.parse('2026-11-30T08:07:30.000Z') });
    await engine.start();
    await engine.idle();
    expect(events().find((e) => e.commands?.includes('point-1'))).toMatchObject({ kind: 'missed' });
    // 08:05 was on time at the start (2.5 minutes late): that one fired.
    expect(exec.applies.map((a) => a.to)).toEqual([7]);
    expect(store.commands.get('web') ?? []).toEqual([]);
  });
});
