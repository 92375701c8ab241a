/**
 * End to end, the level-triggered model (issue 7): a firing alert is a signal that holds until it
 * resolves, and the engine decides from what is true now (the value, the signals, the step
 * rules, cooldowns and pauses), again after each cooldown and every `engine.evaluationInterval`;
 * operator commands queue in order and are never merged away. The built daemon as a child
 * process, real HTTP (SNS deliveries and Alertmanager notifications on the webhook routes), the
 * real Pulumi CLI on a file backend; assertions on the stack (config, outputs, update history)
 * and on the API's state, events and metrics, never on log lines.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScalingEvent, TargetState } from '../../src/types.js';
import { settledAt, startDaemonProcess, targetEvents, targetState, until, type DaemonProcess } from '../support/daemon.js';
import { configGet, createPulumiSandbox, deployedStack, pulumiOk, stackOutputs, type FixtureStack, type PulumiSandbox } from '../support/pulumi.js';
import { fixture } from '../support/sns.js';

/** engine.evaluationInterval of every daemon here, ms. */
const TICK_MS = 1_000;

let sandbox: PulumiSandbox;

beforeAll(async () => {
  sandbox = await createPulumiSandbox();
});
afterAll(async () => {
  await sandbox?.cleanup();
});

type Stack = FixtureStack;

/** A deployed stack of the `simple` project (project `web`), of its own. */
function project(name: string, value: number): Promise<Stack> {
  return deployedStack(sandbox, name, value);
}

/**
 * Runs `body` against a daemon with one target `web` on `stack` (min 1, max 10 unless `target`
 * says otherwise), then stops it. The config is JSON, which is YAML too. SNS deliveries are
 * unsigned (`verifySignature: false`): a child process cannot be pointed at a local certificate
 * host, and what is tested here is what happens after a delivery is accepted.
 */
async function withDaemon(stack: Stack, target: Record<string, unknown>, body: (d: DaemonProcess) => Promise<void>): Promise<void> {
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    engine: { evaluationInterval: `${TICK_MS}ms`, drainTimeout: '1m' },
    store: { path: `./${stack.name}.db` },
    pulumi: { backendUrl: sandbox.backendUrl, cliDir: sandbox.cliDir, env: sandbox.pulumiEnv },
    webhooks: { cloudwatch: { verifySignature: false } },
    log: { level: 'info' },
    targets: { web: { workDir: stack.dir, stack: stack.name, configKey: 'web:replicas', min: 1, max: 10, ...target } },
  };
  const d = await startDaemonProcess(sandbox.root, JSON.stringify(config, null, 2), sandbox.env);
  try {
    await body(d);
  } finally {
    expect(await d.stop('SIGTERM')).toBe(0);
  }
}

/** The `changed` events, oldest first. */
async function changes(d: DaemonProcess): Promise<ScalingEvent[]> {
  return (await targetEvents(d)).filter((e) => e.kind === 'changed').reverse();
}

/** How many `update` operations the stack's history holds (the deploy of `project` included). */
async function updates(stack: Stack): Promise<number> {
  const history = JSON.parse(await pulumiOk(sandbox, ['stack', 'history', '--json', '--stack', stack.name], stack.dir)) as { kind: string }[];
  return history.filter((h) => h.kind === 'update').length;
}

/** The value in the stack's config and in its deployed output. */
async function deployed(stack: Stack): Promise<{ config: string | null; output: unknown }> {
  return { config: await configGet(sandbox, stack.dir, stack.name, 'web:replicas'), output: (await stackOutputs(sandbox, stack.name, stack.dir)).replicas };
}

/**
 * Waits until the engine has evaluated the target at or after `ms` (its desired value's `at`).
 * While a signal is active that happens every evaluation interval: "nothing changed since" is
 * then a statement about evaluations made, not about time slept.
 */
async function evaluatedAfter(d: DaemonProcess, ms: number): Promise<TargetState> {
  return until(async () => {
    const s = await targetState(d);
    return s.desired !== null && Date.parse(s.desired.at) >= ms ? s : undefined;
  }, `an evaluation after ${new Date(ms).toISOString()}`);
}

/** Polls the target until `untilMs`, failing as soon as `check` does not hold. */
async function holds(d: DaemonProcess, untilMs: number, check: (s: TargetState) => boolean, what: string): Promise<void> {
  await until(async () => {
    const s = await targetState(d);
    if (!check(s)) throw new Error(`${what} stopped holding: ${JSON.stringify({ current: s.current, running: s.running, lastEvent: s.lastEvent })}`);
    return Date.now() >= untilMs ? true : undefined;
  }, what);
}

/** The alarm `web-cpu-high` (its description names target web, action up) in each state. */
const ALARMS = { ALARM: fixture('cloudwatch/alarm-single-metric.json'), OK: fixture('cloudwatch/alarm-single-metric-ok.json') };
const ALARM_ARN = ALARMS.ALARM.AlarmArn as string;

/** Posts an SNS Notification of the alarm going to `value` now, as SNS delivers it. */
async function cloudwatch(d: DaemonProcess, value: 'ALARM' | 'OK') {
  const now = new Date();
  // CloudWatch writes its times with a `+0000` offset.
  const alarm = { ...ALARMS[value], StateChangeTime: now.toISOString().replace('Z', '+0000') };
  const envelope = {
    ...fixture('cloudwatch/sns-notification-single-alarm.json'),
    MessageId: randomUUID(),
    Subject: `${value}: "web-cpu-high" in US East (N. Virginia)`,
    Message: JSON.stringify(alarm),
    Timestamp: now.toISOString(),
  };
  return d.request<{ accepted: number; ignored: number }>('POST', '/webhooks/cloudwatch', JSON.stringify(envelope), {
    'content-type': 'text/plain; charset=UTF-8',
    'x-amz-sns-message-type': 'Notification',
  });
}

type Alert = Record<string, unknown> & { status: string };
const NOTIFICATION = fixture<{ alerts: Record<string, unknown>[] }>('alertmanager/notification-firing.json');

/** An alert for target web (up), shaped as the fixture's, identified by `fingerprint`. */
function alert(fingerprint: string, status: 'firing' | 'resolved', annotations: Record<string, string> = {}): Alert {
  const base = NOTIFICATION.alerts[0] as Record<string, unknown> & { labels: Record<string, string> };
  return {
    ...base,
    status,
    labels: { ...base.labels, instance: `${fingerprint}:9100` },
    annotations: { summary: 'CPU above 80% on the web fleet for 5 minutes', ...annotations },
    endsAt: status === 'resolved' ? new Date().toISOString() : '0001-01-01T00:00:00Z',
    fingerprint,
  };
}

/** Posts one Alertmanager notification (payload version 4) carrying `alerts`. */
async function alertmanager(d: DaemonProcess, alerts: Alert[]) {
  const status = alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved';
  return d.request<{ accepted: number; ignored: number }>('POST', '/webhooks/alertmanager', { ...NOTIFICATION, status, alerts });
}

describe('a firing alert is a signal that steps again after each cooldown', () => {
  it('one CloudWatch ALARM and nothing else takes the target from 1 to max, one up cooldown at a time; its OK ends the signal', async () => {
    const stack = await project('alarm', 1);
    await withDaemon(stack, { max: 4, cooldown: { up: '2s', down: '0s' } }, async (d) => {
      expect(await cloudwatch(d, 'ALARM')).toMatchObject({ status: 202, body: { accepted: 1 } });
      await settledAt(d, 4);
      const steps = await changes(d);
      expect(steps.map((e) => [e.from, e.to])).toEqual([[1, 2], [2, 3], [3, 4]]);
      for (const e of steps) expect(e).toMatchObject({ source: 'cloudwatch', rule: 'step +1', signals: [{ id: ALARM_ARN, direction: 'up', value: 87.5, threshold: 80 }] });
      for (let i = 1; i < steps.length; i++) {
        expect(Date.parse((steps[i] as ScalingEvent).at) - Date.parse((steps[i - 1] as ScalingEvent).at)).toBeGreaterThanOrEqual(2_000);
      }
      expect(await deployed(stack)).toEqual({ config: '4', output: 4 });
      expect(await updates(stack)).toBe(1 + 3);
      // At max the alarm still fires, and the target stays.
      expect((await targetState(d)).signals).toMatchObject([{ id: ALARM_ARN, source: 'cloudwatch', direction: 'up' }]);

      expect(await cloudwatch(d, 'OK')).toMatchObject({ status: 202, body: { accepted: 0, ignored: 1 } });
      expect((await targetState(d)).signals).toEqual([]);
      // Lowered by hand: with the signal ended, nothing steps back up once the up cooldown is
      // over (it would have, were the alarm still active).
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 1 })).status).toBe(202);
      const lowered = await settledAt(d, 1);
      const cooled = Math.max(Date.now(), Date.parse(lowered.cooldownUntil.up ?? '0')) + 3 * TICK_MS;
      await holds(d, cooled, (s) => s.current === 1 && !s.running && s.signals.length === 0, 'web at 1 after OK');
      expect((await changes(d)).map((e) => e.to)).toEqual([2, 3, 4, 1]);
      expect(await deployed(stack)).toEqual({ config: '1', output: 1 });
      expect(await updates(stack)).toBe(1 + 4);
    });
  });

  it('an Alertmanager notification that resolves one of two firing alerts does not step; one signal is left', async () => {
    const stack = await project('resolve', 1);
    await withDaemon(stack, { cooldown: { up: '10m', down: '0s' } }, async (d) => {
      expect(await alertmanager(d, [alert('aaaa0001', 'firing'), alert('bbbb0002', 'firing')])).toMatchObject({ status: 202, body: { accepted: 2 } });
      // Two up signals at once: the one giving the largest value, one step, not one each.
      await settledAt(d, 2);
      const before = await updates(stack);

      const sent = Date.now();
      const reply = await alertmanager(d, [alert('aaaa0001', 'resolved'), alert('bbbb0002', 'firing')]);
      expect(reply).toMatchObject({ status: 202, body: { accepted: 1, ignored: 1 } });
      const after = await evaluatedAfter(d, sent + 2 * TICK_MS);
      expect(after).toMatchObject({ current: 2, running: false, pendingCount: 0 });
      expect(after.signals.map((s) => s.id)).toEqual(['bbbb0002']);
      // The one still firing wants 3, held by the up cooldown; the resolution asked for nothing.
      expect(after.desired?.value).toBe(3);
      expect(after.cooldownUntil.up).not.toBeNull();
      expect((await changes(d)).map((e) => [e.from, e.to])).toEqual([[1, 2]]);
      expect(await updates(stack)).toBe(before);
      expect(await deployed(stack)).toEqual({ config: '2', output: 2 });
      // The resolution is recorded, and so (once, not at every evaluation) is the decision it led to.
      const history = await targetEvents(d);
      expect(history.filter((e) => e.kind === 'ignored')).toMatchObject([{ reason: 'alert HighCPU resolved: its signal ended', evidence: { fingerprint: 'aaaa0001' } }]);
      expect(history.filter((e) => e.kind === 'skipped')).toMatchObject([{ skipReason: 'cooldown', signals: [{ id: 'bbbb0002' }] }]);
    });
  });
});

describe('operator commands', () => {
  it('two {"by": 2} commands add 4', async () => {
    const stack = await project('by', 1);
    await withDaemon(stack, {}, async (d) => {
      const first = await d.request<{ intent: { id: string } }>('POST', '/api/v1/targets/web/scale', { by: 2 });
      const second = await d.request<{ intent: { id: string } }>('POST', '/api/v1/targets/web/scale', { by: 2 });
      expect([first.status, second.status]).toEqual([202, 202]);
      await settledAt(d, 5);
      const steps = await changes(d);
      expect(steps.reduce((sum, e) => sum + (e.to ?? 0) - (e.from ?? 0), 0)).toBe(4);
      // Each command is covered once, in arrival order, whether they shared an `up` or not.
      expect(steps.flatMap((e) => e.commands ?? [])).toEqual([first.body.intent.id, second.body.intent.id]);
      expect(await deployed(stack)).toEqual({ config: '5', output: 5 });
    });
  });

  it('a {"to": N} behind a firing alert runs, and the alert waits for its up cooldown before stepping again', async () => {
    const stack = await project('operator', 5);
    await withDaemon(stack, { cooldown: { up: '10m', down: '0s' } }, async (d) => {
      expect(await alertmanager(d, [alert('cccc0003', 'firing')])).toMatchObject({ status: 202, body: { accepted: 1 } });
      await settledAt(d, 6);

      const command = await d.request<{ intent: { id: string } }>('POST', '/api/v1/targets/web/scale', { to: 2, reason: 'operator: back to 2' });
      expect(command.status).toBe(202);
      await settledAt(d, 2);
      const sent = Date.now();
      const later = await evaluatedAfter(d, sent + 2 * TICK_MS);
      // The alert still fires and wants 3 from the present value, but its step (6 at 5 -> 6)
      // started the up cooldown; the manual change started only the down one.
      expect(later).toMatchObject({ current: 2, running: false, signals: [{ id: 'cccc0003', direction: 'up' }], desired: { value: 3 } });
      expect(later.cooldownUntil.up).not.toBeNull();
      const steps = await changes(d);
      expect(steps.map((e) => [e.from, e.to])).toEqual([[5, 6], [6, 2]]);
      expect(steps[1]).toMatchObject({ source: 'api', commands: [command.body.intent.id] });
      expect(await deployed(stack)).toEqual({ config: '2', output: 2 });
    });
  });
});

describe('pauses through the API', () => {
  it('a pause for 3s holds a firing alert, then ends by itself and the alert acts', async () => {
    const stack = await project('pause', 1);
    await withDaemon(stack, { max: 2, cooldown: { up: '1s', down: '0s' } }, async (d) => {
      // The start-up read first, so that the 3s are spent holding, not reading.
      await settledAt(d, 1);
      const paused = await d.request<TargetState>('POST', '/api/v1/targets/web/pause', { for: '3s', direction: 'up', reason: 'e2e: hold' });
      expect(paused).toMatchObject({ status: 200, body: { paused: true, pause: { direction: 'up', reason: 'e2e: hold' } } });
      const end = Date.parse(paused.body.pause?.until ?? '');
      expect(await alertmanager(d, [alert('dddd0004', 'firing')])).toMatchObject({ status: 202, body: { accepted: 1 } });

      // Held: the decision is recorded once as skipped (paused), and the stack is untouched.
      const skipped = await until(async () => (await targetEvents(d)).find((e) => e.kind === 'skipped'), 'the paused decision');
      expect(skipped).toMatchObject({ skipReason: 'paused', from: 1, signals: [{ id: 'dddd0004' }] });
      expect(Date.parse(skipped.at)).toBeLessThan(end);
      expect(await targetState(d)).toMatchObject({ current: 1, paused: true, pause: { until: paused.body.pause?.until } });
      expect(await configGet(sandbox, stack.dir, stack.name, 'web:replicas')).toBe('1');

      const done = await settledAt(d, 2);
      expect(done).toMatchObject({ paused: false, pause: null });
      const steps = await changes(d);
      expect(steps.map((e) => [e.from, e.to])).toEqual([[1, 2]]);
      // Its operation began once the pause had ended, not before (`at` and `durationMs` are two
      // clock readings, hence the millisecond of slack).
      const step = steps[0] as ScalingEvent;
      expect(Date.parse(step.at) - step.durationMs).toBeGreaterThanOrEqual(end - 1);
      expect((await targetEvents(d)).filter((e) => e.kind === 'skipped')).toHaveLength(1);
      expect(await updates(stack)).toBe(1 + 1);
      expect(await deployed(stack)).toEqual({ config: '2', output: 2 });
    });
  });
});

describe('step rules', () => {
  it('a metric value of 95 with bands [70, 90): +2 and [90, ∞): +5 adds 5; /metrics shows the signal, value and desired value', async () => {
    const stack = await project('bands', 1);
    const steps = { up: { bands: [{ from: 70, to: 90, by: 2 }, { from: 90, by: 5 }] } };
    await withDaemon(stack, { max: 20, cooldown: { up: '10m', down: '0s' }, steps }, async (d) => {
      expect(await alertmanager(d, [alert('eeee0005', 'firing', { pulumiscale_value: '95' })])).toMatchObject({ status: 202, body: { accepted: 1 } });
      await settledAt(d, 6);
      const [step] = await changes(d);
      expect(step).toMatchObject({ from: 1, to: 6, source: 'alertmanager', signals: [{ id: 'eeee0005', value: 95 }] });
      expect(step?.rule).toContain('[90, ∞)');
      expect(step?.rule).toContain('+5');
      expect(await deployed(stack)).toEqual({ config: '6', output: 6 });

      // Firing, held by the up cooldown: it wants 6 + 5 = 11 next.
      const firing = await evaluatedAfter(d, Date.parse(step?.at ?? '') + TICK_MS);
      expect(firing.desired?.value).toBe(11);
      const metrics = (await d.request<string>('GET', '/metrics')).body;
      expect(metrics).toContain('pulumiscale_signals_active{target="web",direction="up"} 1\n');
      expect(metrics).toContain('pulumiscale_signals_active{target="web",direction="down"} 0\n');
      expect(metrics).toContain('pulumiscale_target_value{target="web"} 6\n');
      expect(metrics).toContain('pulumiscale_target_desired{target="web"} 11\n');

      expect(await alertmanager(d, [alert('eeee0005', 'resolved')])).toMatchObject({ status: 202, body: { ignored: 1 } });
      const quiet = (await d.request<string>('GET', '/metrics')).body;
      expect(quiet).toContain('pulumiscale_signals_active{target="web",direction="up"} 0\n');
      expect(quiet).toContain('pulumiscale_target_desired{target="web"} 6\n');
    });
  });
});
