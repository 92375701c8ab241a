/** Shared context for the source (webhook parser) unit tests. */
import type { SourceContext, WebhookQuery } from '../../src/sources/common.js';

/**
 * A source context over the test targets (`web` and `worker` default to up, `batch` to down),
 * with ids `id-1`, `id-2`… and a fixed clock; `signalTTL` (ms) as the route passes it, none
 * (signals last until resolved) unless given.
 */
export function sourceContext(now: number, signalTTL?: number): SourceContext {
  let n = 0;
  return {
    targets: { web: { defaultAction: 'up' }, worker: { defaultAction: 'up' }, batch: { defaultAction: 'down' } },
    newId: () => `id-${++n}`,
    now: () => now,
    ...(signalTTL !== undefined ? { signalTTL } : {}),
  };
}

/** A webhook request without query parameters. */
export const noQuery: WebhookQuery = { dryRun: false };
