import { describe, expect, it } from 'vitest';
import {
  boundsAt,
  fireOutcome,
  firesBetween,
  nextChange,
  nextFire,
  scheduleStates,
  timeline,
  windowAt,
  type PointSchedule,
  type Schedule,
  type WindowSchedule,
} from '../../src/schedule/index.js';

// Fixed instants only: every function takes its clock as a parameter. 2026-03-02 is a Monday;
// Europe/Berlin is on CET (+01:00) then, so 08:00 local is 07:00Z.
const t = (iso: string): number => Date.parse(iso);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const MONDAY_10_BERLIN = t('2026-03-02T09:00:00Z');

function win(over: Partial<WindowSchedule> = {}): WindowSchedule {
  return { kind: 'window', name: 'business-hours', cron: '0 8 * * 1-5', end: '0 20 * * 1-5', timezone: 'Europe/Berlin', min: 6, max: 40, priority: 0, ...over };
}
function point(over: Partial<PointSchedule> = {}): PointSchedule {
  return { kind: 'point', name: 'batch', cron: '30 1 * * *', timezone: 'UTC', to: 10, startingDeadline: 300_000, ...over };
}
/** The example. */
const EXAMPLE: Schedule[] = [
  win(),
  { kind: 'window', name: 'night', cron: '0 20 * * *', duration: 12 * 3_600_000, timezone: 'Europe/Berlin', min: 0, max: 0, priority: 0 },
  point(),
];

/** The next `n` fires after `from`. */
function fires(s: Schedule, from: string, n = 2): (string | null)[] {
  const out: (string | null)[] = [];
  let at: number | null = t(from);
  for (let i = 0; i < n && at !== null; i += 1) out.push(iso((at = nextFire(s, at))));
  return out;
}

describe('schedule: cron in time zones across daylight saving', () => {
  it.each<[string, string, string, string, string[]]>([
    ['Berlin spring: 02:30 falls in the gap and fires at its end, 03:00 CEST', '30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z', ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']],
    ['Berlin autumn: 02:30 occurs twice and fires once, at the first', '30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']],
    ['New York spring: 02:30 fires at 03:00 EDT', '30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z']],
    ['New York autumn: 01:30 fires once, in EDT', '30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']],
    ['UTC has no gap', '30 2 * * *', 'UTC', '2026-03-28T12:00:00Z', ['2026-03-29T02:30:00.000Z', '2026-03-30T02:30:00.000Z']],
    ['UTC has no repeated hour', '30 2 * * *', 'UTC', '2026-10-24T12:00:00Z', ['2026-10-25T02:30:00.000Z', '2026-10-26T02:30:00.000Z']],
    ['Asia/Kolkata (+05:30, no DST) on the Berlin spring weekend', '30 2 * * *', 'Asia/Kolkata', '2026-03-28T12:00:00Z', ['2026-03-28T21:00:00.000Z', '2026-03-29T21:00:00.000Z']],
    ['Asia/Kolkata on the Berlin autumn weekend', '30 2 * * *', 'Asia/Kolkata', '2026-10-24T12:00:00Z', ['2026-10-24T21:00:00.000Z', '2026-10-25T21:00:00.000Z']],
    ['a list of fixed times is fixed-time too', '30 2,14 * * *', 'Europe/Berlin', '2026-03-29T00:00:00Z', ['2026-03-29T01:00:00.000Z', '2026-03-29T12:30:00.000Z']],
    ['six fields put seconds first', '10 30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', ['2026-10-25T00:30:10.000Z', '2026-10-26T01:30:10.000Z']],
    ['an hourly cron follows real time in spring (no 02:15 to fire)', '15 * * * *', 'Europe/Berlin', '2026-03-29T00:00:00Z', ['2026-03-29T00:15:00.000Z', '2026-03-29T01:15:00.000Z']],
    ['an hourly cron follows real time in autumn (both 02:15s)', '15 * * * *', 'Europe/Berlin', '2026-10-25T00:00:00Z', ['2026-10-25T00:15:00.000Z', '2026-10-25T01:15:00.000Z']],
  ])('%s', (_rule, cron, timezone, from, expected) => {
    expect(fires(point({ cron, timezone }), from)).toEqual(expected);
  });

  // The whole local day of each transition, so a second fire would show.
  it.each<[string, string, string, string, string]>([
    ['30 2 * * *', 'Europe/Berlin', '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z', '2026-03-29T01:00:00.000Z'],
    ['30 2 * * *', 'Europe/Berlin', '2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z', '2026-10-25T00:30:00.000Z'],
    ['30 2 * * *', 'America/New_York', '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z', '2026-03-08T07:00:00.000Z'],
    ['30 1 * * *', 'America/New_York', '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z', '2026-11-01T05:30:00.000Z'],
    ['30 2 * * *', 'UTC', '2026-03-29T00:00:00Z', '2026-03-30T00:00:00Z', '2026-03-29T02:30:00.000Z'],
    ['30 2 * * *', 'Asia/Kolkata', '2026-10-24T18:30:00Z', '2026-10-25T18:30:00Z', '2026-10-24T21:00:00.000Z'],
  ])('"%s" fires exactly once on the local day of a transition in %s (from %s)', (cron, timezone, from, to, once) => {
    expect(firesBetween(point({ cron, timezone }), t(from), t(to)).map(iso)).toEqual([once]);
  });

  it.each<[string, string, string[]]>([
    ['a day-of-month and a day-of-week both restricted must both match (node-cron)', '0 0 1 * 1', ['2026-06-01T00:00:00.000Z', '2027-02-01T00:00:00.000Z']],
    ['an inverted range wraps around the field (node-cron)', '0 23-0 * * *', ['2026-01-01T23:00:00.000Z', '2026-01-02T00:00:00.000Z']],
    ['nicknames, names and ? read as node-cron reads them', '0 0 ? * saturday', ['2026-01-03T00:00:00.000Z', '2026-01-10T00:00:00.000Z']],
    ['L is the last day of the month', '0 0 L * *', ['2026-01-31T00:00:00.000Z', '2026-02-28T00:00:00.000Z']],
  ])('%s', (_rule, cron, expected) => {
    expect(fires(point({ cron }), '2026-01-01T12:00:00Z')).toEqual(expected);
  });
});

describe('schedule: windows are read from the clock', () => {
  it.each<[string, WindowSchedule, string, { active: boolean; start: string | null; end: string | null; next: string | null }]>([
    ['a daemon started at 10:00 on a weekday is in business hours', win(), '2026-03-02T09:00:00Z',
      { active: true, start: '2026-03-02T07:00:00.000Z', end: '2026-03-02T19:00:00.000Z', next: '2026-03-03T07:00:00.000Z' }],
    ['the start is inclusive', win(), '2026-03-02T07:00:00Z',
      { active: true, start: '2026-03-02T07:00:00.000Z', end: '2026-03-02T19:00:00.000Z', next: '2026-03-03T07:00:00.000Z' }],
    ['the end is exclusive', win(), '2026-03-02T19:00:00Z', { active: false, start: null, end: null, next: '2026-03-03T07:00:00.000Z' }],
    ['Saturday is outside a weekday window', win(), '2026-03-07T09:00:00Z', { active: false, start: null, end: null, next: '2026-03-09T07:00:00.000Z' }],
    ['an end cron earlier in the day ends the next morning', win({ cron: '0 22 * * *', end: '0 6 * * *' }), '2026-03-03T01:00:00Z',
      { active: true, start: '2026-03-02T21:00:00.000Z', end: '2026-03-03T05:00:00.000Z', next: '2026-03-03T21:00:00.000Z' }],
    ['a duration is real time: 20:00 CET + 12h ends at 09:00 CEST', win({ cron: '0 20 * * *', end: undefined, duration: 12 * 3_600_000 }), '2026-03-29T06:30:00Z',
      { active: true, start: '2026-03-28T19:00:00.000Z', end: '2026-03-29T07:00:00.000Z', next: '2026-03-29T18:00:00.000Z' }],
    ['starts faster than the window lasts: the latest start governs', win({ cron: '0 * * * *', end: undefined, duration: 2 * 3_600_000 }), '2026-03-02T09:30:00Z',
      { active: true, start: '2026-03-02T09:00:00.000Z', end: '2026-03-02T11:00:00.000Z', next: '2026-03-02T10:00:00.000Z' }],
    ['a window starting in the spring gap starts at its end', win({ cron: '30 2 * * *', end: undefined, duration: 3_600_000 }), '2026-03-29T01:30:00Z',
      { active: true, start: '2026-03-29T01:00:00.000Z', end: '2026-03-29T02:00:00.000Z', next: '2026-03-30T00:30:00.000Z' }],
    ['a window starting in the repeated hour does not start again in its second pass', win({ cron: '30 2 * * *', end: undefined, duration: 1_800_000 }), '2026-10-25T01:40:00Z',
      { active: false, start: null, end: null, next: '2026-10-26T01:30:00.000Z' }],
  ])('%s', (_rule, s, now, expected) => {
    const state = windowAt(s, t(now));
    expect({ active: state.active, start: iso(state.start), end: iso(state.end), next: iso(state.next) }).toEqual(expected);
  });
});

describe('schedule: bounds in effect', () => {
  const target = (schedules: Schedule[]) => ({ min: 2, max: 40, schedules });
  const always = (over: Partial<WindowSchedule>): WindowSchedule => win({ cron: '0 * * * *', end: undefined, duration: 3_600_000, min: undefined, max: undefined, ...over });
  const never = always({ cron: '0 8 * * 1-5', duration: 60_000 }); // inactive at 10:00

  it.each<[string, Schedule[], { min: number; max: number; source: string }]>([
    ["no active window: the target's own", [never, point()], { min: 2, max: 40, source: 'config' }],
    ['an active window replaces both', [win()], { min: 6, max: 40, source: 'schedule:business-hours' }],
    ["a window may go below the target's min (max: 0 at night)", [always({ name: 'night', min: 0, max: 0 })], { min: 0, max: 0, source: 'schedule:night' }],
    ["a window with only min keeps the target's max", [always({ min: 10 })], { min: 10, max: 40, source: 'schedule:business-hours' }],
    ["a window with only max keeps the target's min", [always({ max: 5 })], { min: 2, max: 5, source: 'schedule:business-hours' }],
    ["a min above the target's max wins on both", [always({ min: 50 })], { min: 50, max: 50, source: 'schedule:business-hours' }],
    ["a max below the target's min wins on both", [always({ max: 0 })], { min: 0, max: 0, source: 'schedule:business-hours' }],
    ['a higher priority wins, even with smaller bounds', [always({ name: 'a', min: 10, max: 20 }), always({ name: 'b', min: 1, max: 3, priority: 1 })], { min: 1, max: 3, source: 'schedule:b' }],
    ['equal priority: the largest min and the largest max, both named', [always({ name: 'a', min: 10, max: 20 }), always({ name: 'b', min: 4, max: 30 })], { min: 10, max: 30, source: 'schedule:a+b' }],
    ['equal priority, crossing sides: the larger wins on both', [always({ name: 'a', min: 10 }), always({ name: 'b', max: 5 })], { min: 10, max: 10, source: 'schedule:a+b' }],
    ['an inactive higher-priority window changes nothing', [always({ name: 'a', min: 10 }), { ...never, name: 'b', priority: 9, min: 1 }], { min: 10, max: 40, source: 'schedule:a' }],
  ])('%s', (_rule, schedules, expected) => {
    expect(boundsAt(target(schedules), MONDAY_10_BERLIN)).toEqual(expected);
  });
});

describe('schedule: points and missed fires', () => {
  it('lists fires in (from, to], oldest first, at most limit', () => {
    const every5 = point({ cron: '*/5 * * * *' });
    expect(firesBetween(every5, t('2026-03-02T10:00:00Z'), t('2026-03-02T10:15:00Z')).map(iso)).toEqual([
      '2026-03-02T10:05:00.000Z',
      '2026-03-02T10:10:00.000Z',
      '2026-03-02T10:15:00.000Z',
    ]);
    expect(firesBetween(every5, t('2026-03-02T10:00:00Z'), t('2026-03-02T11:00:00Z'), 2).map(iso)).toEqual(['2026-03-02T10:05:00.000Z', '2026-03-02T10:10:00.000Z']);
  });

  it.each<[string, string, string, [string, 'fire' | 'missed'][]]>([
    ['a fire missed by less than startingDeadline fires once at start', '2026-03-02T01:00:00Z', '2026-03-02T01:33:00Z', [['2026-03-02T01:30:00.000Z', 'fire']]],
    ['a fire missed by the deadline or more is missed', '2026-03-02T01:00:00Z', '2026-03-02T01:35:00Z', [['2026-03-02T01:30:00.000Z', 'missed']]],
    ['days down: each fire judged on its own', '2026-02-27T12:00:00Z', '2026-03-02T01:31:00Z', [
      ['2026-02-28T01:30:00.000Z', 'missed'],
      ['2026-03-01T01:30:00.000Z', 'missed'],
      ['2026-03-02T01:30:00.000Z', 'fire'],
    ]],
    ['nothing due between fires', '2026-03-02T01:30:00Z', '2026-03-02T12:00:00Z', []],
  ])('%s', (_rule, downSince, startedAt, expected) => {
    const batch = point();
    const now = t(startedAt);
    expect(firesBetween(batch, t(downSince), now).map((at) => [iso(at), fireOutcome(batch, at, now)])).toEqual(expected);
  });
});

describe('schedule: state for the API', () => {
  it('says which schedules are active and when each next starts or fires', () => {
    expect(scheduleStates(EXAMPLE, MONDAY_10_BERLIN)).toEqual([
      { name: 'business-hours', active: true, next: '2026-03-03T07:00:00.000Z' },
      { name: 'night', active: false, next: '2026-03-02T19:00:00.000Z' },
      { name: 'batch', active: false, next: '2026-03-03T01:30:00.000Z' },
    ]);
  });

  it('wakes the engine at the next change, a window end included', () => {
    expect(iso(nextChange(EXAMPLE, MONDAY_10_BERLIN))).toBe('2026-03-02T19:00:00.000Z');
    expect(iso(nextChange([win({ cron: '0 9 * * *', end: '0 21 * * *' })], MONDAY_10_BERLIN))).toBe('2026-03-02T20:00:00.000Z');
    expect(nextChange([], MONDAY_10_BERLIN)).toBeNull();
  });
});

describe('schedule: timeline', () => {
  it("lists the example's coming changes in UTC and local time, ends before starts", () => {
    expect(timeline(EXAMPLE, MONDAY_10_BERLIN, 24)).toEqual([
      { at: '2026-03-02T19:00:00.000Z', local: '2026-03-02T20:00:00+01:00', timezone: 'Europe/Berlin', schedule: 'business-hours', change: 'window-end', min: 6, max: 40, dstShifted: false },
      { at: '2026-03-02T19:00:00.000Z', local: '2026-03-02T20:00:00+01:00', timezone: 'Europe/Berlin', schedule: 'night', change: 'window-start', min: 0, max: 0, dstShifted: false },
      { at: '2026-03-03T01:30:00.000Z', local: '2026-03-03T01:30:00+00:00', timezone: 'UTC', schedule: 'batch', change: 'point', to: 10, dstShifted: false },
      { at: '2026-03-03T07:00:00.000Z', local: '2026-03-03T08:00:00+01:00', timezone: 'Europe/Berlin', schedule: 'night', change: 'window-end', min: 0, max: 0, dstShifted: false },
      { at: '2026-03-03T07:00:00.000Z', local: '2026-03-03T08:00:00+01:00', timezone: 'Europe/Berlin', schedule: 'business-hours', change: 'window-start', min: 6, max: 40, dstShifted: false },
    ]);
  });

  const brief = (s: Schedule, from: string, hours: number) =>
    timeline([s], t(from), hours).map((e) => `${e.change} ${e.local}${e.dstShifted ? ' dst' : ''}`);

  it.each<[string, Schedule, string, number, string[]]>([
    ['a fire moved out of the spring gap is flagged', point({ cron: '30 2 * * *', timezone: 'Europe/Berlin' }), '2026-03-28T12:00:00Z', 48,
      ['point 2026-03-29T03:00:00+02:00 dst', 'point 2026-03-30T02:30:00+02:00']],
    ['a fixed time in the repeated hour is listed once, flagged', point({ cron: '30 1 * * *', timezone: 'America/New_York' }), '2026-10-31T12:00:00Z', 24,
      ['point 2026-11-01T01:30:00-04:00 dst']],
    ['an hourly cron lists both 02:15s of the repeated hour, flagged', point({ cron: '15 * * * *', timezone: 'Europe/Berlin' }), '2026-10-24T23:30:00Z', 3,
      ['point 2026-10-25T02:15:00+02:00 dst', 'point 2026-10-25T02:15:00+01:00 dst', 'point 2026-10-25T03:15:00+01:00']],
    ['a duration spanning a transition ends at another wall-clock time, flagged', EXAMPLE[1] as Schedule, '2026-03-28T12:00:00Z', 24,
      ['window-start 2026-03-28T20:00:00+01:00', 'window-end 2026-03-29T09:00:00+02:00 dst']],
    ['an end cron moved out of the gap is flagged', win({ cron: '0 1 * * *', end: '30 2 * * *' }), '2026-03-28T23:30:00Z', 2,
      ['window-start 2026-03-29T01:00:00+01:00', 'window-end 2026-03-29T03:00:00+02:00 dst']],
    ['nothing moves in a zone without DST', point({ cron: '30 2 * * *', timezone: 'Asia/Kolkata' }), '2026-03-28T12:00:00Z', 24,
      ['point 2026-03-29T02:30:00+05:30']],
    ['nothing moves in UTC', point({ cron: '30 2 * * *', timezone: 'UTC' }), '2026-10-25T00:00:00Z', 24, ['point 2026-10-25T02:30:00+00:00']],
    ['zero hours lists nothing', point(), '2026-03-02T00:00:00Z', 0, []],
  ])('%s', (_rule, s, from, hours, expected) => {
    expect(brief(s, from, hours)).toEqual(expected);
  });
});
