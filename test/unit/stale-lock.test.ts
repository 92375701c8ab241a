/**
 * The stale-lock rule on real files laid out as a file backend lays them out: a lock is cleared
 * only when every lock of the stack is this host's and its process no longer runs.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clearStaleLocks, isPulumiRunning, lockDirOf } from '../../src/pulumi/stale-lock.js';

async function lockDir(locks: { pid: number; hostname: string }[]): Promise<{ dir: string; files: string[] }> {
  const dir = path.join(await mkdtemp(path.join(tmpdir(), 'ps-locks-')), '.pulumi', 'locks', 'organization', 'web', 'dev');
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const [i, lock] of locks.entries()) {
    const file = path.join(dir, `lock-${i}.json`);
    await writeFile(file, JSON.stringify({ ...lock, username: 'ops', timestamp: '2026-11-29T08:00:00Z' }));
    await writeFile(`${file}.attrs`, '{}');
    files.push(file);
  }
  return { dir, files };
}

const gone = async (): Promise<boolean> => false;
const running = async (): Promise<boolean> => true;
const all = (): boolean => true;

describe('clearStaleLocks', () => {
  it.each([
    { rule: 'a lock of this host whose process is gone is removed', locks: [{ pid: 41, hostname: hostname() }], isRunning: gone, cleared: 1 },
    { rule: 'a lock of a live process is never touched', locks: [{ pid: 41, hostname: hostname() }], isRunning: running, cleared: 0 },
    { rule: 'a lock of another host is never touched', locks: [{ pid: 41, hostname: 'elsewhere' }], isRunning: gone, cleared: 0 },
    { rule: 'when any lock is not provably stale, none is touched', locks: [{ pid: 41, hostname: hostname() }, { pid: 42, hostname: 'elsewhere' }], isRunning: gone, cleared: 0 },
    { rule: 'no lock, nothing to do', locks: [], isRunning: gone, cleared: 0 },
    { rule: 'a lock that is not provably ours is never touched, even of this host with its process gone', locks: [{ pid: 41, hostname: hostname() }], isRunning: gone, cleared: 0, ours: () => false },
  ])('$rule', async ({ locks, isRunning, cleared, ours }) => {
    const { dir, files } = await lockDir(locks);
    const removed = await clearStaleLocks(dir, { isRunning, host: hostname(), ours: ours ?? all });
    expect(removed).toHaveLength(cleared);
    for (const file of files) {
      expect(existsSync(file)).toBe(cleared === 0);
      expect(existsSync(`${file}.attrs`)).toBe(cleared === 0);
    }
  });

  it('a missing lock folder is no lock', async () => {
    expect(await clearStaleLocks(path.join(tmpdir(), 'ps-no-such-dir', 'x'), { host: hostname(), ours: all })).toEqual([]);
  });
});

describe('isPulumiRunning', () => {
  it('a pid that ended is not running', async () => {
    const child = spawn('true');
    const pid = child.pid ?? 0;
    await new Promise((resolve) => child.once('exit', resolve));
    expect(await isPulumiRunning(pid)).toBe(false);
  });

  it('a live pid running something other than pulumi was reused: not running', async () => {
    const child = spawn('sleep', ['30']);
    try {
      expect(await isPulumiRunning(child.pid ?? 0)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a live pulumi process is running', async () => {
    // A process whose command line names pulumi, as the CLI's does.
    const child = spawn('sh', ['-c', 'sleep 30', 'pulumi']);
    try {
      expect(await isPulumiRunning(child.pid ?? 0)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('lockDirOf', () => {
  it.each([
    { url: 'file:///var/state', stack: 'dev', dir: '/var/state/.pulumi/locks/organization/web/dev' },
    { url: 'file:///var/state?no_tmp_dir=true', stack: 'dev', dir: '/var/state/.pulumi/locks/organization/web/dev' },
    { url: 'file:///var/state', stack: 'acme/other/prod', dir: '/var/state/.pulumi/locks/acme/other/prod' },
    { url: 's3://bucket/state', stack: 'dev', dir: null },
    { url: 'https://api.pulumi.com', stack: 'dev', dir: null },
  ])('$url with stack $stack: $dir', ({ url, stack, dir }) => {
    expect(lockDirOf(url, 'web', stack)).toBe(dir);
  });
});
