/**
 * Outbound notification formats: one {@link ScalingEvent} becomes the HTTP request a destination
 * expects (a Slack incoming webhook, a Teams Workflows webhook, a Discord webhook, or a generic
 * signed webhook).
 *
 * Every format is pure (no I/O, no clock: `now` comes in the context) and keeps within its
 * platform's documented limits whatever the event carries, because a platform refuses the whole
 * message when one text is too long, and an alert's reason or its number of signals is the
 * sender's choice.
 */
import type { ScalingEvent } from '../../types.js';
import { discordMessage } from './discord.js';
import { slackMessage } from './slack.js';
import { teamsMessage } from './teams.js';
import { webhookMessage } from './webhook.js';

/** The kinds of notification destination. */
export type DestinationType = 'slack' | 'teams' | 'discord' | 'webhook';

/** What a format needs besides the event. */
export interface FormatContext {
  /** The daemon's public base URL (e.g. https://scaler.example.com), for links to the history; null: no links. */
  publicUrl: string | null;
  /** The destination's secret (webhook type signs with it); null when none. */
  secret: string | null;
  /** Now, epoch ms (the webhook's timestamp header). */
  now: number;
}

/** A request ready to POST: its headers (content-type included) and its body. */
export interface OutgoingMessage {
  headers: Record<string, string>;
  body: string;
}

/** A format: the request for one event. */
export type Format = (event: ScalingEvent, ctx: FormatContext) => OutgoingMessage;

/** The format of each destination type. */
export const formats: Record<DestinationType, Format> = {
  slack: slackMessage,
  teams: teamsMessage,
  discord: discordMessage,
  webhook: webhookMessage,
};
