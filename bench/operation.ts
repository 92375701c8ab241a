/**
 * One scale operation, end to end: the API's `{"to": N}` until the target's state shows it
 * settled (`current` is N, nothing running or queued), against the bare Pulumi CLI making the
 * same change on the same stack (`pulumi config set`, then `pulumi up --yes --skip-preview`).
 * Real CLI, the YAML fixture project, a file backend. The two alternate, each changing the value
 * the other left, after one unmeasured operation each (the stack's first `up` creates it).
 * Goal (issue #9): the daemon's median at most 1.25x the CLI's.
 */
import { pulumiOk } from '../test/support/pulumi.js';
import { BODY_LIMIT, type BenchContext } from './context.js';
import { daemonConfig, json, startDaemon, until, type TargetState } from './processes.js';
import { fmt, median, type Row } from './report.js';
import { project } from './stacks.js';

const ROUNDS = 5;

/** Figure 3: median time of one operation, daemon against the bare CLI. */
export async function operation(ctx: BenchContext): Promise<Row[]> {
  const proj = await project(ctx.sandbox, 'op', ['op'], { 'web:replicas': '1' });
  const dir = ctx.tempDir('op');
  const targets = [proj.target('web', 'op')];
  const daemon = await startDaemon(dir, (port) => daemonConfig({ port, dir, pulumi: ctx.pulumi, targets, bodyLimit: BODY_LIMIT }));

  const viaDaemon = async (to: number) => {
    const t0 = performance.now();
    const res = await json(`${daemon.url}/api/v1/targets/web/scale`, { to });
    if (res.status !== 202) throw new Error(`scale to ${to}: ${res.status} ${JSON.stringify(res.body)}`);
    await until(
      async () => {
        const { body: t } = await json<TargetState>(`${daemon.url}/api/v1/targets/web`);
        if (t.error !== null && t.error !== undefined) throw new Error(`scale to ${to} failed: ${JSON.stringify(t.error)}`);
        return t.current === to && !t.running && t.pendingCount === 0 ? true : undefined;
      },
      `the daemon to settle at ${to}`,
      60_000,
      10,
    );
    return performance.now() - t0;
  };
  const viaCli = async (to: number) => {
    const t0 = performance.now();
    await pulumiOk(ctx.sandbox, ['config', 'set', 'web:replicas', String(to), '--stack', 'op'], proj.dir);
    await pulumiOk(ctx.sandbox, ['up', '--yes', '--skip-preview', '--stack', 'op'], proj.dir);
    return performance.now() - t0;
  };

  ctx.log(`operation: one unmeasured each, then ${ROUNDS} alternating rounds`);
  let value = 1;
  await viaDaemon(++value);
  await viaCli(++value);
  const daemonMs: number[] = [];
  const cliMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    daemonMs.push(await viaDaemon(++value));
    cliMs.push(await viaCli(++value));
  }
  await daemon.stop();

  const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  ctx.note(`operation: daemon ${list(daemonMs)} ms; bare CLI ${list(cliMs)} ms`);
  const d = median(daemonMs);
  const c = median(cliMs);
  return [{ figure: 'one operation: to settled, median', daemon: d, baseline: c, format: fmt.ms, goal: 'ratio <= 1.25', pass: d <= 1.25 * c }];
}
