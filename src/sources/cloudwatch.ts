/**
 * The CloudWatch source: the alarm state-change JSON that CloudWatch publishes to SNS (inside
 * the envelope's `Message`, or bare with raw message delivery) becomes a signal when the alarm
 * goes to ALARM, and ends it with an `ignored` event when it goes to OK or INSUFFICIENT_DATA.
 *
 * An alarm cannot carry labels, so it names its target and direction in its description, as
 * tokens `pulumiscale:target=NAME` and `pulumiscale:action=up|down`: that is the one free-text
 * field an operator controls and that CloudWatch copies into every notification.
 */
import { z } from 'zod';
import type { Evidence } from '../types.js';
import {
  alertIntent,
  alertSignal,
  emptyResult,
  ignoredEvent,
  numeric,
  parseJsonText,
  parseWith,
  resolvedAt,
  resolveTargetAction,
  type Named,
  type SourceContext,
  type SourceResult,
  type WebhookQuery,
} from './common.js';
import { boundedId, clip } from './evidence.js';

const dimension = z.object({ name: z.string(), value: z.string() });

/** One metric of a metric-math alarm: an expression or a metric query. */
const metricQuery = z.object({
  Id: z.string(),
  Expression: z.string().optional(),
  Label: z.string().optional(),
  ReturnData: z.boolean().optional(),
  MetricStat: z
    .object({
      Metric: z.object({
        MetricName: z.string(),
        Namespace: z.string(),
        Dimensions: z.array(dimension).default([]),
      }),
      Period: z.number().optional(),
      Stat: z.string().optional(),
      Unit: z.string().nullable().optional(),
    })
    .optional(),
});

/**
 * The alarm's trigger. A single-metric alarm has MetricName/Namespace/Dimensions; a metric-math
 * alarm has `Metrics` instead; an anomaly-detection alarm has no fixed Threshold.
 */
const triggerSchema = z.object({
  MetricName: z.string().optional(),
  Namespace: z.string().optional(),
  Statistic: z.string().optional(),
  Dimensions: z.array(dimension).optional(),
  Metrics: z.array(metricQuery).optional(),
  Period: z.number().optional(),
  EvaluationPeriods: z.number().optional(),
  ComparisonOperator: z.string().optional(),
  Threshold: z.number().optional(),
  /** Anomaly-detection alarms compare against a band (this metric's Id) instead of Threshold. */
  ThresholdMetricId: z.string().optional(),
  TreatMissingData: z.string().optional(),
});

/** The alarm state-change message. Unknown fields are tolerated. */
export const cloudWatchAlarmSchema = z.object({
  AlarmName: z.string().min(1),
  AlarmDescription: z.string().nullable().optional(),
  AWSAccountId: z.string().optional(),
  NewStateValue: z.enum(['ALARM', 'OK', 'INSUFFICIENT_DATA']),
  NewStateReason: z.string().default(''),
  StateChangeTime: z.string().optional(),
  Region: z.string().optional(),
  AlarmArn: z.string().optional(),
  OldStateValue: z.string().optional(),
  Trigger: triggerSchema.optional(),
});

/** A validated CloudWatch alarm message. */
export type CloudWatchAlarm = z.output<typeof cloudWatchAlarmSchema>;

/** Parses the alarm JSON text of an SNS `Message`; failures are PS_PAYLOAD_INVALID. */
export function parseCloudWatchAlarmText(text: string): CloudWatchAlarm {
  return parseCloudWatchAlarm(parseJsonText(text, 'the SNS Message'), 'Message');
}

/** Validates an already parsed alarm (raw message delivery posts it bare). */
export function parseCloudWatchAlarm(value: unknown, pathPrefix = ''): CloudWatchAlarm {
  return parseWith(cloudWatchAlarmSchema, value, 'the CloudWatch alarm', pathPrefix);
}

// A token is `pulumiscale:key=value`, standing alone (start of text or after a blank or a
// punctuation mark), so that `xpulumiscale:target=` in a URL does not count.
const TOKEN = /(?:^|[\s,;(])pulumiscale:(target|action)=([A-Za-z0-9_.-]+)/gi;

/** The target and action tokens of an alarm description; the first of each kind wins. */
export function descriptionTokens(description: string | null | undefined): { target?: string; action?: string } {
  const out: { target?: string; action?: string } = {};
  for (const m of (description ?? '').matchAll(TOKEN)) {
    const key = (m[1] ?? '').toLowerCase() as 'target' | 'action';
    // A sentence may end right after the token ("... pulumiscale:target=web."): the dot is prose.
    const value = (m[2] ?? '').replace(/\.+$/, '');
    if (value !== '' && out[key] === undefined) out[key] = value;
  }
  return out;
}

// A datapoint list is `[v (dd/mm/yy hh:mm:ss), v (...), ...]`, newest first; a value can be
// negative or in Java's exponent notation (1.0E-4). `[Breaching]` and threshold lists like
// `[100.0]` of anomaly bands come after the datapoints or carry no date.
const BRACKETS = /\[([^\]]*)\]/g;
const DATAPOINT = /^\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?:\(|,|$)/;

/**
 * The latest datapoint quoted in a NewStateReason, e.g. 87.5 from
 * `Threshold Crossed: 1 out of the last 1 datapoints [87.5 (27/11/26 10:00:00)] was greater…`.
 * Undefined when the reason quotes none (insufficient data, missing data treated as breaching).
 */
export function latestDatapoint(reason: string): number | undefined {
  for (const m of reason.matchAll(BRACKETS)) {
    const first = DATAPOINT.exec(m[1] ?? '');
    if (first) return numeric(first[1]);
  }
  return undefined;
}

/**
 * What the alarm says about itself, kept with the intent or the event, clipped to
 * EVIDENCE_LIMITS (sources/evidence.ts): with verification off anyone can send any alarm.
 */
export function alarmEvidence(alarm: CloudWatchAlarm, messageId?: string): Evidence {
  const evidence: Evidence = { alarmName: clip(alarm.AlarmName) };
  if (messageId !== undefined) evidence.messageId = clip(messageId);
  if (alarm.Trigger?.Threshold !== undefined) evidence.threshold = alarm.Trigger.Threshold;
  if (alarm.Trigger?.ComparisonOperator !== undefined) evidence.comparisonOperator = clip(alarm.Trigger.ComparisonOperator);
  const value = latestDatapoint(alarm.NewStateReason);
  if (value !== undefined) evidence.metricValue = value;
  return evidence;
}

/**
 * Turns an alarm into a signal (ALARM, keyed by the alarm's ARN), or ends it with an `ignored`
 * event (OK, INSUFFICIENT_DATA). With `?dryRun=true` an alarm in ALARM becomes a preview command
 * instead, and one back to OK ends no signal. Target and action: the query, then the description tokens, then (action only) the
 * target's default. Throws PS_TARGET_MISSING, PS_TARGET_UNKNOWN or PS_ACTION_INVALID; a single
 * alarm has no siblings to save, so its problem refuses the request.
 */
export function fromCloudWatch(
  alarm: CloudWatchAlarm,
  query: WebhookQuery,
  ctx: SourceContext,
  delivery: { messageId?: string } = {},
): SourceResult {
  const tokens = descriptionTokens(alarm.AlarmDescription);
  const named: Named = {};
  if (tokens.target !== undefined) named.target = { value: tokens.target, where: 'the alarm description token pulumiscale:target=' };
  if (tokens.action !== undefined) named.action = { value: tokens.action, where: 'the alarm description token pulumiscale:action=' };
  const { target, action } = resolveTargetAction(query, named, ctx);
  const evidence = alarmEvidence(alarm, delivery.messageId);
  const common = { target, source: 'cloudwatch' as const, dryRun: query.dryRun, evidence };
  const name = clip(alarm.AlarmName);
  // The ARN names the alarm across renames of nothing else; raw deliveries may lack it.
  const id = boundedId(alarm.AlarmArn ?? `alarm:${alarm.AlarmName}`);
  const result = emptyResult();
  if (alarm.NewStateValue === 'ALARM') {
    if (query.dryRun) result.commands.push(alertIntent(ctx, { ...common, action, reason: `alarm ${name} in ALARM (dry run)` }));
    else result.signals.push(alertSignal(ctx, { target, action, source: 'cloudwatch', id, since: alarm.StateChangeTime, reason: `alarm ${name}`, evidence }));
    return result;
  }
  // A dry run previews and changes nothing real: its OK ends no live signal.
  if (!query.dryRun) result.ended.push({ target, id, ...resolvedAt(alarm.StateChangeTime, ctx) });
  const outcome = query.dryRun ? ' (dry run): no signal ended' : ': its signal ended';
  // The event names the signal it ends, so the history says which one (a backtest reads it).
  const ends = query.dryRun ? {} : { signal: id };
  result.ignored.push(ignoredEvent(ctx, { ...common, evidence: { ...evidence, ...ends }, reason: `alarm ${name} went to ${alarm.NewStateValue}${outcome}` }));
  return result;
}
