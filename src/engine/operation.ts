/**
 * One operation on one target: read the present, plan, apply, and say what happened. It
 * touches Pulumi only through the executor and the store only through `start` (the running
 * slot, written just before `up`): the engine records the outcome, so that ordering and
 * durability stay in one place.
 *
 * Decide from the present: the value is read when the operation starts, and the plan made again
 * from it, because other operations (or people) may have changed it since the engine looked.
 * Queued operator commands go first, in order; with none queued, the active signals decide.
 */
import type { Logger } from 'pino';
import type { TargetConfig } from '../config/schema.js';
import { isRetryable, OperationInterruptedError, PulumiScaleError, StoreUnavailableError } from '../errors.js';
import type { ApplyResult, ClearedLock, Executor } from '../pulumi/executor.js';
import { planCommands } from '../policy/commands.js';
import { cooldownAfter, pauses, resumeDecision } from '../policy/decide.js';
import { planBounds, type BoundsInEffect } from '../policy/bounds.js';
import type { SignalSummary } from '../policy/signal-set.js';
import { planSignals, type SignalPlan } from '../policy/signals.js';
import type { Recommendation } from '../policy/stabilization.js';
import type { Approval, Command, Decision, EventKind, IntentSource, RunningOperation, ScalingEvent, Signal, TargetRecord } from '../types.js';
import { approvalNote, isAutomatic, needsApproval, requestApproval } from './approvals.js';
import { keyValues } from '../policy/derived.js';
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

/** The present as the engine holds it when the operation starts. */
export interface OperationInput {
  target: TargetConfig;
  record: TargetRecord;
  /** The queued commands, in order. */
  commands: readonly Command[];
  /** The active signals, or their summary (see policy/signal-set.ts). */
  signals: readonly Signal[] | SignalSummary;
  /** Past desired values, for stabilization. */
  recommendations: readonly Recommendation[];
  /** A running slot cut off by a stop, to finish rather than plan. */
  resume: RunningOperation | null;
  /** The bounds in effect now (the target's own, or a schedule window's). */
  bounds: BoundsInEffect;
  /** Record a skip even when it changes nothing (a signal started or changed). */
  report: boolean;
  /** The target's open approval: pending (only operator commands run meanwhile) or approved and not yet used. */
  approval: Approval | null;
  /**
   * The last change a person rejected (or let expire), from and to: a move into the bounds in
   * effect that is that same change is not asked for again (bounds have no cooldown to wait out).
   */
  declined: { from: number | null; to: number } | null;
  /**
   * The last automatic change the preview guard refused, from and to: not previewed again
   * until the value or the decision differ (a firing alert would otherwise preview it at every
   * evaluation).
   */
  guarded: { from: number | null; to: number; until: number } | null;
}

/** What an operation ended with; the engine stores and publishes it. */
export interface OperationOutcome {
  /** The events to record, in order (a cleared lock, then the decision); empty when nothing is worth recording. */
  events: ScalingEvent[];
  /** The target's durable state afterwards. */
  record: TargetRecord;
  /** The commands it consumed. */
  consumed: string[];
  /** The evaluation's desired value, when signals were evaluated. */
  desired: { value: number | null; reason: string } | null;
  /** The value to remember for stabilization, when signals were evaluated. */
  recommendation: number | null;
  /** A shutdown cut it off: record nothing, keep the running slot for the next start. */
  interrupted: boolean;
  /**
   * A resumed operation failed and will be tried again: keep its running slot (with the value
   * it applies), so the next try finishes it rather than planning a relative change again.
   */
  keepRunning: boolean;
  /** The store refused to record the start: nothing ran; try again later. */
  storeRefused: boolean;
  /** After a retryable failure: the try that failed and the backoff before the next. */
  retried: { attempt: number; delayMs: number } | null;
  /** Approvals to save with the end: one it requested, or one it used or found moved on. */
  approvals: Approval[];
  /** The change the preview guard refused, for the engine to hold back (see OperationInput.guarded). */
  guarded?: { from: number | null; to: number; until: number };
  /** How the operation ended, for metrics. */
  kind: EventKind | 'none';
  durationMs: number;
}

/** The backoff before try `attempts + 1`, after `attempts` failures (doubling, capped). */
export function backoffDelay(attempts: number, retry: RetryPolicy): number {
  return Math.min(retry.maxDelay, retry.baseDelay * 2 ** Math.max(0, attempts - 1));
}

/** The plan of an operation: commands, signals, or a cut-off operation to finish. */
export type Plan =
  | { kind: 'commands'; batch: Command[]; decision: Decision }
  | { kind: 'bounds'; decision: Decision }
  | { kind: 'signals'; plan: SignalPlan; decision: Decision }
  | { kind: 'resume'; commandIds: string[]; decision: Extract<Decision, { kind: 'change' }> };

/**
 * Runs one operation. Never rejects: every failure becomes a `failed` outcome or a retry.
 * `start` writes the running slot just before a change is applied (the engine's store call).
 */
export async function runOperation(
  deps: OperationDeps,
  input: OperationInput,
  start: (running: RunningOperation) => Promise<void>,
  signal?: AbortSignal,
): Promise<OperationOutcome> {
  const { clock, logger } = deps;
  const { target, record } = input;
  const started = clock.now();
  let current = record.current;
  let plan: Plan | null = null;
  const notices: ScalingEvent[] = [];

  const event = (kind: EventKind, to: number | null, reason: string, extra: Partial<ScalingEvent> = {}): ScalingEvent => ({
    id: deps.newId(),
    target: target.name,
    at: new Date(clock.now()).toISOString(),
    kind,
    from: current,
    to,
    reason,
    source: sourceOf(plan, input),
    intents: plan?.kind === 'commands' ? plan.batch.length : plan?.kind === 'resume' ? plan.commandIds.length : 0,
    durationMs: clock.now() - started,
    dryRun: isDryRun(plan, deps),
    ...detailsOf(plan, input.bounds),
    ...extra,
  });
  const outcome = (fields: Partial<OperationOutcome> & Pick<OperationOutcome, 'record'>): OperationOutcome => ({
    events: [],
    consumed: [],
    desired: plan?.kind === 'signals' ? plan.plan.desired : null,
    recommendation: plan?.kind === 'signals' ? plan.plan.recommendation : null,
    interrupted: false,
    keepRunning: false,
    storeRefused: false,
    retried: null,
    // An approved change that the present no longer calls for is used up (see below); an
    // operator's command that changes nothing leaves it for the operation after.
    approvals: input.approval?.status === 'approved' && (plan === null || needsApproval(plan)) ? [{ ...input.approval, status: 'superseded' }] : [],
    kind: 'none',
    durationMs: clock.now() - started,
    ...fields,
  });
  const consumed = (): string[] => (plan?.kind === 'commands' ? plan.batch.map((c) => c.id) : plan?.kind === 'resume' ? plan.commandIds : []);
  const onLockCleared = (lock: ClearedLock): void => {
    notices.push(event('unlocked', null, `cleared a stale lock of stack ${target.stack}: taken by pid ${lock.pid} on ${lock.hostname} at ${lock.since}, a process that no longer runs`));
  };

  try {
    current = await deps.executor.read(target, signal ? { signal } : {});
    const cutOff = input.resume?.applying ?? null;
    if (cutOff !== null && (target.paused || pauses(record.pause, cutOff.to >= (cutOff.from ?? cutOff.to) ? 'up' : 'down', clock.now()))) {
      // Cut off mid-`up` by a stop, and paused now: a pause changes nothing, so the operation
      // is not finished; its value is taken back out of the config instead, as for any `up`
      // that did not complete, so that the config says what was last deployed.
      plan = { kind: 'resume', commandIds: input.resume?.commandIds ?? [], decision: resumeDecision(cutOff, 'cut off', { min: input.bounds.min, max: input.bounds.max }) };
      if ((await deps.executor.deployedValue(target)) === cutOff.to) {
        // Its `up` had succeeded before the stop: nothing to undo, only to record.
        const cooldownUntil = cooldownAfter(record.cooldownUntil, plan.decision.direction, clock.now(), target.cooldown);
        current = cutOff.from;
        const finished = event('changed', cutOff.to, `${plan.decision.reason}; its up had succeeded before the stop (target is paused now)`);
        return outcome({ events: [finished], record: { ...record, current: cutOff.to, cooldownUntil, retry: null }, consumed: consumed(), kind: 'changed' });
      }
      await deps.executor.revert(target, cutOff.from, valuesAt(target, cutOff.from));
      current = cutOff.from;
      const detail = `an operation cut off by a stop (${cutOff.from ?? 'unset'} -> ${cutOff.to}) is not resumed: target is paused; the config is back at ${cutOff.from ?? 'unset'}`;
      return outcome({ events: [event('skipped', null, detail, { skipReason: 'paused' })], record: { ...record, current }, consumed: consumed(), kind: 'skipped' });
    }
    if (cutOff !== null && (await deps.executor.deployedValue(target)) === cutOff.to) {
      // Cut off after its `up` had succeeded (a crash, a replica killed or cut off past its
      // lease): only the record is missing, and a second `up` would apply the change twice.
      plan = { kind: 'resume', commandIds: input.resume?.commandIds ?? [], decision: resumeDecision(cutOff, 'cut off', { min: input.bounds.min, max: input.bounds.max }) };
      const cooldownUntil = cooldownAfter(record.cooldownUntil, plan.decision.direction, clock.now(), target.cooldown);
      current = cutOff.from;
      // The approved change it was applying is applied.
      const open = input.approval;
      const used = open?.status === 'approved' && open.from === cutOff.from && open.to === cutOff.to ? { ...open, status: 'applied' as const } : null;
      const finished = event('changed', cutOff.to, `${plan.decision.reason}; its up had succeeded before it was cut off`, used === null ? {} : { approval: approvalNote(used) });
      return outcome({
        events: [finished],
        record: { ...record, current: cutOff.to, applied: cutOff.to, cooldownUntil, retry: null },
        consumed: consumed(),
        kind: 'changed',
        ...(used === null ? {} : { approvals: [used] }),
      });
    }
    plan = planFor(input, current, clock.now(), deps.dryRun);
    if (plan === null) return outcome({ record: { ...record, current } });
    // One request at a time: while one waits, only a person's commands run.
    if (input.approval?.status === 'pending' && needsApproval(plan)) return outcome({ record: { ...record, current } });
    const declined = input.declined;
    if (plan.kind === 'bounds' && target.approval !== undefined && declined !== null && declined.from === current && plan.decision.kind === 'change' && declined.to === plan.decision.to) {
      return outcome({ record: { ...record, current } });
    }
    // A resumed operation's config may hold the half-applied value: report where it started.
    if (plan.kind === 'resume') current = cutOff?.from ?? current;
    const decision = plan.decision;
    logger.info(
      decision.kind === 'change'
        ? { target: target.name, kind: 'change', from: current, to: decision.to, reason: decision.reason }
        : { target: target.name, kind: 'skip', from: current, to: decision.wanted, reason: decision.detail, skipReason: decision.reason },
      'decision',
    );
    if (decision.kind === 'skip') {
      const skipped = event('skipped', null, decision.detail, { skipReason: decision.reason });
      const worthRecording = plan.kind === 'commands' || input.report;
      // Nothing ran: a locked stack's retry budget does not carry over to what comes next.
      return outcome({ events: worthRecording ? [skipped] : [], record: { ...record, current, retry: null }, consumed: consumed(), kind: 'skipped' });
    }

    const dryRun = isDryRun(plan, deps);
    // A composite target sets every key in the one operation: derived ones by their rules, or
    // as an operator's multi-key command says.
    const resumed = plan.kind === 'resume' ? input.resume?.applying?.values : undefined;
    const values = target.derived.length === 0 ? undefined : (resumed ?? keyValues(target, decision.to, overridesOf(plan)));
    const keyed = (result: ApplyResult): Partial<ScalingEvent> => (values === undefined ? {} : { keys: result.keys });
    // A change the daemon decided by itself, on a target with `approval`: applied only as a
    // person approved it (the same value from the same value), else previewed and asked for.
    const open = input.approval;
    const granted = open?.status === 'approved' && open.from === current && open.to === decision.to ? open : null;
    const guarded = input.guarded;
    if (!dryRun && needsApproval(plan) && guarded !== null && guarded.from === current && guarded.to === decision.to && clock.now() < guarded.until) {
      return outcome({ record: { ...record, current } });
    }
    // The preview guard (and an approval request) look at what the change would do first; an
    // approved change was previewed when it was asked for.
    const askFirst = !dryRun && target.approval !== undefined && needsApproval(plan) && granted === null;
    const preview =
      !dryRun && granted === null && plan.kind !== 'resume' && (target.guard !== undefined || askFirst)
        ? await deps.executor.apply(target, decision.to, {
            dryRun: true,
            onLockCleared,
            readJustBefore: true,
            ...(values ? { values } : {}),
            // With before-scale, the preview sees the cloud as the up will.
            ...(target.drift?.beforeScale === true ? { refreshFirst: true } : {}),
            ...(signal ? { signal } : {}),
          })
        : null;
    const refusal = preview === null ? null : guardRefusal(target, preview.changes);
    if (preview !== null && refusal !== null) {
      const skipped = event('skipped', null, `${decision.reason}: not applied, ${refusal}`, { skipReason: 'guard', preview: preview.changes, ...keyed(preview) });
      logger.warn({ target: target.name, from: current, to: decision.to, changes: preview.changes }, 'the preview guard refused a change');
      const automatic = needsApproval(plan);
      return outcome({
        events: [...notices, skipped],
        record: { ...record, current, retry: null },
        consumed: consumed(),
        kind: 'skipped',
        ...(automatic ? { guarded: { from: current, to: decision.to, until: clock.now() + GUARD_HOLD_MS } } : {}),
      });
    }
    if (preview !== null && askFirst) {
      const approval = requestApproval({ id: deps.newId(), target, from: current, decision, changes: preview.changes, now: clock.now(), commands: consumed() });
      const waiting = event('awaiting-approval', decision.to, `waiting for approval: ${decision.reason}`, { approval: approvalNote(approval), preview: preview.changes, ...keyed(preview) });
      // An approved one that no longer matches is used up, and the new request replaces it.
      const used = open?.status === 'approved' ? [{ ...open, status: 'superseded' as const }] : [];
      return outcome({ events: [...notices, waiting], record: { ...record, current, retry: null }, approvals: [...used, approval], kind: 'awaiting-approval' });
    }
    const running: RunningOperation = {
      kind: plan.kind === 'resume' && input.resume !== null ? input.resume.kind : plan.kind === 'commands' ? 'commands' : 'signals',
      commandIds: consumed(),
      dryRun,
      // A resumed operation keeps its first start: locks taken since then are its own.
      startedAt: plan.kind === 'resume' && input.resume !== null ? input.resume.startedAt : new Date(started).toISOString(),
      applying: dryRun ? null : { from: current, to: decision.to, ...(values ? { values } : {}) },
    };
    try {
      await start(running);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      logger.error({ target: target.name, err }, 'could not record the start of an operation: the store refused; nothing ran');
      return outcome({ record: { ...record, current }, storeRefused: true, approvals: [] });
    }
    const result = await deps.executor.apply(target, decision.to, {
      dryRun,
      onLockCleared,
      ...(signal ? { signal } : {}),
      ...(plan.kind === 'resume' ? { ownLocksSince: running.startedAt } : {}),
      // Nothing but the read above touched the stack in this operation (a resume may revert).
      readJustBefore: cutOff === null,
      ...(values ? { values } : {}),
      // drift before-scale: the up plans against the cloud as it is.
      ...(!dryRun && target.drift?.beforeScale === true ? { refreshFirst: true } : {}),
    });
    if (result.kind === 'previewed') {
      // A preview changes nothing, so it starts no cooldown.
      const previewed = event('previewed', decision.to, `preview: ${decision.reason}`, keyed(result));
      return outcome({ events: [...notices, previewed], record: { ...record, current: result.current, retry: null }, consumed: consumed(), kind: 'previewed' });
    }
    const cooldownUntil = cooldownAfter(record.cooldownUntil, decision.direction, clock.now(), target.cooldown);
    const applied = granted === null ? null : { ...granted, status: 'applied' as const };
    const changed =
      applied === null
        ? event('changed', result.current, decision.reason, keyed(result))
        : event('changed', result.current, `${decision.reason} (approved by ${applied.decidedBy?.name ?? 'unknown'})`, { approval: approvalNote(applied), ...keyed(result) });
    return outcome({
      events: [...notices, changed],
      record: { ...record, current: result.current, applied: result.current, cooldownUntil, retry: null },
      consumed: consumed(),
      approvals: applied === null ? [] : [applied],
      kind: 'changed',
    });
  } catch (err) {
    if (err instanceof OperationInterruptedError) {
      logger.warn({ target: target.name }, 'operation interrupted by the shutdown; it resumes at the next start');
      return outcome({ record, interrupted: true, approvals: [] });
    }
    const to = plan !== null && plan.decision.kind === 'change' ? plan.decision.to : null;
    const attempts = (record.retry?.attempts ?? 0) + 1;
    const message = err instanceof Error ? err.message : String(err);
    const now = clock.now();
    if (isRetryable(err) && attempts < deps.retry.maxAttempts) {
      const delayMs = backoffDelay(attempts, deps.retry);
      logger.warn({ target: target.name, attempt: attempts, delayMs, to, err }, 'operation failed, will retry');
      const retry = { attempts, notBefore: new Date(now + delayMs).toISOString() };
      return outcome({
        events: notices,
        record: { ...record, current, retry },
        retried: { attempt: attempts, delayMs },
        keepRunning: plan?.kind === 'resume',
        // An approved change stays approved for the next try.
        approvals: [],
        kind: 'failed',
      });
    }
    if (plan?.kind === 'resume' && input.resume?.applying) {
      // Given up on: the config goes back to where the cut-off operation started, as after any
      // failed `up` (the executor restored the half-applied value it had read).
      await deps.executor.revert(target, input.resume.applying.from, valuesAt(target, input.resume.applying.from)).catch((e: unknown) => logger.error({ target: target.name, err: e }, 'could not revert a resumed operation'));
    }
    const errorCode = err instanceof PulumiScaleError ? err.code : 'PS_INTERNAL';
    const reason = isRetryable(err) ? `${message} (gave up after ${attempts} attempts)` : message;
    logger.error({ target: target.name, errorCode, err }, 'operation failed');
    // Commands are done with (recorded as failed). Signals stay active, so hold off for the
    // longest backoff before trying again, rather than failing at every evaluation.
    // What the engine does by itself (signals, a move into the bounds in effect) holds off after
    // a failure; an operator's command is done with once recorded.
    const automatic = plan === null || plan.kind === 'signals' || plan.kind === 'bounds';
    const retry = automatic ? { attempts: 0, notBefore: new Date(now + deps.retry.maxDelay).toISOString(), signalsOnly: plan !== null } : null;
    // The executor restored the previous config, so the value read before still holds.
    return outcome({
      events: [...notices, event('failed', to, reason, { errorCode })],
      record: { ...record, current, retry },
      consumed: consumed(),
      kind: 'failed',
    });
  }
}

/** Decides what this operation does, from the present value. */
/** `previewAll`: the global `engine.dryRun`, under which every operation is a preview. */
function planFor(input: OperationInput, current: number | null, now: number, previewAll: boolean): Plan | null {
  const { target, record } = input;
  const resume = input.resume;
  if (resume?.applying) {
    const reason = resume.kind === 'commands' ? `${resume.commandIds.length} command(s)` : 'alert signals';
    // Clamped to the bounds in effect: a window's move to 0 resumes as a move to 0.
    return { kind: 'resume', commandIds: resume.commandIds, decision: resumeDecision(resume.applying, reason, { min: input.bounds.min, max: input.bounds.max }) };
  }
  // Inside a schedule window its bounds replace the target's own.
  const bounded = { ...target, min: input.bounds.min, max: input.bounds.max };
  // With approvals, a schedule's commands and a person's never share an operation: the first
  // wait for approval, the others do not.
  const queue = target.approval === undefined ? input.commands : sameKindRun(input.commands);
  const commands = planCommands({ queue, current, target: bounded, pause: record.pause, now, previewAll });
  if (commands !== null) return { kind: 'commands', batch: commands.batch, decision: commands.decision };
  const bounds = planBounds({ current, bounds: input.bounds, target, pause: record.pause, now });
  if (bounds !== null) return { kind: 'bounds', decision: bounds };
  const signals = planSignals({
    current,
    signals: input.signals,
    target: bounded,
    pause: record.pause,
    cooldownUntil: record.cooldownUntil,
    history: input.recommendations,
    now,
  });
  return signals === null ? null : { kind: 'signals', plan: signals, decision: signals.decision };
}

/**
 * How long an automatic change the guard refused is held back (the same change from the same
 * value): long enough not to preview it at every evaluation, short enough that a stack fixed
 * meanwhile is tried again.
 */
export const GUARD_HOLD_MS = 5 * 60_000;

/** Why the preview guard refuses a preview's changes, or null when they are within its limits. */
export function guardRefusal(target: TargetConfig, changes: Record<string, number>): string | null {
  const guard = target.guard;
  if (guard === undefined) return null;
  const replace = changes.replace ?? 0;
  const remove = changes.delete ?? 0;
  const over: string[] = [];
  if (guard.maxReplace !== undefined && replace > guard.maxReplace) over.push(`replace ${replace} resource(s) (guard.maxReplace ${guard.maxReplace})`);
  if (guard.maxDelete !== undefined && remove > guard.maxDelete) over.push(`delete ${remove} resource(s) (guard.maxDelete ${guard.maxDelete})`);
  return over.length === 0 ? null : `the preview would ${over.join(' and ')}`;
}

/** An operator's multi-key command's values for the derived keys, when the plan is one. */
function overridesOf(plan: Plan): Record<string, number> {
  const first = plan.kind === 'commands' ? plan.batch[0]?.adjustment : undefined;
  return first?.type === 'to' ? (first.values ?? {}) : {};
}

/** A composite target's values for a driving value put back (derived keys by their rules). */
function valuesAt(target: TargetConfig, value: number | null): Record<string, number> | undefined {
  return value === null || target.derived.length === 0 ? undefined : keyValues(target, value);
}

/** The commands at the head of the queue that are all the daemon's own, or all a person's. */
function sameKindRun(queue: readonly Command[]): readonly Command[] {
  const first = queue[0];
  if (first === undefined) return queue;
  const automatic = isAutomatic(first);
  const end = queue.findIndex((c) => isAutomatic(c) !== automatic);
  return end === -1 ? queue : queue.slice(0, end);
}

function isDryRun(plan: Plan | null, deps: OperationDeps): boolean {
  return deps.dryRun || (plan?.kind === 'commands' && (plan.batch[0]?.dryRun ?? false));
}

/** The source an event names: the first command's, else the chosen signals'. */
function sourceOf(plan: Plan | null, input: OperationInput): IntentSource {
  if (plan?.kind === 'commands') return plan.batch[0]?.source ?? 'api';
  if (plan?.kind === 'resume') return input.commands.find((c) => plan.commandIds.includes(c.id))?.source ?? 'engine';
  if (plan?.kind === 'signals') return plan.plan.source;
  // A window's bounds are the schedule's doing; the target's own (after a window, or a value
  // set by hand outside them) are the engine's.
  return plan?.kind === 'bounds' && input.bounds.source.startsWith('schedule:') ? 'schedule' : 'engine';
}

/** What an event carries about what decided it. */
function detailsOf(plan: Plan | null, bounds: BoundsInEffect): Partial<ScalingEvent> {
  if (plan?.kind === 'commands') {
    const first = plan.batch[0];
    return { commands: plan.batch.map((c) => c.id), ...(first ? { intentId: first.id, evidence: first.evidence } : {}) };
  }
  if (plan?.kind === 'resume') return { commands: plan.commandIds };
  if (plan?.kind === 'signals') return { signals: plan.plan.signals, rule: plan.plan.rule };
  if (plan?.kind === 'bounds' && bounds.source.startsWith('schedule:')) {
    return { evidence: { schedule: { name: bounds.source.slice('schedule:'.length) } } };
  }
  return {};
}
