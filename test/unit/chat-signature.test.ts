import { describe, expect, it } from 'vitest';
import { SLACK_MAX_SKEW_MS, verifySlackSignature, type SlackSignatureInput } from '../../src/notify/chat/slack-signature.js';
import { publicKeyProblem, verifyDiscordSignature } from '../../src/notify/chat/discord-signature.js';
import { discordKeys, signSlack, slashCommandBody } from '../support/chat-sign.js';

// Slack's worked example (api.slack.com, "Verifying requests from Slack"): secret, timestamp,
// body and the signature Slack says they give.
const SLACK_DOC = {
  secret: '8f742231b10e8888abcd99yyyzzz85a5',
  timestamp: '1531420618',
  body:
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V' +
    '&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=' +
    '&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN' +
    '&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
  signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
};
const docInput = (over: Partial<SlackSignatureInput> = {}): SlackSignatureInput => ({
  signingSecret: SLACK_DOC.secret,
  timestamp: SLACK_DOC.timestamp,
  signature: SLACK_DOC.signature,
  rawBody: SLACK_DOC.body,
  now: Number(SLACK_DOC.timestamp) * 1000,
  ...over,
});

describe('verifySlackSignature: Slack v0, HMAC-SHA256 of v0:<timestamp>:<body>', () => {
  it("accepts Slack's documented example", () => {
    expect(verifySlackSignature(docInput())).toEqual({ ok: true });
  });

  it('accepts what the test signer signs, upper-case hex included', () => {
    const body = slashCommandBody({ text: 'scale web to 3' });
    const h = signSlack('s3cret', body, 1_700_000_000);
    const base = { signingSecret: 's3cret', timestamp: h['x-slack-request-timestamp'], rawBody: body, now: 1_700_000_000_000 };
    expect(verifySlackSignature({ ...base, signature: h['x-slack-signature'] })).toEqual({ ok: true });
    expect(verifySlackSignature({ ...base, signature: `v0=${h['x-slack-signature'].slice(3).toUpperCase()}` })).toEqual({ ok: true });
  });

  const now = Number(SLACK_DOC.timestamp) * 1000;
  it.each([
    ['exactly 5 minutes behind', now + SLACK_MAX_SKEW_MS],
    ['exactly 5 minutes ahead', now - SLACK_MAX_SKEW_MS],
  ])('accepts a timestamp %s of our clock', (_rule, at) => {
    expect(verifySlackSignature(docInput({ now: at }))).toEqual({ ok: true });
  });

  it.each<[string, Partial<SlackSignatureInput>, RegExp]>([
    ['a tampered body', { rawBody: SLACK_DOC.body.replace('text=', 'text=scale') }, /does not match/],
    ['a body with a trailing newline', { rawBody: `${SLACK_DOC.body}\n` }, /does not match/],
    ['a tampered timestamp (still fresh)', { timestamp: '1531420619' }, /does not match/],
    ['another secret', { signingSecret: '8f742231b10e8888abcd99yyyzzz85a6' }, /does not match/],
    ['a timestamp over 5 minutes old', { now: now + SLACK_MAX_SKEW_MS + 1000 }, /from now/],
    ['a timestamp over 5 minutes ahead', { now: now - SLACK_MAX_SKEW_MS - 1000 }, /from now/],
    ['a timestamp in milliseconds', { timestamp: `${SLACK_DOC.timestamp}000` }, /malformed X-Slack-Request-Timestamp/],
    ['a missing timestamp header', { timestamp: undefined }, /missing X-Slack-Request-Timestamp/],
    ['an empty timestamp header', { timestamp: '' }, /missing X-Slack-Request-Timestamp/],
    ['a missing signature header', { signature: undefined }, /missing X-Slack-Signature/],
    ['a non-numeric timestamp', { timestamp: '1531420618.5' }, /malformed X-Slack-Request-Timestamp/],
    ['a negative timestamp', { timestamp: '-1531420618' }, /malformed X-Slack-Request-Timestamp/],
    ['a signature one digit short', { signature: SLACK_DOC.signature.slice(0, -1) }, /malformed X-Slack-Signature/],
    ['a signature one digit long', { signature: `${SLACK_DOC.signature}0` }, /malformed X-Slack-Signature/],
    ['a signature of another scheme', { signature: SLACK_DOC.signature.replace('v0=', 'v1=') }, /malformed X-Slack-Signature/],
    ['a signature without its scheme', { signature: SLACK_DOC.signature.slice(3) }, /malformed X-Slack-Signature/],
    ['a signature that is not hex', { signature: `v0=${'z'.repeat(64)}` }, /malformed X-Slack-Signature/],
    ['an empty signing secret', { signingSecret: '' }, /no signing secret/],
  ])('refuses %s', (_rule, over, reason) => {
    const r = verifySlackSignature(docInput(over));
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(reason);
  });
});

// RFC 8032 section 7.1, TEST 1: the empty message.
const RFC8032_TEST1 = {
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
};

describe('verifyDiscordSignature: Ed25519 over timestamp + body', () => {
  const keys = discordKeys();
  const other = discordKeys();
  const body = '{"type":1}';
  const ts = '1700000000';
  const h = keys.sign(body, ts);
  const good = { publicKeyHex: keys.publicKeyHex, timestamp: ts, signature: h['x-signature-ed25519'], rawBody: body };

  it('accepts RFC 8032 TEST 1 as an empty timestamp and empty body', () => {
    expect(verifyDiscordSignature({ publicKeyHex: RFC8032_TEST1.publicKey, timestamp: '', signature: RFC8032_TEST1.signature, rawBody: '' })).toBe(true);
  });

  it('accepts a request signed by the key, with the signature in either hex case', () => {
    expect(verifyDiscordSignature(good)).toBe(true);
    expect(verifyDiscordSignature({ ...good, signature: good.signature.toUpperCase(), publicKeyHex: good.publicKeyHex.toUpperCase() })).toBe(true);
  });

  const flip = (hex: string, at: number): string => hex.slice(0, at) + (hex[at] === '0' ? '1' : '0') + hex.slice(at + 1);
  it.each<[string, Partial<typeof good>]>([
    ['a tampered body', { rawBody: '{"type":2}' }],
    ['a tampered timestamp', { timestamp: '1700000001' }],
    ['a tampered signature', { signature: flip(h['x-signature-ed25519'], 10) }],
    ['another application key', { publicKeyHex: other.publicKeyHex }],
    ['a missing timestamp', { timestamp: undefined }],
    ['a missing signature', { signature: undefined }],
    ['a signature that is not hex', { signature: 'g'.repeat(128) }],
    ['a signature one byte short', { signature: h['x-signature-ed25519'].slice(0, -2) }],
    ['a public key one byte short', { publicKeyHex: keys.publicKeyHex.slice(0, -2) }],
    ['a public key that is not hex', { publicKeyHex: 'x'.repeat(64) }],
    ['an empty public key', { publicKeyHex: '' }],
    ['a public key off the curve', { publicKeyHex: 'ff'.repeat(32) }],
  ])('refuses %s without throwing', (_rule, over) => {
    expect(verifyDiscordSignature({ ...good, ...over })).toBe(false);
  });
});

describe('publicKeyProblem: 64 hex digits that encode an Ed25519 point', () => {
  it.each([
    ['a generated key', discordKeys().publicKeyHex],
    ["RFC 8032 TEST 1's key", RFC8032_TEST1.publicKey],
    ['upper-case hex', RFC8032_TEST1.publicKey.toUpperCase()],
  ])('accepts %s', (_rule, hex) => {
    expect(publicKeyProblem(hex)).toBeNull();
  });

  it.each([
    ['an empty string', '', /64 hex digits/],
    ['63 digits', RFC8032_TEST1.publicKey.slice(1), /64 hex digits/],
    ['65 digits', `${RFC8032_TEST1.publicKey}0`, /64 hex digits/],
    ['a non-hex character', `${RFC8032_TEST1.publicKey.slice(1)}g`, /64 hex digits/],
    ['surrounding blanks', ` ${RFC8032_TEST1.publicKey} `, /64 hex digits/],
    // y = 2^255 - 1 is not below p: not a canonical encoding.
    ['a y coordinate not below p', 'ff'.repeat(31) + '7f', /not a point/],
    // y = 2: (y² - 1)/(d·y² + 1) has no square root mod p.
    ['a y with no x on the curve', `02${'00'.repeat(31)}`, /not a point/],
    // y = 1 gives x = 0, which has no negative: the sign bit must be clear.
    ['x = 0 with the sign bit set', `01${'00'.repeat(30)}80`, /not a point/],
  ])('refuses %s', (_rule, hex, problem) => {
    expect(publicKeyProblem(hex)).toMatch(problem);
  });
});
