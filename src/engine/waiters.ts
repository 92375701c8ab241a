/**
 * Event-driven waiting: a caller waits for a condition on the engine's state, and the engine
 * re-checks every waiting condition after each change (an intent stored, an operation ended).
 * Nothing polls and nothing sleeps; a deadline, when there is one, is a timer on the engine's
 * clock, so tests drive it with a fake clock.
 */
import type { Clock } from './clock.js';

/**
 * Rules: conditions must be cheap and synchronous (they run inside `notify`); `notify` is
 * called by the engine only, after each change of what the conditions read.
 */
export class Waiters {
  readonly #checks = new Set<() => void>();

  constructor(private readonly clock: Clock) {}

  /** Resolves true once `ready()` holds, or false when `timeoutMs` passed first (if given). */
  until(ready: () => boolean, timeoutMs?: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (ready()) {
        resolve(true);
        return;
      }
      let timer: unknown = null;
      const check = (): void => {
        if (!ready()) return;
        this.#checks.delete(check);
        if (timer !== null) this.clock.clearTimer(timer);
        resolve(true);
      };
      this.#checks.add(check);
      if (timeoutMs !== undefined) {
        timer = this.clock.setTimer(() => {
          this.#checks.delete(check);
          resolve(false);
        }, timeoutMs);
      }
    });
  }

  /** Re-checks every waiting condition. */
  notify(): void {
    for (const check of [...this.#checks]) check();
  }
}
