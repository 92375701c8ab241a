/**
 * `npm run bench`: every performance figure of issue #9, over real HTTP against the built
 * daemon, each next to a baseline measured in the same run, as one table; exits 1 when any goal
 * is missed (or a figure could not be measured). `npm run bench` builds first.
 *
 *   npm run bench
 *   BENCH_ONLY=intake,big npm run bench      # some figures: intake, big, operation, storm, targets, pg-intake
 *   BENCH_INTAKE_SECONDS=2                   # a shorter intake load while working on it (default 8)
 *   BENCH_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"   # Node options for the daemons
 *   BENCH_CLI_DIR=/tmp/wrapped/bin           # the daemons' pulumi.cliDir (say, a wrapper that logs each call)
 *
 * Every process it starts (daemons, the baseline, Pulumi CLIs) runs on this machine and talks
 * over 127.0.0.1; every Pulumi stack lives in a temporary sandbox removed at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { createPulumiSandbox, pulumiSection } from '../test/support/pulumi.js';
import { bigNotificationFigure } from './big-notification.js';
import { BODY_LIMIT_BYTES, type BenchContext, type Figure } from './context.js';
import { intake, storm } from './intake.js';
import { manyTargets } from './many-targets.js';
import { operation } from './operation.js';
import { pgIntake } from './pg-intake.js';
import { startBaseline, stopAll } from './processes.js';
import { table, type Failure, type Row } from './report.js';

const FIGURES: Record<string, Figure> = {
  intake,
  big: bigNotificationFigure,
  operation,
  storm,
  targets: manyTargets,
  'pg-intake': pgIntake,
};

const only = (process.env.BENCH_ONLY ?? '').split(',').filter((s) => s !== '');
const unknown = only.filter((name) => !(name in FIGURES));
if (unknown.length > 0) {
  console.error(`unknown figure(s) ${unknown.join(', ')}; known: ${Object.keys(FIGURES).join(', ')}`);
  process.exit(2);
}
const selected = Object.entries(FIGURES).filter(([name]) => only.length === 0 || only.includes(name));

function pulumiVersion(cliDir: string): string {
  try {
    return execFileSync(path.join(cliDir, 'pulumi'), ['version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const started = performance.now();
const sandbox = await createPulumiSandbox();
const baseline = await startBaseline(BODY_LIMIT_BYTES);
const notes: string[] = [];
const ctx: BenchContext = {
  sandbox,
  pulumi: pulumiSection(sandbox, process.env.BENCH_CLI_DIR ?? sandbox.cliDir),
  baseline,
  tempDir(name) {
    const dir = path.join(sandbox.root, 'daemons', name);
    mkdirSync(dir, { recursive: true });
    return dir;
  },
  log: (message) => console.error(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}`),
  note: (message) => notes.push(message),
};

const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
console.log(`npm run bench, ${new Date().toISOString()}`);
// The load average says whether something else shared the machine during the run.
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(
  `machine: ${cpus().length} CPUs (${cpuModel}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB; Node.js ${process.version}; pulumi ${pulumiVersion(sandbox.cliDir)}; load average ${load()}`,
);

const rows: Row[] = [];
const failures: Failure[] = [];
try {
  for (const [name, figure] of selected) {
    try {
      rows.push(...(await figure(ctx)));
    } catch (err) {
      ctx.log(`${name} failed: ${(err as Error).stack ?? String(err)}`);
      failures.push({ figure: name, error: (err as Error).message });
    }
  }
} finally {
  await baseline.stop();
  await stopAll();
  await sandbox.cleanup().catch(() => rmSync(sandbox.root, { recursive: true, force: true }));
}

console.log('');
for (const n of notes) console.log(`- ${n}`);
console.log('');
console.log(table(rows, failures));
const missed = rows.filter((r) => !r.pass).length + failures.length;
console.log('');
console.log(
  missed === 0
    ? `every goal met (${((performance.now() - started) / 1000).toFixed(0)} s, load average ${load()})`
    : `${missed} of ${rows.length + failures.length} goals missed (${((performance.now() - started) / 1000).toFixed(0)} s, load average ${load()})`,
);
process.exitCode = missed === 0 ? 0 : 1;
