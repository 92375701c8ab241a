/**
 * The signals of one target, kept so that a decision costs the same with 10 or 100,000 of them.
 *
 * A decision needs, of the active signals: how many ask each way, the one asking for the most
 * (the first in arrival order among equals), and the first few in arrival order (an event lists
 * at most {@link MAX_LISTED}). Sizing every signal at every evaluation made each delivery cost
 * as much as the signals already firing: a flood of new alerts slowed to a crawl as it grew.
 *
 * Signals of one step class (direction and band, see `stepClass`) ask for the same value from
 * any present value, so the set keeps one representative per class, the earliest to arrive,
 * and {@link SignalSet.summary} hands `planSignals` those few instead of every signal. Expiry
 * is kept in a heap, so a signal past its `expiresAt` leaves the summary as soon as the summary
 * is asked for at that time, without looking at the others.
 *
 * Pure: no clock of its own (the caller passes the present), no I/O.
 */
import type { Signal } from '../types.js';
import { stepClass, type StepRules } from './steps.js';

/** The most signals an event lists. */
export const MAX_LISTED = 10;

/** What `planSignals` reads of the active signals. */
export interface SignalSummary {
  /** How many active signals ask up, and down. */
  ups: number;
  downs: number;
  /**
   * The signals to size, in arrival order: one per step class of the deciding direction (up
   * when any asks up), each the earliest of its class. Sizing these finds the same winner as
   * sizing every signal.
   */
  candidates: readonly Signal[];
  /** The first active signals in arrival order, one more than an event lists. */
  first: readonly Signal[];
}

/** The summary of a plain list of active signals, in arrival order (the simple way, for tests and one-off plans). */
export function summarize(signals: readonly Signal[], rules: StepRules | undefined): SignalSummary {
  const set = new SignalSet(rules);
  for (const s of signals) set.set(s);
  return set.summary(Number.NEGATIVE_INFINITY);
}

interface Entry {
  signal: Signal;
  /** Arrival order: set when the id first arrives, kept when it is sent again. */
  seq: number;
  /** Its step class while active; null once expired (it stays in the set until ended). */
  cls: string | null;
  /** `expiresAt` in epoch ms, or null for never. */
  expires: number | null;
}

interface StepClassMembers {
  members: Set<Entry>;
  /** The member that arrived first; undefined when it left and the next must be looked for. */
  first: Entry | undefined;
}

/** A Map-like set of a target's signals by id, in arrival order, with a cheap summary. */
export class SignalSet {
  readonly #rules: StepRules | undefined;
  readonly #all = new Map<string, Entry>();
  /** The entries not yet seen expired, in arrival order (a re-activated one goes last). */
  readonly #active = new Map<string, Entry>();
  readonly #classes = new Map<string, StepClassMembers>();
  /** Min-heap of (expiry, entry); stale pairs (the entry was sent again or ended) are skipped. */
  #expiries: { at: number; entry: Entry }[] = [];
  #seq = 0;
  #expiredHeld = 0;

  /** `rules`: the target's step rules, which decide each signal's class. */
  constructor(rules: StepRules | undefined) {
    this.#rules = rules;
  }

  /** How many signals are held, expired ones not yet ended included. */
  get size(): number {
    return this.#all.size;
  }

  /** How many signals are past their expiry but still held (waiting for the caller to end them). */
  get expiredHeld(): number {
    return this.#expiredHeld;
  }

  /** The signal with this id, expired or not, if held. */
  get(id: string): Signal | undefined {
    return this.#all.get(id)?.signal;
  }

  /** Every signal, active or expired but not yet ended, in arrival order. */
  *values(): IterableIterator<Signal> {
    for (const entry of this.#all.values()) yield entry.signal;
  }

  /** Adds a signal, or replaces the one with its id (keeping its place in arrival order). */
  set(signal: Signal): void {
    let entry = this.#all.get(signal.id);
    if (entry === undefined) {
      entry = { signal, seq: this.#seq++, cls: null, expires: null };
      this.#all.set(signal.id, entry);
    } else {
      if (entry.cls === null) this.#expiredHeld -= 1;
      this.#leaveClass(entry);
      entry.signal = signal;
    }
    // An expiry that is not a date has passed (as the store's readers took it before).
    const expires = signal.expiresAt === null ? null : Date.parse(signal.expiresAt);
    entry.expires = expires === null ? null : Number.isNaN(expires) ? Number.NEGATIVE_INFINITY : expires;
    entry.cls = stepClass(signal.direction, signal.value, signal.threshold, this.#rules);
    if (!this.#active.has(signal.id)) this.#active.set(signal.id, entry);
    this.#joinClass(entry);
    if (entry.expires !== null) this.#pushExpiry(entry.expires, entry);
  }

  /** Removes a signal; false when it was not there. */
  delete(id: string): boolean {
    const entry = this.#all.get(id);
    if (entry === undefined) return false;
    this.#all.delete(id);
    if (entry.cls === null) this.#expiredHeld -= 1;
    else this.#deactivate(entry);
    return true;
  }

  /**
   * Takes the signals past their expiry at `now` out of the summary (they stay in the set until
   * ended) and returns them, so that the caller can end them.
   */
  expire(now: number): Signal[] {
    const expired: Signal[] = [];
    const heap = this.#expiries;
    while (heap.length > 0 && (heap[0] as { at: number }).at <= now) {
      const { at, entry } = popMin(heap);
      // Stale when the signal was sent again (a new expiry), ended, or already expired.
      if (entry.cls === null || entry.expires !== at || this.#all.get(entry.signal.id) !== entry) continue;
      this.#deactivate(entry);
      this.#expiredHeld += 1;
      expired.push(entry.signal);
    }
    return expired;
  }

  /** The signals past their expiry at `now` (to end), in arrival order. */
  due(now: number): Signal[] {
    const out: Signal[] = [];
    for (const entry of this.#all.values()) if (entry.cls === null || (entry.expires !== null && entry.expires <= now)) out.push(entry.signal);
    return out;
  }

  /** The active signals at `now`, in arrival order. */
  active(now: number): Signal[] {
    const out: Signal[] = [];
    for (const entry of this.#active.values()) if (entry.expires === null || entry.expires > now) out.push(entry.signal);
    return out;
  }

  /** What a decision at `now` needs; expires what is due first. */
  summary(now: number): SignalSummary {
    this.expire(now);
    let ups = 0;
    let downs = 0;
    for (const [key, cls] of this.#classes) {
      if (key.startsWith('up:')) ups += cls.members.size;
      else downs += cls.members.size;
    }
    const deciding = ups > 0 ? 'up:' : 'down:';
    const candidates: Entry[] = [];
    for (const [key, cls] of this.#classes) {
      if (!key.startsWith(deciding)) continue;
      cls.first ??= earliest(cls.members);
      if (cls.first !== undefined) candidates.push(cls.first);
    }
    candidates.sort((a, b) => a.seq - b.seq);
    const first: Signal[] = [];
    for (const entry of this.#active.values()) {
      if (first.length > MAX_LISTED) break;
      first.push(entry.signal);
    }
    return { ups, downs, candidates: candidates.map((e) => e.signal), first };
  }

  #deactivate(entry: Entry): void {
    this.#leaveClass(entry);
    entry.cls = null;
    this.#active.delete(entry.signal.id);
  }

  #joinClass(entry: Entry): void {
    const key = entry.cls as string;
    const cls = this.#classes.get(key);
    if (cls === undefined) {
      this.#classes.set(key, { members: new Set([entry]), first: entry });
      return;
    }
    cls.members.add(entry);
    if (cls.first !== undefined && entry.seq < cls.first.seq) cls.first = entry;
  }

  #leaveClass(entry: Entry): void {
    if (entry.cls === null) return;
    const cls = this.#classes.get(entry.cls);
    if (cls === undefined) return;
    cls.members.delete(entry);
    if (cls.members.size === 0) this.#classes.delete(entry.cls);
    else if (cls.first === entry) cls.first = undefined;
  }

  #pushExpiry(at: number, entry: Entry): void {
    // Refreshes leave stale pairs behind; rebuild once they outnumber the live ones.
    if (this.#expiries.length > 2 * this.#active.size + 1024) {
      this.#expiries = [];
      for (const e of this.#active.values()) if (e.expires !== null && e !== entry) pushHeap(this.#expiries, { at: e.expires, entry: e });
    }
    pushHeap(this.#expiries, { at, entry });
  }
}

function earliest(members: Set<Entry>): Entry | undefined {
  let best: Entry | undefined;
  for (const e of members) if (best === undefined || e.seq < best.seq) best = e;
  return best;
}

type HeapItem = { at: number; entry: Entry };

function pushHeap(heap: HeapItem[], item: HeapItem): void {
  heap.push(item);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if ((heap[parent] as HeapItem).at <= item.at) break;
    heap[i] = heap[parent] as HeapItem;
    i = parent;
  }
  heap[i] = item;
}

function popMin(heap: HeapItem[]): HeapItem {
  const top = heap[0] as HeapItem;
  const last = heap.pop() as HeapItem;
  if (heap.length === 0) return top;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= heap.length) break;
    const right = left + 1;
    const child = right < heap.length && (heap[right] as HeapItem).at < (heap[left] as HeapItem).at ? right : left;
    if ((heap[child] as HeapItem).at >= last.at) break;
    heap[i] = heap[child] as HeapItem;
    i = child;
  }
  heap[i] = last;
  return top;
}
