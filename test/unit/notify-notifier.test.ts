import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CLOSE_GRACE_MS, MAX_BACKOFF_MS, Notifier, withoutUrls, retryAfterMs, type DeliveryOutcome, type DestinationConfig, type NotifierOptions, type PostResult } from '../../src/notify/notifier.js';
import { outboxRouter } from '../../src/notify/route.js';
import { EventBus } from '../../src/observe/bus.js';
import type { ScalingEvent } from '../../src/types.js';
import { parseTestConfig } from '../support/config.js';
import { FakeClock } from '../support/fake-clock.js';
import { answer, Arrivals, FakePoster, type Answer } from '../support/fake-poster.js';
import { MemoryStore } from '../support/memory-store.js';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const silent = pino({ level: 'silent' });

let seq = 0;
/** A `changed` event with a fresh id, `over` winning. */
function event(over: Partial<ScalingEvent> = {}): ScalingEvent {
  seq += 1;
  return {
    id: `ev-${seq}`,
    target: 'web',
    at: iso(T0),
    kind: 'changed',
    from: 2,
    to: 3,
    reason: 'alert HighCPU',
    source: 'alertmanager',
    intents: 1,
    durationMs: 1200,
    dryRun: false,
    ...over,
  };
}

/** A webhook destination taking `changed` events, paced at 100/s unless told otherwise. */
function dest(name: string, over: Partial<DestinationConfig> = {}): DestinationConfig {
  return {
    name,
    type: 'webhook',
    url: `https://hooks.example.com/${name}`,
    events: ['changed', 'failed'],
    targets: [],
    maxAge: 3_600_000,
    timeout: 10_000,
    ratePerSecond: 100,
    ...over,
  };
}

interface Outcome {
  destination: string;
  outcome: DeliveryOutcome;
}

/** One turn of the event loop: every promise chain on the in-memory fakes settles. Not a sleep. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const live: { notifier: Notifier; poster: FakePoster }[] = [];
afterEach(async () => {
  // No loop may outlive its test: close, and end whatever post a test left open.
  for (const { notifier, poster } of live.splice(0)) {
    const closing = notifier.close();
    poster.releaseAll();
    await closing;
  }
});

/** A notifier on a MemoryStore routed to `destinations`, a fake clock and a fake poster. */
function rig(destinations: DestinationConfig[], opts: Partial<Pick<NotifierOptions, 'baseBackoffMs' | 'random'>> = {}) {
  const clock = new FakeClock(T0);
  const store = new MemoryStore({ route: outboxRouter({ notifications: destinations, targets: {} }) });
  store.now = () => clock.now();
  const bus = new EventBus();
  const outcomes = new Arrivals<Outcome>();
  bus.subscribe((m) => {
    if (m.type === 'notification') outcomes.push({ destination: m.destination, outcome: m.outcome });
  });
  const poster = new FakePoster(() => clock.now());
  const make = (): Notifier => {
    const notifier = new Notifier({ store, destinations, publicUrl: null, clock, bus, logger: silent, post: poster.post, baseBackoffMs: 1_000, random: () => 0.5, ...opts });
    live.push({ notifier, poster });
    return notifier;
  };
  const notifier = make();
  return {
    clock,
    store,
    poster,
    outcomes,
    notifier,
    make,
    /** Appends events (the store writes their messages); does not poke. */
    async add(...events: ScalingEvent[]): Promise<void> {
      for (const e of events) await store.appendEvent(e);
    },
    /** Lets pending work settle, moves the clock by `ms` (firing due timers), and settles again. */
    async tick(ms: number): Promise<void> {
      await settle();
      clock.advance(ms);
      await settle();
    },
    /** Moves the clock in steps of `stepMs` until `done()` holds; fails past `limitMs`. */
    async drive(done: () => boolean, stepMs = 50, limitMs = 60_000): Promise<void> {
      await settle();
      for (let waited = 0; !done(); waited += stepMs) {
        if (waited > limitMs) throw new Error(`not done after ${limitMs} ms of fake time`);
        clock.advance(stepMs);
        await settle();
      }
    },
    outcomesOf: (name: string) => outcomes.items.filter((o) => o.destination === name).map((o) => o.outcome),
  };
}

describe('Notifier: order and independence', () => {
  it("a destination's messages go in order, each only after the one before was taken", async () => {
    const r = rig([dest('a')]);
    const [e1, e2, e3] = [event(), event(), event()];
    await r.add(e1, e2, e3);
    r.poster.script('https://hooks.example.com/a', 'hold', answer(503));
    r.notifier.start();
    await r.poster.calls.count(1);
    // While the head is in flight nothing behind it goes, however long it takes.
    await r.tick(5_000);
    expect(r.poster.ids()).toEqual([e1.id]);
    r.poster.calls.items[0]?.end(answer(503));
    await r.drive(() => r.store.outbox.length === 0);
    // A failed head is tried again before anything behind it.
    expect(r.poster.ids()).toEqual([e1.id, e1.id, e1.id, e2.id, e3.id]);
    expect(r.outcomesOf('a')).toEqual(['retried', 'retried', 'sent', 'sent', 'sent']);
  });

  it('counts a sent message before the outbox lets it go: a scrape never finds it gone and not counted', async () => {
    const r = rig([dest('a')]);
    await r.add(event());
    // The outbox's removal is held: what a scrape would read while its commit waits for the disk.
    let release = (): void => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const remove = r.store.removeMessage.bind(r.store);
    let removed = false;
    r.store.removeMessage = async (seq) => {
      await held;
      await remove(seq);
      removed = true;
    };
    r.notifier.start();
    await r.outcomes.count(1);
    expect(r.outcomesOf('a')).toEqual(['sent']);
    expect(removed).toBe(false);
    release();
    await r.drive(() => r.store.outbox.length === 0);
    expect(r.outcomesOf('a')).toEqual(['sent']);
  });

  it.each<[string, Answer[]]>([
    ['hangs', ['hold']],
    ['keeps failing with 503', Array.from({ length: 50 }, () => answer(503))],
    ['keeps answering 429', Array.from({ length: 50 }, () => answer(429, '30'))],
  ])('a destination that %s does not hold back another', async (_how, script) => {
    const r = rig([dest('a'), dest('b')]);
    r.poster.script('https://hooks.example.com/a', ...script);
    const events = [event(), event(), event()];
    await r.add(...events);
    r.notifier.start();
    await r.drive(() => !r.store.outbox.some((m) => m.destination === 'b'), 50, 10_000);
    expect(r.poster.ids('https://hooks.example.com/b')).toEqual(events.map((e) => e.id));
    expect(r.outcomesOf('b')).toEqual(['sent', 'sent', 'sent']);
    expect(r.store.outbox.filter((m) => m.destination === 'a').map((m) => m.event.id)).toEqual(events.map((e) => e.id));
  });
});

describe('Notifier: pace', () => {
  it.each<[string, Partial<DestinationConfig>, number]>([
    ['ratePerSecond 4 spaces posts 250 ms apart', { ratePerSecond: 4 }, 250],
    ['ratePerSecond 0.2 spaces posts 5 s apart', { ratePerSecond: 0.2 }, 5_000],
    ["a Slack destination defaults to Slack's 1 message a second", { type: 'slack', ratePerSecond: undefined }, 1_000],
    ['a Teams destination defaults to 1 a second', { type: 'teams', ratePerSecond: undefined }, 1_000],
    ["a Discord destination defaults to Discord's 30 a minute", { type: 'discord', ratePerSecond: undefined }, 2_000],
    ['a generic webhook defaults to 10 a second', { type: 'webhook', ratePerSecond: undefined }, 100],
  ])('%s', async (_rule, over, gapMs) => {
    const r = rig([dest('a', over)]);
    await r.add(event(), event(), event());
    r.notifier.start();
    await r.poster.calls.count(1);
    await r.tick(gapMs - 1);
    expect(r.poster.calls.items).toHaveLength(1);
    await r.tick(1);
    await r.poster.calls.count(2);
    await r.tick(gapMs);
    await r.poster.calls.count(3);
    expect(r.poster.calls.items.map((c) => c.at - T0)).toEqual([0, gapMs, 2 * gapMs]);
  });

  it('the pace counts from the start of the last attempt, failed ones included', async () => {
    const r = rig([dest('a', { ratePerSecond: 1 })], { random: () => 0.1 });
    r.poster.script('https://hooks.example.com/a', answer(503));
    await r.add(event());
    r.notifier.start();
    // The backoff (100 ms) is shorter than the pace (1 s): the pace wins.
    await r.drive(() => r.poster.calls.items.length === 2, 10);
    expect(r.poster.calls.items.map((c) => c.at - T0)).toEqual([0, 1_000]);
  });
});

describe('Notifier: 429 waits what Retry-After says, the attempt not counted', () => {
  it.each<[string, string | null, number]>([
    ['Retry-After: 3 waits 3 s', '3', 3_000],
    ['Retry-After: 1.5 waits 1.5 s', '1.5', 1_500],
    ['Retry-After as an HTTP date waits until that date', new Date(T0 + 5_000).toUTCString(), 5_000],
    ['no Retry-After falls back to the first backoff, counted as an attempt', null, 500],
  ])('%s', async (_rule, retryAfter, waitMs) => {
    const r = rig([dest('a')]);
    r.poster.script('https://hooks.example.com/a', answer(429, retryAfter));
    const e = event();
    await r.add(e);
    r.notifier.start();
    await r.outcomes.count(1);
    expect(r.outcomes.items).toEqual([{ destination: 'a', outcome: 'rate-limited' }]);
    expect(r.store.outbox).toMatchObject([{ event: { id: e.id }, attempts: retryAfter === null ? 1 : 0, notBefore: iso(T0 + waitMs) }]);
    await r.tick(waitMs - 1);
    expect(r.poster.calls.items).toHaveLength(1);
    await r.tick(1);
    await r.outcomes.count(2);
    expect(r.poster.calls.items.map((c) => c.at - T0)).toEqual([0, waitMs]);
    expect(r.outcomesOf('a')).toEqual(['rate-limited', 'sent']);
    expect(r.store.outbox).toEqual([]);
  });

  it('repeated 429s without Retry-After back off further each time', async () => {
    const r = rig([dest('a')]);
    r.poster.script('https://hooks.example.com/a', answer(429, null), answer(429, null), answer(429, null), 'hold');
    await r.add(event());
    r.notifier.start();
    await r.drive(() => r.poster.calls.items.length === 4);
    expect(r.store.outbox[0]?.attempts).toBe(3);
    expect(r.poster.calls.items.map((c) => c.at - T0)).toEqual([0, 500, 1_500, 3_500]);
  });

  it('repeated 429s never count as attempts', async () => {
    const r = rig([dest('a')]);
    r.poster.script('https://hooks.example.com/a', answer(429, '1'), answer(429, '1'), answer(429, '1'), 'hold');
    await r.add(event());
    r.notifier.start();
    await r.drive(() => r.poster.calls.items.length === 4);
    expect(r.store.outbox[0]?.attempts).toBe(0);
    expect(r.poster.calls.items.map((c) => c.at - T0)).toEqual([0, 1_000, 2_000, 3_000]);
  });
});

describe('Notifier: failures that may pass are retried with exponential backoff and full jitter', () => {
  const networkError = () => Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });

  it.each<[string, Answer]>([
    ['503', answer(503)],
    ['500', answer(500)],
    ['502', answer(502)],
    ['504', answer(504)],
    ['408', answer(408)],
    ['a network error (the post rejects)', networkError()],
  ])('%s: retried after the backoff, the attempt recorded in the store, then delivered', async (_what, failure) => {
    const r = rig([dest('a')]);
    r.poster.script('https://hooks.example.com/a', failure);
    const e = event();
    await r.add(e);
    r.notifier.start();
    await r.outcomes.count(1);
    expect(r.outcomes.items).toEqual([{ destination: 'a', outcome: 'retried' }]);
    // base 1,000 ms × 2^0, times random() = 0.5.
    expect(r.store.outbox).toMatchObject([{ event: { id: e.id }, attempts: 1, notBefore: iso(T0 + 500) }]);
    await r.tick(499);
    expect(r.poster.calls.items).toHaveLength(1);
    await r.tick(1);
    await r.outcomes.count(2);
    expect(r.outcomesOf('a')).toEqual(['retried', 'sent']);
    expect(r.poster.ids()).toEqual([e.id, e.id]);
    expect(r.store.outbox).toEqual([]);
  });

  it('the backoff doubles with each attempt', async () => {
    const r = rig([dest('a')]);
    r.poster.script('https://hooks.example.com/a', answer(503), answer(503), answer(503), answer(503), 'hold');
    await r.add(event());
    r.notifier.start();
    await r.drive(() => r.poster.calls.items.length === 5);
    // Waits of 500, 1,000, 2,000 and 4,000 ms: half of 1, 2, 4 and 8 s.
    expect(r.poster.calls.items.map((c) => c.at - T0)).toEqual([0, 500, 1_500, 3_500, 7_500]);
    expect(r.store.outbox[0]?.attempts).toBe(4);
    r.poster.calls.items[4]?.end(answer(200));
    await settle();
    expect(r.store.outbox).toEqual([]);
  });

  it.each<[string, number, number]>([
    ['random() = 0 waits the 1 ms floor', 0, 1],
    ['random() = 0.25 waits a quarter of the cap', 0.25, 250],
    ['random() just under 1 waits almost the cap', 0.999, 999],
  ])('full jitter: %s', async (_rule, random, waitMs) => {
    const r = rig([dest('a')], { random: () => random });
    r.poster.script('https://hooks.example.com/a', answer(503));
    await r.add(event());
    r.notifier.start();
    await r.outcomes.count(1);
    expect(r.store.outbox[0]?.notBefore).toBe(iso(T0 + waitMs));
  });

  it(`the backoff is capped at ${MAX_BACKOFF_MS} ms however many attempts failed`, async () => {
    const r = rig([dest('a')]);
    r.poster.script('https://hooks.example.com/a', answer(503));
    await r.add(event());
    Object.assign(r.store.outbox[0] ?? {}, { attempts: 40 });
    r.notifier.start();
    await r.outcomes.count(1);
    expect(r.store.outbox[0]).toMatchObject({ attempts: 41, notBefore: iso(T0 + MAX_BACKOFF_MS / 2) });
  });

  it('a post that never answers is aborted through its signal after `timeout` ms, then retried', async () => {
    const r = rig([dest('a', { timeout: 2_000 })]);
    r.poster.script('https://hooks.example.com/a', 'hold');
    const e = event();
    await r.add(e);
    r.notifier.start();
    await r.poster.calls.count(1);
    const first = r.poster.calls.items[0];
    await r.tick(1_999);
    expect(first?.signal.aborted).toBe(false);
    expect(r.outcomes.items).toEqual([]);
    await r.tick(1);
    expect(first?.signal.aborted).toBe(true);
    await r.outcomes.count(1);
    expect(r.outcomes.items).toEqual([{ destination: 'a', outcome: 'retried' }]);
    expect(r.store.outbox).toMatchObject([{ event: { id: e.id }, attempts: 1, notBefore: iso(T0 + 2_000 + 500) }]);
    await r.drive(() => r.store.outbox.length === 0);
    expect(r.poster.ids()).toEqual([e.id, e.id]);
    expect(r.outcomesOf('a')).toEqual(['retried', 'sent']);
  });
});

describe('Notifier: messages dropped', () => {
  it.each([400, 401, 403, 404, 410, 413, 422])('%s: the platform refuses the message for good: dropped as rejected, and the next goes on', async (status) => {
    const r = rig([dest('a')]);
    r.poster.script('https://hooks.example.com/a', answer(status));
    const [e1, e2] = [event(), event()];
    await r.add(e1, e2);
    r.notifier.start();
    await r.drive(() => r.store.outbox.length === 0);
    expect(r.poster.ids()).toEqual([e1.id, e2.id]);
    expect(r.outcomesOf('a')).toEqual(['rejected', 'sent']);
  });

  it.each<[string, number, DeliveryOutcome]>([
    ['a message exactly maxAge old is still sent', 60_000, 'sent'],
    ['a message older than maxAge is dropped as expired, never posted', 60_001, 'expired'],
  ])('%s', async (_rule, ageMs, outcome) => {
    const r = rig([dest('a', { maxAge: 60_000 })]);
    await r.add(event());
    r.clock.advance(ageMs);
    r.notifier.start();
    await r.outcomes.count(1);
    expect(r.outcomes.items).toEqual([{ destination: 'a', outcome }]);
    expect(r.poster.calls.items).toHaveLength(outcome === 'sent' ? 1 : 0);
    expect(r.store.outbox).toEqual([]);
  });

  it('a message that grows older than maxAge while it waits out a backoff is expired', async () => {
    const r = rig([dest('a', { maxAge: 1_000 })]);
    r.poster.script('https://hooks.example.com/a', ...Array.from({ length: 10 }, () => answer(503)));
    await r.add(event());
    r.notifier.start();
    await r.drive(() => r.store.outbox.length === 0);
    // Tries at 0 and 500 ms; the next would be at 1,500 ms, past the 1 s maxAge.
    expect(r.poster.calls.items.map((c) => c.at - T0)).toEqual([0, 500]);
    expect(r.outcomesOf('a')).toEqual(['retried', 'retried', 'expired']);
  });
});

describe('Notifier: restart, close and poke', () => {
  it('a new notifier on the same store sends what the last one left, keeping its attempts and wait', async () => {
    const r = rig([dest('a')]);
    r.poster.script('https://hooks.example.com/a', answer(503));
    const [e1, e2] = [event(), event()];
    await r.add(e1, e2);
    r.notifier.start();
    await r.outcomes.count(1);
    await r.notifier.close();
    expect(r.store.outbox).toMatchObject([{ event: { id: e1.id }, attempts: 1, notBefore: iso(T0 + 500) }, { event: { id: e2.id }, attempts: 0 }]);

    const again = r.make();
    again.start();
    await r.drive(() => r.store.outbox.length === 0, 10);
    expect(r.poster.ids()).toEqual([e1.id, e1.id, e2.id]);
    // The restarted loop honoured the stored notBefore.
    expect(r.poster.calls.items[1]?.at).toBe(T0 + 500);
    expect(r.outcomesOf('a')).toEqual(['retried', 'sent', 'sent']);
  });

  it.each<[string, PostResult, { attempts: number } | null]>([
    ['succeeds: its message is removed', answer(200), null],
    ['fails: its message stays, the attempt counted', answer(503), { attempts: 1 }],
  ])('close() waits for the post in flight; when that post %s', async (_what, end, left) => {
    const r = rig([dest('a')]);
    r.poster.script('https://hooks.example.com/a', 'hold');
    const [e1, e2] = [event(), event()];
    await r.add(e1, e2);
    r.notifier.start();
    await r.poster.calls.count(1);
    let closed = false;
    const closing = r.notifier.close().then(() => {
      closed = true;
    });
    await settle();
    expect(closed).toBe(false);
    r.poster.calls.items[0]?.end(end);
    await closing;
    const head = r.store.outbox.find((m) => m.event.id === e1.id);
    if (left === null) expect(head).toBeUndefined();
    else expect(head).toMatchObject(left);
    // Nothing new started: the second message waits for the next start.
    expect(r.poster.ids()).toEqual([e1.id]);
    expect(r.store.outbox.map((m) => m.event.id)).toContain(e2.id);
    expect(r.clock.pendingTimers).toBe(0);
  });

  it('close() aborts a post still in flight after a second: its message stays as it was', async () => {
    const r = rig([dest('a')]);
    r.poster.script('https://hooks.example.com/a', 'hold');
    const e1 = event();
    await r.add(e1);
    r.notifier.start();
    await r.poster.calls.count(1);
    const closing = r.notifier.close();
    await r.tick(CLOSE_GRACE_MS);
    await closing;
    expect(r.store.outbox).toMatchObject([{ event: { id: e1.id }, attempts: 0, notBefore: null }]);
    expect(r.outcomes.items).toEqual([]);
    expect(r.clock.pendingTimers).toBe(0);
  });

  it.each<[string, number, Answer[]]>([
    ['idle', 100, []],
    ['waiting out the pace', 0.1, []],
    ['waiting out a backoff', 100, [answer(503)]],
    ['waiting out a Retry-After', 100, [answer(429, '60')]],
  ])('close() of a loop %s resolves at once and starts no post afterwards', async (state, ratePerSecond, script) => {
    const r = rig([dest('a', { ratePerSecond })]);
    r.poster.script('https://hooks.example.com/a', ...script);
    if (state !== 'idle') await r.add(event(), event());
    r.notifier.start();
    if (state !== 'idle') await r.outcomes.count(1);
    await settle();
    const before = r.poster.calls.items.length;
    await r.notifier.close();
    expect(r.clock.pendingTimers).toBe(0);
    await r.add(event());
    r.notifier.poke();
    await r.tick(3_600_000);
    expect(r.poster.calls.items).toHaveLength(before);
  });

  it('poke() wakes an idle loop at once, without waiting for the 10 s recheck', async () => {
    const r = rig([dest('a')]);
    r.notifier.start();
    await settle();
    const e = event();
    await r.add(e);
    r.notifier.poke();
    await r.poster.calls.count(1);
    expect(r.poster.calls.items.map((c) => [c.body.id, c.at])).toEqual([[e.id, T0]]);
  });

  it('without a poke, an idle loop finds a new message at its 10 s recheck', async () => {
    const r = rig([dest('a')]);
    r.notifier.start();
    await settle();
    await r.add(event());
    await r.tick(9_999);
    expect(r.poster.calls.items).toHaveLength(0);
    await r.tick(1);
    await r.poster.calls.count(1);
    expect(r.poster.calls.items[0]?.at).toBe(T0 + 10_000);
  });

  it('a poke that comes while the loop reads an empty queue is not lost', async () => {
    const r = rig([dest('a')]);
    // start() reads the (empty) queue; the event and its poke arrive before that read answers.
    r.notifier.start();
    const adding = r.store.appendEvent(event());
    r.notifier.poke();
    await adding;
    await r.poster.calls.count(1);
    expect(r.poster.calls.items[0]?.at).toBe(T0);
  });

  it('close() right after start() starts no post, though a message was due', async () => {
    const r = rig([dest('a')]);
    await r.add(event());
    r.notifier.start();
    await r.notifier.close();
    await r.tick(60_000);
    expect(r.poster.calls.items).toHaveLength(0);
    expect(r.store.outbox).toHaveLength(1);
  });
});

describe('Notifier: claims', () => {
  it("asks the store to hold each destination's head for as long as its post may take (its timeout)", async () => {
    const r = rig([dest('slow', { timeout: 600_000 }), dest('quick', { timeout: 2_000 })]);
    const asked: [string, number | undefined][] = [];
    const next = r.store.nextMessage.bind(r.store);
    r.store.nextMessage = (destination: string, attemptMs?: number) => {
      asked.push([destination, attemptMs]);
      return next(destination);
    };
    await r.add(event());
    r.notifier.start();
    await r.poster.calls.count(2);
    expect(new Map(asked)).toEqual(
      new Map([
        ['slow', 600_000],
        ['quick', 2_000],
      ]),
    );
  });
});

describe('Notifier: store failures', () => {
  it('an outbox that cannot be read is read again after a backoff', async () => {
    const r = rig([dest('a')]);
    await r.add(event());
    r.store.failNext('nextMessage');
    r.notifier.start();
    await r.tick(499);
    expect(r.poster.calls.items).toHaveLength(0);
    await r.tick(1);
    await r.poster.calls.count(1);
    expect(r.poster.calls.items[0]?.at).toBe(T0 + 500);
  });

  it('a delivery the store could not record is sent again (at least once, never lost)', async () => {
    const r = rig([dest('a')]);
    const e = event();
    await r.add(e);
    r.store.failNext('removeMessage');
    r.notifier.start();
    await r.drive(() => r.store.outbox.length === 0);
    expect(r.poster.ids()).toEqual([e.id, e.id]);
  });
});

describe('retryAfterMs: Retry-After as delay-seconds or an HTTP date, in ms', () => {
  const NOW = Date.parse('2026-11-27T10:00:00.000Z');
  it.each<[string, string | null, number | null]>([
    ['whole seconds', '3', 3_000],
    ['zero: at once', '0', 0],
    ['fractional seconds, rounded up to the millisecond', '1.5', 1_500],
    ['a tiny fraction is at least 1 ms', '0.0001', 1],
    ['surrounding whitespace is ignored', '  7 ', 7_000],
    ['seconds past 300 s are capped at 300 s', '301', MAX_BACKOFF_MS],
    ['a huge number of seconds is capped too', '99999999999999999999', MAX_BACKOFF_MS],
    ['an HTTP date in the future: until then', new Date(NOW + 42_000).toUTCString(), 42_000],
    ['an HTTP date in the past: at once', new Date(NOW - 42_000).toUTCString(), 0],
    ['an HTTP date far ahead is capped at 300 s', new Date(NOW + 86_400_000).toUTCString(), MAX_BACKOFF_MS],
    ['the obsolete RFC 850 date form', 'Friday, 27-Nov-26 10:00:10 GMT', 10_000],
    ['the obsolete asctime date form', 'Fri Nov 27 10:00:10 2026', 10_000],
    ['no header', null, null],
    ['an empty header', '', null],
    ['a blank header', '   ', null],
    ['a word', 'soon', null],
    ['seconds with a unit', '3s', null],
    ['a number in exponent form', '1e3', null],
  ])('%s', (_rule, header, expected) => {
    expect(retryAfterMs(header, NOW)).toBe(expected);
  });

  // Date.parse alone would read these as dates in 2001: "retry at once" instead of the backoff.
  it.each<[string, string]>([
    ['a negative number', '-1'],
    ['a signed number', '+3'],
    ['a number with a trailing dot', '3.'],
    ['prose ending in a number', 'in 3'],
  ])('malformed: %s is no Retry-After at all', (_rule, header) => {
    expect(retryAfterMs(header, NOW)).toBeNull();
  });
});

describe('outboxRouter: which destinations an event goes to', () => {
  const config = parseTestConfig(
    stringify({
      targets: {
        web: { workDir: './infra/web', stack: 'prod', configKey: 'web:replicas', min: 2, max: 40, approval: { via: 'ops-slack' } },
        api: { workDir: './infra/api', stack: 'prod', configKey: 'api:replicas', min: 1, max: 10, approval: { via: 'web-hook' } },
        batch: { workDir: './infra/batch', stack: 'prod', configKey: 'batch:replicas', min: 0, max: 8, approval: { via: 'approvals' } },
        queue: { workDir: './infra/queue', stack: 'prod', configKey: 'queue:replicas', min: 0, max: 8 },
      },
      notifications: [
        { name: 'ops-slack', type: 'slack', url: 'https://hooks.slack.com/services/T0/B0/x', events: ['changed', 'failed'] },
        { name: 'web-hook', type: 'webhook', url: 'https://hooks.example.com/web', events: ['changed', 'skipped'], targets: ['web'] },
        { name: 'approvals', type: 'teams', url: 'https://example.webhook.office.com/x', events: ['awaiting-approval'] },
        { name: 'defaults', type: 'discord', url: 'https://discord.com/api/webhooks/1/x' },
      ],
    }),
  );
  const route = outboxRouter(config);
  const approval = (status: 'pending' | 'rejected' | 'expired' | 'applied', via: string) => ({
    approval: { id: 'ap-1', status, expiresAt: '2026-11-27T10:30:00.000Z', changes: { update: 1 }, via, decidedBy: null },
  });

  it.each<[string, Partial<ScalingEvent>, string[]]>([
    ['a destination without targets takes its kinds from every target', { kind: 'failed', target: 'queue' }, ['ops-slack', 'defaults']],
    ['a destination with targets takes only theirs', { kind: 'changed', target: 'web' }, ['ops-slack', 'web-hook', 'defaults']],
    ['a target outside the list is left out', { kind: 'changed', target: 'api' }, ['ops-slack', 'defaults']],
    ['a kind no destination lists goes nowhere', { kind: 'missed', target: 'web' }, []],
    ['a kind only one destination lists goes there only', { kind: 'skipped', target: 'web' }, ['web-hook']],
    ['events default to changed and failed', { kind: 'previewed', target: 'queue' }, []],
    ['an approval request goes to its via too, though that one lists other kinds', { kind: 'awaiting-approval', target: 'web', ...approval('pending', 'ops-slack') }, ['approvals', 'ops-slack']],
    ["an approval request goes to its via even past the via's targets", { kind: 'awaiting-approval', target: 'api', ...approval('pending', 'web-hook') }, ['approvals', 'web-hook']],
    ['a via that takes the kind anyway gets the request once', { kind: 'awaiting-approval', target: 'batch', ...approval('pending', 'approvals') }, ['approvals']],
    ['an approval request of a target without approval follows the filters alone', { kind: 'awaiting-approval', target: 'queue' }, ['approvals']],
    ['a rejection goes to the via too, where the request was posted', { kind: 'skipped', target: 'api', skipReason: 'rejected', ...approval('rejected', 'web-hook') }, ['web-hook']],
    ['an expiry goes to the via too', { kind: 'skipped', target: 'web', skipReason: 'approval-expired', ...approval('expired', 'ops-slack') }, ['web-hook', 'ops-slack']],
    ['an approved change applied goes where changes go, and to the via', { kind: 'changed', target: 'api', ...approval('applied', 'web-hook') }, ['ops-slack', 'defaults', 'web-hook']],
  ])('%s', (_rule, over, expected) => {
    expect(route(event(over))).toEqual(expected);
  });
});

describe('withoutUrls: a delivery error never carries a webhook URL into the logs', () => {
  it.each([
    ['a URL with credentials', 'Request cannot be constructed from a URL that includes credentials: https://user:s3cr3t@hooks.example.com/x', 'Request cannot be constructed from a URL that includes credentials: <url>'],
    ['a Slack webhook', 'failed to post to https://hooks.slack.com/services/T0/B0/SECRET (timeout)', 'failed to post to <url> (timeout)'],
    ['no URL at all', 'fetch failed', 'fetch failed'],
  ])('%s', (_name, text, expected) => {
    expect(withoutUrls(text)).toBe(expected);
  });
});

describe('Notifier: a destination no longer configured', () => {
  it('loses its waiting messages at start; the configured ones keep and send theirs', async () => {
    const r = rig([dest('a')]);
    await r.add(event());
    r.store.outbox.push({ seq: 999, destination: 'removed', event: event(), createdAt: iso(T0), attempts: 0, notBefore: null });
    r.notifier.start();
    await r.outcomes.count(1);
    expect(r.store.outbox.filter((m) => m.destination === 'removed')).toEqual([]);
    expect(r.outcomesOf('a')).toEqual(['sent']);
  });
});
