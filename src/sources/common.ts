/**
 * What every webhook source shares: the `?target=&action=&dryRun=` query, the precedence rule
 * (query, then what the alert itself says, then the target's default action), and the shape of
 * the signals, preview commands and `ignored` events a source hands back.
 *
 * Sources are pure: ids and the clock come in through {@link SourceContext}, and nothing here
 * does I/O, so every rule is unit-tested without a server. The HTTP route stores the results.
 */
import { z } from 'zod';
import { PulumiScaleError, type ErrorCode } from '../errors.js';
import { NO_TARGET, UNKNOWN_TARGET, type Direction, type Evidence, type Intent, type IntentSource, type ScalingEvent, type Signal, type SignalKey } from '../types.js';
import { EVIDENCE_LIMITS, clip } from './evidence.js';

/** What a source needs to know of the world: the configured targets, ids and the time. */
export interface SourceContext {
  /** The configured targets by name; only the default action matters to a source. */
  targets: Readonly<Record<string, { readonly defaultAction: Direction }>>;
  /** A new unique id (UUID) for each intent and event. */
  newId: () => string;
  /** The clock, in epoch milliseconds. */
  now: () => number;
  /** How long a signal of this source lasts without being sent again, ms; 0 for until it resolves. */
  signalTTL?: number;
}

/** The webhook query string after validation. */
export interface WebhookQuery {
  /** `?target=`: overrides whatever the alert names. Always a configured target. */
  target?: string;
  /** `?action=`: overrides whatever the alert says. */
  action?: Direction;
  /** `?dryRun=true`: firing alerts become preview commands, and resolutions end no signal. */
  dryRun: boolean;
}

/** One alert of a request that could not become an intent, as served in `rejected`. */
export interface Rejection {
  /** Which alert: the Alertmanager fingerprint or the SNS MessageId. */
  fingerprint: string;
  /** The registry code the alert would have been refused with on its own. */
  code: ErrorCode;
  /** Why, in words. */
  message: string;
}

/** What a source makes of one request. The route stores it; the source decides nothing else. */
export interface SourceResult {
  /** Firing alerts: signals to start or refresh, in the order the alerts came. */
  signals: Signal[];
  /** Resolved alerts and alarms back to OK: the signals they end. */
  ended: SignalKey[];
  /** Dry-run alerts (`?dryRun=true`): one preview command each of what the alert would do. */
  commands: Intent[];
  /**
   * `ignored` events to record: resolved alerts, OK alarms, and one per rejection (those carry
   * `errorCode`; the reply's `ignored` count leaves them out).
   */
  ignored: ScalingEvent[];
  /** Alerts refused while others of the same request were accepted. */
  rejected: Rejection[];
}

/** The history's stand-in names for refused alerts; see types.ts. */
export { NO_TARGET, UNKNOWN_TARGET };

/**
 * The target a refused alert is recorded under: the name it asked for when that is configured
 * (it was refused for another reason, e.g. a bad action), {@link NO_TARGET} when it named none,
 * else {@link UNKNOWN_TARGET}. Neither bucket can clash with a configured name, which must
 * start with a letter or digit.
 */
export function refusalTarget(asked: string | undefined, ctx: Pick<SourceContext, 'targets'>): string {
  if (asked === undefined || asked === '') return NO_TARGET;
  return Object.hasOwn(ctx.targets, asked) ? asked : UNKNOWN_TARGET;
}

// Query values arrive as strings; anything else (a repeated key gives an array) is a mistake.
// Strict: a key that was ignored (`?dryrun=true`) would turn a dry run into a real change.
const queryShape = z.strictObject({
  target: z.string().min(1).optional(),
  action: z.string().optional(),
  dryRun: z.enum(['true', 'false', '1', '0', '']).optional(),
});

/**
 * Validates the webhook query. A bad `?action=` or an unknown `?target=` refuses the whole
 * request, since it would apply to every alert in it.
 */
export function parseWebhookQuery(raw: unknown, ctx: Pick<SourceContext, 'targets'>): WebhookQuery {
  const q = parseWith(queryShape, raw ?? {}, 'the query string');
  const out: WebhookQuery = { dryRun: q.dryRun === 'true' || q.dryRun === '1' || q.dryRun === '' };
  if (q.action !== undefined) out.action = parseAction(q.action, '?action=');
  if (q.target !== undefined) {
    if (!Object.hasOwn(ctx.targets, q.target)) throw unknownTarget(q.target, '?target=', ctx);
    out.target = q.target;
  }
  return out;
}

/** Parses `up` / `down` (case and surrounding blanks ignored); anything else is PS_ACTION_INVALID. */
export function parseAction(value: string, where: string): Direction {
  const v = value.trim().toLowerCase();
  if (v === 'up' || v === 'down') return v;
  throw new PulumiScaleError('PS_ACTION_INVALID', `${where} "${clip(value, EVIDENCE_LIMITS.quoted)}" is not an action; use up or down`, {
    details: { allowed: ['up', 'down'] },
  });
}

function unknownTarget(name: string, where: string, ctx: Pick<SourceContext, 'targets'>): PulumiScaleError {
  const known = Object.keys(ctx.targets);
  // The message becomes an event's reason and a reply's `rejected` entry: quote a bounded part.
  return new PulumiScaleError('PS_TARGET_UNKNOWN', `${where} names target "${clip(name, EVIDENCE_LIMITS.quoted)}", which is not configured`, {
    details: { known },
  });
}

/** What an alert itself names, and where (for messages such as "label pulumiscale_target"). */
export interface Named {
  /** The target the alert names (a label, a description token). */
  target?: { value: string; where: string };
  /** The action the alert names, not yet validated. */
  action?: { value: string; where: string };
}

/**
 * Applies the precedence rule: query, then what the alert names, then (action only) the target's
 * default. Throws PS_TARGET_MISSING, PS_TARGET_UNKNOWN or PS_ACTION_INVALID.
 */
export function resolveTargetAction(
  query: WebhookQuery,
  named: Named,
  ctx: Pick<SourceContext, 'targets'>,
): { target: string; action: Direction } {
  let target = query.target;
  if (target === undefined) {
    if (named.target === undefined) {
      throw new PulumiScaleError(
        'PS_TARGET_MISSING',
        'no target named: add ?target= to the webhook URL or name one in the alert',
      );
    }
    target = named.target.value.trim();
    if (!Object.hasOwn(ctx.targets, target)) throw unknownTarget(target, named.target.where, ctx);
  }
  const config = ctx.targets[target];
  const action =
    query.action ??
    (named.action !== undefined ? parseAction(named.action.value, named.action.where) : undefined) ??
    config?.defaultAction ??
    'up';
  return { target, action };
}

/** Builds the signal of a firing alert: its state while it fires, refreshed by each re-send. */
export function alertSignal(
  ctx: SourceContext,
  fields: { target: string; action: Direction; source: Signal['source']; id: string; since?: string; reason: string; evidence: Evidence },
): Signal {
  const now = ctx.now();
  const ttl = ctx.signalTTL ?? 0;
  const lastSeen = seenAt.text(now);
  return {
    id: fields.id,
    target: fields.target,
    source: fields.source,
    direction: fields.action,
    value: fields.evidence.metricValue ?? null,
    threshold: fields.evidence.threshold ?? null,
    since: (fields.since === undefined ? undefined : startedAt.text(fields.since)) ?? lastSeen,
    lastSeen,
    expiresAt: ttl > 0 ? expiringAt.text(now + ttl) : null,
    reason: fields.reason,
    evidence: fields.evidence,
  };
}

/**
 * The last time formatted, kept with its text: the alerts of one delivery, and the deliveries of
 * one millisecond, share one string (and one conversion) instead of one each, and every signal
 * keeps its times for as long as it fires. One per field of the signal, so they do not evict
 * each other.
 */
class LastTime {
  #key: number | string | undefined;
  #text: string | undefined;

  /**
   * `at` (epoch ms, or a sender's date text) as ISO-8601 UTC; undefined for text that is not a
   * date. A time past what a Date holds throws RangeError, as `toISOString` does.
   */
  text(at: number): string;
  text(at: string): string | undefined;
  text(at: number | string): string | undefined {
    if (at === this.#key) return this.#text;
    const ms = typeof at === 'number' ? at : Date.parse(at);
    // Date.parse gives NaN, never a time out of range; a number may be either, and throws.
    const text = typeof at === 'string' && Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
    this.#key = at;
    this.#text = text;
    return text;
  }
}

const seenAt = new LastTime();
const expiringAt = new LastTime();
const startedAt = new LastTime();

/** An empty result, to fill. */
export function emptyResult(): SourceResult {
  return { signals: [], ended: [], commands: [], ignored: [], rejected: [] };
}

/** Builds an alert intent: a bare step, clamped to the target's bounds rather than refused. */
export function alertIntent(
  ctx: SourceContext,
  fields: { target: string; action: Direction; dryRun: boolean; source: IntentSource; reason: string; evidence: Evidence },
): Intent {
  return {
    id: ctx.newId(),
    target: fields.target,
    adjustment: { type: 'step', direction: fields.action },
    dryRun: fields.dryRun,
    source: fields.source,
    reason: fields.reason,
    receivedAt: new Date(ctx.now()).toISOString(),
    bounds: 'clamp',
    evidence: fields.evidence,
  };
}

/** Builds an `ignored` history event: nothing ran, and the reason says why. */
export function ignoredEvent(
  ctx: SourceContext,
  fields: { target: string; dryRun: boolean; source: IntentSource; reason: string; evidence: Evidence; errorCode?: ErrorCode },
): ScalingEvent {
  const event: ScalingEvent = {
    id: ctx.newId(),
    target: fields.target,
    at: new Date(ctx.now()).toISOString(),
    kind: 'ignored',
    from: null,
    to: null,
    reason: fields.reason,
    source: fields.source,
    intents: 0,
    durationMs: 0,
    dryRun: fields.dryRun,
    evidence: fields.evidence,
  };
  if (fields.errorCode !== undefined) event.errorCode = fields.errorCode;
  return event;
}

/**
 * Validates with zod, turning failure into PS_PAYLOAD_INVALID that names what was wrong
 * (`the SNS Message`, `the query string`) and lists the issues with their paths, so a sender
 * sees which field to fix.
 */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string, pathPrefix = ''): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new PulumiScaleError('PS_PAYLOAD_INVALID', `${what} does not have the expected shape`, {
    details: r.error.issues.map((i) => ({
      path: [pathPrefix, ...i.path.map(String)].filter((p) => p !== '').join('.'),
      message: i.message,
      code: i.code,
    })),
  });
}

/** Parses JSON text (SNS posts JSON as text/plain); a failure is PS_PAYLOAD_INVALID. */
export function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new PulumiScaleError('PS_PAYLOAD_INVALID', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** A finite number from text such as `87.5` or `1.2E-4`; undefined for anything else. */
export function numeric(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** How far ahead of this daemon's clock a sender's clock may be before its times are not believed. */
export const MAX_CLOCK_SKEW_MS = 3_600_000;

/**
 * When an alert resolved, as its sender says, for the ended signal's `at`: the engine drops a
 * later delivery of the alert that started no later than this. A time further in the future
 * than clocks drift apart (say `9999-12-31`) would make every new firing of that alert look
 * stale, so it counts as now; one that is not a date is left out (unknown).
 */
export function resolvedAt(sent: string | undefined, ctx: Pick<SourceContext, 'now'>): { at?: string } {
  if (sent === undefined) return {};
  const at = Date.parse(sent);
  if (Number.isNaN(at)) return {};
  const now = ctx.now();
  return { at: at > now + MAX_CLOCK_SKEW_MS ? new Date(now).toISOString() : sent };
}
