import { describe, expect, it } from 'vitest';
import { PulumiScaleError, type ErrorCode } from '../../src/errors.js';
import { alertEvidence, fromAlertmanager, parseAlertmanagerPayload, type AlertmanagerPayload } from '../../src/sources/alertmanager.js';
import { NO_TARGET, UNKNOWN_TARGET, parseWebhookQuery, type SourceContext, type WebhookQuery } from '../../src/sources/common.js';
import { fixture } from '../support/sns.js';
import { codeOf } from '../support/errors.js';
import { noQuery, sourceContext } from '../support/sources.js';

const NOW = Date.parse('2026-11-27T10:00:00.000Z');

const ctx = (): SourceContext => sourceContext(NOW);

/** One alert of a test notification. */
interface AlertSpec {
  status?: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  fingerprint?: string;
}

function payload(alerts: AlertSpec[]): AlertmanagerPayload {
  return parseAlertmanagerPayload({
    version: '4',
    receiver: 'pulumiscale',
    status: 'firing',
    alerts: alerts.map((a, i) => ({
      status: a.status ?? 'firing',
      labels: { alertname: `Alert${i}`, ...a.labels },
      annotations: a.annotations ?? {},
      startsAt: '2026-11-27T09:55:00Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus.example:9090/graph',
      fingerprint: a.fingerprint ?? `fp${i}`,
    })),
  });
}

describe('fromAlertmanager on the fixtures', () => {
  it('turns each firing alert into a clamped step intent for the target its labels name', () => {
    const result = fromAlertmanager(parseAlertmanagerPayload(fixture('alertmanager/notification-firing.json')), noQuery, ctx());
    expect(result.intents.map((i) => [i.target, i.adjustment, i.reason])).toEqual([
      ['web', { type: 'step', direction: 'up' }, 'alert HighCPU firing'],
      ['worker', { type: 'step', direction: 'up' }, 'alert QueueBacklog firing'],
      ['web', { type: 'step', direction: 'down' }, 'alert LowTraffic firing'],
    ]);
    for (const intent of result.intents) {
      expect(intent).toMatchObject({ source: 'alertmanager', bounds: 'clamp', dryRun: false, receivedAt: '2026-11-27T10:00:00.000Z' });
    }
    expect(result.intents[0]?.evidence).toEqual({
      fingerprint: '6a1c0e7f2b9d4c13',
      alertName: 'HighCPU',
      generatorURL: expect.stringContaining('prometheus.example') as unknown,
      metricValue: 91.5,
      labels: expect.objectContaining({ pulumiscale_target: 'web', instance: 'web-7d9f8c6b5-x2kqp:9100' }) as unknown,
    });
    expect(result.intents[1]?.evidence.metricValue).toBe(1250);
    expect(result.rejected).toEqual([]);
  });

  it('records a resolved alert as ignored and starts nothing for it', () => {
    const result = fromAlertmanager(parseAlertmanagerPayload(fixture('alertmanager/notification-firing.json')), noQuery, ctx());
    expect(result.ignored).toHaveLength(1);
    expect(result.ignored[0]).toMatchObject({
      kind: 'ignored',
      target: 'web',
      reason: 'alert HighCPU resolved',
      source: 'alertmanager',
      intents: 0,
      from: null,
      to: null,
      evidence: { fingerprint: '2e8b7f3a91c05d64' },
    });
  });

  it('a resolved-only notification yields no intent, one ignored event', () => {
    const result = fromAlertmanager(parseAlertmanagerPayload(fixture('alertmanager/notification-resolved.json')), noQuery, ctx());
    expect(result.intents).toEqual([]);
    expect(result.ignored.map((e) => [e.target, e.reason])).toEqual([['worker', 'alert QueueBacklog resolved']]);
  });
});

describe('target and action precedence: query, then labels, then the target default', () => {
  it.each<{ rule: string; labels: Record<string, string>; query: WebhookQuery; want: [string, string] }>([
    { rule: 'labels name target and action', labels: { pulumiscale_target: 'web', pulumiscale_action: 'down' }, query: noQuery, want: ['web', 'down'] },
    { rule: 'no action label: the target default (up)', labels: { pulumiscale_target: 'web' }, query: noQuery, want: ['web', 'up'] },
    { rule: 'no action label: the target default (down)', labels: { pulumiscale_target: 'batch' }, query: noQuery, want: ['batch', 'down'] },
    { rule: 'the action label beats the target default', labels: { pulumiscale_target: 'batch', pulumiscale_action: 'up' }, query: noQuery, want: ['batch', 'up'] },
    { rule: '?action= beats the action label', labels: { pulumiscale_target: 'web', pulumiscale_action: 'up' }, query: { dryRun: false, action: 'down' as const }, want: ['web', 'down'] },
    { rule: '?target= beats the target label', labels: { pulumiscale_target: 'web' }, query: { dryRun: false, target: 'worker' }, want: ['worker', 'up'] },
    { rule: '?target= names a target for an alert without labels', labels: {}, query: { dryRun: false, target: 'batch' }, want: ['batch', 'down'] },
    { rule: 'an action label is read case-insensitively', labels: { pulumiscale_target: 'web', pulumiscale_action: ' Down ' }, query: noQuery, want: ['web', 'down'] },
  ])('$rule', ({ labels, query, want }) => {
    const [intent] = fromAlertmanager(payload([{ labels }]), query, ctx()).intents;
    expect([intent?.target, intent?.adjustment.type === 'step' ? intent.adjustment.direction : null]).toEqual(want);
  });

  it('?dryRun=true makes every intent and event of the request a dry run', () => {
    const result = fromAlertmanager(
      payload([{ labels: { pulumiscale_target: 'web' } }, { status: 'resolved', labels: { pulumiscale_target: 'worker' } }]),
      { dryRun: true },
      ctx(),
    );
    expect(result.intents.map((i) => i.dryRun)).toEqual([true]);
    expect(result.ignored.map((e) => e.dryRun)).toEqual([true]);
  });
});

describe('alerts that cannot become intents', () => {
  it.each<{ rule: string; alerts: AlertSpec[]; code: ErrorCode }>([
    { rule: 'every alert names an unknown target: refused with PS_TARGET_UNKNOWN', alerts: [{ labels: { pulumiscale_target: 'nope' } }], code: 'PS_TARGET_UNKNOWN' },
    { rule: 'no alert names a target: refused with PS_TARGET_MISSING', alerts: [{ labels: {} }, { labels: {} }], code: 'PS_TARGET_MISSING' },
    { rule: 'a bad action label: refused with PS_ACTION_INVALID', alerts: [{ labels: { pulumiscale_target: 'web', pulumiscale_action: 'sideways' } }], code: 'PS_ACTION_INVALID' },
    { rule: 'several problems: the first one decides the code', alerts: [{ labels: {} }, { labels: { pulumiscale_target: 'nope' } }], code: 'PS_TARGET_MISSING' },
    { rule: 'a resolved alert for an unknown target is a problem too', alerts: [{ status: 'resolved' as const, labels: { pulumiscale_target: 'nope' } }], code: 'PS_TARGET_UNKNOWN' },
  ])('$rule', ({ alerts, code }) => {
    expect(codeOf(() => fromAlertmanager(payload(alerts), noQuery, ctx()))).toBe(code);
  });

  it('accepts the usable alerts and lists the others as rejected, each with an ignored event', () => {
    const result = fromAlertmanager(
      payload([
        { labels: { pulumiscale_target: 'web' }, fingerprint: 'good' },
        { labels: { pulumiscale_target: 'nope' }, fingerprint: 'unknown' },
        { labels: {}, fingerprint: 'unnamed' },
        { labels: { pulumiscale_target: 'worker', pulumiscale_action: 'sideways' }, fingerprint: 'badaction' },
      ]),
      noQuery,
      ctx(),
    );
    expect(result.intents.map((i) => i.target)).toEqual(['web']);
    expect(result.rejected.map((r) => [r.fingerprint, r.code])).toEqual([
      ['unknown', 'PS_TARGET_UNKNOWN'],
      ['unnamed', 'PS_TARGET_MISSING'],
      ['badaction', 'PS_ACTION_INVALID'],
    ]);
    expect(result.ignored.map((e) => [e.target, e.errorCode])).toEqual([
      [UNKNOWN_TARGET, 'PS_TARGET_UNKNOWN'],
      [NO_TARGET, 'PS_TARGET_MISSING'],
      ['worker', 'PS_ACTION_INVALID'],
    ]);
    expect(result.ignored[0]?.reason).toMatch(/^alert Alert1 firing, refused: label pulumiscale_target names target "nope"/);
  });

  it('a resolved alert with a good target makes the notification usable despite a bad sibling', () => {
    const result = fromAlertmanager(
      payload([{ status: 'resolved', labels: { pulumiscale_target: 'web' } }, { labels: { pulumiscale_target: 'nope' } }]),
      noQuery,
      ctx(),
    );
    expect(result.intents).toEqual([]);
    expect(result.rejected).toHaveLength(1);
    expect(result.ignored).toHaveLength(2);
  });
});

describe('evidence', () => {
  const alert = (labels: Record<string, string>, annotations: Record<string, string> = {}) =>
    payload([{ labels: { pulumiscale_target: 'web', ...labels }, annotations }]).alerts[0]!;

  it.each<{ rule: string; labels: Record<string, string>; annotations: Record<string, string>; want: number | undefined }>([
    { rule: 'annotation pulumiscale_value', labels: {}, annotations: { pulumiscale_value: '91.5' }, want: 91.5 },
    { rule: 'label value', labels: { value: '1250' }, annotations: {}, want: 1250 },
    { rule: 'the annotation wins over the label', labels: { value: '1' }, annotations: { pulumiscale_value: '2' }, want: 2 },
    { rule: 'exponent notation', labels: { value: '1.5e3' }, annotations: {}, want: 1500 },
    { rule: 'not a number: none', labels: { value: 'high' }, annotations: {}, want: undefined },
    { rule: 'empty: none', labels: {}, annotations: { pulumiscale_value: ' ' }, want: undefined },
  ])('metricValue from $rule', ({ labels, annotations, want }) => {
    expect(alertEvidence(alert(labels, annotations)).metricValue).toBe(want);
  });
});

describe('parseAlertmanagerPayload', () => {
  const good = fixture('alertmanager/notification-firing.json');

  it.each([
    { rule: 'version 3 is refused', patch: { version: '3' }, path: 'version' },
    { rule: 'a missing version is refused', patch: { version: undefined }, path: 'version' },
    { rule: 'alerts must be a list', patch: { alerts: {} }, path: 'alerts' },
    { rule: 'an alert status is firing or resolved', patch: { alerts: [{ status: 'pending', labels: {}, startsAt: 'x' }] }, path: 'alerts.0.status' },
    { rule: 'label values are strings', patch: { alerts: [{ status: 'firing', labels: { a: 1 }, startsAt: 'x' }] }, path: 'alerts.0.labels.a' },
  ])('$rule (PS_PAYLOAD_INVALID naming the path)', ({ patch, path }) => {
    const body: Record<string, unknown> = { ...good, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete body[k];
    try {
      parseAlertmanagerPayload(body);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PulumiScaleError);
      expect((err as PulumiScaleError).code).toBe('PS_PAYLOAD_INVALID');
      expect((err as PulumiScaleError).details).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    }
  });

  it('tolerates fields newer Alertmanagers add', () => {
    const body = { ...good, orgId: 1, alerts: [{ ...(good.alerts as object[])[0], silenceURL: 'http://x' }] };
    expect(parseAlertmanagerPayload(body).alerts).toHaveLength(1);
  });
});

describe('parseWebhookQuery', () => {
  it.each([
    { rule: 'nothing given', raw: {}, want: { dryRun: false } },
    { rule: 'dryRun=true', raw: { dryRun: 'true' }, want: { dryRun: true } },
    { rule: 'dryRun=false', raw: { dryRun: 'false' }, want: { dryRun: false } },
    { rule: 'a known target and an action', raw: { target: 'web', action: 'down' }, want: { dryRun: false, target: 'web', action: 'down' } },
  ])('$rule', ({ raw, want }) => {
    expect(parseWebhookQuery(raw, ctx())).toEqual(want);
  });

  it.each([
    { rule: 'an unknown action', raw: { action: 'sideways' }, code: 'PS_ACTION_INVALID' },
    { rule: 'an unknown target', raw: { target: 'nope' }, code: 'PS_TARGET_UNKNOWN' },
    { rule: 'a dryRun that is not a boolean', raw: { dryRun: 'yes' }, code: 'PS_PAYLOAD_INVALID' },
    { rule: 'a repeated target', raw: { target: ['web', 'worker'] }, code: 'PS_PAYLOAD_INVALID' },
  ])('refuses $rule', ({ raw, code }) => {
    expect(codeOf(() => parseWebhookQuery(raw, ctx()))).toBe(code);
  });
});
