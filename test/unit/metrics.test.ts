// Metric labels come from a bounded set: a name no configured target has (whoever recorded it)
// is counted under the (unknown) bucket, so no sender can add series. The lease metrics follow
// the lease keeper's bus messages.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LeaseKeeper } from '../../src/cluster/lease-keeper.js';
import { EventBus, type BusMessage } from '../../src/observe/bus.js';
import { Metrics } from '../../src/observe/metrics.js';
import type { ScalingEvent } from '../../src/types.js';
import { FakeClock } from '../support/fake-clock.js';
import { FakeClusterStore } from '../support/fake-cluster-store.js';

function event(target: string): ScalingEvent {
  return { id: `e-${target}`, target, at: '2026-11-27T10:00:00.000Z', kind: 'ignored', from: null, to: null, reason: 'r', source: 'alertmanager', intents: 0, durationMs: 0, dryRun: false };
}

/** The target labels of `metric` after publishing `msg` on a bus attached to metrics for `web`. */
async function labelsAfter(msg: BusMessage, metric: string, targets: string[] | null = ['web']): Promise<unknown[]> {
  const metrics = new Metrics({ defaultMetrics: false, ...(targets ? { targets } : {}) });
  const bus = new EventBus();
  metrics.attach(bus);
  bus.publish(msg);
  const json = await metrics.registry.getSingleMetric(metric)?.get();
  return (json?.values ?? []).map((v) => v.labels.target);
}

describe('target labels', () => {
  it.each<[string, BusMessage, string, string[]]>([
    ['a configured target is its own label', { type: 'event', event: event('web') }, 'pulumiscale_events_total', ['web']],
    ['the none bucket stays the none bucket', { type: 'event', event: event('(none)') }, 'pulumiscale_events_total', ['(none)']],
    ['an unconfigured name on an event becomes (unknown)', { type: 'event', event: event('made-up') }, 'pulumiscale_events_total', ['(unknown)']],
    ['an unconfigured name on an intent becomes (unknown)', { type: 'intent', target: 'made-up', source: 'api' }, 'pulumiscale_intents_total', ['(unknown)']],
    ['an unconfigured name on a retry becomes (unknown)', { type: 'retry', target: 'made-up', attempt: 1, delayMs: 1 }, 'pulumiscale_retries_total', ['(unknown)']],
  ])('%s', async (_rule, msg, metric, want) => {
    expect(await labelsAfter(msg, metric)).toEqual(want);
  });

  it('without a list of targets, names are taken as they come', async () => {
    expect(await labelsAfter({ type: 'event', event: event('anything') }, 'pulumiscale_events_total', null)).toEqual(['anything']);
  });
});

describe('lease metrics', () => {
  /** The samples of `metric` as `labels-or-empty => value`. */
  async function samples(metrics: Metrics, metric: string): Promise<Record<string, number>> {
    const json = await metrics.registry.getSingleMetric(metric)?.get();
    return Object.fromEntries((json?.values ?? []).map((v) => [String(v.labels.reason ?? ''), v.value]));
  }

  it('lease changes are counted by reason, as many as each message says', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const bus = new EventBus();
    metrics.attach(bus);
    bus.publish({ type: 'lease-change', reason: 'acquired', count: 3 });
    bus.publish({ type: 'lease-change', reason: 'lost', count: 1 });
    bus.publish({ type: 'lease-change', reason: 'acquired', count: 2 });
    bus.publish({ type: 'lease-change', reason: 'store-unavailable', count: 4 });
    expect(await samples(metrics, 'pulumiscale_lease_changes_total')).toEqual({ acquired: 5, lost: 1, 'store-unavailable': 4 });
  });

  it('leases held and live replicas are what the last beat saw', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const bus = new EventBus();
    metrics.attach(bus);
    bus.publish({ type: 'cluster', held: 4, replicasLive: 2 });
    bus.publish({ type: 'cluster', held: 0, replicasLive: 1 });
    expect(await samples(metrics, 'pulumiscale_leases_held')).toEqual({ '': 0 });
    expect(await samples(metrics, 'pulumiscale_replicas_live')).toEqual({ '': 1 });
  });

  it('a lease keeper’s beat shows in all three', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const bus = new EventBus();
    metrics.attach(bus);
    const store = new FakeClusterStore();
    store.seen('r2');
    const keeper = new LeaseKeeper({ store, self: 'r1', startedAt: '2025-01-01T00:00:00.000Z', stacks: ['a', 'b', 'c'], ttlMs: 30_000, clock: new FakeClock(), logger: pino({ level: 'silent' }), bus });
    await keeper.beat();
    expect(await samples(metrics, 'pulumiscale_leases_held')).toEqual({ '': 2 });
    expect(await samples(metrics, 'pulumiscale_replicas_live')).toEqual({ '': 2 });
    expect(await samples(metrics, 'pulumiscale_lease_changes_total')).toEqual({ acquired: 2 });
  });
});
