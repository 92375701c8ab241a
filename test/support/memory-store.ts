/**
 * An in-memory Store for engine and HTTP unit tests. It copies everything in and out (as a
 * database would), so a test sees only what was written, keeps the contract's edge rules
 * (commands in arrival order, duplicate ids refused, multi-part writes all or nothing, closed
 * store refuses, pages capped, history trimmed per target and in total), and can be told to fail
 * a method with StoreUnavailableError to test "acknowledged means durable". It is usable without
 * `init` so tests can seed it first: its fields are public, and a target with no queued command,
 * no signal or no running operation has no entry in that map (never an empty list).
 */
import { StoreUnavailableError } from '../../src/errors.js';
import type { ApprovalDecision, ApprovalQuery, EventQuery, OperationEnd, OutboxMessage, OutboxRouter, ScheduleFire, SignalChange, Store } from '../../src/store/store.js';
import type { Approval, Command, Intent, RunningOperation, ScalingEvent, Signal, TargetRecord } from '../../src/types.js';

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
  /** The outbox's router; none: no messages. */
  route?: OutboxRouter;
}

/** The fake. Its maps are public so tests can seed and inspect them. */
export class MemoryStore implements Store {
  /** Every accepted command (the audit record), in order, consumed or not. */
  readonly intents: Intent[] = [];
  /** Queued commands by target, in arrival order. */
  readonly commands = new Map<string, Command[]>();
  /** Active signals by target, in the order they were first stored. */
  readonly signals = new Map<string, Signal[]>();
  /** When each signal (by target and id) first arrived, for loadSignals' order. */
  readonly #arrival = new Map<string, number>();
  #arrivals = 0;
  /** Running slots by target. */
  readonly running = new Map<string, RunningOperation>();
  /** Target records by name. */
  readonly targets = new Map<string, TargetRecord>();
  /** History, oldest first. */
  readonly events: ScalingEvent[] = [];
  /** Delivery ids and when they expire (ISO). */
  readonly deliveries = new Map<string, string>();
  /** The outbox, in the order messages were added. */
  readonly outbox: OutboxMessage[] = [];
  #lastMessage = 0;
  /** Approvals by id, in the order they were first saved. */
  readonly approvals = new Map<string, Approval>();
  /** Every method call, by name, in order. */
  readonly calls: StoreMethod[] = [];
  /** "now" for delivery expiry; tests may replace it. */
  now: () => number = () => Date.now();
  closed = false;

  readonly #failures = new Map<StoreMethod, number>();
  readonly #historyLimit: number;
  readonly #historyTotalLimit: number;
  readonly #route: OutboxRouter | null;
  /** The insertion number of each stored event, as the real stores' `seq` (seeded ones count as 0). */
  readonly #seq = new WeakMap<ScalingEvent, number>();
  #lastSeq = 0;
  /** The arrival number of each queued command, as the real stores' `seq` (seeded ones count as 0). */
  readonly #commandSeq = new WeakMap<Command, number>();
  #lastCommandSeq = 0;

  constructor(opts: MemoryStoreOptions = {}) {
    this.#historyLimit = opts.historyLimit ?? 10_000;
    this.#historyTotalLimit = opts.historyTotalLimit ?? 100_000;
    this.#route = opts.route ?? null;
  }

  /** The next `times` calls of `method` reject with StoreUnavailableError. */
  failNext(method: StoreMethod, times = 1): void {
    this.#failures.set(method, (this.#failures.get(method) ?? 0) + times);
  }

  async init(): Promise<void> {
    this.closed = false;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async addCommand(command: Command): Promise<void> {
    this.#call('addCommand');
    const queued = [...this.commands.values()].some((queue) => queue.some((c) => c.id === command.id));
    if (queued || this.intents.some((i) => i.id === command.id)) {
      throw new StoreUnavailableError(`command ${command.id} was already recorded`);
    }
    this.intents.push(copy(command));
    const stored = copy(command);
    this.#commandSeq.set(stored, ++this.#lastCommandSeq);
    this.commands.set(command.target, [...(this.commands.get(command.target) ?? []), stored]);
  }

  /** Handled schedule fires, keyed `target\0schedule\0at(ms)`. */
  readonly fires = new Map<string, ScheduleFire>();

  async claimFire(fire: ScheduleFire, made: { command: Command | null; event: ScalingEvent | null }): Promise<boolean> {
    this.#call('claimFire');
    const key = `${fire.target}\0${fire.schedule}\0${Date.parse(fire.at)}`;
    if (this.fires.has(key)) return false;
    if (made.event !== null) this.#refuseDuplicates([made.event]);
    if (made.command !== null) await this.addCommand(made.command);
    this.fires.set(key, { ...fire, at: new Date(Date.parse(fire.at)).toISOString() });
    // As the SQLite store: a schedule's fires a day older than this one are forgotten.
    for (const [k, f] of this.fires) {
      if (f.target === fire.target && f.schedule === fire.schedule && Date.parse(f.at) < Date.parse(fire.at) - 86_400_000) this.fires.delete(k);
    }
    if (made.event !== null) this.#append(made.event);
    return true;
  }

  async lastFires(): Promise<ScheduleFire[]> {
    this.#call('lastFires');
    const latest = new Map<string, ScheduleFire>();
    for (const fire of this.fires.values()) {
      const key = `${fire.target}\0${fire.schedule}`;
      const seen = latest.get(key);
      if (seen === undefined || Date.parse(seen.at) < Date.parse(fire.at)) latest.set(key, fire);
    }
    return [...latest.values()];
  }

  async loadCommands(): Promise<Map<string, Command[]>> {
    this.#call('loadCommands');
    // Grouped in global arrival order, as `ORDER BY seq` gives them: a target comes before
    // another when its oldest queued command arrived first.
    const all = [...this.commands.values()].flat();
    all.sort((a, b) => (this.#commandSeq.get(a) ?? 0) - (this.#commandSeq.get(b) ?? 0));
    const out = new Map<string, Command[]>();
    for (const command of all) out.set(command.target, [...(out.get(command.target) ?? []), copy(command)]);
    return out;
  }

  async applySignals(change: SignalChange): Promise<void> {
    this.#call('applySignals');
    this.#refuseDuplicates(change.events);
    for (const signal of change.upsert) {
      const list = this.signals.get(signal.target) ?? [];
      const i = list.findIndex((s) => s.id === signal.id);
      if (i === -1) {
        list.push(copy(signal));
        this.#arrival.set(key(signal), ++this.#arrivals);
      }
      else list[i] = copy(signal);
      this.signals.set(signal.target, list);
    }
    // After the upserts, as the real stores: a key in both lists ends.
    for (const key of change.end) {
      // An expiry's end leaves a signal sent again since (a later lastSeen), as the real stores do.
      const list = (this.signals.get(key.target) ?? []).filter((s) => s.id !== key.id || (key.lastSeen !== undefined && s.lastSeen > key.lastSeen));
      if (list.length > 0) this.signals.set(key.target, list);
      else this.signals.delete(key.target);
    }
    for (const event of change.events) this.#append(event);
  }

  async loadSignals(): Promise<Signal[]> {
    this.#call('loadSignals');
    const all = [...this.signals.values()].flat();
    // Arrival order, as the contract says: the order in which each first came.
    return all.sort((a, b) => (this.#arrival.get(key(a)) ?? 0) - (this.#arrival.get(key(b)) ?? 0)).map(copy);
  }

  async startOperation(target: string, running: RunningOperation): Promise<void> {
    this.#call('startOperation');
    this.running.set(target, copy(running));
  }

  async markApplying(target: string, running: RunningOperation): Promise<void> {
    this.#call('markApplying');
    if (this.running.has(target)) this.running.set(target, copy(running));
  }

  async finishOperation(target: string, end: OperationEnd): Promise<void> {
    this.#call('finishOperation');
    // Everything that can refuse is checked before anything changes: all or nothing.
    this.#refuseDuplicates(end.events);
    this.running.delete(target);
    for (const event of end.events) this.#append(event);
    const left = (this.commands.get(target) ?? []).filter((c) => !end.consumed.includes(c.id));
    if (left.length > 0) this.commands.set(target, left);
    else this.commands.delete(target);
    this.targets.set(end.record.name, copy(end.record));
    for (const approval of end.approvals ?? []) this.#saveApproval(approval);
  }

  async loadRunning(): Promise<Map<string, RunningOperation>> {
    this.#call('loadRunning');
    return new Map([...this.running].map(([k, v]) => [k, copy(v)]));
  }

  async saveTarget(record: TargetRecord): Promise<void> {
    this.#call('saveTarget');
    this.targets.set(record.name, copy(record));
  }

  async loadTargets(): Promise<Map<string, TargetRecord>> {
    this.#call('loadTargets');
    // As the real stores: a record seeded or saved without `pause`/`retry` reads back with null.
    return new Map([...this.targets].map(([k, v]) => [k, { ...copy(v), pause: v.pause ?? null, retry: v.retry ?? null }]));
  }

  async appendEvent(event: ScalingEvent): Promise<void> {
    this.#call('appendEvent');
    this.#refuseDuplicates([event]);
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

  async nextMessage(destination: string): Promise<OutboxMessage | null> {
    this.#call('nextMessage');
    const head = this.outbox.find((m) => m.destination === destination);
    return head === undefined ? null : copy(head);
  }

  async removeMessage(seq: number): Promise<void> {
    this.#call('removeMessage');
    const i = this.outbox.findIndex((m) => m.seq === seq);
    if (i !== -1) this.outbox.splice(i, 1);
  }

  async deferMessage(seq: number, attempts: number, notBefore: string): Promise<void> {
    this.#call('deferMessage');
    const message = this.outbox.find((m) => m.seq === seq);
    if (message !== undefined) Object.assign(message, { attempts, notBefore: new Date(Date.parse(notBefore)).toISOString() });
  }

  async countMessages(): Promise<Map<string, number>> {
    this.#call('countMessages');
    const counts = new Map<string, number>();
    for (const m of this.outbox) counts.set(m.destination, (counts.get(m.destination) ?? 0) + 1);
    return counts;
  }

  async dropMessagesExcept(keep: readonly string[]): Promise<Map<string, number>> {
    this.#call('dropMessagesExcept');
    const dropped = new Map<string, number>();
    for (let i = this.outbox.length - 1; i >= 0; i--) {
      const m = this.outbox[i] as OutboxMessage;
      if (keep.includes(m.destination)) continue;
      dropped.set(m.destination, (dropped.get(m.destination) ?? 0) + 1);
      this.outbox.splice(i, 1);
    }
    return dropped;
  }

  async saveApproval(approval: Approval, also: ApprovalDecision = {}): Promise<void> {
    this.#call('saveApproval');
    if (also.event !== undefined) this.#refuseDuplicates([also.event]);
    this.#saveApproval(approval);
    if (also.event !== undefined) this.#append(also.event);
    if (also.record !== undefined) this.targets.set(also.record.name, copy(also.record));
    const left = (this.commands.get(approval.target) ?? []).filter((c) => !(also.consumed ?? []).includes(c.id));
    if (left.length > 0) this.commands.set(approval.target, left);
    else this.commands.delete(approval.target);
  }

  async getApproval(id: string): Promise<Approval | null> {
    this.#call('getApproval');
    const found = this.approvals.get(id);
    return found === undefined ? null : copy(found);
  }

  async listApprovals(query: ApprovalQuery): Promise<Approval[]> {
    this.#call('listApprovals');
    const all = [...this.approvals.values()].reverse().filter((a) => query.status === undefined || a.status === query.status);
    return all.slice(0, Math.min(query.limit, MAX_PAGE)).map(copy);
  }

  /** Saves in place (an update keeps its order), forgetting decided ones beyond the newest 1,000. */
  #saveApproval(approval: Approval): void {
    this.approvals.set(approval.id, copy(approval));
    const order = [...this.approvals.values()];
    const cut = order.length - 1000;
    order.forEach((a, i) => {
      if (i < cut && a.status !== 'pending' && a.status !== 'approved') this.approvals.delete(a.id);
    });
  }

  /** Appends, then trims the target's oldest events beyond its limit and everyone's beyond the total. */
  #append(event: ScalingEvent): void {
    const stored = copy(event);
    this.#seq.set(stored, ++this.#lastSeq);
    this.events.push(stored);
    for (const destination of this.#route?.(event) ?? []) {
      this.outbox.push({ seq: ++this.#lastMessage, destination, event: copy(event), createdAt: new Date(this.now()).toISOString(), attempts: 0, notBefore: null });
    }
    // The limit never changes and every insert trims, so at most one event of the target is over.
    const own = this.events.filter((e) => e.target === event.target).length;
    if (own > this.#historyLimit) this.events.splice(this.events.findIndex((e) => e.target === event.target), 1);
    // As `seq <= newest - limit` in SQL: an event goes once `limit` newer ones were recorded,
    // even when some of those were trimmed since.
    const upto = this.#lastSeq - this.#historyTotalLimit;
    while (this.events.length > 0 && (this.#seq.get(this.events[0] as ScalingEvent) ?? 0) <= upto) this.events.shift();
  }

  /** Refuses events whose id is already in the history or repeated among them, as a unique index would. */
  #refuseDuplicates(events: ScalingEvent[]): void {
    const seen = new Set(this.events.map((e) => e.id));
    for (const event of events) {
      if (seen.has(event.id)) throw new StoreUnavailableError(`event ${event.id} was already recorded`);
      seen.add(event.id);
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

function key(signal: Signal): string {
  return `${signal.target}\0${signal.id}`;
}
