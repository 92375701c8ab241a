import { describe, expect, it } from 'vitest';
import {
  actorOfDiscord,
  actorOfSlack,
  discordCommandText,
  parseDiscordInteraction,
  parseSlackInteraction,
  parseSlackSlashCommand,
  type DiscordOption,
} from '../../src/notify/chat/payloads.js';
import { codeOf } from '../support/errors.js';
import { TEST_RESPONSE_URL, discordButtonBody, discordCommandBody, slackActionBody, slashCommandBody } from '../support/chat-sign.js';

const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString();
const minimalSlash = { command: '/pulumiscale', text: 'status', user_id: 'U1', response_url: TEST_RESPONSE_URL };
const without = (key: string): Record<string, string> => Object.fromEntries(Object.entries(minimalSlash).filter(([k]) => k !== key));

describe('parseSlackSlashCommand: the form body of a slash command', () => {
  it('reads what Slack sends', () => {
    const cmd = parseSlackSlashCommand(slashCommandBody({ text: 'scale web to 3', userId: 'U9', userName: 'bob' }));
    expect(cmd).toEqual({
      command: '/pulumiscale',
      text: 'scale web to 3',
      user: { id: 'U9', name: 'bob' },
      teamId: 'T0123ABCD',
      channelId: 'C0123ABCD',
      responseUrl: TEST_RESPONSE_URL,
      triggerId: expect.any(String) as unknown,
    });
    expect(actorOfSlack(cmd)).toEqual({ via: 'slack', id: 'U9', name: 'bob' });
  });

  it.each<[string, string, Partial<ReturnType<typeof parseSlackSlashCommand>>]>([
    ['text may be empty', form({ ...minimalSlash, text: '' }), { text: '' }],
    ['+ in the form is a space', 'command=%2Fpulumiscale&text=scale+web+to+3&user_id=U1&response_url=https%3A%2F%2Fhooks.slack.com%2Fx', { text: 'scale web to 3' }],
    ['the optional fields may be absent', form(minimalSlash), { teamId: null, channelId: null, triggerId: null }],
    ['the name falls back to the id', form(minimalSlash), { user: { id: 'U1', name: 'U1' } }],
    ['a repeated field counts once, first first', `${form(minimalSlash)}&text=resume+web`, { text: 'status' }],
  ])('%s', (_rule, body, expected) => {
    expect(parseSlackSlashCommand(body)).toMatchObject(expected);
  });

  it.each([
    ['no command', form(without('command'))],
    ['no text', form(without('text'))],
    ['no user_id', form(without('user_id'))],
    ['an empty user_id', form({ ...minimalSlash, user_id: '' })],
    ['no response_url', form(without('response_url'))],
    ['a response_url that is not a URL', form({ ...minimalSlash, response_url: 'hooks.slack.com/x' })],
    ['a plain-http response_url', form({ ...minimalSlash, response_url: 'http://hooks.slack.com/x' })],
    ['an empty body', ''],
    ['a JSON body', JSON.stringify(minimalSlash)],
  ])('refuses %s as PS_PAYLOAD_INVALID', (_rule, body) => {
    expect(codeOf(() => parseSlackSlashCommand(body))).toBe('PS_PAYLOAD_INVALID');
  });
});

const actionPayload = (over: Record<string, unknown>): string =>
  form({ payload: JSON.stringify({ ...(JSON.parse(new URLSearchParams(slackActionBody({ actionId: 'approve', value: 'a1' })).get('payload') ?? '{}') as object), ...over }) });

describe('parseSlackInteraction: a button press (block_actions)', () => {
  it('reads what Slack sends', () => {
    const i = parseSlackInteraction(slackActionBody({ actionId: 'approve', value: 'abc-123', userId: 'U7', userName: 'carol' }));
    expect(i).toMatchObject({
      type: 'block_actions',
      user: { id: 'U7', name: 'carol' },
      actions: [{ actionId: 'approve', value: 'abc-123' }],
      channelId: 'C0123ABCD',
      messageTs: '1700000000.000100',
    });
    expect(i.responseUrl).toMatch(/^https:\/\/hooks\.slack\.com\//);
    expect(actorOfSlack(i)).toEqual({ via: 'slack', id: 'U7', name: 'carol' });
  });

  it.each<[string, Record<string, unknown>, object]>([
    ['the user name falls back to name', { user: { id: 'U2', name: 'dave' } }, { user: { id: 'U2', name: 'dave' } }],
    ['then to the id', { user: { id: 'U2' } }, { user: { id: 'U2', name: 'U2' } }],
    ['an action without a value has null', { actions: [{ action_id: 'pick' }] }, { actions: [{ actionId: 'pick', value: null }] }],
    ['channel and container may be absent', { channel: undefined, container: undefined }, { channelId: null, messageTs: null }],
  ])('%s', (_rule, over, expected) => {
    expect(parseSlackInteraction(actionPayload(over))).toMatchObject(expected);
  });

  it.each([
    ['no payload field', form({ other: '{}' })],
    ['a payload that is not JSON', form({ payload: '{not json' })],
    ['another interaction type', actionPayload({ type: 'view_submission' })],
    ['a shortcut', actionPayload({ type: 'shortcut' })],
    ['no actions', actionPayload({ actions: [] })],
    ['an action without action_id', actionPayload({ actions: [{ value: 'x' }] })],
    ['no user', actionPayload({ user: undefined })],
    ['no response_url', actionPayload({ response_url: undefined })],
    ['a plain-http response_url', actionPayload({ response_url: 'http://hooks.slack.com/actions/x' })],
  ])('refuses %s as PS_PAYLOAD_INVALID', (_rule, body) => {
    expect(codeOf(() => parseSlackInteraction(body))).toBe('PS_PAYLOAD_INVALID');
  });
});

const commandJson = (over: Record<string, unknown>): string => JSON.stringify({ ...(JSON.parse(discordCommandBody({ text: 'status' })) as object), ...over });

describe('parseDiscordInteraction: PING, our slash command, a button press', () => {
  it('reads a PING', () => {
    expect(parseDiscordInteraction('{"type":1,"id":"1","application_id":"2","token":"t","version":1}')).toEqual({ kind: 'ping' });
  });

  it('reads a slash command in a server, the user under member.user', () => {
    const i = parseDiscordInteraction(discordCommandBody({ text: 'scale web to 3', userId: '42', userName: 'erin' }));
    expect(i).toMatchObject({ kind: 'command', name: 'pulumiscale', text: 'scale web to 3', user: { id: '42', name: 'erin' }, guildId: expect.any(String) as unknown });
    if (i.kind !== 'command') throw new Error('not a command');
    expect(i.token).not.toBe('');
    expect(actorOfDiscord(i)).toEqual({ via: 'discord', id: '42', name: 'erin' });
  });

  it('reads a slash command in a DM, the user under user', () => {
    expect(parseDiscordInteraction(discordCommandBody({ text: 'help', userId: '43', userName: 'finn', dm: true }))).toMatchObject({
      kind: 'command',
      user: { id: '43', name: 'finn' },
      guildId: null,
    });
  });

  it('reads a button press', () => {
    const i = parseDiscordInteraction(discordButtonBody({ customId: 'approve:abc-123', userId: '44', userName: 'gus' }));
    expect(i).toMatchObject({ kind: 'component', customId: 'approve:abc-123', user: { id: '44', name: 'gus' }, messageId: '1500000000000000001' });
    if (i.kind !== 'component') throw new Error('not a component');
    expect(actorOfDiscord(i)).toEqual({ via: 'discord', id: '44', name: 'gus' });
  });

  it('reads a slash command without options as empty text', () => {
    expect(parseDiscordInteraction(commandJson({ data: { name: 'pulumiscale' } }))).toMatchObject({ kind: 'command', text: '' });
  });

  it.each([
    ['not JSON', '{"type":'],
    ['no type', '{}'],
    ['autocomplete (type 4)', commandJson({ type: 4 })],
    ['a modal submit (type 5)', commandJson({ type: 5 })],
    ['a command without a user', commandJson({ member: undefined, user: undefined })],
    ['a command without a token', commandJson({ token: undefined })],
    ['a command without data', commandJson({ data: undefined })],
    ['a button without a custom_id', JSON.stringify({ ...(JSON.parse(discordButtonBody({ customId: 'x' })) as object), data: { component_type: 2 } })],
    ['an option with an object value', commandJson({ data: { name: 'pulumiscale', options: [{ name: 'command', type: 3, value: {} }] } })],
    ['more than 25 options', commandJson({ data: { name: 'pulumiscale', options: Array.from({ length: 26 }, () => ({ name: 'a', type: 3, value: 'x' })) } })],
  ])('refuses %s as PS_PAYLOAD_INVALID', (_rule, body) => {
    expect(codeOf(() => parseDiscordInteraction(body))).toBe('PS_PAYLOAD_INVALID');
  });
});

// Value options (STRING, INTEGER, BOOLEAN), typed as values so that they nest in subcommands.
const str = (name: string, value: string) => ({ name, type: 3, value });
const int = (name: string, value: number) => ({ name, type: 4, value });
const bool = (name: string, value: boolean) => ({ name, type: 5, value });

describe('discordCommandText: options rebuilt as the text typed on Slack', () => {
  it.each<[string, DiscordOption[], string]>([
    ['the command option is the text itself', [str('command', 'pause web for 1h up')], 'pause web for 1h up'],
    ['no options is empty text', [], ''],
    ['a subcommand gives its name', [{ name: 'status', type: 1 }], 'status'],
    ['target is written bare', [{ name: 'status', type: 1, options: [str('target', 'web')] }], 'status web'],
    ['other options are name then value', [{ name: 'scale', type: 1, options: [str('target', 'web'), int('to', 3)] }], 'scale web to 3'],
    ['a true boolean gives its name', [{ name: 'scale', type: 1, options: [str('target', 'web'), int('by', -1), bool('dry-run', true)] }], 'scale web by -1 dry-run'],
    ['a false boolean gives nothing', [{ name: 'scale', type: 1, options: [str('target', 'web'), int('to', 3), bool('dry-run', false)] }], 'scale web to 3'],
    ['direction is written bare', [{ name: 'pause', type: 1, options: [str('target', 'web'), str('for', '2h'), str('direction', 'down')] }], 'pause web for 2h down'],
    ['a group gives its name before its subcommand', [{ name: 'target', type: 2, options: [{ name: 'history', type: 1, options: [str('target', 'web')] }] }], 'target history web'],
  ])('%s', (_rule, options, text) => {
    expect(discordCommandText(options)).toBe(text);
  });
});
