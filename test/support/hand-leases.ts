/**
 * A replica's leases taken in a FakeClusterStore by hand, for engine tests among replicas (the
 * lease keeper is tested on its own): `take` acquires (raising the epoch), `give` lets go.
 */
import type { Ownership } from '../../src/engine/ownership.js';
import type { Fence } from '../../src/store/store.js';
import type { FakeClusterStore } from './fake-cluster-store.js';

/** This replica's leases, taken in the store by hand (the keeper is tested on its own). */
export class HandLeases implements Ownership {
  readonly shared = true;
  /** No other replica seen (the keeper's `alone`). */
  alone = false;
  readonly refusedFor: string[] = [];
  readonly #epochs = new Map<string, number>();

  constructor(
    readonly store: FakeClusterStore,
    readonly self = 'r1',
    readonly ttlMs = 30_000,
  ) {}

  /** Acquires `stack`'s lease in the store (raising its epoch) and acts on it from now on. */
  take(stack: string): number {
    const { epoch } = this.store.grant(stack, this.self, this.ttlMs);
    this.#epochs.set(stack, epoch);
    return epoch;
  }

  /** Gives `stack` up (the keeper's lease lapsed or was released). */
  give(stack: string): void {
    this.#epochs.delete(stack);
  }

  holds(stack: string): boolean {
    return this.#epochs.has(stack);
  }

  fence(stack: string): Fence {
    return { stack, owner: this.self, epoch: this.#epochs.get(stack) ?? 0 };
  }

  ownerOf(stack: string): string | null {
    return this.holds(stack) ? this.self : this.store.holder(stack);
  }

  refused(fence: Fence): void {
    this.refusedFor.push(fence.stack);
    if (this.#epochs.get(fence.stack) === fence.epoch) this.#epochs.delete(fence.stack);
  }
}

