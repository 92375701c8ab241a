/**
 * Many targets: 1,000 targets owning 1,000 keys of one stack. From the spawn of the daemon:
 * the time until `/readyz` answers 200, the time until every target's `current` is known, then
 * its resident memory and its CPU use over a few quiet seconds. Baselines from the same run: the
 * same daemon with one target of that stack (ready time, memory, CPU), and, for reading every
 * value, one `pulumi config --json` of the stack (what one read per stack costs).
 * Goals (issue #9): ready < 5 s, all known < 15 s, idle RSS < 200 MiB, idle CPU near zero
 * (taken here as under 2% of one core).
 */
import { pulumiOk } from '../test/support/pulumi.js';
import { BODY_LIMIT, type BenchContext } from './context.js';
import { cpuShareOver, daemonConfig, json, memoryOf, sleep, startDaemon, type ServerProcess, type TargetState } from './processes.js';
import { fmt, type Row } from './report.js';
import { project } from './stacks.js';

const TARGETS = 1_000;
/** How long after the spawn to wait for every `current` (the goal is 15 s). */
const KNOWN_WAIT_MS = 16_000;
const IDLE_MS = 3_000;

interface Start {
  readyMs: number;
  /** From spawn until every target's current was known, or NaN when not within the wait. */
  knownMs: number;
  known: number;
  rssMiB: number;
  cpu: number;
}

/** Starts a daemon on `targets`, waits for every current (or the wait), then measures it idle. */
async function measure(ctx: BenchContext, name: string, targets: string[]): Promise<Start> {
  const dir = ctx.tempDir(name);
  const spawned = performance.now();
  const daemon: ServerProcess = await startDaemon(dir, (port) =>
    daemonConfig({ port, dir, pulumi: ctx.pulumi, targets, bodyLimit: BODY_LIMIT }),
  );
  let known = 0;
  let knownMs = Number.NaN;
  while (performance.now() - spawned < KNOWN_WAIT_MS) {
    const { body } = await json<TargetState[]>(`${daemon.url}/api/v1/targets`);
    known = body.filter((t) => t.current !== null).length;
    if (known === targets.length) {
      knownMs = performance.now() - spawned;
      break;
    }
    await sleep(100);
  }
  const pid = daemon.proc.pid as number;
  const cpu = await cpuShareOver(pid, IDLE_MS);
  const { rssMiB } = memoryOf(pid);
  await daemon.stop();
  return { readyMs: daemon.readyMs, knownMs, known, rssMiB, cpu };
}

/** Figure 5: start-up and idle cost of 1,000 targets on one stack. */
export async function manyTargets(ctx: BenchContext): Promise<Row[]> {
  const keys = Array.from({ length: TARGETS }, (_, i) => `web:k${i}`);
  const proj = await project(ctx.sandbox, 'many', ['many'], Object.fromEntries(keys.map((k) => [k, '1'])));
  const targets = keys.map((configKey, i) => proj.target(`t${i}`, 'many', { configKey }));

  ctx.log(`many targets: one target, then ${TARGETS}`);
  const one = await measure(ctx, 'one-target', targets.slice(0, 1));
  const t0 = performance.now();
  await pulumiOk(ctx.sandbox, ['config', '--json', '--stack', 'many'], proj.dir);
  const oneReadMs = performance.now() - t0;
  const many = await measure(ctx, 'many-targets', targets);

  const describe = (s: Start) =>
    `ready ${fmt.ms(s.readyMs)}, ${s.known} current known ${Number.isNaN(s.knownMs) ? `after ${KNOWN_WAIT_MS / 1000} s (not all)` : `at ${fmt.ms(s.knownMs)}`}, ` +
    `RSS ${fmt.mib(s.rssMiB)}, CPU ${fmt.pct(s.cpu)} of a core over ${IDLE_MS / 1000} s`;
  ctx.note(`many targets, 1 target (baseline): ${describe(one)}; one \`pulumi config --json\` of the stack: ${fmt.ms(oneReadMs)}`);
  ctx.note(`many targets, ${TARGETS} targets: ${describe(many)}`);

  const knownFmt = (v: number) => (Number.isNaN(v) ? `${many.known}/${TARGETS} at ${KNOWN_WAIT_MS / 1000} s` : fmt.ms(v));
  return [
    { figure: '1,000 targets: ready', daemon: many.readyMs, baseline: one.readyMs, format: fmt.ms, goal: '< 5 s', pass: many.readyMs < 5_000 },
    {
      figure: '1,000 targets: every current known',
      daemon: many.knownMs,
      baseline: oneReadMs,
      format: knownFmt,
      goal: '< 15 s',
      pass: many.knownMs < 15_000,
    },
    { figure: '1,000 targets: RSS after start', daemon: many.rssMiB, baseline: one.rssMiB, format: fmt.mib, goal: '< 200 MiB', pass: many.rssMiB < 200 },
    { figure: '1,000 targets: CPU after start', daemon: many.cpu, baseline: one.cpu, format: fmt.pct, goal: '< 2% of a core', pass: many.cpu < 0.02 },
  ];
}
