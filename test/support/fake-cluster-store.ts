/**
 * An in-memory store shared by replicas, for unit tests of the lease keeper and of the engine
 * among replicas: a {@link MemoryStore} that is a ClusterStore too, with a "database time" of
 * its own that moves only when the test says so (`elapse`), as PostgreSQL's `now()` would be
 * the one clock every replica's lease is judged by.
 *
 * It keeps the PostgreSQL store's rules (store.ts `ClusterStore`, postgres-sql.ts): a lease is
 * free without a row, once released or expired (`expiresAt <= now`); acquiring raises the epoch
 * by one; renewal extends only a lease held at that epoch and not expired; a release keeps the
 * epoch. A fenced write whose lease no longer holds is refused whole with LeaseLostError, and a
 * fenced record write keeps the stored pause. Writes of inputs (a command, signals, a pause, an
 * approval's decision) tell the watchers their target after they are stored; a fire's command
 * does not (the fire's own replica queued it).
 *
 * Other replicas are played from the test: `seen` heartbeats one, `grant` gives one a lease, and
 * a direct write (`addCommand` without a fence) is an input another replica took.
 */
import { LeaseLostError, StoreUnavailableError } from '../../src/errors.js';
import type { ApprovalDecision, ClusterStore, Fence, Lease, OperationEnd, ReplicaSeen, ScheduleFire, SignalChange } from '../../src/store/store.js';
import type { Approval, Command, Pause, RunningOperation, ScalingEvent, TargetRecord } from '../../src/types.js';
import { MemoryStore, type MemoryStoreOptions, type StoreMethod } from './memory-store.js';

/** A ClusterStore method name. */
export type ClusterMethod = keyof ClusterStore;

const CLUSTER_METHODS: readonly ClusterMethod[] = ['heartbeat', 'acquireLeases', 'renewLeases', 'releaseLeases', 'listLeases', 'watch', 'savePause', 'decideApproval', 'notifyOthers'];

/** A lease row: `owner` null once released. Times in database ms. */
export interface LeaseRow {
  owner: string | null;
  epoch: number;
  expiresAt: number;
}

/** A replica row. Times in database ms. */
interface ReplicaRow {
  id: string;
  startedAt: string;
  lastSeen: number;
  draining: boolean;
}

/** One fenced write, as the store judged it. */
export interface FencedWrite {
  method: StoreMethod;
  fence: Fence;
  refused: boolean;
}

interface Watcher {
  listener: (target: string) => void;
  lost: (err: Error) => void;
}

export interface FakeClusterStoreOptions extends MemoryStoreOptions {
  /** The database time at the start (epoch ms); 2025-01-01T00:00:00Z by default. */
  start?: number;
}

export class FakeClusterStore extends MemoryStore implements ClusterStore {
  /** Lease rows by stack (released ones stay, keeping their epoch). */
  readonly leases = new Map<string, LeaseRow>();
  /** Replica rows by id. */
  readonly replicas = new Map<string, ReplicaRow>();
  /** Every fenced write, in order, refused or not (a refused one changes nothing and is not in `calls`). */
  readonly fenced: FencedWrite[] = [];
  /** Every ClusterStore method call, in order. */
  readonly clusterCalls: ClusterMethod[] = [];

  #dbNow: number;
  /** Above 0 while a write queues a command its watchers must not hear of. */
  #quiet = 0;
  readonly #watchers = new Set<Watcher>();
  readonly #clusterFailures = new Map<ClusterMethod, number>();

  constructor(opts: FakeClusterStoreOptions = {}) {
    super(opts);
    this.#dbNow = opts.start ?? Date.parse('2025-01-01T00:00:00.000Z');
    // Delivery expiry runs on the database's clock too.
    this.now = () => this.#dbNow;
  }

  /** The database's `now()`, epoch ms. */
  get dbNow(): number {
    return this.#dbNow;
  }

  /** Moves the database's time forward. */
  elapse(ms: number): void {
    this.#dbNow += ms;
  }

  /** The next `times` calls of `method` reject with StoreUnavailableError. */
  override failNext(method: StoreMethod | ClusterMethod, times = 1): void {
    if (isClusterMethod(method)) this.#clusterFailures.set(method, (this.#clusterFailures.get(method) ?? 0) + times);
    else super.failNext(method, times);
  }

  // ---- Playing the other replicas ----

  /** Replica `id` heartbeats now (another replica, played by the test). */
  seen(id: string, opts: { draining?: boolean; startedAt?: string } = {}): void {
    const startedAt = opts.startedAt ?? this.replicas.get(id)?.startedAt ?? new Date(this.#dbNow).toISOString();
    this.replicas.set(id, { id, startedAt, lastSeen: this.#dbNow, draining: opts.draining ?? false });
  }

  /** Gives `owner` the lease of `stack` now, whoever held it (another replica took it after an expiry). */
  grant(stack: string, owner: string, ttlMs: number): Lease {
    const row: LeaseRow = { owner, epoch: (this.leases.get(stack)?.epoch ?? 0) + 1, expiresAt: this.#dbNow + ttlMs };
    this.leases.set(stack, row);
    return toLease(stack, row);
  }

  /** Who holds `stack` now in the database's time, or null. */
  holder(stack: string): string | null {
    const row = this.leases.get(stack);
    return row !== undefined && row.owner !== null && row.expiresAt > this.#dbNow ? row.owner : null;
  }

  /** The stacks `owner` holds now. */
  heldBy(owner: string): string[] {
    return [...this.leases.keys()].filter((s) => this.holder(s) === owner).sort();
  }

  /**
   * The database cannot be reached (true) or can again (false): every method, of the Store and
   * of the ClusterStore, rejects with StoreUnavailableError meanwhile (as a closed store does).
   */
  cutOff(unreachable: boolean): void {
    this.closed = unreachable;
  }

  /** How many watches are open. */
  get watching(): number {
    return this.#watchers.size;
  }

  /** Every open watch loses its connection: each `lost` is called once, and the watch is gone. */
  loseWatches(err = new Error('the listening connection ended')): void {
    const watchers = [...this.#watchers];
    this.#watchers.clear();
    for (const w of watchers) w.lost(err);
  }

  // ---- ClusterStore ----

  async heartbeat(self: { id: string; startedAt: string; draining: boolean }, ttlMs: number): Promise<ReplicaSeen[]> {
    this.#cluster('heartbeat');
    this.replicas.set(self.id, { id: self.id, startedAt: self.startedAt, lastSeen: this.#dbNow, draining: self.draining });
    return [...this.replicas.values()]
      .filter((r) => r.id === self.id || r.lastSeen > this.#dbNow - ttlMs)
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id))
      .map((r) => ({ id: r.id, startedAt: r.startedAt, lastSeen: new Date(r.lastSeen).toISOString(), draining: r.draining }));
  }

  async acquireLeases(owner: string, stacks: readonly string[], max: number, ttlMs: number): Promise<Lease[]> {
    this.#cluster('acquireLeases');
    const acquired: Lease[] = [];
    for (const stack of new Set(stacks)) {
      if (acquired.length >= max) break;
      if (this.holder(stack) !== null) continue;
      acquired.push(this.grant(stack, owner, ttlMs));
    }
    return acquired;
  }

  async renewLeases(held: readonly Fence[], ttlMs: number): Promise<Lease[]> {
    this.#cluster('renewLeases');
    const renewed: Lease[] = [];
    for (const fence of held) {
      if (!this.#holds(fence)) continue;
      const row = this.leases.get(fence.stack) as LeaseRow;
      row.expiresAt = this.#dbNow + ttlMs;
      renewed.push(toLease(fence.stack, row));
    }
    return renewed.sort((a, b) => a.stack.localeCompare(b.stack));
  }

  async releaseLeases(held: readonly Fence[]): Promise<void> {
    this.#cluster('releaseLeases');
    for (const fence of held) {
      const row = this.leases.get(fence.stack);
      // Held at that epoch, expired or not; the epoch stays for the next holder to raise.
      if (row === undefined || row.owner !== fence.owner || row.epoch !== fence.epoch) continue;
      row.owner = null;
      row.expiresAt = this.#dbNow;
    }
  }

  async listLeases(): Promise<Lease[]> {
    this.#cluster('listLeases');
    return [...this.leases]
      .filter(([stack]) => this.holder(stack) !== null)
      .map(([stack, row]) => toLease(stack, row))
      .sort((a, b) => a.stack.localeCompare(b.stack));
  }

  async watch(listener: (target: string) => void, lost: (err: Error) => void): Promise<() => Promise<void>> {
    this.#cluster('watch');
    const watcher: Watcher = { listener, lost };
    this.#watchers.add(watcher);
    return async () => {
      this.#watchers.delete(watcher);
    };
  }

  async savePause(target: string, pause: Pause | null): Promise<void> {
    this.#cluster('savePause');
    const stored = this.targets.get(target);
    const record: TargetRecord = stored === undefined ? { name: target, current: null, paused: false, cooldownUntil: { up: null, down: null }, pause, retry: null } : { ...stored, pause };
    this.targets.set(target, structuredClone(record));
    this.#tell([target]);
  }

  /** The last `notifyOthers` said (the fake tells the watchers either way). */
  notifying = true;

  notifyOthers(on: boolean): void {
    this.notifying = on;
  }

  async decideApproval(decided: Approval): Promise<boolean> {
    this.#cluster('decideApproval');
    if (this.approvals.get(decided.id)?.status !== 'pending') return false;
    this.approvals.set(decided.id, structuredClone(decided));
    this.#tell([decided.target]);
    return true;
  }

  // ---- Store writes: fenced ones checked first, inputs told to the watchers ----

  override async addCommand(command: Command, fence?: Fence): Promise<void> {
    this.#reachable();
    this.#check('addCommand', fence);
    await super.addCommand(command);
    this.#tell([command.target]);
  }

  override async claimFire(fire: ScheduleFire, made: { command: Command | null; event: ScalingEvent | null }, fence?: Fence): Promise<boolean> {
    this.#reachable();
    this.#check('claimFire', fence);
    // Its command is queued unheard (MemoryStore queues it through addCommand, which would tell).
    this.#quiet += 1;
    try {
      return await super.claimFire(fire, made);
    } finally {
      this.#quiet -= 1;
    }
  }

  override async applySignals(change: SignalChange): Promise<void> {
    this.#reachable();
    await super.applySignals(change);
    this.#tell([...change.upsert.map((s) => s.target), ...change.end.map((k) => k.target)]);
  }

  override async startOperation(target: string, running: RunningOperation, fence?: Fence): Promise<void> {
    this.#reachable();
    this.#check('startOperation', fence);
    await super.startOperation(target, running);
  }

  override async markApplying(target: string, running: RunningOperation, fence?: Fence): Promise<void> {
    this.#reachable();
    this.#check('markApplying', fence);
    await super.markApplying(target, running);
  }

  override async finishOperation(target: string, end: OperationEnd, fence?: Fence): Promise<void> {
    this.#reachable();
    this.#check('finishOperation', fence);
    await super.finishOperation(target, fence === undefined ? end : { ...end, record: this.#keepPause(end.record) });
  }

  override async saveTarget(record: TargetRecord, fence?: Fence): Promise<void> {
    this.#reachable();
    this.#check('saveTarget', fence);
    await super.saveTarget(fence === undefined ? record : this.#keepPause(record));
  }

  override async appendEvent(event: ScalingEvent, fence?: Fence): Promise<void> {
    this.#reachable();
    this.#check('appendEvent', fence);
    await super.appendEvent(event);
  }

  override async saveApproval(approval: Approval, also: ApprovalDecision = {}, fence?: Fence): Promise<void> {
    this.#reachable();
    this.#check('saveApproval', fence);
    const kept = fence === undefined || also.record === undefined ? also : { ...also, record: this.#keepPause(also.record) };
    await super.saveApproval(approval, kept);
    this.#tell([approval.target]);
  }

  /** A fenced write holds when its lease is `owner`'s at `epoch` and not expired, now. */
  #holds(fence: Fence): boolean {
    const row = this.leases.get(fence.stack);
    return row !== undefined && row.owner === fence.owner && row.epoch === fence.epoch && row.expiresAt > this.#dbNow;
  }

  /** Refuses, before anything changes, a fenced write whose lease no longer holds. */
  #check(method: StoreMethod, fence: Fence | undefined): void {
    if (fence === undefined) return;
    const refused = !this.#holds(fence);
    this.fenced.push({ method, fence: { ...fence }, refused });
    if (refused) throw new LeaseLostError(fence.stack, `${method}: the lease of ${fence.stack} is no longer held at epoch ${fence.epoch}`);
  }

  /** A fenced record write keeps the pause the store holds (store.ts `savePause`). */
  #keepPause(record: TargetRecord): TargetRecord {
    return { ...record, pause: this.targets.get(record.name)?.pause ?? null };
  }

  #tell(targets: readonly string[]): void {
    if (this.#quiet > 0) return;
    for (const target of new Set(targets)) for (const w of [...this.#watchers]) w.listener(target);
  }

  /** Checked before a fence, so an unreachable database refuses as unreachable. */
  #reachable(): void {
    if (this.closed) throw new StoreUnavailableError('the database cannot be reached (store closed)');
  }

  #cluster(method: ClusterMethod): void {
    this.clusterCalls.push(method);
    this.#reachable();
    const left = this.#clusterFailures.get(method) ?? 0;
    if (left > 0) {
      this.#clusterFailures.set(method, left - 1);
      throw new StoreUnavailableError(`store unavailable (${method}, injected by the test)`);
    }
  }
}

function isClusterMethod(method: string): method is ClusterMethod {
  return (CLUSTER_METHODS as readonly string[]).includes(method);
}

function toLease(stack: string, row: LeaseRow): Lease {
  return { stack, owner: row.owner ?? '', epoch: row.epoch, expiresAt: new Date(row.expiresAt).toISOString() };
}
