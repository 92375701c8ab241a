import { afterEach, describe, expect, it } from 'vitest';
import { cut, describeEvent, joinWithin } from '../../src/notify/formats/describe.js';
import { formats, type DestinationType, type FormatContext, type OutgoingMessage } from '../../src/notify/formats/index.js';
import { signWebhook } from '../../src/notify/formats/webhook.js';
import type { ScalingEvent } from '../../src/types.js';
import { checkDiscord, checkSlack, checkTeams, checkWebhook, startReceiver, type Receiver } from '../support/chat-receivers.js';

const AT = '2026-11-27T10:00:00.000Z';
const NOW = Date.parse(AT) + 1234;
const SECRET = 'whsec-test';
const ctx = (patch: Partial<FormatContext> = {}): FormatContext => ({ publicUrl: 'https://scaler.example.com', secret: SECRET, now: NOW, ...patch });

function event(patch: Partial<ScalingEvent> = {}): ScalingEvent {
  return {
    id: 'ev-0001',
    target: 'web',
    at: AT,
    kind: 'changed',
    from: 3,
    to: 5,
    reason: 'alert HighCPU',
    source: 'alertmanager',
    intents: 1,
    durationMs: 42_300,
    dryRun: false,
    ...patch,
  };
}

const signal = (i: number) => ({ id: `fp${i}`, source: 'alertmanager' as const, direction: 'up' as const, value: 91.5, threshold: 80 });
const APPROVAL_ID = '0b6f3c1e-2a4d-4f7e-9c8b-1d2e3f4a5b6c';
const alice = { via: 'slack' as const, id: 'U0123ABCD', name: 'alice' };

/** One event of each kind a notification goes out for. */
const EVENTS: Array<{ name: string; event: ScalingEvent }> = [
  { name: 'changed with signals', event: event({ signals: [signal(1), { ...signal(2), value: null, threshold: null }], rule: 'cpu-high' }) },
  {
    name: 'changed from a chat command with an actor',
    event: event({ source: 'chat', reason: 'manual', commands: ['cmd-1', 'cmd-2'], intents: 2, evidence: { actor: alice } }),
  },
  { name: 'failed with errorCode', event: event({ kind: 'failed', errorCode: 'PS_PULUMI_CONFLICT', reason: 'the stack is locked by another update' }) },
  { name: 'skipped', event: event({ kind: 'skipped', to: null, skipReason: 'cooldown', reason: 'cooling down until 10:05', durationMs: 0 }) },
  { name: 'previewed', event: event({ kind: 'previewed', dryRun: true }) },
  {
    name: 'awaiting-approval',
    event: event({
      kind: 'awaiting-approval',
      approval: { id: APPROVAL_ID, status: 'pending', expiresAt: '2026-11-27T10:15:00.000Z', changes: { update: 1, replace: 0 }, via: 'ops-slack', decidedBy: null },
    }),
  },
  { name: 'missed', event: event({ kind: 'missed', source: 'schedule', from: null, to: 2, evidence: { schedule: { name: 'nightly', fireAt: '2026-11-27T02:00:00Z' } } }) },
];

/** Each platform's checker over a formatted message. */
const CHECKS: Record<DestinationType, (m: OutgoingMessage) => string[]> = {
  slack: (m) => checkSlack(JSON.parse(m.body)),
  teams: (m) => checkTeams(m.body),
  discord: (m) => checkDiscord(JSON.parse(m.body)),
  webhook: (m) => checkWebhook(m.headers, m.body, SECRET),
};
const TYPES = Object.keys(CHECKS) as DestinationType[];

/** The parts of each platform's body the tests read. */
interface SlackBody {
  text: string;
  blocks: Array<{ type: string; text?: { text: string }; elements?: Array<{ type: string; text?: unknown; action_id?: string; value?: string; style?: string }> }>;
}
interface TeamsBody {
  attachments: Array<{ content: { actions?: Array<{ type: string; url: string }> } }>;
}
interface DiscordBody {
  content: string;
  allowed_mentions: unknown;
  embeds: Array<{ title: string; description: string; url?: string; footer: { text: string }; fields: Array<{ name: string; value: string }> }>;
}
const parse = <T>(type: DestinationType, e: ScalingEvent, c = ctx()) => JSON.parse(formats[type](e, c).body) as T;
const slack = (e: ScalingEvent, c = ctx()) => parse<SlackBody>('slack', e, c);
const teams = (e: ScalingEvent, c = ctx()) => parse<TeamsBody>('teams', e, c);
const discord = (e: ScalingEvent, c = ctx()) => parse<DiscordBody>('discord', e, c);
const slackSections = (body: SlackBody) => body.blocks.flatMap((b) => (b.type === 'section' && b.text ? [b.text.text] : []));
/** Every string in a parsed body, to look for half an emoji anywhere. */
const strings = (v: unknown): string[] => (typeof v === 'string' ? [v] : typeof v === 'object' && v !== null ? Object.values(v).flatMap(strings) : []);

describe('every format passes its platform checker', () => {
  it.each(TYPES.flatMap((type) => EVENTS.map(({ name, event }) => ({ type, name, event }))))('$type: $name', ({ type, event }) => {
    for (const c of [ctx(), ctx({ publicUrl: null, secret: null })]) {
      const message = formats[type](event, c);
      expect(message.headers['content-type']).toBe('application/json');
      expect(type === 'webhook' && c.secret === null ? checkWebhook(message.headers, message.body) : CHECKS[type](message)).toEqual([]);
    }
  });
});

describe('the words', () => {
  it.each([
    { name: 'a change says from and to', e: event(), title: 'web: 3 → 5 (changed)' },
    { name: 'an unknown start is a question mark', e: event({ kind: 'missed', from: null, to: 2 }), title: 'web: ? → 2 (missed)' },
    { name: 'a skip without a new value shows the value kept', e: event({ kind: 'skipped', to: null }), title: 'web: 3 (skipped)' },
    { name: 'an approval wait says so in words', e: event({ kind: 'awaiting-approval' }), title: 'web: 3 → 5 (awaiting approval)' },
  ])('title: $name', ({ e, title }) => {
    expect(describeEvent(e, null).title).toBe(title);
  });

  it('a chat command names who sent it and how many commands it covers', () => {
    const facts = describeEvent(EVENTS[1]!.event, null).facts;
    expect(facts).toEqual(expect.arrayContaining([{ label: 'Requested by', value: 'alice (slack)' }, { label: 'Commands', value: '2' }]));
  });

  it('the details: signals, rule, duration, error, schedule', () => {
    const words = (e: ScalingEvent) => describeEvent(e, null).facts.map((f) => `${f.label}: ${f.value}`);
    expect(words(EVENTS[0]!.event)).toEqual(expect.arrayContaining(['Rule: cpu-high', 'Took: 42.3 s']));
    expect(describeEvent(EVENTS[0]!.event, null).signals).toEqual(['fp1 (alertmanager): up, value 91.5, threshold 80', 'fp2 (alertmanager): up, value unknown, threshold unknown']);
    expect(words(EVENTS[2]!.event)).toContain('Error: PS_PULUMI_CONFLICT');
    expect(words(EVENTS[6]!.event)).toContain('Schedule: nightly (due 2026-11-27 02:00:00 UTC)');
  });

  it.each([
    { rule: 'a short text is kept', text: 'abc', max: 3, want: 'abc' },
    { rule: 'a long text ends in an ellipsis within the limit', text: 'abcdef', max: 4, want: 'abc…' },
    { rule: 'a cut never splits a surrogate pair', text: 'a😀😀', max: 3, want: 'a…' },
    { rule: 'a cut right after a pair keeps it', text: '😀😀😀', max: 4, want: '😀…' },
  ])('cut: $rule', ({ text, max, want }) => {
    expect(cut(text, max)).toBe(want);
    expect(cut(text, max).length).toBeLessThanOrEqual(max);
  });

  it('joinWithin keeps whole lines and says how many were left out', () => {
    const out = joinWithin(Array.from({ length: 100 }, (_, i) => `line ${i}`), 60);
    expect(out.length).toBeLessThanOrEqual(60);
    expect(out.split('\n').slice(0, -1).every((l) => /^line \d+$/.test(l))).toBe(true);
    expect(out).toMatch(/… and \d+ more$/);
  });
});

describe('huge events still fit every platform', () => {
  const many = Array.from({ length: 500 }, (_, i) => ({ ...signal(i), id: `${'x'.repeat(200)}-${i}` }));
  it.each([
    { name: '100 KB reason', e: event({ reason: 'r'.repeat(100_000) }) },
    { name: 'emoji reason', e: event({ reason: '😀'.repeat(50_000) }) },
    { name: 'mrkdwn-heavy reason', e: event({ reason: '<&>'.repeat(30_000) }) },
    { name: 'control characters (6 bytes each in JSON)', e: event({ reason: '\u0001'.repeat(30_000) }) },
    { name: '500 signals', e: event({ signals: many }) },
    { name: 'everything at once', e: event({ reason: 'a😀'.repeat(40_000), signals: many, evidence: { actor: { ...alice, name: '😀'.repeat(5000) } } }) },
  ])('$name', ({ e }) => {
    for (const type of TYPES) {
      expect(CHECKS[type](formats[type](e, ctx())), type).toEqual([]);
      expect(strings(parse<unknown>(type, e)).filter((s) => /[\uD800-\uDFFF]/u.test(s)), `${type}: half an emoji`).toEqual([]);
    }
    const d = discord(e);
    const embed = d.embeds[0]!;
    const total = [embed.title, embed.description, embed.footer.text, ...embed.fields.flatMap((f) => [f.name, f.value])].join('').length;
    expect(total).toBeLessThanOrEqual(6000);
    expect(d.content.length).toBeLessThanOrEqual(2000);
    expect(Buffer.byteLength(formats.teams(e, ctx()).body)).toBeLessThan(28_672);
    for (const text of slackSections(slack(e))) expect(text.length).toBeLessThanOrEqual(3000);
  });

  it('500 signals become a bounded list that says how many were left out', () => {
    const text = slackSections(slack(event({ signals: many }))).find((t) => t.startsWith('*Signals (500)'));
    expect(text).toMatch(/… and \d+ more$/);
  });
});

describe('Slack', () => {
  it('a change awaiting approval carries Approve and Reject buttons with the approval id', () => {
    const body = slack(EVENTS[5]!.event);
    const actions = body.blocks.find((b) => b.type === 'actions');
    expect(actions?.elements).toEqual([
      expect.objectContaining({ type: 'button', action_id: 'pulumiscale_approve', style: 'primary', value: APPROVAL_ID }),
      expect.objectContaining({ type: 'button', action_id: 'pulumiscale_reject', style: 'danger', value: APPROVAL_ID }),
    ]);
    const text = slackSections(body).join('\n');
    expect(text).toContain('update 1, replace 0');
    expect(text).toContain('2026-11-27 10:15:00 UTC');
  });

  it.each(EVENTS.filter(({ event: e }) => e.kind !== 'awaiting-approval'))('no buttons when nothing waits: $name', ({ event: e }) => {
    expect(slack(e).blocks.some((b) => b.type === 'actions')).toBe(false);
  });

  it('user text is escaped for mrkdwn: no channel ping, no injected link', () => {
    const body = slack(event({ reason: '<!channel> & <http://evil.example|click>' }));
    const escaped = '&lt;!channel&gt; &amp; &lt;http://evil.example|click&gt;';
    expect(slackSections(body)[0]).toContain(escaped);
    expect(body.text).toContain(escaped);
    expect(JSON.stringify(body)).not.toContain('<!channel>');
  });

  it('a cut never leaves half an entity', () => {
    const body = slack(event({ reason: '&'.repeat(5000) }));
    expect(slackSections(body)[0]).toMatch(/(&amp;)+…$/);
  });
});

describe('Discord', () => {
  it('user text never pings: allowed_mentions parses nothing', () => {
    expect(discord(event({ reason: '@everyone <@123456>' })).allowed_mentions).toEqual({ parse: [] });
  });
});

describe('links to the history appear only with a public URL', () => {
  const target = 'web api/ü';
  const e = event({ target });
  const link = 'https://scaler.example.com/api/v1/events?target=web%20api%2F%C3%BC';
  /** Where each platform puts the link, found in the message for a context. */
  const linkOf: Array<{ type: DestinationType; find: (c: FormatContext) => unknown }> = [
    { type: 'slack', find: (c) => slack(e, c).blocks.find((b) => b.type === 'context')?.elements?.map((x) => String(x.text)).find((t) => t.startsWith('<')) },
    { type: 'teams', find: (c) => teams(e, c).attachments[0]?.content.actions?.find((a) => a.type === 'Action.OpenUrl')?.url },
    { type: 'discord', find: (c) => discord(e, c).embeds[0]?.url },
  ];
  it.each(linkOf)('$type', ({ type, find }) => {
    expect(String(find(ctx()))).toContain(link);
    // A trailing slash on the configured URL gives no double slash.
    expect(String(find(ctx({ publicUrl: 'https://scaler.example.com/' })))).toContain(link);
    expect(find(ctx({ publicUrl: null }))).toBeUndefined();
    expect(formats[type](e, ctx({ publicUrl: null })).body).not.toContain('/api/v1/events');
  });
});

describe('the signed webhook', () => {
  const e = EVENTS[0]!.event;
  const m = formats.webhook(e, ctx());
  const ts = m.headers['X-PulumiScale-Timestamp']!;

  it('sends the event itself, timestamped in Unix seconds', () => {
    expect(JSON.parse(m.body)).toEqual(e);
    expect(ts).toBe(String(Math.floor(NOW / 1000)));
  });

  it('the signature verifies with signWebhook and with the independent checker', () => {
    expect(m.headers['X-PulumiScale-Signature']).toBe(signWebhook(SECRET, ts, m.body));
    expect(m.headers['X-PulumiScale-Signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it.each([
    { rule: 'a tampered body', headers: m.headers, body: m.body.replace('"to":5', '"to":50') },
    { rule: 'a tampered timestamp', headers: { ...m.headers, 'X-PulumiScale-Timestamp': String(Number(ts) + 60) }, body: m.body },
    { rule: 'another secret', headers: { ...m.headers, 'X-PulumiScale-Signature': signWebhook('other', ts, m.body) }, body: m.body },
  ])('$rule does not verify', ({ headers, body }) => {
    expect(headers['X-PulumiScale-Signature']).not.toBe(signWebhook(SECRET, headers['X-PulumiScale-Timestamp']!, body));
    expect(checkWebhook(headers, body, SECRET)).toEqual([expect.stringContaining('X-PulumiScale-Signature')]);
  });

  it('without a secret there is no signature header', () => {
    expect(formats.webhook(e, ctx({ secret: null })).headers).not.toHaveProperty('X-PulumiScale-Signature');
  });
});

describe('the local receivers', () => {
  let receivers: Receiver[] = [];
  afterEach(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    receivers = [];
  });
  const start = async (...args: Parameters<typeof startReceiver>) => {
    const r = await startReceiver(...args);
    receivers.push(r);
    return r;
  };
  const post = (url: string, m: Pick<OutgoingMessage, 'body'> & { headers?: Record<string, string> }) =>
    fetch(url, { method: 'POST', headers: m.headers ?? { 'content-type': 'application/json' }, body: m.body });

  it.each([
    { type: 'slack' as const, status: 200, text: 'ok' },
    { type: 'teams' as const, status: 202, text: '' },
    { type: 'discord' as const, status: 204, text: '' },
    { type: 'webhook' as const, status: 200, text: '' },
  ])('$type takes every kind of event and answers $status', async ({ type, status, text }) => {
    const r = await start({ type, secret: SECRET });
    for (const { event: e } of EVENTS) {
      const res = await post(r.url, formats[type](e, ctx()));
      expect([res.status, await res.text()]).toEqual([status, text]);
    }
    await r.waitFor(EVENTS.length);
    expect(r.problems).toEqual([]);
  });

  it.each([
    { rule: 'Discord content over 2,000 characters', type: 'discord' as const, body: { content: 'x'.repeat(2001), allowed_mentions: { parse: [] } }, answer: /Invalid Form Body/ },
    { rule: 'a Slack header over 150 characters', type: 'slack' as const, body: { blocks: [{ type: 'header', text: { type: 'plain_text', text: 'x'.repeat(151) } }] }, answer: /^invalid_payload$/ },
    { rule: 'a Teams card without a body', type: 'teams' as const, body: { type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard', version: '1.4' } }] }, answer: /body/ },
    { rule: 'a Teams payload of 28 KB', type: 'teams' as const, body: { type: 'message', text: 'x'.repeat(28_672) }, answer: /28 KB/ },
  ])('refuses $rule with 400 and records the problem', async ({ type, body, answer }) => {
    const r = await start({ type });
    const res = await post(r.url, { body: JSON.stringify(body) });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(answer);
    await r.waitFor(1);
    expect(r.problems.length).toBeGreaterThan(0);
  });

  it('refuses a webhook request whose signature does not match', async () => {
    const r = await start({ type: 'webhook', secret: SECRET });
    const m = formats.webhook(EVENTS[0]!.event, ctx({ secret: 'other' }));
    expect((await post(r.url, m)).status).toBe(400);
    expect(r.problems).toEqual([expect.stringContaining('does not match')]);
  });

  it('answers the script first (429 with Retry-After), then succeeds', async () => {
    const r = await start({ type: 'slack', script: [{ status: 429, retryAfter: 7 }, { status: 503 }] });
    const m = formats.slack(EVENTS[0]!.event, ctx());
    const answers = [];
    for (let i = 0; i < 3; i += 1) {
      const res = await post(r.url, m);
      answers.push([res.status, res.headers.get('retry-after')]);
    }
    expect(answers).toEqual([
      [429, '7'],
      [503, null],
      [200, null],
    ]);
    await r.waitFor(3);
    expect(r.received.map((x) => x.body)).toEqual([JSON.parse(m.body), JSON.parse(m.body), JSON.parse(m.body)]);
  });

  it('waitFor rejects when the requests do not come', async () => {
    const r = await start({ type: 'discord' });
    await expect(r.waitFor(1, 50)).rejects.toThrow(/0 of 1/);
  });
});
