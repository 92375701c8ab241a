/**
 * The stale-lock rule for file backends: a stack lock is cleared only when it is provably our
 * own dead process's.
 *
 * A `pulumi up` killed with the daemon (a crash, a SIGKILL after a cancelled operation) leaves
 * its lock file behind, and every later operation on the stack fails with "the stack is
 * currently locked". On a file (DIY) backend the lock file says who holds it: `{pid, username,
 * hostname, timestamp}`. When every lock of the stack was taken on this host, is ours (the rule
 * the caller passes: cli-guard.ts) and its process no longer runs, nothing can still be writing
 * the stack, so removing those files is what `pulumi cancel` would do — except that only the
 * files checked are removed, so a lock taken by someone else between the check and the removal
 * is never touched. A lock of a live process, of another host, or not provably ours is never
 * touched: that could be a colleague's update.
 *
 * Other backends (Pulumi Cloud, S3…) keep locks the daemon cannot inspect; their conflicts are
 * retried and then reported, as before.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A lock file of a stack on a file backend. */
export interface LockFile {
  /** The lock file. */
  file: string;
  pid: number;
  hostname: string;
  username: string;
  /** When it was taken (ISO), as written by the CLI. */
  timestamp: string;
}

/** Where a stack's lock files are, or null when the backend is not a local file backend. */
export function lockDirOf(backendUrl: string, project: string, stack: string): string | null {
  if (!backendUrl.startsWith('file://')) return null;
  // A file backend's URL may carry query options (`?no_tmp_dir=true`); the path is the rest.
  let root: string;
  try {
    root = fileURLToPath(backendUrl.split('?')[0] ?? backendUrl);
  } catch {
    return null;
  }
  // `org/project/stack` names are project scoped already; a short name is scoped by the project.
  const parts = stack.split('/');
  const scoped = parts.length === 3 ? parts : ['organization', project, stack];
  return path.join(root, '.pulumi', 'locks', ...scoped);
}

/** The stack's lock files, parsed; files that are not lock JSON are left out. */
export async function readLocks(dir: string): Promise<LockFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const locks: LockFile[] = [];
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    const file = path.join(dir, name);
    try {
      const raw = JSON.parse(await readFile(file, 'utf8')) as Partial<Record<keyof LockFile, unknown>>;
      if (typeof raw.pid !== 'number' || typeof raw.hostname !== 'string') continue;
      locks.push({
        file,
        pid: raw.pid,
        hostname: raw.hostname,
        username: typeof raw.username === 'string' ? raw.username : '',
        timestamp: typeof raw.timestamp === 'string' ? raw.timestamp : '',
      });
    } catch {
      // Removed or half-written while we read: not ours to judge.
    }
  }
  return locks;
}

/** How to tell whether a process still runs; injectable for tests. */
export type IsRunning = (pid: number) => Promise<boolean>;

/**
 * Whether a process with that pid runs and could be a Pulumi CLI. A pid that runs something
 * else was reused after the CLI died; where `/proc` cannot say, any live pid counts as running.
 */
export const isPulumiRunning: IsRunning = async (pid) => {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else, so it is alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('pulumi');
  } catch {
    return true;
  }
};

/** What makes a lock clearable, besides its process being gone. */
export interface ClearRule {
  /** Whether a lock's process still runs; default {@link isPulumiRunning}. */
  isRunning?: IsRunning;
  /** This host's name, as the CLI writes it in its locks. */
  host: string;
  /** Whether the lock is provably ours (see cli-guard.ts); locks that are not are never touched. */
  ours: (lock: LockFile) => boolean;
}

/**
 * Removes the stack's locks when every one of them is this host's, provably ours, and its
 * process gone. Resolves with the locks removed (empty when there were none, or when any is not
 * provably stale, in which case nothing is removed).
 */
export async function clearStaleLocks(dir: string, rule: ClearRule): Promise<LockFile[]> {
  const isRunning = rule.isRunning ?? isPulumiRunning;
  const locks = await readLocks(dir);
  if (locks.length === 0) return [];
  for (const lock of locks) {
    if (lock.hostname !== rule.host || !rule.ours(lock) || (await isRunning(lock.pid))) return [];
  }
  for (const lock of locks) {
    await rm(lock.file, { force: true });
    // The file backend's blob store keeps its metadata beside the file.
    await rm(`${lock.file}.attrs`, { force: true });
  }
  return locks;
}
