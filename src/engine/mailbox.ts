/**
 * A target's mailbox: its two pending slots (queued, running), kept in memory as a mirror of the
 * store's, and a queue that applies every change to them one at a time.
 *
 * Why one at a time: coalescing reads the queued slot and writes it back. Two intents merged
 * concurrently would both start from the same slot and one would be lost; and the store must
 * see `enqueue`, `startOperation` and `finishOperation` in the order the mailbox applied them.
 *
 * Why write first: the in-memory slot changes only after the store accepted the new one, so a
 * store failure leaves the mailbox exactly as it was ("acknowledged means durable", and nothing
 * runs that was not acknowledged).
 */
import { coalesce, mergePending, type CoalesceResult } from '../policy/coalesce.js';
import type { Intent, PendingIntent } from '../types.js';

/** Persists a slot change; rejects (StoreUnavailableError) when the store could not. */
export type Persist<T> = (value: T) => Promise<void>;

/**
 * Rules: only the engine calls it. Every method waits for the previous ones to settle, then
 * awaits only its `persist` callback (the store); none may be called from inside another's
 * `persist` (it would wait for itself).
 */
export class Mailbox {
  #queued: PendingIntent | null = null;
  #running: PendingIntent | null = null;
  #tail: Promise<unknown> = Promise.resolve();

  /** The pending intent waiting to run, if any. */
  get queued(): PendingIntent | null {
    return this.#queued;
  }

  /** The pending intent being applied now, if any. */
  get running(): PendingIntent | null {
    return this.#running;
  }

  /** Merges an intent into the queued slot once `persist` stored the result. */
  accept(intent: Intent, current: number | null, now: string, persist: Persist<PendingIntent>): Promise<CoalesceResult> {
    return this.#serial(async () => {
      const result = coalesce(this.#queued, intent, current, now);
      await persist(result.pending);
      this.#queued = result.pending;
      return result;
    });
  }

  /** Moves the queued intent to the running slot once stored; null when nothing is queued. */
  take(persist: Persist<PendingIntent>): Promise<PendingIntent | null> {
    return this.#serial(async () => {
      const pending = this.#queued;
      if (pending === null) return null;
      await persist(pending);
      this.#queued = null;
      this.#running = pending;
      return pending;
    });
  }

  /**
   * Records on the running slot the value about to be applied (see `PendingIntent.applying`),
   * in turn with the mailbox's other writes.
   */
  markApplying(applying: { from: number | null; to: number }, persist: Persist<PendingIntent>): Promise<void> {
    return this.#serial(async () => {
      if (this.#running === null) return;
      const marked = { ...this.#running, applying };
      await persist(marked);
      this.#running = marked;
    });
  }

  /**
   * Ends the running operation. `retry` (the running intent with its backoff) goes back to the
   * queue, merged with what arrived meanwhile; `persist` gets that requeued intent (or null).
   * Like every other change, the slots move only once `persist` succeeded: when it fails the
   * operation still holds the running slot, here as in the store, and the caller writes again.
   */
  finish(retry: PendingIntent | null, current: number | null, persist: Persist<PendingIntent | null>): Promise<PendingIntent | null> {
    return this.#serial(async () => {
      const requeue = retry === null ? null : this.#queued === null ? retry : mergePending(retry, this.#queued, current);
      await persist(requeue);
      this.#running = null;
      if (requeue !== null) this.#queued = requeue;
      return requeue;
    });
  }

  /**
   * Loads the slots found in the store at start. A running intent there was cut off by a crash:
   * it goes back to the queue (merged with anything queued after it) to run again, once
   * `persist` stored that.
   */
  recover(slots: { queued: PendingIntent | null; running: PendingIntent | null }, current: number | null, persist: Persist<PendingIntent>): Promise<void> {
    return this.#serial(async () => {
      const { queued, running } = slots;
      if (running === null) {
        this.#queued = queued;
        return;
      }
      // A running intent that carries `applying` keeps it: the operation then resumes it.
      const merged = queued === null ? running : mergePending(running, queued, current);
      await persist(merged);
      this.#queued = merged;
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    // The queue moves on whatever the outcome; the caller gets the rejection.
    this.#tail = run.catch(() => undefined);
    return run;
  }
}
