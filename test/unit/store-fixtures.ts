/**
 * Builders for the store conformance suite and the stores' own tests: every value has every
 * field set (so a store that drops one fails a round-trip), times come from a fixed origin (so
 * tests never read the clock), and ids are fresh (so no test trips over another's duplicate).
 */
import type { Approval, Command, Intent, RunningOperation, ScalingEvent, Signal, TargetRecord } from '../../src/types.js';

/** An ISO-8601 UTC instant `s` seconds after a fixed origin. */
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

/** An operator command (`{"by": 2}` through the API), `overrides` winning. */
export function makeCommand(overrides: Partial<Command> = {}): Command {
  return makeIntent({
    id: nextId('command'),
    adjustment: { type: 'by', by: 2 },
    source: 'api',
    reason: 'manual: more headroom for the launch ✓',
    bounds: 'reject',
    evidence: {},
    ...overrides,
  });
}

/** A firing alert with every field set, `overrides` winning. */
export function makeSignal(overrides: Partial<Signal> = {}): Signal {
  return {
    id: nextId('fingerprint'),
    target: 'web',
    source: 'alertmanager',
    direction: 'up',
    value: 92.5,
    threshold: 80,
    since: at(0),
    lastSeen: at(5),
    expiresAt: at(3605),
    reason: 'alert HighCPU',
    evidence: makeIntent().evidence,
    ...overrides,
  };
}

/** A running operation covering `commandIds`, `overrides` winning. */
export function makeRunning(overrides: Partial<RunningOperation> = {}): RunningOperation {
  return { kind: 'commands', commandIds: [], dryRun: false, startedAt: at(20), applying: null, ...overrides };
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

/** A target record, no pause and no retry unless `overrides` say so. */
export function makeRecord(overrides: Partial<TargetRecord> = {}): TargetRecord {
  return {
    name: 'web',
    current: 3,
    paused: false,
    cooldownUntil: { up: at(70), down: null },
    pause: null,
    retry: null,
    ...overrides,
  };
}

/** An approval request with every field set, `overrides` winning. */
export function makeApproval(overrides: Partial<Approval> = {}): Approval {
  return {
    id: nextId('approval'),
    target: 'web',
    status: 'pending',
    from: 3,
    to: 5,
    reason: 'alert HighCPU firing: step +2 ✓',
    changes: { update: 1, replace: 0, same: 4 },
    via: 'ops-slack',
    requestedAt: at(10),
    expiresAt: at(1810),
    decidedBy: null,
    decidedAt: null,
    commands: [],
    ...overrides,
  };
}
