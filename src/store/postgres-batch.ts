/**
 * Group commit of alert deliveries for the PostgreSQL store: the deliveries that arrive while
 * one write is on its way are written together by the next, as one statement.
 *
 * Why: a delivery without events is one statement, but each is then a round trip and a commit
 * of its own, and under load (50 senders at once) the commits, not the work, were the limit:
 * about a tenth of what a bare route on the same machine answers. One statement for what arrived
 * meanwhile keeps "acknowledged means durable" (every caller resolves after the commit that
 * holds its signals) at a fraction of the commits.
 *
 * Order: one write at a time, in arrival order (two at a time measured no faster: smaller
 * batches, more round trips). A delivery joins the batch being gathered only when it touches
 * none of the signals already in it, and a batch never starts while a write touching the same
 * signals is on its way; so a signal ended and sent again (or the reverse) is written in the
 * order it was received, whatever MAX_WRITES says.
 */
import type { Signal, SignalKey } from '../types.js';

/** Writes one batch: the signals to upsert and the ones to end (disjoint keys across deliveries). */
export type WriteSignals = (upsert: readonly Signal[], end: readonly SignalKey[]) => Promise<void>;

/** At most this many deliveries share a write. */
export const MAX_BATCH = 512;

/** Writes on their way at once, at most (see the order above). */
export const MAX_WRITES = 1;

interface Batch {
  upsert: Signal[];
  end: SignalKey[];
  keys: Set<string>;
  deliveries: number;
  settle: { resolve: () => void; reject: (err: unknown) => void }[];
}

export class SignalBatcher {
  readonly #write: WriteSignals;
  readonly #waiting: Batch[] = [];
  readonly #writing = new Set<Batch>();
  /** A turn is being waited for before the first write (see #soon). */
  #gathering = false;
  /** Callers of `idle`, told when nothing waits or is written. */
  #idle: (() => void)[] = [];

  constructor(write: WriteSignals) {
    this.#write = write;
  }

  /** Resolves once a write holding this delivery's signals committed; rejects with that write's error. */
  add(upsert: readonly Signal[], end: readonly SignalKey[]): Promise<void> {
    const keys = [...upsert, ...end].map((k) => `${k.target}\0${k.id}`);
    const last = this.#waiting.at(-1);
    const joins = last !== undefined && last.deliveries < MAX_BATCH && !keys.some((k) => last.keys.has(k));
    const batch: Batch = joins ? last : { upsert: [], end: [], keys: new Set(), deliveries: 0, settle: [] };
    if (!joins) this.#waiting.push(batch);
    batch.upsert.push(...upsert);
    batch.end.push(...end);
    for (const k of keys) batch.keys.add(k);
    batch.deliveries += 1;
    const written = new Promise<void>((resolve, reject) => batch.settle.push({ resolve, reject }));
    this.#soon();
    return written;
  }

  /** Resolves once every delivery added so far was written (or refused). */
  idle(): Promise<void> {
    if (this.#waiting.length === 0 && this.#writing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Starts writes after one turn: the deliveries that arrive together share the first one too. */
  #soon(): void {
    if (this.#gathering) return;
    this.#gathering = true;
    setImmediate(() => {
      this.#gathering = false;
      this.#start();
    });
  }

  /** Starts the waiting batches that may go now, oldest first, never overtaking one. */
  #start(): void {
    for (;;) {
      const next = this.#waiting[0];
      if (next === undefined || this.#writing.size >= MAX_WRITES) break;
      if ([...this.#writing].some((w) => [...next.keys].some((k) => w.keys.has(k)))) break;
      this.#waiting.shift();
      this.#writing.add(next);
      void this.#run(next);
    }
    if (this.#waiting.length === 0 && this.#writing.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #run(batch: Batch): Promise<void> {
    try {
      await this.#write(batch.upsert, batch.end);
      for (const s of batch.settle) s.resolve();
    } catch (err) {
      for (const s of batch.settle) s.reject(err);
    } finally {
      this.#writing.delete(batch);
      this.#start();
    }
  }
}
