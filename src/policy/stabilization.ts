/**
 * Stabilization windows, as Kubernetes HPA `behavior` has them: the value a target moves to is
 * not just the newest desired value but one that has held for a while. A scale-down goes only as
 * low as the highest value desired within the down window, so a short dip in load does not
 * remove capacity that the next minute needs again (flapping); a scale-up, symmetrically, only
 * as high as the lowest value desired within the up window.
 *
 * The caller keeps the history: after each evaluation it appends `{at: now, value: desired}`,
 * the raw desired value and not the stabilized one (else a held value would hold itself), and
 * prunes it with {@link pruneRecommendations}. Pure: the clock is a parameter.
 */

/** A past desired value (evaluation result) and when it was computed (epoch ms). */
export interface Recommendation {
  /** When the evaluation ran, epoch milliseconds. */
  at: number;
  /** The desired value it computed, before stabilization. */
  value: number;
}

/** Window lengths in milliseconds per direction (the target's parsed `stabilization`); 0 is off. */
export interface StabilizationWindows {
  /** How long a scale-up waits for the lowest recent desired value. */
  up: number;
  /** How long a scale-down waits for the highest recent desired value. */
  down: number;
}

/** What {@link stabilize} reads. */
export interface StabilizeInput {
  /** The target's current value. */
  current: number;
  /** This evaluation's desired value. */
  desired: number;
  /** The clock's present, epoch milliseconds. */
  now: number;
  /** Earlier evaluations' desired values, in any order. */
  history: readonly Recommendation[];
  /** The target's windows. */
  windowMs: StabilizationWindows;
}

/** The stabilized value, and whether (and why) stabilization changed it. */
export interface Stabilized {
  /** The value to move to (still subject to bounds and cooldowns). */
  value: number;
  /** True when stabilization changed the desired value. */
  held: boolean;
  /** Why, for the decision's reason, when `held`; otherwise null. */
  reason: string | null;
}

/**
 * The value to use: a scale-down goes only as low as the highest recommendation within the down
 * window (the current desired included); a scale-up only as high as the lowest within the up
 * window. A recommendation exactly as old as the window has left it (as in Kubernetes).
 */
export function stabilize(input: StabilizeInput): Stabilized {
  const { current, desired, now, history, windowMs } = input;
  if (desired === current) return { value: desired, held: false, reason: null };
  const direction = desired > current ? 'up' : 'down';
  const window = windowMs[direction];
  if (window <= 0) return { value: desired, held: false, reason: null };

  const recent = history.filter((r) => r.at > now - window).map((r) => r.value);
  const extreme = direction === 'down' ? Math.max(desired, ...recent) : Math.min(desired, ...recent);
  if (extreme === desired) return { value: desired, held: false, reason: null };
  const which = direction === 'down' ? 'highest' : 'lowest';
  const last = `in the last ${formatWindow(window)}`;
  // Stabilization only slows a move: it never turns a scale-down into a scale-up (a recent wish
  // above the current value holds it where it is), nor the reverse.
  const beyond = direction === 'down' ? extreme >= current : extreme <= current;
  if (beyond) {
    return { value: current, held: true, reason: `stabilization: held at ${current} (current), as ${extreme} was desired ${last}` };
  }
  return { value: extreme, held: true, reason: `stabilization: held at ${extreme}, the ${which} desired value ${last}` };
}

/** Drops recommendations older than the longest window, keeping the list bounded. */
export function pruneRecommendations(history: readonly Recommendation[], now: number, windowMs: StabilizationWindows): Recommendation[] {
  const longest = Math.max(windowMs.up, windowMs.down);
  if (longest <= 0) return [];
  return history.filter((r) => r.at > now - longest);
}

/** A window as the config writes it: `5m`, `90s` reads `1m30s`, `1h`. */
function formatWindow(ms: number): string {
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}ms`);
  return parts.join('');
}
