/**
 * The conformance suite of the Store contract (src/store/store.ts): every implementation runs
 * it, so that the SQLite store and the PostgreSQL one give the engine and the sources the same
 * guarantees. It asserts behaviour through the interface only; an implementation's own test
 * file adds what only it can check (durability across a reopen, schema versions…).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import type { Store } from '../../src/store/store.js';
import type { Adjustment, Intent, PendingIntent, ScalingEvent, TargetRecord } from '../../src/types.js';

/** An ISO-8601 UTC instant `s` seconds after a fixed origin, so tests never read the clock. */
export function at(s: number): string {
  return new Date(Date.UTC(2025, 0, 1) + s * 1000).toISOString();
}

let counter = 0;
/** A fresh id with a readable prefix. */
export function nextId(prefix: string): string {
  return `${prefix}-${++counter}`;
}

/** An intent with every field set, `overrides` winning. */
export function makeIntent(overrides: Partial<Intent> = {}): Intent {
  return {
    id: nextId('intent'),
    target: 'web',
    adjustment: { type: 'step', direction: 'up' },
    dryRun: false,
    source: 'alertmanager',
    reason: 'alert HighCPU firing',
    receivedAt: at(0),
    bounds: 'clamp',
    evidence: {
      fingerprint: 'c0ffee1234567890',
      alertName: 'HighCPU',
      alarmName: 'web-cpu-high',
      messageId: '0f3d6f5e-1b2c-4d5e-8f90-123456789abc',
      metricValue: 87.125,
      threshold: 80,
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      generatorURL: 'http://prometheus:9090/graph?g0.expr=cpu%20%3E%200.8',
      labels: { alertname: 'HighCPU', pulumiscale_target: 'web', 'ünïcode': 'värde ✓' },
    },
    ...overrides,
  };
}

/** A pending intent standing for `intent`. */
export function makePending(intent: Intent, overrides: Partial<PendingIntent> = {}): PendingIntent {
  return { intent, count: 1, firstAt: intent.receivedAt, attempts: 0, notBefore: null, ...overrides };
}

/** An event with every field set, `overrides` winning. */
export function makeEvent(overrides: Partial<ScalingEvent> = {}): ScalingEvent {
  return {
    id: nextId('event'),
    target: 'web',
    at: at(10),
    kind: 'changed',
    from: 2,
    to: 3,
    reason: 'alert HighCPU firing: 2 -> 3',
    source: 'alertmanager',
    intents: 4,
    durationMs: 12_345,
    dryRun: false,
    intentId: 'intent-x',
    evidence: makeIntent().evidence,
    ...overrides,
  };
}

/** A target record, `overrides` winning. */
export function makeRecord(overrides: Partial<TargetRecord> = {}): TargetRecord {
  return { name: 'web', current: 3, paused: false, cooldownUntil: { up: at(70), down: null }, ...overrides };
}

/** The history limits a store is built with (each implementation takes them in its options). */
export interface HistoryLimits {
  /** Events kept per target. */
  historyLimit?: number;
  /** Events kept in all, across targets. */
  historyTotalLimit?: number;
}

/**
 * Registers the suite for one implementation. `make` returns a new, empty, initialised store
 * each time it is called, built with `limits` when given (its defaults otherwise); the suite
 * closes it after each test.
 */
export function describeStoreConformance(name: string, make: (limits?: HistoryLimits) => Promise<Store>): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await make();
    });
    afterEach(async () => {
      await store.close();
    });

    /** Appends `n` events for `target`, one second apart, and returns them oldest first. */
    async function appendMany(n: number, target = 'web', from = 0): Promise<ScalingEvent[]> {
      const events: ScalingEvent[] = [];
      for (let i = 0; i < n; i++) {
        const event = makeEvent({ target, at: at(from + i) });
        await store.appendEvent(event);
        events.push(event);
      }
      return events;
    }

    describe('lifecycle', () => {
      it('close is idempotent', async () => {
        await store.close();
        await expect(store.close()).resolves.toBeUndefined();
      });

      it('a closed store rejects with StoreUnavailableError', async () => {
        await store.close();
        await expect(store.loadPending()).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.enqueue(makeIntent(), makePending(makeIntent()))).rejects.toBeInstanceOf(
          StoreUnavailableError,
        );
      });

      it('a new store is empty', async () => {
        expect(await store.loadPending()).toEqual(new Map());
        expect(await store.loadTargets()).toEqual(new Map());
        expect(await store.listEvents({ limit: 10 })).toEqual([]);
        expect(await store.lastEvents()).toEqual(new Map());
      });
    });

    describe('enqueue', () => {
      it('makes the pending intent the queued slot of its target, running stays empty', async () => {
        const intent = makeIntent();
        await store.enqueue(intent, makePending(intent));
        expect(await store.loadPending()).toEqual(new Map([['web', { queued: makePending(intent), running: null }]]));
      });

      it('replaces the queued slot with the newly coalesced pending intent', async () => {
        const first = makeIntent({ receivedAt: at(1) });
        const second = makeIntent({ receivedAt: at(2), adjustment: { type: 'by', by: 3 } });
        await store.enqueue(first, makePending(first));
        const merged = makePending(second, { count: 2, firstAt: first.receivedAt });
        await store.enqueue(second, merged);
        expect((await store.loadPending()).get('web')?.queued).toEqual(merged);
      });

      it('keeps each target in its own slots', async () => {
        const web = makeIntent({ target: 'web' });
        const api = makeIntent({ target: 'api' });
        await store.enqueue(web, makePending(web));
        await store.enqueue(api, makePending(api));
        const pending = await store.loadPending();
        expect(pending.get('web')?.queued?.intent).toEqual(web);
        expect(pending.get('api')?.queued?.intent).toEqual(api);
      });

      it('records the intent: the same intent id is refused, and the refused call changes nothing', async () => {
        const intent = makeIntent();
        await store.enqueue(intent, makePending(intent));
        const other = makePending(makeIntent(), { count: 7 });
        await expect(store.enqueue(intent, other)).rejects.toBeInstanceOf(StoreUnavailableError);
        expect((await store.loadPending()).get('web')).toEqual({ queued: makePending(intent), running: null });
      });

      it('while an operation runs, fills the queued slot and leaves the running one alone', async () => {
        const running = makeIntent();
        await store.enqueue(running, makePending(running));
        await store.startOperation('web', makePending(running));
        const next = makeIntent({ adjustment: { type: 'step', direction: 'down' } });
        await store.enqueue(next, makePending(next));
        expect((await store.loadPending()).get('web')).toEqual({
          queued: makePending(next),
          running: makePending(running),
        });
      });
    });

    describe('JSON round-trips', () => {
      it.each<[string, Adjustment]>([
        ['a step up', { type: 'step', direction: 'up' }],
        ['a step down', { type: 'step', direction: 'down' }],
        ['a relative change', { type: 'by', by: -2 }],
        ['an absolute value', { type: 'to', to: 17 }],
      ])('an intent asking for %s comes back with every field, evidence included', async (_name, adjustment) => {
        const intent = makeIntent({ adjustment, dryRun: true, source: 'api', bounds: 'reject' });
        const pending = makePending(intent, { count: 3, firstAt: at(-5), attempts: 2, notBefore: at(30) });
        await store.enqueue(intent, pending);
        expect((await store.loadPending()).get('web')?.queued).toStrictEqual(pending);
      });

      it('an intent with empty evidence comes back without invented fields', async () => {
        const intent = makeIntent({ evidence: {}, source: 'schedule' });
        await store.enqueue(intent, makePending(intent));
        expect((await store.loadPending()).get('web')?.queued?.intent).toStrictEqual(intent);
      });

      it.each<[string, ScalingEvent]>([
        ['a change with every optional field', makeEvent()],
        ['a skip with its reason code', makeEvent({ kind: 'skipped', to: null, skipReason: 'cooldown', intents: 1 })],
        ['a failure with its error code', makeEvent({ kind: 'failed', errorCode: 'PS_PULUMI_PROGRAM', durationMs: 0 })],
        [
          'an ignored alert without intent or evidence',
          {
            id: nextId('event'),
            target: 'unknown-target',
            at: at(3),
            kind: 'ignored',
            from: null,
            to: null,
            reason: 'no such target',
            source: 'cloudwatch',
            intents: 1,
            durationMs: 0,
            dryRun: false,
          },
        ],
        ['a preview', makeEvent({ kind: 'previewed', dryRun: true })],
      ])('an event that is %s comes back as it went in', async (_name, event) => {
        await store.appendEvent(event);
        expect(await store.listEvents({ limit: 10 })).toStrictEqual([event]);
        expect((await store.lastEvents()).get(event.target)).toStrictEqual(event);
      });

      it.each<[string, TargetRecord]>([
        ['a cooling target', makeRecord({ cooldownUntil: { up: at(60), down: at(300) } })],
        ['a never-read, paused target', makeRecord({ current: null, paused: true, cooldownUntil: { up: null, down: null } })],
      ])('a target record of %s comes back as it went in', async (_name, record) => {
        await store.saveTarget(record);
        expect(await store.loadTargets()).toStrictEqual(new Map([[record.name, record]]));
      });
    });

    describe('startOperation', () => {
      it('moves the queued pending intent to the running slot and empties the queued one', async () => {
        const intent = makeIntent();
        await store.enqueue(intent, makePending(intent));
        const running = makePending(intent, { attempts: 1 });
        await store.startOperation('web', running);
        expect((await store.loadPending()).get('web')).toEqual({ queued: null, running });
      });

      it("leaves other targets' slots alone", async () => {
        const web = makeIntent({ target: 'web' });
        const api = makeIntent({ target: 'api' });
        await store.enqueue(web, makePending(web));
        await store.enqueue(api, makePending(api));
        await store.startOperation('web', makePending(web));
        expect((await store.loadPending()).get('api')).toEqual({ queued: makePending(api), running: null });
      });
    });

    describe('markApplying', () => {
      it('overwrites the running slot only, leaving what was queued meanwhile', async () => {
        const first = makeIntent({ receivedAt: at(1) });
        await store.enqueue(first, makePending(first));
        await store.startOperation('web', makePending(first));
        const next = makeIntent({ receivedAt: at(2) });
        await store.enqueue(next, makePending(next));
        const marked = makePending(first, { applying: { from: 3, to: 5 } });
        await store.markApplying('web', marked);
        expect((await store.loadPending()).get('web')).toEqual({ queued: makePending(next), running: marked });
      });

      it('does nothing when no operation runs', async () => {
        const intent = makeIntent();
        await store.enqueue(intent, makePending(intent));
        await store.markApplying('web', makePending(intent, { applying: { from: null, to: 2 } }));
        expect((await store.loadPending()).get('web')).toEqual({ queued: makePending(intent), running: null });
      });
    });

    describe('finishOperation', () => {
      /** A target with `running` in its running slot and, optionally, `queued` waiting behind it. */
      async function running(queuedMeanwhile = false): Promise<{ running: PendingIntent; queued: PendingIntent | null }> {
        const intent = makeIntent({ receivedAt: at(1) });
        await store.enqueue(intent, makePending(intent));
        await store.startOperation('web', makePending(intent));
        if (!queuedMeanwhile) return { running: makePending(intent), queued: null };
        const next = makeIntent({ receivedAt: at(2) });
        await store.enqueue(next, makePending(next));
        return { running: makePending(intent), queued: makePending(next) };
      }

      it('clears the running slot, appends the event and saves the record', async () => {
        await running();
        const event = makeEvent();
        const record = makeRecord({ current: 3 });
        await store.finishOperation('web', { event, record });
        expect(await store.loadPending()).toEqual(new Map());
        expect(await store.listEvents({ limit: 10 })).toEqual([event]);
        expect(await store.loadTargets()).toEqual(new Map([['web', record]]));
      });

      it('with no event, appends nothing but still clears the slot and saves the record', async () => {
        await running();
        const record = makeRecord({ current: 5 });
        await store.finishOperation('web', { event: null, record });
        expect(await store.loadPending()).toEqual(new Map());
        expect(await store.listEvents({ limit: 10 })).toEqual([]);
        expect((await store.loadTargets()).get('web')).toEqual(record);
      });

      it('without requeue, keeps an intent queued during the operation', async () => {
        const { queued } = await running(true);
        await store.finishOperation('web', { event: makeEvent(), record: makeRecord(), requeue: null });
        expect((await store.loadPending()).get('web')).toEqual({ queued, running: null });
      });

      it.each([
        ['an empty queued slot', false],
        ['a queued slot filled during the operation', true],
      ])('with requeue, puts the given pending intent in %s and empties running', async (_name, meanwhile) => {
        const { running: r } = await running(meanwhile);
        const retry = makePending(r.intent, { attempts: 1, notBefore: at(40), count: meanwhile ? 2 : 1 });
        await store.finishOperation('web', { event: null, record: makeRecord(), requeue: retry });
        expect((await store.loadPending()).get('web')).toEqual({ queued: retry, running: null });
      });

      it('is atomic: a refused event (duplicate id) leaves the slots, the record and the history as they were', async () => {
        const before = await running(true);
        const event = makeEvent();
        await store.appendEvent(event);
        const record = makeRecord({ current: 99 });
        const requeue = makePending(before.running.intent, { attempts: 1 });
        await expect(store.finishOperation('web', { event, record, requeue })).rejects.toBeInstanceOf(
          StoreUnavailableError,
        );
        expect((await store.loadPending()).get('web')).toEqual({ queued: before.queued, running: before.running });
        expect(await store.loadTargets()).toEqual(new Map());
        expect(await store.listEvents({ limit: 10 })).toEqual([event]);
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
    });

    describe('events', () => {
      it('appendEvent refuses an event id already in the history', async () => {
        const event = makeEvent();
        await store.appendEvent(event);
        await expect(store.appendEvent({ ...event, reason: 'again' })).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(await store.listEvents({ limit: 10 })).toEqual([event]);
      });

      it('listEvents returns the newest first', async () => {
        const events = await appendMany(4);
        expect(await store.listEvents({ limit: 10 })).toEqual(events.toReversed());
      });

      it('listEvents with a target returns only that target, newest first', async () => {
        const web1 = await appendMany(1, 'web', 0);
        const api1 = await appendMany(1, 'api', 1);
        const web2 = await appendMany(1, 'web', 2);
        expect(await store.listEvents({ target: 'web', limit: 10 })).toEqual([...web2, ...web1]);
        expect(await store.listEvents({ target: 'api', limit: 10 })).toEqual(api1);
        expect(await store.listEvents({ target: 'nobody', limit: 10 })).toEqual([]);
      });

      it.each([
        [0, 0],
        [1, 1],
        [3, 3],
        [5, 5],
        [8, 5],
      ])('listEvents with limit %i over 5 events returns the newest %i', async (limit, count) => {
        const events = await appendMany(5);
        expect(await store.listEvents({ limit })).toEqual(events.toReversed().slice(0, count));
      });

      it('listEvents pages with before: each page continues strictly after the last event of the previous one', async () => {
        const events = (await appendMany(5)).toReversed();
        const pages: ScalingEvent[][] = [];
        let before: string | undefined;
        // Bounded, so that a store whose cursor does not advance fails instead of looping.
        for (let i = 0; i < 10; i++) {
          const page = await store.listEvents(before === undefined ? { limit: 2 } : { limit: 2, before });
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
        expect(await store.listEvents({ target: 'web', before: cursor, limit: 10 })).toEqual([web[1], web[0]]);
      });

      it('listEvents before an id not in the history returns an empty page, not the newest events', async () => {
        await appendMany(3);
        expect(await store.listEvents({ before: 'no-such-event', limit: 10 })).toEqual([]);
      });

      it('lastEvents holds the newest event of each target, whichever way it was recorded', async () => {
        await appendMany(2, 'web', 0);
        const [apiLast] = await appendMany(1, 'api', 5);
        const intent = makeIntent();
        await store.enqueue(intent, makePending(intent));
        await store.startOperation('web', makePending(intent));
        const webLast = makeEvent({ at: at(9) });
        await store.finishOperation('web', { event: webLast, record: makeRecord() });
        expect(await store.lastEvents()).toEqual(
          new Map([
            ['web', webLast],
            ['api', apiLast],
          ]),
        );
      });
    });

    describe('bounded history', () => {
      /** Replaces the suite's store with one built with `limits`; afterEach closes it. */
      async function remake(limits: HistoryLimits): Promise<void> {
        await store.close();
        store = await make(limits);
      }

      it('keeps the newest historyTotalLimit events across targets, whichever call appended them', async () => {
        await remake({ historyTotalLimit: 4 });
        await appendMany(1, 'web', 0);
        const [api1] = await appendMany(1, 'api', 1);
        const [db1] = await appendMany(1, 'db', 2);
        const [api2] = await appendMany(1, 'api', 3);
        const intent = makeIntent();
        await store.enqueue(intent, makePending(intent));
        await store.startOperation('web', makePending(intent));
        const web2 = makeEvent({ at: at(4) });
        await store.finishOperation('web', { event: web2, record: makeRecord() });
        expect(await store.listEvents({ limit: 10 })).toEqual([web2, api2, db1, api1]);
        expect(await store.listEvents({ target: 'web', limit: 10 })).toEqual([web2]);
        const [db2] = await appendMany(1, 'db', 5);
        // The oldest go first, whatever their target: web's first event, now api's.
        expect(await store.listEvents({ limit: 10 })).toEqual([db2, web2, api2, db1]);
        expect(await store.lastEvents()).toEqual(
          new Map([
            ['web', web2],
            ['api', api2],
            ['db', db2],
          ]),
        );
      });

      it('a target whose every event was trimmed leaves lastEvents, and records again under its own limit', async () => {
        await remake({ historyLimit: 2, historyTotalLimit: 3 });
        await appendMany(2, 'web', 0);
        // The third api event trims the first (per target) and the second web one (three newer
        // events were recorded since, though one of them is gone): two events are left.
        const api = await appendMany(3, 'api', 2);
        expect(await store.listEvents({ limit: 10 })).toEqual(api.slice(1).toReversed());
        expect([...(await store.lastEvents()).keys()]).toEqual(['api']);
        const web = await appendMany(3, 'web', 5);
        expect(await store.listEvents({ target: 'web', limit: 10 })).toEqual(web.slice(1).toReversed());
        expect(await store.listEvents({ limit: 10 })).toEqual(web.slice(1).toReversed());
        expect(await store.lastEvents()).toEqual(new Map([['web', web[2]]]));
      });

      it('a page cursor trimmed away gives an empty page, not the newest events again', async () => {
        await remake({ historyTotalLimit: 2 });
        const [oldest] = await appendMany(3);
        expect(await store.listEvents({ before: oldest?.id ?? '', limit: 10 })).toEqual([]);
      });
    });

    describe('deliveries', () => {
      const future = '2999-01-01T00:00:00.000Z';
      const past = '2000-01-01T00:00:00.000Z';

      it('remembers a key the first time and reports a replay after', async () => {
        expect(await store.rememberDelivery('sns:m-1', future)).toBe(true);
        expect(await store.rememberDelivery('sns:m-1', future)).toBe(false);
        expect(await store.rememberDelivery('sns:m-1', future)).toBe(false);
      });

      it('keeps keys apart', async () => {
        expect(await store.rememberDelivery('sns:m-1', future)).toBe(true);
        expect(await store.rememberDelivery('sns:m-2', future)).toBe(true);
      });

      it('an expired key may be remembered again, and is then a replay until its new expiry', async () => {
        expect(await store.rememberDelivery('sns:m-1', past)).toBe(true);
        expect(await store.rememberDelivery('sns:m-1', future)).toBe(true);
        expect(await store.rememberDelivery('sns:m-1', future)).toBe(false);
      });

      it('forgetDelivery lets the same key be accepted again', async () => {
        await store.rememberDelivery('sns:m-1', future);
        await store.forgetDelivery('sns:m-1');
        expect(await store.rememberDelivery('sns:m-1', future)).toBe(true);
      });

      it('forgetDelivery of an unknown key is not an error and forgets nothing else', async () => {
        await store.rememberDelivery('sns:m-1', future);
        await expect(store.forgetDelivery('sns:never-seen')).resolves.toBeUndefined();
        expect(await store.rememberDelivery('sns:m-1', future)).toBe(false);
      });
    });
  });
}
