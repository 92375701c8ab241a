/**
 * The executor: the only way the rest of PulumiScale touches Pulumi. Everything outside
 * `src/pulumi/` sees this interface; the Automation API implementation lives beside it.
 *
 * Rules of the contract:
 * - The engine calls it, never two operations on the same target at once (it owns ordering).
 * - `apply` is atomic for config: it sets every key in one call, runs `up` (or `preview` for a
 *   dry run) and, when `up` fails or for any preview, puts the previous values back before it
 *   settles, so no later operation sees temporary values.
 * - Failures reject with the typed errors of `errors.ts` (StackConflictError is retryable;
 *   PulumiProgramError, StackConfigError, PulumiCliMissingError are not), mapped once here.
 * - It never decides capacity and never retries on its own.
 */
import type { TargetConfig } from '../config/schema.js';

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
}

export interface Executor {
  /** Reads the target's current value from its stack's config (creating the stack if needed). */
  read(target: TargetConfig): Promise<number | null>;
  /** Sets the target's key to `to` and runs `up`, or `preview` when `dryRun`. */
  apply(target: TargetConfig, to: number, opts: { dryRun: boolean }): Promise<ApplyResult>;
  /** Releases workspaces. Does not interrupt running operations. */
  close(): Promise<void>;
}
