/**
 * The event bus: outcomes are published once, and metrics, logs and (later) notifications
 * subscribe. Publishing never throws into the engine: a failing subscriber is reported to the
 * bus's error callback and the others still run.
 */
import type { ScalingEvent } from '../types.js';

/** What the engine publishes besides history events, for metrics. */
export type BusMessage =
  | { type: 'event'; event: ScalingEvent }
  | { type: 'intent'; target: string; source: string; merged: boolean }
  | { type: 'operation-start'; target: string }
  | { type: 'operation-end'; target: string; kind: ScalingEvent['kind'] | 'retried'; durationMs: number }
  | { type: 'retry'; target: string; attempt: number; delayMs: number };

/** A subscriber. It must not block: long work belongs in its own queue. */
export type Subscriber = (msg: BusMessage) => void;

export class EventBus {
  readonly #subs = new Set<Subscriber>();
  constructor(private readonly onError: (err: unknown) => void = () => {}) {}

  /** Adds a subscriber; returns a function that removes it. */
  subscribe(fn: Subscriber): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /** Delivers to every subscriber, synchronously, isolating their failures. */
  publish(msg: BusMessage): void {
    for (const fn of this.#subs) {
      try {
        fn(msg);
      } catch (err) {
        this.onError(err);
      }
    }
  }
}
