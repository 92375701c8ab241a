/**
 * An in-memory Store for engine and HTTP unit tests. It copies everything in and out (as a
 * database would), so a test sees only what was written, keeps the contract's edge rules
 * (duplicate ids refused, closed store refuses, pages capped, history trimmed per target and
 * in total), and can be told to fail a method
 * with StoreUnavailableError to test "acknowledged means durable". It is usable without `init`
 * so tests can seed it first.
 */
import { StoreUnavailableError } from '../../src/errors.js';
import type { EventQuery, PendingSlots, Store } from '../../src/store/store.js';
import type { Intent, PendingIntent, ScalingEvent, TargetRecord } from '../../src/types.js';

/** A Store method name. */
export type StoreMethod = Exclude<keyof Store, 'init' | 'close'>;

/** The largest page `listEvents` returns, as the contract caps it. */
const MAX_PAGE = 1000;

/** The history limits, as the real stores take them (same defaults as SqliteStore). */
export interface MemoryStoreOptions {
  /** Events kept per target. Default 10,000. */
  historyLimit?: number;
  /** Events kept in all, across targets. Default 100,000. */
  historyTotalLimit?: number;
}

/** The fake. Its maps are public so tests can seed and inspect them. */
export class MemoryStore implements Store {
  /** Every accepted intent, in order. */
  readonly intents: Intent[] = [];
  /** Pending slots by target. */
  readonly pending = new Map<string, PendingSlots>();
  /** Target records by name. */
  readonly targets = new Map<string, TargetRecord>();
  /** History, oldest first. */
  readonly events: ScalingEvent[] = [];
  /** Delivery ids and when they expire (ISO). */
  readonly deliveries = new Map<string, string>();
  /** Every method call, by name, in order. */
  readonly calls: StoreMethod[] = [];
  /** "now" for delivery expiry; tests may replace it. */
  now: () => number = () => Date.now();
  closed = false;

  readonly #failures = new Map<StoreMethod, number>();
  readonly #historyLimit: number;
  readonly #historyTotalLimit: number;
  /** The insertion number of each stored event, as the real stores' `seq` (seeded ones count as 0). */
  readonly #seq = new WeakMap<ScalingEvent, number>();
  #lastSeq = 0;

  constructor(opts: MemoryStoreOptions = {}) {
    this.#historyLimit = opts.historyLimit ?? 10_000;
    this.#historyTotalLimit = opts.historyTotalLimit ?? 100_000;
  }

  /** The next `times` calls of `method` reject with StoreUnavailableError. */
  failNext(method: StoreMethod, times = 1): void {
    this.#failures.set(method, (this.#failures.get(method) ?? 0) + times);
  }

  /** A target's slots (empty ones when none were written). */
  slots(target: string): PendingSlots {
    return copy(this.pending.get(target) ?? { queued: null, running: null });
  }

  async init(): Promise<void> {
    this.closed = false;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async enqueue(intent: Intent, queued: PendingIntent): Promise<void> {
    this.#call('enqueue');
    if (this.intents.some((i) => i.id === intent.id)) throw new StoreUnavailableError(`intent ${intent.id} was already recorded`);
    this.intents.push(copy(intent));
    this.pending.set(intent.target, { ...this.slots(intent.target), queued: copy(queued) });
  }

  async startOperation(target: string, running: PendingIntent): Promise<void> {
    this.#call('startOperation');
    this.pending.set(target, { queued: null, running: copy(running) });
  }

  async markApplying(target: string, running: PendingIntent): Promise<void> {
    this.#call('markApplying');
    const slots = this.slots(target);
    if (slots.running !== null) this.pending.set(target, { ...slots, running: copy(running) });
  }

  async finishOperation(
    target: string,
    outcome: { event: ScalingEvent | null; record: TargetRecord; requeue?: PendingIntent | null },
  ): Promise<void> {
    this.#call('finishOperation');
    this.#refuseDuplicate(outcome.event);
    const slots = this.slots(target);
    this.pending.set(target, { queued: outcome.requeue ? copy(outcome.requeue) : slots.queued, running: null });
    if (outcome.event) this.#append(outcome.event);
    this.targets.set(target, copy(outcome.record));
  }

  async loadPending(): Promise<Map<string, PendingSlots>> {
    this.#call('loadPending');
    const out = new Map<string, PendingSlots>();
    for (const [name, slots] of this.pending) if (slots.queued || slots.running) out.set(name, copy(slots));
    return out;
  }

  async saveTarget(record: TargetRecord): Promise<void> {
    this.#call('saveTarget');
    this.targets.set(record.name, copy(record));
  }

  async loadTargets(): Promise<Map<string, TargetRecord>> {
    this.#call('loadTargets');
    return new Map([...this.targets].map(([k, v]) => [k, copy(v)]));
  }

  async appendEvent(event: ScalingEvent): Promise<void> {
    this.#call('appendEvent');
    this.#refuseDuplicate(event);
    this.#append(event);
  }

  async listEvents(query: EventQuery): Promise<ScalingEvent[]> {
    this.#call('listEvents');
    let list = [...this.events].reverse();
    if (query.target !== undefined) list = list.filter((e) => e.target === query.target);
    if (query.before !== undefined) {
      const i = list.findIndex((e) => e.id === query.before);
      list = i === -1 ? [] : list.slice(i + 1);
    }
    return list.slice(0, Math.min(query.limit, MAX_PAGE)).map(copy);
  }

  async lastEvents(): Promise<Map<string, ScalingEvent>> {
    this.#call('lastEvents');
    const out = new Map<string, ScalingEvent>();
    for (const e of this.events) out.set(e.target, copy(e));
    return out;
  }

  async rememberDelivery(key: string, expiresAt: string): Promise<boolean> {
    this.#call('rememberDelivery');
    const known = this.deliveries.get(key);
    // Expired means expiresAt <= now; a replay does not extend the expiry.
    if (known !== undefined && Date.parse(known) > this.now()) return false;
    this.deliveries.set(key, expiresAt);
    return true;
  }

  async forgetDelivery(key: string): Promise<void> {
    this.#call('forgetDelivery');
    this.deliveries.delete(key);
  }

  /** Appends, then trims the target's oldest events beyond its limit and everyone's beyond the total. */
  #append(event: ScalingEvent): void {
    const stored = copy(event);
    this.#seq.set(stored, ++this.#lastSeq);
    this.events.push(stored);
    // The limit never changes and every insert trims, so at most one event of the target is over.
    const own = this.events.filter((e) => e.target === event.target).length;
    if (own > this.#historyLimit) this.events.splice(this.events.findIndex((e) => e.target === event.target), 1);
    // As `seq <= newest - limit` in SQL: an event goes once `limit` newer ones were recorded,
    // even when some of those were trimmed since.
    const upto = this.#lastSeq - this.#historyTotalLimit;
    while (this.events.length > 0 && (this.#seq.get(this.events[0] as ScalingEvent) ?? 0) <= upto) this.events.shift();
  }

  #refuseDuplicate(event: ScalingEvent | null): void {
    if (event !== null && this.events.some((e) => e.id === event.id)) {
      throw new StoreUnavailableError(`event ${event.id} was already recorded`);
    }
  }

  #call(method: StoreMethod): void {
    this.calls.push(method);
    if (this.closed) throw new StoreUnavailableError(`store closed (${method})`);
    const left = this.#failures.get(method) ?? 0;
    if (left > 0) {
      this.#failures.set(method, left - 1);
      throw new StoreUnavailableError(`store unavailable (${method}, injected by the test)`);
    }
  }
}

function copy<T>(value: T): T {
  return structuredClone(value);
}
