/**
 * One operation on one target: read the present, decide, apply, and say what happened. It
 * touches Pulumi only through the executor and never the store: the engine records the outcome
 * (and, through `beforeApply`, what is about to be applied), so that ordering and durability
 * stay in one place.
 *
 * Decide from the present: the value is read when the operation starts, not when the intent
 * arrived, because other operations (or people) may have changed it since.
 */
import type { Logger } from 'pino';
import type { TargetConfig } from '../config/schema.js';
import { isRetryable, OperationInterruptedError, PulumiScaleError } from '../errors.js';
import type { ClearedLock, Executor } from '../pulumi/executor.js';
import { cooldownAfter, decide, resumeDecision } from '../policy/decide.js';
import type { Decision, EventKind, PendingIntent, ScalingEvent, TargetRecord } from '../types.js';
import type { Clock } from './clock.js';

/** Retry policy for retryable failures (a locked stack), from `engine.retry`. */
export interface RetryPolicy {
  /** Tries in all, the first included; the last failure is recorded as `failed`. */
  maxAttempts: number;
  /** The first backoff, ms; it doubles on each further failure. */
  baseDelay: number;
  /** The longest backoff, ms. */
  maxDelay: number;
}

/** What an operation needs besides its target. */
export interface OperationDeps {
  executor: Executor;
  clock: Clock;
  logger: Logger;
  /** The global `engine.dryRun`: preview every change. */
  dryRun: boolean;
  retry: RetryPolicy;
  newId: () => string;
}

/** What an operation ended with; the engine stores and publishes it. */
export interface OperationOutcome {
  /** The history event, or null when the operation will be retried or was interrupted (nothing is final yet). */
  event: ScalingEvent | null;
  /** Events recorded along the way, before `event` (a stale lock cleared). */
  notices: ScalingEvent[];
  /**
   * True when a shutdown cut the operation off (its signal aborted with
   * OperationInterruptedError): nothing is recorded, and the running slot stays in the store so
   * that the next start finishes the operation.
   */
  interrupted: boolean;
  /** The target's durable state afterwards. */
  record: TargetRecord;
  /** After a retryable failure: the intent to run again (its backoff set) and the delay; else null. */
  retry: { pending: PendingIntent; delayMs: number } | null;
  /** How the operation ended, for the `operation-end` message (`failed` for a retried try). */
  kind: EventKind;
  /** How long the operation took, ms. */
  durationMs: number;
}

/** The backoff before try `attempts + 1`, after `attempts` failures (doubling, capped). */
export function backoffDelay(attempts: number, retry: RetryPolicy): number {
  return Math.min(retry.maxDelay, retry.baseDelay * 2 ** Math.max(0, attempts - 1));
}

/**
 * Runs one operation. Never rejects: every failure becomes a `failed` outcome or a retry.
 * `record` is the target's state before; `pending` the intent taken from its queue.
 */
export async function runOperation(
  deps: OperationDeps,
  target: TargetConfig,
  record: TargetRecord,
  pending: PendingIntent,
  /** Called just before a real (not dry-run) apply, with the value about to be applied. */
  beforeApply: (applying: { from: number | null; to: number }) => Promise<void> = async () => {},
  /** Aborted by the engine on an operation timeout or at the end of a drain; see the errors it carries. */
  signal?: AbortSignal,
): Promise<OperationOutcome> {
  const { clock, logger } = deps;
  const started = clock.now();
  const intent = pending.intent;
  const dryRun = intent.dryRun || deps.dryRun;
  let current = record.current;
  let decision: Decision | null = null;
  const notices: ScalingEvent[] = [];
  const onLockCleared = (lock: ClearedLock): void => {
    notices.push(
      event('unlocked', null, `cleared a stale lock of stack ${target.stack}: taken by pid ${lock.pid} on ${lock.hostname} at ${lock.since}, a process that no longer runs`),
    );
  };

  const event = (kind: EventKind, to: number | null, reason: string, extra: Partial<ScalingEvent> = {}): ScalingEvent => ({
    id: deps.newId(),
    target: target.name,
    at: new Date(clock.now()).toISOString(),
    kind,
    from: current,
    to,
    reason,
    source: intent.source,
    intents: pending.count,
    durationMs: clock.now() - started,
    dryRun,
    intentId: intent.id,
    evidence: intent.evidence,
    ...extra,
  });
  // The outcome itself is logged once, by the bus's log subscriber (observe/logger.ts).
  const done = (ev: ScalingEvent, next: TargetRecord): OperationOutcome => {
    return { event: ev, notices, interrupted: false, record: next, retry: null, kind: ev.kind, durationMs: ev.durationMs };
  };

  try {
    current = await deps.executor.read(target);
    if (pending.applying && record.paused) {
      // Cut off mid-`up` by a stop, and the target is paused now: a pause changes nothing, so
      // the operation is not finished; its value is taken back out of the config instead, as
      // for any `up` that did not complete, so that the config says what was last deployed.
      const { from, to } = pending.applying;
      await deps.executor.revert(target, from);
      current = from;
      const detail = `${intent.reason}: an operation cut off by a stop (${from ?? 'unset'} -> ${to}) is not resumed: target is paused; the config is back at ${from ?? 'unset'}`;
      return done(event('skipped', null, detail, { skipReason: 'paused' }), { ...record, current: from });
    }
    if (pending.applying) {
      // Cut off mid-`up` by a stop: the value read may be the half-applied one; report the
      // value the operation started from.
      current = pending.applying.from ?? current;
      decision = resumeDecision(pending.applying, intent.reason, target);
    } else {
      decision = decide({
        current,
        pending,
        target: { ...target, paused: record.paused },
        cooldownUntil: record.cooldownUntil,
        now: clock.now(),
      });
    }
    logger.info(
      decision.kind === 'change'
        ? { target: target.name, kind: 'change', from: current, to: decision.to, reason: decision.reason }
        : { target: target.name, kind: 'skip', from: current, to: decision.wanted, reason: decision.detail, skipReason: decision.reason },
      'decision',
    );
    if (decision.kind === 'skip') {
      return done(event('skipped', null, decision.detail, { skipReason: decision.reason }), { ...record, current });
    }

    if (!dryRun) await beforeApply({ from: current, to: decision.to });
    const result = await deps.executor.apply(target, decision.to, { dryRun, onLockCleared, ...(signal ? { signal } : {}) });
    if (result.kind === 'previewed') {
      // A preview changes nothing, so it starts no cooldown.
      return done(event('previewed', decision.to, `preview: ${decision.reason}`), { ...record, current: result.current });
    }
    const cooldownUntil = cooldownAfter(record.cooldownUntil, decision.direction, clock.now(), target.cooldown);
    return done(event('changed', result.current, decision.reason), { ...record, current: result.current, cooldownUntil });
  } catch (err) {
    if (err instanceof OperationInterruptedError) {
      logger.warn({ target: target.name }, 'operation interrupted by the shutdown; it resumes at the next start');
      return { event: null, notices, interrupted: true, record, retry: null, kind: 'failed', durationMs: clock.now() - started };
    }
    const to = decision?.kind === 'change' ? decision.to : null;
    const attempts = pending.attempts + 1;
    const message = err instanceof Error ? err.message : String(err);
    if (isRetryable(err) && attempts < deps.retry.maxAttempts) {
      const delayMs = backoffDelay(attempts, deps.retry);
      const notBefore = new Date(clock.now() + delayMs).toISOString();
      logger.warn({ target: target.name, attempt: attempts, delayMs, to, err }, 'operation failed, will retry');
      return {
        event: null,
        notices,
        interrupted: false,
        record: { ...record, current },
        retry: { pending: { ...pending, attempts, notBefore }, delayMs },
        kind: 'failed',
        durationMs: clock.now() - started,
      };
    }
    const errorCode = err instanceof PulumiScaleError ? err.code : 'PS_INTERNAL';
    const reason = isRetryable(err) ? `${message} (gave up after ${attempts} attempts)` : message;
    logger.error({ target: target.name, errorCode, err }, 'operation failed');
    // The executor restored the previous config, so the value read before still holds.
    return done(event('failed', to, reason, { errorCode }), { ...record, current });
  }
}
