/**
 * Which stacks this daemon may act on. One daemon acts on every stack of its config; replicas
 * sharing a PostgreSQL store each act only on the stacks whose lease they hold (cluster/), and
 * prove it on every write about them with a {@link Fence}.
 *
 * The engine asks before it starts anything on a stack (an operation, a read, a drift check, a
 * schedule fire, the end of expired signals) and gives the fence to every write of its own;
 * inputs (alerts, commands, pauses) are taken by any replica and are never fenced.
 */
import type { Fence } from '../store/store.js';

export interface Ownership {
  /** This daemon's (replica's) id. */
  readonly self: string;
  /** Whether other replicas write the same store: memory must then be reloaded from it. */
  readonly shared: boolean;
  /** Among replicas: true while no other is seen, so none writes inputs this daemon must reload. */
  readonly alone?: boolean;
  /** Whether this daemon may act on `stack` now. */
  holds(stack: string): boolean;
  /** The fence for this daemon's writes about `stack`; undefined when writes need none. */
  fence(stack: string): Fence | undefined;
  /** The replica that holds `stack` as last seen, or null when none does. */
  ownerOf(stack: string): string | null;
  /**
   * A write fenced with `fence` was refused: this daemon no longer holds the stack at that
   * epoch, and steps down now (a hold taken since, at a higher epoch, stays).
   */
  refused(fence: Fence): void;
}

/** One daemon alone with its store: every stack is its own, and writes carry no fence. */
export function soleOwnership(self: string): Ownership {
  return {
    self,
    shared: false,
    holds: () => true,
    fence: () => undefined,
    ownerOf: () => self,
    refused: () => undefined,
  };
}
