/**
 * The engine: the only owner of ordering, concurrency and cooldown bookkeeping. Sources hand it
 * intents (`submit`); it stores them, coalesces them per target, and runs one operation per
 * stack at a time, up to `concurrency` stacks at once, first come first served.
 *
 * How the parts fit:
 * - each target has a {@link Mailbox} (its queued and running pending intents, mirrored in the
 *   store, changed one at a time and only after the store accepted the change);
 * - the {@link Scheduler} picks which waiting target starts next (stack locks, slots, FIFO,
 *   retry deadlines);
 * - {@link runOperation} reads the present, decides and applies, and returns the outcome, which
 *   the engine stores (`finishOperation`) and then publishes on the bus.
 *
 * The engine never blocks a caller on Pulumi: `submit` waits for the store only, and
 * operations run in the background. Its `pump` is synchronous and is called whenever something
 * may have become runnable (an intent stored, an operation ended, a backoff passed).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { TargetConfig } from '../config/schema.js';
import { PulumiScaleError } from '../errors.js';
import type { EventBus } from '../observe/bus.js';
import type { Executor } from '../pulumi/executor.js';
import type { Store } from '../store/store.js';
import type { Intent, PendingIntent, ScalingEvent, TargetState } from '../types.js';
import type { Clock } from './clock.js';
import { runOperation, type OperationDeps, type RetryPolicy } from './operation.js';
import { newRuntime, readyAt, stateOf, type TargetRuntime } from './target-runtime.js';
import { Scheduler } from './scheduler.js';
import { Waiters } from './waiters.js';

/** What the engine is built from. */
export interface EngineOptions {
  /** Durable pending slots, target records and history. */
  store: Store;
  /** The only way to Pulumi. */
  executor: Executor;
  /** The configured targets, in config order (the order `states()` lists them). */
  targets: TargetConfig[];
  /** Time and timers (retry backoff, drain timeout, cooldowns). */
  clock: Clock;
  /** Where outcomes are published for metrics, logs and notifications. */
  bus: EventBus;
  logger: Logger;
  /** Preview every change instead of applying it (`engine.dryRun`). */
  dryRun: boolean;
  /** How many stacks may run an operation at once (`engine.concurrency`). */
  concurrency: number;
  /** Backoff for retryable failures (`engine.retry`). */
  retry: RetryPolicy;
  /** New event ids; UUIDs by default. */
  newId?: () => string;
}

/**
 * The engine. The HTTP layer calls `submit`, `record`, `state`, `states` and `isDraining`; the
 * daemon calls `start` once and `drain` on shutdown. Its methods wait for the store only (never
 * for Pulumi); operations run in the background and report through the store and the bus.
 */
export class Engine {
  readonly #store: Store;
  readonly #bus: EventBus;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #retry: RetryPolicy;
  readonly #deps: OperationDeps;
  readonly #targets = new Map<string, TargetRuntime>();
  readonly #scheduler: Scheduler;
  /** Targets whose current value has not been read since start (background reads). */
  readonly #unread = new Set<string>();
  /** Who waits for the engine to settle (`idle`, `drain`); told after every change. */
  readonly #waiters: Waiters;
  #started: Promise<void> | null = null;
  #loaded = false;
  #draining = false;
  /** Submits between their draining check and their store write; a drain waits for them. */
  #submitting = 0;

  constructor(opts: EngineOptions) {
    this.#store = opts.store;
    this.#bus = opts.bus;
    this.#clock = opts.clock;
    this.#logger = opts.logger;
    this.#retry = opts.retry;
    this.#deps = {
      executor: opts.executor,
      clock: opts.clock,
      logger: opts.logger,
      dryRun: opts.dryRun,
      retry: opts.retry,
      newId: opts.newId ?? randomUUID,
    };
    this.#waiters = new Waiters(opts.clock);
    this.#scheduler = new Scheduler({ concurrency: opts.concurrency, clock: opts.clock, wake: () => this.#pump() });
    for (const config of opts.targets) this.#targets.set(config.name, newRuntime(config));
  }

  /**
   * Loads target records and pending slots from the store, puts an operation cut off by a crash
   * back in the queue, starts what is queued, and reads every target's current value in the
   * background (a failed read is logged, not fatal). Rejects when the store cannot be read.
   * Call once, before `submit`; a second call returns the first one's promise.
   */
  start(): Promise<void> {
    this.#started ??= this.#load();
    return this.#started;
  }

  /**
   * Accepts an intent: coalesces it into its target's queued intent and stores both, then
   * schedules the target. Resolves with the new pending intent once it is durable; rejects with
   * PS_DRAINING while draining, PS_TARGET_UNKNOWN for an unknown target, or the store's
   * StoreUnavailableError, in which case nothing was queued.
   */
  async submit(intent: Intent): Promise<PendingIntent> {
    if (this.#draining) throw draining();
    const t = this.#targets.get(intent.target);
    if (t === undefined) {
      throw new PulumiScaleError('PS_TARGET_UNKNOWN', `unknown target "${intent.target}"`, {
        details: { known: [...this.#targets.keys()] },
      });
    }
    if (this.#started === null) throw new PulumiScaleError('PS_INTERNAL', 'the engine was not started');
    // Merging before the stored slots are loaded would overwrite them.
    if (!this.#loaded) {
      await this.#started;
      if (this.#draining) throw draining();
    }
    this.#submitting += 1;
    try {
      const now = new Date(this.#clock.now()).toISOString();
      const { pending, merged } = await t.mailbox.accept(intent, t.record.current, now, (queued) =>
        this.#store.enqueue(intent, queued),
      );
      this.#bus.publish({ type: 'intent', target: t.config.name, source: intent.source, merged });
      this.#scheduler.offer(t.config.name);
      this.#pump();
      return pending;
    } finally {
      this.#submitting -= 1;
      this.#notify();
    }
  }

  /** Appends an event that ends no operation (an ignored alert) and publishes it. */
  async record(event: ScalingEvent): Promise<void> {
    await this.#store.appendEvent(event);
    const t = this.#targets.get(event.target);
    if (t !== undefined) t.lastEvent = event;
    this.#bus.publish({ type: 'event', event });
  }

  /** One target's state, or null for a name that is not configured. */
  async state(name: string): Promise<TargetState | null> {
    const t = this.#targets.get(name);
    return t === undefined ? null : stateOf(t, this.#scheduler.lockOf(t.stack), this.#clock.now());
  }

  /** Every target's state, in config order. */
  async states(): Promise<TargetState[]> {
    return [...this.#targets.values()].map((t) => stateOf(t, this.#scheduler.lockOf(t.stack), this.#clock.now()));
  }

  /** True once a drain has begun. */
  isDraining(): boolean {
    return this.#draining;
  }

  /**
   * Stops starting operations and waits for the running ones (and submits already past their
   * check) to finish, or for `timeoutMs` on the engine's clock. Queued intents stay in the store
   * for the next start. Never interrupts an operation. Resolves `finished: false` on timeout.
   */
  async drain(timeoutMs: number): Promise<{ finished: boolean }> {
    this.#draining = true;
    this.#scheduler.stop();
    return { finished: await this.#waiters.until(() => this.#quiet(), timeoutMs) };
  }

  /**
   * Resolves when nothing is running and nothing queued is ready to run (a retry waiting for
   * its backoff is not ready). For tests and tools; it does not stop new work from arriving.
   */
  async idle(): Promise<void> {
    await this.#waiters.until(() => this.#isIdle());
  }

  async #load(): Promise<void> {
    const [records, slots, lastEvents] = await Promise.all([
      this.#store.loadTargets(),
      this.#store.loadPending(),
      this.#store.lastEvents(),
    ]);
    for (const t of this.#targets.values()) {
      const saved = records.get(t.config.name);
      // The config says whether a target is paused; the stored flag only mirrors it.
      if (saved !== undefined) t.record = { ...saved, name: t.config.name, paused: t.config.paused };
      t.lastEvent = lastEvents.get(t.config.name) ?? null;
      const slot = slots.get(t.config.name);
      if (slot !== undefined) {
        if (slot.running !== null) this.#logger.warn({ target: t.config.name }, 'an operation was cut off by a stop; it will run again');
        await t.mailbox.recover(slot, t.record.current, (queued) =>
          this.#store.finishOperation(t.config.name, { event: null, record: t.record, requeue: queued }),
        );
      }
      this.#unread.add(t.config.name);
    }
    for (const name of slots.keys()) {
      if (!this.#targets.has(name)) this.#logger.warn({ target: name }, 'pending intents of a target no longer configured are left in the store');
    }
    // The oldest waiting work goes first.
    const queued = [...this.#targets.values()].filter((t) => t.mailbox.queued !== null);
    queued.sort((a, b) => (a.mailbox.queued?.firstAt ?? '').localeCompare(b.mailbox.queued?.firstAt ?? ''));
    for (const t of queued) this.#scheduler.offer(t.config.name);
    this.#loaded = true;
    this.#pump();
    this.#notify();
  }

  /** Starts whatever may start now: queued operations first, then background reads. */
  #pump(): void {
    if (!this.#loaded || this.#draining) return;
    const picked = this.#scheduler.pick((name) => {
      const t = this.#targets.get(name);
      const pending = t?.mailbox.queued ?? null;
      if (t === undefined || pending === null) return null;
      return { stack: t.stack, readyAt: readyAt(t, pending) };
    });
    for (const name of picked) {
      const t = this.#targets.get(name) as TargetRuntime;
      this.#background(this.#operate(t), t.stack);
    }
    for (const name of this.#unread) {
      if (this.#scheduler.full) break;
      const t = this.#targets.get(name) as TargetRuntime;
      // A target with work reads its value when its operation starts.
      if (t.mailbox.queued !== null || t.mailbox.running !== null) continue;
      if (!this.#scheduler.acquire(t.stack, { target: name, kind: 'read' })) continue;
      this.#unread.delete(name);
      this.#background(this.#refresh(t), t.stack);
    }
  }

  /** Frees the stack once `work` settles; `work` reports its own failures, this is a last guard. */
  #background(work: Promise<void>, stack: string): void {
    work
      .finally(() => this.#release(stack))
      .catch((err: unknown) => this.#logger.error({ err, stack }, 'unexpected engine failure'));
  }

  #release(stack: string): void {
    this.#scheduler.release(stack);
    this.#pump();
    this.#notify();
  }

  /** One operation, from taking the queued intent to publishing the outcome. Never rejects. */
  async #operate(t: TargetRuntime): Promise<void> {
    const name = t.config.name;
    let pending: PendingIntent | null;
    try {
      pending = await t.mailbox.take((running) => this.#store.startOperation(name, running));
    } catch (err) {
      // The intent stays queued; try again after a pause rather than spin on a failing store.
      t.holdUntil = this.#clock.now() + this.#retry.baseDelay;
      this.#scheduler.offer(name);
      this.#logger.error({ target: name, err }, 'could not start an operation: the store refused');
      return;
    }
    if (pending === null) return;
    this.#unread.delete(name);
    this.#bus.publish({ type: 'operation-start', target: name });

    const outcome = await runOperation(this.#deps, t.config, t.record, pending, (applying) =>
      // Best effort: without the mark a stop mid-`up` re-decides from the present instead of
      // resuming, which only matters for relative changes; not worth refusing to scale over.
      t.mailbox
        .markApplying(applying, (marked) => this.#store.markApplying(name, marked))
        .catch((err: unknown) => this.#logger.warn({ target: name, err }, 'could not record the value being applied')),
    );
    try {
      await t.mailbox.finish(outcome.retry?.pending ?? null, outcome.record.current, (requeue) =>
        this.#store.finishOperation(name, { event: outcome.event, record: outcome.record, requeue }),
      );
    } catch (err) {
      this.#logger.error({ target: name, err, event: outcome.event }, 'could not record the end of an operation');
    }
    t.record = outcome.record;
    if (outcome.event !== null) t.lastEvent = outcome.event;
    if (t.mailbox.queued !== null) this.#scheduler.offer(name);

    if (outcome.event !== null) this.#bus.publish({ type: 'event', event: outcome.event });
    if (outcome.retry !== null) {
      const { pending: retried, delayMs } = outcome.retry;
      this.#bus.publish({ type: 'retry', target: name, attempt: retried.attempts, delayMs });
    }
    this.#bus.publish({ type: 'operation-end', target: name, kind: outcome.retry ? 'retried' : outcome.kind, durationMs: outcome.durationMs });
  }

  /** Reads a target's current value in the background; keeps it when it changed. Never rejects. */
  async #refresh(t: TargetRuntime): Promise<void> {
    try {
      const current = await this.#deps.executor.read(t.config);
      if (current === t.record.current) return;
      t.record = { ...t.record, current };
      await this.#store.saveTarget(t.record);
    } catch (err) {
      this.#logger.warn({ target: t.config.name, err }, 'could not read the current value');
    }
  }

  /** Nothing running and no submit in flight. */
  #quiet(): boolean {
    return this.#scheduler.active === 0 && this.#submitting === 0;
  }

  #isIdle(): boolean {
    if (!this.#quiet()) return false;
    if (!this.#loaded || this.#draining) return true;
    const now = this.#clock.now();
    for (const t of this.#targets.values()) {
      const pending = t.mailbox.queued;
      if (pending !== null && readyAt(t, pending) <= now) return false;
    }
    return true;
  }

  #notify(): void {
    this.#waiters.notify();
  }
}

function draining(): PulumiScaleError {
  return new PulumiScaleError('PS_DRAINING', 'the daemon is draining and takes no new work');
}
