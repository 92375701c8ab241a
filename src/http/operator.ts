/**
 * What an operator can do, the same whichever door they came in by (the API, a chat command):
 * scale, pause and resume a target. One implementation, so that a chat command meets the same
 * bounds, drain refusal and history as the API.
 */
import { randomUUID } from 'node:crypto';
import { MAX_DURATION_MS, MAX_DURATION_TEXT, parseDuration } from '../config/duration.js';
import { PulumiScaleError } from '../errors.js';
import { boundsAt } from '../schedule/index.js';
import type { Actor, Adjustment, Intent, IntentSource, TargetState } from '../types.js';
import type { AppDeps } from './deps.js';

/** A scale request: exactly one of `to`, `by`, `action`, `values`. */
export interface ScaleRequest {
  to?: number;
  by?: number;
  action?: 'up' | 'down';
  /** Several keys of a composite target at once, by key; the driving key is required. */
  values?: Record<string, number>;
  dryRun?: boolean;
  reason?: string;
}

/** Who asked, and through what. */
export interface Requester {
  source: Extract<IntentSource, 'api' | 'chat'>;
  /** The person, when the door names one (a chat user). */
  actor?: Actor;
}

/** Refuses a change while the daemon drains (the change would be lost with the process's work). */
export function refuseWhileDraining(deps: AppDeps): void {
  if (deps.engine.isDraining()) throw new PulumiScaleError('PS_DRAINING', 'the daemon is draining; retry on another replica or later');
}

/** The name of a configured target, or PS_TARGET_UNKNOWN. */
export function known(deps: AppDeps, name: string): string {
  if (!Object.hasOwn(deps.config.targets, name)) throw new PulumiScaleError('PS_TARGET_UNKNOWN', `no target named "${name.slice(0, 80)}"`);
  return name;
}

/**
 * Queues an operator command once stored. A `to` outside the bounds in effect is refused with
 * PS_OUT_OF_BOUNDS rather than clamped: the operator asked for that exact number.
 */
export async function scale(deps: AppDeps, name: string, body: ScaleRequest, who: Requester): Promise<{ intent: Intent; queued: number }> {
  refuseWhileDraining(deps);
  const target = deps.config.targets[known(deps, name)] as (typeof deps.config.targets)[string];
  const now = deps.now ?? Date.now;
  const multi = body.values === undefined ? undefined : splitValues(target, name, body.values);
  const to = multi?.to ?? body.to;
  // The bounds in effect now: a schedule window's replace the target's own while it lasts.
  const bounds = boundsAt(target, now());
  if (to !== undefined && (to < bounds.min || to > bounds.max)) {
    const why = bounds.source === 'config' ? '' : ` (the bounds of ${bounds.source})`;
    throw new PulumiScaleError('PS_OUT_OF_BOUNDS', `"${multi ? target.configKey : 'to'}": ${to} is outside [${bounds.min}, ${bounds.max}] of target ${name}${why}`, {
      details: { min: bounds.min, max: bounds.max, source: bounds.source },
    });
  }
  const adjustment: Adjustment =
    multi !== undefined
      ? { type: 'to', to: multi.to, values: multi.derived }
      : body.to !== undefined
        ? { type: 'to', to: body.to }
        : body.by !== undefined
          ? { type: 'by', by: body.by }
          : { type: 'step', direction: body.action ?? 'up' };
  const intent: Intent = {
    id: (deps.newId ?? randomUUID)(),
    target: name,
    adjustment,
    dryRun: body.dryRun ?? false,
    source: who.source,
    reason: body.reason ?? (who.actor ? `manual, by ${who.actor.name} (${who.actor.via})` : 'manual'),
    receivedAt: new Date(now()).toISOString(),
    bounds: 'reject',
    evidence: who.actor ? { actor: who.actor } : {},
  };
  const { queued } = await deps.engine.command(intent);
  return { intent, queued };
}

/**
 * A multi-key command's values split into the driving value and the derived keys' values, each
 * an owned key within its bounds: PS_PAYLOAD_INVALID for a key the target does not own or a
 * missing driving key, PS_OUT_OF_BOUNDS for a derived value outside its rule's [min, max].
 */
function splitValues(target: AppDeps['config']['targets'][string], name: string, values: Record<string, number>): { to: number; derived: Record<string, number> } {
  const invalid = (message: string, path: string): PulumiScaleError =>
    new PulumiScaleError('PS_PAYLOAD_INVALID', message, { details: [{ path: `values.${path}`, message, code: 'custom' }] });
  const to = values[target.configKey];
  if (to === undefined) throw invalid(`"values" must set the driving key ${target.configKey} of target ${name}`, target.configKey);
  const derived: Record<string, number> = {};
  for (const [key, value] of Object.entries(values)) {
    if (key === target.configKey) continue;
    const rule = target.derived.find((d) => d.key === key);
    if (rule === undefined) {
      const owned = [target.configKey, ...target.derived.map((d) => d.key)].join(', ');
      throw invalid(`target ${name} does not own ${key.slice(0, 80)} (it owns ${owned})`, key);
    }
    if ((rule.min !== undefined && value < rule.min) || (rule.max !== undefined && value > rule.max)) {
      throw new PulumiScaleError('PS_OUT_OF_BOUNDS', `"${key}": ${value} is outside [${rule.min ?? '-∞'}, ${rule.max ?? '∞'}] of target ${name}`, {
        details: { key, min: rule.min ?? null, max: rule.max ?? null },
      });
    }
    derived[key] = value;
  }
  return { to, derived };
}

/**
 * Pauses a target for a duration text ("30m"), one direction or both, once stored; resolves
 * with its state. A duration that is not positive, or longer than 100 years, is PS_PAYLOAD_INVALID.
 */
export async function pause(deps: AppDeps, name: string, req: { for: string; direction: 'both' | 'up' | 'down'; reason: string }): Promise<TargetState> {
  refuseWhileDraining(deps);
  const target = known(deps, name);
  const now = deps.now ?? Date.now;
  const ms = parseDuration(req.for) ?? 0;
  const until = new Date(now() + ms);
  // A huge "for" (99999999999d) would end past the last date a Date holds: a 400, not a 500,
  // at the bound every duration has (the config's and the simulator's).
  if (ms <= 0 || ms > MAX_DURATION_MS || Number.isNaN(until.getTime())) {
    const problem = ms <= 0 ? 'not a positive duration' : `longer than ${MAX_DURATION_TEXT} (100 years)`;
    throw new PulumiScaleError('PS_PAYLOAD_INVALID', `"for": "${req.for.slice(0, 40)}" is ${problem} (use a unit: 30m, 2h, 1h30m)`, {
      details: [{ path: 'for', message: problem, code: 'custom' }],
    });
  }
  return deps.engine.pause(target, { until: until.toISOString(), direction: req.direction, reason: req.reason });
}

/** Lifts a target's API pause once stored; resolves with its state. */
export async function resume(deps: AppDeps, name: string): Promise<TargetState> {
  refuseWhileDraining(deps);
  return deps.engine.pause(known(deps, name), null);
}
