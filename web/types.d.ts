/**
 * The JSON the page reads from the API, as README's "HTTP API" section describes it: the subset
 * of src/types.ts that the page shows. Kept apart from src/ so the browser build never pulls in
 * server code (a declaration file: nothing of it is emitted); test/unit/web-types.test.ts checks
 * that the server's types still fit these.
 */

export type Direction = 'up' | 'down';

export type EventKind = 'changed' | 'previewed' | 'skipped' | 'ignored' | 'failed' | 'unlocked' | 'missed' | 'awaiting-approval' | 'drift';

export interface Adjustment {
  type: 'step' | 'by' | 'to';
  direction?: Direction;
  by?: number;
  to?: number;
  values?: Record<string, number>;
}

/** A queued operator command (an intent). */
export interface Command {
  id: string;
  adjustment: Adjustment;
  source: string;
  reason: string;
  receivedAt: string;
  dryRun: boolean;
}

export interface SignalState {
  id: string;
  source: string;
  direction: Direction;
  value: number | null;
  threshold: number | null;
  since: string;
  lastSeen: string;
}

export interface Pause {
  until: string;
  direction: 'both' | Direction;
  reason: string;
}

/** A target's state (`GET /api/v1/targets`, the stream's `state` message). */
export interface TargetState {
  name: string;
  stack: string;
  configKeys: string[];
  values?: Record<string, number | null>;
  current: number | null;
  min: number;
  max: number;
  /** Paused now: by the config's permanent switch, or by an API pause (`pause`). */
  paused: boolean;
  /** A pause set through the API, until it ends. */
  pause: Pause | null;
  cooldownUntil: { up: string | null; down: string | null };
  pending: Command | null;
  pendingCount: number;
  commands: Command[];
  signals: SignalState[];
  desired: { value: number | null; reason: string; at: string } | null;
  bounds: { min: number; max: number; source: string };
  schedules: { name: string; active: boolean; next: string | null }[];
  running: boolean;
  error: { code: string; message: string; at: string } | null;
}

/** One entry of the history (`GET /api/v1/events`, the stream's `event` message). */
export interface ScalingEvent {
  id: string;
  target: string;
  at: string;
  kind: EventKind;
  from: number | null;
  to: number | null;
  reason: string;
  source: string;
  dryRun: boolean;
  skipReason?: string;
  errorCode?: string;
}

/** The API's refusal body. */
export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}
