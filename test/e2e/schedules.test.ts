/**
 * End to end, scheduled scaling (issue 8): points set the value once at each fire, windows
 * replace the bounds while they are active (a value outside them is moved in at once, also at a
 * start inside a window), and the timeline lists what comes. The built daemon as a child
 * process, the real Pulumi CLI on a file backend; assertions on the stack (config and outputs)
 * and on the API's state, events and timeline, never on log lines.
 *
 * Crons have six fields (seconds first) and are mostly computed from the present, so that a
 * window starts a few seconds after its daemon does and the suite takes seconds, not hours.
 * Nothing sleeps: every wait polls the API until a condition holds, with generous timeouts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScalingEvent } from '../../src/types.js';
import { settledAt, startDaemonProcess, stateWhere, targetEvents, targetState, until, type DaemonProcess } from '../support/daemon.js';
import { configGet, createPulumiSandbox, deployValue, deployedStack, stackOutputs, type FixtureStack, type PulumiSandbox } from '../support/pulumi.js';

let sandbox: PulumiSandbox;

beforeAll(async () => {
  sandbox = await createPulumiSandbox();
});
afterAll(async () => {
  await sandbox?.cleanup();
});

type Stack = FixtureStack;

/** A deployed stack of the `simple` project (project `web`), of its own. */
function project(name: string, value: number): Promise<Stack> {
  return deployedStack(sandbox, name, value);
}

/** What an operator does with the CLI: set the value and deploy it. */
function setByHand(stack: Stack, value: number): Promise<void> {
  return deployValue(sandbox, stack, value);
}

/**
 * Starts a daemon with one target `web` on `stack` (min 1, max 10, no cooldowns, unless
 * `target` says otherwise) and the given schedules. Its store is the stack's own, so a daemon
 * started again on the same stack finds what the previous one recorded.
 */
function start(stack: Stack, schedules: Record<string, unknown>[], target: Record<string, unknown> = {}): Promise<DaemonProcess> {
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    engine: { evaluationInterval: '1s', drainTimeout: '1m' },
    store: { path: `./${stack.name}.db` },
    pulumi: { backendUrl: sandbox.backendUrl, cliDir: sandbox.cliDir, env: sandbox.pulumiEnv },
    log: { level: 'info' },
    targets: {
      web: { workDir: stack.dir, stack: stack.name, configKey: 'web:replicas', min: 1, max: 10, cooldown: { up: '0s', down: '0s' }, schedules, ...target },
    },
  };
  return startDaemonProcess(sandbox.root, JSON.stringify(config, null, 2), sandbox.env);
}

/** Runs `body` against a daemon started as {@link start} does, then stops it (exit code 0). */
async function withDaemon(stack: Stack, schedules: Record<string, unknown>[], body: (d: DaemonProcess) => Promise<void>, target?: Record<string, unknown>): Promise<void> {
  const d = await start(stack, schedules, target);
  try {
    await body(d);
  } finally {
    expect(await d.stop('SIGTERM')).toBe(0);
  }
}

/** The `changed` events, oldest first, as `[from, to, source]`. */
async function changes(d: DaemonProcess): Promise<[number | null, number | null, string][]> {
  return (await targetEvents(d)).reverse().filter((e) => e.kind === 'changed').map((e) => [e.from, e.to, e.source]);
}

/** The value in the stack's config and in its deployed output. */
async function deployed(stack: Stack): Promise<{ config: string | null; output: unknown }> {
  return { config: await configGet(sandbox, stack.dir, stack.name, 'web:replicas'), output: (await stackOutputs(sandbox, stack.name, stack.dir)).replicas };
}

/** The next whole second at least `leadMs` from now (epoch ms). */
function secondsAhead(leadMs: number): number {
  return Math.ceil((Date.now() + leadMs) / 1000) * 1000;
}

/** A six-field cron that fires once a minute, at the second of `ms` (UTC). */
function everyMinuteAt(ms: number): string {
  return `${new Date(ms).getUTCSeconds()} * * * * *`;
}

/** A six-field cron that fires once a day, at the second, minute and hour of `ms` (UTC). */
function dailyAt(ms: number): string {
  const at = new Date(ms);
  return `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;
}

const DAY = 86_400_000;

/** The fire times (epoch ms) the events of point `name` were recorded for, in recorded order. */
function fireTimes(all: readonly ScalingEvent[], name: string): number[] {
  return all.flatMap((e) => {
    const fireAt = e.source === 'schedule' && e.evidence?.schedule?.name === name ? e.evidence.schedule.fireAt : undefined;
    return fireAt === undefined ? [] : [Date.parse(fireAt)];
  });
}

describe('a point schedule', () => {
  it('sets the stack value at each fire, puts a manual change back at the next one, and acts once per fire time across a restart', async () => {
    const stack = await project('point', 2);
    // A catch-up fires once (the latest fire within startingDeadline); the ones it supersedes
    // are counted in one `missed` event.
    const schedules = [{ name: 'reset', cron: '*/5 * * * * *', to: 7, startingDeadline: '10s' }];
    await withDaemon(stack, schedules, async (d) => {
      await settledAt(d, 7);
      expect(await deployed(stack)).toEqual({ config: '7', output: 7 });
      expect((await targetState(d)).schedules).toMatchObject([{ name: 'reset', active: false, next: expect.stringMatching(/:[0-5][05]\.000Z$/) as unknown }]);

      // Changed by hand between fires: the next fire sets it back.
      const manual = await d.request<{ intent: { id: string } }>('POST', '/api/v1/targets/web/scale', { to: 3, reason: 'e2e: by hand' });
      expect(manual.status).toBe(202);
      const back = await until(async () => {
        const all = (await targetEvents(d)).reverse();
        const byHand = all.findIndex((e) => e.kind === 'changed' && e.commands?.includes(manual.body.intent.id));
        return byHand === -1 ? undefined : all.slice(byHand + 1).find((e) => e.kind === 'changed' && e.source === 'schedule');
      }, 'the next fire to undo the manual change');
      expect(back).toMatchObject({ from: 3, to: 7, source: 'schedule', evidence: { schedule: { name: 'reset' } } });
      await settledAt(d, 7);
      expect(await deployed(stack)).toEqual({ config: '7', output: 7 });
    });

    // Started again on the same store: the fires recorded before are not acted on again.
    const restarted = Date.now();
    await withDaemon(stack, schedules, async (d) => {
      const fires = await until(async () => {
        const all = fireTimes((await targetEvents(d)).reverse(), 'reset');
        return all.some((at) => at > restarted) ? all : undefined;
      }, 'a fire after the restart');
      // One event per fire time, none twice, in order; each 5 s after the last, except where a
      // catch-up superseded fires (their `missed` event names the latest it skipped).
      expect(new Set(fires).size).toBe(fires.length);
      expect(fires.slice(1).every((at, i) => at > (fires[i] as number) && (at - (fires[i] as number)) % 5_000 === 0)).toBe(true);
      const kinds = (await targetEvents(d)).reverse().filter((e) => e.source === 'schedule').map((e) => e.kind);
      expect(kinds.every((k) => ['changed', 'skipped', 'missed'].includes(k))).toBe(true);
      expect((await changes(d)).filter(([, , source]) => source === 'schedule')).toEqual([[2, 7, 'schedule'], [3, 7, 'schedule']]);
      await settledAt(d, 7);
      expect(await deployed(stack)).toEqual({ config: '7', output: 7 });
    });
  });
});

describe('a window', () => {
  it('raises a value below its min to it when it starts, and its end leaves the value to the target\'s own bounds', async () => {
    const stack = await project('raise', 2);
    const startAt = secondsAhead(6_000);
    await withDaemon(stack, [{ name: 'busy', cron: everyMinuteAt(startAt), duration: '8s', min: 5 }], async (d) => {
      const before = await settledAt(d, 2);
      // The daemon must be up before the window starts for this test to mean anything.
      expect(Date.now()).toBeLessThan(startAt);
      expect(before).toMatchObject({ bounds: { min: 1, max: 10, source: 'config' }, schedules: [{ name: 'busy', active: false, next: new Date(startAt).toISOString() }] });

      const during = await stateWhere(d, (s) => s.current === 5 && s.bounds.source === 'schedule:busy', 'the window to raise web to 5');
      expect(during).toMatchObject({ bounds: { min: 5, max: 10, source: 'schedule:busy' }, schedules: [{ name: 'busy', active: true }] });
      expect(await deployed(stack)).toEqual({ config: '5', output: 5 });
      const [raised, ...others] = (await targetEvents(d)).reverse().filter((e) => e.kind === 'changed');
      expect(others).toEqual([]);
      expect(raised).toMatchObject({ from: 2, to: 5, source: 'schedule', reason: expect.stringContaining('schedule:busy') as unknown });
      expect(Date.parse(raised?.at ?? '')).toBeGreaterThanOrEqual(startAt);

      // Its end: the target's own bounds again, and 5 is inside them, so the value stays.
      const after = await stateWhere(d, (s) => s.bounds.source === 'config', 'the window to end');
      expect(Date.now()).toBeGreaterThanOrEqual(startAt + 8_000);
      expect(after).toMatchObject({ current: 5, bounds: { min: 1, max: 10, source: 'config' }, schedules: [{ name: 'busy', active: false }] });
      // Its next start is the same second of a later minute.
      const next = Date.parse(after.schedules[0]?.next ?? '');
      expect([next > startAt, (next - startAt) % 60_000]).toEqual([true, 0]);
      await settledAt(d, 5);
      expect(await changes(d)).toEqual([[2, 5, 'schedule']]);
      expect(await deployed(stack)).toEqual({ config: '5', output: 5 });
    });
  });

  it('with max: 0 holds 0 while active, and its end brings the value back up to the target\'s own min', async () => {
    const stack = await project('night', 3);
    const startAt = secondsAhead(4_000);
    const endAt = startAt + 8_000;
    await withDaemon(stack, [{ name: 'night', cron: everyMinuteAt(startAt), duration: '8s', min: 0, max: 0 }], async (d) => {
      const held = await stateWhere(d, (s) => s.current === 0 && s.bounds.source === 'schedule:night', 'the window to take web to 0');
      expect(held).toMatchObject({ bounds: { min: 0, max: 0, source: 'schedule:night' }, schedules: [{ name: 'night', active: true }] });
      expect(await deployed(stack)).toEqual({ config: '0', output: 0 });

      const back = await stateWhere(d, (s) => s.current === 1 && s.bounds.source === 'config' && !s.running && s.pendingCount === 0, 'the window end to bring web back to 1');
      expect(back.bounds).toEqual({ min: 1, max: 10, source: 'config' });
      expect(await deployed(stack)).toEqual({ config: '1', output: 1 });
      const changed = (await targetEvents(d)).reverse().filter((e) => e.kind === 'changed');
      // Into the window's bounds is the schedule's doing; back into the target's own, the engine's.
      expect(changed.map((e) => [e.from, e.to, e.source])).toEqual([[3, 0, 'schedule'], [0, 1, 'engine']]);
      expect(changed[0]?.reason).toContain('schedule:night');
      expect(Date.parse(changed[1]?.at ?? '')).toBeGreaterThanOrEqual(endAt);
    });
  });

  it('applies its bounds at once when the daemon is restarted inside it, without waiting for the next start', async () => {
    const stack = await project('restart', 2);
    // Started a minute ago and lasting an hour: active throughout the test; its next start is a
    // day away, so a raise seen now comes from the clock, not from a start.
    const startedAt = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const schedules = [{ name: 'day', cron: dailyAt(startedAt), duration: '1h', min: 5 }];
    const inWindow = { bounds: { min: 5, max: 10, source: 'schedule:day' }, schedules: [{ name: 'day', active: true, next: new Date(startedAt + DAY).toISOString() }] };
    await withDaemon(stack, schedules, async (d) => {
      expect(await settledAt(d, 5)).toMatchObject(inWindow);
      // A manual value below the window's min is refused while it is active.
      const refused = await d.request<{ error: { code: string; message: string } }>('POST', '/api/v1/targets/web/scale', { to: 3 });
      expect(refused).toMatchObject({ status: 422, body: { error: { code: 'PS_OUT_OF_BOUNDS', message: expect.stringContaining('schedule:day') as unknown } } });
    });

    // Lowered by hand below the window's min while the daemon is down.
    await setByHand(stack, 2);
    expect(await deployed(stack)).toEqual({ config: '2', output: 2 });

    await withDaemon(stack, schedules, async (d) => {
      // The store still says 5 until the start-up read: wait for the second raise itself.
      await until(async () => ((await changes(d)).length >= 2 ? true : undefined), 'the restarted daemon to raise web again');
      expect(await settledAt(d, 5)).toMatchObject(inWindow);
      expect(await changes(d)).toEqual([[2, 5, 'schedule'], [2, 5, 'schedule']]);
      expect(await deployed(stack)).toEqual({ config: '5', output: 5 });
    });
  });
});

/** A timeline entry as `GET /api/v1/targets/:name/timeline` serves it. */
interface Entry {
  at: string;
  local: string;
  timezone: string;
  schedule: string;
  change: 'window-start' | 'window-end' | 'point';
  min?: number;
  max?: number;
  to?: number;
  dstShifted: boolean;
  bounds: { min: number; max: number; source: string };
}

describe('the timeline', () => {
  it('lists the coming point fires and window starts and ends, in UTC and in each schedule\'s zone, with the bounds after each', async () => {
    const stack = await project('timeline', 6);
    const schedules = [
      { name: 'business', cron: '0 8 * * *', end: '0 20 * * *', timezone: 'Europe/Berlin', min: 6, max: 40 },
      { name: 'batch', cron: '30 1 * * *', timezone: 'Asia/Kolkata', to: 10 },
    ];
    await withDaemon(
      stack,
      schedules,
      async (d) => {
        const asked = Date.now();
        const res = await d.request<Entry[]>('GET', '/api/v1/targets/web/timeline?hours=48');
        expect(res.status).toBe(200);
        const entries = res.body;
        const times = entries.map((e) => Date.parse(e.at));
        expect(times).toEqual([...times].sort((a, b) => a - b));
        expect(times[0]).toBeGreaterThan(asked);
        expect(times.at(-1)).toBeLessThanOrEqual(Date.now() + 48 * 3_600_000);
        for (const e of entries) {
          expect(e.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
          expect(e.local).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
          // The same instant, written in the schedule's zone.
          expect(Date.parse(e.local)).toBe(Date.parse(e.at));
          expect(e.timezone).toBe(e.schedule === 'batch' ? 'Asia/Kolkata' : 'Europe/Berlin');
          expect(typeof e.dstShifted).toBe('boolean');
        }

        const points = entries.filter((e) => e.change === 'point');
        expect(points.length).toBeGreaterThanOrEqual(1);
        for (const p of points) {
          expect(p).toMatchObject({ schedule: 'batch', to: 10, bounds: { min: 1, max: 50, source: 'config' } });
          expect(p.local).toMatch(/T01:30:00\+05:30$/);
        }
        const starts = entries.filter((e) => e.change === 'window-start');
        const ends = entries.filter((e) => e.change === 'window-end');
        expect(starts.length).toBeGreaterThanOrEqual(1);
        expect(ends.length).toBeGreaterThanOrEqual(1);
        for (const s of starts) {
          expect(s).toMatchObject({ schedule: 'business', min: 6, max: 40, bounds: { min: 6, max: 40, source: 'schedule:business' } });
          expect(s.local).toMatch(/T08:00:00\+0[12]:00$/);
        }
        for (const e of ends) {
          expect(e).toMatchObject({ schedule: 'business', bounds: { min: 1, max: 50, source: 'config' } });
          expect(e.local).toMatch(/T20:00:00\+0[12]:00$/);
        }
        // Starts and ends alternate.
        const business = entries.filter((e) => e.schedule === 'business').map((e) => e.change);
        for (let i = 1; i < business.length; i++) expect(business[i]).not.toBe(business[i - 1]);

        // The state's next start and fire are the timeline's first.
        expect((await targetState(d)).schedules).toEqual([
          { name: 'business', active: ends[0] !== undefined && (starts[0] === undefined || ends[0].at < starts[0].at), next: starts[0]?.at },
          { name: 'batch', active: false, next: points[0]?.at },
        ]);
      },
      { max: 50 },
    );
  });
});
