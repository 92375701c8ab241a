/**
 * The scheduler decides which target runs next; it knows nothing of intents or Pulumi.
 *
 * - One operation per stack: two targets may own different keys of the same stack, and Pulumi
 *   locks a whole stack, so the lock is keyed by the stack (backend, project and stack name:
 *   config/stack-key.ts), not by the target.
 * - At most `concurrency` operations (and background reads) at once, across stacks.
 * - FIFO fairness: targets wait in the order their work arrived; a target whose stack is busy
 *   or whose retry backoff has not passed keeps its place and does not block the ones behind.
 * - A deferred target (backoff) wakes the engine through one clock timer, armed for the
 *   earliest deadline.
 */
import type { Clock } from './clock.js';

/** Who holds a stack, and for what. */
export interface StackLock {
  /** The target whose work holds the stack. */
  target: string;
  /** An `operation` (read, decide, apply) or a background `read` of the current value. */
  kind: 'operation' | 'read' | 'drift';
}

/** What the scheduler needs to know about a waiting target when it picks. */
export interface Candidate {
  /** The target's stack key (`TargetConfig.stackKey`). */
  stack: string;
  /** The earliest instant (epoch ms) it may start. */
  readyAt: number;
}

/**
 * Ready queue, stack locks and the concurrency budget.
 *
 * Rules: only the engine calls it, from its own (synchronous) pump; it never awaits anything.
 * Every successful `pick` or `acquire` must be matched by exactly one `release`.
 */
export class Scheduler {
  readonly #concurrency: number;
  readonly #clock: Clock;
  readonly #wake: () => void;
  /** Waiting targets in arrival order (a Set keeps insertion order). */
  readonly #waiting = new Set<string>();
  readonly #locks = new Map<string, StackLock>();
  #active = 0;
  #timer: unknown = null;
  #timerAt = Number.POSITIVE_INFINITY;

  /** `wake` is called when a deferred target's deadline has come: the engine should pump. */
  constructor(opts: { concurrency: number; clock: Clock; wake: () => void }) {
    this.#concurrency = Math.max(1, opts.concurrency);
    this.#clock = opts.clock;
    this.#wake = opts.wake;
  }

  /** How many operations and reads hold a slot now. */
  get active(): number {
    return this.#active;
  }

  /** True when no slot is free. */
  get full(): boolean {
    return this.#active >= this.#concurrency;
  }

  /** Names of the waiting targets, in FIFO order. */
  waiting(): string[] {
    return [...this.#waiting];
  }

  /** Puts a target at the back of the queue; a target already waiting keeps its place. */
  offer(name: string): void {
    this.#waiting.add(name);
  }

  /** Who holds a stack now, if anyone. */
  lockOf(stack: string): StackLock | undefined {
    return this.#locks.get(stack);
  }

  /**
   * Picks the targets to start now, first come first served. `candidate(name)` describes a
   * waiting target, or returns null when it has nothing to run (it then leaves the queue).
   * Each pick leaves the queue, holds its stack as an `operation` and takes a slot. Targets
   * deferred to a later instant keep their place, and a timer is armed for the earliest.
   */
  pick(candidate: (name: string) => Candidate | null): string[] {
    const now = this.#clock.now();
    const picked: string[] = [];
    let earliest = Number.POSITIVE_INFINITY;
    for (const name of this.#waiting) {
      const c = candidate(name);
      if (c === null) {
        this.#waiting.delete(name);
        continue;
      }
      if (c.readyAt > now) {
        earliest = Math.min(earliest, c.readyAt);
        continue;
      }
      if (this.full || this.#locks.has(c.stack)) continue;
      this.#waiting.delete(name);
      this.#hold(c.stack, { target: name, kind: 'operation' });
      picked.push(name);
    }
    this.#arm(earliest);
    return picked;
  }

  /** Takes a slot and a stack outside the queue (background reads); false when either is busy. */
  acquire(stack: string, lock: StackLock): boolean {
    if (this.full || this.#locks.has(stack)) return false;
    this.#hold(stack, lock);
    return true;
  }

  /** Frees a stack and its slot. */
  release(stack: string): void {
    if (this.#locks.delete(stack)) this.#active -= 1;
  }

  /** Cancels the wake-up timer (drain: nothing new will start). */
  stop(): void {
    this.#arm(Number.POSITIVE_INFINITY);
  }

  #hold(stack: string, lock: StackLock): void {
    this.#locks.set(stack, lock);
    this.#active += 1;
  }

  #arm(at: number): void {
    if (at === this.#timerAt) return;
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#timerAt = at;
    if (at === Number.POSITIVE_INFINITY) return;
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = null;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.#wake();
    }, at - this.#clock.now());
  }
}
