/**
 * The Automation API executor against the real Pulumi CLI: fixture projects copied into a
 * sandbox with a file:// backend, and every assertion read back from the stack with the CLI
 * (`pulumi config`, `pulumi stack output`), not from logs or from the executor itself.
 */
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { ConcurrentUpdateError, type PulumiFn } from '@pulumi/pulumi/automation/index.js';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../src/config/schema.js';
import { PulumiCliMissingError, PulumiProgramError, StackConfigError, StackConflictError, StackNotFoundError } from '../../src/errors.js';
import { AutomationExecutor, type AutomationExecutorOptions } from '../../src/pulumi/automation.js';
import { inlineProgram } from '../../src/pulumi/inline.js';
import {
  configGet,
  createPulumiSandbox,
  fileBackendStack,
  pulumiOk,
  stackOutputs,
  type PulumiSandbox,
} from '../support/pulumi.js';

const logger = pino({ level: process.env.PULUMISCALE_TEST_LOG ?? 'silent' });

let sandbox: PulumiSandbox;
const executors: AutomationExecutor[] = [];

beforeAll(async () => {
  // Throws (failing every test with the setup command) when no CLI is installed.
  sandbox = await createPulumiSandbox();
});

afterEach(async () => {
  await Promise.all(executors.splice(0).map((executor) => executor.close()));
});

afterAll(async () => {
  await sandbox?.cleanup();
});

function executor(overrides: Partial<AutomationExecutorOptions> = {}): AutomationExecutor {
  const created = new AutomationExecutor({
    pulumi: { backendUrl: sandbox.backendUrl, cliDir: sandbox.cliDir, env: sandbox.pulumiEnv, nice: 10 },
    logger,
    ...overrides,
  });
  executors.push(created);
  return created;
}

function target(fields: Pick<TargetConfig, 'stack'> & Partial<TargetConfig>): TargetConfig {
  return {
    name: `t-${fields.stack}`,
    configKey: 'web:replicas',
    min: 0,
    max: 10,
    step: 1,
    cooldown: { up: 60_000, down: 300_000 },
    defaultAction: 'up',
    paused: false,
    env: {},
    // These tests make their own stacks; the daemon's default (never create) is tested below.
    createStack: true,
    stabilization: { up: 0, down: 0 },
    schedules: [],
    derived: [],
    stackKey: `test#${fields.stack}`,
    ...fields,
  };
}

/** A project on disk: a fresh copy of the fixture, with its own stack name in the shared backend. */
async function onDisk(fixture: 'simple' | 'failing', stack: string): Promise<{ dir: string; t: TargetConfig }> {
  const dir = await sandbox.copyFixture(fixture, stack);
  return { dir, t: target({ stack, workDir: dir }) };
}

describe('AutomationExecutor on a project on disk', () => {
  it('applies a value: the key is set, up runs, and the stack outputs it', async () => {
    const { dir, t } = await onDisk('simple', 'apply');
    const ex = executor();

    await expect(ex.read(t)).resolves.toBeNull();
    const result = await ex.apply(t, 3, { dryRun: false });

    expect(result).toMatchObject({ kind: 'changed', current: 3 });
    expect(result.durationMs).toBeGreaterThan(0);
    expect(Object.values(result.changes).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(await configGet(sandbox, dir, 'apply', 'web:replicas')).toBe('3');
    expect(await stackOutputs(sandbox, 'apply', dir)).toEqual({ replicas: 3 });
    await expect(ex.read(t)).resolves.toBe(3);

    await ex.apply(t, 5, { dryRun: false });
    expect(await stackOutputs(sandbox, 'apply', dir)).toEqual({ replicas: 5 });
  });

  it('a failed up puts the previous value back and leaves the outputs as they were', async () => {
    const { dir, t } = await onDisk('failing', 'rollback');
    const ex = executor();
    await ex.apply(t, 2, { dryRun: false });

    const failure = await ex.apply(t, 9, { dryRun: false }).catch((err: unknown) => err);

    expect(failure).toBeInstanceOf(PulumiProgramError);
    expect((failure as Error).message).toMatch(/out-of-bounds/);
    expect((failure as Error).cause).toBeDefined();
    expect(await configGet(sandbox, dir, 'rollback', 'web:replicas')).toBe('2');
    expect(await stackOutputs(sandbox, 'rollback', dir)).toEqual({ replicas: 2 });
    await expect(ex.read(t)).resolves.toBe(2);
  });

  it('a failed up of a key that had no value removes it again', async () => {
    const { dir, t } = await onDisk('failing', 'rollback-absent');
    const ex = executor();

    await expect(ex.apply(t, 9, { dryRun: false })).rejects.toBeInstanceOf(PulumiProgramError);

    expect(await configGet(sandbox, dir, 'rollback-absent', 'web:replicas')).toBeNull();
  });

  it('a dry run previews the change and restores the old value afterwards', async () => {
    const { dir, t } = await onDisk('simple', 'preview');
    const ex = executor();
    await ex.apply(t, 2, { dryRun: false });

    const result = await ex.apply(t, 4, { dryRun: true });

    expect(result).toMatchObject({ kind: 'previewed', current: 2 });
    expect(Object.keys(result.changes).length).toBeGreaterThan(0);
    expect(await configGet(sandbox, dir, 'preview', 'web:replicas')).toBe('2');
    expect(await stackOutputs(sandbox, 'preview', dir)).toEqual({ replicas: 2 });
  });

  it('a dry run runs the program with the new value (and still restores the old one)', async () => {
    const { dir, t } = await onDisk('failing', 'preview-sees');
    const ex = executor();
    await ex.apply(t, 2, { dryRun: false });

    // The program fails only for values above 4, so this failure proves the preview saw 9.
    await expect(ex.apply(t, 9, { dryRun: true })).rejects.toBeInstanceOf(PulumiProgramError);

    expect(await configGet(sandbox, dir, 'preview-sees', 'web:replicas')).toBe('2');
  });

  it('reads a missing key as null and a non-numeric one as StackConfigError', async () => {
    const { dir, t } = await onDisk('simple', 'non-numeric');
    await pulumiOk(sandbox, ['stack', 'init', 'non-numeric'], dir);
    const ex = executor();
    await expect(ex.read(t)).resolves.toBeNull();

    await pulumiOk(sandbox, ['config', 'set', 'web:replicas', 'many', '--stack', 'non-numeric'], dir);

    await expect(ex.read(t)).rejects.toBeInstanceOf(StackConfigError);
    await expect(ex.read(t)).rejects.toThrow(/"many", not a number/);
  });

  it('readMany reads several targets of one stack with one config read: each its value, or its own error', async () => {
    const { dir, t } = await onDisk('simple', 'many');
    await pulumiOk(sandbox, ['stack', 'init', 'many'], dir);
    await pulumiOk(sandbox, ['config', 'set', 'web:replicas', '4', '--stack', 'many'], dir);
    await pulumiOk(sandbox, ['config', 'set', 'web:workers', 'lots', '--stack', 'many'], dir);
    const workers = { ...t, name: 't-workers', configKey: 'web:workers' };
    const absent = { ...t, name: 't-absent', configKey: 'web:absent' };
    const values = await executor().readMany([t, workers, absent]);
    expect(values.get(t.name)).toBe(4);
    expect(values.get('t-workers')).toBeInstanceOf(StackConfigError);
    expect(values.get('t-absent')).toBeNull();
  });

  it('two first calls for a new stack create it once', async () => {
    const { t } = await onDisk('simple', 'first-calls');
    const ex = executor();

    await expect(Promise.all([ex.read(t), ex.read(t)])).resolves.toEqual([null, null]);
  });
});

describe('AutomationExecutor and stacks that do not exist', () => {
  it.each([
    { kind: 'a project on disk', make: async () => (await onDisk('simple', 'never-made')).t },
    { kind: 'an inline program', make: async () => target({ stack: 'never-made', inline: { project: 'never-made' } }) },
  ])('never creates a missing stack of $kind unless createStack is set: StackNotFoundError, and nothing runs', async ({ make }) => {
    const t = { ...(await make()), createStack: false };
    const ex = executor();
    await expect(ex.read(t)).rejects.toBeInstanceOf(StackNotFoundError);
    await expect(ex.apply(t, 3, { dryRun: false })).rejects.toMatchObject({ code: 'PS_STACK_NOT_FOUND' });
    await expect(ex.check(t)).rejects.toBeInstanceOf(StackNotFoundError);
    const stacks = JSON.parse(await pulumiOk(sandbox, ['stack', 'ls', '--all', '--json'])) as { name: string }[];
    expect(stacks.map((s) => s.name).filter((name) => name.endsWith('never-made'))).toEqual([]);
  });
});

describe('AutomationExecutor on an inline program', () => {
  const project = 'web-config';

  it('applies a value that the stack exports as an output, and reads it back after a restart', async () => {
    const t = target({ stack: 'inline', inline: { project } });
    const first = executor();

    const result = await first.apply(t, 7, { dryRun: false });

    expect(result).toMatchObject({ kind: 'changed', current: 7 });
    expect(await stackOutputs(sandbox, fileBackendStack(project, 'inline'))).toEqual({ replicas: 7 });
    await expect(first.read(t)).resolves.toBe(7);

    // A new executor has a new, empty workspace folder: the value comes back from the outputs.
    await first.close();
    await expect(executor().read(t)).resolves.toBe(7);
  });

  it('forget: a replica that read the stack before another changed it reads the new value', async () => {
    const t = target({ stack: 'taken-over', inline: { project } });
    const mine = executor();
    const theirs = executor();
    await mine.apply(t, 3, { dryRun: false });
    await expect(mine.read(t)).resolves.toBe(3);
    // Another replica (its own workspace) changes the stack meanwhile.
    await theirs.apply(t, 5, { dryRun: false });
    await expect(mine.read(t)).resolves.toBe(3);
    await mine.forget(t);
    await expect(mine.read(t)).resolves.toBe(5);
  });

  it('an update refused because another holds the stack lock is a StackConflictError, and restores', async () => {
    const t = target({ stack: 'locked', inline: { project } });
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // The holder runs a real `up` whose program waits, so the file backend's lock is held by
    // a live update for as long as the test needs it.
    const holding: PulumiFn = async () => {
      entered();
      await released;
      return inlineProgram([t.configKey])();
    };
    const holder = executor({ inlineProgram: () => holding });
    const contender = executor();
    await contender.read(t); // open the contender's workspace before the lock is taken

    const held = holder.apply(t, 2, { dryRun: false });
    await inside;
    const refused = await contender.apply(t, 3, { dryRun: false }).catch((err: unknown) => err);
    release();

    expect(refused).toBeInstanceOf(StackConflictError);
    expect((refused as Error).message).toMatch(/locked/);
    expect((refused as Error).cause).toBeInstanceOf(ConcurrentUpdateError);
    await expect(contender.read(t)).resolves.toBeNull();
    await expect(held).resolves.toMatchObject({ kind: 'changed', current: 2 });
    expect(await stackOutputs(sandbox, fileBackendStack(project, 'locked'))).toEqual({ replicas: 2 });
  });

  it('a program that throws fails the update as a PulumiProgramError and restores', async () => {
    const t = target({ stack: 'throws', inline: { project } });
    const failing: PulumiFn = async () => {
      const value = new pulumi.Config('web').requireNumber('replicas');
      if (value === 13) throw new Error('13 is unlucky');
      return { replicas: value };
    };
    const ex = executor({ inlineProgram: () => failing });
    await ex.apply(t, 12, { dryRun: false });

    await expect(ex.apply(t, 13, { dryRun: false })).rejects.toThrow(PulumiProgramError);

    await expect(ex.read(t)).resolves.toBe(12);
    expect(await stackOutputs(sandbox, fileBackendStack(project, 'throws'))).toEqual({ replicas: 12 });
  });
});

describe('AutomationExecutor finding the CLI', () => {
  const inlineTarget = target({ stack: 'no-cli', inline: { project: 'web-config' } });

  it('a cliDir without a pulumi binary is a PulumiCliMissingError naming the setup script', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'pulumiscale-no-cli-'));
    try {
      const ex = executor({ pulumi: { cliDir: empty, env: {}, nice: 10 } });

      const failure = await ex.read(inlineTarget).catch((err: unknown) => err);

      expect(failure).toBeInstanceOf(PulumiCliMissingError);
      expect((failure as Error).message).toMatch(/setup-pulumi\.sh/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('no cliDir and no pulumi on PATH is a PulumiCliMissingError naming the setup script', async () => {
    const saved = process.env.PATH;
    // The SDK looks the CLI up on this process's PATH; keep only what cannot hold a pulumi.
    process.env.PATH = path.dirname(process.execPath);
    try {
      const ex = executor({ pulumi: { env: {}, nice: 10 } });

      const failure = await ex.read(inlineTarget).catch((err: unknown) => err);

      expect(failure).toBeInstanceOf(PulumiCliMissingError);
      expect((failure as Error).message).toMatch(/on PATH.*setup-pulumi\.sh/s);
    } finally {
      process.env.PATH = saved;
    }
  });

  it('a cliDir not named bin works (the SDK wants <root>/bin/pulumi)', async () => {
    const cliDir = path.join(sandbox.root, 'cli-elsewhere');
    await mkdir(cliDir);
    for (const binary of ['pulumi', 'pulumi-language-yaml']) {
      await symlink(path.join(sandbox.cliDir, binary), path.join(cliDir, binary));
    }
    const { dir, t } = await onDisk('simple', 'cli-elsewhere-stack');
    const ex = executor({ pulumi: { backendUrl: sandbox.backendUrl, cliDir, env: sandbox.pulumiEnv, nice: 10 } });

    await ex.apply(t, 1, { dryRun: false });

    expect(await stackOutputs(sandbox, 'cli-elsewhere-stack', dir)).toEqual({ replicas: 1 });
  });

  it('runs every CLI call at pulumi.nice, and at the daemon\'s own priority with 0', async () => {
    // A CLI that notes the niceness it runs at (field 19 of /proc/self/stat), then is the real one.
    const cliDir = path.join(sandbox.root, 'cli-noting-nice');
    const notes = path.join(sandbox.root, 'nice-notes');
    await mkdir(cliDir);
    await writeFile(
      path.join(cliDir, 'pulumi'),
      `#!/bin/sh\ncut -d' ' -f19 /proc/self/stat >> '${notes}'\nexec '${path.join(sandbox.cliDir, 'pulumi')}' "$@"\n`,
      { mode: 0o755 },
    );
    await symlink(path.join(sandbox.cliDir, 'pulumi-language-yaml'), path.join(cliDir, 'pulumi-language-yaml'));
    const own = Number((await readFile('/proc/self/stat', 'utf8')).split(' ')[18]);
    const { t } = await onDisk('simple', 'niced');
    const noted = async (nice: number): Promise<number[]> => {
      await rm(notes, { force: true });
      const ex = executor({ pulumi: { backendUrl: sandbox.backendUrl, cliDir, env: sandbox.pulumiEnv, nice } });
      await ex.apply(t, nice, { dryRun: false });
      return (await readFile(notes, 'utf8')).trim().split('\n').map(Number);
    };

    const niced = await noted(7);
    expect(niced.length).toBeGreaterThan(0);
    expect(new Set(niced)).toEqual(new Set([Math.min(19, own + 7)]));
    expect(new Set(await noted(0))).toEqual(new Set([own]));
    // Without a `nice` to run it through, the CLI still runs, at the daemon's priority.
    const saved = process.env.PATH;
    process.env.PATH = path.dirname(process.execPath);
    try {
      expect(new Set(await noted(5))).toEqual(new Set([own]));
    } finally {
      process.env.PATH = saved;
    }
  });

  it('an operation is two CLI processes: the config read, then one up that saves the value; after a read, apply reads nothing more', async () => {
    const cliDir = path.join(sandbox.root, 'cli-noting-calls');
    const calls = path.join(sandbox.root, 'call-notes');
    await mkdir(cliDir);
    await writeFile(path.join(cliDir, 'pulumi'), `#!/bin/sh\necho "$1" >> '${calls}'\nexec '${path.join(sandbox.cliDir, 'pulumi')}' "$@"\n`, { mode: 0o755 });
    await symlink(path.join(sandbox.cliDir, 'pulumi-language-yaml'), path.join(cliDir, 'pulumi-language-yaml'));
    const { dir, t } = await onDisk('simple', 'two-processes');
    const ex = executor({ pulumi: { backendUrl: sandbox.backendUrl, cliDir, env: sandbox.pulumiEnv, nice: 0 } });
    await ex.apply(t, 1, { dryRun: false });
    const noted = async (op: () => Promise<unknown>): Promise<string[]> => {
      await rm(calls, { force: true });
      await op();
      return (await readFile(calls, 'utf8')).trim().split('\n');
    };

    expect(await noted(() => ex.apply(t, 2, { dryRun: false }))).toEqual(['config', 'up']);
    expect(await noted(async () => ex.apply(t, (await ex.read(t)) === 2 ? 3 : 0, { dryRun: false, readJustBefore: true }))).toEqual(['config', 'up']);
    expect(await configGet(sandbox, dir, 'two-processes', 'web:replicas')).toBe('3');
    expect(await stackOutputs(sandbox, 'two-processes', dir)).toEqual({ replicas: 3 });
  });

  it('a CLI without the YAML language host is a PulumiCliMissingError, and restores', async () => {
    // A copy, not a link: the CLI also looks for language hosts beside its resolved executable.
    const cliDir = path.join(sandbox.root, 'cli-without-yaml');
    await mkdir(cliDir);
    await copyFile(path.join(sandbox.cliDir, 'pulumi'), path.join(cliDir, 'pulumi'));
    await chmod(path.join(cliDir, 'pulumi'), 0o755);
    const { dir, t } = await onDisk('simple', 'no-yaml-host');
    const ex = executor({ pulumi: { backendUrl: sandbox.backendUrl, cliDir, env: sandbox.pulumiEnv, nice: 10 } });
    const isolated = { ...t, env: { PATH: '/usr/bin:/bin' } };

    await expect(ex.apply(isolated, 1, { dryRun: false })).rejects.toThrow(PulumiCliMissingError);

    expect(await configGet(sandbox, dir, 'no-yaml-host', 'web:replicas')).toBeNull();
  });
});
