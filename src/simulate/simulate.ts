/**
 * The simulator: a target's policy (bounds, step rules, cooldowns, stabilization, schedules,
 * pauses, commands) run on a virtual clock over a timeline of inputs, with no Pulumi at all.
 *
 * Why it can be trusted: every rule is the engine's own code in policy/ and schedule/
 * (planCommands, planBounds, planSignals, cooldownAfter, pruneRecommendations, boundsAt); only
 * the loop that calls them lives here, and it calls them in the engine's order. Commands go
 * first, then a move into the bounds in effect, then the signals. An operation takes
 * `opMs`, during which nothing else starts, and its change counts (value, cooldown) at its end,
 * as the engine records it. The target is evaluated when an input arrives, when an operation
 * ends, when a cooldown or pause holding a change ends, when a schedule changes, and every
 * `evaluationInterval` while signals are active, as the engine does.
 */
import type { TargetConfig } from '../config/schema.js';
import { planBounds } from '../policy/bounds.js';
import { planCommands } from '../policy/commands.js';
import { cooldownAfter } from '../policy/decide.js';
import { planSignals } from '../policy/signals.js';
import { pruneRecommendations, type Recommendation } from '../policy/stabilization.js';
import { boundsAt, firesBetween, nextChange, nextFire, type Bounds, type PointSchedule } from '../schedule/index.js';
import type { Adjustment, Command, CooldownUntil, Decision, Direction, Pause, Signal } from '../types.js';

/** One input at an instant (epoch ms). */
export type TimedInput =
  | { at: number; kind: 'signal'; signal: { id: string; direction: Direction; value: number | null; threshold: number | null } }
  | { at: number; kind: 'resolve'; id: string }
  | { at: number; kind: 'command'; adjustment: Adjustment }
  | { at: number; kind: 'pause'; forMs: number; direction: 'both' | Direction }
  | { at: number; kind: 'resume' };

/** A timeline to run: where it starts, what happens, when it ends (epoch ms). */
export interface Scenario {
  start: { at: number; value: number | null };
  inputs: TimedInput[];
  until: number;
}

/** One change the policy would make. */
export interface SimulatedChange {
  /** When it counts (the operation's end), ISO-8601 UTC. */
  at: string;
  from: number | null;
  to: number;
  reason: string;
}

/** What a run gives: the changes in order, and the value at the end. */
export interface SimulationResult {
  changes: SimulatedChange[];
  final: number | null;
}

/** How the loop runs. */
export interface SimulationOptions {
  /** How long an operation takes (the virtual clock's ms); nothing else starts meanwhile. */
  opMs: number;
  /** The engine's periodic evaluation (`engine.evaluationInterval`). */
  evaluationInterval: number;
  /** The schedule functions to ask (default the real ones; a test counts the calls). */
  ask?: ScheduleQuestions;
}

/** The most decisions one instant may take (a target with no cooldown stepping to its max). */
const MAX_STEPS_AT_ONE_INSTANT = 100_000;

/**
 * The most instants one run visits. A run is synchronous (the API serves it on the daemon's
 * event loop), so its work is bounded, not only its span (a 100 ms evaluationInterval over a
 * month would be 26 million instants).
 */
export const MAX_INSTANTS = 200_000;

/** A run that would take more work than {@link MAX_INSTANTS} allows. */
export class SimulationTooLargeError extends Error {}

/** The schedule functions a run asks (a test counts the calls). */
export interface ScheduleQuestions {
  nextChange: typeof nextChange;
  boundsAt: typeof boundsAt;
  nextFire: typeof nextFire;
  firesBetween: typeof firesBetween;
}

const SCHEDULES: ScheduleQuestions = { nextChange, boundsAt, nextFire, firesBetween };

/**
 * The schedules' answers while the virtual clock only moves forward. They change only at an
 * edge (a window's start or end, a point's fire), so an answer holds until the next edge and
 * cron is asked again only then. Asking at every instant made a week with two schedules take
 * 23 s and a month about a minute, on the daemon's event loop when run through the API.
 */
export class ScheduleMemo {
  readonly #target: TargetConfig;
  readonly #ask: ScheduleQuestions;
  /** The next edge strictly after `at`, as computed there (null: none ever). */
  #edge: { at: number; next: number | null } | null = null;
  #bounds: { at: number; until: number | null; bounds: Bounds } | null = null;

  /** `ask`: the schedule functions it remembers the answers of (a test counts the calls). */
  constructor(target: TargetConfig, ask: ScheduleQuestions = SCHEDULES) {
    this.#target = target;
    this.#ask = ask;
  }

  /** The schedules' next edge strictly after `now` (never asked about an earlier `now` than before). */
  nextChange(now: number): number | null {
    const e = this.#edge;
    if (e !== null && e.at <= now && (e.next === null || now < e.next)) return e.next;
    const next = this.#ask.nextChange(this.#target.schedules, now);
    this.#edge = { at: now, next };
    return next;
  }

  /** The bounds in effect at `now`: the same from one edge to the next. */
  boundsAt(now: number): Bounds {
    const b = this.#bounds;
    if (b !== null && b.at <= now && (b.until === null || now < b.until)) return b.bounds;
    const bounds = this.#ask.boundsAt(this.#target, now);
    this.#bounds = { at: now, until: this.nextChange(now), bounds };
    return bounds;
  }
}

/** Runs `target`'s policy over `scenario`. Pure: the same scenario gives the same result. */
export function simulate(target: TargetConfig, scenario: Scenario, opts: SimulationOptions): SimulationResult {
  const inputs = scenario.inputs.toSorted((a, b) => a.at - b.at);
  const points = target.schedules.filter((s): s is PointSchedule => s.kind === 'point');
  const changes: SimulatedChange[] = [];
  const signals = new Map<string, Signal>();
  const queue: Command[] = [];
  let current = scenario.start.value;
  let cooldownUntil: CooldownUntil = { up: null, down: null };
  let pause: Pause | null = null;
  let recommendations: Recommendation[] = [];
  let busyUntil = Number.NEGATIVE_INFINITY;
  let pending: { decision: Extract<Decision, { kind: 'change' }>; consumed: number } | null = null;
  // firesBetween covers (from, to]: a fire at the very start counts, as the engine's catch-up does.
  let pointsFrom = scenario.start.at - 1;
  const ask = opts.ask ?? SCHEDULES;
  // Each point's first fire after pointsFrom: cron is asked for its fires only once one is due.
  const pointsDue = points.map((point) => ask.nextFire(point, pointsFrom));
  const schedules = new ScheduleMemo(target, ask);
  let instants = 0;
  let next = 0;
  let commands = 0;
  let steps = 0;
  let t = scenario.start.at;

  const iso = (ms: number): string => new Date(ms).toISOString();
  const take = (input: TimedInput): void => {
    switch (input.kind) {
      case 'signal': {
        const known = signals.get(input.signal.id);
        signals.set(input.signal.id, {
          ...input.signal,
          target: target.name,
          source: 'alertmanager',
          since: known?.since ?? iso(input.at),
          lastSeen: iso(input.at),
          expiresAt: null,
          reason: `signal ${input.signal.id}`,
          evidence: {},
        });
        return;
      }
      case 'resolve':
        signals.delete(input.id);
        return;
      case 'command':
        queue.push(command(input.adjustment, input.at, 'api', `command at ${iso(input.at)}`));
        return;
      case 'pause':
        pause = { until: iso(input.at + input.forMs), direction: input.direction, reason: 'simulated pause' };
        return;
      case 'resume':
        pause = null;
        return;
    }
  };
  const command = (adjustment: Adjustment, at: number, source: Command['source'], reason: string): Command => ({
    id: `sim-${++commands}`,
    target: target.name,
    adjustment,
    dryRun: false,
    source,
    reason,
    receivedAt: iso(at),
    bounds: source === 'schedule' ? 'clamp' : 'reject',
    evidence: {},
  });

  while (t <= scenario.until) {
    if (++instants > MAX_INSTANTS) {
      throw new SimulationTooLargeError(
        `the simulation would visit more than ${MAX_INSTANTS} instants (a short evaluationInterval or a frequent schedule over a long span): simulate a shorter span`,
      );
    }
    // An operation that ends now counts now: its value, its cooldown.
    if (pending !== null && t >= busyUntil) {
      const { decision, consumed } = pending;
      changes.push({ at: iso(t), from: current, to: decision.to, reason: decision.reason });
      current = decision.to;
      cooldownUntil = cooldownAfter(cooldownUntil, decision.direction, t, target.cooldown);
      queue.splice(0, consumed);
      pending = null;
    }
    while (next < inputs.length && (inputs[next] as TimedInput).at <= t) take(inputs[next++] as TimedInput);
    points.forEach((point, i) => {
      const due = pointsDue[i] ?? null;
      if (due === null || due > t) return;
      const fires = ask.firesBetween(point, pointsFrom, t);
      pointsDue[i] = ask.nextFire(point, t);
      const latest = fires[fires.length - 1];
      // A point sets an absolute value: only its latest fire in the step counts, as in the engine.
      if (latest !== undefined) queue.push(command({ type: 'to', to: point.to }, latest, 'schedule', `schedule ${point.name}`));
    });
    pointsFrom = t;

    let wake: number | null = null;
    if (t >= busyUntil) {
      const planned = decide(t);
      wake = planned.wake;
      if (planned.change !== null) {
        pending = planned.change;
        busyUntil = t + opts.opMs;
        // With no operation time the change counts at once, and the same instant is decided again.
        if (opts.opMs === 0) {
          if (++steps > MAX_STEPS_AT_ONE_INSTANT) throw new SimulationTooLargeError(`the simulation took more than ${MAX_STEPS_AT_ONE_INSTANT} decisions at ${iso(t)}`);
          continue;
        }
      } else if (planned.again) {
        // A skipped command is its own operation in the engine: the next one follows at once.
        if (++steps > MAX_STEPS_AT_ONE_INSTANT) throw new SimulationTooLargeError(`the simulation took more than ${MAX_STEPS_AT_ONE_INSTANT} decisions at ${iso(t)}`);
        continue;
      }
    }
    steps = 0;
    t = nextInstant(t, wake);
  }
  // An operation still running at the end counts only if it ends by then.
  return { changes, final: current };

  // The engine's order: commands, then the bounds in effect, then the signals.
  function decide(now: number): { change: { decision: Extract<Decision, { kind: 'change' }>; consumed: number } | null; wake: number | null; again?: boolean } {
    const bounds = schedules.boundsAt(now);
    const bounded = { ...target, min: bounds.min, max: bounds.max };
    const fromCommands = planCommands({ queue, current, target: bounded, pause, now });
    if (fromCommands !== null) {
      if (fromCommands.decision.kind === 'change') return { change: { decision: fromCommands.decision, consumed: fromCommands.batch.length }, wake: null };
      queue.splice(0, fromCommands.batch.length);
      return { change: null, wake: null, again: true };
    }
    const into = planBounds({ current, bounds, target, pause, now });
    if (into?.kind === 'change') return { change: { decision: into, consumed: 0 }, wake: null };
    const plan = planSignals({ current, signals: [...signals.values()], target: bounded, pause, cooldownUntil, history: recommendations, now });
    if (plan === null) return { change: null, wake: pause === null ? null : Date.parse(pause.until) };
    const last = recommendations[recommendations.length - 1];
    if (last !== undefined && last.value === plan.recommendation) last.at = now;
    else recommendations.push({ at: now, value: plan.recommendation });
    recommendations = pruneRecommendations(recommendations, now, target.stabilization);
    if (plan.decision.kind === 'change') return { change: { decision: plan.decision, consumed: 0 }, wake: null };
    return { change: null, wake: plan.waitUntil };
  }

  /** The next instant worth deciding at, after `now`. */
  function nextInstant(now: number, wake: number | null): number {
    const candidates = [scenario.until + 1];
    if (next < inputs.length) candidates.push((inputs[next] as TimedInput).at);
    if (pending !== null) candidates.push(busyUntil);
    if (wake !== null && wake > now) candidates.push(wake);
    const change = schedules.nextChange(now);
    if (change !== null) candidates.push(change);
    if (signals.size > 0 || queue.length > 0) candidates.push(now + opts.evaluationInterval);
    return Math.max(now + 1, Math.min(...candidates));
  }
}
