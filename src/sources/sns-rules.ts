/**
 * The SNS protocol rules the CloudWatch route applies after parsing: raw delivery is unsigned,
 * the topic must be listed, a notification is taken once and only while its id can still be
 * remembered, and a SubscribeURL is checked before anyone decides to open it.
 *
 * Pure like every source: the clock and the config come in as arguments, the rules throw typed
 * errors or return decisions as data, and the route (http/webhooks.ts) only sequences them with
 * the signature check and the store.
 */
import { PulumiScaleError } from '../errors.js';
import { checkSnsUrl, type SnsConfirmation, type SnsMessage, type SnsNotification } from './sns.js';

/** The part of `webhooks.cloudwatch` these rules read. */
export interface SnsRulesConfig {
  /** Whether signatures are verified; when on, the topic list is always enforced. */
  readonly verifySignature: boolean;
  /** Accepted TopicArns. */
  readonly topicArns: readonly string[];
  /** Whether a SubscriptionConfirmation is confirmed by the daemon itself. */
  readonly autoConfirm: boolean;
  /** How long a MessageId is remembered, in ms; older notifications are refused. */
  readonly replayWindow: number;
}

/**
 * Refuses a raw-delivery body (a bare alarm, no envelope) unless verification is off: raw
 * delivery strips the envelope and with it the signature, so nothing proves where it came from.
 */
export function checkRawDelivery(cfg: Pick<SnsRulesConfig, 'verifySignature'>): void {
  if (cfg.verifySignature) {
    throw new PulumiScaleError(
      'PS_WEBHOOK_SIGNATURE',
      'not an SNS envelope: raw message delivery is unsigned; turn it off on the subscription (or set webhooks.cloudwatch.verifySignature: false)',
    );
  }
}

/**
 * Throws PS_TOPIC_UNKNOWN unless the message's TopicArn is listed. SNS signs every topic's
 * messages, an attacker's own topic included, so with verification on an empty list accepts
 * nothing; with it off, the list is enforced only when one is given.
 */
export function checkTopic(msg: SnsMessage, cfg: Pick<SnsRulesConfig, 'verifySignature' | 'topicArns'>): void {
  if (!cfg.verifySignature && cfg.topicArns.length === 0) return;
  if (!cfg.topicArns.includes(msg.TopicArn)) {
    throw new PulumiScaleError('PS_TOPIC_UNKNOWN', `TopicArn ${msg.TopicArn} is not listed in webhooks.cloudwatch.topicArns`);
  }
}

/**
 * Refuses a message sent longer than `replayWindow` ms before `now` (PS_REPLAYED), or whose
 * Timestamp is not a date (PS_PAYLOAD_INVALID). Deduplication only works while the id is
 * remembered, so an older message cannot be told from a replay of a captured one.
 */
export function checkFreshness(msg: SnsMessage, now: number, replayWindow: number): void {
  const sentAt = Date.parse(msg.Timestamp);
  if (Number.isNaN(sentAt)) throw new PulumiScaleError('PS_PAYLOAD_INVALID', `Timestamp ${JSON.stringify(msg.Timestamp)} is not a date`);
  if (now - sentAt > replayWindow) {
    throw new PulumiScaleError('PS_REPLAYED', `the SNS message ${msg.MessageId} is older than webhooks.cloudwatch.replayWindow`);
  }
}

/** How an accepted notification is remembered for replay detection. */
export interface DeliveryRecord {
  /** The store key of the delivery (`sns:<MessageId>`; SNS keeps the id across its retries). */
  key: string;
  /** Until when it is remembered (ISO): `now + replayWindow`, the age past which it is refused anyway. */
  expiresAt: string;
}

/** The delivery record of a notification accepted at `now`. */
export function deliveryRecord(msg: SnsNotification, now: number, replayWindow: number): DeliveryRecord {
  return { key: `sns:${msg.MessageId}`, expiresAt: new Date(now + replayWindow).toISOString() };
}

/** The refusal of a notification whose delivery record already exists. */
export function replayedError(msg: SnsNotification): PulumiScaleError {
  return new PulumiScaleError('PS_REPLAYED', `the SNS message ${msg.MessageId} was already accepted`);
}

/** What to do with a (verified) SubscriptionConfirmation. */
export type ConfirmationDecision =
  /** GET `url` to confirm the subscription. */
  | { action: 'confirm'; url: URL }
  /** Leave it to an operator: log `url` for them to open. */
  | { action: 'await'; url: URL };

/**
 * Decides how a SubscriptionConfirmation is answered. The SubscribeURL passes the same host
 * check as certificates (any path) even when nobody will open it automatically, so a forged
 * one is refused (PS_CERT_URL_REJECTED) and never reaches the logs as a link to follow.
 */
export function confirmationDecision(msg: SnsConfirmation, cfg: Pick<SnsRulesConfig, 'autoConfirm'>): ConfirmationDecision {
  const url = checkSnsUrl(msg.SubscribeURL, 'SubscribeURL');
  return cfg.autoConfirm ? { action: 'confirm', url } : { action: 'await', url };
}
