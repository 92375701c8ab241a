import { describe, expect, it } from 'vitest';
import type { PulumiScaleError } from '../../src/errors.js';
import {
  descriptionTokens,
  fromCloudWatch,
  latestDatapoint,
  parseCloudWatchAlarm,
  parseCloudWatchAlarmText,
  type CloudWatchAlarm,
} from '../../src/sources/cloudwatch.js';
import type { SourceContext } from '../../src/sources/common.js';
import { fixture } from '../support/sns.js';
import { codeOf } from '../support/errors.js';
import { noQuery, sourceContext } from '../support/sources.js';

const NOW = Date.parse('2026-11-27T10:01:00.000Z');
const ctx = (): SourceContext => sourceContext(NOW);
const alarm = (name: string) => parseCloudWatchAlarm(fixture(`cloudwatch/${name}.json`));
const withDescription = (a: CloudWatchAlarm, AlarmDescription: string | null): CloudWatchAlarm => ({ ...a, AlarmDescription });

describe('latestDatapoint reads the newest value quoted in NewStateReason', () => {
  it.each([
    ['Threshold Crossed: 1 out of the last 1 datapoints [87.5 (27/11/26 10:00:00)] was greater than the threshold (80.0) (minimum 1 datapoint for OK -> ALARM transition).', 87.5],
    ['Threshold Crossed: 3 out of the last 3 datapoints [152.25 (27/11/26 10:02:00), 131.0 (27/11/26 10:01:00), 118.5 (27/11/26 10:00:00)] was greater than the threshold (100.0) (minimum 3 datapoints for OK -> ALARM transition).', 152.25],
    ['Threshold Crossed: 5 out of the last 5 datapoints were less than the threshold (65.0). The most recent datapoints which crossed the threshold: [0.0 (29/04/20 23:32:00), 0.0 (29/04/20 23:31:00)] (minimum 5 datapoints for OK -> ALARM transition).', 0],
    ['Threshold Crossed: 1 datapoint [120.0 (24/05/26 14:25:00)] was greater than the threshold (50.0).', 120],
    ['Threshold Crossed: 1 out of the last 1 datapoints [85.0] was greater than the threshold (80.0)', 85],
    ['Threshold Crossed: 1 out of the last 1 datapoints [-3.5 (27/11/26 10:00:00)] was less than the threshold (0.0).', -3.5],
    ['Threshold Crossed: 1 out of the last 1 datapoints [1.2345E7 (27/11/26 10:00:00)] was greater than the threshold (1.0E7).', 12_345_000],
    ['Thresholds Crossed: 1 out of the last 4 datapoints [12.0 (14/11/25 18:39:00)] was greater than the upper thresholds [10.5] (minimum 1 datapoint for OK -> ALARM transition).', 12],
  ])('%s -> %s', (reason, want) => {
    expect(latestDatapoint(reason)).toBe(want);
  });

  it.each([
    'Insufficient Data: 1 datapoint was unknown.',
    'Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [Breaching].',
    'Unchecked: Initial alarm creation',
    '',
  ])('none in %j', (reason) => {
    expect(latestDatapoint(reason)).toBeUndefined();
  });
});

describe('descriptionTokens', () => {
  it.each([
    { text: 'CPU high. pulumiscale:target=web pulumiscale:action=down', want: { target: 'web', action: 'down' } },
    { text: 'pulumiscale:target=worker', want: { target: 'worker' } },
    { text: 'Scale it (pulumiscale:target=web.v2).', want: { target: 'web.v2' } },
    { text: 'ends the sentence pulumiscale:target=web.', want: { target: 'web' } },
    { text: 'first wins: pulumiscale:target=web pulumiscale:target=worker', want: { target: 'web' } },
    { text: 'PulumiScale:Action=UP, pulumiscale:target=web', want: { target: 'web', action: 'UP' } },
    { text: 'glued: xpulumiscale:target=web', want: {} },
    { text: 'no tokens at all', want: {} },
    { text: null, want: {} },
  ])('$text', ({ text, want }) => {
    expect(descriptionTokens(text)).toEqual(want);
  });
});

describe('fromCloudWatch on the fixtures', () => {
  it('a single-metric alarm in ALARM becomes a signal keyed by its ARN, with its value and threshold', () => {
    const r = fromCloudWatch(alarm('alarm-single-metric'), noQuery, ctx(), { messageId: 'm-1' });
    expect(r).toMatchObject({ ended: [], commands: [], ignored: [], rejected: [] });
    expect(r.signals).toEqual([
      {
        id: 'arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-cpu-high',
        target: 'web',
        source: 'cloudwatch',
        direction: 'up',
        value: 87.5,
        threshold: 80,
        since: '2026-11-27T10:00:31.518Z',
        lastSeen: '2026-11-27T10:01:00.000Z',
        expiresAt: null,
        reason: 'alarm web-cpu-high',
        evidence: { alarmName: 'web-cpu-high', messageId: 'm-1', threshold: 80, comparisonOperator: 'GreaterThanThreshold', metricValue: 87.5 },
      },
    ]);
  });

  it('a metric-math alarm parses and takes the newest datapoint', () => {
    const a = alarm('alarm-metric-math');
    expect(a.Trigger?.Metrics?.map((m) => m.Id)).toEqual(['e1', 'backlog', 'tasks']);
    const [signal] = fromCloudWatch(a, noQuery, ctx()).signals;
    expect(signal).toMatchObject({
      id: 'arn:aws:cloudwatch:us-east-1:123456789012:alarm:worker-backlog-per-task',
      target: 'worker',
      direction: 'up',
      value: 152.25,
      threshold: 100,
      since: '2026-11-27T10:03:12.930Z',
    });
  });

  it.each([
    ['alarm-single-metric', 'alarm-single-metric-ok', 'web', 'alarm web-cpu-high went to OK: its signal ended', 42.1],
    ['alarm-metric-math', 'alarm-metric-math-ok', 'worker', 'alarm worker-backlog-per-task went to OK: its signal ended', 64],
  ])('the OK of %s (%s) ends the signal its ALARM started, recorded as ignored', (alarmFile, okFile, target, reason, value) => {
    const [started] = fromCloudWatch(alarm(alarmFile), noQuery, ctx()).signals;
    const r = fromCloudWatch(alarm(okFile), noQuery, ctx());
    expect(r.signals).toEqual([]);
    expect(r.commands).toEqual([]);
    expect(r.ended).toMatchObject([{ target, id: started?.id }]);
    // The resolution keeps when it happened, so a late retry of the ALARM is known as stale.
    expect(r.ended[0]?.at).toBe(alarm(okFile).StateChangeTime);
    expect(r.ignored).toEqual([expect.objectContaining({ kind: 'ignored', target, reason, source: 'cloudwatch', dryRun: false, evidence: expect.objectContaining({ metricValue: value }) as unknown })]);
  });

  it('INSUFFICIENT_DATA ends the signal too', () => {
    const a = { ...alarm('alarm-single-metric'), NewStateValue: 'INSUFFICIENT_DATA' as const, NewStateReason: 'Insufficient Data: 1 datapoint was unknown.' };
    const r = fromCloudWatch(a, noQuery, ctx());
    expect(r.signals).toEqual([]);
    expect(r.ended).toMatchObject([{ target: 'web', id: 'arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-cpu-high' }]);
    expect(r.ignored.map((e) => e.reason)).toEqual(['alarm web-cpu-high went to INSUFFICIENT_DATA: its signal ended']);
  });
});

describe('what a CloudWatch signal carries', () => {
  const base = alarm('alarm-single-metric');

  it.each<{ rule: string; ttl: number | undefined; expiresAt: string | null }>([
    { rule: 'no signalTTL (the default 0): it lasts until the alarm goes back to OK', ttl: undefined, expiresAt: null },
    { rule: 'signalTTL 0: it lasts until the alarm goes back to OK', ttl: 0, expiresAt: null },
    { rule: 'a signalTTL: it expires that long after it was last sent', ttl: 3_600_000, expiresAt: '2026-11-27T11:01:00.000Z' },
  ])('$rule', ({ ttl, expiresAt }) => {
    expect(fromCloudWatch(base, noQuery, sourceContext(NOW, ttl)).signals[0]).toMatchObject({ lastSeen: '2026-11-27T10:01:00.000Z', expiresAt });
  });

  it.each<{ rule: string; patch: Partial<CloudWatchAlarm>; value: number | null; threshold: number | null }>([
    { rule: 'no datapoint quoted (missing data treated as breaching): no value', patch: { NewStateReason: 'Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [Breaching].' }, value: null, threshold: 80 },
    { rule: 'an anomaly band has no fixed threshold: none', patch: { Trigger: { ThresholdMetricId: 'ad1', ComparisonOperator: 'GreaterThanUpperThreshold' } }, value: 87.5, threshold: null },
    { rule: 'no trigger at all: no threshold', patch: { Trigger: undefined }, value: 87.5, threshold: null },
  ])('$rule', ({ patch, value, threshold }) => {
    expect(fromCloudWatch({ ...base, ...patch }, noQuery, ctx()).signals[0]).toMatchObject({ value, threshold });
  });

  it('without a StateChangeTime, since is now', () => {
    const { StateChangeTime: _dropped, ...bare } = base;
    expect(fromCloudWatch(bare, noQuery, ctx()).signals[0]?.since).toBe('2026-11-27T10:01:00.000Z');
  });

  it('without an AlarmArn, the alarm name keys the signal, and its OK ends the same one', () => {
    const { AlarmArn: _a, ...inAlarm } = base;
    const { AlarmArn: _b, ...ok } = alarm('alarm-single-metric-ok');
    expect(fromCloudWatch(inAlarm, noQuery, ctx()).signals[0]?.id).toBe('alarm:web-cpu-high');
    expect(fromCloudWatch(ok, noQuery, ctx()).ended).toMatchObject([{ target: 'web', id: 'alarm:web-cpu-high' }]);
  });

  it('two alarms whose ARNs differ only past 256 characters are two signals', () => {
    const arn = (name: string) => ({ ...base, AlarmName: name, AlarmArn: `arn:aws:cloudwatch:us-east-1:123456789012:alarm:${name}` });
    const stem = `web-${'x'.repeat(240)}`;
    const ids = [`${stem}-cpu`, `${stem}-memory`].map((name) => fromCloudWatch(arn(name), noQuery, ctx()).signals[0]?.id ?? '');
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) expect(id.length).toBeLessThanOrEqual(256);
  });
});

describe('direction and target precedence: query, then description tokens, then the target default', () => {
  const base = alarm('alarm-single-metric');
  it.each([
    { rule: '?action=down overrides the description action', desc: 'pulumiscale:target=web pulumiscale:action=up', query: { dryRun: false, action: 'down' as const }, want: ['web', 'down'] },
    { rule: 'the description action overrides the target default', desc: 'pulumiscale:target=batch pulumiscale:action=up', query: noQuery, want: ['batch', 'up'] },
    { rule: 'no action anywhere: the target default', desc: 'pulumiscale:target=batch', query: noQuery, want: ['batch', 'down'] },
    { rule: '?target= overrides the description target', desc: 'pulumiscale:target=web', query: { dryRun: false, target: 'worker' }, want: ['worker', 'up'] },
    { rule: '?target= serves an alarm without a description', desc: null, query: { dryRun: false, target: 'web' }, want: ['web', 'up'] },
  ])('$rule', ({ desc, query, want }) => {
    const [signal] = fromCloudWatch(withDescription(base, desc), query, ctx()).signals;
    expect([signal?.target, signal?.direction]).toEqual(want);
  });

  it.each([
    { rule: 'no target named anywhere', desc: 'CPU high', code: 'PS_TARGET_MISSING' },
    { rule: 'a description naming an unknown target', desc: 'pulumiscale:target=nope', code: 'PS_TARGET_UNKNOWN' },
    { rule: 'a description naming an unknown action', desc: 'pulumiscale:target=web pulumiscale:action=sideways', code: 'PS_ACTION_INVALID' },
  ])('refuses $rule', ({ desc, code }) => {
    expect(codeOf(() => fromCloudWatch(withDescription(base, desc), noQuery, ctx()))).toBe(code);
  });
});

describe('?dryRun=true previews and changes nothing real', () => {
  it('an alarm in ALARM becomes a preview command of its step, clamped like an alert, and no signal', () => {
    const r = fromCloudWatch(alarm('alarm-single-metric'), { dryRun: true }, ctx(), { messageId: 'm-1' });
    expect(r.signals).toEqual([]);
    expect(r.commands).toEqual([
      {
        id: 'id-1',
        target: 'web',
        adjustment: { type: 'step', direction: 'up' },
        dryRun: true,
        source: 'cloudwatch',
        reason: 'alarm web-cpu-high in ALARM (dry run)',
        receivedAt: '2026-11-27T10:01:00.000Z',
        bounds: 'clamp',
        evidence: expect.objectContaining({ alarmName: 'web-cpu-high', messageId: 'm-1', metricValue: 87.5 }) as unknown,
      },
    ]);
  });

  it('an alarm back to OK ends no signal, and its event is a dry run that says so', () => {
    const r = fromCloudWatch(alarm('alarm-single-metric-ok'), { dryRun: true }, ctx());
    expect(r.ended).toEqual([]);
    expect(r.ignored.map((e) => [e.dryRun, e.reason])).toEqual([[true, 'alarm web-cpu-high went to OK (dry run): no signal ended']]);
  });
});

describe('parsing the alarm message', () => {
  it.each([
    { rule: 'text that is not JSON', text: 'ALARM: web-cpu-high', path: undefined },
    { rule: 'a JSON message that is not an alarm', text: '{"hello":"world"}', path: 'Message.AlarmName' },
    { rule: 'an unknown state', text: JSON.stringify({ ...fixture('cloudwatch/alarm-single-metric.json'), NewStateValue: 'BROKEN' }), path: 'Message.NewStateValue' },
  ])('refuses $rule with PS_PAYLOAD_INVALID', ({ text, path }) => {
    try {
      parseCloudWatchAlarmText(text);
      expect.unreachable();
    } catch (err) {
      expect((err as PulumiScaleError).code).toBe('PS_PAYLOAD_INVALID');
      if (path) expect((err as PulumiScaleError).details).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    }
  });

  it.each([
    ['sns-notification-single-alarm', 'alarm-single-metric'],
    ['sns-notification-single-ok', 'alarm-single-metric-ok'],
    ['sns-notification-math-alarm', 'alarm-metric-math'],
    ['sns-notification-math-ok', 'alarm-metric-math-ok'],
  ])('the envelope fixture %s carries the alarm fixture %s', (envelope, alarmFile) => {
    const env = fixture<{ Message: string }>(`cloudwatch/${envelope}.json`);
    expect(JSON.parse(env.Message)).toEqual(fixture(`cloudwatch/${alarmFile}.json`));
    expect(parseCloudWatchAlarmText(env.Message).AlarmName).toBeTruthy();
  });
});
