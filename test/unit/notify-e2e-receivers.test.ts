/**
 * The notifier with the real `fetchPoster` and the real clock against local receivers that check
 * each platform's documented shape: what leaves the daemon is what the platform takes. Waits are
 * on the receivers' arrivals, never on time.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/engine/clock.js';
import type { DestinationType } from '../../src/notify/formats/index.js';
import { fetchPoster, Notifier, type DeliveryOutcome, type DestinationConfig } from '../../src/notify/notifier.js';
import { outboxRouter } from '../../src/notify/route.js';
import { EventBus } from '../../src/observe/bus.js';
import type { ScalingEvent } from '../../src/types.js';
import { startReceiver, type Receiver, type ReceiverOptions } from '../support/chat-receivers.js';
import { Arrivals } from '../support/fake-poster.js';
import { MemoryStore } from '../support/memory-store.js';

const TYPES: DestinationType[] = ['slack', 'teams', 'discord', 'webhook'];
const SECRET = 'whsec-e2e-test-secret';
const silent = pino({ level: 'silent' });

let seq = 0;
function event(over: Partial<ScalingEvent> = {}): ScalingEvent {
  seq += 1;
  return {
    id: `e2e-${seq}`,
    target: 'web',
    at: new Date().toISOString(),
    kind: 'changed',
    from: 3,
    to: 5,
    reason: 'alert HighCPU <!channel> & friends',
    source: 'alertmanager',
    intents: 1,
    durationMs: 4_200,
    dryRun: false,
    ...over,
  };
}

const open: { receivers: Receiver[]; notifiers: Notifier[] } = { receivers: [], notifiers: [] };
afterEach(async () => {
  await Promise.all(open.notifiers.splice(0).map((n) => n.close()));
  await Promise.all(open.receivers.splice(0).map((r) => r.close()));
});

async function receiver(type: DestinationType, script?: ReceiverOptions['script']): Promise<Receiver> {
  const r = await startReceiver({ type, ...(type === 'webhook' ? { secret: SECRET } : {}), ...(script ? { script } : {}) });
  open.receivers.push(r);
  return r;
}

/** A destination named after its type, fast-paced and quick to retry (pace is not under test here). */
function destination(type: DestinationType, url: string): DestinationConfig {
  return {
    name: type,
    type,
    url,
    ...(type === 'webhook' ? { secret: SECRET } : {}),
    events: ['changed', 'awaiting-approval'],
    targets: [],
    maxAge: 60_000,
    timeout: 2_000,
    ratePerSecond: 100,
  };
}

/** A started notifier on a MemoryStore holding `events`, with the outcomes it publishes. */
async function deliver(destinations: DestinationConfig[], events: ScalingEvent[]) {
  const store = new MemoryStore({ route: outboxRouter({ notifications: destinations, targets: {} }) });
  const bus = new EventBus();
  const outcomes = new Arrivals<{ destination: string; outcome: DeliveryOutcome }>();
  bus.subscribe((m) => {
    if (m.type === 'notification') outcomes.push({ destination: m.destination, outcome: m.outcome });
  });
  for (const e of events) await store.appendEvent(e);
  const notifier = new Notifier({
    store,
    destinations,
    publicUrl: 'https://scaler.example.com',
    clock: systemClock,
    bus,
    logger: silent,
    post: fetchPoster,
    baseBackoffMs: 20,
  });
  open.notifiers.push(notifier);
  notifier.start();
  return { store, outcomes, notifier, outcomesOf: (name: string) => outcomes.items.filter((o) => o.destination === name).map((o) => o.outcome) };
}

const APPROVAL_REQUEST: Partial<ScalingEvent> = {
  kind: 'awaiting-approval',
  approval: { id: '0b6f3c1e-2a4d-4f7e-9c8b-1d2e3f4a5b6c', status: 'pending', expiresAt: new Date(Date.now() + 1_800_000).toISOString(), changes: { update: 1 }, via: 'slack', decidedBy: null },
};

describe('notifier → real receivers', () => {
  it.each(TYPES.flatMap((type) => [
    [type, 'a changed event', {}],
    [type, 'an approval request', APPROVAL_REQUEST],
  ] as const))('%s: %s arrives as exactly one message the platform takes', async (type, _what, over) => {
    const r = await receiver(type);
    const e = event(over);
    const d = await deliver([destination(type, r.url)], [e]);
    await r.waitFor(1);
    await d.outcomes.count(1, 'outcomes');
    await d.notifier.close();
    expect(r.problems).toEqual([]);
    expect(r.received).toHaveLength(1);
    expect(d.outcomesOf(type)).toEqual(['sent']);
    expect(d.store.outbox).toEqual([]);
    if (type === 'webhook') expect(r.received[0]?.body).toMatchObject({ id: e.id, kind: e.kind });
  });

  it('a receiver answering 429 with Retry-After: 1 gets both of two messages, in order, after the wait', async () => {
    const receivers = await Promise.all(TYPES.map((type) => receiver(type, [{ status: 429, retryAfter: 1 }])));
    const first = event({ reason: 'first-alert-of-two' });
    const second = event({ reason: 'second-alert-of-two' });
    const d = await deliver(
      TYPES.map((type, i) => destination(type, receivers[i]?.url ?? '')),
      [first, second],
    );
    await Promise.all(receivers.map((r) => r.waitFor(3)));
    await d.outcomes.count(3 * TYPES.length, 'outcomes');
    await d.notifier.close();
    for (const [i, type] of TYPES.entries()) {
      const r = receivers[i] as Receiver;
      expect({ type, problems: r.problems }).toEqual({ type, problems: [] });
      // The refused first message, again once the wait is over, then the second.
      expect(r.received.map((q) => (q.raw.includes('first-alert-of-two') ? 'first' : q.raw.includes('second-alert-of-two') ? 'second' : '?'))).toEqual(['first', 'first', 'second']);
      expect((r.received[1]?.at ?? 0) - (r.received[0]?.at ?? 0)).toBeGreaterThanOrEqual(950);
      expect(d.outcomesOf(type)).toEqual(['rate-limited', 'sent', 'sent']);
    }
    expect(d.store.outbox).toEqual([]);
  });
});
