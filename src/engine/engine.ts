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
import { OperationInterruptedError, OperationTimeoutError, PulumiScaleError } from '../errors.js';
import type { EventBus } from '../observe/bus.js';
import type { Executor } from '../pulumi/executor.js';
import type { Store } from '../store/store.js';
import type { Intent, PendingIntent, ScalingEvent, TargetState } from '../types.js';
import type { Clock } from './clock.js';
import { backoffDelay, runOperation, type OperationDeps, type OperationOutcome, type RetryPolicy } from './operation.js';
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
  /** Backoff for retryable failures (`engine.retry`); also paces rewrites of an operation's end. */
  retry: RetryPolicy;
  /** How long one operation may run before it is cancelled (`engine.operationTimeout`), ms. */
  operationTimeout: number;
  /**
   * How long a cancelled Pulumi CLI may take to stop (`engine.cancelGrace`), ms: the executor
   * kills it with SIGKILL then, so a drain waits this long, plus a margin, after it cancels.
   */
  cancelGrace: number;
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
  readonly #operationTimeout: number;
  readonly #cancelGrace: number;
  readonly #deps: OperationDeps;
  /** The running operations' cancel switches, by target. */
  readonly #operations = new Map<string, AbortController>();
  readonly #targets = new Map<string, TargetRuntime>();
  readonly #scheduler: Scheduler;
  /** Targets whose current value has not been read since start (background reads). */
  readonly #unread = new Set<string>();
  /** Who waits for the engine to settle (`idle`, `drain`); told after every change. */
  readonly #waiters: Waiters;
  #started: Promise<void> | null = null;
  #loaded = false;
  #draining = false;
  /** Set once a drain gave up waiting: running operations are being cancelled; write nothing more for them. */
  #interrupting = false;
  /** Submits between their draining check and their store write; a drain waits for them. */
  #submitting = 0;

  constructor(opts: EngineOptions) {
    this.#store = opts.store;
    this.#bus = opts.bus;
    this.#clock = opts.clock;
    this.#logger = opts.logger;
    this.#retry = opts.retry;
    this.#operationTimeout = opts.operationTimeout;
    this.#cancelGrace = opts.cancelGrace;
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
   * for the next start. Past `timeoutMs` the running operations are cancelled (`interrupt`) and
   * the drain waits at most `cancelGrace` and a margin more for their CLIs to stop; their
   * intents stay in the store, running, and resume at the next start. Resolves `finished:
   * false` when it had to cancel, `stopped: false` when even that wait ran out.
   */
  async drain(timeoutMs: number): Promise<{ finished: boolean; stopped: boolean }> {
    this.#draining = true;
    this.#scheduler.stop();
    if (await this.#waiters.until(() => this.#quiet(), timeoutMs)) return { finished: true, stopped: true };
    this.interrupt();
    return { finished: false, stopped: await this.#waiters.until(() => this.#quiet(), this.#cancelGrace + STOP_MARGIN_MS) };
  }

  /**
   * Cancels every running operation for a shutdown: their CLIs get SIGINT (SIGKILL after the
   * cancel grace), their config is restored, and nothing about them is recorded, so that their
   * running slots stay in the store and resume at the next start. Also starts nothing new.
   */
  interrupt(): void {
    this.#draining = true;
    this.#interrupting = true;
    this.#scheduler.stop();
    for (const controller of this.#operations.values()) {
      controller.abort(new OperationInterruptedError('the daemon is shutting down past engine.drainTimeout'));
    }
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

    const controller = new AbortController();
    this.#operations.set(name, controller);
    const timer = this.#clock.setTimer(() => {
      controller.abort(
        new OperationTimeoutError(`${name}: the operation ran past engine.operationTimeout (${this.#operationTimeout} ms) and was cancelled; the previous config was restored`),
      );
    }, this.#operationTimeout);
    let outcome: OperationOutcome;
    try {
      outcome = await runOperation(
        this.#deps,
        t.config,
        t.record,
        pending,
        (applying) =>
          // Best effort: without the mark a stop mid-`up` re-decides from the present instead of
          // resuming, which only matters for relative changes; not worth refusing to scale over.
          t.mailbox
            .markApplying(applying, (marked) => this.#store.markApplying(name, marked))
            .catch((err: unknown) => this.#logger.warn({ target: name, err }, 'could not record the value being applied')),
        controller.signal,
      );
    } finally {
      this.#clock.clearTimer(timer);
      this.#operations.delete(name);
    }
    // A shutdown cut it off: the store keeps it running, and the next start finishes it.
    if (outcome.interrupted) return;
    if (!(await this.#record(t, outcome))) return;
    t.record = outcome.record;
    if (outcome.event !== null) t.lastEvent = outcome.event;
    t.error = errorOf(outcome.event);
    if (t.mailbox.queued !== null) this.#scheduler.offer(name);

    for (const notice of outcome.notices) this.#bus.publish({ type: 'event', event: notice });
    if (outcome.event !== null) this.#bus.publish({ type: 'event', event: outcome.event });
    if (outcome.retry !== null) {
      const { pending: retried, delayMs } = outcome.retry;
      this.#bus.publish({ type: 'retry', target: name, attempt: retried.attempts, delayMs });
    }
    this.#bus.publish({ type: 'operation-end', target: name, kind: outcome.retry ? 'retried' : outcome.kind, durationMs: outcome.durationMs });
  }

  /**
   * Stores an operation's end: its notices, then the event, record and requeue in one write.
   * Memory follows the store: the running slot is released only once that write succeeded, and
   * a failed write is tried again (paced by `engine.retry`) until it succeeds or a shutdown
   * gives up on it, which leaves the running slot in the store to resume at the next start.
   * Resolves whether the end was stored.
   */
  async #record(t: TargetRuntime, outcome: OperationOutcome): Promise<boolean> {
    const name = t.config.name;
    let notices = outcome.notices;
    for (let attempt = 1; ; attempt++) {
      try {
        // One at a time, dropping each once stored, so a retry never writes one twice.
        for (const notice of notices) {
          await this.#store.appendEvent(notice);
          notices = notices.slice(1);
        }
        await t.mailbox.finish(outcome.retry?.pending ?? null, outcome.record.current, (requeue) =>
          this.#store.finishOperation(name, { event: outcome.event, record: outcome.record, requeue }),
        );
        return true;
      } catch (err) {
        const delayMs = backoffDelay(attempt, this.#retry);
        this.#logger.error({ target: name, err, event: outcome.event, attempt, delayMs }, 'could not record the end of an operation; will write it again');
        if (this.#interrupting) return false;
        await new Promise<void>((resolve) => this.#clock.setTimer(resolve, delayMs));
        if (this.#interrupting) return false;
      }
    }
  }

  /** Reads a target's current value in the background; keeps it when it changed. Never rejects. */
  async #refresh(t: TargetRuntime): Promise<void> {
    try {
      const current = await this.#deps.executor.read(t.config);
      t.error = null;
      if (current === t.record.current) return;
      t.record = { ...t.record, current };
      await this.#store.saveTarget(t.record);
    } catch (err) {
      const error = err instanceof PulumiScaleError ? err : new PulumiScaleError('PS_INTERNAL', String(err), { cause: err });
      t.error = { code: error.code, message: error.message, at: new Date(this.#clock.now()).toISOString() };
      this.#logger.warn({ target: t.config.name, err }, 'could not read the current value');
      // A stack that does not exist will not appear by waiting: say so in the history too.
      if (error.code === 'PS_STACK_NOT_FOUND') await this.#recordReadFailure(t, error);
    }
  }

  async #recordReadFailure(t: TargetRuntime, error: PulumiScaleError): Promise<void> {
    const event: ScalingEvent = {
      id: this.#deps.newId(),
      target: t.config.name,
      at: new Date(this.#clock.now()).toISOString(),
      kind: 'failed',
      from: null,
      to: null,
      reason: error.message,
      source: 'engine',
      intents: 0,
      durationMs: 0,
      dryRun: false,
      errorCode: error.code,
    };
    try {
      await this.record(event);
    } catch (err) {
      this.#logger.warn({ target: t.config.name, err }, 'could not record a failed read');
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

/** How much longer than the cancel grace a drain waits for cancelled operations to end. */
const STOP_MARGIN_MS = 5_000;

/** The target's error after an operation: a failed event's code and reason, else none. */
function errorOf(event: ScalingEvent | null): TargetRuntime['error'] {
  if (event?.kind !== 'failed') return null;
  return { code: event.errorCode ?? 'PS_INTERNAL', message: event.reason, at: event.at };
}

function draining(): PulumiScaleError {
  return new PulumiScaleError('PS_DRAINING', 'the daemon is draining and takes no new work');
}
