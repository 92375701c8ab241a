/**
 * The simulator's inputs, checked: a timeline as JSON (`--input`, the API's body), or a
 * Prometheus range query's `matrix` result turned into signals by a threshold (`--series`).
 * Every problem is reported with the path of what is wrong (`inputs.2.signal.direction`).
 */
import { z } from 'zod';
import { MAX_DURATION_MS, MAX_DURATION_TEXT, parseDuration } from '../config/duration.js';
import type { Scenario, TimedInput } from './simulate.js';

/** The longest timeline simulated (31 days), and the most inputs: a run stays bounded. */
export const MAX_SPAN_MS = 31 * 86_400_000;
export const MAX_INPUTS = 100_000;

const instant = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d{2}-\d{2}T[^Z+-]*(Z|[+-]\d{2}:?\d{2})$/.test(s), 'must be an ISO-8601 time with its zone, e.g. 2026-11-29T10:00:00Z');
const duration = z.string().refine((s) => {
  const ms = parseDuration(s) ?? 0;
  return ms > 0 && ms <= MAX_DURATION_MS;
}, `must be a positive duration with a unit, e.g. 30m, 2h, of at most ${MAX_DURATION_TEXT}`);

const entry = z
  .strictObject({
    at: instant,
    signal: z
      .strictObject({
        id: z.string().min(1).max(200),
        direction: z.enum(['up', 'down']),
        value: z.number().finite().nullable().optional(),
        threshold: z.number().finite().nullable().optional(),
      })
      .optional(),
    resolve: z.string().min(1).max(200).optional(),
    command: z
      .strictObject({
        to: z.number().int().nonnegative().optional(),
        by: z.number().int().refine((n) => n !== 0, 'must not be 0').optional(),
        action: z.enum(['up', 'down']).optional(),
      })
      .refine((c) => [c.to, c.by, c.action].filter((v) => v !== undefined).length === 1, 'give exactly one of "to", "by" or "action"')
      .optional(),
    pause: z.strictObject({ for: duration, direction: z.enum(['both', 'up', 'down']).default('both') }).optional(),
    resume: z.literal(true).optional(),
  })
  .refine((e) => [e.signal, e.resolve, e.command, e.pause, e.resume].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of "signal", "resolve", "command", "pause" or "resume"',
  });

/** The timeline's JSON shape. */
export const scenarioSchema = z
  .strictObject({
    start: z.strictObject({ at: instant, value: z.number().int().nonnegative().nullable() }),
    inputs: z.array(entry).max(MAX_INPUTS).default([]),
    until: instant,
  })
  .superRefine((s, ctx) => {
    const start = Date.parse(s.start.at);
    const until = Date.parse(s.until);
    if (until <= start) ctx.addIssue({ code: 'custom', path: ['until'], message: 'must be after start.at' });
    else if (until - start > MAX_SPAN_MS) ctx.addIssue({ code: 'custom', path: ['until'], message: 'a simulation covers at most 31 days' });
    s.inputs.forEach((e, i) => {
      const at = Date.parse(e.at);
      if (at < start || at > until) ctx.addIssue({ code: 'custom', path: ['inputs', i, 'at'], message: `must be between start.at and until` });
    });
  });

/** A problem with its path, as `validate` prints config problems. */
export interface InputProblem {
  path: string;
  message: string;
}

/** A timeline that does not parse: every problem with its path. */
export class ScenarioError extends Error {
  constructor(readonly problems: InputProblem[]) {
    super(problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('\n'));
  }
}

/** Parses a timeline (already JSON-decoded); throws ScenarioError. */
export function parseScenario(raw: unknown): Scenario {
  const parsed = scenarioSchema.safeParse(raw);
  if (!parsed.success) throw new ScenarioError(parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })));
  const s = parsed.data;
  const inputs = s.inputs.map((e): TimedInput => {
    const at = Date.parse(e.at);
    if (e.signal) return { at, kind: 'signal', signal: { id: e.signal.id, direction: e.signal.direction, value: e.signal.value ?? null, threshold: e.signal.threshold ?? null } };
    if (e.resolve !== undefined) return { at, kind: 'resolve', id: e.resolve };
    if (e.command) {
      const c = e.command;
      const adjustment = c.to !== undefined ? { type: 'to' as const, to: c.to } : c.by !== undefined ? { type: 'by' as const, by: c.by } : { type: 'step' as const, direction: c.action ?? 'up' };
      return { at, kind: 'command', adjustment };
    }
    if (e.pause) return { at, kind: 'pause', forMs: parseDuration(e.pause.for) ?? 0, direction: e.pause.direction };
    return { at, kind: 'resume' };
  });
  return { start: { at: Date.parse(s.start.at), value: s.start.value }, inputs, until: Date.parse(s.until) };
}

const sample = z.tuple([z.number(), z.string()]);
const matrix = z.object({
  resultType: z.literal('matrix'),
  result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(sample) })),
});
/** `/api/v1/query_range`'s answer, whole or just its `data`. */
const rangeResult = z.union([z.object({ status: z.string().optional(), data: matrix }), matrix]);

/**
 * A Prometheus range query's series as a timeline: a sample above `above` is a firing up signal
 * with that value (below `below`, a down one); the first sample on the right side of the
 * threshold again resolves it. Each series is one signal, named by its labels.
 */
export function seriesScenario(raw: unknown, opts: { above?: number; below?: number; startValue: number | null }): Scenario {
  if (opts.above === undefined && opts.below === undefined) throw new ScenarioError([{ path: '', message: 'give --above X, --below Y, or both' }]);
  const parsed = rangeResult.safeParse(raw);
  if (!parsed.success) {
    throw new ScenarioError(parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: `${i.message} (expected the matrix JSON of /api/v1/query_range)` })));
  }
  const data = 'data' in parsed.data ? parsed.data.data : parsed.data;
  const inputs: TimedInput[] = [];
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  data.result.forEach((series, s) => {
    const id = seriesName(series.metric);
    let firing: 'up' | 'down' | null = null;
    series.values.forEach(([ts, text], i) => {
      // Prometheus writes NaN and ±Inf as such: a gap in the data, not a reading.
      if (/^[+-]?(Inf|NaN)$/.test(text)) return;
      const value = Number(text);
      if (!Number.isFinite(value)) throw new ScenarioError([{ path: `data.result.${s}.values.${i}.1`, message: `"${text.slice(0, 40)}" is not a number` }]);
      const at = Math.round(ts * 1000);
      first = Math.min(first, at);
      last = Math.max(last, at);
      const now = opts.above !== undefined && value > opts.above ? 'up' : opts.below !== undefined && value < opts.below ? 'down' : null;
      if (now !== null) inputs.push({ at, kind: 'signal', signal: { id, direction: now, value, threshold: now === 'up' ? (opts.above ?? null) : (opts.below ?? null) } });
      else if (firing !== null) inputs.push({ at, kind: 'resolve', id });
      firing = now;
    });
  });
  if (inputs.length === 0 && !Number.isFinite(first)) throw new ScenarioError([{ path: 'data.result', message: 'has no samples' }]);
  if (last - first > MAX_SPAN_MS) throw new ScenarioError([{ path: 'data.result', message: 'spans more than 31 days: query a shorter range' }]);
  if (inputs.length > MAX_INPUTS) throw new ScenarioError([{ path: 'data.result', message: `gives more than ${MAX_INPUTS} inputs: query a shorter range or a larger step` }]);
  return { start: { at: first, value: opts.startValue }, inputs, until: last };
}

/** A series' name from its labels: `name{a="1",b="2"}`. */
function seriesName(metric: Record<string, string>): string {
  const { __name__: name = '', ...labels } = metric;
  const pairs = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}="${v}"`);
  return `${name}{${pairs.join(',')}}`;
}
