/**
 * Bounds in effect: a schedule's window replaces a target's `min`/`max` while it is active, and
 * a value outside the bounds in effect is moved into them at once, cooldown or not (as AWS
 * applies a scheduled action's min and max). Pauses still hold it: a pause changes nothing.
 */
import type { Decision, Pause } from '../types.js';
import { pauses, skip, type PolicyTarget } from './decide.js';

/** The bounds a target's value must be in now, and why (`config` or `schedule:<name>`). */
export interface BoundsInEffect {
  min: number;
  max: number;
  source: string;
}

/** The change that brings a value outside `bounds` into them; null when it is inside (or unknown). Pure. */
export function planBounds(input: { current: number | null; bounds: BoundsInEffect; target: Pick<PolicyTarget, 'paused'>; pause: Pause | null; now: number }): Decision | null {
  const { current, bounds } = input;
  if (current === null || (current >= bounds.min && current <= bounds.max)) return null;
  const to = current < bounds.min ? bounds.min : bounds.max;
  const direction = to > current ? 'up' : 'down';
  const why = `bounds of ${bounds.source}: ${current} is outside [${bounds.min}, ${bounds.max}]`;
  if (input.target.paused) return skip(current, to, 'paused', `${why}: target is paused, nothing changed`);
  if (pauses(input.pause, direction, input.now)) return skip(current, to, 'paused', `${why}: ${direction} is paused until ${input.pause?.until ?? ''}`);
  return { kind: 'change', from: current, to, direction, clamped: true, reason: `${why}: ${current} -> ${to}` };
}
