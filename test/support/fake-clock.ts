/**
 * A clock for tests: time moves only when the test says so, and `advance` fires the timers that
 * fall due, in order, each at its own instant. Nothing in the unit tests sleeps.
 */
import type { Clock } from '../../src/engine/clock.js';

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** A manual clock implementing {@link Clock}. */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers: Timer[] = [];

  /** Starts at `start` (epoch ms); 2025-01-01T00:00:00Z by default. */
  constructor(start = Date.parse('2025-01-01T00:00:00.000Z')) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** The present as ISO-8601, for assertions on stored times. */
  iso(offsetMs = 0): string {
    return new Date(this.#now + offsetMs).toISOString();
  }

  setTimer(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.push({ id, at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** How many timers are set and not fired. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /**
   * Moves time forward by `ms`, firing every timer due by then in deadline order (ties in the
   * order they were set), with `now()` at each timer's deadline while it runs. Timers set by a
   * callback fire too when they fall within the window.
   */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = end;
  }
}
