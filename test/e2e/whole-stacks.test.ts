/**
 * End to end, drift and the preview guard (issue 12), on resources that are local files (the
 * psfile test provider, test/fixtures/provider): editing a file by hand is drift that a refresh
 * finds, and changing the key in a file's path replaces it. The built daemon as a child
 * process, the real Pulumi CLI on a file backend; assertions on the files, the stack's config
 * and history, and the API.
 */
import { readFile, writeFile, access } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScalingEvent } from '../../src/types.js';
import { settledAt, startDaemonProcess, targetEvents, until, type DaemonProcess } from '../support/daemon.js';
import { configGet, createPulumiSandbox, pulumiOk, type PulumiSandbox } from '../support/pulumi.js';
import { deployFileStack, installTestProvider, type FileStack } from '../support/test-provider.js';

let sandbox: PulumiSandbox;
beforeAll(async () => {
  sandbox = await createPulumiSandbox();
  await installTestProvider(sandbox);
}, 600_000);
afterAll(async () => {
  await sandbox?.cleanup();
});

async function withDaemon(targets: Record<string, unknown>, db: string, body: (d: DaemonProcess) => Promise<void>): Promise<void> {
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    engine: { evaluationInterval: '500ms' },
    store: { path: `./${db}.db` },
    pulumi: { backendUrl: sandbox.backendUrl, cliDir: sandbox.cliDir, env: sandbox.pulumiEnv },
    targets,
  };
  const d = await startDaemonProcess(sandbox.root, JSON.stringify(config), sandbox.env);
  try {
    await body(d);
  } finally {
    expect(await d.stop('SIGTERM')).toBe(0);
  }
}

function target(stack: FileStack, extra: Record<string, unknown>): Record<string, unknown> {
  return { workDir: stack.dir, stack: stack.name, configKey: 'web:replicas', min: 1, max: 10, cooldown: { up: '0s', down: '0s' }, ...extra };
}

async function history(stack: { dir: string; name: string }): Promise<{ kind: string; result: string }[]> {
  return JSON.parse(await pulumiOk(sandbox, ['stack', 'history', '--json', '--stack', stack.name], stack.dir)) as never;
}

/** The first drift event, once there is one. */
function driftEvent(d: DaemonProcess): Promise<ScalingEvent> {
  return until(async () => (await targetEvents(d)).find((e) => e.kind === 'drift'), 'a drift event', 60_000);
}

describe('drift', () => {
  it('a file edited by hand is found by the drift check, reported once', async () => {
    const stack = await deployFileStack(sandbox, 'drift-file', 3);
    await withDaemon({ web: target(stack, { drift: { refresh: { every: '1s' } } }) }, stack.name, async (d) => {
      await writeFile(path.join(stack.files, 'replicas.txt'), 'replicas=99');
      const drift = await driftEvent(d);
      expect(drift.drift).toMatchObject({ resources: { changes: { update: 1 }, items: [{ name: 'replicasFile', op: 'update', properties: ['content'] }] }, key: null });
      // Further checks find the same drift and say nothing more; the metric says drifted.
      const drifted = async () => Number((await d.request<string>('GET', '/metrics')).body.match(/pulumiscale_drift_checks_total\{target="web",outcome="drifted"\} (\d+)/)?.[1] ?? 0);
      await until(async () => ((await drifted()) >= 3 ? true : undefined), 'three drifted checks');
      expect((await targetEvents(d)).filter((e) => e.kind === 'drift')).toHaveLength(1);
      expect((await d.request<string>('GET', '/metrics')).body).toContain('pulumiscale_drifted{target="web"} 1');
    });
    // A preview-only refresh: the state still has the deployed content, the file the hand's.
    expect(await readFile(path.join(stack.files, 'replicas.txt'), 'utf8')).toBe('replicas=99');
    expect((await history(stack)).map((h) => h.kind)).not.toContain('refresh');
  });

  it.each<['report' | 'adopt' | 'revert', string]>([
    ['report', '7'],
    ['adopt', '7'],
    ['revert', '3'],
  ])('a hand-made config set and up, with onDrift %s, leaves the stack at %s', async (onDrift, left) => {
    const stack = await deployFileStack(sandbox, `drift-key-${onDrift}`, 3);
    await withDaemon({ web: target(stack, { drift: { refresh: { every: '1s' }, onDrift } }) }, stack.name, async (d) => {
      await settledAt(d, 3);
      await pulumiOk(sandbox, ['config', 'set', 'web:replicas', '7', '--stack', stack.name], stack.dir);
      await pulumiOk(sandbox, ['up', '--yes', '--skip-preview', '--stack', stack.name], stack.dir);
      const drift = await driftEvent(d);
      const action = { report: 'reported', adopt: 'adopted', revert: 'reverting' }[onDrift];
      expect(drift).toMatchObject({ from: 3, to: 7, drift: { key: { key: 'web:replicas', expected: 3, actual: 7 }, action } });
      if (onDrift === 'revert') await settledAt(d, 3);
      if (onDrift === 'adopt') await settledAt(d, 7);
    });
    expect(await configGet(sandbox, stack.dir, stack.name, 'web:replicas')).toBe(left);
    expect(await readFile(path.join(stack.files, 'replicas.txt'), 'utf8')).toBe(`replicas=${left}`);
  });

  it('before-scale refreshes the stack right before the up', async () => {
    const stack = await deployFileStack(sandbox, 'drift-before', 3);
    await writeFile(path.join(stack.files, 'replicas.txt'), 'replicas=99');
    await withDaemon({ web: target(stack, { drift: { refresh: 'before-scale' } }) }, stack.name, async (d) => {
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 4 })).status).toBe(202);
      await settledAt(d, 4);
    });
    expect((await history(stack)).slice(0, 2).map((h) => h.kind)).toEqual(['update', 'refresh']);
    expect(await readFile(path.join(stack.files, 'replicas.txt'), 'utf8')).toBe('replicas=4');
  });
});

describe('the preview guard', () => {
  it('a change that would replace the test resource is refused; one that updates it goes through', async () => {
    const dir = await sandbox.copyFixture('fileguard', 'guarded');
    const files = path.join(sandbox.root, 'files', 'guarded');
    const name = 'guarded';
    await pulumiOk(sandbox, ['stack', 'init', name], dir);
    for (const [key, value] of [['web:replicas', '3'], ['web:shards', '1'], ['web:dir', files]]) await pulumiOk(sandbox, ['config', 'set', key as string, value as string, '--stack', name], dir);
    await pulumiOk(sandbox, ['up', '--yes', '--skip-preview', '--stack', name], dir);
    const before = (await history({ dir, name })).length;
    const guard = { maxReplace: 0, maxDelete: 0 };
    const targets = {
      web: { workDir: dir, stack: name, configKey: 'web:replicas', min: 1, max: 10, guard },
      shards: { workDir: dir, stack: name, configKey: 'web:shards', min: 1, max: 10, guard },
    };
    await withDaemon(targets, name, async (d) => {
      expect((await d.request('POST', '/api/v1/targets/shards/scale', { to: 2 })).status).toBe(202);
      const refused = await until(async () => (await targetEvents(d, 'shards')).find((e) => e.kind === 'skipped'), 'the guard skip');
      expect(refused).toMatchObject({ skipReason: 'guard', from: 1, preview: { replace: 1 } });
      expect(refused.reason).toContain('replace 1 resource(s) (guard.maxReplace 0)');
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 4 })).status).toBe(202);
      await settledAt(d, 4);
    });
    expect(await configGet(sandbox, dir, name, 'web:shards')).toBe('1');
    await access(path.join(files, 'shard-1.txt'));
    expect(await readFile(path.join(files, 'replicas.txt'), 'utf8')).toBe('replicas=4');
    expect((await history({ dir, name })).length).toBe(before + 1);
  });
});
