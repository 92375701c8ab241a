/**
 * The processes a benchmark measures: the built daemon (`dist/cli.js serve`) on a temporary
 * config, and the bare Fastify baseline (bench/baseline-server.ts), each a child process on its
 * own port of 127.0.0.1, so that the load generator in this process reaches both over real HTTP
 * alike. Readiness is polled (`/readyz`), since the bench daemons log at `warn` and so never
 * print their "listening" line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root. */
export const REPO = fileURLToPath(new URL('..', import.meta.url));
/** The built daemon. */
export const CLI = path.join(REPO, 'dist', 'cli.js');

/** A server child process: where it listens and how to stop it. */
export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  /** Milliseconds from spawn to the first 200 of its readiness route. */
  readyMs: number;
  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** A port nobody listens on now (taken from the kernel, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Sleeps `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The fields of a target's state (GET /api/v1/targets[/:name]) the benchmarks read. */
export interface TargetState {
  name: string;
  current: number | null;
  running: boolean;
  pendingCount: number;
  signals: unknown[];
  error: unknown;
}

/** GETs or POSTs JSON; returns the status and the parsed body. */
export async function json<T = unknown>(url: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
}

/** Polls `probe` every `everyMs` until it returns a value, or throws naming `what` after `timeoutMs`. */
export async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs: number, everyMs = 20): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Waits until a daemon has read every target's value and runs nothing, so that a measurement
 * starts on an idle daemon (its start-up reads run `pulumi` processes that take the CPU).
 */
export async function settledAtStart(url: string, timeoutMs = 60_000): Promise<void> {
  await until(
    async () => {
      const { body } = await json<TargetState[]>(`${url}/api/v1/targets`);
      return body.every((t) => t.current !== null && !t.running) ? true : undefined;
    },
    'every target to be read at start',
    timeoutMs,
    100,
  );
}

/** Spawns `args` under this Node and waits until `readyPath` answers 200 on `port`. */
async function startServer(args: string[], port: number, readyPath: string, cwd: string, env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  const started = performance.now();
  const proc = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer) => (output = (output + b.toString()).slice(-8000));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) => {
    stoppers.delete(stop);
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  stoppers.add(stop);
  try {
    await until(
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${args.join(' ')} exited before it was ready:\n${output}`);
        try {
          return (await fetch(url + readyPath)).status === 200 ? true : undefined;
        } catch {
          return undefined; // not listening yet
        }
      },
      `${args.join(' ')} to answer ${readyPath}`,
      60_000,
      10,
    );
  } catch (err) {
    await stop('SIGKILL');
    throw err;
  }
  return { url, proc, readyMs: performance.now() - started, stop };
}

/** The stop of every server started and not stopped yet. */
const stoppers = new Set<(signal?: NodeJS.Signals, graceMs?: number) => Promise<void>>();

/** Stops every server still running (after a figure failed half-way, say). */
export async function stopAll(): Promise<void> {
  await Promise.all([...stoppers].map((stop) => stop()));
}

/**
 * Extra Node.js options for the daemons only, from BENCH_DAEMON_NODE_ARGS (space-separated), e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where a figure's time goes (a profile is written
 * when the daemon exits after its drain).
 */
const DAEMON_NODE_ARGS = (process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');

/**
 * The Node.js options the daemon ships with (the image's ENTRYPOINT and `npm start` pass the
 * same; test/unit/launch.test.ts checks they agree): a young generation of 4 MiB semi-spaces
 * instead of V8's 16 to 32, which kept a storm's peak RSS 45 MiB lower at the same rate.
 */
export const DAEMON_NODE_OPTIONS = ['--max-semi-space-size=4'];

/** Starts `pulumiscale serve` on a free port, its config (`config(port)`) written to `dir/pulumiscale.yaml`. */
export async function startDaemon(dir: string, config: (port: number) => string): Promise<ServerProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm run bench does)`);
  const port = await freePort();
  const file = path.join(dir, 'pulumiscale.yaml');
  writeFileSync(file, config(port));
  return startServer([...DAEMON_NODE_OPTIONS, ...DAEMON_NODE_ARGS, CLI, 'serve', '--config', file], port, '/readyz', dir, process.env);
}

/** Starts the bare Fastify route (bench/baseline-server.ts) with the same body limit. */
export async function startBaseline(bodyLimit: number): Promise<ServerProcess> {
  const port = await freePort();
  const script = path.join(REPO, 'bench', 'baseline-server.ts');
  return startServer(['--import', 'tsx', script, String(port), String(bodyLimit)], port, '/healthz', REPO, process.env);
}

/**
 * The bare route that also stores each alert durably (bench/durable-baseline-server.ts), its
 * SQLite file in `dir`.
 */
export async function startDurableBaseline(bodyLimit: number, dir: string): Promise<ServerProcess> {
  const port = await freePort();
  const script = path.join(REPO, 'bench', 'durable-baseline-server.ts');
  return startServer(['--import', 'tsx', script, String(port), String(bodyLimit), dir], port, '/healthz', REPO, process.env);
}

/** The fields of a daemon's config that every bench config shares. */
export interface DaemonConfig {
  port: number;
  /** Folder of the SQLite file. */
  dir: string;
  /** The `pulumi:` section (test/support/pulumi.ts `pulumiSection`). */
  pulumi: string;
  /** The `targets:` entries, each a YAML line indented by two spaces. */
  targets: string[];
  bodyLimit?: string;
  /** The `store:` section as YAML flow text (`{ driver: postgres, url: … }`); default: SQLite in `dir`. */
  store?: string;
}

/**
 * A daemon config: a SQLite store unless `store` says otherwise, the Alertmanager webhook
 * without credentials, log level warn, and a short drain so that stopping a bench daemon never
 * waits on a Pulumi operation for long.
 */
export function daemonConfig(c: DaemonConfig): string {
  return [
    `server: { host: 127.0.0.1, port: ${c.port}, bodyLimit: ${c.bodyLimit ?? '1mb'} }`,
    'engine: { drainTimeout: 3s, cancelGrace: 1s }',
    `store: ${c.store ?? `{ driver: sqlite, path: ${JSON.stringify(path.join(c.dir, 'state.db'))} }`}`,
    'webhooks: { alertmanager: { signalTTL: 1h } }',
    'log: { level: warn }',
    c.pulumi,
    'targets:',
    ...c.targets,
    '',
  ].join('\n');
}

const CLOCK_TICKS = 100; // USER_HZ: 100 on every Linux this runs on

/** Resident memory now and at its peak (VmHWM), in MiB, from /proc. */
export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

/** CPU seconds a process has used so far (user + system, itself only). */
export function cpuSecondsOf(pid: number): number {
  return ticksToSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** User plus system time of a `stat` line of /proc, in seconds. */
function ticksToSeconds(stat: string): number {
  // Fields after the command name (which may hold spaces) start at field 3; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * CPU seconds a process has used so far, split between its main thread (the event loop) and all
 * its other threads (V8's garbage collector and compiler helpers, libuv's pool, Node's own),
 * from /proc. The process's own figure counts threads that have ended too, so `others` is it
 * less the main thread's.
 */
export function cpuSecondsByThread(pid: number): { main: number; others: number } {
  const total = cpuSecondsOf(pid);
  const main = ticksToSeconds(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
  return { main, others: total - main };
}

/** Share of one core a process used over `ms` (0.01 = 1%). */
export async function cpuShareOver(pid: number, ms: number): Promise<number> {
  const before = cpuSecondsOf(pid);
  const t0 = performance.now();
  await sleep(ms);
  return (cpuSecondsOf(pid) - before) / ((performance.now() - t0) / 1000);
}
