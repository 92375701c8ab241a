/**
 * Which deliveries of a signal are stale. Alert senders retry and reorder: Alertmanager re-sends,
 * SNS retries an ALARM after the OK was taken. A delivery older than what is known of its signal
 * (an earlier `lastSeen`) changes nothing, and neither does one of an alert that started no later
 * than its recorded resolution. "What is known" is memory, and also what the deliveries still
 * being written say: they reach the store (and then memory) before the one judged now, since the
 * store commits in call order.
 */
import type { SignalChange } from '../store/store.js';
import type { Signal, SignalKey } from '../types.js';

/** How many resolutions are remembered; the oldest go first (a retry that late is past SNS's own retry policy). */
const MAX_RESOLUTIONS = 10_000;

/** A signal change on its way to the store: the new signal, or its end (with when it resolved, ms). */
type Pending = { signal: Signal } | { endedAt: number | undefined };

/** What one delivery put in flight, to settle when it is done. */
export interface Accepted {
  /** The upserts worth storing, each keeping its signal's first `since`. */
  upsert: Signal[];
  /** The delivery's token: only its own in-flight entries are cleared when it settles. */
  readonly owner: object;
  /** The signals (target and id) it put in flight. */
  readonly keys: readonly string[];
}

/** The engine's record of signal changes in flight and of recent resolutions; see the top of this file. */
export class SignalLedger {
  /** Changes accepted but not yet in memory, by target and id, with the delivery that made each. */
  readonly #inFlight = new Map<string, { owner: object; change: Pending }>();
  /** When each recently ended signal resolved (epoch ms), by target and id. */
  readonly #resolved = new Map<string, number>();

  /**
   * Judges a delivery's upserts against `memory` and the deliveries in flight, then puts its
   * changes in flight (upserts first, then ends: a key in both ends, as in the store).
   */
  accept(change: Pick<SignalChange, 'upsert' | 'end'>, memory: (s: SignalKey) => Signal | undefined): Accepted {
    // Every upsert is judged before any of this delivery's changes is put in flight.
    const upsert: Signal[] = [];
    const upsertKeys: string[] = [];
    for (const s of change.upsert) {
      const key = keyOf(s);
      const pending = this.#inFlight.get(key)?.change;
      const before = pending === undefined ? memory(s) : 'signal' in pending ? pending.signal : undefined;
      if (before !== undefined && before.lastSeen > s.lastSeen) continue;
      const resolved = pending !== undefined && 'endedAt' in pending ? pending.endedAt : this.#resolved.get(key);
      if (before === undefined && resolved !== undefined && Date.parse(s.since) <= resolved) continue;
      upsert.push(before === undefined || before.since === s.since ? s : { ...s, since: before.since });
      upsertKeys.push(key);
    }
    const owner = {};
    const keys: string[] = [];
    const put = (key: string, pending: Pending): void => {
      this.#inFlight.set(key, { owner, change: pending });
      keys.push(key);
    };
    upsert.forEach((s, i) => put(upsertKeys[i] as string, { signal: s }));
    for (const end of change.end) put(keyOf(end), { endedAt: end.at === undefined ? undefined : Date.parse(end.at) });
    return { upsert, owner, keys };
  }

  /** The delivery reached memory (or failed): what it had in flight is memory's (or nothing) now. */
  settle(accepted: Accepted): void {
    for (const key of accepted.keys) if (this.#inFlight.get(key)?.owner === accepted.owner) this.#inFlight.delete(key);
  }

  /** Keeps when an alert resolved (its `at`), so that a late delivery of its start is known as stale. */
  ended(key: SignalKey): void {
    const at = key.at === undefined ? Number.NaN : Date.parse(key.at);
    if (Number.isNaN(at)) return;
    if (this.#resolved.size >= MAX_RESOLUTIONS) {
      const oldest = this.#resolved.keys().next().value;
      if (oldest !== undefined) this.#resolved.delete(oldest);
    }
    this.#resolved.set(keyOf(key), at);
  }
}

function keyOf(s: SignalKey): string {
  return `${s.target}\0${s.id}`;
}
