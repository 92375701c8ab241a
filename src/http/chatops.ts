/**
 * The chat routes: Slack slash commands and button presses, and Discord interactions. Each
 * request is verified against its platform's signature over the raw body before anything is
 * parsed (a bad one is 401, which Discord's endpoint check requires), then translated into
 * the same operator actions as the API (chat-commands.ts).
 *
 * Why a plugin of their own: both platforms sign the exact bytes they send, so these routes read
 * the body as text (the rest of the app parses JSON). A platform that is not configured has no
 * route: 404 says so.
 *
 * Replays: Slack timestamps older than 5 minutes are refused by the signature check, Discord's
 * here; within that window each signature is accepted once (the store's delivery ids).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PulumiScaleError } from '../errors.js';
import { parseChatCommand } from '../notify/chat/commands.js';
import { verifyDiscordSignature } from '../notify/chat/discord-signature.js';
import { actorOfDiscord, actorOfSlack, parseDiscordInteraction, parseSlackInteraction, parseSlackSlashCommand } from '../notify/chat/payloads.js';
import { SLACK_MAX_SKEW_MS, verifySlackSignature } from '../notify/chat/slack-signature.js';
import { cut } from '../notify/formats/describe.js';
import { mrkdwnWithin, SLACK_ACTIONS } from '../notify/formats/slack.js';
import type { Actor } from '../types.js';
import { runChatCommand } from './chat-commands.js';
import type { AppDeps } from './deps.js';

/** Discord's interaction types and response types (its API's numbers). */
const DISCORD = { pong: 1, message: 4, ephemeral: 64 } as const;

/** Registers `/chatops/slack`, `/chatops/slack/interactions` and `/chatops/discord`. */
export function registerChatRoutes(app: FastifyInstance, deps: AppDeps): void {
  const chat = deps.chat ?? {};
  void app.register(async (routes) => {
    // The signatures cover the bytes as sent: keep the body as text whatever its type.
    routes.removeAllContentTypeParsers();
    routes.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, String(body)));

    routes.post('/chatops/slack', async (req, reply) => {
      const slack = slackConfig(deps);
      const { raw, key } = verifiedSlack(deps, req, slack.signingSecret);
      const payload = parseSlackSlashCommand(raw);
      const actor = actorOfSlack(payload);
      if (!allowed(slack.users, actor)) return reply.send(slackReply(`${actor.name} is not allowed to run PulumiScale commands here (chatops.slack.users).`, false));
      const answer = await once(deps, key, () => runChatCommand(deps, parseChatCommand(payload.text), actor));
      if (answer.commandId !== undefined) chat.followups?.watch(answer.commandId, payload.responseUrl);
      return reply.send(slackReply(answer.text, answer.public));
    });

    routes.post('/chatops/slack/interactions', async (req, reply) => {
      const slack = slackConfig(deps);
      const { raw, key } = verifiedSlack(deps, req, slack.signingSecret);
      const payload = parseSlackInteraction(raw);
      const actor = actorOfSlack(payload);
      const action = payload.actions.find((a) => a.actionId === SLACK_ACTIONS.approve || a.actionId === SLACK_ACTIONS.reject);
      if (action === undefined || action.value === null) throw new PulumiScaleError('PS_PAYLOAD_INVALID', 'no PulumiScale button in this interaction');
      const id = action.value;
      const kind = action.actionId === SLACK_ACTIONS.approve ? 'approve' : 'reject';
      const answer = allowed(slack.users, actor)
        ? await once(deps, key, () => runChatCommand(deps, { kind, id }, actor))
        : { text: `${actor.name} is not allowed to decide approvals here (chatops.slack.users).`, public: false };
      // Slack wants a quick empty 200. A verdict replaces the message and its buttons for
      // everyone; a refusal (not allowed, already decided) is said to the presser alone.
      const update = answer.public
        ? { replace_original: true, text: mrkdwnWithin(answer.text, 3000) }
        : { replace_original: false, response_type: 'ephemeral', text: mrkdwnWithin(answer.text, 3000) };
      void chat.respond?.(payload.responseUrl, update).catch((err: unknown) => {
        req.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not answer a button press in Slack');
      });
      return reply.status(200).send('');
    });

    routes.post('/chatops/discord', async (req, reply) => {
      const discord = deps.config.chatops.discord;
      if (discord === undefined) throw new PulumiScaleError('PS_NOT_FOUND', 'chatops.discord is not configured');
      const { raw, key } = verifiedDiscord(deps, req, discord.publicKey);
      const interaction = parseDiscordInteraction(raw);
      if (interaction.kind === 'ping') return reply.send({ type: DISCORD.pong });
      const actor = actorOfDiscord(interaction);
      if (interaction.kind === 'component') {
        return discordReply(reply, 'PulumiScale posts no buttons to Discord: use /pulumiscale approve <id> or reject <id>.', false);
      }
      if (!allowed(discord.users, actor)) return discordReply(reply, `${actor.name} is not allowed to run PulumiScale commands here (chatops.discord.users).`, false);
      const answer = await once(deps, key, () => runChatCommand(deps, parseChatCommand(interaction.text), actor));
      return discordReply(reply, answer.text, answer.public);
    });
  });
}

function slackConfig(deps: AppDeps): NonNullable<AppDeps['config']['chatops']['slack']> {
  const slack = deps.config.chatops.slack;
  if (slack === undefined) throw new PulumiScaleError('PS_NOT_FOUND', 'chatops.slack is not configured');
  return slack;
}

/** The raw body of a Slack request whose signature verifies, and its once-only key. */
function verifiedSlack(deps: AppDeps, req: FastifyRequest, secret: string): Verified {
  const raw = typeof req.body === 'string' ? req.body : '';
  const signature = header(req, 'x-slack-signature');
  const now = (deps.now ?? Date.now)();
  const check = verifySlackSignature({ signingSecret: secret, timestamp: header(req, 'x-slack-request-timestamp'), signature, rawBody: raw, now });
  if (!check.ok) throw new PulumiScaleError('PS_CHAT_SIGNATURE', `Slack request refused: ${check.reason}`);
  return { raw, key: `slack:${(signature ?? '').toLowerCase()}` };
}

/** The raw body of a recent Discord request whose signature verifies, and its once-only key. */
function verifiedDiscord(deps: AppDeps, req: FastifyRequest, publicKeyHex: string): Verified {
  const raw = typeof req.body === 'string' ? req.body : '';
  const signature = header(req, 'x-signature-ed25519');
  const timestamp = header(req, 'x-signature-timestamp');
  if (!verifyDiscordSignature({ publicKeyHex, timestamp, signature, rawBody: raw })) {
    throw new PulumiScaleError('PS_CHAT_SIGNATURE', 'Discord request refused: the signature does not verify');
  }
  const now = (deps.now ?? Date.now)();
  // Discord signs its timestamp but sets no window; the same one as Slack's bounds a replay.
  if (!/^\d{1,12}$/.test(timestamp ?? '') || Math.abs(now - Number(timestamp) * 1000) > SLACK_MAX_SKEW_MS) {
    throw new PulumiScaleError('PS_CHAT_SIGNATURE', 'Discord request refused: its timestamp is more than 5 minutes from now');
  }
  return { raw, key: `discord:${(signature ?? '').toLowerCase()}` };
}

/** A verified request: its raw body, and the key that makes it count once (any case of its signature's hex). */
interface Verified {
  raw: string;
  key: string;
}

/**
 * Handles a signed request once within the window its timestamp allows. When handling fails
 * on our side (a store outage, a drain: 5xx), the request is forgotten, so that its retry is
 * not taken for a replay.
 */
async function once<T>(deps: AppDeps, key: string, handle: () => Promise<T>): Promise<T> {
  const now = (deps.now ?? Date.now)();
  const fresh = await deps.store.rememberDelivery(key, new Date(now + 2 * SLACK_MAX_SKEW_MS).toISOString());
  if (!fresh) throw new PulumiScaleError('PS_REPLAYED', 'this signed chat request was already handled');
  try {
    return await handle();
  } catch (err) {
    if (!(err instanceof PulumiScaleError) || err.status >= 500) await deps.store.forgetDelivery(key).catch(() => undefined);
    throw err;
  }
}

function allowed(users: readonly string[], actor: Actor): boolean {
  return users.length === 0 || users.includes(actor.id);
}

function header(req: FastifyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function slackReply(text: string, visible: boolean): { response_type: 'in_channel' | 'ephemeral'; text: string } {
  return { response_type: visible ? 'in_channel' : 'ephemeral', text: mrkdwnWithin(text, 3000) };
}

function discordReply(reply: FastifyReply, text: string, visible: boolean): FastifyReply {
  const content = cut(text, 2000);
  return reply.send({ type: DISCORD.message, data: { content, allowed_mentions: { parse: [] }, ...(visible ? {} : { flags: DISCORD.ephemeral }) } });
}
