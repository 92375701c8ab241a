/**
 * The Alertmanager source: a webhook notification (payload version 4) becomes one signal per
 * firing alert (keyed by fingerprint), and ends one per resolved alert with an `ignored` event.
 *
 * One notification can carry alerts for several targets, so a bad target or action on one alert
 * must not throw away the others: the usable alerts are accepted and the rest are listed as
 * `rejected` (and recorded). Only when nothing in the notification is usable is the request
 * refused, with the first problem's code, because a 4xx is what makes Alertmanager log the
 * misconfiguration (it does not retry 4xx, so nothing is lost by refusing).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PulumiScaleError } from '../errors.js';
import type { Evidence } from '../types.js';
import {
  alertIntent,
  alertSignal,
  emptyResult,
  ignoredEvent,
  numeric,
  parseWith,
  refusalTarget,
  resolvedAt,
  resolveTargetAction,
  type Named,
  type SourceContext,
  type SourceResult,
  type WebhookQuery,
} from './common.js';
import { boundedId, boundedLabels, clip, shared, sharedUrl } from './evidence.js';

/** The label that names an alert's target. */
export const TARGET_LABEL = 'pulumiscale_target';
/** The label that names an alert's action (`up` or `down`). */
export const ACTION_LABEL = 'pulumiscale_action';
/** The annotation that carries the alert's metric value (a label `value` also works). */
export const VALUE_ANNOTATION = 'pulumiscale_value';
/** The annotation that carries the alert's threshold, for step rules `relativeTo: threshold`. */
export const THRESHOLD_ANNOTATION = 'pulumiscale_threshold';

const stringMap = z.record(z.string(), z.string());

/** One alert of a notification. Unknown fields are tolerated: newer Alertmanagers add some. */
const alertSchema = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: stringMap,
  annotations: stringMap.default({}),
  startsAt: z.string(),
  endsAt: z.string().optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().optional(),
});

/**
 * The webhook payload, version 4. Only what PulumiScale reads is required; the group fields are
 * checked for type when present, so a sender that trims them (Grafana, tests) still works.
 */
export const alertmanagerPayloadSchema = z.object({
  version: z.literal('4'),
  receiver: z.string(),
  status: z.enum(['firing', 'resolved']),
  alerts: z.array(alertSchema),
  groupLabels: stringMap.default({}),
  commonLabels: stringMap.default({}),
  commonAnnotations: stringMap.default({}),
  externalURL: z.string().optional(),
  groupKey: z.string().optional(),
  truncatedAlerts: z.number().int().nonnegative().default(0),
});

/** A validated Alertmanager notification. */
export type AlertmanagerPayload = z.output<typeof alertmanagerPayloadSchema>;
/** One alert of it. */
export type AlertmanagerAlert = AlertmanagerPayload['alerts'][number];

/**
 * The same validation as {@link parseAlertmanagerPayload}, of the notification's group fields
 * with alerts `from` to `to` only, for a route that validates a large notification a slice at a
 * time; returns that slice's alerts. When the slice fails, the whole notification is validated
 * for the error, so that its issues name the right alert indexes.
 */
export function parseAlertmanagerSlice(body: unknown, from: number, to: number): AlertmanagerAlert[] {
  const alerts = (body as { alerts?: unknown } | null)?.alerts;
  if (Array.isArray(alerts)) {
    const parsed = alertmanagerPayloadSchema.safeParse({ ...(body as Record<string, unknown>), alerts: alerts.slice(from, to) });
    if (parsed.success) return parsed.data.alerts;
  }
  return parseAlertmanagerPayload(body).alerts.slice(from, to);
}

/** Validates a parsed JSON body; a failure is PS_PAYLOAD_INVALID listing zod's issues. */
export function parseAlertmanagerPayload(body: unknown): AlertmanagerPayload {
  return parseWith(alertmanagerPayloadSchema, body, 'the Alertmanager notification');
}

/**
 * What an alert says about itself, kept with the intent or the event, within EVIDENCE_LIMITS
 * (sources/evidence.ts): the sender decides how many labels it sends and how long they are.
 */
export function alertEvidence(alert: AlertmanagerAlert): Evidence {
  const evidence: Evidence = { labels: boundedLabels(alert.labels, ['alertname', TARGET_LABEL, ACTION_LABEL]) };
  if (alert.fingerprint !== undefined) evidence.fingerprint = clip(alert.fingerprint);
  const name = alert.labels.alertname;
  if (name !== undefined) evidence.alertName = shared(clip(name));
  if (alert.generatorURL) evidence.generatorURL = sharedUrl(alert.generatorURL);
  const value = numeric(alert.annotations[VALUE_ANNOTATION]) ?? numeric(alert.labels.value);
  if (value !== undefined) evidence.metricValue = value;
  const threshold = numeric(alert.annotations[THRESHOLD_ANNOTATION]);
  if (threshold !== undefined) evidence.threshold = threshold;
  return evidence;
}

function named(alert: AlertmanagerAlert): Named {
  const n: Named = {};
  const target = alert.labels[TARGET_LABEL];
  const action = alert.labels[ACTION_LABEL];
  if (target !== undefined && target.trim() !== '') n.target = { value: target, where: `label ${TARGET_LABEL}` };
  if (action !== undefined) n.action = { value: action, where: `label ${ACTION_LABEL}` };
  return n;
}

/**
 * An alert's identity: Alertmanager's fingerprint (a hash of its labels), or, from a sender
 * that leaves it out, a hash of the labels computed the same way in spirit, so that a re-sent
 * alert refreshes its signal instead of starting another.
 */
export function alertId(alert: AlertmanagerAlert): string {
  if (alert.fingerprint !== undefined && alert.fingerprint !== '') return alert.fingerprint;
  const sorted = Object.keys(alert.labels)
    .sort()
    .map((k) => [k, alert.labels[k]]);
  return `labels:${createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 16)}`;
}

/**
 * Turns a notification into signals (firing alerts, started or refreshed), ended signals and
 * `ignored` events (resolved alerts), and events for rejected ones. With `?dryRun=true` each
 * firing alert becomes a preview command instead, and a resolved one ends no signal. Pure: the
 * route stores what this returns.
 * Throws the first problem when no alert of the notification is usable.
 */
export function fromAlertmanager(payload: AlertmanagerPayload, query: WebhookQuery, ctx: SourceContext): SourceResult {
  const translation = startTranslation();
  translateAlerts(payload.alerts, 0, query, ctx, translation);
  return finishTranslation(translation);
}

/** A translation in progress: a large notification is translated a slice of alerts at a time. */
export interface Translation {
  result: SourceResult;
  usable: number;
  firstProblem?: PulumiScaleError;
}

export function startTranslation(): Translation {
  return { result: emptyResult(), usable: 0 };
}

/** The result, or the first problem when no alert of the notification was usable. */
export function finishTranslation(t: Translation): SourceResult {
  if (t.usable === 0 && t.firstProblem) throw t.firstProblem;
  return t.result;
}

/**
 * Translates some alerts of a notification into `t`, as fromAlertmanager does for all of them;
 * `first` is the index of `alerts[0]` in the notification (it names alerts that carry no name).
 */
export function translateAlerts(alerts: readonly AlertmanagerAlert[], first: number, query: WebhookQuery, ctx: SourceContext, t: Translation): void {
  const result = t.result;
  alerts.forEach((alert, at) => {
    const index = first + at;
    const evidence = alertEvidence(alert);
    const label = clip(alert.labels.alertname ?? alert.fingerprint ?? `#${index}`);
    const common = { source: 'alertmanager' as const, dryRun: query.dryRun, evidence };
    let resolved: ReturnType<typeof resolveTargetAction>;
    try {
      // Resolved alerts are checked too: the same labels fired the alert, so a bad one is the
      // same misconfiguration and the operator should hear of it either way.
      resolved = resolveTargetAction(query, named(alert), ctx);
    } catch (err) {
      if (!(err instanceof PulumiScaleError)) throw err;
      t.firstProblem ??= err;
      result.rejected.push({ fingerprint: clip(alert.fingerprint ?? `#${index}`), code: err.code, message: err.message });
      const asked = query.target ?? alert.labels[TARGET_LABEL]?.trim();
      result.ignored.push(
        ignoredEvent(ctx, {
          ...common,
          // A made-up name goes to one bucket; the reason (err.message) quotes it.
          target: refusalTarget(asked, ctx),
          reason: `alert ${label} ${alert.status}, refused: ${err.message}`,
          errorCode: err.code,
        }),
      );
      return;
    }
    t.usable += 1;
    const id = boundedId(alertId(alert));
    if (alert.status === 'resolved') {
      // A dry run previews and changes nothing real: its resolutions end no live signal.
      if (!query.dryRun) result.ended.push({ target: resolved.target, id, ...resolvedAt(alert.endsAt, ctx) });
      const outcome = query.dryRun ? ' (dry run): no signal ended' : ': its signal ended';
      // The event names the signal it ends, so the history says which one (a backtest reads it).
      const ends = query.dryRun ? {} : { signal: id };
      result.ignored.push(ignoredEvent(ctx, { ...common, evidence: { ...evidence, ...ends }, target: resolved.target, reason: `alert ${label} resolved${outcome}` }));
      return;
    }
    if (query.dryRun) {
      result.commands.push(alertIntent(ctx, { ...common, target: resolved.target, action: resolved.action, reason: `alert ${label} firing (dry run)` }));
      return;
    }
    result.signals.push(
      // The reason names the rule, shared by its alerts; an alert named by its fingerprint alone has its own.
      alertSignal(ctx, {
        target: resolved.target,
        action: resolved.action,
        source: 'alertmanager',
        id,
        since: alert.startsAt,
        reason: alert.labels.alertname === undefined ? `alert ${label}` : shared(`alert ${label}`),
        evidence,
      }),
    );
  });
}
