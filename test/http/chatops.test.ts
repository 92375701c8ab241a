import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { Approval, ScalingEvent } from '../../src/types.js';
import { makeChatApp, type ChatApp } from '../support/chat-app.js';
import { discordButtonBody, discordCommandBody, discordKeys, signSlack, slackActionBody, slashCommandBody, TEST_USER } from '../support/chat-sign.js';
import { makeTestApp, TEST_AUTH, type TestApp } from '../support/http.js';

const NOW = Date.parse('2026-11-27T10:00:00.000Z');
const NOW_S = Math.floor(NOW / 1000);
const SLACK_SECRET = 'slack-signing-secret-for-tests';
const discord = discordKeys();
const CHATOPS = { slack: { signingSecret: SLACK_SECRET, users: [] }, discord: { publicKey: discord.publicKeyHex } };
const SLACK_ALICE = { via: 'slack', id: TEST_USER.id, name: TEST_USER.name };
const DISCORD_USER_ID = '4000000000000000001';
const ACTIONS_URL = 'https://hooks.slack.com/actions/T0123ABCD/1234567890/abcdefABCDEF0123456789';

let t: ChatApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function chatApp(chatops: Record<string, unknown> = CHATOPS): Promise<ChatApp> {
  t = await makeChatApp({ config: { chatops }, now: () => NOW });
  return t;
}

const codeOf = (res: LightMyRequestResponse) => res.json<{ error: { code: string } }>().error.code;
const iso = (ms: number) => new Date(ms).toISOString();

/** How a Slack request is signed and sent; by default correctly, now. */
interface SlackSend {
  at?: number;
  secret?: string;
  /** The body actually sent (a tampered one), when not the one signed. */
  send?: string;
  /** No signature headers at all. */
  unsigned?: boolean;
}

function slackRequest(url: string, body: string, o: SlackSend = {}): InjectOptions {
  const signature = o.unsigned ? {} : signSlack(o.secret ?? SLACK_SECRET, body, o.at ?? NOW_S);
  return { method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded', ...signature }, payload: o.send ?? body };
}

const slash = (app: ChatApp, text: string, o: SlackSend & { userId?: string } = {}) =>
  app.app.inject(slackRequest('/chatops/slack', slashCommandBody({ text, ...(o.userId ? { userId: o.userId } : {}) }), o));

const press = (app: ChatApp, actionId: string, value: string, o: SlackSend & { userId?: string } = {}) =>
  app.app.inject(slackRequest('/chatops/slack/interactions', slackActionBody({ actionId, value, ...(o.userId ? { userId: o.userId } : {}) }), o));

/** How a Discord request is signed and sent; by default correctly, now. */
interface DiscordSend {
  timestamp?: string;
  /** Signs with another application's key. */
  otherKey?: boolean;
  send?: string;
  unsigned?: boolean;
  signature?: string;
}

function discordRequest(app: ChatApp, body: string, o: DiscordSend = {}) {
  const timestamp = o.timestamp ?? String(NOW_S);
  const signed = (o.otherKey ? discordKeys() : discord).sign(body, timestamp);
  const headers = o.unsigned ? {} : { ...signed, ...(o.signature ? { 'x-signature-ed25519': o.signature } : {}) };
  return app.app.inject({ method: 'POST', url: '/chatops/discord', headers: { 'content-type': 'application/json', ...headers }, payload: o.send ?? body });
}

const PING = JSON.stringify({ id: '1100000000000000009', application_id: '1000000000000000001', type: 1, token: 'ping-token', version: 1 });

function approval(id: string, over: Partial<Approval> = {}): Approval {
  return {
    id,
    target: 'web',
    status: 'pending',
    from: 4,
    to: 6,
    reason: 'alert HighCPU',
    changes: { update: 1 },
    via: 'ops-slack',
    requestedAt: iso(NOW - 60_000),
    expiresAt: iso(NOW + 1_740_000),
    decidedBy: null,
    decidedAt: null,
    commands: [],
    ...over,
  };
}

/** A `changed` event of `web` (unless told) a minute ago. */
function pastEvent(id: string, reason: string, over: Partial<ScalingEvent> = {}): ScalingEvent {
  return { id, target: 'web', at: iso(NOW - 60_000), kind: 'changed', from: 2, to: 3, reason, source: 'alertmanager', intents: 1, durationMs: 1_000, dryRun: false, ...over };
}

interface SlackReply {
  response_type: string;
  text: string;
}

describe('POST /chatops/slack: slash commands', () => {
  it('a correctly signed command runs as the Slack user: 200 with a reply for the channel, and a chat command reaches the engine', async () => {
    const app = await chatApp();
    const res = await slash(app, 'scale web to 5');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const reply = res.json<SlackReply>();
    expect(reply).toEqual({ response_type: 'in_channel', text: expect.stringContaining('web') as unknown });
    expect(app.engine.commands).toMatchObject([
      { target: 'web', adjustment: { type: 'to', to: 5 }, dryRun: false, source: 'chat', bounds: 'reject', receivedAt: iso(NOW), evidence: { actor: SLACK_ALICE } },
    ]);
  });

  it.each<[string, string, SlackSend]>([
    ['a tampered body', 'scale web to 5', { send: slashCommandBody({ text: 'scale web to 40' }) }],
    ['a timestamp 6 minutes old', 'scale web to 5', { at: NOW_S - 360 }],
    ['a timestamp 6 minutes ahead', 'scale web to 5', { at: NOW_S + 360 }],
    ['a signature made with another secret', 'scale web to 5', { secret: 'not-the-signing-secret' }],
    ['no signature headers', 'scale web to 5', { unsigned: true }],
  ])('%s is refused with 401 PS_CHAT_SIGNATURE, nothing reaching the engine or the replay memory', async (_what, text, o) => {
    const app = await chatApp();
    const res = await slash(app, text, o);
    expect(res.statusCode).toBe(401);
    expect(codeOf(res)).toBe('PS_CHAT_SIGNATURE');
    expect(app.engine.untouched()).toBe(true);
    expect(app.store.deliveries.size).toBe(0);
  });

  it('a timestamp 4 minutes old is still inside the window', async () => {
    const app = await chatApp();
    expect((await slash(app, 'scale web to 5', { at: NOW_S - 240 })).statusCode).toBe(200);
    expect(app.engine.commands).toHaveLength(1);
  });

  it('the same signed request twice: the second is a replay (409 PS_REPLAYED) and queues nothing', async () => {
    const app = await chatApp();
    const request = slackRequest('/chatops/slack', slashCommandBody({ text: 'scale web by 2' }));
    expect((await app.app.inject(request)).statusCode).toBe(200);
    const again = await app.app.inject(request);
    expect(again.statusCode).toBe(409);
    expect(codeOf(again)).toBe('PS_REPLAYED');
    expect(app.engine.commands).toHaveLength(1);
  });

  it.each<[string, string[], string | undefined, boolean]>([
    ['a user not on chatops.slack.users is refused with a private reply', ['U0999ZZZZ'], undefined, false],
    ['a user on chatops.slack.users acts', ['U0999ZZZZ', 'U0777ABCD'], 'U0777ABCD', true],
    ['an empty list lets everyone act', [], 'U0555ABCD', true],
  ])('%s', async (_rule, users, userId, acts) => {
    const app = await chatApp({ slack: { signingSecret: SLACK_SECRET, users } });
    const res = await slash(app, 'scale web to 5', userId ? { userId } : {});
    expect(res.statusCode).toBe(200);
    expect(res.json<SlackReply>().response_type).toBe(acts ? 'in_channel' : 'ephemeral');
    if (acts) expect(app.engine.commands).toMatchObject([{ evidence: { actor: { via: 'slack', id: userId } } }]);
    else {
      expect(res.json<SlackReply>().text).toContain('not allowed');
      expect(app.engine.untouched()).toBe(true);
    }
  });

  it.each<[string, string, (string | RegExp)[]]>([
    ['an unknown target gets a private reply naming the targets', 'scale nope to 3', ['no target named', 'web, worker, batch']],
    ['a "to" outside the bounds gets a private reply with the bounds', 'scale web to 999', ['999', '[2, 40]']],
    ['status lists every target, privately', 'status', [/^web: .*\nworker: .*\nbatch: /]],
    ['status of one target shows that one', 'status worker', [/^worker: unknown in \[1, 20\]$/]],
    ['text that does not parse gets help with the problem', 'frobnicate the stack', ['unknown command', 'PulumiScale commands:']],
    ['empty text gets help', '', ['PulumiScale commands:']],
  ])('%s; nothing is queued', async (_rule, text, expected) => {
    const app = await chatApp();
    const res = await slash(app, text);
    expect(res.statusCode).toBe(200);
    const reply = res.json<SlackReply>();
    expect(reply.response_type).toBe('ephemeral');
    for (const e of expected) {
      if (typeof e === 'string') expect(reply.text).toContain(e);
      else expect(reply.text).toMatch(e);
    }
    expect(app.engine.untouched()).toBe(true);
  });

  it.each<[string, string, { target: string; pause: unknown }]>([
    ['pause for 30m up holds one direction for 30 minutes', 'pause web for 30m up', { target: 'web', pause: { until: iso(NOW + 1_800_000), direction: 'up', reason: 'paused by alice (slack)' } }],
    ['pause without for holds both directions for an hour', 'pause worker', { target: 'worker', pause: { until: iso(NOW + 3_600_000), direction: 'both', reason: 'paused by alice (slack)' } }],
    ['resume lifts the pause', 'resume web', { target: 'web', pause: null }],
  ])('%s, said in the channel', async (_rule, text, expected) => {
    const app = await chatApp();
    const res = await slash(app, text);
    expect(res.statusCode).toBe(200);
    expect(res.json<SlackReply>().response_type).toBe('in_channel');
    expect(app.engine.pauses).toEqual([expected]);
  });

  it('history shows the newest events of the target, one a line, privately', async () => {
    const app = await chatApp();
    app.store.events.push(pastEvent('ev-1', 'alert HighCPU'), pastEvent('ev-2', 'alert HighLatency'), pastEvent('ev-3', 'other target', { target: 'worker' }));
    const reply = (await slash(app, 'history web')).json<SlackReply>();
    expect(reply.response_type).toBe('ephemeral');
    expect(reply.text.split('\n')).toEqual([`${iso(NOW - 60_000)} changed 2 → 3: alert HighLatency`, `${iso(NOW - 60_000)} changed 2 → 3: alert HighCPU`]);
  });

  // A reason is the sender's text: cut to 120 characters, never inside an emoji.
  it.each([['Slack'], ['Discord']])('history on %s never cuts a character in half', async (platform) => {
    const app = await chatApp();
    app.store.events.push(pastEvent('ev-1', `${'x'.repeat(118)}😀 and the rest of a long alarm description`));
    const text =
      platform === 'Slack'
        ? (await slash(app, 'history web')).json<SlackReply>().text
        : (await discordRequest(app, discordCommandBody({ text: 'history web' }))).json<DiscordReply>().data.content;
    expect(text).toContain('changed 2 → 3: xxx');
    expect(text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
  });

  it('a dry-run scale by queues a preview', async () => {
    const app = await chatApp();
    await slash(app, 'scale worker by -1 dry-run');
    expect(app.engine.commands).toMatchObject([{ target: 'worker', adjustment: { type: 'by', by: -1 }, dryRun: true, source: 'chat' }]);
  });

  it('while the daemon drains, a change is refused with 503 PS_DRAINING', async () => {
    const app = await chatApp();
    app.engine.draining = true;
    const res = await slash(app, 'scale web to 5');
    expect(res.statusCode).toBe(503);
    expect(codeOf(res)).toBe('PS_DRAINING');
    expect(app.engine.untouched()).toBe(true);
  });
});

describe('POST /chatops/slack/interactions: Approve and Reject buttons', () => {
  it.each<[string, 'pulumiscale_approve' | 'pulumiscale_reject', 'approve' | 'reject', Approval['status']]>([
    ['Approve approves', 'pulumiscale_approve', 'approve', 'approved'],
    ['Reject rejects', 'pulumiscale_reject', 'reject', 'rejected'],
  ])('%s as the Slack user: a quick empty 200, the message replaced with the verdict', async (_rule, actionId, verdict, status) => {
    const app = await chatApp();
    app.store.approvals.set('ap-1', approval('ap-1'));
    const res = await press(app, actionId, 'ap-1');
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(app.engine.verdicts).toEqual([{ id: 'ap-1', verdict, actor: SLACK_ALICE }]);
    expect(app.store.approvals.get('ap-1')).toMatchObject({ status, decidedBy: SLACK_ALICE });
    expect(app.responses).toEqual([{ url: ACTIONS_URL, body: { replace_original: true, text: expect.stringContaining(`${status} web`) as unknown } }]);
  });

  it.each<[string, Approval | null, string]>([
    ['an approval already decided', approval('ap-1', { status: 'rejected' }), 'is rejected'],
    ['an approval that expired', approval('ap-1', { status: 'expired' }), 'is expired'],
    ['an unknown approval', null, 'no approval with id'],
  ])('%s: still 200 (Slack wants one), no verdict, and the message says why', async (_what, seeded, why) => {
    const app = await chatApp();
    if (seeded) app.store.approvals.set(seeded.id, seeded);
    const res = await press(app, 'pulumiscale_approve', 'ap-1');
    expect(res.statusCode).toBe(200);
    expect(app.engine.verdicts).toEqual([]);
    expect(app.responses).toHaveLength(1);
    expect((app.responses[0]?.body as { text: string }).text).toContain(why);
  });

  it('a user not on chatops.slack.users decides nothing; the message says so', async () => {
    const app = await chatApp({ slack: { signingSecret: SLACK_SECRET, users: ['U0999ZZZZ'] } });
    app.store.approvals.set('ap-1', approval('ap-1'));
    const res = await press(app, 'pulumiscale_approve', 'ap-1');
    expect(res.statusCode).toBe(200);
    expect(app.engine.verdicts).toEqual([]);
    expect(app.store.approvals.get('ap-1')?.status).toBe('pending');
    expect((app.responses[0]?.body as { text: string }).text).toContain('not allowed');
  });

  it('a press of a button that is not ours is 400 PS_PAYLOAD_INVALID', async () => {
    const app = await chatApp();
    app.store.approvals.set('ap-1', approval('ap-1'));
    const res = await press(app, 'someone_elses_button', 'ap-1');
    expect(res.statusCode).toBe(400);
    expect(codeOf(res)).toBe('PS_PAYLOAD_INVALID');
    expect(app.engine.verdicts).toEqual([]);
  });

  it.each<[string, SlackSend, number, string]>([
    ['a tampered press', { send: slackActionBody({ actionId: 'pulumiscale_approve', value: 'ap-2' }) }, 401, 'PS_CHAT_SIGNATURE'],
    ['a stale press', { at: NOW_S - 360 }, 401, 'PS_CHAT_SIGNATURE'],
  ])('%s is refused (%i %s) and decides nothing', async (_what, o, status, code) => {
    const app = await chatApp();
    app.store.approvals.set('ap-1', approval('ap-1'));
    app.store.approvals.set('ap-2', approval('ap-2'));
    const res = await press(app, 'pulumiscale_approve', 'ap-1', o);
    expect(res.statusCode).toBe(status);
    expect(codeOf(res)).toBe(code);
    expect(app.engine.verdicts).toEqual([]);
  });

  it('the same signed press twice: the second is a replay (409 PS_REPLAYED)', async () => {
    const app = await chatApp();
    app.store.approvals.set('ap-1', approval('ap-1'));
    const request = slackRequest('/chatops/slack/interactions', slackActionBody({ actionId: 'pulumiscale_reject', value: 'ap-1' }));
    expect((await app.app.inject(request)).statusCode).toBe(200);
    const again = await app.app.inject(request);
    expect(again.statusCode).toBe(409);
    expect(codeOf(again)).toBe('PS_REPLAYED');
    expect(app.engine.verdicts).toHaveLength(1);
  });
});

interface DiscordReply {
  type: number;
  data: { content: string; allowed_mentions: { parse: unknown[] }; flags?: number };
}

describe('POST /chatops/discord: interactions', () => {
  it('a signed PING is answered with a PONG ({type: 1})', async () => {
    const app = await chatApp();
    const res = await discordRequest(app, PING);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ type: 1 });
  });

  it.each<[string, DiscordSend]>([
    ["a PING signed with another application's key", { otherKey: true }],
    ['a PING whose body was changed after signing', { send: PING.replace('ping-token', 'pong-token') }],
    ['a PING with no signature headers', { unsigned: true }],
    ['a PING with a signature that is not hex', { signature: 'z'.repeat(128) }],
    ['a PING signed 6 minutes ago', { timestamp: String(NOW_S - 360) }],
    ['a PING signed 6 minutes ahead', { timestamp: String(NOW_S + 360) }],
    ['a PING with a signed timestamp that is not a number', { timestamp: 'yesterday' }],
  ])("%s is refused with 401 PS_CHAT_SIGNATURE (Discord's endpoint check requires it)", async (_what, o) => {
    const app = await chatApp();
    const res = await discordRequest(app, PING, o);
    expect(res.statusCode).toBe(401);
    expect(codeOf(res)).toBe('PS_CHAT_SIGNATURE');
    expect(app.store.deliveries.size).toBe(0);
  });

  it.each<[string, boolean]>([
    ['in a server (member.user)', false],
    ['in a direct message (user)', true],
  ])('a command %s runs as the Discord user and answers {type: 4} with content, pinging no one', async (_where, dm) => {
    const app = await chatApp();
    const res = await discordRequest(app, discordCommandBody({ text: 'scale web to 5', dm }));
    expect(res.statusCode).toBe(200);
    const reply = res.json<DiscordReply>();
    expect(reply).toEqual({ type: 4, data: { content: expect.stringContaining('web') as unknown, allowed_mentions: { parse: [] } } });
    expect(app.engine.commands).toMatchObject([{ target: 'web', adjustment: { type: 'to', to: 5 }, source: 'chat', evidence: { actor: { via: 'discord', id: DISCORD_USER_ID, name: TEST_USER.name } } }]);
  });

  it.each<[string, string, string]>([
    ['status is answered privately (flags 64)', 'status', 'worker: '],
    ['a "to" outside the bounds is answered privately', 'scale web to 999', '[2, 40]'],
    ['an unknown target is answered privately with the targets', 'scale nope to 1', 'web, worker, batch'],
  ])('%s; nothing is queued', async (_rule, text, expected) => {
    const app = await chatApp();
    const res = await discordRequest(app, discordCommandBody({ text }));
    expect(res.statusCode).toBe(200);
    const reply = res.json<DiscordReply>();
    expect(reply).toMatchObject({ type: 4, data: { allowed_mentions: { parse: [] }, flags: 64 } });
    expect(reply.data.content).toContain(expected);
    expect(app.engine.untouched()).toBe(true);
  });

  it('a command signed 6 minutes ago is refused with 401, nothing reaching the engine', async () => {
    const app = await chatApp();
    const res = await discordRequest(app, discordCommandBody({ text: 'scale web to 5' }), { timestamp: String(NOW_S - 360) });
    expect(res.statusCode).toBe(401);
    expect(codeOf(res)).toBe('PS_CHAT_SIGNATURE');
    expect(app.engine.untouched()).toBe(true);
  });

  it('the same signed command twice: the second is a replay (409 PS_REPLAYED)', async () => {
    const app = await chatApp();
    const body = discordCommandBody({ text: 'scale web by 1' });
    expect((await discordRequest(app, body)).statusCode).toBe(200);
    const again = await discordRequest(app, body);
    expect(again.statusCode).toBe(409);
    expect(codeOf(again)).toBe('PS_REPLAYED');
    expect(app.engine.commands).toHaveLength(1);
  });

  it.each<[string, string]>([
    ['a user not on chatops.discord.users is refused privately', discordCommandBody({ text: 'scale web to 5' })],
    ['a button press is answered with how to decide by command', discordButtonBody({ customId: 'approve:ap-1' })],
  ])('%s; nothing reaches the engine', async (_rule, body) => {
    const app = await chatApp({ discord: { publicKey: discord.publicKeyHex, users: ['999'] } });
    app.store.approvals.set('ap-1', approval('ap-1'));
    const res = await discordRequest(app, body);
    expect(res.statusCode).toBe(200);
    expect(res.json<DiscordReply>()).toMatchObject({ type: 4, data: { allowed_mentions: { parse: [] }, flags: 64 } });
    expect(app.engine.untouched()).toBe(true);
    expect(app.engine.verdicts).toEqual([]);
  });

  it('approve <id> by command decides as the Discord user', async () => {
    const app = await chatApp();
    app.store.approvals.set('ap-1', approval('ap-1'));
    const res = await discordRequest(app, discordCommandBody({ text: 'approve ap-1' }));
    expect(res.statusCode).toBe(200);
    expect(app.engine.verdicts).toEqual([{ id: 'ap-1', verdict: 'approve', actor: { via: 'discord', id: DISCORD_USER_ID, name: TEST_USER.name } }]);
  });
});

describe('chat routes of a platform that is not configured', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['no chatops: Slack commands', {}, '/chatops/slack'],
    ['no chatops: Slack buttons', {}, '/chatops/slack/interactions'],
    ['no chatops: Discord', {}, '/chatops/discord'],
    ['Discord only: Slack commands', { discord: { publicKey: discord.publicKeyHex } }, '/chatops/slack'],
    ['Discord only: Slack buttons', { discord: { publicKey: discord.publicKeyHex } }, '/chatops/slack/interactions'],
    ['Slack only: Discord', { slack: { signingSecret: SLACK_SECRET } }, '/chatops/discord'],
  ])('%s: 404 PS_NOT_FOUND, whatever the request carries', async (_what, chatops, url) => {
    const app = await chatApp(chatops);
    const body = url === '/chatops/discord' ? PING : slashCommandBody({ text: 'scale web to 5' });
    const headers: Record<string, string> = { ...(url === '/chatops/discord' ? discord.sign(body, String(NOW_S)) : signSlack(SLACK_SECRET, body, NOW_S)) };
    const res = await app.app.inject({ method: 'POST', url, headers, payload: body });
    expect(res.statusCode).toBe(404);
    expect(codeOf(res)).toBe('PS_NOT_FOUND');
    expect(app.engine.untouched()).toBe(true);
  });
});

describe('the approvals API', () => {
  const AUTH = { authorization: `Bearer ${TEST_AUTH.apiToken}` };
  const API_ACTOR = { via: 'api', id: 'api', name: 'api' };
  let api: TestApp | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  /** An app holding ap-1 (pending, web), ap-2 (rejected, worker) and ap-3 (pending, batch), saved in that order. */
  async function seeded(): Promise<TestApp> {
    api = await makeTestApp({ now: () => NOW });
    api.store.approvals.set('ap-1', approval('ap-1'));
    api.store.approvals.set('ap-2', approval('ap-2', { target: 'worker', status: 'rejected', decidedBy: SLACK_ALICE as Approval['decidedBy'], decidedAt: iso(NOW - 1_000) }));
    api.store.approvals.set('ap-3', approval('ap-3', { target: 'batch' }));
    return api;
  }

  it.each<[string, string, string[]]>([
    ['lists approvals, newest first', '/api/v1/approvals', ['ap-3', 'ap-2', 'ap-1']],
    ['filters by status', '/api/v1/approvals?status=pending', ['ap-3', 'ap-1']],
    ['takes a limit', '/api/v1/approvals?limit=1', ['ap-3']],
  ])('GET /api/v1/approvals %s', async (_rule, url, ids) => {
    const app = await seeded();
    const res = await app.app.inject({ method: 'GET', url, headers: AUTH });
    expect(res.statusCode).toBe(200);
    expect(res.json<Approval[]>().map((a) => a.id)).toEqual(ids);
  });

  it.each([['/api/v1/approvals?status=maybe'], ['/api/v1/approvals?limit=0'], ['/api/v1/approvals?limit=1001']])('GET %s is 400 PS_PAYLOAD_INVALID', async (url) => {
    const app = await seeded();
    const res = await app.app.inject({ method: 'GET', url, headers: AUTH });
    expect(res.statusCode).toBe(400);
    expect(codeOf(res)).toBe('PS_PAYLOAD_INVALID');
  });

  it('GET /api/v1/approvals/:id serves one approval', async () => {
    const app = await seeded();
    const res = await app.app.inject({ method: 'GET', url: '/api/v1/approvals/ap-2', headers: AUTH });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(app.store.approvals.get('ap-2'));
  });

  it.each<['approve' | 'reject', Approval['status']]>([
    ['approve', 'approved'],
    ['reject', 'rejected'],
  ])('POST /api/v1/approvals/:id/%s decides a pending approval as the API and answers with it', async (verdict, status) => {
    const app = await seeded();
    const res = await app.app.inject({ method: 'POST', url: `/api/v1/approvals/ap-1/${verdict}`, headers: AUTH });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: 'ap-1', status, decidedBy: API_ACTOR });
    expect(app.engine.verdicts).toEqual([{ id: 'ap-1', verdict, actor: API_ACTOR }]);
  });

  it.each<['GET' | 'POST', string]>([
    ['GET', '/api/v1/approvals/nope'],
    ['POST', '/api/v1/approvals/nope/approve'],
    ['POST', '/api/v1/approvals/nope/reject'],
  ])('%s %s: an unknown id is 404 PS_APPROVAL_UNKNOWN', async (method, url) => {
    const app = await seeded();
    const res = await app.app.inject({ method, url, headers: AUTH });
    expect(res.statusCode).toBe(404);
    expect(codeOf(res)).toBe('PS_APPROVAL_UNKNOWN');
    expect(app.engine.verdicts).toEqual([]);
  });

  it.each([['approve'], ['reject']])('POST …/%s of an approval already decided is 409 PS_APPROVAL_CLOSED, changing nothing', async (verdict) => {
    const app = await seeded();
    const before = app.store.approvals.get('ap-2');
    const res = await app.app.inject({ method: 'POST', url: `/api/v1/approvals/ap-2/${verdict}`, headers: AUTH });
    expect(res.statusCode).toBe(409);
    expect(codeOf(res)).toBe('PS_APPROVAL_CLOSED');
    expect(app.engine.verdicts).toEqual([]);
    expect(app.store.approvals.get('ap-2')).toEqual(before);
  });

  it.each<['GET' | 'POST', string, Record<string, string>]>([
    ['GET', '/api/v1/approvals', {}],
    ['GET', '/api/v1/approvals/ap-1', {}],
    ['POST', '/api/v1/approvals/ap-1/approve', {}],
    ['POST', '/api/v1/approvals/ap-1/reject', {}],
    ['POST', '/api/v1/approvals/ap-1/approve', { authorization: 'Bearer not-the-token' }],
    ['POST', '/api/v1/approvals/ap-1/approve', { authorization: `Basic ${Buffer.from(`api:${TEST_AUTH.apiToken}`).toString('base64')}` }],
  ])('%s %s without the API token is 401 PS_UNAUTHORIZED and decides nothing', async (method, url, headers) => {
    const app = await seeded();
    const res = await app.app.inject({ method, url, headers });
    expect(res.statusCode).toBe(401);
    expect(codeOf(res)).toBe('PS_UNAUTHORIZED');
    expect(app.engine.verdicts).toEqual([]);
    expect(app.store.approvals.get('ap-1')?.status).toBe('pending');
  });

  it('while the daemon drains, a verdict is refused with 503 PS_DRAINING', async () => {
    const app = await seeded();
    app.engine.draining = true;
    const res = await app.app.inject({ method: 'POST', url: '/api/v1/approvals/ap-1/approve', headers: AUTH });
    expect(res.statusCode).toBe(503);
    expect(codeOf(res)).toBe('PS_DRAINING');
    expect(app.engine.verdicts).toEqual([]);
  });
});
