/**
 * The executor: the only way the rest of PulumiScale touches Pulumi. Everything outside
 * `src/pulumi/` sees this interface; the Automation API implementation lives beside it.
 *
 * Rules of the contract:
 * - The engine calls it, never two operations on the same target at once (it owns ordering).
 * - `apply` is atomic for config: it sets every key in one call and runs `up`; when `up` fails
 *   (or is cancelled) it puts the previous values back before it settles, so no later
 *   operation sees temporary values. A dry run never writes the stack's config at all: the
 *   preview runs against a temporary copy.
 * - It never creates a stack unless the target says `createStack: true`; a missing one rejects
 *   with StackNotFoundError.
 * - Aborting `signal` cancels the Pulumi CLI the way Pulumi expects (SIGINT, then SIGKILL after
 *   the cancel grace) and `apply` rejects with the signal's reason once the config is restored.
 * - Failures reject with the typed errors of `errors.ts` (StackConflictError is retryable;
 *   PulumiProgramError, StackConfigError, PulumiCliMissingError, StackNotFoundError are not),
 *   mapped once here.
 * - It never decides capacity and never retries on its own, with one exception: a stack lock
 *   provably left by our own dead CLI (see cli-guard.ts) is cleared (reported through
 *   `onLockCleared`) and the operation tried once more.
 */
import type { TargetConfig } from '../config/schema.js';
import type { DriftReport } from './refresh.js';

export type { DriftReport } from './refresh.js';

/** The result of a successful `apply`. */
export interface ApplyResult {
  /** `changed` after `up`, `previewed` after a dry run's `preview`. */
  kind: 'changed' | 'previewed';
  /** The value now in the stack's config: the new one after `up`, the old one (null when the key had none) after a preview. */
  current: number | null;
  /** How long the Pulumi operation took. */
  durationMs: number;
  /** Resource changes Pulumi reported, by operation (e.g. { update: 1, same: 2 }). */
  changes: Record<string, number>;
  /** Each key the operation set (the driving key first): its value before, and the value set or previewed. */
  keys: { key: string; from: number | null; to: number }[];
}

/** A stale lock that `apply` removed before trying again. */
export interface ClearedLock {
  /** The dead process that held it. */
  pid: number;
  /** The host it was taken on (this one). */
  hostname: string;
  /** When it had been taken, as the lock says. */
  since: string;
}

/** How `apply` runs. */
export interface ApplyOptions {
  /** Preview against a temporary copy of the config instead of applying. */
  dryRun: boolean;
  /** Aborting cancels the running CLI; `apply` then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Told when a stale lock of our own dead CLI was cleared (for the history). */
  onLockCleared?: (lock: ClearedLock) => void;
  /**
   * When resuming an operation a stop cut off: when it started (ISO). A lock of this host and
   * user taken since then, whose process is gone, was that operation's CLI's and may be cleared.
   */
  ownLocksSince?: string;
  /**
   * The engine called `read` for this target right before, in the same operation, holding the
   * stack, and changed nothing since: the executor may apply from what that read saw instead of
   * reading the config again (one CLI process less per operation).
   */
  readJustBefore?: boolean;
  /**
   * The value of every key the target owns (a composite target's derived keys), the driving
   * key's being `to`; without it, the driving key alone is set. All are set in the one `up`.
   */
  values?: Readonly<Record<string, number>>;
  /**
   * Run a real `pulumi refresh` right before the `up` (drift `before-scale`), so the `up` plans
   * against the cloud as it is; a preview refreshes in memory only (`preview --refresh`), so it
   * shows what that `up` would do. A preview never writes the state.
   */
  refreshFirst?: boolean;
}

export interface Executor {
  /**
   * Reads the target's current value from its stack's config; StackNotFoundError when there is
   * no such stack. Aborting `signal` ends the CLI call and rejects with the signal's reason.
   */
  read(target: TargetConfig, opts?: { signal?: AbortSignal }): Promise<number | null>;
  /**
   * Reads the values of several targets that own keys of one stack in one project folder, with
   * one read of the stack's config (the start-up reads of many targets on one stack). Each
   * target gets its value, or the error its read would have had.
   */
  readMany(targets: readonly TargetConfig[], opts?: { signal?: AbortSignal }): Promise<Map<string, number | null | Error>>;
  /** Sets the target's key to `to` and runs `up`, or `preview` on a copy when `dryRun`. */
  apply(target: TargetConfig, to: number, opts: ApplyOptions): Promise<ApplyResult>;
  /**
   * Sets the target's key to `value` (removes its keys for null) without running anything;
   * `values` gives every owned key's value (a composite target), the driving key's being `value`.
   */
  revert(target: TargetConfig, value: number | null, values?: Readonly<Record<string, number>>): Promise<void>;
  /**
   * The target's value in the stack's latest update when that update succeeded, else null
   * (no update, a failed one, or the history could not be read): tells an operation that was
   * cut off after its `up` had succeeded from one that was not.
   */
  deployedValue(target: TargetConfig): Promise<number | null>;
  /**
   * Looks for drift without changing anything: a preview-only refresh of the target's stack
   * (resources changed outside Pulumi) and the driving key's value in the stack's config.
   * Aborting `signal` ends the CLI call and rejects with the signal's reason.
   */
  checkDrift(target: TargetConfig, opts?: { signal?: AbortSignal }): Promise<{ resources: DriftReport; value: number | null }>;
  /**
   * Forgets what was opened or read of the target's stack, so that the next call opens it
   * afresh: an inline stack's config (kept in a workspace of this process) is then seeded again
   * from the outputs of its latest update. For a replica taking a stack over from another, which
   * may have changed it since this process last looked. Not while an operation of it runs.
   */
  forget(target: TargetConfig): Promise<void>;
  /** Releases workspaces. Does not interrupt running operations. */
  close(): Promise<void>;
}
