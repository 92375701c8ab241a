/**
 * End to end, the promises an operator trusts the daemon with, tested where they break: the
 * built daemon as a child process under real signals, the real Pulumi CLI on a file backend, and
 * a CLI that hangs (test/support/slow-cli.ts) where a slow one is the point. Assertions are on
 * the stack (its config file, outputs and locks) and the API, never on log lines.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, alive, descendants, killAll, settledAt, startDaemonProcess, targetEvents, targetState, until, type DaemonProcess } from '../support/daemon.js';
import { configGet, createPulumiSandbox, deployedStack, pulumiOk, pulumiSection, stackOutputs, type PulumiSandbox } from '../support/pulumi.js';
import { slowCli } from '../support/slow-cli.js';

let sandbox: PulumiSandbox;

beforeAll(async () => {
  sandbox = await createPulumiSandbox();
});
afterAll(async () => {
  await sandbox?.cleanup();
});

/** A deployed stack of its own, as its folder (the stack is named after it). */
async function project(name: string, value: number): Promise<string> {
  return (await deployedStack(sandbox, name, value)).dir;
}

function configYaml(dir: string, opts: { cliDir?: string; engine?: string; stack?: string } = {}): string {
  return `
server: { host: 127.0.0.1, port: 0 }
engine: { concurrency: 2, ${opts.engine ?? 'drainTimeout: 2m'} }
store: { path: ./${path.basename(dir)}.db }
${pulumiSection(sandbox, opts.cliDir)}
log: { level: info }
targets:
  web:
    workDir: ${dir}
    stack: ${opts.stack ?? path.basename(dir)}
    configKey: web:replicas
    min: 1
    max: 50
    cooldown: { up: 0s, down: 0s }
`;
}

function lockDir(stack: string): string {
  return path.join(sandbox.root, 'backend', '.pulumi', 'locks', 'organization', 'web', stack);
}

/** Waits until the target runs an operation (the hung CLI is in its `up` or `preview`). */
/**
 * Waits until the daemon's CLI child for `command` (`up`, `preview`) runs: the hung wrapper's
 * process, found among the daemon's descendants by its arguments. An operation holds its stack
 * (the state's `running`) a moment before it spawns that process, so that alone is not enough.
 */
async function cliRunning(d: DaemonProcess, command: string): Promise<void> {
  await until(async () => {
    const pids = descendants(d.proc.pid ?? 0);
    const args = pids.map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        return [];
      }
    });
    return args.some((a) => a.includes(command)) ? true : undefined;
  }, `the pulumi ${command} to start`);
}

/** The lock files of a stack of project `web` on the sandbox's file backend. */
function locks(stack: string): string[] {
  const dir = lockDir(stack);
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
}

describe('a drain past engine.drainTimeout', () => {
  it('cancels a hung pulumi up (SIGINT, then SIGKILL), restores the config, exits 1 within seconds, and the next start applies the intent', async () => {
    const dir = await project('drain', 2);
    const hung = await slowCli(sandbox, { commands: ['up'], seconds: 600 });
    const d = await startDaemonProcess(sandbox.root, configYaml(dir, { cliDir: hung, engine: 'drainTimeout: 1s, cancelGrace: 2s' }), sandbox.env);
    expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 5 })).status).toBe(202);
    await cliRunning(d, 'up');
    const children = descendants(d.proc.pid ?? 0);
    expect(children.length).toBeGreaterThan(0);

    const signalled = Date.now();
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(1);
    expect(Date.now() - signalled).toBeLessThan(15_000);
    // The hung CLI is gone, the config is back at the deployed value, and no lock was left.
    expect(children.filter(alive)).toEqual([]);
    expect(await configGet(sandbox, dir, path.basename(dir), 'web:replicas')).toBe('2');
    expect(locks('drain')).toEqual([]);

    const next = await startDaemonProcess(sandbox.root, configYaml(dir), sandbox.env);
    try {
      await settledAt(next, 5);
      expect(await configGet(sandbox, dir, path.basename(dir), 'web:replicas')).toBe('5');
      expect((await stackOutputs(sandbox, path.basename(dir), dir)).replicas).toBe(5);
    } finally {
      expect(await next.stop('SIGTERM')).toBe(0);
    }
  });

  it('a second SIGTERM exits at once', async () => {
    const dir = await project('twice', 2);
    const hung = await slowCli(sandbox, { commands: ['up'], seconds: 600 });
    const d = await startDaemonProcess(sandbox.root, configYaml(dir, { cliDir: hung, engine: 'drainTimeout: 10m, cancelGrace: 2s' }), sandbox.env);
    expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 5 })).status).toBe(202);
    await cliRunning(d, 'up');
    const children = descendants(d.proc.pid ?? 0);
    d.proc.kill('SIGTERM');
    await until(async () => ((await fetch(`${d.url}/readyz`)).status === 503 ? true : undefined), 'the daemon to drain');
    const signalled = Date.now();
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(1);
    expect(Date.now() - signalled).toBeLessThan(3_000);
    // The hung CLI ignores SIGINT: end it here, as the container's stop would.
    killAll(children);
  });
});

describe('engine.operationTimeout', () => {
  it('cancels a hung up, restores the value, and records failed with PS_PULUMI_TIMEOUT', async () => {
    const dir = await project('timeout', 3);
    const hung = await slowCli(sandbox, { commands: ['up'], seconds: 600 });
    const d = await startDaemonProcess(sandbox.root, configYaml(dir, { cliDir: hung, engine: 'operationTimeout: 2s, cancelGrace: 1s' }), sandbox.env);
    try {
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 7 })).status).toBe(202);
      const failed = await until(async () => (await targetEvents(d)).find((e) => e.kind === 'failed'), 'the operation to time out', 60_000);
      expect(failed).toMatchObject({ errorCode: 'PS_PULUMI_TIMEOUT', from: 3, to: 7 });
      expect(await targetState(d)).toMatchObject({ current: 3, running: false, error: { code: 'PS_PULUMI_TIMEOUT' } });
      expect(await configGet(sandbox, dir, path.basename(dir), 'web:replicas')).toBe('3');
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });
});

describe('engine.operationTimeout bounds every CLI call, not only up', () => {
  it('a hung config read is cancelled: the start-up read and the operation both end with PS_PULUMI_TIMEOUT', async () => {
    const dir = await project('hungread', 3);
    const hung = await slowCli(sandbox, { commands: ['config'], seconds: 600, name: 'slow-config' });
    const d = await startDaemonProcess(sandbox.root, configYaml(dir, { cliDir: hung, engine: 'operationTimeout: 2s, cancelGrace: 1s' }), sandbox.env);
    try {
      await until(async () => ((await targetState(d)).error?.code === 'PS_PULUMI_TIMEOUT' ? true : undefined), 'the start-up read to time out', 60_000);
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 7 })).status).toBe(202);
      const failed = await until(async () => (await targetEvents(d)).find((e) => e.kind === 'failed'), 'the operation to time out', 60_000);
      expect(failed).toMatchObject({ errorCode: 'PS_PULUMI_TIMEOUT' });
      // It could not even read the value, so nothing was decided: the command stays queued for a
      // later try, and the state says why.
      expect(await targetState(d)).toMatchObject({ running: false, pendingCount: 1, error: { code: 'PS_PULUMI_TIMEOUT' } });
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
    expect(await configGet(sandbox, dir, path.basename(dir), 'web:replicas')).toBe('3');
  });
});

describe('a dry run', () => {
  it('never writes the stack config: SIGKILL during its preview leaves config and current unchanged', async () => {
    const dir = await project('dryrun', 4);
    const slowPreview = await slowCli(sandbox, { commands: ['preview'], seconds: 600 });
    const d = await startDaemonProcess(sandbox.root, configYaml(dir, { cliDir: slowPreview }), sandbox.env);
    await settledAt(d, 4);
    expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 9, dryRun: true })).status).toBe(202);
    await cliRunning(d, 'preview');
    const children = descendants(d.proc.pid ?? 0);
    expect(await configGet(sandbox, dir, path.basename(dir), 'web:replicas')).toBe('4');
    d.proc.kill('SIGKILL');
    await d.exited;
    killAll(children);
    expect(await configGet(sandbox, dir, path.basename(dir), 'web:replicas')).toBe('4');

    const next = await startDaemonProcess(sandbox.root, configYaml(dir), sandbox.env);
    try {
      // The preview runs again (it was acknowledged), and still changes nothing.
      await until(async () => ((await targetEvents(next)).some((e) => e.kind === 'previewed') ? true : undefined), 'the preview to run again');
      expect(await settledAt(next, 4)).toMatchObject({ current: 4 });
      expect(await configGet(sandbox, dir, path.basename(dir), 'web:replicas')).toBe('4');
      expect((await stackOutputs(sandbox, path.basename(dir), dir)).replicas).toBe(4);
    } finally {
      expect(await next.stop('SIGTERM')).toBe(0);
    }
  });
});

describe('a stack that does not exist', () => {
  it('is reported (state, events, validate) and never created', async () => {
    const dir = await project('typo', 2);
    const yaml = configYaml(dir, { stack: 'prdo' });
    const d = await startDaemonProcess(sandbox.root, yaml, sandbox.env);
    try {
      await until(async () => ((await targetState(d)).error !== null ? true : undefined), 'the start-up read to fail');
      expect(await targetState(d)).toMatchObject({ current: null, error: { code: 'PS_STACK_NOT_FOUND' } });
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 3 })).status).toBe(202);
      await until(async () => ((await targetEvents(d)).filter((e) => e.errorCode === 'PS_STACK_NOT_FOUND').length >= 2 ? true : undefined), 'the operation to fail');
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
    const stacks = JSON.parse(await pulumiOk(sandbox, ['stack', 'ls', '--json'], dir)) as { name: string }[];
    expect(stacks.map((s) => s.name)).not.toContain('prdo');

    const validate = spawnSync(process.execPath, [CLI, 'validate', '--config', path.join(sandbox.root, 'pulumiscale.yaml')], {
      env: sandbox.env,
      encoding: 'utf8',
    });
    expect(validate.status).toBe(1);
    expect(validate.stderr).toContain('targets.web.stack: stack prdo does not exist');
  });
});

describe('a lock left by our own killed pulumi up', () => {
  it('is cleared at the next start, recorded, and the operation finished', async () => {
    const dir = await project('stale', 5);
    let d = await startDaemonProcess(sandbox.root, configYaml(dir), sandbox.env);
    await settledAt(d, 5);
    expect((await d.request('POST', '/api/v1/targets/web/scale', { action: 'up' })).status).toBe(202);
    // The lock lives well under a second: look often (a directory read is cheap), and freeze
    // the CLI it names at once, so that it still holds the lock when the tree is killed.
    const deadline = Date.now() + 60_000;
    let holder: number | undefined;
    while (holder === undefined) {
      if (Date.now() > deadline) throw new Error('timed out waiting for pulumi up to take the stack lock');
      const [file] = locks('stale');
      if (file !== undefined) holder = (JSON.parse(readFileSync(path.join(lockDir('stale'), file), 'utf8')) as { pid: number }).pid;
      else await new Promise((resolve) => setTimeout(resolve, 2));
    }
    process.kill(holder, 'SIGSTOP');
    // The whole process tree dies at once, as when a container is killed.
    const tree = [d.proc.pid ?? 0, ...descendants(d.proc.pid ?? 0)];
    expect(tree).toContain(holder);
    killAll(tree);
    await d.exited;
    await until(async () => (tree.some(alive) ? undefined : true), 'the killed processes to end');
    expect(locks('stale')).toHaveLength(1);

    d = await startDaemonProcess(sandbox.root, configYaml(dir), sandbox.env);
    try {
      const done = await settledAt(d, 6);
      expect(done.lastEvent).toMatchObject({ kind: 'changed', to: 6 });
      expect((await targetEvents(d)).map((e) => e.kind)).toContain('unlocked');
      expect(locks('stale')).toEqual([]);
      expect((await stackOutputs(sandbox, path.basename(dir), dir)).replicas).toBe(6);
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });

  it.each([
    { rule: 'a lock of another host is never touched', name: 'foreign', host: 'another-host' },
    { rule: 'a lock of this host whose process is gone, but not taken by an operation of ours, is never touched', name: 'neighbour', host: hostname() },
  ])('$rule', async ({ name, host }) => {
    const dir = await project(name, 5);
    mkdirSync(lockDir(name), { recursive: true });
    const lock = path.join(lockDir(name), 'held-by-a-colleague.json');
    // pid 999999 runs nothing here: to a naive "this host, process gone" rule it looks stale.
    writeFileSync(lock, JSON.stringify({ pid: 999_999, username: userInfo().username, hostname: host, timestamp: '2026-11-29T00:00:00Z' }));
    const d = await startDaemonProcess(sandbox.root, configYaml(dir, { engine: 'retry: { maxAttempts: 2, baseDelay: 100ms, maxDelay: 100ms }' }), sandbox.env);
    try {
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 6 })).status).toBe(202);
      const failed = await until(async () => (await targetEvents(d)).find((e) => e.kind === 'failed'), 'the operation to give up', 60_000);
      expect(failed).toMatchObject({ errorCode: 'PS_PULUMI_CONFLICT' });
      expect(existsSync(lock)).toBe(true);
      expect(await configGet(sandbox, dir, path.basename(dir), 'web:replicas')).toBe('5');
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
  });
});
