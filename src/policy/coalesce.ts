/**
 * Coalescing: every intent that arrives for a target while it waits or runs merges into the
 * target's one pending intent, so a storm of alerts becomes one or two operations. Pure, like
 * the rest of `policy/`; the engine calls it and stores the result before acknowledging.
 *
 * Which intent stays effective:
 * - the newest wins, because it reflects the latest view of the world;
 * - except that a pending scale-up is never dropped for a scale-down: losing capacity someone
 *   asked for is worse than scaling down one operation later;
 * - and a real pending intent is never replaced by a dry-run one: a preview must not cancel a
 *   change.
 * Either way the incoming intent is counted (`count`), so the history covers every intent.
 */
import type { Intent, PendingIntent } from '../types.js';
import { directionOf } from './decide.js';

/** What `coalesce` returns. */
export interface CoalesceResult {
  /** The target's new pending intent. */
  pending: PendingIntent;
  /** True when the incoming intent merged into an existing pending one. */
  merged: boolean;
}

/**
 * Merges `incoming` into the target's pending intent (or starts one). `current` is the target's
 * last known value, which gives a `to` intent its direction; `now` (ISO) stamps a new pending
 * intent's `firstAt`.
 */
export function coalesce(existing: PendingIntent | null, incoming: Intent, current: number | null, now: string): CoalesceResult {
  if (existing === null) {
    return { pending: { intent: incoming, count: 1, firstAt: now, attempts: 0, notBefore: null }, merged: false };
  }
  const keep = keepsExisting(existing.intent, incoming, current);
  return {
    pending: {
      intent: keep ? existing.intent : incoming,
      count: existing.count + 1,
      firstAt: existing.firstAt,
      // The retry count and backoff belong to the stack that refused (a lock), not to the
      // intent: a newer intent must not reset them, or a storm against a locked stack would run
      // Pulumi at every arrival and never give up.
      attempts: existing.attempts,
      notBefore: existing.notBefore,
    },
    merged: true,
  };
}

/**
 * Merges two pending intents of one target, `older` first, by the same rules as `coalesce`:
 * used when a retried or crashed operation goes back to the queue while newer intents wait.
 */
export function mergePending(older: PendingIntent, newer: PendingIntent, current: number | null): PendingIntent {
  const keep = keepsExisting(older.intent, newer.intent, current);
  const winner = keep ? older : newer;
  return {
    intent: winner.intent,
    count: older.count + newer.count,
    firstAt: older.firstAt <= newer.firstAt ? older.firstAt : newer.firstAt,
    // As in `coalesce`: the stack's retry state survives whichever intent wins.
    attempts: Math.max(older.attempts, newer.attempts),
    notBefore: later(older.notBefore, newer.notBefore),
    ...(winner.applying ? { applying: winner.applying } : {}),
  };
}

/** The later of two optional ISO instants. */
function later(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(a) >= Date.parse(b) ? a : b;
}

/** Whether the pending intent stays effective against a newer one. */
function keepsExisting(existing: Intent, incoming: Intent, current: number | null): boolean {
  // A preview never stands in the way of real work: a real intent is never replaced by a
  // dry-run one, and always replaces one. The up-over-down rule applies between equals.
  if (existing.dryRun !== incoming.dryRun) return !existing.dryRun;
  return directionOf(existing.adjustment, current) === 'up' && directionOf(incoming.adjustment, current) === 'down';
}
