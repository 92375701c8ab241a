/**
 * The shared vocabulary of PulumiScale: every stage (sources, engine, policy, pulumi, store,
 * observe, http) speaks in these types, and this module imports nothing, so that no stage
 * depends on another's internals to talk to it.
 *
 * Data flows one way: a source turns a request into an {@link Intent}; the engine merges
 * intents into one {@link PendingIntent} per target; `policy.decide()` turns the pending
 * intent and the present state into a {@link Decision}; the executor applies it; the outcome
 * becomes a {@link ScalingEvent}. Every type here is plain JSON so it can be stored and served.
 */

/** Which way a change goes. */
export type Direction = 'up' | 'down';

/** Where an intent came from; `engine` marks what the engine records on its own (a failed read). */
export type IntentSource = 'alertmanager' | 'cloudwatch' | 'api' | 'chat' | 'schedule' | 'engine';

/**
 * What an intent asks for.
 * - `step`: a bare up/down, sized by the target's `step` (or its step rules, later).
 * - `by`: a relative change, positive or negative.
 * - `to`: an absolute value.
 */
export type Adjustment =
  | { type: 'step'; direction: Direction }
  | { type: 'by'; by: number }
  | {
      type: 'to';
      to: number;
      /** A composite target's derived keys set with it, by key (an operator's multi-key command); the rest follow their rules. */
      values?: Record<string, number>;
    };

/**
 * The raw facts a source saw, kept with the intent for the history and for rules that size a
 * change from a metric. Sources fill what they have; everything is optional.
 */
export interface Evidence {
  /** Alertmanager alert fingerprint. */
  fingerprint?: string;
  /** Alertmanager alert name (label `alertname`). */
  alertName?: string;
  /** CloudWatch alarm name. */
  alarmName?: string;
  /** SNS MessageId of the delivery. */
  messageId?: string;
  /** The metric value that triggered the alert, when the source carries one. */
  metricValue?: number;
  /** The alarm threshold (CloudWatch `Trigger.Threshold`). */
  threshold?: number;
  /** The alarm comparison (CloudWatch `Trigger.ComparisonOperator`). */
  comparisonOperator?: string;
  /** Where the alert was generated (Alertmanager `generatorURL`). */
  generatorURL?: string;
  /** Alert labels, as received. */
  labels?: Record<string, string>;
  /** The schedule behind a change: its name, and for a point the fire time (ISO-8601 UTC). */
  schedule?: { name: string; fireAt?: string };
  /** For an event that ends a signal (a resolution, an expiry): the signal's id. */
  signal?: string;
  /**
   * Who asked, when a person did through a chat: the platform and the user's id and name
   * (`{ via: 'slack', id: 'U0123ABCD', name: 'alice' }`).
   */
  actor?: Actor;
}

/** A person acting through a chat platform (a slash command, a button). */
export interface Actor {
  /** Where they acted: a chat platform, or the API (whose tokens name no one: id and name say `api`). */
  via: 'slack' | 'discord' | 'api';
  /** The platform's user id. */
  id: string;
  /** The user's name, as the platform gave it. */
  name: string;
}

/** A request to change one target, from any source. Immutable once created. */
export interface Intent {
  /** Unique id (UUID). */
  id: string;
  /** The target's name, as in the config's `targets` map. */
  target: string;
  /** What to change. */
  adjustment: Adjustment;
  /** Preview instead of apply (the engine also honours the global `engine.dryRun`). */
  dryRun: boolean;
  /** Which adapter produced it. */
  source: IntentSource;
  /** Human-readable why, e.g. `alert HighCPU firing` or `manual`. */
  reason: string;
  /** When it was accepted, ISO-8601 UTC. */
  receivedAt: string;
  /**
   * How the policy treats a value beyond [min, max]: `clamp` (alerts: clamp and say so) or
   * `reject` (manual `to`: refused upstream with 422, and skipped if it still gets here).
   */
  bounds: 'clamp' | 'reject';
  /** What the source saw. */
  evidence: Evidence;
}

/**
 * An operator command (API, later schedules): an {@link Intent} queued in arrival order and never
 * merged away. Consecutive commands may share one operation only when the result equals running
 * them one by one; each is removed from the queue only with the event that records it.
 */
export type Command = Intent;

/**
 * A firing alert, held as state while it fires: the engine decides from the signals active now,
 * not from the notifications that carried them. Keyed by target and `id` (the Alertmanager
 * fingerprint, the CloudWatch alarm ARN); a re-sent alert refreshes its signal, a resolved one
 * (an alarm back to OK) ends it.
 */
export interface Signal {
  /** The alert's identity within its source: Alertmanager fingerprint, CloudWatch alarm ARN. */
  id: string;
  /** The target it acts on. */
  target: string;
  source: 'alertmanager' | 'cloudwatch';
  /** Which way it pushes. */
  direction: Direction;
  /** The metric value the alert carried, when it carried one. */
  value: number | null;
  /** The alarm threshold, when known. */
  threshold: number | null;
  /** When it started firing (first seen), ISO-8601 UTC. */
  since: string;
  /** When it was last sent, ISO-8601 UTC. */
  lastSeen: string;
  /** When it ends unless sent again (`signalTTL`), ISO-8601 UTC, or null for never. */
  expiresAt: string | null;
  /** Human-readable name for reasons, e.g. `alert HighCPU` or `alarm web-cpu-high`. */
  reason: string;
  /** What the source saw, as last sent. */
  evidence: Evidence;
}

/** A signal's key. */
export interface SignalKey {
  target: string;
  id: string;
  /**
   * When the alert resolved, as its source says (Alertmanager `endsAt`, CloudWatch
   * `StateChangeTime`), ISO-8601: a delivery of the same alert that started no later than this
   * and arrives afterwards (a retried ALARM after its OK) is stale and starts nothing.
   */
  at?: string;
  /**
   * For the end of an expired signal: the `lastSeen` it expired with. The store keeps a signal
   * sent again since (a later `lastSeen`: stored by another replica, or taken by this daemon while
   * the end waited to be written) instead of ending it.
   */
  lastSeen?: string;
}

/** A pause of one or both directions, ending by itself. */
export interface Pause {
  /** When it ends, ISO-8601 UTC. */
  until: string;
  direction: 'both' | Direction;
  reason: string;
}

/**
 * The operation running on a target, as stored in its running slot: what it covers, and (just
 * before a real `up`) the value being applied. A running slot found at start was cut off by a
 * stop; with `applying` it is finished at that value (a relative change is never applied twice),
 * without it it is dropped and the target evaluated afresh, its commands still queued.
 */
export interface RunningOperation {
  /** What started it: the queued `commands` (their ids in `commandIds`), or the `signals`. */
  kind: 'commands' | 'signals';
  /** The commands it covers, in order; empty for a signal-driven operation. */
  commandIds: string[];
  /** A preview rather than an `up`. */
  dryRun: boolean;
  /** When it started, ISO-8601 UTC. */
  startedAt: string;
  /** Set just before a real `up` starts: the value being applied. */
  applying: {
    from: number | null;
    to: number;
    /** A composite target's values of every key being applied (derived ones included). */
    values?: Record<string, number>;
  } | null;
}

/** A locked stack's retry budget, kept with the target (not with any command or signal). */
export interface RetryState {
  /** Failed tries so far. */
  attempts: number;
  /** Do not start before this instant, ISO-8601 UTC. */
  notBefore: string;
  /**
   * A hold-off after an alert-driven operation failed: it holds alert-driven operations only,
   * not operator commands (a locked stack, without it, holds both).
   */
  signalsOnly?: boolean;
}

/** Why a decision changed nothing. */
export type SkipReason =
  | 'cooldown'
  | 'at-max'
  | 'at-min'
  | 'no-change'
  | 'paused'
  | 'out-of-bounds'
  | 'stabilization'
  /** A change waiting for approval was rejected by a person. */
  | 'rejected'
  /** A change waiting for approval was neither approved nor rejected in time. */
  | 'approval-expired'
  /** The preview guard refused a change that would replace or delete too many resources. */
  | 'guard';

/** What `policy.decide()` returns: data, never an action. */
export type Decision =
  | {
      kind: 'change';
      from: number;
      to: number;
      direction: Direction;
      /** True when the wanted value was clamped to [min, max]. */
      clamped: boolean;
      reason: string;
    }
  | { kind: 'skip'; from: number | null; wanted: number | null; reason: SkipReason; detail: string };

/**
 * What happened, as recorded in the history. `unlocked`: a stack lock left by our own dead
 * Pulumi process was cleared before the operation went on. `missed`: a point schedule's fire
 * found later than its `startingDeadline` (the daemon was down), recorded instead of acted on.
 * `awaiting-approval`: a change of a target with `approval` was previewed and waits for a
 * person (the event's `approval` says which). `drift`: a drift check found the stack changed
 * outside the daemon (the event's `drift` says what, and what was done about it).
 */
export type EventKind = 'changed' | 'previewed' | 'skipped' | 'ignored' | 'failed' | 'unlocked' | 'missed' | 'awaiting-approval' | 'drift';

/** Where an approval stands. `applied`/`superseded`: approved, then applied, or found moved on. */
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'applied' | 'superseded';

/**
 * A change waiting for a person (a target with `approval`): previewed, then applied exactly as
 * previewed once approved, provided the stack's value has not moved since.
 */
export interface Approval {
  /** Unique id (UUID); in `/api/v1/approvals/:id` and in the chat buttons. */
  id: string;
  target: string;
  status: ApprovalStatus;
  /** The value the preview started from, and the value it would set. */
  from: number | null;
  to: number;
  /** The decision's reason. */
  reason: string;
  /** The preview's resource changes by operation (e.g. { update: 1, replace: 0, same: 3 }). */
  changes: Record<string, number>;
  /** The notification destination the request went to (`approval.via`). */
  via: string;
  /** ISO-8601 UTC. */
  requestedAt: string;
  /** When it expires unless decided, ISO-8601 UTC. */
  expiresAt: string;
  /** Who decided it, once decided. */
  decidedBy: Actor | null;
  /** When, ISO-8601 UTC, once decided. */
  decidedAt: string | null;
  /** The queued commands (a schedule's) the change covers: consumed when it is applied, rejected or expires. */
  commands: string[];
  /**
   * Rejected on a replica that does not hold the target's stack (several replicas): the holder
   * has yet to record the outcome (the skip, the cooldown), and does when it hears of it.
   */
  awaitingHolder?: true;
}

/** One entry of the scaling history (`GET /api/v1/events`). */
export interface ScalingEvent {
  /** Unique id (UUID). */
  id: string;
  /** The target's name (for an `ignored` event of an unknown target, the name asked for). */
  target: string;
  /** When it was recorded, ISO-8601 UTC. */
  at: string;
  kind: EventKind;
  /** The value before, when known. */
  from: number | null;
  /** The value after (or previewed), when there is one. */
  to: number | null;
  /** Why: the decision's reason, the skip reason, or the error. */
  reason: string;
  /** The source of the (effective) intent. */
  source: IntentSource;
  /** How many intents this event covers. */
  intents: number;
  /** How long the operation took, 0 when nothing ran. */
  durationMs: number;
  /** Whether this was a preview. */
  dryRun: boolean;
  /** The skip reason code, for `skipped` events. */
  skipReason?: SkipReason;
  /** The error code (see errors.ts), for `failed` events. */
  errorCode?: string;
  /** The effective intent's id, when there was one. */
  intentId?: string;
  /** The effective intent's evidence. */
  evidence?: Evidence;
  /** For a decision on operator commands: the ids of every command it covers, in order. */
  commands?: string[];
  /** For an alert-driven decision: the signals it was made from. */
  signals?: { id: string; source: Signal['source']; direction: Direction; value: number | null; threshold: number | null }[];
  /** For an alert-driven decision: the step rule that sized it. */
  rule?: string;
  /** For a `drift` event: what differs from what the daemon last knew, and what it did. */
  drift?: DriftFinding;
  /** The resource changes of the preview a decision was checked against (the guard, an approval request). */
  preview?: Record<string, number>;
  /** For a composite target: each key set (or previewed), the driving key first, with its value before. */
  keys?: { key: string; from: number | null; to: number }[];
  /** For a change that waits for (or was decided by) a person: the approval. */
  approval?: Pick<Approval, 'id' | 'status' | 'expiresAt' | 'changes' | 'via' | 'decidedBy'>;
}

/** What a drift check found. */
export interface DriftFinding {
  /** Resources changed outside Pulumi (a preview-only refresh): counts per change type, and which. */
  resources: { changes: Record<string, number>; items: { urn: string; type: string; name: string; op: string; properties: string[] }[] };
  /** The driving key's value in the stack when it differs from the daemon's, else null. */
  key: { key: string; expected: number | null; actual: number | null } | null;
  /** What was done about an owned key's drift: `reported`, `adopted` (taken as current) or `reverting` (a command queued to put it back). */
  action: 'reported' | 'adopted' | 'reverting' | null;
}

/** When each direction's cooldown ends, ISO-8601 UTC or null when not cooling down. */
export interface CooldownUntil {
  up: string | null;
  down: string | null;
}

/** The durable part of a target's state, kept by the store across restarts. */
export interface TargetRecord {
  name: string;
  /** The value last read from or written to the stack's config, null before the first read. */
  current: number | null;
  /** The config's permanent switch (`paused: true`); an API pause is `pause`. */
  paused: boolean;
  cooldownUntil: CooldownUntil;
  /** A pause set through the API, until it ends (null when none). */
  pause: Pause | null;
  /** The retry budget after a failure, null when the last operation succeeded. */
  retry: RetryState | null;
  /**
   * The value the daemon itself last applied with an `up` (or adopted from drift): what a drift
   * check expects the stack to hold. Reads do not change it. Absent in records of older versions.
   */
  applied?: number | null;
}

/** A signal as served in a target's state. */
export type SignalState = Pick<Signal, 'id' | 'source' | 'direction' | 'value' | 'threshold' | 'since' | 'lastSeen'>;

/** A target's state as served by `GET /api/v1/targets[/:name]`. */
export interface TargetState extends Omit<TargetRecord, 'retry' | 'applied'> {
  stack: string;
  /** Every key the target owns: the driving key, then its derived keys. */
  configKeys: string[];
  /**
   * Each owned key's value: the driving key's is `current`; a derived key's is what the last
   * operation set, or, before one, what its rule gives for `current`.
   */
  values: Record<string, number | null>;
  min: number;
  max: number;
  /** The first queued operator command, if any (the next to run). */
  pending: Intent | null;
  /** How many operator commands are queued. */
  pendingCount: number;
  /** The queued operator commands, in the order they run. */
  commands: Command[];
  /** The active signals (firing alerts). */
  signals: SignalState[];
  /** The last evaluation: the value it wanted and why (null before the first). */
  desired: { value: number | null; reason: string; at: string } | null;
  /** The bounds in effect now: the target's own (`config`) or a schedule window's (`schedule:<name>`). */
  bounds: { min: number; max: number; source: string };
  /** Each schedule: whether it is in effect (a window) and its next start or fire. */
  schedules: { name: string; active: boolean; next: string | null }[];
  /** Whether an operation is running on the target's stack now (true while any target's operation holds that stack). */
  running: boolean;
  lastEvent: ScalingEvent | null;
  /**
   * Why the target cannot be operated on now, when the last read or operation failed (e.g.
   * PS_STACK_NOT_FOUND for a stack that does not exist); null once one succeeds.
   */
  error: { code: string; message: string; at: string } | null;
  /**
   * The replica that holds the target's stack and so acts on it (its id, as in `GET
   * /api/v1/cluster`), or null while none does (several replicas on PostgreSQL; the daemon's
   * own id when it runs alone).
   */
  owner: string | null;
}

/** Stands for "no target named" in the history, where a target name is required. */
export const NO_TARGET = '(none)';

/**
 * Stands for "a target name that is not configured" in the history and in metrics. A refused
 * alert is recorded under this one name, never under the name it asked for: senders choose
 * those, so each made-up name would otherwise be a new history partition and a new metric
 * series. The name asked for stays in the event's reason (clipped) and labels.
 */
export const UNKNOWN_TARGET = '(unknown)';
