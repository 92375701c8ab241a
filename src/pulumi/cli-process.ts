/**
 * Finding and killing the Pulumi CLI processes this daemon started for one stack.
 *
 * Why this exists: the Automation API cancels an operation through its AbortSignal with one
 * SIGINT, which is what Pulumi expects (it cancels cleanly and releases the stack's lock), but
 * it offers nothing for a CLI that does not stop: a hung plugin, or a CLI stuck before it
 * installs its handler. It does not expose the child either. So, past the grace period, the
 * executor looks the child up in `/proc` — a direct child of this process whose arguments name
 * the stack (`--stack NAME`) and whose working directory is the stack's workspace — and kills it
 * and everything below it with SIGKILL. The lock a killed CLI leaves behind is ours, and the
 * stale-lock rule (stale-lock.ts) clears it at the next operation.
 *
 * Linux only (the container image's platform); elsewhere nothing is found and only SIGINT is sent.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** What identifies an operation's CLI process. */
export interface CliMatch {
  /** The workspace folder the CLI runs in. */
  cwd: string;
  /** The stack name the SDK passes as `--stack`. */
  stack: string;
}

/** One process as `/proc` describes it. */
interface ProcessInfo {
  pid: number;
  ppid: number;
}

/** Every process's pid and parent pid; empty where there is no `/proc`. */
async function processTable(): Promise<ProcessInfo[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const table: ProcessInfo[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // The command name sits in parentheses and may hold spaces or parentheses itself, so the
      // fields are read after the last ')': state, then the parent pid.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.push({ pid: Number(entry), ppid: Number(fields[1]) });
    } catch {
      // The process ended while we looked.
    }
  }
  return table;
}

/** Whether a direct child's arguments and working directory are those of the operation. */
async function matches(pid: number, match: CliMatch): Promise<boolean> {
  try {
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const at = args.indexOf('--stack');
    if (at < 0 || args[at + 1] !== match.stack) return false;
    return (await readlink(`/proc/${pid}/cwd`)) === match.cwd;
  } catch {
    return false;
  }
}

/**
 * Sends SIGKILL to this process's CLI children that match, and to all their descendants
 * (language hosts, plugins). Resolves with the pids signalled. `stillWanted` is asked just
 * before the signals go: the scan reads /proc asynchronously, and an operation that ended
 * meanwhile must not have its successor (the next CLI call on the same stack) killed.
 */
export async function killCliProcesses(match: CliMatch, stillWanted: () => boolean = () => true): Promise<number[]> {
  const table = await processTable();
  const children = new Map<number, number[]>();
  for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const roots: number[] = [];
  for (const pid of children.get(process.pid) ?? []) if (await matches(pid, match)) roots.push(pid);
  const doomed: number[] = [];
  const walk = (pid: number): void => {
    doomed.push(pid);
    for (const child of children.get(pid) ?? []) walk(child);
  };
  roots.forEach(walk);
  if (!stillWanted()) return [];
  for (const pid of doomed) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  return doomed;
}
