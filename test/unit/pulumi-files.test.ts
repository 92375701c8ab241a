/**
 * The executor's file and process helpers on real files and processes: the dry run's config
 * copy, and finding a CLI child by its stack and folder to kill it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, realpath, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { killCliProcesses } from '../../src/pulumi/cli-process.js';
import { writePreviewConfig } from '../../src/pulumi/preview-config.js';
import { descendants, until } from '../support/daemon.js';

describe('writePreviewConfig', () => {
  it('copies the stack settings with the previewed values, and never writes the original', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ps-preview-'));
    const original = 'encryptionsalt: v1:abc\n# kept\nconfig:\n  web:replicas: "3"\n  web:region: eu\n';
    await writeFile(path.join(dir, 'Pulumi.dev.yaml'), original);
    const copy = await writePreviewConfig(dir, 'dev', { 'web:replicas': '9' });
    expect(await readFile(path.join(dir, 'Pulumi.dev.yaml'), 'utf8')).toBe(original);
    expect(parse(await readFile(copy.file, 'utf8'))).toEqual({
      encryptionsalt: 'v1:abc',
      config: { 'web:replicas': '9', 'web:region': 'eu' },
    });
    await copy.remove();
    expect(existsSync(copy.file)).toBe(false);
  });

  it.each([
    { rule: 'a stack with no settings file gets one with just the values', stack: 'dev', files: {} },
    { rule: 'a fully qualified stack name finds its file by the last part', stack: 'organization/web/dev', files: { 'Pulumi.dev.yaml': 'config: {}\n' } },
    { rule: 'a .json settings file is read too', stack: 'dev', files: { 'Pulumi.dev.json': '{"config": {}}' } },
  ])('$rule', async ({ stack, files }) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ps-preview-'));
    for (const [name, text] of Object.entries(files as Record<string, string>)) await writeFile(path.join(dir, name), text);
    const copy = await writePreviewConfig(dir, stack, { 'web:replicas': '4' });
    expect(parse(await readFile(copy.file, 'utf8'))).toMatchObject({ config: { 'web:replicas': '4' } });
    await copy.remove();
  });
});

describe('killCliProcesses', () => {
  it('kills the child running in the stack folder with --stack NAME, and its children, and nothing else', async () => {
    const dir = await realpath(await mkdtemp(path.join(tmpdir(), 'ps-cli-')));
    const other = await realpath(await mkdtemp(path.join(tmpdir(), 'ps-cli-')));
    // Shells that ignore SIGINT and have a child of their own, as a hung CLI with a plugin.
    const script = "trap '' INT; sleep 60 & wait";
    const target = spawn('sh', ['-c', script, 'pulumi', 'up', '--stack', 'dev'], { cwd: dir });
    const wrongStack = spawn('sh', ['-c', script, 'pulumi', 'up', '--stack', 'prod'], { cwd: dir });
    const wrongDir = spawn('sh', ['-c', script, 'pulumi', 'up', '--stack', 'dev'], { cwd: other });
    const exited = new Promise((resolve) => target.once('exit', (_code, signal) => resolve(signal)));
    try {
      // Each shell has started its own child once the process table shows it.
      await until(async () => ([target, wrongStack, wrongDir].every((p) => descendants(p.pid ?? 0).length > 0) ? true : undefined), 'the shells to start', 10_000);
      const killed = await killCliProcesses({ cwd: dir, stack: 'dev' });
      expect(killed[0]).toBe(target.pid);
      expect(killed.length).toBe(2);
      expect(await exited).toBe('SIGKILL');
      expect(wrongStack.exitCode).toBeNull();
      expect(wrongDir.exitCode).toBeNull();
    } finally {
      for (const p of [target, wrongStack, wrongDir]) p.kill('SIGKILL');
    }
  });
});
