/**
 * The executor's guard around a running Pulumi CLI: cancel it the way Pulumi expects, kill it
 * when it will not stop, and clear a stack lock only when the lock is provably our own dead
 * CLI's.
 *
 * "Provably ours" is narrower than "this host's, and the process is gone": a container can
 * share a hostname with another one (a pod's containers, `--hostname`) without seeing its
 * processes, so a colleague's live `pulumi up` next door would look dead. A lock is ours only
 * when, besides this host, this user and a pid that no longer runs, either
 * - its pid is one this executor killed itself (a CLI that ignored its cancel), or
 * - it was taken during an operation of ours that a stop cut off (the engine passes that
 *   operation's start as `ownLocksSince` when it resumes it).
 * Any other lock is left alone: the conflict is retried, then reported.
 */
import { hostname, userInfo } from 'node:os';
import { ConcurrentUpdateError, type Stack } from '@pulumi/pulumi/automation/index.js';
import type { Logger } from 'pino';
import { killCliProcesses, type CliMatch } from './cli-process.js';
import type { ApplyOptions } from './executor.js';
import { clearStaleLocks, lockDirOf, type IsRunning, type LockFile } from './stale-lock.js';

/** How much earlier than the operation's recorded start a lock of it may say it was taken. */
const CLOCK_SLACK_MS = 1_000;

export class CliGuard {
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #isRunning: IsRunning | undefined;
  /** Pids of CLIs this executor killed: their locks are ours. */
  readonly #killed = new Set<number>();

  constructor(opts: { logger: Logger; cancelGraceMs: number; isRunning?: IsRunning }) {
    this.#log = opts.logger;
    this.#graceMs = opts.cancelGraceMs;
    this.#isRunning = opts.isRunning;
  }

  /**
   * Runs a cancellable CLI operation. When `signal` aborts, the SDK sends the CLI one SIGINT
   * (Pulumi cancels cleanly and releases its lock); a CLI still running `cancelGrace` later is
   * killed with SIGKILL. Rejects with the signal's reason once the operation has ended. The
   * kill never outlives the operation: once it settles, a scan still under way kills nothing
   * (the next CLI call on the same stack would match too).
   */
  async cancellable<T>(cli: CliMatch, signal: AbortSignal | undefined, op: (signal?: AbortSignal) => Promise<T>): Promise<T> {
    if (signal === undefined) return op();
    signal.throwIfAborted();
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    let scan: Promise<void> = Promise.resolve();
    const escalate = (): void => {
      timer = setTimeout(() => {
        scan = killCliProcesses(cli, () => !settled).then((pids) => {
          for (const pid of pids) this.#killed.add(pid);
          if (pids.length > 0) this.#log.warn({ pids, stack: cli.stack }, 'the Pulumi CLI ignored the cancel; killed it');
        });
      }, this.#graceMs);
    };
    signal.addEventListener('abort', escalate, { once: true });
    try {
      return await op(signal);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw err;
    } finally {
      settled = true;
      signal.removeEventListener('abort', escalate);
      if (timer !== undefined) clearTimeout(timer);
      await scan;
    }
  }

  /**
   * Runs `op`; when it meets a stack lock that is provably our own dead CLI's (see above),
   * removes that lock, reports it through `onLockCleared`, and runs `op` once more.
   */
  async unlocking<T>(stack: Stack, opts: ApplyOptions, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof ConcurrentUpdateError) || opts.signal?.aborted) throw err;
      const cleared = await this.#clear(stack, opts.ownLocksSince).catch((e: unknown) => {
        this.#log.warn({ err: e, stack: stack.name }, 'could not inspect the stack lock');
        return [];
      });
      if (cleared.length === 0) throw err;
      for (const lock of cleared) {
        this.#log.warn({ stack: stack.name, lock }, 'cleared a stale lock left by a dead pulumi process of ours');
        opts.onLockCleared?.({ pid: lock.pid, hostname: lock.hostname, since: lock.timestamp });
      }
      return op();
    }
  }

  async #clear(stack: Stack, since: string | undefined): Promise<LockFile[]> {
    const ws = stack.workspace;
    const { url } = await ws.whoAmI();
    const project = (await ws.projectSettings()).name;
    const dir = url === undefined ? null : lockDirOf(url, project, stack.name);
    if (dir === null) return [];
    const from = since === undefined ? Number.NaN : Date.parse(since) - CLOCK_SLACK_MS;
    const user = userInfo().username;
    const ours = (lock: LockFile): boolean =>
      lock.username === user && (this.#killed.has(lock.pid) || (!Number.isNaN(from) && Date.parse(lock.timestamp) >= from));
    return clearStaleLocks(dir, { ...(this.#isRunning ? { isRunning: this.#isRunning } : {}), host: hostname(), ours });
  }
}
