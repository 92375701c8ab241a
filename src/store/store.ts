/**
 * The store: where PulumiScale keeps what must survive a crash — every accepted operator command
 * (queued in order until the event that records it), every active signal (firing alert), the
 * running operation of each target, each target's durable state, the scaling history, and the
 * delivery ids seen (replay protection).
 *
 * Why one interface: "acknowledged means durable" (DESIGN.md). A source answers 2xx only after
 * its write resolved, so the embedded SQLite store and the PostgreSQL one must give the same
 * guarantees; `test/unit/store-conformance.ts` is the suite every implementation passes.
 *
 * Rules of the contract:
 * - Only the engine writes; sources reach the store through the engine (and `rememberDelivery`
 *   directly); the HTTP API reads.
 * - Every method either completes durably or rejects with StoreUnavailableError; callers map
 *   that to 503 so senders retry. No method blocks on anything but the database.
 * - Writes that must go together are one call and atomic: a command and its audit record; a
 *   delivery's signal changes and its events; an operation's end, the events it records, the
 *   commands it consumed and the target's new record.
 * - Commands come back in the order they were added (per target). A consumed command is gone
 *   from the queue; its audit record stays (trimmed by count).
 * - A repeated command or event id is refused with StoreUnavailableError and changes nothing.
 * - The history is bounded per target (`historyLimit`) and in total (`historyTotalLimit`).
 * - A store used before `init` or after `close` rejects with StoreUnavailableError; `init`
 *   twice is harmless.
 * - Plain SQL only: every statement must carry to PostgreSQL unchanged in meaning.
 * - The engine's own writes about a target (an operation's start and end, its record, a fire,
 *   an approval's decision, a skip) may carry a {@link Fence}; a store shared by replicas
 *   refuses them whole with LeaseLostError when the fence no longer holds. Writes of inputs
 *   (alert deliveries, commands, pauses) are never fenced: any replica takes any request.
 */
import type { Approval, ApprovalStatus, Command, Pause, RunningOperation, ScalingEvent, Signal, SignalKey, TargetRecord } from '../types.js';

/**
 * A write's proof that its replica still holds the stack the write is about (several replicas
 * on one PostgreSQL). A store that takes it checks, in the write's own transaction, that the
 * lease of `stack` is held by `owner` at `epoch` and not expired in the database's time, and
 * otherwise refuses the whole write with LeaseLostError. A store of one daemon (SQLite) has no
 * leases and ignores it.
 */
export interface Fence {
  /** The stack's key, as the lease names it: backend, project and stack name. */
  stack: string;
  /** The replica id. */
  owner: string;
  /** The epoch the replica acquired the lease at. */
  epoch: number;
}

/**
 * Names the notification destinations an event goes to (the `notifications` config). The store
 * is given it so that an event and its outbox messages are written in one transaction: a crash
 * can lose neither without the other. It must be pure and fast (it runs inside the write).
 */
export type OutboxRouter = (event: ScalingEvent) => readonly string[];

/** A message waiting in the outbox for one destination. */
export interface OutboxMessage {
  /** Its place in the outbox: increasing in the order messages were added. */
  seq: number;
  destination: string;
  /** What it tells. */
  event: ScalingEvent;
  /** When it was added, ISO-8601 UTC. */
  createdAt: string;
  /** Failed attempts so far. */
  attempts: number;
  /** Not to be sent before this instant (ISO-8601 UTC), or null: at once. */
  notBefore: string | null;
}

/** What is written with an approval's decision. */
export interface ApprovalDecision {
  event?: ScalingEvent;
  record?: TargetRecord;
  consumed?: string[];
}

/** A page of approvals. */
export interface ApprovalQuery {
  /** Only approvals in this status. */
  status?: ApprovalStatus;
  /** At most this many, newest first. */
  limit: number;
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

/** What one delivery (or one expiry sweep) changes about signals, with the events it records. */
export interface SignalChange {
  /** Signals to insert or replace (keyed by target and id). */
  upsert: Signal[];
  /** Signals that ended; an absent one is no error. */
  end: SignalKey[];
  /** Events to append with them (resolved or refused alerts). */
  events: ScalingEvent[];
}

/** One handled fire time of a point schedule. */
export interface ScheduleFire {
  target: string;
  /** The schedule's name. */
  schedule: string;
  /** The fire time (ISO-8601 UTC). */
  at: string;
  /** Acted on, or found too late (past its `startingDeadline`). */
  outcome: 'fired' | 'missed';
}

/** How an operation ended, written at once. */
export interface OperationEnd {
  /** The events it records, in order (a cleared lock, then its decision); may be empty. */
  events: ScalingEvent[];
  /** The target's record afterwards. */
  record: TargetRecord;
  /** The commands it consumed (removed from the queue). */
  consumed: string[];
  /** Approvals it requested or used up, saved (inserted or replaced by id) with the rest. */
  approvals?: Approval[];
}

export interface Store {
  /** Opens the database and creates or migrates its schema. Called once before any other method. */
  init(): Promise<void>;
  /** Closes the database. Safe to call twice. */
  close(): Promise<void>;

  /** Queues an operator command at the end of its target's queue (and keeps its audit record), atomically. */
  addCommand(command: Command, fence?: Fence): Promise<void>;
  /** Every target's queued commands, in the order they were added. */
  loadCommands(): Promise<Map<string, Command[]>>;

  /** Applies one delivery's signal changes and appends its events, atomically. */
  applySignals(change: SignalChange): Promise<void>;
  /** Every active signal, in arrival order (when each was first stored; a refresh keeps its place). */
  loadSignals(): Promise<Signal[]>;

  /** Sets the target's running slot (overwrites it): an operation starts. */
  startOperation(target: string, running: RunningOperation, fence?: Fence): Promise<void>;
  /** Overwrites the running slot only when there is one (to record `applying`); a no-op otherwise. */
  markApplying(target: string, running: RunningOperation, fence?: Fence): Promise<void>;
  /**
   * Ends an operation atomically: clears the running slot, appends the events, removes the
   * consumed commands, saves the target record. Also how a cut-off operation found at start is
   * dropped (no events, nothing consumed).
   */
  finishOperation(target: string, end: OperationEnd, fence?: Fence): Promise<void>;
  /** Every target's running slot, for recovery at start. */
  loadRunning(): Promise<Map<string, RunningOperation>>;

  /**
   * Records that a point schedule's fire time was handled, with what it makes (the command it
   * queues when it fires, the event it records), atomically, once: resolves false, writing
   * nothing, when that fire (target, schedule, instant) was already recorded. This is what makes
   * a point fire once per fire time whatever restarts (or, later, replicas) happen.
   */
  claimFire(fire: ScheduleFire, made: { command: Command | null; event: ScalingEvent | null }, fence?: Fence): Promise<boolean>;
  // A store may forget a schedule's fires a day older than its newest: only the newest matters
  // for catching up, and a fire that old cannot be claimed again (it is past any deadline).

  /** The latest handled fire of every (target, schedule), for catching up at start. */
  lastFires(): Promise<ScheduleFire[]>;

  /** Saves a target's durable state. */
  saveTarget(record: TargetRecord, fence?: Fence): Promise<void>;
  /** Every saved target record. */
  loadTargets(): Promise<Map<string, TargetRecord>>;

  /** Appends an event that ends no operation (an ignored alert, a skipped evaluation). */
  appendEvent(event: ScalingEvent, fence?: Fence): Promise<void>;
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

  // The outbox: every event is offered to the store's OutboxRouter as it is appended (by any
  // method), and gets one message per destination named, in the same transaction. Messages of
  // one destination come back in the order they were added; the notifier removes each once
  // delivered or dropped. Decided approvals beyond the newest 1,000 may be forgotten.

  /**
   * The oldest message of `destination`, or null when none waits. `attemptMs` is how long the
   * caller may take to deliver it (its post's timeout): a store that several replicas share
   * keeps the message from the others for at least that long.
   */
  nextMessage(destination: string, attemptMs?: number): Promise<OutboxMessage | null>;
  /** Removes a message (delivered, or dropped); an absent one is no error. */
  removeMessage(seq: number): Promise<void>;
  /** Records a failed attempt: the attempts so far and when to try next (ISO-8601 UTC). */
  deferMessage(seq: number, attempts: number, notBefore: string): Promise<void>;
  /** How many messages wait, per destination (destinations with none are absent). */
  countMessages(): Promise<Map<string, number>>;
  /**
   * Removes the messages of every destination not in `keep` (one no longer configured: nothing
   * would ever send them); resolves with how many went, per destination.
   */
  dropMessagesExcept(keep: readonly string[]): Promise<Map<string, number>>;

  /**
   * Saves an approval (inserted or replaced by id) with, atomically, the event that records its
   * decision, the target's record afterwards (a rejection starts a cooldown) and the commands
   * it consumed (of the approval's target; an id no longer queued is no error).
   */
  saveApproval(approval: Approval, also?: ApprovalDecision, fence?: Fence): Promise<void>;
  /** One approval by id, or null. */
  getApproval(id: string): Promise<Approval | null>;
  /** Approvals, newest request first; limit capped at 1000. */
  listApprovals(query: ApprovalQuery): Promise<Approval[]>;
}

/** A replica's hold on one stack: only the holder acts on it. */
export interface Lease {
  /** The stack's key: backend, project and stack name. */
  stack: string;
  /** The holding replica's id. */
  owner: string;
  /** Rises by one with every acquisition, by any replica (the same one after an expiry too). */
  epoch: number;
  /** When it lapses unless renewed, in the database's time (ISO-8601 UTC). */
  expiresAt: string;
}

/** A replica as the cluster table knows it. */
export interface ReplicaSeen {
  id: string;
  /** Its last heartbeat, in the database's time (ISO-8601 UTC). */
  lastSeen: string;
  /** When it started (ISO-8601 UTC, its own clock). */
  startedAt: string;
  /** It is draining: it takes no leases and hands over the ones it has. */
  draining: boolean;
}

/**
 * What a store shared by several replicas adds (PostgreSQL): the replica table, per-stack
 * leases whose expiry is the database's time (never a replica's clock), and word of inputs
 * written by other replicas.
 *
 * Rules:
 * - Every time is the database's `now()`; a replica's clock is never compared with another's.
 * - A lease is free when it has no row, was released, or expired (`expires_at <= now()`);
 *   acquiring it sets the owner, `expires_at = now() + ttl`, and raises the epoch by one.
 * - Renewal extends only a lease still held at that epoch and not expired.
 * - Every write that appends an input for a target (a command, a delivery's signals, a pause,
 *   an approval's decision) tells the watchers, after its commit, the target's name.
 */
export interface ClusterStore {
  /** Records that replica `self` is alive now; resolves with the replicas seen within `ttlMs` (itself included), oldest first. */
  heartbeat(self: { id: string; startedAt: string; draining: boolean }, ttlMs: number): Promise<ReplicaSeen[]>;
  /**
   * Acquires, for `owner`, up to `max` of `stacks` whose lease is free, trying them in the order
   * given; resolves with those acquired. Two replicas acquiring at once never both get one.
   */
  acquireLeases(owner: string, stacks: readonly string[], max: number, ttlMs: number): Promise<Lease[]>;
  /** Extends the leases of `held` still held at their epoch; resolves with those extended (a lease missing from the answer is lost). */
  renewLeases(held: readonly Fence[], ttlMs: number): Promise<Lease[]>;
  /** Gives up the leases of `held` still held at their epoch: free at once for any replica. */
  releaseLeases(held: readonly Fence[]): Promise<void>;
  /** Every lease row that is held (not expired, not released), by stack. */
  listLeases(): Promise<Lease[]>;
  /**
   * Calls `listener` with a target's name after a write of an input for it committed through
   * another store (another replica's; this store's own writes are left out: its caller knows
   * them). `lost` is called when the watch's connection fails:
   * the caller reloads what it may have missed and watches again. Resolves with a stop function.
   */
  watch(listener: (target: string) => void, lost: (err: Error) => void): Promise<() => Promise<void>>;
  /**
   * Sets (or with null, lifts) a target's pause alone, creating its record when there is none:
   * the rest of the record is the holder's. A fenced record write keeps the stored pause, so
   * the holder never writes back a pause it has not heard of yet.
   */
  savePause(target: string, pause: Pause | null): Promise<void>;
  /**
   * Writes a person's decision on an approval, taken by a replica that does not hold its stack:
   * only while the stored approval is still pending, atomically; resolves false, writing
   * nothing, when it is not (decided, expired, applied or superseded meanwhile). Tells the
   * watchers, as for any input.
   */
  decideApproval(decided: Approval): Promise<boolean>;
  /**
   * Whether this store's writes of inputs tell the other replicas (on at first). A replica that
   * sees no other turns it off: PostgreSQL lets one notifying transaction commit at a time,
   * database-wide (a lock held through the commit's flush), which caps intake. It must be on
   * again before the replica gives any stack up to another (lease-keeper.ts does so at the beat
   * that first sees one), since the holder of a stack hears of inputs only through it.
   */
  notifyOthers(on: boolean): void;
}

/** Whether a store is shared by replicas. */
export function isClusterStore(store: Store): store is Store & ClusterStore {
  return typeof (store as Partial<ClusterStore>).acquireLeases === 'function';
}
