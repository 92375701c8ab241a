/**
 * `GET /api/v1/targets/:name/timeline`: the coming changes of a target's schedules, in UTC and
 * in the schedule's zone, with the bounds in effect after each, and a DST flag.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { makeTestApp, TEST_AUTH, type TestApp } from '../support/http.js';

const AUTH = { authorization: `Bearer ${TEST_AUTH.apiToken}` };
// Saturday 2026-03-28 12:00 UTC: Berlin springs forward on Sunday at 02:00 local.
const NOW = Date.parse('2026-03-28T12:00:00.000Z');

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

async function app(): Promise<TestApp> {
  return makeTestApp({
    now: () => NOW,
    config: {
      targets: {
        web: {
          workDir: './infra/web',
          stack: 'prod',
          configKey: 'web:replicas',
          min: 2,
          max: 40,
          schedules: [
            { name: 'night', cron: '0 20 * * *', duration: '12h', timezone: 'Europe/Berlin', min: 0, max: 0 },
            { name: 'batch', cron: '30 2 * * *', timezone: 'Europe/Berlin', to: 10 },
          ],
        },
      },
    },
  });
}

describe('GET /api/v1/targets/:name/timeline', () => {
  it('lists window starts and ends and point fires in time order, with the bounds after each', async () => {
    t = await app();
    const res = await t.app.inject({ url: '/api/v1/targets/web/timeline?hours=24', headers: AUTH });
    expect(res.statusCode).toBe(200);
    const entries = res.json<{ at: string; local: string; schedule: string; change: string; dstShifted: boolean; bounds: { min: number; max: number; source: string } }[]>();
    expect(entries.map((e) => [e.schedule, e.change, e.at])).toEqual([
      ['night', 'window-start', '2026-03-28T19:00:00.000Z'],
      ['batch', 'point', '2026-03-29T01:00:00.000Z'],
      ['night', 'window-end', '2026-03-29T07:00:00.000Z'],
    ]);
    expect(entries[0]?.bounds).toEqual({ min: 0, max: 0, source: 'schedule:night' });
    expect(entries[2]?.bounds).toEqual({ min: 2, max: 40, source: 'config' });
    // 02:30 does not exist on the wall clock that night: the fire runs at the gap's end, 03:00.
    expect(entries[1]).toMatchObject({ local: '2026-03-29T03:00:00+02:00', dstShifted: true });
  });

  it.each([
    ['hours=0', 400],
    ['hours=abc', 400],
    ['hours=48', 200],
  ])('?%s answers %i', async (query, status) => {
    t = await app();
    expect((await t.app.inject({ url: `/api/v1/targets/web/timeline?${query}`, headers: AUTH })).statusCode).toBe(status);
  });

  it('an unknown target is 404', async () => {
    t = await app();
    expect((await t.app.inject({ url: '/api/v1/targets/nope/timeline', headers: AUTH })).statusCode).toBe(404);
  });
});
