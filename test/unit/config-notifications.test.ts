import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { parseTestConfig, problemsOf, webTargetConfig } from '../support/config.js';

const PUBLIC_KEY = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';

/** The issue's example, as an operator would write it, with its variables set. */
const ISSUE_EXAMPLE = `
notifications:
  - name: ops-slack
    type: slack                 # slack | teams | discord | webhook
    url: "\${SLACK_WEBHOOK_URL}"
    events: [changed, failed]
    targets: [web]
  - name: audit
    type: webhook
    url: https://audit.example.com/pulumiscale
    secret: "\${AUDIT_HOOK_SECRET}"
chatops:
  slack: { signingSecret: "\${SLACK_SIGNING_SECRET}", users: [U0123ABCD] }
  discord: { publicKey: "\${DISCORD_PUBLIC_KEY}" }
${webTargetConfig('    approval: { via: ops-slack, timeout: 30m }')}`;

const ENV = {
  SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T000/B000/XXXX',
  AUDIT_HOOK_SECRET: 's3cret',
  SLACK_SIGNING_SECRET: '8f742231b10e8888abcd99yyyzzz85a5',
  DISCORD_PUBLIC_KEY: PUBLIC_KEY,
};

/** A config with `notifications` given as YAML list items, and the web target's `extra` keys. */
function withNotifications(items: string[], extra = ''): string {
  return `notifications:\n${items.map((i) => `  - ${i}\n`).join('')}${webTargetConfig(extra)}`;
}

describe('config: notifications, chatops and approval', () => {
  it("parses the issue's example with its defaults", () => {
    const c = parseConfig(ISSUE_EXAMPLE, { file: 'test.yaml', baseDir: '/etc/pulumiscale', env: ENV });
    expect(c.notifications).toStrictEqual([
      { name: 'ops-slack', type: 'slack', url: ENV.SLACK_WEBHOOK_URL, events: ['changed', 'failed'], targets: ['web'], maxAge: 3_600_000, timeout: 10_000 },
      { name: 'audit', type: 'webhook', url: 'https://audit.example.com/pulumiscale', secret: 's3cret', events: ['changed', 'failed'], targets: [], maxAge: 3_600_000, timeout: 10_000 },
    ]);
    expect(c.chatops).toStrictEqual({ slack: { signingSecret: ENV.SLACK_SIGNING_SECRET, users: ['U0123ABCD'] }, discord: { publicKey: PUBLIC_KEY, users: [] } });
    expect(c.targets.web?.approval).toStrictEqual({ via: 'ops-slack', timeout: 1_800_000 });
  });

  it('without them, nothing is sent and no chat route is configured', () => {
    const c = parseTestConfig(webTargetConfig(''));
    expect(c.notifications).toStrictEqual([]);
    expect(c.chatops).toStrictEqual({});
    expect(c.targets.web?.approval).toBeUndefined();
  });

  it.each([
    ['an unknown type', ['{ name: a, type: email, url: "https://x.example" }'], '', 'notifications.0.type'],
    ['a URL that is not one', ['{ name: a, type: slack, url: "hooks.slack.com/x" }'], '', 'notifications.0.url'],
    ['a URL of another scheme', ['{ name: a, type: slack, url: "ftp://x.example/" }'], '', 'notifications.0.url'],
    ['a URL with credentials (fetch refuses it, quoting them)', ['{ name: a, type: webhook, url: "https://user:pw@x.example/" }'], '', 'notifications.0.url'],
    ['an unknown event kind', ['{ name: a, type: slack, url: "https://x.example", events: [scaled] }'], '', 'notifications.0.events.0'],
    ['no event kinds at all', ['{ name: a, type: slack, url: "https://x.example", events: [] }'], '', 'notifications.0.events'],
    ['a target that is not configured', ['{ name: a, type: slack, url: "https://x.example", targets: [api] }'], '', 'notifications.0.targets.0'],
    ['a duplicate name', ['{ name: a, type: slack, url: "https://x.example" }', '{ name: a, type: discord, url: "https://y.example" }'], '', 'notifications.1.name'],
    ['a secret on a chat platform', ['{ name: a, type: slack, url: "https://x.example", secret: s }'], '', 'notifications.0.secret'],
    ['a maxAge under a second', ['{ name: a, type: slack, url: "https://x.example", maxAge: 10ms }'], '', 'notifications.0.maxAge'],
    ['an unknown key', ['{ name: a, type: slack, url: "https://x.example", channel: "#ops" }'], '', 'notifications.0'],
    ['an approval via an unknown destination', ['{ name: a, type: slack, url: "https://x.example" }'], '    approval: { via: b }', 'targets.web.approval.via'],
    ['an approval timeout under a second', ['{ name: a, type: slack, url: "https://x.example" }'], '    approval: { via: a, timeout: 5ms }', 'targets.web.approval.timeout'],
  ])('refuses %s, naming its path', (_name, items, extra, path) => {
    expect(problemsOf(withNotifications(items, extra)).map((p) => p.path)).toContain(path);
  });

  it('an approval needs some destination', () => {
    const problems = problemsOf(webTargetConfig('    approval: { via: ops }'));
    expect(problems).toContainEqual({ path: 'targets.web.approval.via', message: 'no notification named "ops" (none is configured)' });
  });

  it.each([
    ['a Discord key of the wrong length', 'chatops: { discord: { publicKey: abc } }', 'chatops.discord.publicKey'],
    ['a Discord key of 64 hex characters that is no Ed25519 key', `chatops: { discord: { publicKey: "02${'00'.repeat(31)}" } }`, 'chatops.discord.publicKey'],
    ['an empty Slack signing secret', 'chatops: { slack: { signingSecret: "" } }', 'chatops.slack.signingSecret'],
    ['an unknown platform', 'chatops: { teams: {} }', 'chatops'],
  ])('refuses %s', (_name, yaml, path) => {
    expect(problemsOf(`${yaml}\n${webTargetConfig('')}`).map((p) => p.path)).toContain(path);
  });

  it('never repeats a webhook URL (a secret) in a problem message', () => {
    const problems = problemsOf(withNotifications(['{ name: a, type: slack, url: "not a url T000/B000/SECRETPART" }']));
    expect(problems.map((p) => p.message).join(' ')).not.toContain('SECRETPART');
  });

  it('server.publicUrl must be an http(s) URL', () => {
    expect(problemsOf(`server: { publicUrl: "scaler.example.com" }\n${webTargetConfig('')}`).map((p) => p.path)).toContain('server.publicUrl');
    expect(parseTestConfig(`server: { publicUrl: "https://scaler.example.com" }\n${webTargetConfig('')}`).server.publicUrl).toBe('https://scaler.example.com');
  });
});
