/**
 * The engine: the only owner of ordering, concurrency, timers and cooldown bookkeeping. It keeps,
 * per target, what is true now — the queued operator commands, the active signals (firing
 * alerts), the pause, the cooldowns — and decides from that, level-triggered: a target is
 * evaluated when its inputs change, when a cooldown or pause ends, and every
 * `evaluationInterval`, so a missed evaluation is simply made again.
 *
 * How the parts fit:
 * - the HTTP layer hands it commands (`command`), signal changes (`signals`) and pauses; each is
 *   stored before memory changes and before the caller is answered;
 * - the {@link Scheduler} holds the targets that may have work, picks which start (stack locks,
 *   slots, FIFO) and wakes the engine at the earliest deadline (a cooldown's or pause's end, a
 *   retry's backoff);
 * - {@link runOperation} reads the present, plans and applies, and returns the outcome, which
 *   the engine stores (`finishOperation`) and then publishes on the bus.
 *
 * The engine never blocks a caller on Pulumi: its methods wait for the store only, operations
 * run in the background. Its `pump` is synchronous and runs whenever something may have become
 * runnable.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { TargetConfig } from '../config/schema.js';
import { LeaseLostError, OperationInterruptedError, OperationTimeoutError, PulumiScaleError } from '../errors.js';
import type { EventBus } from '../observe/bus.js';
import { planBounds } from '../policy/bounds.js';
import { keyValues } from '../policy/derived.js';
import { planSignals, type SignalPlan } from '../policy/signals.js';
import { boundsAt, nextChange } from '../schedule/index.js';
import { pruneRecommendations } from '../policy/stabilization.js';
import type { Executor } from '../pulumi/executor.js';
import { isClusterStore, type ClusterStore, type Fence, type ScheduleFire, type SignalChange, type Store } from '../store/store.js';
import type { Actor, Approval, Command, Pause, RunningOperation, ScalingEvent, Signal, TargetRecord, TargetState } from '../types.js';
import { closeApproval, isAutomatic } from './approvals.js';
import { checkDrift } from './drift.js';
import type { Clock } from './clock.js';
import { backoffDelay, runOperation, type OperationDeps, type OperationOutcome, type RetryPolicy } from './operation.js';
import { Scheduler } from './scheduler.js';
import { boundsSkipEvent, errorOf, missedCommandEvent, readFailureEvent, repeatsNewest, skipEvent, targetMessage } from './engine-events.js';
import { pointClaims, pointsOf, type PointClaim } from './schedule-points.js';
import { SignalLedger } from './signal-ledger.js';
import { soleOwnership, type Ownership } from './ownership.js';
import { newRuntime, serial, stateOf, type TargetRuntime } from './target-runtime.js';
import { Waiters } from './waiters.js';

/** What the engine is built from. */
export interface EngineOptions {
  /** Durable commands, signals, running slots, target records and history. */
  store: Store;
  /** The only way to Pulumi. */
  executor: Executor;
  /** The configured targets, in config order (the order `states()` lists them). */
  targets: TargetConfig[];
  /** Time and timers (evaluation, retry backoff, drain timeout, cooldowns). */
  clock: Clock;
  /** Where outcomes are published for metrics, logs and notifications. */
  bus: EventBus;
  logger: Logger;
  /** Preview every change instead of applying it (`engine.dryRun`). */
  dryRun: boolean;
  /** How many stacks may run an operation at once (`engine.concurrency`). */
  concurrency: number;
  /** Backoff for retryable failures (`engine.retry`); also paces rewrites of an operation's end. */
  retry: RetryPolicy;
  /** How long one operation may run before it is cancelled (`engine.operationTimeout`), ms. */
  operationTimeout: number;
  /** How long a cancelled CLI may take to stop (`engine.cancelGrace`), ms; a drain waits this long, plus a margin. */
  cancelGrace: number;
  /** How often targets with active signals are evaluated again (`engine.evaluationInterval`), ms. */
  evaluationInterval: number;
  /** New event ids; UUIDs by default. */
  newId?: () => string;
  /**
   * Which stacks this daemon acts on (ownership.ts): all of them by default; the leased ones
   * when replicas share the store, whose inputs the engine then reloads from it.
   */
  ownership?: Ownership;
}

/**
 * The engine. The HTTP layer calls `command`, `signals`, `pause`, `record`, `state`, `states`
 * and `isDraining`; the daemon calls `start` once and `drain` on shutdown.
 */
export class Engine {
  readonly #store: Store;
  readonly #bus: EventBus;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #retry: RetryPolicy;
  readonly #operationTimeout: number;
  readonly #cancelGrace: number;
  readonly #evaluationInterval: number;
  readonly #deps: OperationDeps;
  readonly #targets = new Map<string, TargetRuntime>();
  readonly #scheduler: Scheduler;
  /** The running operations' cancel switches, by target. */
  readonly #operations = new Map<string, AbortController>();
  /** Targets whose current value has not been read since start (background reads). */
  readonly #unread = new Set<string>();
  readonly #waiters: Waiters;
  #started: Promise<void> | null = null;
  #loaded = false;
  #draining = false;
  /** Set once a drain gave up waiting: running operations are being cancelled; write nothing more for them. */
  #interrupting = false;
  /** Calls between their draining check and their store write; a drain waits for them. */
  #submitting = 0;
  #tick: unknown = null;
  /** Targets whose signals changed, evaluated together at the next turn (see #evaluateSoon). */
  readonly #toEvaluate = new Set<TargetRuntime>();
  #evaluated: Promise<void> | null = null;
  /** An end of expired signals is on its way (see #endExpiredSoon). */
  #ending = false;
  /** An end of expired signals is being written (see #endExpired). */
  #endingExpired = false;
  /** Which deliveries of a signal are stale (signal-ledger.ts). */
  readonly #ledger = new SignalLedger();
  /** Targets whose drift check is due, waiting for their stack to be free. */
  readonly #driftDue = new Set<string>();
  #scheduleTimer: unknown = null;
  /** When the schedule timer is due (epoch ms); the periodic tick catches up if it is late. */
  #scheduleAt: number | null = null;
  /** Per `target\0schedule`: the instant up to which its point fires were handled (epoch ms). */
  readonly #pointsHandled = new Map<string, number>();
  readonly #ownership: Ownership;
  /** The store as replicas share it, when they do (else null: one daemon alone). */
  readonly #cluster: (Store & ClusterStore) | null;
  /** Targets whose inputs another replica may have written, reloaded together (see #reloadSoon). */
  readonly #toReload = new Set<TargetRuntime>();
  #reloading: Promise<void> | null = null;

  constructor(opts: EngineOptions) {
    this.#store = opts.store;
    this.#bus = opts.bus;
    this.#clock = opts.clock;
    this.#logger = opts.logger;
    this.#retry = opts.retry;
    this.#operationTimeout = opts.operationTimeout;
    this.#cancelGrace = opts.cancelGrace;
    this.#evaluationInterval = opts.evaluationInterval;
    this.#deps = { executor: opts.executor, clock: opts.clock, logger: opts.logger, dryRun: opts.dryRun, retry: opts.retry, newId: opts.newId ?? randomUUID };
    this.#waiters = new Waiters(opts.clock);
    this.#ownership = opts.ownership ?? soleOwnership('local');
    this.#cluster = this.#ownership.shared && isClusterStore(opts.store) ? opts.store : null;
    this.#scheduler = new Scheduler({ concurrency: opts.concurrency, clock: opts.clock, wake: () => this.#pump() });
    for (const config of opts.targets) this.#targets.set(config.name, newRuntime(config));
  }

  /**
   * Loads what the store holds, drops the running slots of operations that had not begun to
   * apply (their commands are still queued), keeps the others to finish, starts the periodic
   * evaluation and reads every target's current value in the background. Rejects when the store
   * cannot be read. Call once; a second call returns the first one's promise.
   */
  start(): Promise<void> {
    this.#started ??= this.#load();
    return this.#started;
  }

  /**
   * Queues an operator command at the end of its target's queue once the store holds it.
   * Resolves with how many commands are queued; rejects with PS_DRAINING while draining,
   * PS_TARGET_UNKNOWN for an unknown target, or the store's StoreUnavailableError.
   */
  async command(command: Command): Promise<{ queued: number }> {
    const t = await this.#accepting(command.target);
    this.#submitting += 1;
    try {
      await serial(t, async () => {
        await this.#store.addCommand(command);
        t.commands.push(command);
      });
      this.#bus.publish({ type: 'intent', target: t.config.name, source: command.source });
      // Its state changed (one more queued): the live stream and the status page say so.
      this.#publishTarget(t);
      this.#offer(t);
      return { queued: t.commands.length };
    } finally {
      this.#submitting -= 1;
      this.#notify();
    }
  }

  /**
   * Applies one delivery's signal changes (and records its events) once the store holds them,
   * then evaluates the targets they touch. A signal that starts or changes (direction, value)
   * makes the next decision of its target worth recording; a re-sent one only refreshes it.
   */
  async signals(change: SignalChange): Promise<void> {
    if (this.#draining) throw draining();
    await this.#ready();
    for (const name of new Set(change.upsert.map((s) => s.target))) await this.#accepting(name);
    // What the store gets is what memory keeps: stale deliveries change nothing (signal-ledger.ts).
    const accepted = this.#ledger.accept(change, (key) => this.#targets.get(key.target)?.signals.get(key.id));
    const upsert = accepted.upsert;
    this.#submitting += 1;
    try {
      await this.#store.applySignals({ ...change, upsert });
      // Memory takes the whole delivery first, then each target it touched is evaluated once: a
      // notification of thousands of alerts is one evaluation, not one per alert.
      const touched = new Set<TargetRuntime>();
      for (const s of upsert) {
        const t = this.#targets.get(s.target) as TargetRuntime;
        const before = t.signals.get(s.id);
        t.signals.set(s);
        if (before === undefined || before.direction !== s.direction || before.value !== s.value) this.#changed(t);
        touched.add(t);
      }
      for (const key of change.end) this.#ledger.ended(key);
      for (const key of change.end) {
        const t = this.#targets.get(key.target);
        // An expiry's end leaves a signal sent again since (taken here, or by a reload) as the store does.
        const held = t?.signals.get(key.id);
        if (key.lastSeen !== undefined && held !== undefined && held.lastSeen > key.lastSeen) continue;
        if (t?.signals.delete(key.id)) {
          this.#changed(t);
          touched.add(t);
        }
      }
      // A reload that read the store before this write must not undo it in memory (#reload).
      for (const name of new Set([...upsert.map((s) => s.target), ...change.end.map((k) => k.target)])) {
        const t = this.#targets.get(name);
        if (t !== undefined) t.signalWrites += 1;
      }
      for (const event of change.events) this.#published(event);
      this.#ledger.settle(accepted);
      if (touched.size > 0) await this.#evaluateSoon(touched);
    } finally {
      this.#ledger.settle(accepted);
      this.#submitting -= 1;
      this.#notify();
    }
  }

  /**
   * Evaluates the targets once the deliveries committed together have all reached memory: one
   * evaluation per target for the whole group commit, not one per delivery. Resolves after it.
   */
  #evaluateSoon(touched: Set<TargetRuntime>): Promise<void> {
    for (const t of touched) this.#toEvaluate.add(t);
    this.#evaluated ??= new Promise<void>((resolve) => {
      setImmediate(() => {
        const targets = [...this.#toEvaluate];
        this.#toEvaluate.clear();
        this.#evaluated = null;
        try {
          for (const t of targets) this.#scheduler.offer(t.config.name);
          this.#pump();
          // After the evaluation, so the gauges carry its desired value.
          for (const t of targets) this.#publishTarget(t);
        } finally {
          resolve();
        }
      });
    });
    return this.#evaluated;
  }

  /**
   * Ends (in the store, then in memory) every signal past its expiry. One end at a time: a tick
   * that comes while the last end is still being written (a slow store) would record the same
   * expiries again.
   */
  async #endExpired(): Promise<void> {
    if (this.#endingExpired) return;
    this.#endingExpired = true;
    try {
      await this.#endExpiredNow();
    } finally {
      this.#endingExpired = false;
    }
  }

  async #endExpiredNow(): Promise<void> {
    const now = this.#clock.now();
    // Among replicas a signal is ended by its stack's holder alone: another may have refreshed it.
    const expired = [...this.#targets.values()].filter((t) => this.#ownership.holds(t.stack)).flatMap((t) => t.signals.due(now));
    if (expired.length === 0) return;
    // Each expiry is said in the history, naming its signal: "why did it stop scaling?"
    const events = expired.map((s): ScalingEvent => ({
      id: this.#deps.newId(),
      target: s.target,
      at: iso(now),
      kind: 'ignored',
      from: null,
      to: null,
      reason: `${s.reason} expired: not sent again within its signalTTL`,
      source: s.source,
      intents: 0,
      durationMs: 0,
      dryRun: this.#deps.dryRun,
      evidence: { ...s.evidence, signal: s.id },
    }));
    try {
      await this.signals({ upsert: [], end: expired.map((s) => ({ target: s.target, id: s.id, lastSeen: s.lastSeen })), events });
    } catch (err) {
      this.#logger.warn({ err, expired: expired.length }, 'could not end expired signals; will try at the next evaluation');
      return;
    }
    // Another replica may have stored one of them again meanwhile, which the store kept: read
    // them back now rather than at the next evaluation.
    if (this.#ownership.shared && this.#ownership.alone !== true) this.inputsChanged([...new Set(expired.map((s) => s.target))]);
  }

  /**
   * Ends expired signals soon, once: an evaluation found some, and a flood of alerts past their
   * TTL is better ended in one write now than left to the next periodic evaluation.
   */
  #endExpiredSoon(): void {
    if (this.#ending || this.#draining) return;
    this.#ending = true;
    this.#submitting += 1;
    setImmediate(() => {
      void this.#endExpired().finally(() => {
        this.#ending = false;
        this.#submitting -= 1;
        this.#notify();
      });
    });
  }

  /** Sets (or with null, lifts) an API pause of a target once stored; resolves with its state. */
  async pause(name: string, pause: Pause | null): Promise<TargetState> {
    const t = await this.#accepting(name);
    this.#submitting += 1;
    try {
      await serial(t, async () => {
        const record = { ...t.record, pause };
        // Among replicas the rest of the record is the holder's: only the pause is written.
        if (this.#cluster !== null) await this.#cluster.savePause(name, pause);
        else await this.#store.saveTarget(record);
        t.record = record;
      });
      this.#changed(t);
      this.#offer(t);
      this.#publishTarget(t);
      return this.#stateOf(t);
    } finally {
      this.#submitting -= 1;
      this.#notify();
    }
  }

  /** Appends an event that ends no operation and publishes it. */
  async record(event: ScalingEvent): Promise<void> {
    const t = this.#targets.get(event.target);
    await this.#store.appendEvent(event, t === undefined ? undefined : this.#fence(t));
    this.#published(event);
  }

  /**
   * A person's verdict on a pending approval. Approving stores it and lets the next operation
   * apply exactly the previewed change (or ask again when the stack moved since); rejecting
   * records a skip and starts the direction's cooldown. Rejects with PS_APPROVAL_UNKNOWN or
   * PS_APPROVAL_CLOSED (already decided or expired), PS_DRAINING, or the store's error.
   */
  async decideApproval(id: string, verdict: 'approve' | 'reject', actor: Actor): Promise<Approval> {
    if (this.#draining) throw draining();
    await this.#ready();
    const t = [...this.#targets.values()].find((r) => r.approval?.id === id);
    if (t === undefined) {
      const stored = await this.#store.getApproval(id);
      if (stored === null) throw new PulumiScaleError('PS_APPROVAL_UNKNOWN', `no approval with id "${id.slice(0, 80)}"`);
      throw approvalClosed(stored);
    }
    this.#submitting += 1;
    try {
      const decided = await serial(t, async () => {
        const open = t.approval;
        if (open === null || open.id !== id || open.status !== 'pending') throw approvalClosed(open ?? (await this.#store.getApproval(id)));
        const expired = Date.parse(open.expiresAt) <= this.#clock.now();
        const decidedAt = new Date(this.#clock.now()).toISOString();
        if (this.#cluster !== null && !this.#ownership.holds(t.stack)) {
          // Taken by a replica that does not hold the stack: the decision alone, and only while
          // the approval is still pending in the store (this replica's copy may be behind). The
          // holder applies an approval, or records a rejection and its cooldown, when it hears.
          if (expired) throw approvalClosed({ ...open, status: 'expired' });
          const decided: Approval =
            verdict === 'reject' ? { ...open, status: 'rejected', decidedBy: actor, decidedAt, awaitingHolder: true } : { ...open, status: 'approved', decidedBy: actor, decidedAt };
          if (!(await this.#cluster.decideApproval(decided))) throw approvalClosed(await this.#store.getApproval(id));
          t.approval = verdict === 'approve' ? decided : null;
          return decided;
        }
        if (expired) {
          await this.#closeWhileHeld(t, open, null);
          throw approvalClosed({ ...open, status: 'expired' });
        }
        if (verdict === 'reject') return this.#closeWhileHeld(t, open, actor);
        const approved: Approval = { ...open, status: 'approved', decidedBy: actor, decidedAt };
        await this.#store.saveApproval(approved, {}, this.#fence(t));
        t.approval = approved;
        return approved;
      });
      this.#offer(t);
      return decided;
    } finally {
      this.#submitting -= 1;
      this.#notify();
    }
  }

  /** Closes a target's pending approval: rejected by `actor`, or expired (null). */
  async #closeApproval(t: TargetRuntime, id: string, actor: Actor | null): Promise<void> {
    this.#submitting += 1;
    try {
      await serial(t, async () => {
        if (t.approval?.id === id && t.approval.status === 'pending') await this.#closeWhileHeld(t, t.approval, actor);
      });
      this.#offer(t);
    } finally {
      this.#submitting -= 1;
      this.#notify();
    }
  }

  /** The write and memory change of a close, inside the target's serial queue. */
  async #closeWhileHeld(t: TargetRuntime, open: Approval, actor: Actor | null): Promise<Approval> {
    const { awaitingHolder: _recorded, ...pending } = open;
    const closed = closeApproval({ approval: pending, actor, target: t.config, record: t.record, id: this.#deps.newId(), now: this.#clock.now(), dryRun: this.#deps.dryRun });
    // The holder's write (fenced among replicas): the record it carries is the holder's to write.
    await this.#store.saveApproval(closed.approval, { event: closed.event, record: closed.record, consumed: open.commands }, this.#fence(t));
    t.record = closed.record;
    t.commands = t.commands.filter((c) => !open.commands.includes(c.id));
    t.approval = null;
    t.declined = { from: open.from, to: open.to };
    t.reported = t.changes;
    this.#published(closed.event);
    this.#publishTarget(t);
    return closed.approval;
  }

  /** One target's state, or null for a name that is not configured. */
  async state(name: string): Promise<TargetState | null> {
    const t = this.#targets.get(name);
    return t === undefined ? null : this.#stateOf(t);
  }

  /** Every target's state, in config order. */
  async states(): Promise<TargetState[]> {
    return [...this.#targets.values()].map((t) => this.#stateOf(t));
  }

  /** True once a drain has begun. */
  isDraining(): boolean {
    return this.#draining;
  }

  /**
   * Stops starting operations and waits for the running ones (and calls already past their
   * check) to finish, or for `timeoutMs` on the engine's clock. Queued commands and signals stay
   * in the store. Past `timeoutMs` the running operations are cancelled (`interrupt`) and the
   * drain waits at most `cancelGrace` and a margin more; their running slots stay in the store
   * and resume at the next start. Resolves `finished: false` when it had to cancel, `stopped:
   * false` when even that wait ran out.
   */
  async drain(timeoutMs: number): Promise<{ finished: boolean; stopped: boolean }> {
    this.#stop();
    if (await this.#waiters.until(() => this.#quiet(), timeoutMs)) return { finished: true, stopped: true };
    this.interrupt();
    return { finished: false, stopped: await this.#waiters.until(() => this.#quiet(), this.#cancelGrace + STOP_MARGIN_MS) };
  }

  /**
   * Cancels every running operation for a shutdown: their CLIs get SIGINT (SIGKILL after the
   * cancel grace), their config is restored, and nothing about them is recorded, so that their
   * running slots stay in the store and resume at the next start. Starts nothing new.
   */
  interrupt(): void {
    this.#stop();
    this.#interrupting = true;
    for (const controller of this.#operations.values()) {
      controller.abort(new OperationInterruptedError('the daemon is shutting down past engine.drainTimeout'));
    }
  }

  /**
   * Resolves when nothing is running and nothing is ready to run (a retry or a cooldown not yet
   * over is not ready). For tests and tools; it does not stop new work from arriving.
   */
  async idle(): Promise<void> {
    await this.#waiters.until(() => this.#isIdle());
  }

  async #load(): Promise<void> {
    const snapshot = await this.#snapshot();
    const all = [...this.#targets.values()];
    // Among replicas, a target's work is taken up when its stack's lease is (`acquired`); until
    // then its memory only mirrors the store, for the state served.
    await this.#adopt(all.filter((t) => this.#ownership.holds(t.stack)), snapshot);
    for (const t of all) if (!this.#ownership.holds(t.stack)) this.#mirror(t, snapshot, { whole: true });
    const { commands, running, signals } = snapshot;
    for (const name of new Set([...commands.keys(), ...running.keys(), ...signals.map((s) => s.target)])) {
      if (!this.#targets.has(name)) this.#logger.warn({ target: name }, 'commands or signals of a target no longer configured are left in the store');
    }
    this.#loaded = true;
    this.#armTick();
    await this.#onSchedules();
    this.#pump();
    this.#notify();
  }

  /**
   * What the store holds that the engine's memory mirrors; with `inputsOnly`, what a reload of
   * the inputs needs (records, commands, signals, approvals), the rest left empty.
   */
  async #snapshot(opts: { inputsOnly?: boolean } = {}): Promise<Snapshot> {
    const none = async <T>(empty: T): Promise<T> => empty;
    const [records, commands, signals, running, lastEvents, fires, pending, approved, rejected] = await Promise.all([
      this.#store.loadTargets(),
      this.#store.loadCommands(),
      this.#store.loadSignals(),
      opts.inputsOnly ? none(new Map<string, RunningOperation>()) : this.#store.loadRunning(),
      opts.inputsOnly ? none(new Map<string, ScalingEvent>()) : this.#store.lastEvents(),
      opts.inputsOnly ? none<ScheduleFire[]>([]) : this.#store.lastFires(),
      this.#store.listApprovals({ status: 'pending', limit: 1000 }),
      this.#store.listApprovals({ status: 'approved', limit: 1000 }),
      this.#cluster === null ? none<Approval[]>([]) : this.#store.listApprovals({ status: 'rejected', limit: 1000 }),
    ]);
    // Newest first in the store: each target keeps its newest open approval (one at a time).
    const open = new Map<string, Approval>();
    for (const a of [...approved, ...pending].reverse()) open.set(a.target, a);
    return { records, commands, signals, running, lastEvents, fires, open, rejected: rejected.filter((a) => a.awaitingHolder === true) };
  }

  /**
   * Takes up the work of targets this daemon now acts on (all of them at start, for one daemon;
   * those of acquired stacks, among replicas): memory from the store, then what a start does —
   * drops the running slots of operations that had not begun to apply (their commands are still
   * queued), keeps the others to finish, catches the schedules up from their last fire, and
   * reads every value. Its writes are fenced; the caller holds the targets' serial queues or
   * runs before anything else can write.
   */
  async #adopt(ts: readonly TargetRuntime[], snapshot: Snapshot): Promise<void> {
    for (const t of ts) {
      const a = snapshot.open.get(t.config.name);
      if (a !== undefined && t.config.approval === undefined) {
        // Its target no longer asks for approval: nothing will apply or expire it.
        this.#logger.warn({ target: a.target, approval: a.id }, 'an open approval of a target without approval is closed as superseded');
        await this.#store.saveApproval({ ...a, status: 'superseded' }, {}, this.#fence(t));
        snapshot.open.delete(t.config.name);
      }
    }
    // Points catch up from their last handled fire (a missed one is recorded as such).
    const names = new Set(ts.map((t) => t.config.name));
    for (const fire of snapshot.fires) if (names.has(fire.target)) this.#pointsHandled.set(`${fire.target}\0${fire.schedule}`, Date.parse(fire.at));
    for (const t of ts) {
      const name = t.config.name;
      // Taken over from another replica, which may have changed the stack since this process
      // last opened it: opened afresh (an inline stack's config seeded from its outputs again),
      // and a folder's settings file checked before the first read (#syncTakenOver).
      if (this.#ownership.shared && !this.busy(t.stack)) {
        await this.#deps.executor.forget(t.config);
        t.takenOver = true;
      }
      this.#mirror(t, snapshot, { whole: true });
      const slot = snapshot.running.get(name);
      if (slot?.applying) {
        this.#logger.warn({ target: name, applying: slot.applying }, 'an operation was cut off mid-apply; it will be finished');
        t.running = slot;
      } else {
        t.running = null;
        // It had not begun to apply: nothing to finish, its commands are still queued.
        if (slot !== undefined) await this.#store.finishOperation(name, { events: [], record: t.record, consumed: [] }, this.#fence(t));
      }
      this.#unread.add(name);
    }
    for (const t of ts) await this.#dropStalePoints(t);
    const startedAt = this.#clock.now();
    for (const t of ts) {
      const every = t.config.drift?.every ?? null;
      if (every !== null) t.driftDueAt = startedAt + every;
    }
    // The oldest waiting work goes first.
    const waiting = ts.filter((t) => t.running !== null || t.commands.length > 0 || t.signals.size > 0);
    waiting.sort((a, b) => (a.commands[0]?.receivedAt ?? '~').localeCompare(b.commands[0]?.receivedAt ?? '~'));
    for (const t of waiting) this.#scheduler.offer(t.config.name);
  }

  /**
   * Makes a target's memory what the store holds: its inputs (queued commands, signals, pause,
   * open approval) always; with `whole`, its whole record, newest event and running slot too (a
   * target this daemon does not act on, or takes up now). Resolves whether an input changed.
   */
  #mirror(t: TargetRuntime, snapshot: Snapshot, opts: { whole: boolean; signals?: boolean }): boolean {
    const name = t.config.name;
    const saved = snapshot.records.get(name);
    let changed = false;
    // The config says whether a target is paused; the stored flag only mirrors it.
    if (opts.whole) {
      if (saved !== undefined) t.record = { ...saved, name, paused: t.config.paused };
      t.lastEvent = snapshot.lastEvents.get(name) ?? t.lastEvent;
      if (!this.#ownership.holds(t.stack)) t.running = snapshot.running.get(name) ?? null;
    } else if (saved !== undefined && JSON.stringify(saved.pause) !== JSON.stringify(t.record.pause)) {
      t.record = { ...t.record, pause: saved.pause };
      changed = true;
    }
    const commands = snapshot.commands.get(name) ?? [];
    if (commands.map((c) => c.id).join('\0') !== t.commands.map((c) => c.id).join('\0')) changed = true;
    t.commands = [...commands];
    const stored = new Map(snapshot.signals.filter((s) => s.target === name).map((s) => [s.id, s]));
    if (opts.signals === false) stored.clear();
    for (const s of opts.signals === false ? [] : [...t.signals.values()]) {
      if (!stored.has(s.id)) {
        t.signals.delete(s.id);
        changed = true;
      }
    }
    for (const s of stored.values()) {
      const before = t.signals.get(s.id);
      if (before === undefined || before.direction !== s.direction || before.value !== s.value) changed = true;
      if (before === undefined || JSON.stringify(before) !== JSON.stringify(s)) t.signals.set(s);
    }
    const open = snapshot.open.get(name) ?? null;
    if (open?.id !== t.approval?.id || open?.status !== t.approval?.status) changed = true;
    t.approval = t.config.approval === undefined ? null : open;
    if (changed) this.#changed(t);
    return changed;
  }

  /**
   * Stacks this replica just acquired (cluster/lease-keeper.ts): their targets' work is taken up
   * from the store, which the replica that held them before wrote. Rejects when the store could
   * not be read (the keeper then gives the leases back).
   */
  async acquired(stacks: readonly string[]): Promise<void> {
    await this.#ready();
    const wanted = new Set(stacks);
    const ts = [...this.#targets.values()].filter((t) => wanted.has(t.stack));
    if (ts.length === 0 || this.#draining) return;
    this.#submitting += 1;
    try {
      const rejected = await underAll(ts, async () => {
        const snapshot = await this.#snapshot();
        await this.#adopt(ts, snapshot);
        return this.#awaiting(ts, snapshot);
      });
      for (const t of ts) this.#publishTarget(t);
      // A person's "no" taken elsewhere while the stack changed hands is recorded by its new holder.
      await this.#recordRejections(rejected);
    } finally {
      this.#submitting -= 1;
      this.#notify();
    }
    // A fire due while no replica held the stack is made now (once: the store claims it).
    await this.#onSchedules();
  }

  /** Stacks given up or lost: nothing more starts on them here (a running `up` finishes). */
  lost(stacks: readonly string[]): void {
    const gone = new Set(stacks);
    for (const t of this.#targets.values()) {
      if (!gone.has(t.stack)) continue;
      this.#driftDue.delete(t.config.name);
      this.#unread.delete(t.config.name);
      this.#publishTarget(t);
    }
    this.#notify();
  }

  /** Whether an operation, read or drift check holds `stack` now. */
  busy(stack: string): boolean {
    return this.#scheduler.lockOf(stack) !== undefined;
  }

  /**
   * Another replica (or this one) wrote inputs for these targets (the store's watch): the ones
   * this daemon acts on reload their inputs soon, together.
   */
  inputsChanged(targets: readonly string[]): void {
    for (const name of targets) {
      const t = this.#targets.get(name);
      if (t !== undefined && this.#ownership.holds(t.stack)) this.#toReload.add(t);
    }
    this.#reloadSoon();
  }

  /** Every target reloads from the store soon: the watch was lost, or at each evaluation among replicas. */
  reloadAll(): void {
    for (const t of this.#targets.values()) this.#toReload.add(t);
    this.#reloadSoon();
  }

  /** Reloads the targets waiting in #toReload, one snapshot for all of them, until none waits. */
  #reloadSoon(): void {
    if (this.#reloading !== null || this.#toReload.size === 0 || this.#draining || !this.#loaded) return;
    this.#submitting += 1;
    this.#reloading = (async () => {
      while (this.#toReload.size > 0 && !this.#draining) {
        const ts = [...this.#toReload];
        this.#toReload.clear();
        try {
          await this.#reload(ts);
        } catch (err) {
          this.#logger.warn({ err, targets: ts.length }, 'could not reload inputs written by other replicas; will try at the next evaluation');
        }
      }
    })().finally(() => {
      this.#reloading = null;
      this.#submitting -= 1;
      this.#notify();
    });
  }

  async #reload(ts: readonly TargetRuntime[]): Promise<void> {
    const changed: TargetRuntime[] = [];
    // Deliveries are not written under the targets' serial queues (signals()): one that reached
    // memory while the snapshot was read leaves that target's signals to the next reload.
    const writes = new Map(ts.map((t) => [t, t.signalWrites]));
    let rejected: Approval[] = [];
    await underAll(ts, async () => {
      // Targets held here need their inputs only; the others mirror everything, for the state served.
      const snapshot = await this.#snapshot({ inputsOnly: ts.every((t) => this.#ownership.holds(t.stack)) });
      for (const t of ts) {
        const held = this.#ownership.holds(t.stack);
        const signals = writes.get(t) === t.signalWrites;
        if (!signals) this.#toReload.add(t);
        if (this.#mirror(t, snapshot, { whole: !held, signals })) changed.push(t);
      }
      rejected = this.#awaiting(ts, snapshot);
    });
    await this.#recordRejections(rejected);
    if (changed.length > 0) await this.#evaluateSoon(new Set(changed));
  }

  /** The rejections taken by other replicas that wait for this holder to record them (of `ts`). */
  #awaiting(ts: readonly TargetRuntime[], snapshot: Snapshot): Approval[] {
    const held = new Set(ts.filter((t) => this.#ownership.holds(t.stack)).map((t) => t.config.name));
    return snapshot.rejected.filter((a) => held.has(a.target));
  }

  /** Records rejections taken elsewhere as this holder records its own: a skip and the cooldown. */
  async #recordRejections(rejected: readonly Approval[]): Promise<void> {
    for (const a of rejected) {
      const t = this.#targets.get(a.target);
      if (t === undefined) continue;
      this.#submitting += 1;
      try {
        await serial(t, async () => this.#closeWhileHeld(t, { ...a, status: 'pending' }, a.decidedBy));
        this.#offer(t);
      } catch (err) {
        this.#logger.warn({ target: a.target, approval: a.id, err }, 'could not record a rejection taken by another replica; will try again');
      } finally {
        this.#submitting -= 1;
        this.#notify();
      }
    }
  }

  /**
   * A point's command still queued at start (claimed before a stop that came before it ran) is
   * as late as its fire: past the point's `startingDeadline` it is recorded as missed, not run.
   */
  async #dropStalePoints(t: TargetRuntime): Promise<void> {
    if (t.running !== null) return;
    const now = this.#clock.now();
    const deadlines = new Map(pointsOf(t).map((p) => [p.name, p.startingDeadline]));
    const stale = t.commands.filter((c) => {
      const fire = c.source === 'schedule' ? c.evidence.schedule : undefined;
      const deadline = fire === undefined ? undefined : deadlines.get(fire.name);
      return fire?.fireAt !== undefined && deadline !== undefined && now - Date.parse(fire.fireAt) >= deadline;
    });
    if (stale.length === 0) return;
    const events = stale.map((c) => missedCommandEvent(t, c, { id: this.#deps.newId(), now }));
    await this.#store.finishOperation(t.config.name, { events, record: t.record, consumed: stale.map((c) => c.id) }, this.#fence(t));
    t.commands = t.commands.filter((c) => !stale.includes(c));
    for (const event of events) this.#published(event);
  }

  /** Starts whatever may start now: operations first, then background reads. */
  #pump(): void {
    if (!this.#loaded || this.#draining) return;
    const picked = this.#scheduler.pick((name) => {
      const t = this.#targets.get(name);
      if (t === undefined || !this.#ownership.holds(t.stack)) return null;
      const readyAt = this.#evaluate(t);
      return readyAt === null ? null : { stack: t.stack, readyAt };
    });
    for (const name of picked) {
      const t = this.#targets.get(name) as TargetRuntime;
      this.#background(this.#operate(t), t.stack);
    }
    for (const name of this.#driftDue) {
      if (this.#scheduler.full) break;
      const t = this.#targets.get(name) as TargetRuntime;
      if (!this.#ownership.holds(t.stack)) continue;
      // Work first: the check looks again once the target is idle (at a later tick).
      if (this.#unread.has(name) || this.#evaluate(t, { quiet: true }) !== null) continue;
      if (!this.#scheduler.acquire(t.stack, { target: name, kind: 'drift' })) continue;
      this.#driftDue.delete(name);
      this.#background(this.#checkDrift(t), t.stack);
    }
    for (const name of this.#unread) {
      if (this.#scheduler.full) break;
      const t = this.#targets.get(name) as TargetRuntime;
      if (!this.#ownership.holds(t.stack)) continue;
      // A target with work reads its value when its operation starts.
      if (this.#evaluate(t, { quiet: true }) !== null) continue;
      if (!this.#scheduler.acquire(t.stack, { target: name, kind: 'read' })) continue;
      // Every unread target of the same stack and folder is read with it: one config read, not
      // one CLI process per key (1,000 targets on one stack).
      const group = [...this.#unread]
        .map((n) => this.#targets.get(n) as TargetRuntime)
        .filter((o) => o === t || (o.stack === t.stack && sameFolder(o, t) && this.#evaluate(o, { quiet: true }) === null));
      for (const o of group) this.#unread.delete(o.config.name);
      this.#background(this.#refresh(group), t.stack);
    }
  }

  /**
   * When the target should run an operation (epoch ms; now or earlier means at once), or null
   * when it has nothing to do. Evaluating signals updates the desired value and, when a signal
   * started or changed since the last recorded decision, records a skip once.
   */
  #evaluate(t: TargetRuntime, opts: { quiet?: boolean } = {}): number | null {
    const retry = t.record.retry;
    const retryAt = Math.max(t.holdUntil, retry === null ? 0 : Date.parse(retry.notBefore));
    // A hold-off after an alert-driven failure does not hold an operator's command.
    const commandsAt = retry?.signalsOnly ? t.holdUntil : retryAt;
    if (t.running?.applying) return retryAt;
    const now = this.#clock.now();
    const waiting = t.approval?.status === 'pending' ? t.approval : null;
    if (waiting !== null) {
      // Held for a person: only an operator's command runs meanwhile; at the deadline it expires.
      const expiresAt = Date.parse(waiting.expiresAt);
      if (expiresAt <= now) {
        if (!opts.quiet) void this.#closeApproval(t, waiting.id, null).catch((err: unknown) => this.#logger.warn({ target: t.config.name, err }, 'could not record an expired approval; will try again'));
        // Looked at again soon, in case that write fails.
        return now + this.#retry.baseDelay;
      }
      return t.commands.some((c) => !isAutomatic(c)) ? commandsAt : expiresAt;
    }
    // Approved: the next operation applies it, or finds the present moved on and lets it go.
    if (t.approval?.status === 'approved') return retryAt;
    if (t.commands.length > 0) return commandsAt;
    const bounds = boundsAt(t.config, now);
    const current = t.record.current;
    // Outside the bounds in effect (a schedule window began or ended): moved in at once.
    const into = planBounds({ current, bounds, target: t.config, pause: t.record.pause, now });
    if (into?.kind === 'change') {
      // A dry-run daemon shows it once, until something changes; a person's no holds it too.
      const declined = t.config.approval !== undefined && t.declined !== null && t.declined.from === current && t.declined.to === into.to;
      if (!(this.#deps.dryRun && t.previewed === into.to) && !declined && !sameChange(t.guarded, current, into.to, now)) return retryAt;
    }
    // Signals past their expiry leave the decision now; the store ends them right after.
    const signals = t.signals.summary(now);
    // A quiet evaluation changes nothing, not even the store: the next one ends them.
    if (t.signals.expiredHeld > 0 && !opts.quiet) this.#endExpiredSoon();
    const none = signals.ups + signals.downs === 0;
    if (into?.kind === 'skip' && none) {
      // Held by a pause: said once, and looked at again when the pause ends.
      if (t.changes !== t.reported && !opts.quiet) {
        t.reported = t.changes;
        void this.#recordEvent(t, boundsSkipEvent(t, into, bounds.source, { id: this.#deps.newId(), now }));
      }
      const until = t.record.pause === null ? Number.NaN : Date.parse(t.record.pause.until);
      return Number.isNaN(until) ? null : until;
    }
    if (none) {
      if (!opts.quiet) t.desired = current === null ? null : { value: current, reason: 'no active signal', at: iso(now) };
      return null;
    }
    // The operation reads the value first: until the start-up read, there is nothing to plan from.
    if (current === null && this.#unread.has(t.config.name)) return retryAt;
    const plan = planSignals({
      current,
      signals,
      target: { ...t.config, min: bounds.min, max: bounds.max },
      pause: t.record.pause,
      cooldownUntil: t.record.cooldownUntil,
      history: t.recommendations,
      now,
    });
    if (plan === null) return null;
    if (!opts.quiet) this.#remember(t, plan, now);
    if (plan.decision.kind === 'change') {
      // A dry-run daemon shows each alert-driven change once, until something changes.
      if (this.#deps.dryRun && t.previewed === plan.decision.to) return null;
      // The guard refused this very change: it waits for the value or the decision to differ.
      if (sameChange(t.guarded, current, plan.decision.to, now)) return t.guarded?.until ?? null;
      return retryAt;
    }
    if (t.changes !== t.reported && !opts.quiet) {
      t.reported = t.changes;
      if (!repeatsNewest(t, plan)) void this.#recordSkip(t, plan);
    }
    return plan.waitUntil;
  }

  /** A target's inputs changed: its next decision is worth recording, and worth previewing again. */
  #changed(t: TargetRuntime): void {
    t.changes += 1;
    t.previewed = null;
  }

  /** Keeps an evaluation's desired value (served, and a gauge) and its recommendation. */
  #remember(t: TargetRuntime, plan: SignalPlan, now: number): void {
    t.desired = { value: plan.desired.value, reason: plan.desired.reason, at: iso(now) };
    const last = t.recommendations[t.recommendations.length - 1];
    if (last !== undefined && last.value === plan.recommendation) last.at = now;
    else t.recommendations.push({ at: now, value: plan.recommendation });
    t.recommendations = pruneRecommendations(t.recommendations, now, t.config.stabilization);
    this.#publishTarget(t);
  }

  async #recordSkip(t: TargetRuntime, plan: SignalPlan): Promise<void> {
    await this.#recordEvent(t, skipEvent(t, plan, { id: this.#deps.newId(), now: this.#clock.now(), dryRun: this.#deps.dryRun }));
  }

  /** Records an event of the engine's own (a skipped evaluation), counted as work in flight. */
  async #recordEvent(t: TargetRuntime, event: ScalingEvent | null): Promise<void> {
    if (event === null) return;
    // Counted as work in flight, so `idle` and a drain wait for the write.
    this.#submitting += 1;
    try {
      await this.record(event);
    } catch (err) {
      this.#logger.warn({ target: t.config.name, err }, 'could not record a skipped decision');
    } finally {
      this.#submitting -= 1;
      this.#notify();
    }
  }

  /** Frees the stack once `work` settles; `work` reports its own failures, this is a last guard. */
  #background(work: Promise<void>, stack: string): void {
    work
      .finally(() => {
        this.#scheduler.release(stack);
        this.#pump();
        this.#notify();
      })
      .catch((err: unknown) => this.#logger.error({ err, stack }, 'unexpected engine failure'));
  }

  /** One operation, from planning on the present to publishing the outcome. Never rejects. */
  async #operate(t: TargetRuntime): Promise<void> {
    const name = t.config.name;
    // The lease this operation runs under: its writes carry it, so that once the stack was held
    // by another replica in between, a later hold of this one's does not make them valid again.
    const fence = this.#fence(t);
    this.#unread.delete(name);
    const controller = new AbortController();
    this.#operations.set(name, controller);
    const timer = this.#clock.setTimer(() => {
      controller.abort(
        new OperationTimeoutError(`${name}: the operation ran past engine.operationTimeout (${this.#operationTimeout} ms) and was cancelled; the previous config was restored`),
      );
    }, this.#operationTimeout);
    this.#bus.publish({ type: 'operation-start', target: name });
    let outcome: OperationOutcome;
    // What the decision covers: a signal that changes while it runs is reported by the next one.
    const changesSeen = t.changes;
    try {
      await this.#syncTakenOver(t);
      const now = this.#clock.now();
      outcome = await runOperation(
        this.#deps,
        {
          target: t.config,
          record: t.record,
          // While a request waits, a person's commands run ahead of the schedule's, which wait with it.
          commands: t.approval?.status === 'pending' ? t.commands.filter((c) => !isAutomatic(c)) : t.commands,
          signals: t.signals.summary(now),
          recommendations: t.recommendations,
          resume: t.running,
          report: t.changes !== t.reported,
          bounds: boundsAt(t.config, now),
          approval: t.approval,
          declined: t.declined,
          guarded: t.guarded,
        },
        (running) =>
          serial(t, async () => {
            // Fenced: among replicas, the store checks the lease once more just before the up.
            await this.#store.startOperation(name, running, fence);
            t.running = running;
            // Running now: the live stream and the status page show it while it runs.
            this.#publishTarget(t);
          }),
        controller.signal,
      );
    } finally {
      this.#clock.clearTimer(timer);
      this.#operations.delete(name);
    }
    this.#bus.publish({ type: 'operation-end', target: name, kind: outcome.retried ? 'retried' : outcome.kind, durationMs: outcome.durationMs });
    // A shutdown cut it off: the store keeps it running, and the next start finishes it.
    if (outcome.interrupted) return;
    if (outcome.storeRefused) {
      t.holdUntil = this.#clock.now() + this.#retry.baseDelay;
      this.#scheduler.offer(name);
      return;
    }
    if (outcome.desired !== null) this.#remember(t, { desired: outcome.desired, recommendation: outcome.recommendation } as SignalPlan, this.#clock.now());
    if (!(await this.#finish(t, outcome, fence))) return;
    if (outcome.events.some((e) => e.kind !== 'unlocked')) t.reported = Math.max(t.reported, changesSeen);
    if (outcome.kind === 'previewed' && t.running === null) t.previewed = outcome.events.at(-1)?.to ?? null;
    t.error = errorOf(outcome.events);
    // What the guard refused is held back until the value or the decision differ.
    t.guarded = outcome.guarded ?? (outcome.kind === 'changed' ? null : t.guarded);
    const set = outcome.events.find((e) => e.kind === 'changed' && e.keys !== undefined);
    if (set?.keys !== undefined) t.keyValues = Object.fromEntries(set.keys.map((k) => [k.key, k.to]));
    for (const event of outcome.events) this.#published(event);
    if (outcome.retried !== null) this.#bus.publish({ type: 'retry', target: name, attempt: outcome.retried.attempt, delayMs: outcome.retried.delayMs });
    this.#publishTarget(t);
    // Level-triggered: look again, now that the value and the cooldowns changed.
    this.#scheduler.offer(name);
  }

  /**
   * Stores an operation's end: its events, the commands it consumed, the new record, in one
   * write. Memory follows the store: the running slot and the queue change only once that write
   * succeeded, and a failed write is tried again (paced by `engine.retry`) until it succeeds or
   * a shutdown gives up on it, which leaves the running slot in the store to resume at the next
   * start. Resolves whether the end was stored.
   */
  async #finish(t: TargetRuntime, outcome: OperationOutcome, fence: Fence | undefined): Promise<boolean> {
    const name = t.config.name;
    // Notices written on their own are dropped once stored, so a retry never writes one twice.
    let notices = outcome.keepRunning ? [...outcome.events] : [];
    for (let attempt = 1; ; attempt++) {
      try {
        await serial(t, async () => {
          // The operation owns the value, the cooldowns and the retry budget; anything else of
          // the record (a pause set meanwhile) is the present's, not the operation's start's.
          const { current, cooldownUntil, retry, applied } = outcome.record;
          const record = { ...t.record, current, cooldownUntil, retry, ...(applied === undefined ? {} : { applied }) };
          if (outcome.keepRunning) {
            // A resumed operation to try again: its running slot (and value) stays.
            for (const event of notices) {
              await this.#store.appendEvent(event, fence);
              notices = notices.slice(1);
            }
            await this.#store.saveTarget(record, fence);
          } else {
            await this.#store.finishOperation(name, { events: outcome.events, record, consumed: outcome.consumed, approvals: outcome.approvals }, fence);
            t.running = null;
            for (const a of outcome.approvals) {
              if (a.status === 'pending' || a.status === 'approved') t.approval = a;
              else if (t.approval?.id === a.id) t.approval = null;
            }
          }
          t.record = record;
          t.commands = t.commands.filter((c) => !outcome.consumed.includes(c.id));
        });
        return true;
      } catch (err) {
        if (err instanceof LeaseLostError) {
          // Another replica holds the stack now: it finishes this operation from its running
          // slot (the value being applied), so this replica writes nothing more about it.
          this.#logger.warn({ target: name, events: outcome.events }, 'the lease of the stack was lost during the operation; its new holder records the outcome');
          if (fence !== undefined) this.#ownership.refused(fence);
          return false;
        }
        const delayMs = backoffDelay(attempt, this.#retry);
        this.#logger.error({ target: name, err, events: outcome.events, attempt, delayMs }, 'could not record the end of an operation; will write it again');
        if (this.#interrupting) return false;
        await new Promise<void>((resolve) => this.#clock.setTimer(resolve, delayMs));
        if (this.#interrupting) return false;
      }
    }
  }

  /**
   * One drift check of a target, holding its stack like an operation (drift.ts decides what it
   * leads to). Bounded by engine.operationTimeout; a failed check is counted and looked at
   * again at the next interval. Never rejects.
   */
  async #checkDrift(t: TargetRuntime): Promise<void> {
    const name = t.config.name;
    const fence = this.#fence(t);
    const every = t.config.drift?.every ?? null;
    const controller = new AbortController();
    const timer = this.#clock.setTimer(
      () => controller.abort(new OperationTimeoutError(`${name}: the drift check ran past engine.operationTimeout and was cancelled`)),
      this.#operationTimeout,
    );
    this.#operations.set(name, controller);
    try {
      const outcome = await checkDrift({
        executor: this.#deps.executor,
        target: t.config,
        record: t.record,
        reported: t.driftSeen,
        now: this.#clock.now(),
        newId: this.#deps.newId,
        dryRun: this.#deps.dryRun,
        signal: controller.signal,
      });
      await serial(t, async () => {
        // Only what the check owns changes: the present record may have moved meanwhile (a pause).
        if (outcome.adopt !== undefined) {
          const record = { ...t.record, current: outcome.adopt, applied: outcome.adopt };
          await this.#store.saveTarget(record, fence);
          t.record = record;
        }
        if (outcome.command !== null) await this.#store.addCommand(outcome.command, fence);
        if (outcome.event !== null) await this.#store.appendEvent(outcome.event, fence);
        if (outcome.command !== null) t.commands.push(outcome.command);
      });
      t.driftSeen = outcome.signature;
      this.#bus.publish({ type: 'drift-check', target: name, outcome: outcome.drifted ? 'drifted' : 'clean' });
      if (outcome.event !== null) this.#published(outcome.event);
      this.#publishTarget(t);
      this.#scheduler.offer(name);
    } catch (err) {
      this.#logger.warn({ target: name, err }, 'drift check failed; will check again at the next interval');
      this.#bus.publish({ type: 'drift-check', target: name, outcome: 'failed' });
    } finally {
      this.#clock.clearTimer(timer);
      this.#operations.delete(name);
      if (every !== null) t.driftDueAt = this.#clock.now() + every;
    }
  }

  /**
   * Reads the current values of targets of one stack and folder in the background (one config
   * read), keeping each that changed. Never rejects.
   */
  async #refresh(group: readonly TargetRuntime[]): Promise<void> {
    for (const t of group) await this.#syncTakenOver(t);
    // Bounded like an operation: a hung backend must not hold the stack's slot forever.
    const controller = new AbortController();
    const timer = this.#clock.setTimer(
      () => controller.abort(new OperationTimeoutError(`reading the current values of ${group.map((t) => t.config.name).join(', ')} ran past engine.operationTimeout and was cancelled`)),
      this.#operationTimeout,
    );
    let values: Map<string, number | null | Error>;
    try {
      values = await this.#deps.executor.readMany(group.map((t) => t.config), { signal: controller.signal });
    } catch (err) {
      values = new Map(group.map((t) => [t.config.name, err instanceof Error ? err : new Error(String(err))]));
    } finally {
      this.#clock.clearTimer(timer);
    }
    for (const t of group) await this.#keepRead(t, values.get(t.config.name) ?? new Error('no value was read'));
  }

  /**
   * Before the first read of a stack taken over from another replica: a target with a workDir
   * keeps its value in the folder's stack settings file, and a replica with a copy of its own
   * (a pod's) may hold a value the other replica has since changed. When the stack's latest
   * update holds exactly what the store says the daemon last applied, and the copy says
   * otherwise, the copy is behind: it is set to the latest update's value (config only, no `up`).
   * Anything else (an operator's edit, no update yet) is left to the drift rules. Never rejects.
   */
  async #syncTakenOver(t: TargetRuntime): Promise<void> {
    if (!t.takenOver) return;
    t.takenOver = false;
    if (t.config.workDir === undefined) return;
    const executor = this.#deps.executor;
    try {
      const deployed = await executor.deployedValue(t.config);
      if (deployed === null || t.record.applied !== deployed) return;
      const local = await executor.read(t.config);
      if (local === deployed) return;
      this.#logger.warn({ target: t.config.name, local, deployed }, "this replica's copy of the stack settings was behind the stack: set to its latest update");
      await executor.revert(t.config, deployed, t.config.derived.length === 0 ? undefined : keyValues(t.config, deployed));
    } catch (err) {
      this.#logger.warn({ target: t.config.name, err }, "could not check this replica's copy of the stack settings against the stack");
    }
  }

  /** Keeps one target's read value (stored when it changed), or its read error. Never rejects. */
  async #keepRead(t: TargetRuntime, read: number | null | Error): Promise<void> {
    try {
      if (read instanceof Error) throw read;
      t.error = null;
      if (read !== t.record.current) {
        await serial(t, async () => {
          const record = { ...t.record, current: read };
          await this.#store.saveTarget(record, this.#fence(t));
          t.record = record;
        });
      }
      this.#publishTarget(t);
      // Now that the value is known: signals may act on it, and a schedule window may hold it.
      this.#offer(t);
    } catch (err) {
      const error = err instanceof PulumiScaleError ? err : new PulumiScaleError('PS_INTERNAL', String(err), { cause: err });
      t.error = { code: error.code, message: error.message, at: iso(this.#clock.now()) };
      this.#logger.warn({ target: t.config.name, err }, 'could not read the current value');
      // A stack that does not exist will not appear by waiting: say so in the history too.
      if (error.code === 'PS_STACK_NOT_FOUND') await this.#recordReadFailure(t, error);
    }
  }

  async #recordReadFailure(t: TargetRuntime, error: PulumiScaleError): Promise<void> {
    try {
      await this.record(readFailureEvent(t, error, { id: this.#deps.newId(), now: this.#clock.now() }));
    } catch (err) {
      this.#logger.warn({ target: t.config.name, err }, 'could not record a failed read');
    }
  }

  /** The periodic evaluation: ends expired signals, then looks at every target with signals. */
  #armTick(): void {
    this.#tick = this.#clock.setTimer(() => {
      // Armed again at once, so the ticks keep their pace whatever one of them waits for.
      if (!this.#draining) this.#armTick();
      // Counted like a call in flight, so `idle` and a drain wait for its store write.
      this.#submitting += 1;
      void this.#onTick().finally(() => {
        this.#submitting -= 1;
        this.#notify();
      });
    }, this.#evaluationInterval);
  }

  async #onTick(): Promise<void> {
    const now = this.#clock.now();
    // Among replicas, a missed word of another's write is made up for here, before expired
    // signals are ended: one another replica refreshed meanwhile must not be ended.
    if (this.#ownership.shared && this.#ownership.alone !== true) {
      this.reloadAll();
      await this.#reloading;
    }
    await this.#endExpired();
    for (const t of this.#targets.values()) if (t.signals.size > 0 || t.commands.length > 0) this.#scheduler.offer(t.config.name);
    for (const t of this.#targets.values()) if (t.driftDueAt !== null && t.driftDueAt <= now) this.#driftDue.add(t.config.name);
    // A timer can fire late (a suspended VM, a stepped clock): the tick catches the schedules up.
    if (this.#scheduleAt !== null && now >= this.#scheduleAt + this.#evaluationInterval) await this.#onSchedules();
    this.#pump();
    this.#notify();
  }

  /**
   * Schedules: queues what point schedules fired since they were last handled (each fire once,
   * through the store), looks again at every target with schedules (a window may have begun or
   * ended), and arms one timer for the next change of any schedule.
   */
  async #onSchedules(): Promise<void> {
    const now = this.#clock.now();
    let failed = false;
    this.#submitting += 1;
    try {
      for (const t of this.#targets.values()) {
        if (!this.#ownership.holds(t.stack)) continue;
        for (const point of pointsOf(t)) {
          const key = `${t.config.name}\0${point.name}`;
          const from = this.#pointsHandled.get(key) ?? now - point.startingDeadline;
          try {
            for (const claim of pointClaims(t, point, from, now, this.#deps.newId)) await this.#claim(t, claim);
            this.#pointsHandled.set(key, now);
          } catch (err) {
            failed = true;
            this.#logger.error({ target: t.config.name, schedule: point.name, err }, 'could not record a schedule fire; will try again');
          }
        }
        if (t.config.schedules.length > 0) this.#scheduler.offer(t.config.name);
      }
    } finally {
      this.#submitting -= 1;
      // A fire the store refused is tried again soon, within its deadline, not at the next change.
      this.#armSchedules(failed ? now + this.#retry.baseDelay : null);
    }
    this.#pump();
    this.#notify();
  }

  /** Claims one fire in the store (once per fire time), then queues its command in memory. */
  async #claim(t: TargetRuntime, claim: PointClaim): Promise<void> {
    const claimed = await serial(t, async () => {
      if (!(await this.#store.claimFire(claim.fire, { command: claim.command, event: claim.event }, this.#fence(t)))) return false;
      if (claim.command !== null) t.commands.push(claim.command);
      return true;
    });
    if (!claimed) return;
    this.#bus.publish({ type: 'schedule-fire', target: t.config.name, schedule: claim.fire.schedule, outcome: claim.fire.outcome });
    if (claim.event !== null) this.#published(claim.event);
  }

  /** Arms the one schedule timer for the next change of any schedule (or `sooner`, to retry). */
  #armSchedules(sooner: number | null = null): void {
    if (this.#scheduleTimer !== null) this.#clock.clearTimer(this.#scheduleTimer);
    this.#scheduleTimer = null;
    this.#scheduleAt = null;
    if (this.#draining) return;
    const now = this.#clock.now();
    let next: number | null = sooner;
    for (const t of this.#targets.values()) {
      const at = nextChange(t.config.schedules, now);
      if (at !== null && (next === null || at < next)) next = at;
    }
    if (next === null) return;
    this.#scheduleAt = next;
    this.#scheduleTimer = this.#clock.setTimer(() => {
      this.#scheduleTimer = null;
      this.#onSchedules().catch((err: unknown) => {
        this.#logger.error({ err }, 'schedule evaluation failed');
        this.#armSchedules(this.#clock.now() + this.#retry.baseDelay);
      });
    }, next - now);
  }

  /** Checks that new work is taken, the target exists and the store is loaded; returns the target. */
  async #accepting(name: string): Promise<TargetRuntime> {
    if (this.#draining) throw draining();
    const t = this.#targets.get(name);
    if (t === undefined) {
      throw new PulumiScaleError('PS_TARGET_UNKNOWN', `unknown target "${name}"`, { details: { known: [...this.#targets.keys()] } });
    }
    await this.#ready();
    return t;
  }

  /** Waits for the start's load (writing before it would race the loaded state). */
  async #ready(): Promise<void> {
    if (this.#started === null) throw new PulumiScaleError('PS_INTERNAL', 'the engine was not started');
    if (!this.#loaded) {
      await this.#started;
      if (this.#draining) throw draining();
    }
  }

  /**
   * A target's state as served. For a stack another replica holds, whether an operation runs is
   * its running slot as last read from the store (this replica's scheduler knows nothing of it).
   */
  #stateOf(t: TargetRuntime): TargetState {
    const held = this.#ownership.holds(t.stack);
    const lock = held ? this.#scheduler.lockOf(t.stack) : t.running !== null ? { target: t.config.name, kind: 'operation' as const } : undefined;
    return stateOf(t, lock, this.#clock.now(), this.#ownership.ownerOf(t.stack));
  }

  /** The fence of this daemon's writes about `t` (none for one daemon alone). */
  #fence(t: TargetRuntime): Fence | undefined {
    return this.#ownership.fence(t.stack);
  }

  #offer(t: TargetRuntime): void {
    this.#scheduler.offer(t.config.name);
    this.#pump();
  }

  #published(event: ScalingEvent): void {
    const t = this.#targets.get(event.target);
    if (t !== undefined) t.lastEvent = event;
    this.#bus.publish({ type: 'event', event });
  }

  #publishTarget(t: TargetRuntime): void {
    this.#bus.publish(targetMessage(t, this.#clock.now()));
  }

  #stop(): void {
    this.#draining = true;
    this.#scheduler.stop();
    if (this.#tick !== null) this.#clock.clearTimer(this.#tick);
    this.#tick = null;
    if (this.#scheduleTimer !== null) this.#clock.clearTimer(this.#scheduleTimer);
    this.#scheduleTimer = null;
  }

  /** Nothing running and no call in flight. */
  #quiet(): boolean {
    return this.#scheduler.active === 0 && this.#submitting === 0;
  }

  #isIdle(): boolean {
    if (!this.#quiet()) return false;
    if (!this.#loaded || this.#draining) return true;
    const now = this.#clock.now();
    for (const t of this.#targets.values()) {
      if (!this.#ownership.holds(t.stack)) continue;
      const at = this.#evaluate(t, { quiet: true });
      if (at !== null && at <= now) return false;
    }
    return true;
  }

  #notify(): void {
    this.#waiters.notify();
  }
}

/** What the store holds that the engine's memory mirrors, read at once. */
interface Snapshot {
  records: Map<string, TargetRecord>;
  commands: Map<string, Command[]>;
  signals: Signal[];
  running: Map<string, RunningOperation>;
  lastEvents: Map<string, ScalingEvent>;
  fires: ScheduleFire[];
  /** Each target's newest open (pending or approved) approval. */
  open: Map<string, Approval>;
  /** Rejections taken by replicas not holding the stack, waiting for its holder to record them. */
  rejected: Approval[];
}

/**
 * Runs `fn` while holding the serial queues of every target of `ts`: the writes queued before
 * it have settled, and none of theirs runs until it is done, so what `fn` reads from the store
 * and puts in memory is never overtaken by a write of this daemon.
 */
async function underAll<T>(ts: readonly TargetRuntime[], fn: () => Promise<T>): Promise<T> {
  let release = (): void => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  await Promise.all(ts.map((t) => new Promise<void>((entered) => void serial(t, () => (entered(), gate)))));
  try {
    return await fn();
  } finally {
    release();
  }
}

/** How much longer than the cancel grace a drain waits for cancelled operations to end. */
const STOP_MARGIN_MS = 5_000;

/** Whether two targets' stack settings live in one folder (one project on disk, or one inline project). */
function sameFolder(a: TargetRuntime, b: TargetRuntime): boolean {
  return a.config.workDir !== undefined ? a.config.workDir === b.config.workDir : a.config.inline?.project === b.config.inline?.project && b.config.workDir === undefined;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Whether `held` is the change from `from` to `to`. */
function sameChange(held: { from: number | null; to: number; until?: number } | null, from: number | null, to: number, now = 0): boolean {
  return held !== null && held.from === from && held.to === to && (held.until === undefined || now < held.until);
}

function approvalClosed(a: Approval | null): PulumiScaleError {
  return new PulumiScaleError('PS_APPROVAL_CLOSED', `approval ${a?.id ?? ''} is ${a?.status ?? 'closed'}${a?.decidedBy ? ` (by ${a.decidedBy.name})` : ''}: nothing to decide`, {
    details: a === null ? {} : { status: a.status, decidedBy: a.decidedBy },
  });
}

function draining(): PulumiScaleError {
  return new PulumiScaleError('PS_DRAINING', 'the daemon is draining and takes no new work');
}
