/**
 * The store: where PulumiScale keeps what must survive a crash — every accepted intent, the one
 * queued and the one running pending intent of each target, each target's durable state, the
 * scaling history, and the delivery ids seen (replay protection).
 *
 * Why one interface: "acknowledged means durable" (DESIGN.md). A source answers 2xx only after
 * `enqueue` resolved, so the embedded SQLite store and a future PostgreSQL one must give the same
 * guarantees; `test/unit/store-conformance.ts` is the suite every implementation passes.
 *
 * Rules of the contract:
 * - Only the engine writes pending intents and target records; sources call `enqueue` through
 *   the engine and `rememberDelivery` directly; the HTTP API reads.
 * - Every method either completes durably or rejects with StoreUnavailableError; callers map
 *   that to 503 so senders retry. No method blocks on anything but the database.
 * - Writes that must go together (`enqueue`, `startOperation`, `finishOperation`) are atomic.
 * - Callers send no concurrent writes for one target (the engine writes one at a time per
 *   target): `startOperation` empties the queued slot, so an overlapping `enqueue` could be lost.
 * - A repeated intent or event id is refused with StoreUnavailableError and changes nothing.
 * - A store used before `init` or after `close` rejects with StoreUnavailableError; `init`
 *   twice is harmless.
 * - History is bounded twice, both limits set when the store is built: an event is trimmed
 *   once the per-target limit of newer events of its target were recorded, or the total limit
 *   of newer events of any target (counting insertions, so a store may hold fewer). Trimming
 *   happens on insert. `listEvents` and `lastEvents` see only what is kept (a target whose
 *   every event was trimmed has no last event), and such a target may record again.
 */
import type { Intent, PendingIntent, ScalingEvent, TargetRecord } from '../types.js';

/** The two pending slots of a target. */
export interface PendingSlots {
  /** Waiting to run (coalesced). */
  queued: PendingIntent | null;
  /** Being applied now (or was, when the daemon stopped). */
  running: PendingIntent | null;
}

/** A page of history. */
export interface EventQuery {
  /** Only this target's events. */
  target?: string;
  /** At most this many, newest first (the store may cap it). */
  limit: number;
  /** Only events strictly older than this event id's position (for paging). */
  before?: string;
}

export interface Store {
  /** Opens the database and creates or migrates its schema. Called once before any other method. */
  init(): Promise<void>;
  /** Closes the database. Safe to call twice. */
  close(): Promise<void>;

  /**
   * Records an accepted intent and the target's new queued pending intent, atomically.
   * `queued` is the result of coalescing `intent` into what was queued before.
   */
  enqueue(intent: Intent, queued: PendingIntent): Promise<void>;
  /** Moves the queued pending intent to the running slot (the queued slot becomes empty; the running slot is overwritten). */
  startOperation(target: string, running: PendingIntent): Promise<void>;
  /**
   * Overwrites the running slot only (the queued slot is left as it is), to record what an
   * operation is about to apply (`PendingIntent.applying`). A no-op when no operation runs.
   */
  markApplying(target: string, running: PendingIntent): Promise<void>;
  /**
   * Ends an operation atomically: clears the running slot, appends the event, saves the target
   * record. With `requeue`, the given intent REPLACES the queued slot (the engine merges
   * whatever was queued meanwhile before it calls this). `event: null` with `requeue` is also
   * how crash recovery moves a running slot back into the queue.
   */
  finishOperation(
    target: string,
    outcome: { event: ScalingEvent | null; record: TargetRecord; requeue?: PendingIntent | null },
  ): Promise<void>;
  /** Every target's pending slots, for recovery at start. */
  loadPending(): Promise<Map<string, PendingSlots>>;

  /** Saves a target's durable state. */
  saveTarget(record: TargetRecord): Promise<void>;
  /** Every saved target record. */
  loadTargets(): Promise<Map<string, TargetRecord>>;

  /** Appends an event that ends no operation (an ignored alert, a refused intent). */
  appendEvent(event: ScalingEvent): Promise<void>;
  /** History, newest first by insertion order; limit capped at 1000; an unknown `before` id gives an empty page. */
  listEvents(query: EventQuery): Promise<ScalingEvent[]>;
  /** The newest event of each target. */
  lastEvents(): Promise<Map<string, ScalingEvent>>;

  /**
   * Remembers a delivery id (e.g. an SNS MessageId) until `expiresAt` (ISO). Resolves true the
   * first time, false when the id is already remembered and not expired (a replay; the expiry
   * is not extended). Expired means `expiresAt <= now` on the store's clock.
   */
  rememberDelivery(key: string, expiresAt: string): Promise<boolean>;
  /** Forgets a delivery id, when the request it came with was not accepted after all. */
  forgetDelivery(key: string): Promise<void>;
}
