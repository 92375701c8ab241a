import { describe, expect, it } from 'vitest';
import type { ConfigProblem } from '../../src/config/load.js';
import { parseTestConfig, problemsOf, webTargetConfig } from '../support/config.js';
import type { Schedule } from '../../src/schedule/index.js';

/** The `web` target with `schedules` given as YAML list items, indented as the target's keys. */
function config(items: string[]): string {
  return webTargetConfig(`    schedules:\n${items.map((item) => `      - ${item}\n`).join('')}`);
}

const parse = parseTestConfig;

/** The issue's example (issue 8), as an operator would write it. */
const ISSUE_EXAMPLE = `
targets:
  web:
    workDir: ./infra/web
    stack: prod
    configKey: web:replicas
    min: 2
    max: 40
    schedules:
      - name: business-hours          # a window: bounds while it is active
        cron: "0 8 * * 1-5"           # when it starts
        end: "0 20 * * 1-5"           # or: duration: 12h
        timezone: Europe/Berlin       # IANA name; default UTC
        min: 6                        # bounds in effect during the window; either or both
        max: 40
      - name: night
        cron: "0 20 * * *"
        duration: 12h
        timezone: Europe/Berlin
        min: 0
        max: 0                        # "scale to 0 at 8 PM" and hold it there until 8 AM
      - name: batch                   # a point: sets the value once at each fire
        cron: "30 1 * * *"
        to: 10
`;

const window = '{ name: w, cron: "0 8 * * *", duration: 1h, min: 3 }';
const point = '{ name: p, cron: "0 8 * * *", to: 3 }';

describe('config: schedules', () => {
  it("parses the issue's example into windows and points, with their defaults", () => {
    const expected: Schedule[] = [
      { kind: 'window', name: 'business-hours', cron: '0 8 * * 1-5', end: '0 20 * * 1-5', timezone: 'Europe/Berlin', min: 6, max: 40, priority: 0 },
      { kind: 'window', name: 'night', cron: '0 20 * * *', duration: 12 * 3_600_000, timezone: 'Europe/Berlin', min: 0, max: 0, priority: 0 },
      { kind: 'point', name: 'batch', cron: '30 1 * * *', timezone: 'UTC', to: 10, startingDeadline: 5 * 60_000 },
    ];
    expect(parse(ISSUE_EXAMPLE).targets.web?.schedules).toStrictEqual(expected);
  });

  it('defaults to no schedules', () => {
    const text = config([]).replace('    schedules:\n', '');
    expect(parse(text).targets.web?.schedules).toEqual([]);
  });

  it.each<[string, string[], Schedule[]]>([
    ['six fields with seconds first, a priority and a deadline', [
      '{ name: w, cron: "30 0 8 * * mon-fri", end: "0 0 20 * * mon-fri", max: 5, priority: 2 }',
      '{ name: p, cron: "@daily", timezone: Asia/Kolkata, to: 1, startingDeadline: 30s }',
    ], [
      { kind: 'window', name: 'w', cron: '30 0 8 * * mon-fri', end: '0 0 20 * * mon-fri', timezone: 'UTC', max: 5, priority: 2 },
      { kind: 'point', name: 'p', cron: '@daily', timezone: 'Asia/Kolkata', to: 1, startingDeadline: 30_000 },
    ]],
    ["node-cron's wrapping ranges, names and ? in day fields", [
      '{ name: w, cron: "0 22-2 ? * saturday", duration: 30m, min: 1 }',
    ], [
      { kind: 'window', name: 'w', cron: '0 22-2 ? * saturday', duration: 1_800_000, timezone: 'UTC', min: 1, priority: 0 },
    ]],
  ])('accepts %s', (_name, items, expected) => {
    expect(parse(config(items)).targets.web?.schedules).toStrictEqual(expected);
  });

  const at = (i: number, field?: string): string => `targets.web.schedules.${i}${field === undefined ? '' : `.${field}`}`;

  it.each<[string, string[], ConfigProblem[]]>([
    ['a cron with too few fields', [window, '{ name: x, cron: "0 8 * *", to: 1 }'], [
      { path: at(1, 'cron'), message: 'not a cron expression: "0 8 * *" (expected five fields (minute hour day month weekday), or six with seconds first; got 4)' },
    ]],
    ['a cron with a value out of range', ['{ name: x, cron: "61 8 * * *", to: 1 }'], [
      { path: at(0, 'cron'), message: 'not a cron expression: "61 8 * * *" (Invalid value for minute: 61)' },
    ]],
    ['a cron that never fires', ['{ name: x, cron: "0 0 30 2 *", to: 1 }'], [
      { path: at(0, 'cron'), message: 'never fires: "0 0 30 2 *"' },
    ]],
    ['a bad end cron', ['{ name: x, cron: "0 8 * * *", end: "0 20 * * funday", min: 1 }'], [
      { path: at(0, 'end'), message: 'not a cron expression: "0 20 * * funday" (configuration entry 5 (funday) contains illegal characters.)' },
    ]],
    ['an unknown time zone', ['{ name: x, cron: "0 8 * * *", timezone: Europe/Berln, to: 1 }'], [
      { path: at(0, 'timezone'), message: 'unknown time zone "Europe/Berln" (use an IANA name, e.g. Europe/Berlin or UTC)' },
    ]],
    ['a fixed offset instead of a zone', ['{ name: x, cron: "0 8 * * *", timezone: "+01:00", to: 1 }'], [
      { path: at(0, 'timezone'), message: 'not a time zone: "+01:00" (use an IANA name, e.g. Europe/Berlin or UTC)' },
    ]],
    ['a window whose end cron is its start cron', ['{ name: x, cron: "0 8 * * *", end: "0 0 8 * * *", min: 1 }'], [
      { path: at(0, 'end'), message: 'must differ from cron: the window would end as it starts' },
    ]],
    ['a window of duration 0', ['{ name: x, cron: "0 8 * * *", duration: 0s, min: 1 }'], [
      { path: at(0, 'duration'), message: 'must be above 0: the window would end as it starts' },
    ]],
    ['a point with min or max', ['{ name: x, cron: "0 8 * * *", to: 1, max: 3 }'], [
      { path: at(0, 'to'), message: 'a point sets to, a window sets min and max: not both' },
    ]],
    ['a point without to', ['{ name: x, cron: "0 8 * * *", startingDeadline: 1m }'], [
      { path: at(0, 'to'), message: 'a point needs to: the value it sets' },
    ]],
    ['a point with a deadline of 0', ['{ name: x, cron: "0 8 * * *", to: 1, startingDeadline: 0s }'], [
      { path: at(0, 'startingDeadline'), message: 'must be above 0' },
    ]],
    ['a window with neither min nor max', ['{ name: x, cron: "0 8 * * *", duration: 1h }'], [
      { path: at(0, 'min'), message: 'a window needs min, max or both (or to, for a point)' },
    ]],
    ['neither to nor min/max nor an end', ['{ name: x, cron: "0 8 * * *" }'], [
      { path: at(0, 'min'), message: 'a window needs min, max or both (or to, for a point)' },
      { path: at(0, 'end'), message: 'a window needs end (a cron) or duration' },
    ]],
    ['both end and duration', ['{ name: x, cron: "0 8 * * *", end: "0 9 * * *", duration: 1h, min: 1 }'], [
      { path: at(0, 'duration'), message: 'set end or duration, not both' },
    ]],
    ['a window with neither end nor duration', ['{ name: x, cron: "0 8 * * *", min: 1 }'], [
      { path: at(0, 'end'), message: 'a window needs end (a cron) or duration' },
    ]],
    ['min above max in a window', ['{ name: x, cron: "0 8 * * *", duration: 1h, min: 5, max: 3 }'], [
      { path: at(0, 'max'), message: 'must be >= min' },
    ]],
    ['window keys on a point', ['{ name: x, cron: "0 8 * * *", to: 1, duration: 1h, priority: 1 }'], [
      { path: at(0, 'duration'), message: 'applies to windows only (this schedule has to: it is a point)' },
      { path: at(0, 'priority'), message: 'applies to windows only (this schedule has to: it is a point)' },
    ]],
    ['a deadline on a window', ['{ name: x, cron: "0 8 * * *", duration: 1h, min: 1, startingDeadline: 1m }'], [
      { path: at(0, 'startingDeadline'), message: 'applies to points only (a schedule with to)' },
    ]],
    ['duplicate names in one target', [window, point, window.replace('0 8', '0 9')], [
      { path: at(2, 'name'), message: 'duplicate name "w" (also schedule 0)' },
    ]],
    ['a name that cannot be a source or label', ['{ name: "a+b", cron: "0 8 * * *", to: 1 }'], [
      { path: at(0, 'name'), message: 'schedule names are letters, digits, _ . - (max 63)' },
    ]],
    ['an unknown key', ['{ name: x, cron: "0 8 * * *", to: 1, at: 3 }'], [
      { path: at(0), message: 'Unrecognized key: "at"' },
    ]],
    ['every problem of a schedule at once', ['{ name: x, cron: "nope", timezone: Mars/Base, duration: 0s, min: 9, max: 1 }'], [
      { path: at(0, 'cron'), message: 'not a cron expression: "nope" (expected five fields (minute hour day month weekday), or six with seconds first; got 1)' },
      { path: at(0, 'timezone'), message: 'unknown time zone "Mars/Base" (use an IANA name, e.g. Europe/Berlin or UTC)' },
      { path: at(0, 'max'), message: 'must be >= min' },
      { path: at(0, 'duration'), message: 'must be above 0: the window would end as it starts' },
    ]],
  ])('reports %s with its path', (_name, items, expected) => {
    expect(problemsOf(config(items))).toEqual(expected);
  });

  it('schedules of two targets may share names', () => {
    const text = `${config([window])}  api:\n    workDir: ./infra/api\n    stack: prod\n    configKey: api:replicas\n    min: 1\n    max: 4\n    schedules:\n      - ${window}\n`;
    expect(Object.keys(parse(text).targets)).toEqual(['web', 'api']);
  });
});
