/**
 * The generic webhook format: the {@link ScalingEvent} itself as the JSON body, for receivers
 * that want the data rather than a chat message, signed when the destination has a secret.
 *
 * The signature covers the timestamp as well as the body (`"<timestamp>.<body>"`), so a captured
 * request cannot be replayed later with a fresh timestamp: a receiver checks the signature, then
 * that the timestamp is recent.
 */
import { createHmac } from 'node:crypto';
import type { ScalingEvent } from '../../types.js';
import type { FormatContext, OutgoingMessage } from './index.js';

/** The header with the send time, in Unix seconds. */
export const TIMESTAMP_HEADER = 'X-PulumiScale-Timestamp';
/** The header with the signature, `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'X-PulumiScale-Signature';

/**
 * The signature header's value for `body` sent at `timestamp` (Unix seconds): `sha256=` and the
 * hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`. A receiver recomputes it from
 * the raw body (not a re-serialised one) and compares in constant time.
 */
export function signWebhook(secret: string, timestamp: number | string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The generic webhook request for `event`: the event as JSON, timestamped, signed with a secret. */
export function webhookMessage(event: ScalingEvent, ctx: FormatContext): OutgoingMessage {
  const body = JSON.stringify(event);
  const timestamp = Math.floor(ctx.now / 1000);
  const headers: Record<string, string> = { 'content-type': 'application/json', [TIMESTAMP_HEADER]: String(timestamp) };
  // An empty secret signs nothing worth checking; it is treated as none rather than as a key.
  if (ctx.secret) headers[SIGNATURE_HEADER] = signWebhook(ctx.secret, timestamp, body);
  return { headers, body };
}
