/**
 * Prometheus metrics, fed from the event bus and from the HTTP layer. A registry of its own
 * (not prom-client's global one) so that tests and several apps in one process never collide.
 *
 * Every label value comes from a bounded set: a target label is a configured target or one of
 * the history's buckets, a route label is a route pattern, a code a registry code. Each new
 * label value is a new series kept for the life of the process, so a value taken from a
 * request would let any sender grow the scrape, and the memory, without bound.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { NO_TARGET, UNKNOWN_TARGET } from '../types.js';
import type { EventBus } from './bus.js';

/** How the metrics are set up. */
export interface MetricsOptions {
  /** Also collect the Node.js process metrics (default true). */
  defaultMetrics?: boolean;
  /**
   * The configured target names. When given, any other target label becomes `(unknown)`, so a
   * stage that records an unconfigured name (it should use the bucket) still adds no series.
   */
  targets?: Iterable<string>;
}

/** The daemon's metrics. Names are part of the contract dashboards depend on. */
export class Metrics {
  readonly registry = new Registry();
  /** Intents accepted, by target and source. */
  readonly intents = new Counter({
    name: 'pulumiscale_intents_total',
    help: 'Intents accepted and stored, by target and source.',
    labelNames: ['target', 'source'] as const,
    registers: [this.registry],
  });
  /** Intents merged into an already pending one. */
  readonly coalesced = new Counter({
    name: 'pulumiscale_intents_coalesced_total',
    help: 'Operator commands applied in one operation together with an earlier command of the same batch.',
    labelNames: ['target'] as const,
    registers: [this.registry],
  });
  /** History events, by target and kind. */
  readonly events = new Counter({
    name: 'pulumiscale_events_total',
    help: 'Scaling events recorded, by target and kind (changed, previewed, skipped, ignored, failed).',
    labelNames: ['target', 'kind'] as const,
    registers: [this.registry],
  });
  /** Duration of Pulumi operations. */
  readonly operationSeconds = new Histogram({
    name: 'pulumiscale_operation_duration_seconds',
    help: 'Duration of scaling operations (read, decide, apply), by target and outcome kind.',
    labelNames: ['target', 'kind'] as const,
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
    registers: [this.registry],
  });
  /** Operations running now. */
  readonly running = new Gauge({
    name: 'pulumiscale_operations_running',
    help: 'Scaling operations running now.',
    registers: [this.registry],
  });
  /** Retries scheduled after a retryable failure (locked stack). */
  readonly retries = new Counter({
    name: 'pulumiscale_retries_total',
    help: 'Operations requeued with backoff after a retryable failure, by target.',
    labelNames: ['target'] as const,
    registers: [this.registry],
  });
  /** Requests refused, by route and error code. */
  readonly refused = new Counter({
    name: 'pulumiscale_http_refused_total',
    help: 'HTTP requests refused with an error, by route and error code.',
    labelNames: ['route', 'code'] as const,
    registers: [this.registry],
  });
  /** Whether the daemon is ready (0 while draining). */
  readonly ready = new Gauge({
    name: 'pulumiscale_ready',
    help: '1 when the daemon takes new work, 0 while starting or draining.',
    registers: [this.registry],
  });

  /** Active signals (firing alerts), by target and direction. */
  readonly signalsActive = new Gauge({
    name: 'pulumiscale_signals_active',
    help: 'Signals (firing alerts) active now, by target and direction.',
    labelNames: ['target', 'direction'] as const,
    registers: [this.registry],
  });
  /** Each target's value as last read or written. */
  readonly targetValue = new Gauge({
    name: 'pulumiscale_target_value',
    help: "The target's value in its stack's config, as last read or written.",
    labelNames: ['target'] as const,
    registers: [this.registry],
  });
  /** Each target's desired value from its last evaluation. */
  readonly targetDesired = new Gauge({
    name: 'pulumiscale_target_desired',
    help: "The value the target's last evaluation wanted (its current value when no signal is active).",
    labelNames: ['target'] as const,
    registers: [this.registry],
  });

  /** Point schedule fires, by target, schedule and outcome (`fired`, `missed`). */
  readonly scheduleFires = new Counter({
    name: 'pulumiscale_schedule_fires_total',
    help: 'Point schedule fires handled, by target, schedule and outcome (fired, or missed past its startingDeadline).',
    labelNames: ['target', 'schedule', 'outcome'] as const,
    registers: [this.registry],
  });
  /** Drift checks, by target and outcome. */
  readonly driftChecks = new Counter({
    name: 'pulumiscale_drift_checks_total',
    help: 'Drift checks (preview-only refresh and a read of the owned key), by target and outcome (clean, drifted, failed).',
    labelNames: ['target', 'outcome'] as const,
    registers: [this.registry],
  });
  /** Whether the last drift check found the stack drifted. */
  readonly drifted = new Gauge({
    name: 'pulumiscale_drifted',
    help: '1 when the last drift check of the target found changes made outside PulumiScale, else 0.',
    labelNames: ['target'] as const,
    registers: [this.registry],
  });
  /** Notification attempts, by destination (a configured name) and outcome. */
  readonly notifications = new Counter({
    name: 'pulumiscale_notifications_total',
    help: 'Notification attempts by destination and outcome (sent, retried, rate-limited, rejected by the platform, expired past maxAge).',
    labelNames: ['destination', 'outcome'] as const,
    registers: [this.registry],
  });
  /** Messages waiting in the outbox, read from the store at each scrape (see `countQueued`). */
  readonly notificationsQueued = new Gauge({
    name: 'pulumiscale_notifications_queued',
    help: 'Notification messages waiting in the outbox, by destination.',
    labelNames: ['destination'] as const,
    registers: [this.registry],
    // prom-client calls this on each scrape; `this` is the gauge, hence the captured metrics.
    collect: async () => this.#collectQueued(),
  });
  /** Stack leases this replica holds (several replicas on PostgreSQL; 0 for a daemon on SQLite). */
  readonly leasesHeld = new Gauge({
    name: 'pulumiscale_leases_held',
    help: 'Stack leases this replica holds (only the holder of a stack acts on it).',
    registers: [this.registry],
  });
  /** Leases taken or given up, by why. */
  readonly leaseChanges = new Counter({
    name: 'pulumiscale_lease_changes_total',
    help: 'Stack leases this replica acquired, released (drain, rebalance), lost (expired or taken) or stepped down from (store-unavailable).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  /** Replicas seen alive at the last lease beat (not draining), this one included; 1 for a daemon on SQLite. */
  readonly replicasLive = new Gauge({
    name: 'pulumiscale_replicas_live',
    help: 'Replicas that heartbeat within the lease TTL and are not draining, as this replica last saw them.',
    registers: [this.registry],
  });
  /**
   * Counts the outbox per destination for the queued gauge (the daemon sets it to the store's
   * `countMessages`), and the destinations to report (0 for those with none waiting).
   */
  countQueued: { destinations: readonly string[]; count: () => Promise<Map<string, number>> } | null = null;

  /** The target label values allowed, or null to take the names as they come. */
  readonly #targets: ReadonlySet<string> | null;

  constructor(opts: MetricsOptions = {}) {
    this.#targets = opts.targets === undefined ? null : new Set([...opts.targets, NO_TARGET, UNKNOWN_TARGET]);
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // prom-client names three gauges `*_total`, which `promtool check metrics` rejects (the
      // suffix is for counters); the per-type `nodejs_active_*` gauges carry the same numbers.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
        this.registry.removeSingleMetric(name);
      }
    }
  }

  async #collectQueued(): Promise<void> {
    const source = this.countQueued;
    if (source === null) return;
    // A store that cannot answer leaves the last values: a scrape must not fail for it.
    const counts = await source.count().catch(() => null);
    if (counts === null) return;
    for (const destination of source.destinations) this.notificationsQueued.set({ destination }, counts.get(destination) ?? 0);
  }

  /** The label value for a target name: the name when it is allowed, else the `(unknown)` bucket. */
  targetLabel(name: string): string {
    return this.#targets === null || this.#targets.has(name) ? name : UNKNOWN_TARGET;
  }

  /** Feeds the counters from the engine's bus. Returns the unsubscribe function. */
  attach(bus: EventBus): () => void {
    return bus.subscribe((msg) => {
      switch (msg.type) {
        case 'event': {
          const target = this.targetLabel(msg.event.target);
          this.events.inc({ target, kind: msg.event.kind });
          // Commands that shared an operation with the first of its batch.
          const shared = (msg.event.commands?.length ?? 0) - 1;
          if (shared > 0) this.coalesced.inc({ target }, shared);
          break;
        }
        case 'intent':
          this.intents.inc({ target: this.targetLabel(msg.target), source: msg.source });
          break;
        case 'operation-start':
          this.running.inc();
          break;
        case 'operation-end':
          this.running.dec();
          this.operationSeconds.observe({ target: this.targetLabel(msg.target), kind: msg.kind }, msg.durationMs / 1000);
          break;
        case 'retry':
          this.retries.inc({ target: this.targetLabel(msg.target) });
          break;
        case 'schedule-fire':
          // Schedule names come from the config, never from a request: bounded label values.
          this.scheduleFires.inc({ target: this.targetLabel(msg.target), schedule: msg.schedule, outcome: msg.outcome });
          break;
        case 'drift-check': {
          const target = this.targetLabel(msg.target);
          this.driftChecks.inc({ target, outcome: msg.outcome });
          if (msg.outcome !== 'failed') this.drifted.set({ target }, msg.outcome === 'drifted' ? 1 : 0);
          break;
        }
        case 'lease-change':
          this.leaseChanges.inc({ reason: msg.reason }, msg.count);
          break;
        case 'cluster':
          this.leasesHeld.set(msg.held);
          this.replicasLive.set(msg.replicasLive);
          break;
        case 'notification':
          this.notifications.inc({ destination: msg.destination, outcome: msg.outcome });
          break;
        case 'target': {
          const target = this.targetLabel(msg.target);
          this.signalsActive.set({ target, direction: 'up' }, msg.signals.up);
          this.signalsActive.set({ target, direction: 'down' }, msg.signals.down);
          // An unknown value is no sample at all, rather than a misleading 0.
          if (msg.current === null) this.targetValue.remove({ target });
          else this.targetValue.set({ target }, msg.current);
          if (msg.desired === null) this.targetDesired.remove({ target });
          else this.targetDesired.set({ target }, msg.desired);
          break;
        }
      }
    });
  }
}
