/**
 * End to end: the built daemon as a child process on a temporary config, real HTTP requests,
 * the real Pulumi CLI on a file backend, and assertions on the stacks' config and outputs as the
 * CLI reports them, never on log lines.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScalingEvent, TargetState } from '../../src/types.js';
import { alive, descendants, killAll, settledAt, startDaemonProcess, until, type DaemonProcess } from '../support/daemon.js';
import {
  configGet,
  createPulumiSandbox,
  fileBackendStack,
  pulumiOk,
  pulumiSection,
  stackOutputs,
  type PulumiSandbox,
} from '../support/pulumi.js';

let sandbox: PulumiSandbox;
let webDir: string;
let failingDir: string;

function configYaml(extra = ''): string {
  return `
server: { host: 127.0.0.1, port: 0 }
engine: { concurrency: 2, drainTimeout: 2m }
store: { path: ./state.db }
${pulumiSection(sandbox)}
log: { level: info }
targets:
  web:
    workDir: ${webDir}
    stack: dev
    configKey: web:replicas
    min: 1
    max: 500
    cooldown: { up: 0s, down: 0s }
    createStack: true
  broken:
    workDir: ${failingDir}
    # Both fixtures are project \`web\` on one backend: a stack of its own, or the config would
    # have two owners of web:replicas on one stack (and validate would refuse it).
    stack: broken
    configKey: web:replicas
    min: 0
    max: 10
    cooldown: { up: 0s, down: 0s }
    createStack: true
  settings:
    inline: { project: settings }
    stack: dev
    configKey: settings:workers
    min: 1
    max: 8
    createStack: true
${extra}`;
}

/** Waits until the target has nothing queued or running, and returns its state. */
async function settled(d: DaemonProcess, name: string): Promise<TargetState> {
  return until(async () => {
    const { body } = await d.request<TargetState>('GET', `/api/v1/targets/${name}`);
    return body.pending === null && !body.running && body.lastEvent !== null ? body : undefined;
  }, `target ${name} to settle`);
}

async function events(d: DaemonProcess, target: string, limit = 1000): Promise<ScalingEvent[]> {
  return (await d.request<ScalingEvent[]>('GET', `/api/v1/events?target=${target}&limit=${limit}`)).body;
}

/** How many `update` operations the stack's history holds. */
async function updateCount(projectDir: string, stack: string): Promise<number> {
  const history = JSON.parse(await pulumiOk(sandbox, ['stack', 'history', '--json', '--stack', stack], projectDir)) as {
    kind: string;
  }[];
  return history.filter((h) => h.kind === 'update').length;
}

beforeAll(async () => {
  sandbox = await createPulumiSandbox();
  webDir = await sandbox.copyFixture('simple', 'web');
  failingDir = await sandbox.copyFixture('failing', 'broken');
});

afterAll(async () => {
  await sandbox?.cleanup();
});

describe('pulumiscale serve, end to end', () => {
  let d: DaemonProcess;
  beforeAll(async () => {
    d = await startDaemonProcess(sandbox.root, configYaml(), sandbox.env);
  });
  afterAll(async () => {
    expect(await d.stop('SIGTERM')).toBe(0);
  });

  it('scales a project on disk with a real pulumi up: to, then by', async () => {
    const accepted = await d.request<{ accepted: boolean }>('POST', '/api/v1/targets/web/scale', { to: 3 });
    expect(accepted.status).toBe(202);
    expect((await settled(d, 'web')).current).toBe(3);
    expect(await configGet(sandbox, webDir, 'dev', 'web:replicas')).toBe('3');
    expect((await stackOutputs(sandbox, 'dev', webDir)).replicas).toBe(3);

    expect((await d.request('POST', '/api/v1/targets/web/scale', { by: -1 })).status).toBe(202);
    const state = await settled(d, 'web');
    expect(state.current).toBe(2);
    expect(state.lastEvent).toMatchObject({ kind: 'changed', from: 3, to: 2, source: 'api', intents: 1 });
    expect(await configGet(sandbox, webDir, 'dev', 'web:replicas')).toBe('2');
    expect((await stackOutputs(sandbox, 'dev', webDir)).replicas).toBe(2);
  });

  it('scales an inline program target', async () => {
    expect((await d.request('POST', '/api/v1/targets/settings/scale', { to: 4 })).status).toBe(202);
    expect((await settled(d, 'settings')).current).toBe(4);
    expect((await stackOutputs(sandbox, fileBackendStack('settings', 'dev'))).workers).toBe(4);
  });

  it('previews a dry run without changing the stack', async () => {
    const before = await updateCount(webDir, 'dev');
    expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 9, dryRun: true })).status).toBe(202);
    const state = await settled(d, 'web');
    expect(state.lastEvent).toMatchObject({ kind: 'previewed', from: 2, to: 9, dryRun: true });
    expect(state.current).toBe(2);
    expect(await configGet(sandbox, webDir, 'dev', 'web:replicas')).toBe('2');
    expect(await updateCount(webDir, 'dev')).toBe(before);
  });

  it('a failing program leaves the old value in config and records a failed event', async () => {
    expect((await d.request('POST', '/api/v1/targets/broken/scale', { to: 2 })).status).toBe(202);
    expect((await settled(d, 'broken')).current).toBe(2);

    expect((await d.request('POST', '/api/v1/targets/broken/scale', { to: 7 })).status).toBe(202);
    const state = await settled(d, 'broken');
    expect(state.lastEvent).toMatchObject({ kind: 'failed', from: 2, to: 7, errorCode: 'PS_PULUMI_PROGRAM' });
    expect(state.current).toBe(2);
    expect(await configGet(sandbox, failingDir, 'broken', 'web:replicas')).toBe('2');
    expect((await stackOutputs(sandbox, 'broken', failingDir)).replicas).toBe(2);
  });

  it('refuses a manual value outside the bounds, and records a no-op as skipped', async () => {
    const refused = await d.request<{ error: { code: string } }>('POST', '/api/v1/targets/web/scale', { to: 501 });
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('PS_OUT_OF_BOUNDS');

    expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 2 })).status).toBe(202);
    const state = await settled(d, 'web');
    expect(state.lastEvent).toMatchObject({ kind: 'skipped', skipReason: 'no-change', from: 2 });
  });

  it('100 commands fired at once are all applied, in at most three pulumi up runs, one consistent value', async () => {
    const start = (await settled(d, 'web')).current ?? 0;
    const before = await updateCount(webDir, 'dev');
    const seen = new Set((await events(d, 'web')).map((e) => e.id));

    // All at once, as a storm arrives: they land while the first operation still runs.
    const statuses = await Promise.all(
      Array.from({ length: 100 }, async () => (await d.request('POST', '/api/v1/targets/web/scale', { by: 1 })).status),
    );
    expect(statuses.every((s) => s === 202)).toBe(true);

    const state = await settledAt(d, start + 100, 'web');
    const newEvents = (await events(d, 'web')).filter((e) => !seen.has(e.id));
    const ups = (await updateCount(webDir, 'dev')) - before;
    expect(ups).toBeGreaterThanOrEqual(1);
    expect(ups).toBeLessThanOrEqual(3);
    expect(newEvents.filter((e) => e.kind === 'changed')).toHaveLength(ups);
    // Never merged away: every command is covered by an event.
    expect(newEvents.reduce((n, e) => n + e.intents, 0)).toBe(100);
    expect(await configGet(sandbox, webDir, 'dev', 'web:replicas')).toBe(String(state.current));
    expect((await stackOutputs(sandbox, 'dev', webDir)).replicas).toBe(state.current);
  });

  it('serves history newest first and target state with the contract fields', async () => {
    const list = await d.request<TargetState[]>('GET', '/api/v1/targets');
    expect(list.body.map((t) => t.name)).toEqual(['web', 'broken', 'settings']);
    for (const key of ['name', 'stack', 'configKeys', 'current', 'min', 'max', 'paused', 'pending', 'cooldownUntil', 'lastEvent']) {
      expect(list.body[0]).toHaveProperty(key);
    }
    const history = await events(d, 'web', 5);
    expect(history.length).toBe(5);
    const times = history.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    for (const key of ['id', 'target', 'at', 'kind', 'from', 'to', 'reason', 'source', 'intents', 'durationMs']) {
      expect(history[0]).toHaveProperty(key);
    }
  });
  it('serves /metrics that promtool accepts, counting what happened', async () => {
    const res = await fetch(`${d.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const promtool = process.env.PULUMISCALE_PROMTOOL ?? '/usr/bin/promtool';
    const lint = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (lint.error) throw new Error(`${promtool}: ${lint.error.message}; run bash scripts/setup-peers.sh (npm test does; it installs prometheus for promtool), or set PULUMISCALE_PROMTOOL`);
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
    expect(text).toMatch(/^pulumiscale_events_total\{target="web",kind="changed"\} [1-9]/m);
    expect(text).toMatch(/^pulumiscale_events_total\{target="broken",kind="failed"\} 1$/m);
    expect(text).toMatch(/^pulumiscale_intents_coalesced_total\{target="web"\} [1-9]/m);
    expect(text).toMatch(/^pulumiscale_target_value\{target="web"\} [1-9]/m);
    expect(text).toMatch(/^pulumiscale_signals_active\{target="web",direction="up"\} 0$/m);
    expect(text).toMatch(/^pulumiscale_ready 1$/m);
  });
});

describe('acknowledged means durable', () => {
  it('an intent accepted just before SIGTERM is applied, during the drain or at the next start', async () => {
    let d = await startDaemonProcess(sandbox.root, configYaml(), sandbox.env);
    expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 11 })).status).toBe(202);
    expect(await d.stop('SIGTERM')).toBe(0);

    d = await startDaemonProcess(sandbox.root, configYaml(), sandbox.env);
    try {
      expect((await settledAt(d, 11, 'web')).current).toBe(11);
      expect(await configGet(sandbox, webDir, 'dev', 'web:replicas')).toBe('11');
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });

  it('a step cut off by SIGKILL in the middle of its operation is finished at the next start, not applied twice', async () => {
    let d = await startDaemonProcess(sandbox.root, configYaml(), sandbox.env);
    const start = 5;
    expect((await d.request('POST', '/api/v1/targets/web/scale', { to: start })).status).toBe(202);
    await settledAt(d, start, 'web');
    expect((await d.request('POST', '/api/v1/targets/web/scale', { action: 'up' })).status).toBe(202);
    // The key is set just before `up` runs: kill the daemon once the config shows the new value.
    await until(
      async () => ((await configGet(sandbox, webDir, 'dev', 'web:replicas')) === String(start + 1) ? true : undefined),
      'the operation to write the new value',
    );
    // The whole process tree dies at once, as a killed container's does: a `pulumi up` that had
    // taken the stack's lock leaves it behind. Nobody runs `pulumi cancel`: the daemon clears a
    // lock of its own dead process itself (and never one of a live process or another host).
    const tree = [d.proc.pid ?? 0, ...descendants(d.proc.pid ?? 0)];
    killAll(tree);
    expect(await d.exited).toBe(null);
    await until(async () => (tree.some(alive) ? undefined : true), 'the killed processes to end', 60_000);

    d = await startDaemonProcess(sandbox.root, configYaml(), sandbox.env);
    try {
      const state = await settledAt(d, start + 1, 'web');
      expect(state.lastEvent).toMatchObject({ kind: 'changed', to: start + 1 });
      expect(await configGet(sandbox, webDir, 'dev', 'web:replicas')).toBe(String(start + 1));
      expect((await stackOutputs(sandbox, 'dev', webDir)).replicas).toBe(start + 1);
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });
});

