/**
 * Chat test kit: signers for Slack (HMAC-SHA256, scheme v0) and Discord (Ed25519, a key pair
 * made at run time), written apart from src/ so that a mistake there is not mirrored here, and
 * builders of the bodies Slack and Discord post, shaped like the real ones.
 */
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';

/** Slack's signature headers for `rawBody` sent at `timestampSec` (unix seconds). */
export function signSlack(secret: string, rawBody: string, timestampSec: number): { 'x-slack-signature': string; 'x-slack-request-timestamp': string } {
  const hex = createHmac('sha256', secret).update(`v0:${timestampSec}:${rawBody}`).digest('hex');
  return { 'x-slack-signature': `v0=${hex}`, 'x-slack-request-timestamp': String(timestampSec) };
}

/** Discord's signature headers. */
export interface DiscordSignatureHeaders {
  'x-signature-ed25519': string;
  'x-signature-timestamp': string;
}

/** A fresh Ed25519 key pair standing in for a Discord application's. */
export interface DiscordKeys {
  /** The public key as Discord shows it: 64 hex digits. */
  publicKeyHex: string;
  /** Signs `timestamp + rawBody` as Discord does. */
  sign(rawBody: string, timestamp: string): DiscordSignatureHeaders;
}

/** Makes a Discord application key pair. */
export function discordKeys(): DiscordKeys {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  const publicKeyHex = Buffer.from(jwk.x ?? '', 'base64url').toString('hex');
  return {
    publicKeyHex,
    sign: (rawBody, timestamp) => ({
      'x-signature-ed25519': sign(null, Buffer.from(timestamp + rawBody, 'utf8'), privateKey).toString('hex'),
      'x-signature-timestamp': timestamp,
    }),
  };
}

/** Who acts in the builders below unless told otherwise. */
export const TEST_USER = { id: 'U0123ABCD', name: 'alice' } as const;
/** A response_url of the shape Slack sends. */
export const TEST_RESPONSE_URL = 'https://hooks.slack.com/commands/T0123ABCD/1234567890/abcdefABCDEF0123456789';

/** The form body Slack posts for `/pulumiscale <text>`. */
export function slashCommandBody(o: { text: string; userId?: string; userName?: string; responseUrl?: string }): string {
  return new URLSearchParams({
    token: 'legacy-verification-token',
    team_id: 'T0123ABCD',
    team_domain: 'example',
    channel_id: 'C0123ABCD',
    channel_name: 'ops',
    user_id: o.userId ?? TEST_USER.id,
    user_name: o.userName ?? TEST_USER.name,
    command: '/pulumiscale',
    text: o.text,
    api_app_id: 'A0123ABCD',
    is_enterprise_install: 'false',
    response_url: o.responseUrl ?? TEST_RESPONSE_URL,
    trigger_id: '1234567890.123456789.abcdef0123456789abcdef0123456789',
  }).toString();
}

/** The form body Slack posts when a button in one of our messages is pressed (`block_actions`). */
export function slackActionBody(o: { actionId: string; value: string; userId?: string; userName?: string; responseUrl?: string }): string {
  const userId = o.userId ?? TEST_USER.id;
  const payload = {
    type: 'block_actions',
    user: { id: userId, username: o.userName ?? TEST_USER.name, name: o.userName ?? TEST_USER.name, team_id: 'T0123ABCD' },
    api_app_id: 'A0123ABCD',
    token: 'legacy-verification-token',
    container: { type: 'message', message_ts: '1700000000.000100', channel_id: 'C0123ABCD', is_ephemeral: false },
    trigger_id: '1234567890.123456789.abcdef0123456789abcdef0123456789',
    team: { id: 'T0123ABCD', domain: 'example' },
    channel: { id: 'C0123ABCD', name: 'ops' },
    response_url: o.responseUrl ?? 'https://hooks.slack.com/actions/T0123ABCD/1234567890/abcdefABCDEF0123456789',
    actions: [
      {
        type: 'button',
        action_id: o.actionId,
        block_id: 'approval',
        value: o.value,
        text: { type: 'plain_text', text: 'Approve', emoji: true },
        action_ts: '1700000001.000200',
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

const DISCORD_COMMON = {
  id: '1100000000000000001',
  application_id: '1000000000000000001',
  token: 'aW50ZXJhY3Rpb24tdG9rZW4tZm9yLXRlc3Rz',
  version: 1,
  channel_id: '1200000000000000001',
};

/** Where the user sits in a Discord interaction: `member.user` in a server, `user` in a DM. */
function discordUser(userId: string, userName: string, dm: boolean): Record<string, unknown> {
  const user = { id: userId, username: userName, global_name: userName, discriminator: '0' };
  return dm ? { user } : { guild_id: '1300000000000000001', member: { user, roles: [], permissions: '0' } };
}

/** The JSON body Discord posts for `/pulumiscale command:<text>` (in a server unless `dm`). */
export function discordCommandBody(o: { text: string; userId?: string; userName?: string; dm?: boolean }): string {
  return JSON.stringify({
    ...DISCORD_COMMON,
    type: 2,
    ...discordUser(o.userId ?? '4000000000000000001', o.userName ?? TEST_USER.name, o.dm ?? false),
    data: { id: '1400000000000000001', name: 'pulumiscale', type: 1, options: [{ name: 'command', type: 3, value: o.text }] },
  });
}

/** The JSON body Discord posts when a button with `customId` is pressed. */
export function discordButtonBody(o: { customId: string; userId?: string; userName?: string; dm?: boolean }): string {
  return JSON.stringify({
    ...DISCORD_COMMON,
    type: 3,
    ...discordUser(o.userId ?? '4000000000000000001', o.userName ?? TEST_USER.name, o.dm ?? false),
    data: { custom_id: o.customId, component_type: 2 },
    message: { id: '1500000000000000001', content: 'Approval needed' },
  });
}
