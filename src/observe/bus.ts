/**
 * The event bus: outcomes are published once, and metrics, logs and (later) notifications
 * subscribe. Publishing never throws into the engine: a failing subscriber is reported to the
 * bus's error callback and the others still run.
 */
import type { ScalingEvent } from '../types.js';

/** What the engine publishes besides history events, for metrics. */
export type BusMessage =
  | { type: 'event'; event: ScalingEvent }
  /** An operator command (or a webhook's preview command) was queued. */
  | { type: 'intent'; target: string; source: string }
  | { type: 'operation-start'; target: string }
  /** `none`: the operation found nothing to do (or nothing worth recording) once it read the present. */
  | { type: 'operation-end'; target: string; kind: ScalingEvent['kind'] | 'retried' | 'none'; durationMs: number }
  | { type: 'retry'; target: string; attempt: number; delayMs: number }
  | { type: 'schedule-fire'; target: string; schedule: string; outcome: 'fired' | 'missed' }
  /** A drift check ended: the stack differs from what the daemon knew, or not, or the check failed. */
  | { type: 'drift-check'; target: string; outcome: 'clean' | 'drifted' | 'failed' }
  /** One notification attempt's outcome (notify/notifier.ts); `destination` is a configured name. */
  | { type: 'notification'; destination: string; outcome: 'sent' | 'retried' | 'rate-limited' | 'rejected' | 'expired' }
  /** Leases this replica took or gave up (cluster/lease-keeper.ts), and why. */
  | { type: 'lease-change'; reason: 'acquired' | 'released' | 'lost' | 'store-unavailable'; count: number }
  /** After each lease beat: the leases this replica holds and the live replicas it sees. */
  | { type: 'cluster'; held: number; replicasLive: number }
  | {
      type: 'target';
      target: string;
      /** The value last read or written. */
      current: number | null;
      /** The last evaluation's desired value. */
      desired: number | null;
      /** How many signals are active, per direction. */
      signals: { up: number; down: number };
    };

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
