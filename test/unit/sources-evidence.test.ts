// Bounds on what senders write into the history: evidence, reasons and the target a refused
// alert is recorded under. A hostile or broken notification must cost a bounded number of
// bytes per event and add no history partition of its own.
import { describe, expect, it } from 'vitest';
import { fromAlertmanager, parseAlertmanagerPayload, type AlertmanagerPayload } from '../../src/sources/alertmanager.js';
import { fromCloudWatch, parseCloudWatchAlarm } from '../../src/sources/cloudwatch.js';
import { NO_TARGET, UNKNOWN_TARGET, refusalTarget } from '../../src/sources/common.js';
import { EVIDENCE_LIMITS, TRUNCATED_LABEL, boundedId, boundedLabels, clip, shared, sharedUrl } from '../../src/sources/evidence.js';
import { fixture } from '../support/sns.js';
import { noQuery, sourceContext } from '../support/sources.js';

const NOW = Date.parse('2026-11-27T10:00:00.000Z');
const ctx = () => sourceContext(NOW);

function notification(alerts: { labels: Record<string, string>; generatorURL?: string; fingerprint?: string }[]): AlertmanagerPayload {
  return parseAlertmanagerPayload({
    version: '4',
    receiver: 'pulumiscale',
    status: 'firing',
    alerts: alerts.map((a, i) => ({
      status: 'firing',
      annotations: {},
      startsAt: '2026-11-27T09:55:00Z',
      fingerprint: `fp${i}`,
      ...a,
    })),
  });
}

/** 1000 labels of 10 kB each, the routing labels last, as a hostile sender would order them. */
function hostileLabels(): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let i = 0; i < 1000; i++) labels[`label_${i}_${'k'.repeat(300)}`] = 'v'.repeat(10_000);
  return { ...labels, alertname: 'Hostile', pulumiscale_target: 'web' };
}

describe('clip', () => {
  it.each<[string, string, number, string]>([
    ['text within the bound is kept as is', 'web', 5, 'web'],
    ['text exactly at the bound is kept as is', 'abcde', 5, 'abcde'],
    ['longer text keeps max - 1 characters and ends with an ellipsis', 'abcdefgh', 5, 'abcd…'],
    ['a cut never splits a surrogate pair', 'abc😀def', 5, 'abc…'],
  ])('%s', (_rule, text, max, want) => {
    expect(clip(text, max)).toBe(want);
    expect(clip(text, max).length).toBeLessThanOrEqual(max);
  });
});

describe('boundedId', () => {
  const long = (tail: string) => `arn:aws:cloudwatch:us-east-1:123456789012:alarm:${'a'.repeat(250)}${tail}`;

  it.each<[string, string]>([
    ['an id within the bound is kept as is', '6a1c0e7f2b9d4c13'],
    ['an id exactly at the bound is kept as is', 'f'.repeat(EVIDENCE_LIMITS.text)],
  ])('%s', (_rule, id) => {
    expect(boundedId(id)).toBe(id);
  });

  it('a longer id is cut to the bound, keeping its start and a hash of the whole', () => {
    const id = boundedId(long('-up'));
    expect(id).toHaveLength(EVIDENCE_LIMITS.text);
    expect(id).toMatch(/^arn:aws:cloudwatch:us-east-1:123456789012:alarm:a+…#[0-9a-f]{16}$/);
    expect(boundedId(long('-up'))).toBe(id);
  });

  it('two ids that differ only past the bound stay two ids (clip would make them one)', () => {
    expect(clip(long('-up'))).toBe(clip(long('-down')));
    expect(boundedId(long('-up'))).not.toBe(boundedId(long('-down')));
  });
});

describe('boundedLabels', () => {
  it('keeps labels within the bounds as they are, without a marker', () => {
    const labels = { alertname: 'HighCPU', pulumiscale_target: 'web', instance: 'web-1:9100' };
    expect(boundedLabels(labels)).toStrictEqual(labels);
  });

  it.each<[string, Record<string, string>, number]>([
    ['more labels than the bound: the first ones are kept, the marker takes the last slot', Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`l${i}`, 'x'])), 37],
    ['a value over the bound is cut and marked', { long: 'v'.repeat(1000) }, 0],
    ['a name over the bound is cut and marked', { ['k'.repeat(1000)]: 'v' }, 0],
  ])('%s', (_rule, labels, dropped) => {
    const out = boundedLabels(labels);
    expect(Object.keys(out).length).toBeLessThanOrEqual(EVIDENCE_LIMITS.labels);
    for (const [k, v] of Object.entries(out)) {
      expect(k.length).toBeLessThanOrEqual(EVIDENCE_LIMITS.text);
      expect(v.length).toBeLessThanOrEqual(EVIDENCE_LIMITS.text);
    }
    expect(out[TRUNCATED_LABEL]).toMatch(new RegExp(`^${dropped} of ${Object.keys(labels).length} labels dropped`));
  });

  it('keeps the labels named first even when they come last', () => {
    const out = boundedLabels(hostileLabels(), ['alertname', 'pulumiscale_target']);
    expect(out).toMatchObject({ alertname: 'Hostile', pulumiscale_target: 'web' });
  });

  it('a label named __proto__ stays a label', () => {
    const labels = JSON.parse('{"__proto__": "x", "a": "b"}') as Record<string, string>;
    const out = boundedLabels(labels);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__', 'a']);
  });
});

describe('a hostile alert (1000 labels of 10 kB) costs a bounded event', () => {
  it('its signal keeps at most 64 clipped labels, the routing ones among them, and marks the cut', () => {
    const result = fromAlertmanager(notification([{ labels: hostileLabels(), generatorURL: `http://x/${'g'.repeat(100_000)}` }]), noQuery, ctx());
    const evidence = result.signals[0]?.evidence;
    expect(Object.keys(evidence?.labels ?? {})).toHaveLength(EVIDENCE_LIMITS.labels);
    expect(evidence?.labels).toMatchObject({ alertname: 'Hostile', pulumiscale_target: 'web', [TRUNCATED_LABEL]: '939 of 1002 labels dropped, 61 cut to 256 characters' });
    expect(evidence?.generatorURL).toHaveLength(EVIDENCE_LIMITS.url);
    // 64 labels of at most 2 × 256 characters, a URL of 2048, a few names: well under 40 kB.
    expect(JSON.stringify(result.signals[0]).length).toBeLessThan(40_000);
  });

  it('its id stays within the bound, whether a 10 kB fingerprint or a hash of its labels', () => {
    const labels = hostileLabels();
    const result = fromAlertmanager(notification([{ labels, fingerprint: 'f'.repeat(10_000) }, { labels: { ...labels, alertname: 'Other' }, fingerprint: '' }]), noQuery, ctx());
    expect(result.signals.map((s) => s.id.length <= EVIDENCE_LIMITS.text)).toEqual([true, true]);
    expect(result.signals[1]?.id).toMatch(/^labels:[0-9a-f]{16}$/);
  });

  it('a refused one is recorded under the bucket with a bounded reason that quotes the name it asked for', () => {
    const madeUp = `x${'y'.repeat(5000)}`;
    const result = fromAlertmanager(
      notification([{ labels: { alertname: 'Good', pulumiscale_target: 'web' } }, { labels: { ...hostileLabels(), pulumiscale_target: madeUp } }]),
      noQuery,
      ctx(),
    );
    const refused = result.ignored[0];
    expect(refused?.target).toBe(UNKNOWN_TARGET);
    expect(refused?.reason).toContain(`names target "${madeUp.slice(0, EVIDENCE_LIMITS.quoted - 1)}…"`);
    expect(refused?.reason.length).toBeLessThan(600);
    expect(result.rejected[0]?.message.length).toBeLessThan(400);
    expect(JSON.stringify(refused).length).toBeLessThan(40_000);
  });
});

describe('the target a refused alert is recorded under', () => {
  it.each<[string, string | undefined, string]>([
    ['a configured name is kept (refused for another reason, e.g. its action)', 'web', 'web'],
    ['a made-up name goes to the unknown bucket', 'made-up-1', UNKNOWN_TARGET],
    ['a name that only looks like a bucket goes to the unknown bucket too', '(none)x', UNKNOWN_TARGET],
    ['no name goes to the none bucket', undefined, NO_TARGET],
    ['an empty name goes to the none bucket', '', NO_TARGET],
  ])('%s', (_rule, asked, want) => {
    expect(refusalTarget(asked, ctx())).toBe(want);
  });

  it('50 made-up names in one notification make one bucket, not 50 targets', () => {
    const alerts = [{ labels: { pulumiscale_target: 'web' } }, ...Array.from({ length: 50 }, (_, i) => ({ labels: { pulumiscale_target: `made-up-${i}` } }))];
    const result = fromAlertmanager(notification(alerts), noQuery, ctx());
    expect(result.rejected).toHaveLength(50);
    expect(new Set(result.ignored.map((e) => e.target))).toEqual(new Set([UNKNOWN_TARGET]));
  });
});

describe('CloudWatch evidence', () => {
  it('clips an alarm name in its evidence and its reason, and bounds its id', () => {
    const raw = fixture('cloudwatch/alarm-single-metric.json');
    const AlarmName = 'a'.repeat(10_000);
    const alarm = parseCloudWatchAlarm({ ...raw, AlarmName, AlarmArn: `arn:aws:cloudwatch:us-east-1:123456789012:alarm:${AlarmName}`, AlarmDescription: 'pulumiscale:target=web' });
    const [signal] = fromCloudWatch(alarm, noQuery, ctx(), { messageId: 'm'.repeat(10_000) }).signals;
    expect(signal?.evidence.alarmName).toHaveLength(EVIDENCE_LIMITS.text);
    expect(signal?.evidence.messageId).toHaveLength(EVIDENCE_LIMITS.text);
    expect(signal?.reason.length).toBeLessThan(EVIDENCE_LIMITS.text + 20);
    expect(signal?.id).toHaveLength(EVIDENCE_LIMITS.text);
  });
});

describe('shared strings', () => {
  it('give back the text they were given, short or long, before and after the set starts over', () => {
    const texts = Array.from({ length: 10_000 }, (_, i) => `value-${i % 5_000}`);
    expect(texts.map((t) => shared(t))).toEqual(texts);
    const long = 'x'.repeat(EVIDENCE_LIMITS.text + 1);
    expect(shared(long)).toBe(long);
    expect(shared('')).toBe('');
  });

  it('give back URLs clipped to their own bound, long ones included', () => {
    const url = (n: number) => `http://prometheus:9090/graph?g0.expr=${'a'.repeat(n)}`;
    expect(sharedUrl(url(500))).toBe(url(500));
    expect(sharedUrl(url(5_000))).toBe(clip(url(5_000), EVIDENCE_LIMITS.url));
    expect(sharedUrl(url(5_000))).toHaveLength(EVIDENCE_LIMITS.url);
  });

  it('leave the labels of many alerts as each alert sent them', () => {
    const labels = (i: number) => ({ alertname: 'HighLoad', instance: `web-${i}:9100`, job: i % 2 === 0 ? 'node' : 'api' });
    const kept = Array.from({ length: 6_000 }, (_, i) => boundedLabels(labels(i)));
    expect(kept).toEqual(Array.from({ length: 6_000 }, (_, i) => labels(i)));
  });
});
