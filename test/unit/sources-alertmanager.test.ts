import { describe, expect, it } from 'vitest';
import { PulumiScaleError, type ErrorCode } from '../../src/errors.js';
import { alertEvidence, alertId, fromAlertmanager, parseAlertmanagerPayload, type AlertmanagerPayload } from '../../src/sources/alertmanager.js';
import { NO_TARGET, UNKNOWN_TARGET, parseWebhookQuery, type SourceContext, type WebhookQuery } from '../../src/sources/common.js';
import { fixture } from '../support/sns.js';
import { codeOf } from '../support/errors.js';
import { noQuery, sourceContext } from '../support/sources.js';

const NOW = Date.parse('2026-11-27T10:00:00.000Z');
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** The route's context: Alertmanager signals last `webhooks.alertmanager.signalTTL` (1h by default). */
const ctx = (signalTTL = HOUR, now = NOW): SourceContext => sourceContext(now, signalTTL);

/** One alert of a test notification. */
interface AlertSpec {
  status?: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  /** Defaults to `fp<index>`; null sends none (as Grafana and hand-written senders may). */
  fingerprint?: string | null;
  startsAt?: string;
  endsAt?: string;
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
      startsAt: a.startsAt ?? '2026-11-27T09:55:00Z',
      endsAt: a.endsAt ?? '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus.example:9090/graph',
      ...(a.fingerprint === null ? {} : { fingerprint: a.fingerprint ?? `fp${i}` }),
    })),
  });
}

const firingFixture = () => parseAlertmanagerPayload(fixture('alertmanager/notification-firing.json'));

describe('fromAlertmanager on the fixtures', () => {
  it('turns each firing alert into a signal on the target its labels name, keyed by its fingerprint', () => {
    const result = fromAlertmanager(firingFixture(), noQuery, ctx());
    expect(result.signals.map((s) => [s.target, s.id, s.direction, s.value, s.threshold, s.since, s.reason])).toEqual([
      ['web', '6a1c0e7f2b9d4c13', 'up', 91.5, null, '2026-11-27T09:55:12.384Z', 'alert HighCPU'],
      ['worker', 'd0b4e51a77c2f908', 'up', 1250, null, '2026-11-27T09:58:40.001Z', 'alert QueueBacklog'],
      ['web', '93f0a2c4e18b6d57', 'down', 3.2, null, '2026-11-27T09:30:00.000Z', 'alert LowTraffic'],
    ]);
    for (const signal of result.signals) {
      expect(signal).toMatchObject({ source: 'alertmanager', lastSeen: iso(NOW), expiresAt: iso(NOW + HOUR) });
    }
    expect(result.signals[0]?.evidence).toEqual({
      fingerprint: '6a1c0e7f2b9d4c13',
      alertName: 'HighCPU',
      generatorURL: expect.stringContaining('prometheus.example') as unknown,
      metricValue: 91.5,
      labels: expect.objectContaining({ pulumiscale_target: 'web', instance: 'web-7d9f8c6b5-x2kqp:9100' }) as unknown,
    });
    expect(result.commands).toEqual([]);
    expect(result.rejected).toEqual([]);
  });

  it('a resolved alert ends its signal and is recorded as ignored; it starts nothing', () => {
    const result = fromAlertmanager(firingFixture(), noQuery, ctx());
    expect(result.ended).toMatchObject([{ target: 'web', id: '2e8b7f3a91c05d64' }]);
    expect(result.signals.map((s) => s.id)).not.toContain('2e8b7f3a91c05d64');
    expect(result.ignored).toHaveLength(1);
    expect(result.ignored[0]).toMatchObject({
      kind: 'ignored',
      target: 'web',
      reason: 'alert HighCPU resolved: its signal ended',
      source: 'alertmanager',
      intents: 0,
      from: null,
      to: null,
      dryRun: false,
      evidence: { fingerprint: '2e8b7f3a91c05d64' },
    });
  });

  it('a resolved-only notification ends the signal its firing alert started, and starts none', () => {
    const result = fromAlertmanager(parseAlertmanagerPayload(fixture('alertmanager/notification-resolved.json')), noQuery, ctx());
    const started = fromAlertmanager(firingFixture(), noQuery, ctx()).signals.find((s) => s.target === 'worker');
    expect(result.signals).toEqual([]);
    expect(result.commands).toEqual([]);
    expect(result.ended).toMatchObject([{ target: 'worker', id: started?.id }]);
    expect(result.ignored.map((e) => [e.target, e.reason])).toEqual([['worker', 'alert QueueBacklog resolved: its signal ended']]);
  });
});

describe('the resolution time an ended signal carries (what stale deliveries are judged by)', () => {
  const up = { pulumiscale_target: 'web' };
  it.each([
    { rule: 'endsAt as the sender says', endsAt: '2026-11-27T09:59:00Z', at: '2026-11-27T09:59:00Z' },
    { rule: 'an endsAt a little ahead (another clock) as the sender says', endsAt: '2026-11-27T10:30:00Z', at: '2026-11-27T10:30:00Z' },
    { rule: 'an endsAt far in the future counts as now: it would make every later firing look stale', endsAt: '9999-12-31T00:00:00Z', at: new Date(NOW).toISOString() },
    { rule: 'an endsAt that is not a date is left out', endsAt: 'soon', at: undefined },
  ])('$rule', ({ endsAt, at }) => {
    const result = fromAlertmanager(payload([{ status: 'resolved', labels: up, endsAt }]), noQuery, ctx());
    expect(result.ended).toEqual([{ target: 'web', id: 'fp0', ...(at === undefined ? {} : { at }) }]);
  });
});

describe('a notification re-sends every alert of its group: it carries state, not edges', () => {
  it('2 firing and 1 resolved give 2 signals and 1 ended signal, never an up for the resolution', () => {
    const up = { pulumiscale_target: 'web', pulumiscale_action: 'up' };
    const result = fromAlertmanager(
      payload([{ labels: up }, { labels: { ...up, instance: 'b' } }, { status: 'resolved', labels: { ...up, instance: 'c' } }]),
      noQuery,
      ctx(),
    );
    expect(result.signals.map((s) => [s.id, s.direction])).toEqual([
      ['fp0', 'up'],
      ['fp1', 'up'],
    ]);
    expect(result.ended).toMatchObject([{ target: 'web', id: 'fp2' }]);
    expect(result.commands).toEqual([]);
  });

  it('the same alert sent again is the same signal, seen later: same id and start, a new lastSeen and expiry', () => {
    const first = fromAlertmanager(firingFixture(), noQuery, ctx(HOUR, NOW)).signals[0];
    const again = fromAlertmanager(firingFixture(), noQuery, ctx(HOUR, NOW + 5 * 60_000)).signals[0];
    expect([again?.target, again?.id, again?.since]).toEqual([first?.target, first?.id, first?.since]);
    expect([again?.lastSeen, again?.expiresAt]).toEqual([iso(NOW + 5 * 60_000), iso(NOW + 5 * 60_000 + HOUR)]);
  });
});

describe('what a signal carries', () => {
  const one = (spec: Partial<AlertSpec>, c = ctx()) => fromAlertmanager(payload([{ labels: { pulumiscale_target: 'web' }, ...spec }]), noQuery, c).signals[0];

  it.each<{ rule: string; annotations: Record<string, string>; value: number | null; threshold: number | null }>([
    { rule: 'value and threshold from the annotations pulumiscale_value and pulumiscale_threshold', annotations: { pulumiscale_value: '95', pulumiscale_threshold: '80' }, value: 95, threshold: 80 },
    { rule: 'a value without a threshold', annotations: { pulumiscale_value: '0.93' }, value: 0.93, threshold: null },
    { rule: 'neither: both null (the target moves by its step)', annotations: {}, value: null, threshold: null },
    { rule: 'a threshold that is not a number: null', annotations: { pulumiscale_value: '95', pulumiscale_threshold: 'eighty' }, value: 95, threshold: null },
    { rule: 'a negative threshold', annotations: { pulumiscale_value: '-12', pulumiscale_threshold: '-10' }, value: -12, threshold: -10 },
  ])('$rule', ({ annotations, value, threshold }) => {
    expect(one({ annotations })).toMatchObject({ value, threshold });
  });

  it.each<{ rule: string; startsAt: string; since: string }>([
    { rule: 'since is when the alert started firing (startsAt)', startsAt: '2026-11-27T09:55:12.384Z', since: '2026-11-27T09:55:12.384Z' },
    { rule: 'since is normalised to UTC', startsAt: '2026-11-27T11:55:00+02:00', since: '2026-11-27T09:55:00.000Z' },
    { rule: 'a startsAt that is not a time: since is now', startsAt: 'soon', since: iso(NOW) },
  ])('$rule', ({ startsAt, since }) => {
    expect(one({ startsAt })?.since).toBe(since);
  });

  it('gives each alert its own times when the starts alternate, and each delivery its own now', () => {
    const starts = ['2026-11-27T09:55:00Z', 'soon', '2026-11-27T11:50:00+02:00', '2026-11-27T09:55:00Z', 'soon'];
    const delivery = payload(starts.map((startsAt) => ({ labels: { pulumiscale_target: 'web' }, startsAt })));
    const times = (now: number) =>
      fromAlertmanager(delivery, noQuery, ctx(HOUR, now)).signals.map((s) => [s.since, s.lastSeen, s.expiresAt]);
    const at = (now: number, since: string) => [since, iso(now), iso(now + HOUR)];
    const later = NOW + 1_234;
    expect(times(NOW)).toEqual([
      at(NOW, '2026-11-27T09:55:00.000Z'),
      at(NOW, iso(NOW)),
      at(NOW, '2026-11-27T09:50:00.000Z'),
      at(NOW, '2026-11-27T09:55:00.000Z'),
      at(NOW, iso(NOW)),
    ]);
    // A start that is not a time is "now" of each delivery, not of the first one that sent it.
    expect(times(later)[1]).toEqual(at(later, iso(later)));
    expect(times(NOW)[0]).toEqual(at(NOW, '2026-11-27T09:55:00.000Z'));
  });

  it.each<{ rule: string; ttl: number | undefined; expiresAt: string | null }>([
    { rule: 'a signal expires signalTTL after it was last sent', ttl: HOUR, expiresAt: iso(NOW + HOUR) },
    { rule: 'a shorter signalTTL', ttl: 90_000, expiresAt: iso(NOW + 90_000) },
    { rule: 'signalTTL 0: it lasts until resolved', ttl: 0, expiresAt: null },
    { rule: 'no signalTTL: it lasts until resolved', ttl: undefined, expiresAt: null },
  ])('$rule', ({ ttl, expiresAt }) => {
    expect(one({}, sourceContext(NOW, ttl))).toMatchObject({ lastSeen: iso(NOW), expiresAt });
  });
});

describe("a signal's identity", () => {
  const alert = (spec: AlertSpec) => payload([spec]).alerts[0]!;
  const labels = { alertname: 'HighCPU', pulumiscale_target: 'web', instance: 'web-1:9100' };

  it("is Alertmanager's fingerprint when the alert has one", () => {
    expect(alertId(alert({ labels, fingerprint: '6a1c0e7f2b9d4c13' }))).toBe('6a1c0e7f2b9d4c13');
  });

  it.each<{ rule: string; fingerprint: string | null }>([
    { rule: 'no fingerprint', fingerprint: null },
    { rule: 'an empty fingerprint', fingerprint: '' },
  ])('$rule: a hash of the labels, prefixed labels:', ({ fingerprint }) => {
    expect(alertId(alert({ labels, fingerprint }))).toMatch(/^labels:[0-9a-f]{16}$/);
  });

  it('without a fingerprint, the same labels in any order give the same id', () => {
    const reordered = { instance: 'web-1:9100', pulumiscale_target: 'web', alertname: 'HighCPU' };
    expect(alertId(alert({ labels: reordered, fingerprint: null }))).toBe(alertId(alert({ labels, fingerprint: null })));
  });

  it('without a fingerprint, other labels give another id', () => {
    expect(alertId(alert({ labels: { ...labels, instance: 'web-2:9100' }, fingerprint: null }))).not.toBe(alertId(alert({ labels, fingerprint: null })));
  });

  it('without a fingerprint, a resolved alert ends the signal its firing self started', () => {
    const started = fromAlertmanager(payload([{ labels, fingerprint: null }]), noQuery, ctx()).signals[0];
    const resolved = fromAlertmanager(payload([{ status: 'resolved', labels, fingerprint: null }]), noQuery, ctx());
    expect(resolved.ended).toMatchObject([{ target: 'web', id: started?.id }]);
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
    const [signal] = fromAlertmanager(payload([{ labels }]), query, ctx()).signals;
    expect([signal?.target, signal?.direction]).toEqual(want);
  });

  it('?target= keys the signal and its resolution on the overriding target alike', () => {
    const query = { dryRun: false, target: 'worker' };
    const started = fromAlertmanager(payload([{ labels: { pulumiscale_target: 'web' } }]), query, ctx()).signals[0];
    const resolved = fromAlertmanager(payload([{ status: 'resolved', labels: { pulumiscale_target: 'web' } }]), query, ctx());
    expect(resolved.ended).toMatchObject([{ target: started?.target, id: started?.id }]);
  });
});

describe('?dryRun=true previews and changes nothing real', () => {
  const dryRun = { dryRun: true };
  const result = () =>
    fromAlertmanager(
      payload([
        { labels: { pulumiscale_target: 'web' } },
        { labels: { pulumiscale_target: 'batch' } },
        { status: 'resolved', labels: { pulumiscale_target: 'worker' } },
      ]),
      dryRun,
      ctx(),
    );

  it('each firing alert becomes a preview command of its step, clamped like an alert, and no signal', () => {
    const r = result();
    expect(r.signals).toEqual([]);
    expect(r.commands.map((c) => [c.target, c.adjustment, c.dryRun, c.bounds, c.source, c.reason])).toEqual([
      ['web', { type: 'step', direction: 'up' }, true, 'clamp', 'alertmanager', 'alert Alert0 firing (dry run)'],
      ['batch', { type: 'step', direction: 'down' }, true, 'clamp', 'alertmanager', 'alert Alert1 firing (dry run)'],
    ]);
    expect(r.commands.map((c) => c.id)).toEqual(['id-1', 'id-2']);
    expect(r.commands[0]?.receivedAt).toBe(iso(NOW));
  });

  it('a resolved alert ends no signal, and its event is a dry run that says so', () => {
    const r = result();
    expect(r.ended).toEqual([]);
    expect(r.ignored.map((e) => [e.target, e.dryRun, e.reason])).toEqual([['worker', true, 'alert Alert2 resolved (dry run): no signal ended']]);
  });
});

describe('alerts that cannot become signals', () => {
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
    expect(result.signals.map((s) => [s.target, s.id])).toEqual([['web', 'good']]);
    expect(result.ended).toEqual([]);
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
    expect(result.signals).toEqual([]);
    expect(result.ended).toMatchObject([{ target: 'web', id: 'fp0' }]);
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

  it.each<{ rule: string; annotations: Record<string, string>; want: number | undefined }>([
    { rule: 'annotation pulumiscale_threshold', annotations: { pulumiscale_threshold: '80' }, want: 80 },
    { rule: 'exponent notation', annotations: { pulumiscale_threshold: '1E3' }, want: 1000 },
    { rule: 'not a number: none', annotations: { pulumiscale_threshold: 'high' }, want: undefined },
    { rule: 'absent: none', annotations: {}, want: undefined },
  ])('threshold from $rule', ({ annotations, want }) => {
    expect(alertEvidence(alert({}, annotations)).threshold).toBe(want);
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
