/**
 * Intake over real HTTP: autocannon posts Alertmanager notifications to the built daemon and,
 * in the same run, to a bare Fastify route that parses the same body and answers 202
 * (bench/baseline-server.ts). Every request carries one firing alert with a fingerprint of its
 * own (autocannon's `idReplacement`), so each is a new signal to store, not a refresh.
 *
 * - Intake: 50 connections for 8 s each (after 1 s of warm-up each). Goals (issue #9): at least
 *   0.50x the baseline's acknowledged requests per second, p99 under 25 ms, and every
 *   acknowledged alert stored, checked after a SIGKILL and a restart on the same store. With
 *   the SQLite store, a third server is noted (no goal): the bare route that also stores each
 *   alert durably (bench/durable-baseline-server.ts). Each load notes the CPU it cost per
 *   request: the server's event loop, its other threads, and the load generator.
 *   bench/pg-intake.ts runs the same measurement (`measureIntake`) on a PostgreSQL store.
 * - Storm: 20,000 alerts over 10 targets (10 stacks) as fast as 50 connections go (cut off
 *   after 20 s), the targets live (each first signal scales its stack up). Goals: at most 2
 *   `up`s per stack, none lost, peak RSS under 200 MiB, at least 0.50x the baseline's rate.
 */
import autocannon from 'autocannon';
import { BODY_LIMIT, BODY_LIMIT_BYTES, type BenchContext } from './context.js';
import { oneAlertTemplate } from './payloads.js';
import {
  cpuSecondsByThread,
  daemonConfig,
  json,
  memoryOf,
  settledAtStart,
  startBaseline,
  startDaemon,
  startDurableBaseline,
  until,
  type ServerProcess,
  type TargetState,
} from './processes.js';
import { fmt, type Row } from './report.js';
import { project } from './stacks.js';

const CONNECTIONS = 50;
const PROFILING = (process.env.BENCH_DAEMON_NODE_ARGS ?? '').includes('-prof');
const SECONDS = Number(process.env.BENCH_INTAKE_SECONDS ?? 8);
const STORM_ALERTS = 20_000;
const STORM_TARGETS = 10;
/** The storm is cut off here, so that a slow daemon still fits the run in a few minutes. */
const STORM_CAP_SECONDS = 20;
/** How long a restarted daemon's signal count may take to reach what was acknowledged: longer than a lease (store.leaseTTL, 15 s by default). */
const RECOUNT_MS = 20_000;

/**
 * One autocannon run posting `bodies` round-robin (per connection) to the webhook, for a time or
 * for an amount of requests; an amount is cut off after `capSeconds`.
 */
async function load(server: ServerProcess, bodies: string[], limit: { seconds: number } | { amount: number; capSeconds: number }) {
  const run = autocannon({
    url: `${server.url}/webhooks/alertmanager`,
    connections: CONNECTIONS,
    ...('seconds' in limit ? { duration: limit.seconds } : { amount: limit.amount }),
    requests: bodies.map((body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body })),
    idReplacement: true,
    renderProgressBar: false,
    renderResultsTable: false,
  });
  const cap = 'capSeconds' in limit ? setTimeout(() => run.stop(), limit.capSeconds * 1000) : undefined;
  const pid = server.proc.pid as number;
  const cpuBefore = cpuSecondsByThread(pid);
  const ownBefore = process.cpuUsage();
  const started = performance.now();
  let last = started;
  // The CPU is read at the last response of a load of an amount, like its time (below): the
  // storm's daemon starts its `up`s after it.
  let answered = 0;
  let cpuAtLast: { server: ReturnType<typeof cpuSecondsByThread>; own: NodeJS.CpuUsage } | undefined;
  run.on('response', () => {
    last = performance.now();
    if ('amount' in limit && ++answered === limit.amount) cpuAtLast = { server: cpuSecondsByThread(pid), own: process.cpuUsage(ownBefore) };
  });
  const result = await run;
  // Timed here, to the last response: autocannon's own `duration` (and its promise) end on a
  // tick of its 1 s timer, so the same storm read 4.02 s (4,975/s) or 5.01 s (3,992/s).
  const seconds = (last - started) / 1000;
  clearTimeout(cap);
  const cpuAfter = cpuAtLast?.server ?? cpuSecondsByThread(pid);
  const own = cpuAtLast?.own ?? process.cpuUsage(ownBefore);
  const perRequest = (cpuSeconds: number) => (result['2xx'] > 0 ? (1e6 * cpuSeconds) / result['2xx'] : Number.NaN);
  return {
    acked: result['2xx'],
    /** Acknowledged requests per second over the whole run. */
    rate: result['2xx'] / seconds,
    p99: result.latency.p99,
    refused: result.non2xx,
    errors: result.errors + result.timeouts,
    /**
     * CPU per acknowledged request, µs: the server's event loop (its main thread) and its other
     * threads, read from /proc at 100 ticks a second (a figure is only as good as the run is
     * long), and this process, the load generator (all its threads, `process.cpuUsage`).
     */
    cpu: {
      main: perRequest(cpuAfter.main - cpuBefore.main),
      others: perRequest(cpuAfter.others - cpuBefore.others),
      loadgen: perRequest((own.user + own.system) / 1e6),
    },
  };
}

/** One autocannon run's outcome. */
export type Load = Awaited<ReturnType<typeof load>>;
const describe = (l: Load) =>
  `${fmt.int(l.acked)} acknowledged (${fmt.int(l.rate)}/s, p99 ${l.p99} ms), ${l.refused} refused, ${l.errors} errors; ` +
  `CPU per request ${l.cpu.main.toFixed(0)} µs on the server's event loop + ${l.cpu.others.toFixed(0)} µs on its other threads, ${l.cpu.loadgen.toFixed(0)} µs in the load generator`;

/** Signals stored for `targets`, as the daemon's API reports them. */
async function storedSignals(url: string): Promise<number> {
  const { body } = await json<TargetState[]>(`${url}/api/v1/targets`);
  return body.reduce((n, t) => n + t.signals.length, 0);
}

/** What one intake measurement gives: the loads of the bare route and of the daemon, and the durability count. */
export interface IntakeMeasure {
  /** The bare route's run. */
  base: Load;
  /** The daemon's warm-up. */
  warm: Load;
  /** The daemon's measured run. */
  run: Load;
  /** Alerts the daemon acknowledged, warm-up included. */
  acked: number;
  /** Signals the restarted daemon reports. */
  stored: number;
}

/**
 * The intake load, on the bare route and then on one daemon with a paused target on `store`
 * (the `store:` section as YAML flow text; default the daemon's SQLite file), followed by the
 * durability check. `name` heads its notes and names its project copy, stack and folder, which
 * keeps two figures of one run apart.
 */
export async function measureIntake(ctx: BenchContext, opts: { name: string; store?: string }): Promise<IntakeMeasure> {
  // The fixture's project is one (`web`) on one backend: each figure's stack is named after it.
  const proj = await project(ctx.sandbox, opts.name, [opts.name], { 'web:replicas': '1' });
  const dir = ctx.tempDir(opts.name);
  // Paused: every signal is stored and evaluated (and its skip recorded) but no `pulumi up`
  // competes for the CPU, so this is the intake path alone; the storm below runs live targets.
  const config = (port: number) =>
    daemonConfig({
      port,
      dir,
      pulumi: ctx.pulumi,
      targets: [proj.target('web', opts.name, { extra: 'paused: true' })],
      bodyLimit: BODY_LIMIT,
      ...(opts.store === undefined ? {} : { store: opts.store }),
    });
  const bodies = [oneAlertTemplate('web')];

  ctx.log(`${opts.name}: warm-up, then ${SECONDS} s each at ${CONNECTIONS} connections`);
  // The baseline first, and the daemon only once it is idle, so that neither one's work
  // (the daemon's start-up read, what it still does after its load) takes from the other.
  await load(ctx.baseline, bodies, { seconds: 1 });
  const base = await load(ctx.baseline, bodies, { seconds: SECONDS });
  // With the daemon's SQLite store, also the bare route that stores each alert durably: what
  // the durable write alone costs, next to everything else the daemon does per alert.
  let durable: Load | undefined;
  if (opts.store === undefined) {
    const server = await startDurableBaseline(BODY_LIMIT_BYTES, ctx.tempDir(`${opts.name}-durable-baseline`));
    try {
      await load(server, bodies, { seconds: 1 });
      durable = await load(server, bodies, { seconds: SECONDS });
    } finally {
      await server.stop();
    }
  }
  let daemon = await startDaemon(dir, config);
  await settledAtStart(daemon.url);
  const warm = await load(daemon, bodies, { seconds: 1 });
  const run = await load(daemon, bodies, { seconds: SECONDS });
  ctx.note(`${opts.name} baseline (bare Fastify): ${describe(base)}`);
  if (durable !== undefined) {
    ctx.note(
      `${opts.name} durable bare route (the bare route storing each alert in SQLite, group commit, synced before the reply; not a goal's baseline): ` +
        `${describe(durable)}; ${(durable.rate / base.rate).toFixed(2)}x the bare route, the daemon ${(run.rate / durable.rate).toFixed(2)}x of it`,
    );
  }
  ctx.note(`${opts.name} daemon: ${describe(run)} (+ ${fmt.int(warm.acked)} acknowledged in its warm-up)`);

  // Durable, not just in memory: kill the daemon without a drain, start it again on the same
  // store, and count the signals it loads.
  const acked = warm.acked + run.acked;
  // A profiled daemon writes its profile only when it exits on its own: it gets a drain then.
  await daemon.stop(PROFILING ? 'SIGTERM' : 'SIGKILL');
  daemon = await startDaemon(dir, config);
  const restarted = performance.now();
  // Counted as soon as the daemon is ready; a shared store may show a stack's signals only once
  // the killed daemon's lease on it has run out, so a short count is polled for a while.
  let stored = await storedSignals(daemon.url);
  const polled = stored < acked;
  if (polled) {
    stored = await until(
      async () => {
        const n = await storedSignals(daemon.url);
        return n >= acked ? n : undefined;
      },
      'every acknowledged signal to show',
      RECOUNT_MS,
      250,
    ).catch(() => storedSignals(daemon.url));
  }
  const counted = polled ? `, counted ${fmt.ms(performance.now() - restarted)} after` : '';
  ctx.note(
    `${opts.name} durability: ${fmt.int(acked)} alerts acknowledged, ${fmt.int(stored)} signals in the store after SIGKILL and restart (${fmt.ms(daemon.readyMs)} to ready${counted})`,
  );
  await daemon.stop();
  return { base, warm, run, acked, stored };
}

/** Figure 1: intake throughput and latency against the bare route, and durability of the acks. */
export async function intake(ctx: BenchContext): Promise<Row[]> {
  const { base, run, acked, stored } = await measureIntake(ctx, { name: 'intake' });
  return [
    { figure: 'intake: acknowledged/s, 50 conns', daemon: run.rate, baseline: base.rate, format: fmt.int, goal: 'ratio >= 0.50', pass: run.rate >= 0.5 * base.rate },
    { figure: 'intake: p99 latency', daemon: run.p99, baseline: base.p99, format: fmt.ms, goal: '< 25 ms', pass: run.p99 < 25 && run.acked > 0 },
    { figure: 'intake: acked alerts not stored', daemon: Math.max(0, acked - stored), baseline: null, format: fmt.int, goal: '= 0', pass: stored >= acked && acked > 0 },
  ];
}

/** Figure 4: a storm over 10 live targets, against the bare route's rate for the same load. */
export async function storm(ctx: BenchContext): Promise<Row[]> {
  const stacks = Array.from({ length: STORM_TARGETS }, (_, i) => `s${i}`);
  const proj = await project(ctx.sandbox, 'storm', stacks, { 'web:replicas': '1' });
  const dir = ctx.tempDir('storm');
  const targets = stacks.map((s, i) => proj.target(`t${i}`, s));
  // Each connection cycles through one notification per target.
  const bodies = stacks.map((_, i) => oneAlertTemplate(`t${i}`));

  ctx.log(`storm: ${fmt.int(STORM_ALERTS)} alerts over ${STORM_TARGETS} targets, bare route then daemon`);
  // A bare route of its own, started for the storm as the daemon is, so that both take the
  // storm's first requests with their code not yet optimized. The run's shared baseline has
  // served the figures before this one by then: on a load this short (about a second for the
  // bare route) that alone made it up to twice as fast (BENCHMARKS.md).
  const bare = await startBaseline(BODY_LIMIT_BYTES);
  const base = await load(bare, bodies, { amount: STORM_ALERTS, capSeconds: STORM_CAP_SECONDS }).finally(() => bare.stop());
  const daemon = await startDaemon(dir, (port) => daemonConfig({ port, dir, pulumi: ctx.pulumi, targets, bodyLimit: BODY_LIMIT }));
  await settledAtStart(daemon.url);
  const run = await load(daemon, bodies, { amount: STORM_ALERTS, capSeconds: STORM_CAP_SECONDS });
  const cut = (l: Load) => (l.acked + l.refused + l.errors < STORM_ALERTS ? ` (cut off after ${STORM_CAP_SECONDS} s)` : '');
  ctx.note(`storm baseline (bare Fastify): ${describe(base)}${cut(base)}`);
  ctx.note(`storm daemon: ${describe(run)}${cut(run)}`);

  // Let the operations the storm started finish: each target steps up once, then its up
  // cooldown (60 s) holds it for longer than this run.
  const settled = await until(
    async () => {
      const { body } = await json<TargetState[]>(`${daemon.url}/api/v1/targets`);
      return body.every((t) => !t.running && t.pendingCount === 0 && (t.current ?? 0) >= 2) ? true : undefined;
    },
    'the storm operations to settle',
    30_000,
    250,
  ).catch((err: Error) => (ctx.note(`storm: ${err.message}`), false));
  const stored = await storedSignals(daemon.url);
  const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
  const ups = stacks.map((_, i) => Number(new RegExp(`^pulumiscale_events_total\\{target="t${i}",kind="changed"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0));
  const { peakMiB } = memoryOf(daemon.proc.pid as number);
  ctx.note(`storm: ${fmt.int(stored)} signals stored, changes per stack [${ups.join(', ')}]${settled ? '' : ' (not settled)'}, peak RSS ${fmt.mib(peakMiB)}`);
  await daemon.stop();

  const lost = Math.max(0, run.acked - stored);
  return [
    {
      figure: 'storm: acknowledged/s, 10 targets',
      daemon: run.rate,
      baseline: base.rate,
      format: fmt.int,
      goal: 'ratio >= 0.50',
      pass: run.rate >= 0.5 * base.rate && run.acked === STORM_ALERTS,
    },
    { figure: 'storm: most ups on one stack', daemon: Math.max(...ups), baseline: null, format: fmt.int, goal: '<= 2', pass: Math.max(...ups) <= 2 },
    { figure: 'storm: acked alerts not stored', daemon: lost, baseline: null, format: fmt.int, goal: '= 0', pass: lost === 0 && run.acked > 0 },
    { figure: 'storm: daemon peak RSS', daemon: peakMiB, baseline: null, format: fmt.mib, goal: '< 200 MiB', pass: peakMiB < 200 },
  ];
}
