/**
 * The inbound chat payloads, checked and reduced to what PulumiScale uses: a Slack slash command
 * (a form body), a Slack button press (`block_actions`, JSON in the form field `payload`), and a
 * Discord interaction (JSON: a PING, our slash command, or a button press).
 *
 * Parse only after the request's signature verified: the schemas check shape, not origin.
 * Unknown extra fields are tolerated (both platforms add fields over time); a payload of the
 * wrong shape is PS_PAYLOAD_INVALID with zod's issues.
 */
import { z } from 'zod';
import { parseJsonText, parseWith } from '../../sources/common.js';
import type { Actor } from '../../types.js';

/** A chat user as the platform identified them: the user id and the name shown for it. */
export interface ChatUser {
  id: string;
  name: string;
}

/** A Slack slash command, as Slack posts it (form-encoded). */
export interface SlackSlashCommand {
  /** The command typed, e.g. `/pulumiscale`. */
  command: string;
  /** The text after the command; may be empty. */
  text: string;
  /** Who typed it (the name falls back to the id when Slack sent none). */
  user: ChatUser;
  teamId: string | null;
  channelId: string | null;
  /** Where to post the reply (valid for 30 minutes, up to 5 replies). */
  responseUrl: string;
  triggerId: string | null;
}

/** A press of a button of ours in a Slack message (`block_actions`). */
export interface SlackInteraction {
  type: 'block_actions';
  user: ChatUser;
  /** The actions taken; a button press is one, its `value` what the button carried. */
  actions: { actionId: string; value: string | null }[];
  /** Where to post the reply, or to replace the message the button was in. */
  responseUrl: string;
  triggerId: string | null;
  channelId: string | null;
  /** The `ts` of the message the button was in. */
  messageTs: string | null;
}

/** Fields every Discord interaction but a PING carries, needed to answer it later. */
interface DiscordInteractionBase {
  /** The interaction's id. */
  id: string;
  /** The token for follow-up messages (valid for 15 minutes). */
  token: string;
  applicationId: string;
  user: ChatUser;
  guildId: string | null;
  channelId: string | null;
}

/** A Discord interaction: Discord's endpoint check, our slash command, or a button press. */
export type DiscordInteraction =
  | { kind: 'ping' }
  | (DiscordInteractionBase & {
      kind: 'command';
      /** The command's name, e.g. `pulumiscale`. */
      name: string;
      /** The command text, as if typed after a Slack slash command. */
      text: string;
    })
  | (DiscordInteractionBase & {
      kind: 'component';
      /** The button's `custom_id`. */
      customId: string;
      /** The id of the message the button was in. */
      messageId: string | null;
    });

/** A Discord slash command interaction. */
export type DiscordCommand = Extract<DiscordInteraction, { kind: 'command' }>;
/** A Discord button press. */
export type DiscordComponent = Extract<DiscordInteraction, { kind: 'component' }>;

const id = z.string().min(1);
// Names below use `||`, not `??`: an empty name is no name, and the id stands in for it.
// The reply goes there, so only https: a signed payload is trusted, but a plain-http reply
// would carry the outcome in the clear.
const responseUrl = z.url({ protocol: /^https$/ });

const slashCommandSchema = z
  .object({
    command: z.string().min(1),
    text: z.string(),
    user_id: id,
    user_name: z.string().optional(),
    team_id: z.string().optional(),
    channel_id: z.string().optional(),
    response_url: responseUrl,
    trigger_id: z.string().optional(),
  })
  .transform(
    (v): SlackSlashCommand => ({
      command: v.command,
      text: v.text,
      user: { id: v.user_id, name: v.user_name || v.user_id },
      teamId: v.team_id ?? null,
      channelId: v.channel_id ?? null,
      responseUrl: v.response_url,
      triggerId: v.trigger_id ?? null,
    }),
  );

const SLASH_FIELDS = ['command', 'text', 'user_id', 'user_name', 'team_id', 'channel_id', 'response_url', 'trigger_id'] as const;

/** Parses a Slack slash command from the raw form body; throws PS_PAYLOAD_INVALID when it is not one. */
export function parseSlackSlashCommand(rawBody: string): SlackSlashCommand {
  const form = new URLSearchParams(rawBody);
  // Only the fields we use, each from its first occurrence: a repeated field does not turn
  // into an array, and an absent one stays absent for the schema to report.
  const fields: Record<string, string> = {};
  for (const name of SLASH_FIELDS) {
    const value = form.get(name);
    if (value !== null) fields[name] = value;
  }
  return parseWith(slashCommandSchema, fields, 'the Slack slash command');
}

const slackInteractionSchema = z
  .object({
    type: z.literal('block_actions'),
    user: z.object({ id, username: z.string().optional(), name: z.string().optional() }),
    actions: z.array(z.object({ action_id: z.string().min(1), value: z.string().optional() })).min(1),
    response_url: responseUrl,
    trigger_id: z.string().optional(),
    channel: z.object({ id: z.string() }).optional(),
    container: z.object({ message_ts: z.string().optional() }).optional(),
  })
  .transform(
    (v): SlackInteraction => ({
      type: v.type,
      user: { id: v.user.id, name: v.user.username || v.user.name || v.user.id },
      actions: v.actions.map((a) => ({ actionId: a.action_id, value: a.value ?? null })),
      responseUrl: v.response_url,
      triggerId: v.trigger_id ?? null,
      channelId: v.channel?.id ?? null,
      messageTs: v.container?.message_ts ?? null,
    }),
  );

/**
 * Parses a Slack interaction from the raw form body (`payload=<JSON>`). Only `block_actions`
 * (a button press) is accepted; throws PS_PAYLOAD_INVALID otherwise.
 */
export function parseSlackInteraction(rawBody: string): SlackInteraction {
  const payload = new URLSearchParams(rawBody).get('payload');
  const json = parseJsonText(payload ?? '', 'the Slack interaction payload (form field "payload")');
  return parseWith(slackInteractionSchema, json, 'the Slack interaction');
}

// Discord's interaction types (PING, APPLICATION_COMMAND, MESSAGE_COMPONENT) and the option
// types that nest others (SUB_COMMAND, SUB_COMMAND_GROUP).
const PING = 1;
const APPLICATION_COMMAND = 2;
const MESSAGE_COMPONENT = 3;
const SUB_COMMAND = 1;
const SUB_COMMAND_GROUP = 2;

// Discord nests options at most two deep (group, then subcommand, then values) and allows 25
// per level, so the schema spells the levels out instead of recursing.
const valueOption = z.object({ name: z.string().min(1), type: z.number().int(), value: z.union([z.string(), z.number(), z.boolean()]) });
const subcommand = z.object({ name: z.string().min(1), type: z.literal(SUB_COMMAND), options: z.array(valueOption).max(25).optional() });
const group = z.object({ name: z.string().min(1), type: z.literal(SUB_COMMAND_GROUP), options: z.array(subcommand).max(25).optional() });
const option = z.union([group, subcommand, valueOption]);
/** One option of a Discord slash command: a value, a subcommand or a subcommand group. */
export type DiscordOption = z.output<typeof option>;

// Options whose value is the text itself, written without the option's name: the free-text
// `command` option of `/pulumiscale command:<text>`, and the slots a subcommand-style
// registration would name (`/pulumiscale scale target:web to:3` reads "scale web to 3").
const BARE_OPTIONS = new Set(['command', 'text', 'target', 'direction']);

/**
 * The command text of a Discord slash command's options, as it would be typed on Slack:
 * subcommands and groups give their name, a `command`/`text`/`target`/`direction` option its
 * value, a true boolean its name (`dry-run`), a false one nothing, any other its name and value.
 */
export function discordCommandText(options: readonly DiscordOption[]): string {
  const words: string[] = [];
  for (const o of options) {
    if (!('value' in o)) {
      words.push(o.name);
      if (o.options) words.push(discordCommandText(o.options));
    } else if (typeof o.value === 'boolean') {
      if (o.value) words.push(o.name);
    } else if (BARE_OPTIONS.has(o.name)) {
      words.push(String(o.value));
    } else {
      words.push(o.name, String(o.value));
    }
  }
  return words.filter((w) => w.trim() !== '').join(' ');
}

const discordUser = z.object({ id, username: z.string().optional() });

// In a server the user is under `member.user`; in a direct message, under `user`.
const interactionBase = {
  id,
  token: z.string().min(1),
  application_id: id,
  guild_id: z.string().optional(),
  channel_id: z.string().optional(),
  member: z.object({ user: discordUser }).optional(),
  user: discordUser.optional(),
};

const discordInteractionSchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal(PING) }),
    z.object({
      type: z.literal(APPLICATION_COMMAND),
      ...interactionBase,
      data: z.object({ name: z.string().min(1), options: z.array(option).max(25).optional() }),
    }),
    z.object({
      type: z.literal(MESSAGE_COMPONENT),
      ...interactionBase,
      data: z.object({ custom_id: z.string().min(1) }),
      message: z.object({ id: z.string() }).optional(),
    }),
  ])
  .transform((v, ctx): DiscordInteraction => {
    if (v.type === PING) return { kind: 'ping' };
    const who = v.member?.user ?? v.user;
    if (!who) {
      ctx.addIssue({ code: 'custom', message: 'no user: expected member.user or user', path: ['user'] });
      return z.NEVER;
    }
    const base: DiscordInteractionBase = {
      id: v.id,
      token: v.token,
      applicationId: v.application_id,
      user: { id: who.id, name: who.username || who.id },
      guildId: v.guild_id ?? null,
      channelId: v.channel_id ?? null,
    };
    if (v.type === APPLICATION_COMMAND) {
      return { ...base, kind: 'command', name: v.data.name, text: discordCommandText(v.data.options ?? []) };
    }
    return { ...base, kind: 'component', customId: v.data.custom_id, messageId: v.message?.id ?? null };
  });

/**
 * Parses a Discord interaction from the raw JSON body: a PING, a slash command (its options
 * turned into command text) or a button press. Other interaction types, and a command or
 * button without a user, are PS_PAYLOAD_INVALID.
 */
export function parseDiscordInteraction(rawBody: string): DiscordInteraction {
  return parseWith(discordInteractionSchema, parseJsonText(rawBody, 'the Discord interaction'), 'the Discord interaction');
}

/** The {@link Actor} behind a Slack slash command or button press. */
export function actorOfSlack(payload: SlackSlashCommand | SlackInteraction): Actor {
  return { via: 'slack', id: payload.user.id, name: payload.user.name };
}

/** The {@link Actor} behind a Discord slash command or button press. */
export function actorOfDiscord(interaction: DiscordCommand | DiscordComponent): Actor {
  return { via: 'discord', id: interaction.user.id, name: interaction.user.name };
}
