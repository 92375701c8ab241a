/**
 * Keeps a watch on the inputs other replicas write (a command, an alert delivery, a pause) so
 * that the holder of a target's stack hears of them at once rather than at its next evaluation.
 *
 * The watch is a convenience, not the guarantee: word of a write can be lost with the watch's
 * connection, so the engine also reloads at every evaluation, and reloads everything whenever
 * the watch comes back.
 */
import type { Logger } from 'pino';
import type { Clock } from '../engine/clock.js';
import type { ClusterStore } from '../store/store.js';

/** What the watch tells. */
export interface InputListener {
  /** Inputs of these targets were written. */
  inputsChanged(targets: readonly string[]): void;
  /** Word may have been missed: reload every target. */
  reloadAll(): void;
}

/** How long to wait before watching again after the watch's connection failed. */
export const REWATCH_DELAY_MS = 2_000;

/**
 * Watches the store's inputs for `listener`, watching again after each failure. Resolves once the
 * first watch is set up (or failed, to be retried); the returned function stops it for good.
 */
export async function keepWatching(store: Pick<ClusterStore, 'watch'>, listener: InputListener, clock: Clock, logger: Logger): Promise<() => Promise<void>> {
  let stopped = false;
  let stop: (() => Promise<void>) | null = null;
  let timer: unknown = null;

  const again = (): void => {
    if (stopped || timer !== null) return;
    timer = clock.setTimer(() => {
      timer = null;
      void open(true);
    }, REWATCH_DELAY_MS);
  };
  const open = async (reopened: boolean): Promise<void> => {
    try {
      stop = await store.watch(
        (target) => listener.inputsChanged([target]),
        (err) => {
          stop = null;
          logger.warn({ err }, 'lost the watch on inputs written by other replicas; watching again');
          again();
        },
      );
      if (stopped) {
        await stop();
        return;
      }
      // Whatever was written while no watch was open is read now.
      if (reopened) listener.reloadAll();
    } catch (err) {
      logger.warn({ err }, 'cannot watch inputs written by other replicas; trying again');
      again();
    }
  };

  await open(false);
  return async () => {
    stopped = true;
    if (timer !== null) clock.clearTimer(timer);
    timer = null;
    await stop?.().catch(() => undefined);
  };
}
