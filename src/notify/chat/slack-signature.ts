/**
 * Slack request signatures (scheme `v0`): Slack signs `v0:<timestamp>:<raw body>` with the app's
 * signing secret using HMAC-SHA256 and sends the hex digest in `X-Slack-Signature: v0=<hex>`,
 * the timestamp (unix seconds) in `X-Slack-Request-Timestamp`.
 *
 * The timestamp is part of what is signed, so bounding its age bounds how long a captured
 * request can be replayed. The body must be the bytes as received: re-encoding a parsed form
 * changes them and breaks the signature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a request's timestamp may be from our clock, either way, before it is refused. */
export const SLACK_MAX_SKEW_MS = 5 * 60_000;

/** The outcome of {@link verifySlackSignature}: accepted, or refused with a reason for the log. */
export type SlackVerification = { ok: true } | { ok: false; reason: string };

/** What {@link verifySlackSignature} checks: the secret, both headers as received, the raw body and the time. */
export interface SlackSignatureInput {
  /** The app's signing secret. */
  signingSecret: string;
  /** The `X-Slack-Request-Timestamp` header, unix seconds. */
  timestamp: string | undefined;
  /** The `X-Slack-Signature` header, `v0=<64 hex digits>`. */
  signature: string | undefined;
  /** The request body exactly as received. */
  rawBody: string;
  /** Our clock, epoch milliseconds. */
  now: number;
}

// Whole seconds only: a sign, fraction or exponent is not something Slack sends, and accepting
// it would let two header spellings stand for one signed value.
const TIMESTAMP = /^\d{1,12}$/;
const SIGNATURE = /^v0=([0-9a-fA-F]{64})$/;

/**
 * Verifies a request from Slack. Refuses a missing or malformed header, a timestamp more than
 * {@link SLACK_MAX_SKEW_MS} from `now`, and a signature that does not match; the digests are
 * compared in constant time so the comparison leaks nothing about where they differ.
 */
export function verifySlackSignature(input: SlackSignatureInput): SlackVerification {
  const { signingSecret, timestamp, signature, rawBody, now } = input;
  // An empty secret is a configuration mistake, and anyone could sign with it.
  if (signingSecret === '') return { ok: false, reason: 'no signing secret configured' };
  if (timestamp === undefined || timestamp === '') return { ok: false, reason: 'missing X-Slack-Request-Timestamp header' };
  if (signature === undefined || signature === '') return { ok: false, reason: 'missing X-Slack-Signature header' };
  if (!TIMESTAMP.test(timestamp)) return { ok: false, reason: 'malformed X-Slack-Request-Timestamp header (expected unix seconds)' };

  // Checked before the HMAC: a stale request is refused whatever it carries.
  const skew = Math.abs(now - Number(timestamp) * 1000);
  if (skew > SLACK_MAX_SKEW_MS) {
    return { ok: false, reason: `X-Slack-Request-Timestamp is ${Math.round(skew / 1000)}s from now (at most ${SLACK_MAX_SKEW_MS / 1000}s allowed)` };
  }

  const m = SIGNATURE.exec(signature);
  if (!m) return { ok: false, reason: 'malformed X-Slack-Signature header (expected v0=<64 hex digits>)' };
  // Both sides are 32 bytes here (the pattern fixes the length), as timingSafeEqual requires.
  const given = Buffer.from(m[1] as string, 'hex');
  const expected = createHmac('sha256', signingSecret).update(`v0:${timestamp}:${rawBody}`, 'utf8').digest();
  if (!timingSafeEqual(given, expected)) return { ok: false, reason: 'X-Slack-Signature does not match' };
  return { ok: true };
}
