/**
 * The second half of the Store conformance suite: the history (order, paging, bounds, whichever
 * call appended an event) and the delivery ids. Registered by `describeStoreConformance` in
 * store-conformance.ts, inside its describe block, on the same per-test store.
 */
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import type { OutboxRouter, Store } from '../../src/store/store.js';
import type { ScalingEvent } from '../../src/types.js';
import { at, makeCommand, makeEvent, makeRecord, makeRunning, makeSignal } from './store-fixtures.js';

/** The history limits a store is built with (each implementation takes them in its options). */
export interface HistoryLimits {
  /** Events kept per target. */
  historyLimit?: number;
  /** Events kept in all, across targets. */
  historyTotalLimit?: number;
  /** The outbox's router (the notifications config); none: no messages. */
  route?: OutboxRouter;
}

/** What the suite's halves share: the running test's store, and a way to rebuild it. */
export interface SuiteContext {
  /** The store of the running test (new and empty at its start). */
  readonly store: Store;
  /** Replaces the test's store with a new, empty one built with `limits`; it is closed after the test too. */
  remake(limits: HistoryLimits): Promise<void>;
}

/** Registers the history and delivery tests on `ctx`. */
export function describeHistoryConformance(ctx: SuiteContext): void {
  /** Appends `n` events for `target`, one second apart, and returns them oldest first. */
  async function appendMany(n: number, target = 'web', from = 0): Promise<ScalingEvent[]> {
    const events: ScalingEvent[] = [];
    for (let i = 0; i < n; i++) {
      const event = makeEvent({ target, at: at(from + i) });
      await ctx.store.appendEvent(event);
      events.push(event);
    }
    return events;
  }

  /** Records `event` as the end of an operation on its target, as the engine does. */
  async function finishWith(event: ScalingEvent): Promise<void> {
    const command = makeCommand({ target: event.target });
    await ctx.store.addCommand(command);
    await ctx.store.startOperation(event.target, makeRunning({ commandIds: [command.id] }));
    await ctx.store.finishOperation(event.target, {
      events: [event],
      record: makeRecord({ name: event.target }),
      consumed: [command.id],
    });
  }

  describe('events', () => {
    it('appendEvent refuses an event id already in the history', async () => {
      const event = makeEvent();
      await ctx.store.appendEvent(event);
      await expect(ctx.store.appendEvent({ ...event, reason: 'again' })).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await ctx.store.listEvents({ limit: 10 })).toEqual([event]);
    });

    it('listEvents returns the newest first', async () => {
      const events = await appendMany(4);
      expect(await ctx.store.listEvents({ limit: 10 })).toEqual(events.toReversed());
    });

    it('listEvents with a target returns only that target, newest first', async () => {
      const web1 = await appendMany(1, 'web', 0);
      const api1 = await appendMany(1, 'api', 1);
      const web2 = await appendMany(1, 'web', 2);
      expect(await ctx.store.listEvents({ target: 'web', limit: 10 })).toEqual([...web2, ...web1]);
      expect(await ctx.store.listEvents({ target: 'api', limit: 10 })).toEqual(api1);
      expect(await ctx.store.listEvents({ target: 'nobody', limit: 10 })).toEqual([]);
    });

    it.each([
      [0, 0],
      [1, 1],
      [3, 3],
      [5, 5],
      [8, 5],
    ])('listEvents with limit %i over 5 events returns the newest %i', async (limit, count) => {
      const events = await appendMany(5);
      expect(await ctx.store.listEvents({ limit })).toEqual(events.toReversed().slice(0, count));
    });

    it('listEvents pages with before: each page continues strictly after the last event of the previous one', async () => {
      const events = (await appendMany(5)).toReversed();
      const pages: ScalingEvent[][] = [];
      let before: string | undefined;
      // Bounded, so that a store whose cursor does not advance fails instead of looping.
      for (let i = 0; i < 10; i++) {
        const page = await ctx.store.listEvents(before === undefined ? { limit: 2 } : { limit: 2, before });
        if (page.length === 0) break;
        pages.push(page);
        before = page.at(-1)?.id;
      }
      expect(pages).toEqual([events.slice(0, 2), events.slice(2, 4), events.slice(4)]);
    });

    it('listEvents pages within a target when given both target and before', async () => {
      const web = await appendMany(3, 'web', 0);
      await appendMany(3, 'api', 10);
      const cursor = web[2]?.id ?? '';
      expect(await ctx.store.listEvents({ target: 'web', before: cursor, limit: 10 })).toEqual([web[1], web[0]]);
    });

    it('listEvents before an id not in the history returns an empty page, not the newest events', async () => {
      await appendMany(3);
      expect(await ctx.store.listEvents({ before: 'no-such-event', limit: 10 })).toEqual([]);
    });

    it('lastEvents holds the newest event of each target, whichever call recorded it', async () => {
      await appendMany(2, 'web', 0);
      await appendMany(1, 'api', 5);
      const apiLast = makeEvent({ target: 'api', kind: 'ignored', at: at(6) });
      await ctx.store.applySignals({ upsert: [], end: [{ target: 'api', id: 'gone' }], events: [apiLast] });
      const webLast = makeEvent({ at: at(9) });
      await finishWith(webLast);
      expect(await ctx.store.lastEvents()).toEqual(
        new Map([
          ['web', webLast],
          ['api', apiLast],
        ]),
      );
    });
  });

  describe('bounded history', () => {
    it('keeps the newest historyLimit events of each target, whichever call appended them', async () => {
      await ctx.remake({ historyLimit: 3 });
      const web = await appendMany(3, 'web', 0);
      const bySignals = makeEvent({ at: at(3) });
      await ctx.store.applySignals({ upsert: [makeSignal()], end: [], events: [bySignals] });
      const byOperation = makeEvent({ at: at(4) });
      await finishWith(byOperation);
      const api = await appendMany(2, 'api', 5);
      expect(await ctx.store.listEvents({ target: 'web', limit: 10 })).toEqual([byOperation, bySignals, web[2]]);
      expect(await ctx.store.listEvents({ target: 'api', limit: 10 })).toEqual(api.toReversed());
    });

    it('keeps the newest historyTotalLimit events across targets, whichever call appended them', async () => {
      await ctx.remake({ historyTotalLimit: 4 });
      await appendMany(1, 'web', 0);
      const [api1] = await appendMany(1, 'api', 1);
      const [db1] = await appendMany(1, 'db', 2);
      const api2 = makeEvent({ target: 'api', at: at(3) });
      await ctx.store.applySignals({ upsert: [], end: [], events: [api2] });
      const web2 = makeEvent({ at: at(4) });
      await finishWith(web2);
      expect(await ctx.store.listEvents({ limit: 10 })).toEqual([web2, api2, db1, api1]);
      expect(await ctx.store.listEvents({ target: 'web', limit: 10 })).toEqual([web2]);
      const [db2] = await appendMany(1, 'db', 5);
      // The oldest go first, whatever their target: web's first event, now api's.
      expect(await ctx.store.listEvents({ limit: 10 })).toEqual([db2, web2, api2, db1]);
      expect(await ctx.store.lastEvents()).toEqual(
        new Map([
          ['web', web2],
          ['api', api2],
          ['db', db2],
        ]),
      );
    });

    it('an operation end with more events than the limit keeps the newest of them', async () => {
      await ctx.remake({ historyLimit: 2 });
      const events = [makeEvent({ at: at(1) }), makeEvent({ at: at(2) }), makeEvent({ at: at(3) })];
      await ctx.store.finishOperation('web', { events, record: makeRecord(), consumed: [] });
      expect(await ctx.store.listEvents({ limit: 10 })).toEqual([events[2], events[1]]);
    });

    it('a target whose every event was trimmed leaves lastEvents, and records again under its own limit', async () => {
      await ctx.remake({ historyLimit: 2, historyTotalLimit: 3 });
      await appendMany(2, 'web', 0);
      // The third api event trims the first (per target) and the second web one (three newer
      // events were recorded since, though one of them is gone): two events are left.
      const api = await appendMany(3, 'api', 2);
      expect(await ctx.store.listEvents({ limit: 10 })).toEqual(api.slice(1).toReversed());
      expect([...(await ctx.store.lastEvents()).keys()]).toEqual(['api']);
      const web = await appendMany(3, 'web', 5);
      expect(await ctx.store.listEvents({ target: 'web', limit: 10 })).toEqual(web.slice(1).toReversed());
      expect(await ctx.store.listEvents({ limit: 10 })).toEqual(web.slice(1).toReversed());
      expect(await ctx.store.lastEvents()).toEqual(new Map([['web', web[2]]]));
    });

    it('a page cursor trimmed away gives an empty page, not the newest events again', async () => {
      await ctx.remake({ historyTotalLimit: 2 });
      const [oldest] = await appendMany(3);
      expect(await ctx.store.listEvents({ before: oldest?.id ?? '', limit: 10 })).toEqual([]);
    });
  });

  describe('deliveries', () => {
    const future = '2999-01-01T00:00:00.000Z';
    const past = '2000-01-01T00:00:00.000Z';

    it('remembers a key the first time and reports a replay after', async () => {
      expect(await ctx.store.rememberDelivery('sns:m-1', future)).toBe(true);
      expect(await ctx.store.rememberDelivery('sns:m-1', future)).toBe(false);
      expect(await ctx.store.rememberDelivery('sns:m-1', future)).toBe(false);
    });

    it('keeps keys apart', async () => {
      expect(await ctx.store.rememberDelivery('sns:m-1', future)).toBe(true);
      expect(await ctx.store.rememberDelivery('sns:m-2', future)).toBe(true);
    });

    it('an expired key may be remembered again, and is then a replay until its new expiry', async () => {
      expect(await ctx.store.rememberDelivery('sns:m-1', past)).toBe(true);
      expect(await ctx.store.rememberDelivery('sns:m-1', future)).toBe(true);
      expect(await ctx.store.rememberDelivery('sns:m-1', future)).toBe(false);
    });

    it('forgetDelivery lets the same key be accepted again', async () => {
      await ctx.store.rememberDelivery('sns:m-1', future);
      await ctx.store.forgetDelivery('sns:m-1');
      expect(await ctx.store.rememberDelivery('sns:m-1', future)).toBe(true);
    });

    it('forgetDelivery of an unknown key is not an error and forgets nothing else', async () => {
      await ctx.store.rememberDelivery('sns:m-1', future);
      await expect(ctx.store.forgetDelivery('sns:never-seen')).resolves.toBeUndefined();
      expect(await ctx.store.rememberDelivery('sns:m-1', future)).toBe(false);
    });
  });
}
