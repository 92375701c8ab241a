// Group commit of alert deliveries (src/store/postgres-batch.ts), on a recording writer: which
// deliveries share a write, in what order the writes go, and who hears of a failed one. The
// PostgreSQL store's own suites run it on a real server.
import { describe, expect, it } from 'vitest';
import { MAX_BATCH, MAX_WRITES, SignalBatcher } from '../../src/store/postgres-batch.js';
import type { Signal, SignalKey } from '../../src/types.js';
import { makeSignal } from './store-fixtures.js';

/** A writer that records each write and can be held or made to fail. */
function recorder() {
  const writes: { upsert: string[]; end: string[] }[] = [];
  let failNext = false;
  const held: (() => void)[] = [];
  let hold = false;
  const write = async (upsert: readonly Signal[], end: readonly SignalKey[]): Promise<void> => {
    writes.push({ upsert: upsert.map((s) => s.id), end: end.map((k) => k.id) });
    if (hold) await new Promise<void>((resolve) => held.push(resolve));
    if (failNext) {
      failNext = false;
      throw new Error('the database went away');
    }
  };
  return {
    writes,
    batcher: new SignalBatcher(write),
    hold: () => (hold = true),
    release: () => {
      hold = false;
      for (const resolve of held.splice(0)) resolve();
    },
    failNext: () => (failNext = true),
  };
}

describe('SignalBatcher', () => {
  it('deliveries that arrive together share one write, and each resolves once it is written', async () => {
    const r = recorder();
    const signals = Array.from({ length: 50 }, () => makeSignal());
    await Promise.all(signals.map((s) => r.batcher.add([s], [])));
    expect(r.writes).toEqual([{ upsert: signals.map((s) => s.id), end: [] }]);
  });

  it(`at most ${MAX_WRITES} write(s) on the way at once; what arrives meanwhile goes in a later one, in arrival order`, async () => {
    const r = recorder();
    r.hold();
    const first = r.batcher.add([makeSignal({ id: 'a' })], []);
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.writes).toHaveLength(1);
    const later = [r.batcher.add([makeSignal({ id: 'b' })], []), r.batcher.add([], [{ target: 'web', id: 'c' }])];
    let firstDone = false;
    void first.then(() => (firstDone = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(firstDone).toBe(false);
    expect(r.writes).toHaveLength(MAX_WRITES);
    r.release();
    await Promise.all([first, ...later]);
    expect(r.writes).toEqual([
      { upsert: ['a'], end: [] },
      { upsert: ['b'], end: ['c'] },
    ]);
  });

  it('a delivery touching a signal already in the batch starts the next one: an end and a re-send keep their order', async () => {
    const r = recorder();
    const sent = makeSignal({ id: 'x' });
    await Promise.all([r.batcher.add([sent], []), r.batcher.add([], [{ target: 'web', id: 'x' }]), r.batcher.add([{ ...sent, value: 99 }], [])]);
    expect(r.writes).toEqual([
      { upsert: ['x'], end: [] },
      { upsert: [], end: ['x'] },
      { upsert: ['x'], end: [] },
    ]);
  });

  it('a failed write rejects its own deliveries only; the next write goes on', async () => {
    const r = recorder();
    r.failNext();
    const failed = [r.batcher.add([makeSignal({ id: 'p' })], []), r.batcher.add([makeSignal({ id: 'q' })], [])];
    const after = r.batcher.add([makeSignal({ id: 'p' })], []);
    const outcomes = await Promise.allSettled([...failed, after]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect(r.writes).toHaveLength(2);
  });

  it(`at most ${MAX_BATCH} deliveries share a write`, async () => {
    const r = recorder();
    await Promise.all(Array.from({ length: MAX_BATCH + 1 }, () => r.batcher.add([makeSignal()], [])));
    expect(r.writes.map((w) => w.upsert.length)).toEqual([MAX_BATCH, 1]);
  });

  it('idle waits for every write taken so far', async () => {
    const r = recorder();
    r.hold();
    let done = false;
    void r.batcher.add([makeSignal()], []).then(() => (done = true));
    const idle = r.batcher.idle();
    await new Promise((resolve) => setImmediate(resolve));
    r.release();
    await idle;
    expect(done).toBe(true);
  });
});
