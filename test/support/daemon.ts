/**
 * Runs the built daemon (`dist/cli.js serve`) as a child process on a temporary config, the way
 * an operator runs it, and talks to it over real HTTP. Waiting is event-driven: the daemon's
 * "listening" log line, the process's exit, or a condition polled on the API.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ScalingEvent, TargetState } from '../../src/types.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = path.join(REPO, 'dist', 'cli.js');

/** A daemon child process. */
export interface DaemonProcess {
  url: string;
  proc: ChildProcess;
  /** Every JSON log line it printed so far. */
  logs: Record<string, unknown>[];
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** A JSON request; returns status and parsed body. */
  request<T = unknown>(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T }>;
}

/** Makes a temp folder for a test's config, backend and state. */
export function tempDir(prefix = 'ps-e2e-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Starts `pulumiscale serve` on `configYaml` (written into `dir`) and waits until it listens. */
export async function startDaemonProcess(dir: string, configYaml: string, env: NodeJS.ProcessEnv = {}): Promise<DaemonProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  const file = path.join(dir, 'pulumiscale.yaml');
  writeFileSync(file, configYaml);
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', file], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'pulumiscale is listening' && typeof entry.url === 'string') resolve(entry.url);
      } catch {
        logs.push({ raw: line });
      }
    });
    void exited.then((code) => reject(new Error(`daemon exited with ${code} before listening:\n${stderr}`)));
  });
  const request = async <T>(method: string, route: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url + route, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (e.g. /metrics): keep the text
    }
    return { status: res.status, body: parsed as T };
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  return { url, proc, logs, stop, exited, request };
}

/**
 * Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`.
 * For conditions only observable through the API (an operation finishing in another process).
 */
export async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 500);
  }
}

/** Every process below `pid` (children, grandchildren…), found with `pgrep -P`. */
export function descendants(pid: number): number[] {
  let out: string;
  try {
    out = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // pgrep exits 1 when there are none
  }
  const kids = out.split('\n').filter(Boolean).map(Number);
  return kids.flatMap((k) => [k, ...descendants(k)]);
}

/**
 * Whether a process is still alive (signal 0 probes without touching it). A zombie — dead, not
 * yet reaped, as an orphan stays where PID 1 reaps nothing (a container) — counts as dead.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Sends SIGKILL to every pid given; one that already ended is skipped. */
export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // It ended on its own between the listing and now.
    }
  }
}

/** A target's state as the API serves it (`GET /api/v1/targets/:name`). */
export async function targetState(d: DaemonProcess, name = 'web'): Promise<TargetState> {
  return (await d.request<TargetState>('GET', `/api/v1/targets/${name}`)).body;
}

/** A target's events, newest first, up to 1,000 (`GET /api/v1/events`). */
export async function targetEvents(d: DaemonProcess, name = 'web'): Promise<ScalingEvent[]> {
  return (await d.request<ScalingEvent[]>('GET', `/api/v1/events?target=${name}&limit=1000`)).body;
}

/** Waits until the target's state satisfies `check`, and returns it; a timeout says the last state seen. */
export async function stateWhere(d: DaemonProcess, check: (s: TargetState) => boolean, what: string, name = 'web'): Promise<TargetState> {
  let last: TargetState | undefined;
  try {
    return await until(async () => {
      last = await targetState(d, name);
      return check(last) ? last : undefined;
    }, what);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last state: ${JSON.stringify(last)}`, { cause: err });
  }
}

/** Waits until the target is at `value` with nothing running or queued. */
export function settledAt(d: DaemonProcess, value: number, name = 'web'): Promise<TargetState> {
  return stateWhere(d, (s) => s.current === value && !s.running && s.pendingCount === 0, `${name} to settle at ${value}`, name);
}
