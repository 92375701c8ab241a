/**
 * End to end, notifications and ChatOps (issue 10): the built daemon as a child process, real
 * HTTP, the real Pulumi CLI on a file backend, and local receivers that check each platform's
 * documented payload shape (test/support/chat-receivers.ts) in place of Slack, Teams, Discord
 * and a signed webhook. Assertions on the stack, the receivers and the API, never on log lines.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ScalingEvent } from '../../src/types.js';
import { settledAt, startDaemonProcess, targetEvents, until, type DaemonProcess } from '../support/daemon.js';
import { startReceiver, type Receiver } from '../support/chat-receivers.js';
import { signSlack, slackActionBody, slashCommandBody } from '../support/chat-sign.js';
import { configGet, createPulumiSandbox, deployedStack, pulumiOk, type FixtureStack, type PulumiSandbox } from '../support/pulumi.js';
import { fixture } from '../support/sns.js';

const SIGNING_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const HOOK_SECRET = 'audit-hook-secret';
/** A Slack response URL nobody listens on: the daemon's post there fails fast, as it may. */
const RESPONSE_URL = 'https://127.0.0.1:1/commands/T1/1/x';

let sandbox: PulumiSandbox;
const receivers: Receiver[] = [];

beforeAll(async () => {
  sandbox = await createPulumiSandbox();
});
afterAll(async () => {
  await sandbox?.cleanup();
});
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function receiver(opts: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const r = await startReceiver(opts);
  receivers.push(r);
  return r;
}

/** The daemon's config for one target `web` on `stack`, with `extra` top-level keys and target keys. */
function config(stack: FixtureStack, extra: Record<string, unknown>, target: Record<string, unknown> = {}): string {
  return JSON.stringify({
    server: { host: '127.0.0.1', port: 0 },
    engine: { evaluationInterval: '1s', drainTimeout: '1m' },
    store: { path: `./${stack.name}.db` },
    pulumi: { backendUrl: sandbox.backendUrl, cliDir: sandbox.cliDir, env: sandbox.pulumiEnv },
    log: { level: 'info' },
    targets: { web: { workDir: stack.dir, stack: stack.name, configKey: 'web:replicas', min: 1, max: 10, cooldown: { up: '0s', down: '0s' }, ...target } },
    ...extra,
  });
}

async function updates(stack: FixtureStack): Promise<number> {
  const history = JSON.parse(await pulumiOk(sandbox, ['stack', 'history', '--json', '--stack', stack.name], stack.dir)) as { kind: string }[];
  return history.filter((h) => h.kind === 'update').length;
}

/** Posts a signed Slack request (a slash command or a button press) to `route`. */
function slack(d: DaemonProcess, route: string, body: string) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', ...signSlack(SIGNING_SECRET, body, Math.floor(Date.now() / 1000)) };
  return d.request<{ response_type?: string; text?: string }>('POST', route, body, headers);
}

describe('notifications', () => {
  it('a real scale operation gives exactly one message on each destination, each in its platform format', async () => {
    const stack = await deployedStack(sandbox, 'notify-each', 2);
    const [slackHook, teams, discord, hook] = await Promise.all([
      receiver({ type: 'slack' }),
      receiver({ type: 'teams' }),
      receiver({ type: 'discord' }),
      receiver({ type: 'webhook', secret: HOOK_SECRET }),
    ]);
    const notifications = [
      { name: 'ops-slack', type: 'slack', url: slackHook.url },
      { name: 'ops-teams', type: 'teams', url: teams.url },
      { name: 'ops-discord', type: 'discord', url: discord.url },
      { name: 'audit', type: 'webhook', url: hook.url, secret: HOOK_SECRET, events: ['changed', 'failed', 'skipped'] },
    ];
    const d = await startDaemonProcess(sandbox.root, config(stack, { notifications, server: { host: '127.0.0.1', port: 0, publicUrl: 'https://scaler.example.com' } }), sandbox.env);
    try {
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 3, reason: 'launch' })).status).toBe(202);
      await settledAt(d, 3);
      await Promise.all([slackHook, teams, discord, hook].map((r) => r.waitFor(1, 30_000)));
      for (const r of [slackHook, teams, discord, hook]) expect(r.problems).toEqual([]);
      const event = (await targetEvents(d)).find((e) => e.kind === 'changed') as ScalingEvent;
      // The webhook carries the event itself, signed.
      expect(hook.received[0]?.body).toStrictEqual(event);
      expect(JSON.stringify(slackHook.received[0]?.body)).toContain('scaler.example.com/api/v1/events?target=web');
      for (const r of [slackHook, teams, discord]) expect(JSON.stringify(r.received[0]?.body)).toMatch(/2 → 3/);
      // Sent once each: the outbox is empty and the metrics say four were sent.
      const metrics = await until(async () => {
        const text = (await d.request<string>('GET', '/metrics')).body;
        return /pulumiscale_notifications_queued\{destination="audit"\} 0/.test(text) ? text : undefined;
      }, 'an empty outbox');
      for (const name of ['ops-slack', 'ops-teams', 'ops-discord', 'audit']) {
        expect(metrics).toContain(`pulumiscale_notifications_total{destination="${name}",outcome="sent"} 1`);
      }
      for (const r of [slackHook, teams, discord, hook]) expect(r.received).toHaveLength(1);
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });

  it('a destination that answers 429 then 200 gets every message, in order, across a restart in between', async () => {
    const stack = await deployedStack(sandbox, 'notify-restart', 2);
    const hook = await receiver({ type: 'webhook', secret: HOOK_SECRET, script: [{ status: 429, retryAfter: 2 }] });
    const text = config(stack, { notifications: [{ name: 'audit', type: 'webhook', url: hook.url, secret: HOOK_SECRET, events: ['ignored', 'changed'] }] });
    // One notification of three resolved alerts that were never firing here: three `ignored`
    // events, committed together, so three messages wait before the first is sent.
    const base = fixture<{ alerts: Record<string, unknown>[] }>('alertmanager/notification-resolved.json');
    const first = base.alerts[0] as Record<string, unknown> & { labels: Record<string, string> };
    const alerts = ['a', 'b', 'c'].map((tag) => ({ ...first, labels: { ...first.labels, pulumiscale_target: 'web' }, fingerprint: `resolved-${tag}` }));

    let d = await startDaemonProcess(sandbox.root, text, sandbox.env);
    try {
      expect((await d.request('POST', '/webhooks/alertmanager', { ...base, alerts })).status).toBe(202);
      await hook.waitFor(1, 30_000);
    } finally {
      // Stopped right after the 429, before its Retry-After ends.
      expect(await d.stop('SIGTERM')).toBe(0);
    }
    expect(hook.received.map((r) => r.status)).toEqual([429]);

    d = await startDaemonProcess(sandbox.root, text, sandbox.env);
    try {
      await hook.waitFor(4, 30_000);
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 4 })).status).toBe(202);
      await settledAt(d, 4);
      await hook.waitFor(5, 30_000);
      expect(hook.problems).toEqual([]);
      const bodies = hook.received.map((r) => r.body as ScalingEvent);
      const ignored = bodies.slice(1, 4);
      // The refused one again first, then the other two, in the order they were recorded.
      expect(bodies[0]?.id).toBe(ignored[0]?.id);
      expect(ignored.map((e) => e.kind)).toEqual(['ignored', 'ignored', 'ignored']);
      const recorded = (await d.request<ScalingEvent[]>('GET', '/api/v1/events?limit=20')).body.filter((e) => e.kind === 'ignored').reverse();
      expect(ignored.map((e) => e.id)).toEqual(recorded.map((e) => e.id));
      expect(bodies[4]).toMatchObject({ kind: 'changed', from: 2, to: 4 });
      expect(hook.received.slice(1).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });
});

describe('ChatOps on the real stack', () => {
  it('a signed Slack slash command scales the real stack and names the chat user', async () => {
    const stack = await deployedStack(sandbox, 'chat-scale', 2);
    const d = await startDaemonProcess(sandbox.root, config(stack, { chatops: { slack: { signingSecret: SIGNING_SECRET, users: ['U0ALICE'] } } }), sandbox.env);
    try {
      const body = slashCommandBody({ text: 'scale web to 5', userId: 'U0ALICE', userName: 'alice', responseUrl: RESPONSE_URL });
      const answer = await slack(d, '/chatops/slack', body);
      expect(answer).toMatchObject({ status: 200, body: { response_type: 'in_channel' } });
      await settledAt(d, 5);
      expect(await configGet(sandbox, stack.dir, stack.name, 'web:replicas')).toBe('5');
      const changed = (await targetEvents(d)).find((e) => e.kind === 'changed');
      expect(changed).toMatchObject({ source: 'chat', from: 2, to: 5, evidence: { actor: { via: 'slack', id: 'U0ALICE', name: 'alice' } } });

      // A tampered one changes nothing.
      const tampered = slashCommandBody({ text: 'scale web to 9', userId: 'U0ALICE', userName: 'alice', responseUrl: RESPONSE_URL });
      const headers = { 'content-type': 'application/x-www-form-urlencoded', ...signSlack(SIGNING_SECRET, body, Math.floor(Date.now() / 1000)) };
      expect((await d.request('POST', '/chatops/slack', tampered, headers)).status).toBe(401);
      // Someone off the allow-list is told so, and nothing is queued.
      const bob = await slack(d, '/chatops/slack', slashCommandBody({ text: 'scale web to 1', userId: 'U0BOB', userName: 'bob', responseUrl: RESPONSE_URL }));
      expect(bob).toMatchObject({ status: 200, body: { response_type: 'ephemeral' } });
      expect((await d.request<{ pendingCount: number }>('GET', '/api/v1/targets/web')).body.pendingCount).toBe(0);
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });

  it('with approval, an alert-driven change is previewed, posted with buttons, and applied only after Approve', async () => {
    const stack = await deployedStack(sandbox, 'chat-approve', 2);
    const slackHook = await receiver({ type: 'slack' });
    const extra = {
      notifications: [{ name: 'ops-slack', type: 'slack', url: slackHook.url }],
      chatops: { slack: { signingSecret: SIGNING_SECRET } },
    };
    const d = await startDaemonProcess(sandbox.root, config(stack, extra, { approval: { via: 'ops-slack', timeout: '10m' }, cooldown: { up: '1h', down: '1h' } }), sandbox.env);
    try {
      const before = await updates(stack);
      const base = fixture<{ alerts: Record<string, unknown>[] }>('alertmanager/notification-firing.json');
      expect((await d.request('POST', '/webhooks/alertmanager', { ...base, alerts: [{ ...base.alerts[0], fingerprint: 'cpu-1' }] })).status).toBe(202);
      await slackHook.waitFor(1, 60_000);
      expect(slackHook.problems).toEqual([]);
      const waiting = (await targetEvents(d)).find((e) => e.kind === 'awaiting-approval') as ScalingEvent;
      expect(waiting).toMatchObject({ from: 2, to: 3, approval: { status: 'pending', via: 'ops-slack' } });
      const id = waiting.approval?.id ?? '';
      const posted = JSON.stringify(slackHook.received[0]?.body);
      expect(posted).toContain('pulumiscale_approve');
      expect(posted).toContain(id);
      // Previewed, not applied: the stack is as it was.
      expect(await configGet(sandbox, stack.dir, stack.name, 'web:replicas')).toBe('2');
      expect(await updates(stack)).toBe(before);
      expect((await d.request<{ status: string }[]>('GET', '/api/v1/approvals?status=pending')).body).toMatchObject([{ id, from: 2, to: 3 }]);

      const press = slackActionBody({ actionId: 'pulumiscale_approve', value: id, userId: 'U0ALICE', userName: 'alice', responseUrl: RESPONSE_URL });
      expect((await slack(d, '/chatops/slack/interactions', press)).status).toBe(200);
      await settledAt(d, 3);
      expect(await configGet(sandbox, stack.dir, stack.name, 'web:replicas')).toBe('3');
      expect(await updates(stack)).toBe(before + 1);
      const applied = (await targetEvents(d)).find((e) => e.kind === 'changed');
      expect(applied).toMatchObject({ from: 2, to: 3, approval: { id, status: 'applied', decidedBy: { via: 'slack', name: 'alice' } } });
      expect((await d.request<{ status: string }>('GET', `/api/v1/approvals/${id}`)).body).toMatchObject({ status: 'applied' });
      // A second press finds nothing left to decide.
      const again = slackActionBody({ actionId: 'pulumiscale_approve', value: id, userId: 'U0ALICE', userName: 'alice', responseUrl: RESPONSE_URL });
      expect((await slack(d, '/chatops/slack/interactions', again)).status).toBe(200);
      expect(await updates(stack)).toBe(before + 1);
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });
});
