/**
 * Per-stack leases for replicas sharing one PostgreSQL store: which stacks this replica acts on.
 *
 * Why per stack, and why fenced: one leader for everything would leave the other replicas idle
 * and make every failover move all the work at once; a lease per stack lets replicas share the
 * work, and the epoch each acquisition raises lets the store refuse the late writes of a replica
 * that was paused or cut off past its lease (ownership.ts, store.ts `Fence`).
 *
 * How it runs: a beat every third of the TTL —
 * 1. heartbeat, which also lists the live replicas (seen within the TTL, by the database's clock);
 * 2. renew every lease held; one missing from the answer is lost, and the replica steps down from
 *    it at once (starts nothing new there; an `up` already running finishes, its writes refused);
 * 3. take free or expired leases up to its fair share, `ceil(stacks / live replicas)`, or give up
 *    idle ones above it, so that a replica that joins gets work without anyone's crash;
 * 4. read the lease table, for `ownerOf` and `GET /api/v1/cluster`.
 * A beat that cannot reach the store steps down from every stack: a replica that cannot renew
 * cannot know that it still holds anything. It tries again at the next beat.
 *
 * Time: expiries are the database's; this replica only keeps, per lease, a local deadline on its
 * monotonic clock (when the request that set the expiry was sent, plus the TTL, minus a margin).
 * Past it, `holds` is false even before a beat runs, so a replica that was stopped (SIGSTOP, a
 * frozen VM) and resumes acts on nothing until its next renewal says it still holds the stack.
 */
import type { Logger } from 'pino';
import type { Clock } from '../engine/clock.js';
import type { Ownership } from '../engine/ownership.js';
import type { EventBus } from '../observe/bus.js';
import type { ClusterStore, Fence, Lease, ReplicaSeen } from '../store/store.js';

/** Why a lease was taken or given up, as counted in `pulumiscale_lease_changes_total{reason}`. */
export type LeaseChange = 'acquired' | 'released' | 'lost' | 'store-unavailable';

/** What the engine does when this replica's stacks change. */
export interface LeaseHolder {
  /** Stacks just acquired: load what the store holds for them and act. Rejects when it could not. */
  acquired(stacks: readonly string[]): Promise<void>;
  /** Stacks given up or lost: start nothing more on them. */
  lost(stacks: readonly string[]): void;
  /** Whether something runs on `stack` now (an idle stack is given up first). */
  busy(stack: string): boolean;
}

export interface LeaseKeeperOptions {
  store: ClusterStore;
  /** This replica's id. */
  self: string;
  /** When this replica started (ISO-8601), shown in the replica table. */
  startedAt: string;
  /** Every stack of the config (keys as `stackKeyOf` makes them); duplicates are ignored. */
  stacks: readonly string[];
  /** How long a lease lasts without renewal, ms (`store.leaseTTL`). */
  ttlMs: number;
  /** Timers for the beats. */
  clock: Clock;
  logger: Logger;
  /** Where lease changes and counts are published (metrics). */
  bus: EventBus;
  /** A monotonic clock in ms for the local deadlines (default `performance.now`). */
  monotonic?: () => number;
}

/** What `GET /api/v1/cluster` shows. */
export interface ClusterView {
  self: string;
  replicas: ReplicaSeen[];
  leases: Lease[];
}

/** One lease this replica holds. */
interface Held {
  epoch: number;
  /** Local monotonic ms after which it is not acted on without a renewal. */
  validUntil: number;
}

export class LeaseKeeper implements Ownership {
  readonly self: string;
  readonly shared = true;
  readonly #store: ClusterStore;
  readonly #opts: LeaseKeeperOptions;
  readonly #stacks: string[];
  readonly #monotonic: () => number;
  readonly #held = new Map<string, Held>();
  /**
   * Leases stepped down from because the store could not be reached, by stack: renewed first
   * when it can be again, so that a short outage does not leave the stacks idle for a whole TTL
   * (their rows are still this replica's, so no one else may take them meanwhile).
   */
  readonly #unreachable = new Map<string, number>();
  #holder: LeaseHolder | null = null;
  #replicas: ReplicaSeen[] = [];
  #table = new Map<string, Lease>();
  #timer: unknown = null;
  /** Loads of acquired stacks under way (see #took), which a hand-over waits for. */
  readonly #taking = new Set<Promise<void>>();
  #beating: Promise<void> | null = null;
  /** A beat asked for while one ran, run right after it. */
  #again: Promise<void> | null = null;
  #draining = false;
  #stopped = false;

  constructor(opts: LeaseKeeperOptions) {
    this.self = opts.self;
    this.#store = opts.store;
    this.#opts = opts;
    this.#monotonic = opts.monotonic ?? (() => performance.now());
    // Each replica tries the free stacks in an order of its own, so that replicas starting
    // together mostly take different ones instead of all contending for the first.
    this.#stacks = [...new Set(opts.stacks)].sort((a, b) => spread(opts.self, a) - spread(opts.self, b) || a.localeCompare(b));
  }

  /** Who is told when stacks are acquired or lost (the engine); set before `start`. */
  attach(holder: LeaseHolder): void {
    this.#holder = holder;
  }

  /** Runs the first beat now and the next ones every third of the TTL. */
  start(): void {
    this.#schedule(0);
  }

  holds(stack: string): boolean {
    const held = this.#held.get(stack);
    return held !== undefined && this.#monotonic() < held.validUntil;
  }

  fence(stack: string): Fence | undefined {
    const held = this.#held.get(stack);
    // Not held: a fence that can only fail, so that the write is refused rather than unfenced.
    return { stack, owner: this.self, epoch: held?.epoch ?? 0 };
  }

  ownerOf(stack: string): string | null {
    if (this.holds(stack)) return this.self;
    const lease = this.#table.get(stack);
    return lease === undefined || lease.owner === this.self ? null : lease.owner;
  }

  refused(fence: Fence): void {
    if (this.#held.get(fence.stack)?.epoch === fence.epoch) this.#drop([fence.stack], 'lost');
  }

  /** Whether the last beat saw no other replica (draining ones count: they still hold stacks). */
  get alone(): boolean {
    return this.#replicas.every((r) => r.id === this.self);
  }

  /** How many leases this replica holds now. */
  get heldCount(): number {
    return this.#held.size;
  }

  /** The replicas and leases as last read, with this replica's own leases as it holds them. */
  async view(): Promise<ClusterView> {
    const leases = await this.#store.listLeases();
    return { self: this.self, replicas: this.#replicas, leases };
  }

  /**
   * A drain began: this replica takes no more leases and tells the others (its heartbeat says
   * draining, so their fair share counts without it); idle stacks are given up at once.
   */
  drain(): void {
    this.#draining = true;
    if (!this.#stopped) this.#schedule(0);
  }

  /**
   * The drain's hand-over, once nothing runs: stops beating and releases every lease, so that
   * another replica takes them at its next beat rather than after the TTL. Never rejects.
   */
  async handOver(): Promise<void> {
    this.#draining = true;
    this.#stopped = true;
    if (this.#timer !== null) this.#opts.clock.clearTimer(this.#timer);
    this.#timer = null;
    await this.#beating;
    await this.#again;
    await Promise.allSettled([...this.#taking]);
    this.#unreachable.clear();
    const fences = this.#fences();
    this.#drop(fences.map((f) => f.stack), 'released');
    try {
      if (fences.length > 0) await this.#store.releaseLeases(fences);
      // Said last, so that the others' fair share counts without this replica from their next beat.
      await this.#store.heartbeat({ id: this.self, startedAt: this.#opts.startedAt, draining: true }, this.#opts.ttlMs);
      this.#opts.logger.info({ leases: fences.length }, 'handed over every lease');
    } catch (err) {
      this.#opts.logger.warn({ err, leases: fences.length }, 'could not release the leases; they lapse after their TTL');
    } finally {
      this.#publish();
    }
  }

  /** Stops beating without releasing anything (the leases lapse): for a shutdown that gave up. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.#opts.clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  /**
   * Runs one beat now (tests; the timer runs them otherwise). Called while one runs, it runs
   * another right after, so that what changed meanwhile (a drain) is said by a beat of its own.
   */
  beat(): Promise<void> {
    if (this.#beating !== null) {
      this.#again ??= this.#beating.then(() => {
        this.#again = null;
        return this.beat();
      });
      return this.#again;
    }
    this.#beating = this.#beat().finally(() => {
      this.#beating = null;
    });
    return this.#beating;
  }

  #schedule(ms: number): void {
    if (this.#timer !== null) this.#opts.clock.clearTimer(this.#timer);
    this.#timer = this.#opts.clock.setTimer(() => {
      this.#timer = null;
      void this.beat().finally(() => {
        if (!this.#stopped && this.#timer === null) this.#schedule(this.#opts.ttlMs / 3);
      });
    }, ms);
  }

  async #beat(): Promise<void> {
    const { ttlMs, logger } = this.#opts;
    try {
      this.#replicas = await this.#store.heartbeat({ id: this.self, startedAt: this.#opts.startedAt, draining: this.#draining }, ttlMs);
      // Alone, inputs written here need telling nobody; told again before any stack is given up.
      this.#store.notifyOthers(!this.alone);
      await this.#renew();
      await this.#balance();
      this.#table = new Map((await this.#store.listLeases()).map((l) => [l.stack, l]));
    } catch (err) {
      const stacks = [...this.#held.keys()];
      if (stacks.length > 0) logger.warn({ err, leases: stacks.length }, 'the store cannot be reached: stepping down from every stack until it can');
      else logger.warn({ err }, 'the store cannot be reached: no lease taken');
      for (const [stack, held] of this.#held) this.#unreachable.set(stack, held.epoch);
      // Not knowing who else there is, it tells everyone.
      this.#store.notifyOthers(true);
      this.#drop(stacks, 'store-unavailable');
    } finally {
      this.#publish();
    }
  }

  /** Renews every lease held; the ones missing from the answer are lost. */
  async #renew(): Promise<void> {
    const fences = this.#fences();
    const stale = this.#draining ? [] : [...this.#unreachable].map(([stack, epoch]) => ({ stack, owner: this.self, epoch }));
    if (fences.length + stale.length === 0) return;
    const sent = this.#monotonic();
    const renewed = await this.#store.renewLeases([...fences, ...stale], this.#opts.ttlMs);
    // Asked once the store answers: one missing from the answer has lapsed or was taken.
    this.#unreachable.clear();
    const kept = new Set(renewed.map((l) => l.stack));
    for (const lease of renewed) {
      const held = this.#held.get(lease.stack);
      if (held !== undefined && held.epoch === lease.epoch) held.validUntil = this.#deadline(sent);
    }
    const lost = fences.map((f) => f.stack).filter((s) => !kept.has(s));
    if (lost.length > 0) {
      this.#opts.logger.warn({ stacks: lost }, 'leases lost (expired or taken by another replica): stepping down from those stacks');
      this.#drop(lost, 'lost');
    }
    // Back after an outage, at the same epoch: nobody took them; taken up again from the store.
    const back = renewed.filter((l) => stale.some((f) => f.stack === l.stack && f.epoch === l.epoch));
    if (back.length > 0) this.#took(back, sent);
  }

  /** Takes free leases up to the fair share, or gives idle ones up above it. */
  async #balance(): Promise<void> {
    const live = this.#replicas.filter((r) => !r.draining && r.id !== this.self).length + (this.#draining ? 0 : 1);
    const share = this.#draining ? 0 : Math.ceil(this.#stacks.length / Math.max(1, live));
    if (this.#held.size > share) {
      const surplus = [...this.#held.keys()].filter((s) => !(this.#holder?.busy(s) ?? false)).slice(0, this.#held.size - share);
      if (surplus.length === 0) return;
      const fences = this.#fences().filter((f) => surplus.includes(f.stack));
      // Stepped down first: nothing starts on them while the release is on its way.
      this.#drop(surplus, 'released');
      await this.#store.releaseLeases(fences);
      return;
    }
    if (this.#held.size === share) return;
    const candidates = this.#stacks.filter((s) => !this.#held.has(s));
    const sent = this.#monotonic();
    const acquired = await this.#store.acquireLeases(this.self, candidates, share - this.#held.size, this.#opts.ttlMs);
    if (acquired.length > 0) this.#took(acquired, sent);
  }

  /**
   * Holds `leases` (set by a request sent at `sent`) and tells the engine, which loads their
   * state. Not awaited: the beats, and so the renewals, never wait on that work.
   */
  #took(leases: readonly Lease[], sent: number): void {
    for (const lease of leases) this.#held.set(lease.stack, { epoch: lease.epoch, validUntil: this.#deadline(sent) });
    this.#count('acquired', leases.length);
    const stacks = leases.map((l) => l.stack);
    this.#opts.logger.info({ stacks, epochs: leases.map((l) => l.epoch) }, 'leases acquired');
    const taking = (this.#holder?.acquired(stacks) ?? Promise.resolve()).catch(async (err: unknown) => {
      // Acting on a stack whose state could not be loaded would act on a guess: give it back.
      this.#opts.logger.warn({ err, stacks }, 'could not load the state of acquired stacks; giving them back');
      const fences = this.#fences().filter((f) => stacks.includes(f.stack) && leases.some((l) => l.stack === f.stack && l.epoch === f.epoch));
      this.#drop(fences.map((f) => f.stack), 'released');
      await this.#store.releaseLeases(fences).catch(() => undefined);
    });
    this.#taking.add(taking);
    void taking.finally(() => this.#taking.delete(taking));
  }

  /** The local deadline of a lease whose expiry was set by a request sent at `sent`. */
  #deadline(sent: number): number {
    // The database set `now() + ttl` after the request left; a margin covers clock rate drift.
    return sent + this.#opts.ttlMs - Math.min(1_000, this.#opts.ttlMs / 10);
  }

  #fences(): Fence[] {
    return [...this.#held].map(([stack, held]) => ({ stack, owner: this.self, epoch: held.epoch }));
  }

  /** Forgets leases locally and tells the engine: nothing more starts on those stacks. */
  #drop(stacks: readonly string[], reason: LeaseChange): void {
    const gone = stacks.filter((s) => this.#held.delete(s));
    if (gone.length === 0) return;
    this.#count(reason, gone.length);
    this.#holder?.lost(gone);
  }

  #count(reason: LeaseChange, n: number): void {
    this.#opts.bus.publish({ type: 'lease-change', reason, count: n });
  }

  #publish(): void {
    const live = this.#replicas.filter((r) => !r.draining).length;
    this.#opts.bus.publish({ type: 'cluster', held: this.#held.size, replicasLive: live });
  }
}

/** A replica's own order of the stacks: a hash of (replica, stack). */
function spread(self: string, stack: string): number {
  let h = 2166136261;
  for (const ch of `${self}\0${stack}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}
