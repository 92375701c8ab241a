/**
 * The conformance suite of the Store contract (src/store/store.ts): every implementation runs
 * it, so that the SQLite store and the PostgreSQL one give the engine and the sources the same
 * guarantees. It asserts behaviour through the interface only; an implementation's own test
 * file adds what only it can check (durability across a reopen, schema versions, use before
 * `init`, which the in-memory test store allows on purpose so tests can seed it).
 *
 * This file holds the queue, the signals, the operations and the records; the history and the
 * delivery ids are in store-conformance-history.ts, registered from here.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import type { Store } from '../../src/store/store.js';
import type { Adjustment, Command, Signal, TargetRecord } from '../../src/types.js';
import { describeHistoryConformance, type HistoryLimits, type SuiteContext } from './store-conformance-history.js';
import { describeOutboxConformance } from './store-conformance-outbox.js';
import { at, makeCommand, makeEvent, makeRecord, makeRunning, makeSignal } from './store-fixtures.js';

export type { HistoryLimits } from './store-conformance-history.js';
export * from './store-fixtures.js';

/** Signals sorted by key: the contract gives them in no particular order. */
function byKey(signals: Signal[]): Signal[] {
  return signals.toSorted((a, b) => `${a.target}\0${a.id}`.localeCompare(`${b.target}\0${b.id}`));
}

/**
 * Registers the suite for one implementation. `make` returns a new, empty, initialised store
 * each time it is called, built with `limits` when given (its defaults otherwise); the suite
 * closes it after each test.
 */
export function describeStoreConformance(name: string, make: (limits?: HistoryLimits) => Promise<Store>): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    const extra: Store[] = [];
    const ctx: SuiteContext = {
      get store() {
        return store;
      },
      async remake(limits) {
        extra.push(store);
        store = await make(limits);
      },
    };
    beforeEach(async () => {
      store = await make();
    });
    afterEach(async () => {
      await Promise.all([store, ...extra.splice(0)].map((s) => s.close()));
    });

    /** Queues `commands` in the order given. */
    async function add(...commands: Command[]): Promise<void> {
      for (const command of commands) await store.addCommand(command);
    }

    describe('lifecycle', () => {
      it('close is idempotent', async () => {
        await store.close();
        await expect(store.close()).resolves.toBeUndefined();
      });

      it.each<[string, (s: Store) => Promise<unknown>]>([
        ['addCommand', (s) => s.addCommand(makeCommand())],
        ['loadCommands', (s) => s.loadCommands()],
        ['applySignals', (s) => s.applySignals({ upsert: [makeSignal()], end: [], events: [] })],
        ['loadSignals', (s) => s.loadSignals()],
        ['startOperation', (s) => s.startOperation('web', makeRunning())],
        ['markApplying', (s) => s.markApplying('web', makeRunning())],
        ['finishOperation', (s) => s.finishOperation('web', { events: [], record: makeRecord(), consumed: [] })],
        ['loadRunning', (s) => s.loadRunning()],
        ['saveTarget', (s) => s.saveTarget(makeRecord())],
        ['loadTargets', (s) => s.loadTargets()],
        ['appendEvent', (s) => s.appendEvent(makeEvent())],
        ['listEvents', (s) => s.listEvents({ limit: 10 })],
        ['lastEvents', (s) => s.lastEvents()],
        ['rememberDelivery', (s) => s.rememberDelivery('k', at(10))],
        ['forgetDelivery', (s) => s.forgetDelivery('k')],
      ])('a closed store rejects %s with StoreUnavailableError', async (_name, call) => {
        await store.close();
        await expect(call(store)).rejects.toBeInstanceOf(StoreUnavailableError);
      });

      it('a new store is empty', async () => {
        expect(await store.loadCommands()).toEqual(new Map());
        expect(await store.loadSignals()).toEqual([]);
        expect(await store.loadRunning()).toEqual(new Map());
        expect(await store.loadTargets()).toEqual(new Map());
        expect(await store.listEvents({ limit: 10 })).toEqual([]);
        expect(await store.lastEvents()).toEqual(new Map());
      });
    });

    describe('commands', () => {
      it('come back in the order they were added, per target', async () => {
        const commands = [makeCommand(), makeCommand({ adjustment: { type: 'to', to: 3 } }), makeCommand()];
        await add(...commands);
        expect(await store.loadCommands()).toEqual(new Map([['web', commands]]));
      });

      it('keep arrival order across targets: a target comes first when its oldest queued command is older', async () => {
        const [w1, a1, w2, d1, a2] = ['web', 'api', 'web', 'db', 'api'].map((target) => makeCommand({ target }));
        await add(w1!, a1!, w2!, d1!, a2!);
        const queues = await store.loadCommands();
        expect(queues).toEqual(new Map([['web', [w1, w2]], ['api', [a1, a2]], ['db', [d1]]]));
        expect([...queues.keys()]).toEqual(['web', 'api', 'db']);

        // Once web's commands are consumed, a new one queues behind everything already there.
        await store.finishOperation('web', { events: [], record: makeRecord(), consumed: [w1!.id, w2!.id] });
        const w3 = makeCommand();
        await add(w3);
        expect([...(await store.loadCommands()).entries()]).toEqual([['api', [a1, a2]], ['db', [d1]], ['web', [w3]]]);
      });

      it.each<[string, (first: Command) => Command]>([
        ['the same command again', (first) => first],
        ['another command with the same id', (first) => makeCommand({ id: first.id, reason: 'again' })],
        ['the same id for another target', (first) => makeCommand({ id: first.id, target: 'api' })],
      ])('a repeated id is refused (%s) and the refused call changes nothing', async (_name, again) => {
        const first = makeCommand();
        await add(first);
        await expect(store.addCommand(again(first))).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(await store.loadCommands()).toEqual(new Map([['web', [first]]]));
      });

      it('a consumed command id may not be added again while its audit record is kept', async () => {
        const first = makeCommand();
        await add(first);
        await store.finishOperation('web', { events: [], record: makeRecord(), consumed: [first.id] });
        await expect(store.addCommand(first)).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(await store.loadCommands()).toEqual(new Map());
      });

      it.each<[string, Adjustment]>([
        ['a step up', { type: 'step', direction: 'up' }],
        ['a step down', { type: 'step', direction: 'down' }],
        ['a relative change', { type: 'by', by: -2 }],
        ['an absolute value', { type: 'to', to: 17 }],
      ])('a command asking for %s comes back with every field', async (_name, adjustment) => {
        const command = makeCommand({ adjustment, dryRun: true, evidence: makeSignal().evidence });
        await add(command);
        expect((await store.loadCommands()).get('web')).toStrictEqual([command]);
      });

      it('a command with empty evidence comes back without invented fields', async () => {
        const command = makeCommand({ evidence: {}, source: 'schedule' });
        await add(command);
        expect((await store.loadCommands()).get('web')).toStrictEqual([command]);
      });
    });

    describe('schedule fires', () => {
      const fire = (at: string, outcome: 'fired' | 'missed' = 'fired') => ({ target: 'web', schedule: 'batch', at, outcome });

      it('a fire is claimed once, with its command and event written together', async () => {
        const command = makeCommand({ source: 'schedule', adjustment: { type: 'to', to: 10 } });
        const event = makeEvent({ kind: 'skipped' });
        expect(await store.claimFire(fire(at(60)), { command, event })).toBe(true);
        expect(await store.claimFire(fire(at(60)), { command: makeCommand(), event: makeEvent() })).toBe(false);
        expect(await store.loadCommands()).toEqual(new Map([['web', [command]]]));
        expect(await store.listEvents({ limit: 10 })).toEqual([event]);
      });

      it('the same instant spelt another way is the same fire; another schedule or target is not', async () => {
        expect(await store.claimFire(fire('2025-01-01T00:01:00Z'), { command: null, event: null })).toBe(true);
        expect(await store.claimFire(fire('2025-01-01T00:01:00.000Z'), { command: null, event: null })).toBe(false);
        expect(await store.claimFire({ ...fire(at(60)), schedule: 'other' }, { command: null, event: null })).toBe(true);
        expect(await store.claimFire({ ...fire(at(60)), target: 'api' }, { command: null, event: null })).toBe(true);
      });

      it('lastFires gives the latest handled fire of each target and schedule', async () => {
        await store.claimFire(fire(at(60)), { command: null, event: null });
        await store.claimFire(fire(at(180), 'missed'), { command: null, event: null });
        await store.claimFire(fire(at(120)), { command: null, event: null });
        expect(await store.lastFires()).toEqual([fire(at(180), 'missed')]);
      });

      it('fires a day older than the newest of their schedule are forgotten; the newest stays', async () => {
        await store.claimFire(fire(at(0)), { command: null, event: null });
        await store.claimFire(fire(at(90_000)), { command: null, event: null });
        // The old one is gone: claiming it again succeeds (it is far past any deadline anyway).
        expect(await store.claimFire(fire(at(0)), { command: null, event: null })).toBe(true);
        expect(await store.claimFire(fire(at(90_000)), { command: null, event: null })).toBe(false);
        expect(await store.lastFires()).toEqual([fire(at(90_000))]);
      });

      it('a claim whose command cannot be written claims nothing', async () => {
        const command = makeCommand();
        await store.addCommand(command);
        await expect(store.claimFire(fire(at(60)), { command, event: null })).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(await store.claimFire(fire(at(60)), { command: makeCommand(), event: null })).toBe(true);
      });
    });

    describe('applySignals', () => {
      it('stores new signals, keyed by target and id', async () => {
        const web = makeSignal();
        const sameIdElsewhere = makeSignal({ id: web.id, target: 'api', direction: 'down', value: null, threshold: null });
        const cloudwatch = makeSignal({
          id: 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:web-cpu-high',
          source: 'cloudwatch',
          expiresAt: null,
        });
        await store.applySignals({ upsert: [web, sameIdElsewhere, cloudwatch], end: [], events: [] });
        expect(byKey(await store.loadSignals())).toStrictEqual(byKey([web, sameIdElsewhere, cloudwatch]));
      });

      it('replaces a signal sent again, by key, leaving the others', async () => {
        const first = makeSignal();
        const other = makeSignal();
        await store.applySignals({ upsert: [first, other], end: [], events: [] });
        const refreshed = { ...first, value: 97, lastSeen: at(60), expiresAt: at(3660) };
        await store.applySignals({ upsert: [refreshed], end: [], events: [] });
        expect(byKey(await store.loadSignals())).toEqual(byKey([refreshed, other]));
      });

      it('ends signals by key; an absent key is no error, and other targets keep theirs', async () => {
        const web = makeSignal();
        const api = makeSignal({ id: web.id, target: 'api' });
        const stays = makeSignal();
        await store.applySignals({ upsert: [web, api, stays], end: [], events: [] });
        const end = [
          { target: 'web', id: web.id },
          { target: 'web', id: 'never-fired' },
        ];
        await store.applySignals({ upsert: [], end, events: [] });
        expect(byKey(await store.loadSignals())).toEqual(byKey([api, stays]));
      });

      it("an expiry's end (naming the lastSeen it expired with) leaves a signal sent again since, and ends one that was not", async () => {
        const [a, b] = [makeSignal({ lastSeen: at(0) }), makeSignal({ lastSeen: at(0) })];
        await store.applySignals({ upsert: [a, b], end: [], events: [] });
        const refreshed = { ...a, lastSeen: at(60), expiresAt: at(3660) };
        await store.applySignals({ upsert: [refreshed], end: [], events: [] });
        const expired = (s: Signal) => ({ target: s.target, id: s.id, lastSeen: s.lastSeen });
        await store.applySignals({ upsert: [], end: [expired(a), expired(b)], events: [makeEvent({ kind: 'ignored' })] });
        expect(await store.loadSignals()).toEqual([refreshed]);
        await store.applySignals({ upsert: [], end: [expired(refreshed)], events: [] });
        expect(await store.loadSignals()).toEqual([]);
      });

      it('loads them in arrival order: a refresh keeps its place, one that ended and fired again goes last', async () => {
        const [a, b, c] = [makeSignal({ id: 'z' }), makeSignal({ target: 'api', id: 'y' }), makeSignal({ id: 'x' })];
        await store.applySignals({ upsert: [a, b], end: [], events: [] });
        await store.applySignals({ upsert: [c, { ...a, value: 2 }], end: [{ target: 'api', id: b.id }], events: [] });
        await store.applySignals({ upsert: [b], end: [], events: [] });
        expect(await store.loadSignals()).toEqual([{ ...a, value: 2 }, c, b]);
      });

      it('writes called together succeed or fail alone: a refused one leaves the others stored', async () => {
        const event = makeEvent();
        await store.appendEvent(event);
        const kept = makeSignal();
        const command = makeCommand();
        const results = await Promise.allSettled([
          store.applySignals({ upsert: [kept], end: [], events: [] }),
          store.applySignals({ upsert: [makeSignal()], end: [], events: [{ ...event }] }),
          store.addCommand(command),
        ]);
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
        expect(await store.loadSignals()).toEqual([kept]);
        expect((await store.loadCommands()).get(command.target)).toEqual([command]);
      });

      it('a key both upserted and ended in one change ends', async () => {
        const signal = makeSignal();
        await store.applySignals({ upsert: [signal], end: [{ target: 'web', id: signal.id }], events: [] });
        expect(await store.loadSignals()).toEqual([]);
      });

      it('appends its events in order', async () => {
        const events = [makeEvent({ kind: 'ignored', at: at(1) }), makeEvent({ kind: 'skipped', at: at(2) })];
        await store.applySignals({ upsert: [makeSignal()], end: [], events });
        expect(await store.listEvents({ limit: 10 })).toEqual(events.toReversed());
      });

      it('is atomic: a refused event (duplicate id) leaves the signals and the history as they were', async () => {
        const kept = makeSignal();
        const event = makeEvent();
        await store.applySignals({ upsert: [kept], end: [], events: [event] });
        const change = { upsert: [makeSignal(), { ...kept, value: 1 }], end: [], events: [makeEvent(), { ...event }] };
        await expect(store.applySignals(change)).rejects.toBeInstanceOf(StoreUnavailableError);
        const ending = { upsert: [], end: [{ target: 'web', id: kept.id }], events: [event] };
        await expect(store.applySignals(ending)).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(await store.loadSignals()).toEqual([kept]);
        expect(await store.listEvents({ limit: 10 })).toEqual([event]);
      });
    });

    describe('running operations', () => {
      it('startOperation sets the running slot, and overwrites it', async () => {
        await store.startOperation('web', makeRunning({ startedAt: at(1) }));
        const running = makeRunning({ kind: 'signals', commandIds: [], dryRun: true, startedAt: at(2) });
        await store.startOperation('web', running);
        await store.startOperation('api', makeRunning());
        expect(await store.loadRunning()).toStrictEqual(new Map([['web', running], ['api', makeRunning()]]));
      });

      it('markApplying overwrites the running slot of its target only', async () => {
        const command = makeCommand();
        await add(command);
        await store.startOperation('web', makeRunning({ commandIds: [command.id] }));
        await store.startOperation('api', makeRunning());
        const marked = makeRunning({ commandIds: [command.id], applying: { from: null, to: 2 } });
        await store.markApplying('web', marked);
        expect(await store.loadRunning()).toStrictEqual(new Map([['web', marked], ['api', makeRunning()]]));
        expect(await store.loadCommands()).toEqual(new Map([['web', [command]]]));
      });

      it('markApplying does nothing when no operation runs', async () => {
        await store.markApplying('web', makeRunning({ applying: { from: 3, to: 4 } }));
        expect(await store.loadRunning()).toEqual(new Map());
      });
    });

    describe('finishOperation', () => {
      /** Three commands queued on web, one on api, and an operation running on web over the first two. */
      async function started() {
        const web = [makeCommand(), makeCommand(), makeCommand()] as const;
        const api = makeCommand({ target: 'api' });
        await add(web[0], api, web[1], web[2]);
        const running = makeRunning({ commandIds: [web[0].id, web[1].id], applying: { from: 3, to: 7 } });
        await store.startOperation('web', running);
        await store.saveTarget(makeRecord({ current: 3 }));
        return { web, api, running };
      }

      it('removes exactly the consumed commands, clears the slot, appends the events in order, saves the record', async () => {
        const { web, api } = await started();
        const events = [makeEvent({ kind: 'failed', at: at(30) }), makeEvent({ commands: [web[0].id, web[1].id] })];
        const record = makeRecord({ current: 7, cooldownUntil: { up: at(400), down: null } });
        await store.finishOperation('web', { events, record, consumed: [web[0].id, web[1].id] });
        expect(await store.loadCommands()).toEqual(new Map([['api', [api]], ['web', [web[2]]]]));
        expect(await store.loadRunning()).toEqual(new Map());
        expect(await store.listEvents({ limit: 10 })).toEqual(events.toReversed());
        expect(await store.loadTargets()).toEqual(new Map([['web', record]]));
      });

      it('with no events and nothing consumed (a cut-off run dropped at start), clears the slot, saves the record', async () => {
        const { web, api } = await started();
        await store.finishOperation('web', { events: [], record: makeRecord({ current: 3 }), consumed: [] });
        expect(await store.loadRunning()).toEqual(new Map());
        expect(await store.loadCommands()).toEqual(new Map([['web', [...web]], ['api', [api]]]));
        expect(await store.listEvents({ limit: 10 })).toEqual([]);
      });

      it('a consumed id no longer queued is no error', async () => {
        const { web } = await started();
        await store.finishOperation('web', { events: [], record: makeRecord(), consumed: ['gone', web[0].id] });
        expect((await store.loadCommands()).get('web')).toEqual([web[1], web[2]]);
      });

      it('leaves the signals alone', async () => {
        await started();
        const signal = makeSignal();
        await store.applySignals({ upsert: [signal], end: [], events: [] });
        await store.finishOperation('web', { events: [makeEvent()], record: makeRecord(), consumed: [] });
        expect(await store.loadSignals()).toEqual([signal]);
      });

      it.each([
        ['an event id already in the history', 'old'],
        ['an event id repeated within the same end', 'repeated'],
      ] as const)('is all or nothing: %s leaves slot, queue, record and history as they were', async (_name, dup) => {
        const { web, api, running } = await started();
        const old = makeEvent({ at: at(1) });
        await store.appendEvent(old);
        const first = makeEvent({ at: at(30) });
        const events = [first, dup === 'old' ? { ...old } : { ...first, reason: 'again' }];
        const end = { events, record: makeRecord({ current: 99 }), consumed: [web[0].id, web[1].id] };
        await expect(store.finishOperation('web', end)).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(await store.loadRunning()).toEqual(new Map([['web', running]]));
        expect(await store.loadCommands()).toEqual(new Map([['web', [...web]], ['api', [api]]]));
        expect(await store.loadTargets()).toEqual(new Map([['web', makeRecord({ current: 3 })]]));
        expect(await store.listEvents({ limit: 10 })).toEqual([old]);
      });
    });

    describe('targets', () => {
      it('saveTarget overwrites the previous record of the same name and keeps the others', async () => {
        await store.saveTarget(makeRecord({ name: 'web', current: 2 }));
        await store.saveTarget(makeRecord({ name: 'api', current: 1 }));
        await store.saveTarget(makeRecord({ name: 'web', current: 4, paused: true }));
        expect(await store.loadTargets()).toEqual(
          new Map([
            ['web', makeRecord({ name: 'web', current: 4, paused: true })],
            ['api', makeRecord({ name: 'api', current: 1 })],
          ]),
        );
      });

      it.each<[string, TargetRecord]>([
        ['a cooling target', makeRecord({ cooldownUntil: { up: at(60), down: at(300) } })],
        [
          'a never-read target paused by config',
          makeRecord({ current: null, paused: true, cooldownUntil: { up: null, down: null } }),
        ],
        [
          'a target paused through the API',
          makeRecord({ pause: { until: at(7200), direction: 'down', reason: 'launch — hold ✓' } }),
        ],
        ['a target retrying a locked stack', makeRecord({ retry: { attempts: 3, notBefore: at(90) } })],
      ])('a record of %s comes back as it went in', async (_name, record) => {
        await store.saveTarget(record);
        expect(await store.loadTargets()).toStrictEqual(new Map([[record.name, record]]));
      });
    });

    describeHistoryConformance(ctx);
    describeOutboxConformance(ctx);
  });
}
