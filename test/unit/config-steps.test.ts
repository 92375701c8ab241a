import { describe, expect, it } from 'vitest';
import type { ConfigProblem } from '../../src/config/load.js';
import { parseTestConfig, problemsOf, webTargetConfig } from '../support/config.js';
import type { StepRules } from '../../src/policy/steps.js';

const config = webTargetConfig;

/** A `steps.up` rule with the given bands (YAML flow mappings) and extra rule keys. */
function up(bands: string[], keys = ''): string {
  return `    steps:\n      up:\n${keys}        bands:\n${bands.map((b) => `          - ${b}\n`).join('')}`;
}

const parse = parseTestConfig;

/** The issue's example (issue 7), as an operator would write it. */
const ISSUE_EXAMPLE = config(`    steps:
      up:
        adjustment: change          # change | percent | exact
        relativeTo: value           # value (absolute metric) | threshold (metric minus threshold)
        bands:
          - { from: 70, to: 90, by: 2 }
          - { from: 90, by: 5 }
      down:
        adjustment: percent
        minMagnitude: 1
        bands:
          - { to: 30, by: -25 }
    stabilization: { down: 5m, up: 0s }
`);

describe('config: steps and stabilization', () => {
  it('parses the issue example, with its defaults, into StepRules', () => {
    const web = parse(ISSUE_EXAMPLE).targets.web;
    // Compile-time too: a parsed config's steps is what the policy takes.
    const steps: StepRules | undefined = web?.steps;
    expect(steps).toEqual({
      up: { adjustment: 'change', relativeTo: 'value', bands: [{ from: 70, to: 90, by: 2 }, { from: 90, by: 5 }] },
      down: { adjustment: 'percent', relativeTo: 'value', minMagnitude: 1, bands: [{ to: 30, by: -25 }] },
    });
    expect(web?.stabilization).toEqual({ up: 0, down: 300_000 });
  });

  it('leaves steps unset and stabilization off by default', () => {
    const web = parse(config('')).targets.web;
    expect(web?.steps).toBeUndefined();
    expect(web?.stabilization).toEqual({ up: 0, down: 0 });
  });

  it.each(rules([
    { rule: 'adjustment defaults to change and relativeTo to value', text: config(up(['{ from: 90, by: 5 }'])) },
    { rule: 'bands may be written in any order', text: config(up(['{ from: 90, by: 5 }', '{ to: 70, by: 1 }', '{ from: 70, to: 90, by: 2 }'])) },
    { rule: 'a single band may leave both bounds open', text: config(up(['{ by: 1 }'])) },
    { rule: 'exact may set 0', text: config(up(['{ from: 90, by: 0 }'], '        adjustment: exact\n')) },
    { rule: 'percent may take a fraction of a percent', text: config(up(['{ from: 90, by: 12.5 }'], '        adjustment: percent\n')) },
    {
      rule: '20 bands are allowed',
      text: config(up(Array.from({ length: 20 }, (_, i) => `{ from: ${i * 10}, to: ${i * 10 + 10}, by: 1 }`))),
    },
  ]))('accepts: %s', (_rule, { text }) => {
    expect(problemsOf(text)).toEqual([]);
  });

  const at = (rest: string): string => `targets.web.steps.up.${rest}`;
  it.each(rules([
    {
      rule: 'more than 20 bands',
      text: config(up(Array.from({ length: 21 }, (_, i) => `{ from: ${i * 10}, to: ${i * 10 + 10}, by: 1 }`))),
      problems: [{ path: at('bands'), message: 'at most 20 bands (21 given)' }],
    },
    {
      rule: 'no bands',
      text: config('    steps:\n      up: { bands: [] }\n'),
      problems: [{ path: at('bands'), message: 'needs at least one band' }],
    },
    {
      rule: 'a band with from >= to',
      text: config(up(['{ from: 90, to: 70, by: 2 }'])),
      problems: [{ path: at('bands.0.to'), message: 'must be above from (90)' }],
    },
    {
      rule: 'a gap between consecutive bands',
      text: config(up(['{ from: 70, to: 80, by: 2 }', '{ from: 90, by: 5 }'])),
      problems: [{ path: at('bands.1.from'), message: 'must be 80, where band 0 ends (a gap between 80 and 90)' }],
    },
    {
      rule: 'an overlap between consecutive bands',
      text: config(up(['{ from: 70, to: 95, by: 2 }', '{ from: 90, by: 5 }'])),
      problems: [{ path: at('bands.1.from'), message: 'must be 95, where band 0 ends (bands overlap between 90 and 95)' }],
    },
    {
      rule: 'a gap found in the metric\'s order, whatever the written order',
      text: config(up(['{ from: 90, by: 5 }', '{ from: 70, to: 80, by: 2 }'])),
      problems: [{ path: at('bands.0.from'), message: 'must be 80, where band 1 ends (a gap between 80 and 90)' }],
    },
    {
      rule: 'an open lower bound on a band other than the lowest',
      text: config(up(['{ to: 70, by: 1 }', '{ to: 90, by: 2 }'])),
      problems: [{ path: at('bands.1.from'), message: 'only the lowest band may leave from open' }],
    },
    {
      rule: 'an open upper bound on a band other than the highest',
      text: config(up(['{ from: 70, by: 2 }', '{ from: 90, by: 5 }'])),
      problems: [{ path: at('bands.0.to'), message: 'only the highest band may leave to open' }],
    },
    {
      rule: 'minMagnitude without adjustment: percent',
      text: config(up(['{ from: 90, by: 5 }'], '        minMagnitude: 1\n')),
      problems: [{ path: at('minMagnitude'), message: 'applies to adjustment: percent only' }],
    },
    {
      // A band that holds the value is how AWS's own example leaves 50-60 alone.
      rule: 'by: 0 is a band that holds the value, not a problem',
      text: config(up(['{ from: 90, to: 95, by: 0 }', '{ from: 95, by: 5 }'])),
      problems: [],
    },
    {
      rule: 'a fractional by with adjustment: change',
      text: config(up(['{ from: 90, by: 1.5 }'])),
      problems: [{ path: at('bands.0.by'), message: 'must be a whole number with adjustment: change' }],
    },
    {
      rule: 'a negative by with adjustment: exact',
      text: config(up(['{ from: 90, by: -1 }'], '        adjustment: exact\n')),
      problems: [{ path: at('bands.0.by'), message: 'must be a whole number >= 0 with adjustment: exact (it is the new value)' }],
    },
    {
      rule: 'a fractional by with adjustment: exact',
      text: config(up(['{ from: 90, by: 2.5 }'], '        adjustment: exact\n')),
      problems: [{ path: at('bands.0.by'), message: 'must be a whole number >= 0 with adjustment: exact (it is the new value)' }],
    },
    {
      rule: 'a stabilization window that is not a duration',
      text: config('    stabilization: { down: "5" }\n'),
      problems: [{ path: 'targets.web.stabilization.down', message: 'not a duration: "5" (use a unit, e.g. 500ms, 60s, 5m, 1h)' }],
    },
  ] satisfies { rule: string; text: string; problems: ConfigProblem[] }[]))('reports %s with its path', (_rule, { text, problems }) => {
    expect(problemsOf(text)).toEqual(problems);
  });

  it('reports every problem of both directions at once', () => {
    const text = config(`    steps:
      up:
        minMagnitude: 2
        bands:
          - { from: 70, to: 80, by: 0 }
          - { from: 90, by: 5 }
      down:
        adjustment: exact
        bands:
          - { to: 30, by: -1 }
`);
    expect(problemsOf(text)).toEqual([
      { path: at('minMagnitude'), message: 'applies to adjustment: percent only' },
      { path: at('bands.1.from'), message: 'must be 80, where band 0 ends (a gap between 80 and 90)' },
      { path: 'targets.web.steps.down.bands.0.by', message: 'must be a whole number >= 0 with adjustment: exact (it is the new value)' },
    ]);
  });

  it('still checks the bands when a field of the rule is invalid', () => {
    const paths = problemsOf(config(up(['{ from: 90, to: 70, by: 2 }'], '        adjustment: sideways\n'))).map((p) => p.path);
    expect(paths).toEqual([at('adjustment'), at('bands.0.to')]);
  });
});

/** Table rows as [rule, row], so each test is named by its full rule (`$rule` would be cut short). */
function rules<T extends { rule: string }>(rows: readonly T[]): [string, T][] {
  return rows.map((row) => [row.rule, row]);
}
