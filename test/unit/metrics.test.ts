// Metric labels come from a bounded set: a name no configured target has (whoever recorded it)
// is counted under the (unknown) bucket, so no sender can add series.
import { describe, expect, it } from 'vitest';
import { EventBus, type BusMessage } from '../../src/observe/bus.js';
import { Metrics } from '../../src/observe/metrics.js';
import type { ScalingEvent } from '../../src/types.js';

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
