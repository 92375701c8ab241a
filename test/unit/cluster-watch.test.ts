// keepWatching (cluster/watch.ts): word of the inputs other replicas write reaches the engine
// while the watch holds; a lost watch is opened again after REWATCH_DELAY_MS, and everything is
// reloaded then, since word of what was written meanwhile is gone with the connection.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { keepWatching, REWATCH_DELAY_MS, type InputListener } from '../../src/cluster/watch.js';
import { intent, settle } from '../support/engine.js';
import { FakeClock } from '../support/fake-clock.js';
import { FakeClusterStore } from '../support/fake-cluster-store.js';

/** What the engine would be: records what it hears; `reloaded` resolves at the next reloadAll. */
class Listener implements InputListener {
  readonly heard: string[] = [];
  reloads = 0;
  #waiting: (() => void)[] = [];

  inputsChanged(targets: readonly string[]): void {
    this.heard.push(...targets);
  }

  reloadAll(): void {
    this.reloads += 1;
    for (const resolve of this.#waiting.splice(0)) resolve();
  }

  reloaded(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}

async function watching(store = new FakeClusterStore()) {
  const clock = new FakeClock();
  const listener = new Listener();
  const stop = await keepWatching(store, listener, clock, pino({ level: 'silent' }));
  return { store, clock, listener, stop };
}

describe('keepWatching', () => {
  it('tells the listener the target of each input written, without reloading on the first watch', async () => {
    const { store, listener } = await watching();
    expect(store.watching).toBe(1);
    await store.addCommand(intent('web'));
    await store.savePause('api', null);
    expect(listener.heard).toEqual(['web', 'api']);
    expect(listener.reloads).toBe(0);
  });

  it('a lost watch is opened again after the delay, then everything is reloaded (what was written meanwhile was not heard)', async () => {
    const { store, clock, listener } = await watching();
    store.loseWatches();
    expect(store.watching).toBe(0);
    await store.addCommand(intent('web'));
    expect(listener.heard).toEqual([]);
    clock.advance(REWATCH_DELAY_MS - 1);
    await settle();
    expect(store.watching).toBe(0);
    const reloaded = listener.reloaded();
    clock.advance(1);
    await reloaded;
    expect(store.watching).toBe(1);
    expect(listener.reloads).toBe(1);
    await store.addCommand(intent('api'));
    expect(listener.heard).toEqual(['api']);
  });

  it('a watch that cannot be opened is tried again until it is, then everything is reloaded once', async () => {
    const store = new FakeClusterStore();
    store.failNext('watch', 2);
    const { clock, listener } = await watching(store);
    expect(store.watching).toBe(0);
    clock.advance(REWATCH_DELAY_MS);
    await settle();
    expect(store.watching).toBe(0);
    expect(listener.reloads).toBe(0);
    const reloaded = listener.reloaded();
    clock.advance(REWATCH_DELAY_MS);
    await reloaded;
    expect(store.watching).toBe(1);
    expect(store.clusterCalls.filter((c) => c === 'watch')).toHaveLength(3);
    expect(listener.reloads).toBe(1);
  });

  it('every loss is made up for: lost twice, it watches and reloads twice', async () => {
    const { store, clock, listener } = await watching();
    for (let i = 1; i <= 2; i++) {
      store.loseWatches();
      const reloaded = listener.reloaded();
      clock.advance(REWATCH_DELAY_MS);
      await reloaded;
      expect(store.watching).toBe(1);
      expect(listener.reloads).toBe(i);
    }
  });

  it('stop closes the watch for good', async () => {
    const { store, clock, listener, stop } = await watching();
    await stop();
    expect(store.watching).toBe(0);
    await store.addCommand(intent('web'));
    clock.advance(10 * REWATCH_DELAY_MS);
    await settle();
    expect(listener.heard).toEqual([]);
    expect(store.watching).toBe(0);
  });

  it('stopped while waiting to watch again, it never watches again', async () => {
    const { store, clock, listener, stop } = await watching();
    store.loseWatches();
    await stop();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(10 * REWATCH_DELAY_MS);
    await settle();
    expect(store.watching).toBe(0);
    expect(listener.reloads).toBe(0);
  });

  it('stopped while a new watch fails to open, it does not try again', async () => {
    const { store, clock, stop } = await watching();
    store.loseWatches();
    store.failNext('watch');
    clock.advance(REWATCH_DELAY_MS);
    await stop();
    await settle();
    expect(clock.pendingTimers).toBe(0);
    expect(store.watching).toBe(0);
  });

  it('stopped while a new watch is being opened, that watch is closed as soon as it opens', async () => {
    const { store, clock, listener, stop } = await watching();
    store.loseWatches();
    clock.advance(REWATCH_DELAY_MS);
    await stop();
    await settle();
    expect(store.clusterCalls.filter((c) => c === 'watch')).toHaveLength(2);
    expect(store.watching).toBe(0);
    expect(listener.reloads).toBe(0);
  });
});
