/**
 * End to end, composite targets (issue 12): a target whose driving key has keys derived from it
 * sets them all in one `pulumi up`, and a failing `up` leaves every key as it was. The built
 * daemon as a child process, the real Pulumi CLI on a file backend; assertions on the stack's
 * config and update history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScalingEvent, TargetState } from '../../src/types.js';
import { settledAt, startDaemonProcess, targetEvents, until, type DaemonProcess } from '../support/daemon.js';
import { configGet, createPulumiSandbox, deployValue, pulumiOk, type FixtureStack, type PulumiSandbox } from '../support/pulumi.js';

let sandbox: PulumiSandbox;
beforeAll(async () => {
  sandbox = await createPulumiSandbox();
});
afterAll(async () => {
  await sandbox?.cleanup();
});

const DERIVED = [
  { key: 'db:maxConnections', per: 20, plus: 10, min: 50, max: 1000 },
  { key: 'db:poolShares', per: 0.5, round: 'up' },
];

/** A deployed stack of `fixture` whose keys are all set by hand first, as before the daemon. */
async function stackOf(fixture: 'simple' | 'failing', name: string): Promise<FixtureStack> {
  const dir = await sandbox.copyFixture(fixture, name);
  await pulumiOk(sandbox, ['stack', 'init', name], dir);
  await pulumiOk(sandbox, ['config', 'set', 'db:maxConnections', '50', '--stack', name], dir);
  await pulumiOk(sandbox, ['config', 'set', 'db:poolShares', '1', '--stack', name], dir);
  const stack = { dir, name };
  await deployValue(sandbox, stack, 2);
  return stack;
}

async function withDaemon(stack: FixtureStack, body: (d: DaemonProcess) => Promise<void>): Promise<void> {
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    store: { path: `./${stack.name}.db` },
    pulumi: { backendUrl: sandbox.backendUrl, cliDir: sandbox.cliDir, env: sandbox.pulumiEnv },
    targets: { web: { workDir: stack.dir, stack: stack.name, configKey: 'web:replicas', min: 1, max: 10, cooldown: { up: '0s', down: '0s' }, derived: DERIVED } },
  };
  const d = await startDaemonProcess(sandbox.root, JSON.stringify(config), sandbox.env);
  try {
    await body(d);
  } finally {
    expect(await d.stop('SIGTERM')).toBe(0);
  }
}

/** Every key's value in the stack's config. */
async function keys(stack: FixtureStack): Promise<Record<string, string | null>> {
  const get = (key: string) => configGet(sandbox, stack.dir, stack.name, key);
  return { 'web:replicas': await get('web:replicas'), 'db:maxConnections': await get('db:maxConnections'), 'db:poolShares': await get('db:poolShares') };
}

/** The stack's updates, newest first, with the config each ran with. */
async function history(stack: FixtureStack): Promise<{ kind: string; result: string; config?: Record<string, { value: string }> }[]> {
  return JSON.parse(await pulumiOk(sandbox, ['stack', 'history', '--json', '--show-secrets', '--stack', stack.name], stack.dir)) as never;
}

describe('composite targets on the real stack', () => {
  it('a composite change is one up in the stack history, with every key at its value', async () => {
    const stack = await stackOf('simple', 'composite-one-up');
    const before = (await history(stack)).length;
    await withDaemon(stack, async (d) => {
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 5 })).status).toBe(202);
      await settledAt(d, 5);
      const changed = (await targetEvents(d)).find((e) => e.kind === 'changed') as ScalingEvent;
      expect(changed.keys).toEqual([
        { key: 'web:replicas', from: 2, to: 5 },
        { key: 'db:maxConnections', from: 50, to: 110 },
        { key: 'db:poolShares', from: 1, to: 3 },
      ]);
      const state = (await d.request<TargetState>('GET', '/api/v1/targets/web')).body;
      expect(state.configKeys).toEqual(['web:replicas', 'db:maxConnections', 'db:poolShares']);
      expect(state.values).toEqual({ 'web:replicas': 5, 'db:maxConnections': 110, 'db:poolShares': 3 });
    });
    expect(await keys(stack)).toEqual({ 'web:replicas': '5', 'db:maxConnections': '110', 'db:poolShares': '3' });
    const updates = await history(stack);
    expect(updates.length).toBe(before + 1);
    expect(updates[0]).toMatchObject({ kind: 'update', result: 'succeeded' });
    expect(updates[0]?.config?.['db:maxConnections']?.value).toBe('110');
    expect(updates[0]?.config?.['web:replicas']?.value).toBe('5');
  });

  it('an operator sets several keys at once, still one up', async () => {
    const stack = await stackOf('simple', 'composite-values');
    const before = (await history(stack)).length;
    await withDaemon(stack, async (d) => {
      const res = await d.request('POST', '/api/v1/targets/web/scale', { values: { 'web:replicas': 4, 'db:maxConnections': 400 } });
      expect(res.status).toBe(202);
      await settledAt(d, 4);
    });
    expect(await keys(stack)).toEqual({ 'web:replicas': '4', 'db:maxConnections': '400', 'db:poolShares': '2' });
    expect((await history(stack)).length).toBe(before + 1);
  });

  it('a failing up leaves every key as it was', async () => {
    const stack = await stackOf('failing', 'composite-fails');
    await withDaemon(stack, async (d) => {
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 6 })).status).toBe(202);
      const failed = await until(async () => (await targetEvents(d)).find((e) => e.kind === 'failed'), 'the failed event');
      expect(failed).toMatchObject({ from: 2, to: 6 });
    });
    expect(await keys(stack)).toEqual({ 'web:replicas': '2', 'db:maxConnections': '50', 'db:poolShares': '1' });
    expect((await history(stack))[0]).toMatchObject({ kind: 'update', result: 'failed' });
  });
});
