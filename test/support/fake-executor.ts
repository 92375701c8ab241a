/**
 * An executor for engine tests: it keeps each target's value in memory, records every call, and
 * can be told to fail, to conflict N times, or to hold applies until the test releases them, so
 * ordering and concurrency are tested without sleeps or Pulumi.
 */
import type { TargetConfig } from '../../src/config/schema.js';
import { StackConflictError } from '../../src/errors.js';
import type { ApplyOptions, ApplyResult, DriftReport, Executor } from '../../src/pulumi/executor.js';

/** One recorded call. */
export interface ExecutorCall {
  op: 'read' | 'apply' | 'revert' | 'checkDrift';
  target: string;
  to?: number;
  dryRun?: boolean;
  /** An apply asked for a real refresh first (drift before-scale). */
  refreshFirst?: boolean;
}

/** An apply waiting for the test to let it finish. */
export interface HeldApply {
  target: string;
  to: number;
  /** Lets the apply go on (it then succeeds or throws as configured). */
  release(): void;
}

/** The fake; values are keyed by target name. */
export class FakeExecutor implements Executor {
  /** Each target's value in its "stack config"; absent means not set (read gives null). */
  readonly values = new Map<string, number>();
  /** Every call, in the order they started. */
  readonly calls: ExecutorCall[] = [];
  /** Applies being held (oldest first), while `holding` is on. */
  readonly held: HeldApply[] = [];
  /** While true, every apply waits until released. */
  holding = false;
  /** The most calls that were in flight at once, across stacks. */
  maxInFlight = 0;
  /** How many times two calls were in flight on the same stack (must stay 0). */
  sameStackOverlaps = 0;
  closed = false;

  readonly #applyErrors = new Map<string, Error[]>();
  readonly #readErrors = new Map<string, Error[]>();
  readonly #perStack = new Map<string, number>();
  readonly #watchers = new Set<() => void>();
  #inFlight = 0;

  /** The apply calls only. */
  get applies(): ExecutorCall[] {
    return this.calls.filter((c) => c.op === 'apply');
  }

  /** The next applies of `target` throw these errors, one per call. */
  failApply(target: string, ...errors: Error[]): void {
    this.#applyErrors.set(target, [...(this.#applyErrors.get(target) ?? []), ...errors]);
  }

  /** The next `times` applies of `target` find the stack locked (StackConflictError). */
  conflict(target: string, times: number): void {
    this.failApply(target, ...Array.from({ length: times }, () => new StackConflictError('the stack is locked by another update')));
  }

  /** The next reads of `target` throw these errors, one per call. */
  failRead(target: string, ...errors: Error[]): void {
    this.#readErrors.set(target, [...(this.#readErrors.get(target) ?? []), ...errors]);
  }

  /** Releases the oldest held apply (of `target`, when given). */
  release(target?: string): void {
    const i = this.held.findIndex((h) => target === undefined || h.target === target);
    const h = this.held[i];
    if (h === undefined) throw new Error(`no held apply${target === undefined ? '' : ` of ${target}`}`);
    h.release();
  }

  /** Stops holding and releases every held apply. */
  releaseAll(): void {
    this.holding = false;
    while (this.held.length > 0) this.release();
  }

  /** Resolves once `predicate` holds, checked now and after every call starts or ends. */
  until(predicate: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (!predicate()) return;
        this.#watchers.delete(check);
        resolve();
      };
      this.#watchers.add(check);
      check();
    });
  }

  async read(target: TargetConfig): Promise<number | null> {
    this.calls.push({ op: 'read', target: target.name });
    return this.#track(target, async () => {
      const err = this.#readErrors.get(target.name)?.shift();
      if (err !== undefined) throw err;
      return this.values.get(target.name) ?? null;
    });
  }

  /** How many `readMany` calls were made (each one CLI read of a stack's config for real). */
  readManyCalls = 0;

  async readMany(targets: readonly TargetConfig[]): Promise<Map<string, number | null | Error>> {
    this.readManyCalls += 1;
    const values = new Map<string, number | null | Error>();
    for (const t of targets) {
      try {
        values.set(t.name, await this.read(t));
      } catch (err) {
        values.set(t.name, err instanceof Error ? err : new Error(String(err)));
      }
    }
    return values;
  }

  /**
   * A held apply stands for a CLI that runs until released: aborting its signal ends it the way
   * a cancelled CLI ends, rejecting with the signal's reason, and the value stays as it was.
   */
  async apply(target: TargetConfig, to: number, opts: ApplyOptions): Promise<ApplyResult> {
    this.calls.push({ op: 'apply', target: target.name, to, dryRun: opts.dryRun, ...(opts.refreshFirst ? { refreshFirst: true } : {}) });
    return this.#track(target, async () => {
      if (this.holding) await this.#hold(target.name, to, opts.signal);
      const err = this.#applyErrors.get(target.name)?.shift();
      if (err !== undefined) throw err;
      const before = this.values.get(target.name);
      const wanted = { ...(opts.values ?? {}), [target.configKey]: to };
      const had = this.keyValues.get(target.name) ?? {};
      const keys = Object.entries(wanted).map(([key, value]) => ({ key, from: key === target.configKey ? (before ?? null) : (had[key] ?? null), to: value }));
      const changes = this.changes.get(target.name) ?? { update: 1 };
      if (opts.dryRun) return { kind: 'previewed', current: before ?? to, durationMs: 0, changes, keys };
      this.values.set(target.name, to);
      this.keyValues.set(target.name, wanted);
      this.deployed.set(target.name, to);
      return { kind: 'changed', current: to, durationMs: 0, changes, keys };
    });
  }

  async revert(target: TargetConfig, value: number | null): Promise<void> {
    this.calls.push({ op: 'revert', target: target.name, ...(value === null ? {} : { to: value }) });
    await this.#track(target, async () => {
      if (value === null) this.values.delete(target.name);
      else this.values.set(target.name, value);
    });
  }

  /** What each target's drift checks find besides its value (default: no resource drift). */
  readonly drift = new Map<string, DriftReport>();

  /** While set, drift checks wait for it (a test acts while one runs). */
  driftGate: Promise<void> | null = null;

  async checkDrift(target: TargetConfig): Promise<{ resources: DriftReport; value: number | null }> {
    this.calls.push({ op: 'checkDrift', target: target.name });
    return this.#track(target, async () => {
      if (this.driftGate !== null) await this.driftGate;
      const err = this.#readErrors.get(target.name)?.shift();
      if (err !== undefined) throw err;
      return { resources: this.drift.get(target.name) ?? { changes: {}, resources: [] }, value: this.values.get(target.name) ?? null };
    });
  }

  /** Every key's value after each target's last successful apply (composite targets). */
  readonly keyValues = new Map<string, Record<string, number>>();
  /** The resource changes each target's applies and previews report (default { update: 1 }). */
  readonly changes = new Map<string, Record<string, number>>();

  /** The value of the latest successful apply per target, as a stack's history would say. */
  readonly deployed = new Map<string, number>();

  async deployedValue(target: TargetConfig): Promise<number | null> {
    return this.deployed.get(target.name) ?? null;
  }

  /** Targets forgotten (`forget`), in call order. */
  readonly forgotten: string[] = [];

  async forget(target: TargetConfig): Promise<void> {
    this.forgotten.push(target.name);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  #hold(target: string, to: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const leave = (): void => {
        this.held.splice(this.held.indexOf(entry), 1);
        signal?.removeEventListener('abort', cancel);
      };
      const cancel = (): void => {
        leave();
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
        this.#changed();
      };
      const entry: HeldApply = {
        target,
        to,
        release: () => {
          leave();
          resolve();
        },
      };
      this.held.push(entry);
      signal?.addEventListener('abort', cancel, { once: true });
      this.#changed();
    });
  }

  async #track<T>(target: TargetConfig, fn: () => Promise<T>): Promise<T> {
    const stack = target.stackKey;
    const onStack = (this.#perStack.get(stack) ?? 0) + 1;
    if (onStack > 1) this.sameStackOverlaps += 1;
    this.#perStack.set(stack, onStack);
    this.#inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.#inFlight);
    this.#changed();
    try {
      return await fn();
    } finally {
      this.#perStack.set(stack, (this.#perStack.get(stack) ?? 1) - 1);
      this.#inFlight -= 1;
      this.#changed();
    }
  }

  #changed(): void {
    for (const check of [...this.#watchers]) check();
  }
}
