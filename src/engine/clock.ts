/**
 * Time as a parameter: the engine reads the time and sets its timers (retry backoff, drain
 * timeout) only through a {@link Clock}, so unit tests drive it with a fake one and never sleep.
 */

/**
 * A source of time and timers.
 *
 * Rules: the engine is the only caller. `now` must never block or go backwards within a run.
 * A timer fires at most once; its callback runs outside the caller's stack and must not throw
 * (the engine's callbacks catch their own errors). `clearTimer` of a fired or unknown handle is
 * a no-op.
 */
export interface Clock {
  /** The present, epoch milliseconds. */
  now(): number;
  /** Calls `fn` once, `ms` milliseconds from now; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown;
  /** Cancels a timer that has not fired yet. */
  clearTimer(handle: unknown): void;
}

const MAX_TIMEOUT = 2_147_483_647;

/** The real clock: `Date.now` and `setTimeout`. */
export const systemClock = {
  now: () => Date.now(),
  // Node fires a timeout above 2^31-1 ms at once, so longer waits are capped (they re-check).
  setTimer: (fn: () => void, ms: number): unknown => setTimeout(fn, Math.min(MAX_TIMEOUT, Math.max(0, ms))),
  clearTimer: (handle: unknown): void => clearTimeout(handle as ReturnType<typeof setTimeout>),
} satisfies Clock;
