import { describe, expect, it } from 'vitest';
import { PulumiScaleError, type ErrorCode } from '../../src/errors.js';
import {
  checkFreshness,
  checkRawDelivery,
  checkTopic,
  confirmationDecision,
  deliveryRecord,
  replayedError,
} from '../../src/sources/sns-rules.js';
import { parseSnsMessage, type SnsConfirmation, type SnsNotification } from '../../src/sources/sns.js';
import { TEST_TOPIC_ARN, fixture } from '../support/sns.js';

const DAY = 86_400_000;
const notification = (patch: Record<string, unknown> = {}) =>
  parseSnsMessage({ ...fixture<Record<string, unknown>>('cloudwatch/sns-notification-single-alarm.json'), ...patch }) as SnsNotification;
const confirmation = (patch: Record<string, unknown> = {}) =>
  parseSnsMessage({ ...fixture<Record<string, unknown>>('cloudwatch/sns-subscription-confirmation.json'), ...patch }) as SnsConfirmation;

/** The registry code a rule throws, or 'none'. */
function codeOf(rule: () => unknown): ErrorCode | 'none' {
  try {
    rule();
    return 'none';
  } catch (err) {
    if (err instanceof PulumiScaleError) return err.code;
    throw err;
  }
}

describe('checkRawDelivery: an unsigned raw-delivery body is taken only with verification off', () => {
  it.each([
    { verifySignature: true, want: 'PS_WEBHOOK_SIGNATURE' },
    { verifySignature: false, want: 'none' },
  ] as const)('verifySignature $verifySignature -> $want', ({ verifySignature, want }) => {
    expect(codeOf(() => checkRawDelivery({ verifySignature }))).toBe(want);
  });
});

describe('checkTopic', () => {
  const other = 'arn:aws:sns:eu-west-1:999999999999:elsewhere';
  it.each([
    { rule: 'a listed topic is accepted', verifySignature: true, topicArns: [TEST_TOPIC_ARN], topic: TEST_TOPIC_ARN, want: 'none' },
    { rule: 'an unlisted topic is refused', verifySignature: true, topicArns: [TEST_TOPIC_ARN], topic: other, want: 'PS_TOPIC_UNKNOWN' },
    { rule: 'with verification on, an empty list accepts nothing', verifySignature: true, topicArns: [], topic: TEST_TOPIC_ARN, want: 'PS_TOPIC_UNKNOWN' },
    { rule: 'with verification off, an empty list accepts any topic', verifySignature: false, topicArns: [], topic: other, want: 'none' },
    { rule: 'with verification off, a given list is still enforced', verifySignature: false, topicArns: [TEST_TOPIC_ARN], topic: other, want: 'PS_TOPIC_UNKNOWN' },
  ] as const)('$rule', ({ verifySignature, topicArns, topic, want }) => {
    expect(codeOf(() => checkTopic(notification({ TopicArn: topic }), { verifySignature, topicArns }))).toBe(want);
  });
});

describe('checkFreshness: a message is taken only while its id can be remembered', () => {
  const sent = '2026-11-27T10:00:00.000Z';
  const at = Date.parse(sent);
  it.each([
    { rule: 'just sent', now: at, want: 'none' },
    { rule: 'exactly one window old (the bound is inclusive)', now: at + DAY, want: 'none' },
    { rule: 'a millisecond past the window', now: at + DAY + 1, want: 'PS_REPLAYED' },
    { rule: 'dated a little ahead of our clock (skew)', now: at - 5_000, want: 'none' },
  ] as const)('$rule -> $want', ({ now, want }) => {
    expect(codeOf(() => checkFreshness(notification({ Timestamp: sent }), now, DAY))).toBe(want);
  });

  it('a Timestamp that is not a date is PS_PAYLOAD_INVALID', () => {
    expect(codeOf(() => checkFreshness(notification({ Timestamp: 'yesterday' }), at, DAY))).toBe('PS_PAYLOAD_INVALID');
  });
});

describe('deliveryRecord and replayedError', () => {
  it('remembers sns:<MessageId> until one replay window from now', () => {
    const msg = notification({ MessageId: 'm-1' });
    expect(deliveryRecord(msg, Date.parse('2026-11-27T10:00:00.000Z'), DAY)).toEqual({ key: 'sns:m-1', expiresAt: '2026-11-28T10:00:00.000Z' });
    expect(replayedError(msg).code).toBe('PS_REPLAYED');
  });
});

describe('confirmationDecision', () => {
  it.each([
    { autoConfirm: true, action: 'confirm' },
    { autoConfirm: false, action: 'await' },
  ] as const)('autoConfirm $autoConfirm -> $action, with the checked SubscribeURL', ({ autoConfirm, action }) => {
    const msg = confirmation();
    expect(confirmationDecision(msg, { autoConfirm })).toEqual({ action, url: new URL(msg.SubscribeURL) });
  });

  it.each([true, false])('a SubscribeURL off the SNS hosts is refused (autoConfirm %s): it is not even logged as a link', (autoConfirm) => {
    const msg = confirmation({ SubscribeURL: 'https://sns.s3-ap-southeast-2.amazonaws.com/?Action=ConfirmSubscription' });
    expect(codeOf(() => confirmationDecision(msg, { autoConfirm }))).toBe('PS_CERT_URL_REJECTED');
  });
});
