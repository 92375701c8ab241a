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
  it('a single-metric alarm in ALARM becomes an intent with its evidence', () => {
    const r = fromCloudWatch(alarm('alarm-single-metric'), noQuery, ctx(), { messageId: 'm-1' });
    expect(r.kind).toBe('intent');
    if (r.kind !== 'intent') return;
    expect(r.intent).toMatchObject({
      target: 'web',
      adjustment: { type: 'step', direction: 'up' },
      source: 'cloudwatch',
      bounds: 'clamp',
      dryRun: false,
      reason: 'alarm web-cpu-high in ALARM',
      receivedAt: '2026-11-27T10:01:00.000Z',
    });
    expect(r.intent.evidence).toEqual({
      alarmName: 'web-cpu-high',
      messageId: 'm-1',
      threshold: 80,
      comparisonOperator: 'GreaterThanThreshold',
      metricValue: 87.5,
    });
  });

  it('a metric-math alarm parses and takes the newest datapoint', () => {
    const a = alarm('alarm-metric-math');
    expect(a.Trigger?.Metrics?.map((m) => m.Id)).toEqual(['e1', 'backlog', 'tasks']);
    const r = fromCloudWatch(a, noQuery, ctx());
    expect(r.kind === 'intent' && r.intent.target).toBe('worker');
    expect(r.kind === 'intent' && r.intent.evidence).toMatchObject({ threshold: 100, metricValue: 152.25 });
  });

  it.each([
    ['alarm-single-metric-ok', 'web', 'alarm web-cpu-high went to OK', 42.1],
    ['alarm-metric-math-ok', 'worker', 'alarm worker-backlog-per-task went to OK', 64],
  ])('%s is recorded as ignored and starts nothing', (name, target, reason, value) => {
    const r = fromCloudWatch(alarm(name), noQuery, ctx());
    expect(r.kind).toBe('ignored');
    expect(r.kind === 'ignored' && r.event).toMatchObject({ kind: 'ignored', target, reason, source: 'cloudwatch', evidence: { metricValue: value } });
  });

  it('INSUFFICIENT_DATA is ignored too', () => {
    const a = { ...alarm('alarm-single-metric'), NewStateValue: 'INSUFFICIENT_DATA' as const, NewStateReason: 'Insufficient Data: 1 datapoint was unknown.' };
    const r = fromCloudWatch(a, noQuery, ctx());
    expect(r.kind === 'ignored' && r.event.reason).toBe('alarm web-cpu-high went to INSUFFICIENT_DATA');
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
    const r = fromCloudWatch(withDescription(base, desc), query, ctx());
    expect(r.kind === 'intent' ? [r.intent.target, r.intent.adjustment.type === 'step' && r.intent.adjustment.direction] : null).toEqual(want);
  });

  it('?dryRun=true makes the intent a dry run', () => {
    const r = fromCloudWatch(base, { dryRun: true }, ctx());
    expect(r.kind === 'intent' && r.intent.dryRun).toBe(true);
  });

  it.each([
    { rule: 'no target named anywhere', desc: 'CPU high', code: 'PS_TARGET_MISSING' },
    { rule: 'a description naming an unknown target', desc: 'pulumiscale:target=nope', code: 'PS_TARGET_UNKNOWN' },
    { rule: 'a description naming an unknown action', desc: 'pulumiscale:target=web pulumiscale:action=sideways', code: 'PS_ACTION_INVALID' },
  ])('refuses $rule', ({ desc, code }) => {
    expect(codeOf(() => fromCloudWatch(withDescription(base, desc), noQuery, ctx()))).toBe(code);
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
